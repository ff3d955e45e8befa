/*
 * The process-group backend: each worker leads its own process group; the
 * kill is SIGKILL to each group and "empty" is no process left in any
 * group. A grandchild that calls setsid() escapes this backend: that is
 * its documented limit.
 *
 * A group number is the session's only while the group lives. The kernel
 * does not reuse a pid while it still names a group, so when the leader's
 * pid is held by a process with another start time, the group emptied and
 * the number went to a stranger: it is forgotten before every use, as are
 * groups found empty. This is what keeps a re-adopted session, whose
 * workers are not our children (no SIGCHLD), from signalling anyone else's
 * group.
 */
#include "proctrack_impl.h"

#include "hpcxl/common/err.h"

#include <errno.h>
#include <signal.h>

static void
pgroup_fini(struct proctrack *pt)
{
	(void)pt;
}

static int
pgroup_create(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	(void)pt;
	(void)session;
	(void)set;
	return 0;
}

static int
pgroup_adopt(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	/* The groups come back from the session's record. */
	(void)pt;
	(void)session;
	(void)set;
	return HPCXL_ENOTFOUND;
}

static void
pgroup_release(struct proctrack_set *set, bool remove)
{
	(void)set;
	(void)remove;
}

static int
pgroup_pollfd(const struct proctrack_set *set)
{
	(void)set;
	return -1;
}

static int
pgroup_child_join(const struct proctrack_set *set)
{
	/* The child already leads its own group (setpgid before this). */
	(void)set;
	return 0;
}

/*
 * Whether group i's number may no longer be the session's: the group is
 * gone, or its leader's pid now names a process with another start time.
 * A pinned group is neither, and costs no system call.
 */
static bool
group_stale(const struct proctrack_set *set, size_t i)
{
	uint64_t ticks;

	if (set->leader_pinned[i])
		return false;
	if (kill(-set->pgids[i], 0) != 0 && errno == ESRCH)
		return true;
	ticks = proctrack_start_ticks(set->pgids[i]);
	return ticks != 0 && ticks != set->leader_ticks[i];
}

/* Forgets every group whose number no longer is the session's. */
static void
forget_stale_groups(struct proctrack_set *set)
{
	for (size_t i = 0; i < set->ngroups; i++) {
		if (set->pgids[i] > 0 && group_stale(set, i))
			set->pgids[i] = 0;
	}
}

static void
signal_groups(const struct proctrack_set *set, const int *sigs, size_t nsigs)
{
	for (size_t i = 0; i < set->ngroups; i++) {
		for (size_t k = 0; k < nsigs && set->pgids[i] > 0; k++)
			kill(-set->pgids[i], sigs[k]);
	}
}

/* Each worker's group holds the worker itself: one signal reaches both. */
static void
pgroup_signal(struct proctrack_set *set, const int *sigs, size_t nsigs,
    proctrack_signal_worker_fn signal_worker, void *arg)
{
	(void)signal_worker;
	(void)arg;
	forget_stale_groups(set);
	signal_groups(set, sigs, nsigs);
}

static void
pgroup_drop_group(struct proctrack_set *set, size_t i)
{
	forget_stale_groups(set);
	if (set->pgids[i] > 0)
		kill(-set->pgids[i], SIGKILL);
	set->pgids[i] = 0;
}

static void
pgroup_kill(struct proctrack_set *set)
{
	static const int sigkill[] = { SIGKILL };

	forget_stale_groups(set);
	signal_groups(set, sigkill, 1);
}

static bool
pgroup_empty(struct proctrack_set *set)
{
	forget_stale_groups(set);
	for (size_t i = 0; i < set->ngroups; i++) {
		if (set->pgids[i] > 0)
			return false;
	}
	return true;
}

static unsigned
pgroup_count(const struct proctrack_set *set)
{
	unsigned count = 0;

	for (size_t i = 0; i < set->ngroups; i++)
		count += set->pgids[i] > 0 && kill(-set->pgids[i], 0) == 0;
	return count;
}

const struct proctrack_ops proctrack_pgroup_ops = {
	.name = "pgroup",
	.set_kind = "groups",
	.fini = pgroup_fini,
	.create = pgroup_create,
	.adopt = pgroup_adopt,
	.release = pgroup_release,
	.pollfd = pgroup_pollfd,
	.child_join = pgroup_child_join,
	.signal = pgroup_signal,
	.drop_group = pgroup_drop_group,
	.prune = forget_stale_groups,
	.kill = pgroup_kill,
	.empty = pgroup_empty,
	.count = pgroup_count,
};
