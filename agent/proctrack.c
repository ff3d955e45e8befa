/*
 * The process set's dispatcher: chooses the backend at init, gives each set
 * its ops, keeps the groups both backends record, and calls through the
 * ops (proctrack_cgroup.c, proctrack_pgroup.c).
 */
#include "proctrack_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int
proctrack_init(struct proctrack *pt, const char *want, const char *cgroup_root,
    const char *node)
{
	memset(pt, 0, sizeof(*pt));
	/* Orphans of workers come to us, so they are reaped, not zombies. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn(
		    "cannot become a child subreaper: %s", strerror(errno));
	if (strcmp(want, "pgroup") != 0
	    && proctrack_cgroup_init(pt, cgroup_root, node) == 0) {
		pt->ops = &proctrack_cgroup_ops;
		log_info("process tracking: cgroup2 under %s", pt->root);
		return 0;
	}
	if (strcmp(want, "cgroup2") == 0) {
		log_err("no writable cgroup2 hierarchy at '%s'", cgroup_root);
		return HPCXL_ECONFIG;
	}
	pt->ops = &proctrack_pgroup_ops;
	pt->root[0] = '\0';
	if (strcmp(want, "pgroup") != 0)
		log_warn("no writable cgroup2 hierarchy: tracking by process "
		         "group; a worker's setsid() descendants can escape");
	return 0;
}

void
proctrack_fini(struct proctrack *pt)
{
	if (pt->ops != NULL)
		pt->ops->fini(pt);
}

const char *
proctrack_backend_name(const struct proctrack *pt)
{
	return pt->ops->name;
}

uint64_t
proctrack_start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and ')': fields resume after the last ')'.
	 * starttime is field 22; field 3 (state) follows ") ". */
	if ((p = strrchr(buf, ')')) == NULL
	    || sscanf(p + 2,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
	           "%*d "
	           "%*d %*d %*d %*d %llu",
	           &ticks)
	        != 1)
		return 0;
	return ticks;
}

/* A set with no ops (never created, or its creation failed) is empty. */
static const struct proctrack_ops *
set_ops(const struct proctrack_set *set)
{
	return set->ops != NULL ? set->ops : &proctrack_pgroup_ops;
}

static void
set_free_groups(struct proctrack_set *set)
{
	free(set->pgids);
	free(set->leader_ticks);
	free(set->leader_pinned);
	set->pgids = NULL;
	set->leader_ticks = NULL;
	set->leader_pinned = NULL;
	set->ngroups = 0;
}

/* An empty set of ngroups groups with ops: what a backend fills in. */
static int
set_start(
    struct proctrack_set *set, const struct proctrack_ops *ops, size_t ngroups)
{
	memset(set, 0, sizeof(*set));
	set->procs_fd = set->events_fd = set->dir_fd = -1;
	set->pgids = calloc(ngroups + 1, sizeof(*set->pgids));
	set->leader_ticks = calloc(ngroups + 1, sizeof(*set->leader_ticks));
	set->leader_pinned = calloc(ngroups + 1, sizeof(*set->leader_pinned));
	if (set->pgids == NULL || set->leader_ticks == NULL
	    || set->leader_pinned == NULL) {
		set_free_groups(set);
		return HPCXL_ENOMEM;
	}
	set->ngroups = ngroups;
	set->ops = ops;
	return 0;
}

int
proctrack_set_create(const struct proctrack *pt, const char *session,
    size_t ngroups, struct proctrack_set *set)
{
	int rv = set_start(set, pt->ops, ngroups);

	if (rv == 0 && (rv = pt->ops->create(pt, session, set)) != 0) {
		set_free_groups(set);
		set->ops = NULL;
	}
	return rv;
}

int
proctrack_set_adopt(const struct proctrack *pt, const char *session,
    size_t ngroups, struct proctrack_set *set)
{
	int rv = set_start(set, pt->ops, ngroups);

	if (rv != 0)
		return rv;
	/* No cgroup (pgroup backend, or it is gone): the groups still work.
	 */
	if ((rv = pt->ops->adopt(pt, session, set)) != 0)
		set->ops = &proctrack_pgroup_ops;
	return rv;
}

void
proctrack_set_destroy(struct proctrack_set *set)
{
	set_ops(set)->release(set, true);
	set_free_groups(set);
	set->ops = NULL;
}

void
proctrack_set_forget(struct proctrack_set *set)
{
	set_ops(set)->release(set, false);
	set_free_groups(set);
	set->ops = NULL;
}

const char *
proctrack_set_kind(const struct proctrack_set *set)
{
	return set_ops(set)->set_kind;
}

int
proctrack_set_pollfd(const struct proctrack_set *set)
{
	return set_ops(set)->pollfd(set);
}

int
proctrack_set_clone_fd(const struct proctrack_set *set)
{
	return set->ops != NULL ? set->dir_fd : -1;
}

int
proctrack_child_join(const struct proctrack_set *set)
{
	return set_ops(set)->child_join(set);
}

void
proctrack_set_add(struct proctrack_set *set, size_t i, pid_t pgid,
    uint64_t leader_ticks, bool our_child)
{
	if (i >= set->ngroups)
		return;
	set->pgids[i] = pgid;
	set->leader_ticks[i] = leader_ticks;
	set->leader_pinned[i] = our_child;
}

pid_t
proctrack_set_group(const struct proctrack_set *set, size_t i)
{
	return i < set->ngroups ? set->pgids[i] : 0;
}

void
proctrack_set_signal(struct proctrack_set *set, const int *sigs, size_t nsigs,
    proctrack_signal_worker_fn signal_worker, void *arg)
{
	set_ops(set)->signal(set, sigs, nsigs, signal_worker, arg);
}

void
proctrack_set_drop_group(struct proctrack_set *set, size_t i)
{
	if (i < set->ngroups)
		set_ops(set)->drop_group(set, i);
}

void
proctrack_set_reaped(struct proctrack_set *set, pid_t pid)
{
	for (size_t i = 0; i < set->ngroups; i++) {
		if (set->pgids[i] == pid)
			set->leader_pinned[i] = false;
	}
}

void
proctrack_set_prune(struct proctrack_set *set)
{
	set_ops(set)->prune(set);
}

void
proctrack_set_kill(struct proctrack_set *set)
{
	set_ops(set)->kill(set);
}

bool
proctrack_set_empty(struct proctrack_set *set)
{
	return set_ops(set)->empty(set);
}

unsigned
proctrack_set_count(const struct proctrack_set *set)
{
	return set_ops(set)->count(set);
}
