/*
 * Inside proctrack: what each backend provides (one file each, as nng keeps
 * one ops vector per transport). proctrack.c chooses the backend and calls
 * through these; nothing else in the agent includes this header.
 */
#ifndef HPCXL_AGENT_PROCTRACK_IMPL_H
#define HPCXL_AGENT_PROCTRACK_IMPL_H

#include "proctrack.h"

struct proctrack_ops {
	const char *name; /* the backend, as status replies name it */
	const char *set_kind; /* a set of this backend, as logs name it */
	void (*fini)(struct proctrack *pt);
	/* set has its ops and groups; these fill the rest. */
	int (*create)(const struct proctrack *pt, const char *session,
	    struct proctrack_set *set);
	int (*adopt)(const struct proctrack *pt, const char *session,
	    struct proctrack_set *set);
	/* Closes descriptors; remove says whether the cgroup goes too. */
	void (*release)(struct proctrack_set *set, bool remove);
	int (*pollfd)(const struct proctrack_set *set);
	int (*child_join)(const struct proctrack_set *set);
	void (*signal)(struct proctrack_set *set, const int *sigs,
	    size_t nsigs, proctrack_signal_worker_fn signal_worker, void *arg);
	void (*drop_group)(struct proctrack_set *set, size_t i);
	void (*prune)(struct proctrack_set *set);
	void (*kill)(struct proctrack_set *set);
	bool (*empty)(struct proctrack_set *set);
	unsigned (*count)(const struct proctrack_set *set);
};

extern const struct proctrack_ops proctrack_cgroup_ops;
extern const struct proctrack_ops proctrack_pgroup_ops;

/* Finds or makes the node's cgroup root (see proctrack_init()) and checks
 * it has cgroup.kill. Returns 0, or -1 with nothing left made. */
int proctrack_cgroup_init(
    struct proctrack *pt, const char *cgroup_root, const char *node);

#endif
