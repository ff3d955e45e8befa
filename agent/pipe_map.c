/* Identities by pipe id (see pipe_map.h). */
#include "pipe_map.h"

#include "hpcxl/common/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* The first size: enough for a node's usual few controllers. */
#define PIPE_MAP_MIN_SLOTS 64

int
pipe_map_init(struct pipe_map *m, size_t max_pipes)
{
	m->slots = calloc(PIPE_MAP_MIN_SLOTS, sizeof(*m->slots));
	if (m->slots == NULL)
		return HPCXL_ENOMEM;
	m->nslots = PIPE_MAP_MIN_SLOTS;
	m->npipes = 0;
	m->max_pipes = max_pipes;
	return 0;
}

void
pipe_map_fini(struct pipe_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->nslots = m->npipes = 0;
}

static size_t
slot_home(const struct pipe_map *m, uint32_t pipe)
{
	/* Fibonacci hashing: nng hands out pipe ids in sequence. */
	return (size_t)((pipe * 2654435761u) & (uint32_t)(m->nslots - 1));
}

static size_t
slot_next(const struct pipe_map *m, size_t i)
{
	return (i + 1) & (m->nslots - 1);
}

/* The slot of pipe, or the free slot where it would go. */
static size_t
slot_find(const struct pipe_map *m, uint32_t pipe)
{
	size_t i = slot_home(m, pipe);

	while (m->slots[i].pipe != 0 && m->slots[i].pipe != pipe)
		i = slot_next(m, i);
	return i;
}

/* Twice the slots, every pipe placed again. */
static int
map_grow(struct pipe_map *m)
{
	struct pipe_map_slot *old = m->slots;
	size_t nold = m->nslots;

	if ((m->slots = calloc(nold * 2, sizeof(*m->slots))) == NULL) {
		m->slots = old;
		return HPCXL_ENOMEM;
	}
	m->nslots = nold * 2;
	for (size_t i = 0; i < nold; i++) {
		if (old[i].pipe != 0)
			m->slots[slot_find(m, old[i].pipe)] = old[i];
	}
	free(old);
	return 0;
}

int
pipe_map_put(struct pipe_map *m, uint32_t pipe, const char *identity)
{
	size_t i;

	if (pipe == 0)
		return HPCXL_EINVAL;
	i = slot_find(m, pipe);
	if (m->slots[i].pipe == 0 && m->npipes >= m->max_pipes)
		return HPCXL_ETOOBIG;
	if (m->slots[i].pipe == 0 && (m->npipes + 1) * 2 > m->nslots) {
		if (map_grow(m) != 0)
			return HPCXL_ENOMEM;
		i = slot_find(m, pipe);
	}
	if (m->slots[i].pipe == 0)
		m->npipes++;
	m->slots[i].pipe = pipe;
	snprintf(m->slots[i].identity, sizeof(m->slots[i].identity), "%s",
	    identity);
	return 0;
}

/* True when home lies in the cyclic range (gap, at]: the entry at "at"
 * may not move back into the gap, which would put it before its home. */
static bool
home_between(size_t gap, size_t home, size_t at)
{
	return gap <= at ? gap < home && home <= at : gap < home || home <= at;
}

/* Linear probing deletes by moving later entries of the same run back
 * into the gap, so no lookup stops early at a freed slot. */
void
pipe_map_remove(struct pipe_map *m, uint32_t pipe)
{
	size_t gap = slot_find(m, pipe), at = gap;

	if (m->slots[gap].pipe == 0)
		return;
	while (m->slots[at = slot_next(m, at)].pipe != 0) {
		if (home_between(gap, slot_home(m, m->slots[at].pipe), at))
			continue;
		m->slots[gap] = m->slots[at];
		gap = at;
	}
	m->slots[gap].pipe = 0;
	m->npipes--;
}

const char *
pipe_map_get(const struct pipe_map *m, uint32_t pipe)
{
	size_t i;

	if (pipe == 0)
		return NULL;
	i = slot_find(m, pipe);
	return m->slots[i].pipe == pipe ? m->slots[i].identity : NULL;
}
