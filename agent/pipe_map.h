/*
 * Identities by nng pipe id: the table behind caller.h. Open addressing
 * with linear probing (a lookup per request, an insert and a removal per
 * connection), grown to keep at most half its slots used, bounded by the
 * number of pipes it may hold. Not locked: caller.c holds its lock around
 * every call.
 */
#ifndef HPCXL_AGENT_PIPE_MAP_H
#define HPCXL_AGENT_PIPE_MAP_H

#include "hpcxl/common/util.h"

#include <stddef.h>
#include <stdint.h>

struct pipe_map_slot {
	uint32_t pipe; /* 0 = free: nng never gives a pipe id 0 */
	char identity[HPCXL_IDENTITY_MAX + 1];
};

struct pipe_map {
	struct pipe_map_slot *slots;
	size_t nslots; /* a power of two */
	size_t npipes;
	size_t max_pipes;
};

/* An empty map for at most max_pipes pipes. 0 or HPCXL_ENOMEM. */
int pipe_map_init(struct pipe_map *m, size_t max_pipes);

void pipe_map_fini(struct pipe_map *m);

/*
 * Sets the identity of pipe (not 0; a longer identity is cut at
 * HPCXL_IDENTITY_MAX bytes). Returns 0, HPCXL_ETOOBIG when max_pipes
 * other pipes are held, HPCXL_EINVAL for pipe 0, or HPCXL_ENOMEM.
 */
int pipe_map_put(struct pipe_map *m, uint32_t pipe, const char *identity);

/* Forgets pipe (nothing when it is not there). */
void pipe_map_remove(struct pipe_map *m, uint32_t pipe);

/* The identity of pipe, valid until the map changes; NULL when unknown. */
const char *pipe_map_get(const struct pipe_map *m, uint32_t pipe);

#endif
