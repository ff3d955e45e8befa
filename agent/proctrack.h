/*
 * Process tracking: which processes belong to a session, and how to kill
 * them all.
 *
 * cgroup2: one cgroup per session under <root>/<node>/; a worker joins it
 * in the child before exec, so nothing it forks, double-forks or setsid()s
 * can leave. The kill is cgroup.kill; "empty" is cgroup.events populated 0,
 * which the loop polls (POLLPRI).
 *
 * pgroup: each worker leads its own process group; the kill is SIGKILL to
 * each group and "empty" is no process left in any group. A grandchild that
 * calls setsid() escapes this backend: that is its documented limit. The
 * agent is a child subreaper in both backends so orphans are reaped here.
 */
#ifndef HPCXL_AGENT_PROCTRACK_H
#define HPCXL_AGENT_PROCTRACK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proctrack_ops;

struct proctrack {
	const struct proctrack_ops *ops; /* the backend chosen at init */
	char root[PATH_MAX]; /* this node's cgroup directory (cgroup2) */
	bool root_made; /* root was created by this process */
};

/*
 * The process set of one session. Its groups are the only record of the
 * workers' process groups (slot i: worker i's), kept by both backends so a
 * stored session names them whichever backend reads it back.
 */
struct proctrack_set {
	const struct proctrack_ops *ops; /* NULL: none (an empty set) */
	char path[PATH_MAX]; /* cgroup directory; "" for pgroup */
	int dir_fd; /* the cgroup directory, for clone3's CLONE_INTO_CGROUP */
	int procs_fd; /* cgroup.procs, written by a child not born in it */
	int events_fd; /* cgroup.events, polled; or -1 */
	size_t ngroups;
	pid_t *pgids; /* worker i's group; 0 once seen empty or dropped */
	uint64_t *leader_ticks; /* start time of each group's leader */
	/* Worker i's leader is our child, not yet reaped: its pid, the
	 * group's number, cannot go to anyone else, so the group needs no
	 * check. A re-adopted leader is not our child: never pinned. */
	bool *leader_pinned;
};

/*
 * Chooses the backend: want is "auto", "cgroup2" or "pgroup"; cgroup_root
 * "auto" finds a writable cgroup2 mount (/sys/fs/cgroup, then
 * /sys/fs/cgroup/unified) and uses <mount>/hpcxl/<node>. Returns 0, or
 * HPCXL_ECONFIG when cgroup2 was asked for and cannot be used.
 */
int proctrack_init(struct proctrack *pt, const char *want,
    const char *cgroup_root, const char *node);

/*
 * Removes this node's cgroup directory if this process created it and no
 * session is left in it. One it found there is another agent's (one that
 * runs, or one whose sessions this one re-adopted): never removed. Safe on
 * a zeroed proctrack that was never initialised.
 */
void proctrack_fini(struct proctrack *pt);

const char *proctrack_backend_name(const struct proctrack *pt);

/* starttime of pid from /proc/PID/stat (clock ticks since boot), or 0. */
uint64_t proctrack_start_ticks(pid_t pid);

/*
 * Creates the (empty) set for a session of ngroups workers. Returns 0,
 * HPCXL_EEXIST when a cgroup of that name still holds processes,
 * HPCXL_ENOMEM or HPCXL_ESYSTEM; on failure the set is none.
 */
int proctrack_set_create(const struct proctrack *pt, const char *session,
    size_t ngroups, struct proctrack_set *set);

/*
 * Takes back the set of session that an earlier agent left behind (it was
 * restarted, or killed): 0 with its cgroup, or HPCXL_ENOTFOUND when there
 * is none (always for pgroup), the set then being ngroups empty groups to
 * refill with proctrack_set_add(); HPCXL_ENOMEM leaves no set.
 */
int proctrack_set_adopt(const struct proctrack *pt, const char *session,
    size_t ngroups, struct proctrack_set *set);

/* Closes the set's descriptors and removes its cgroup (best effort). */
void proctrack_set_destroy(struct proctrack_set *set);

/* Closes the set's descriptors and forgets its cgroup without removing
 * it: its processes keep running in it for the next agent to adopt. */
void proctrack_set_forget(struct proctrack_set *set);

/* How "re-adopted" logs the set: "cgroup" or "groups". */
const char *proctrack_set_kind(const struct proctrack_set *set);

/* The descriptor whose POLLPRI says the set changed, or -1. */
int proctrack_set_pollfd(const struct proctrack_set *set);

/* The cgroup directory a child can be born in (clone3), or -1. */
int proctrack_set_clone_fd(const struct proctrack_set *set);

/*
 * Called in the child before exec when it was not born in the set: joins
 * the set. Only
 * async-signal-safe calls. Returns 0 or an errno value.
 */
int proctrack_child_join(const struct proctrack_set *set);

/*
 * Worker i leads process group pgid, whose leader started at leader_ticks
 * (proctrack_start_ticks()): a spawn (our_child: the leader is ours to
 * reap), or a stored session read back (not our child).
 */
void proctrack_set_add(struct proctrack_set *set, size_t i, pid_t pgid,
    uint64_t leader_ticks, bool our_child);

/* Worker i's group as stored in the session's record (0: none). */
pid_t proctrack_set_group(const struct proctrack_set *set, size_t i);

/*
 * Signals worker i through its pidfd and returns its pid while it lives,
 * else 0.
 */
typedef pid_t (*proctrack_signal_worker_fn)(void *arg, size_t i, int sig);

/*
 * Sends each of sigs (nsigs of them, in that order) once to every process
 * of the set, in one pass over it (a second SIGTERM means "hurry" to some
 * programs; SIGCONT then SIGTERM costs one read of cgroup.procs, not two).
 * cgroup2: each worker through signal_worker,
 * never a reused pid, then every other pid in cgroup.procs; a pid that
 * exits and is reused between the read and the kill is the narrow race
 * systemd accepts too. pgroup: every process group, leaders (the workers)
 * included; a group number stays pinned while its leader is unreaped or any
 * member lives. The final kill has no race at all with cgroup2:
 * cgroup.kill.
 */
void proctrack_set_signal(struct proctrack_set *set, const int *sigs,
    size_t nsigs, proctrack_signal_worker_fn signal_worker, void *arg);

/*
 * The set stops tracking worker i's process group (the worker restarts in
 * a new group): pgroup kills what is left of it and forgets it; cgroup2
 * keeps tracking those processes in the cgroup and does nothing.
 */
void proctrack_set_drop_group(struct proctrack_set *set, size_t i);

/* A child, pid, was reaped: a group it led is no longer pinned by it. */
void proctrack_set_reaped(struct proctrack_set *set, pid_t pid);

/*
 * Children were reaped: pgroup forgets the groups that emptied (or whose
 * number went to a stranger), so a number reused later is never
 * signalled; a cgroup needs nothing. Once per batch of reaps, not per
 * reap, and pinned groups are not looked at: a close of n workers once
 * cost n^2 /proc reads here.
 */
void proctrack_set_prune(struct proctrack_set *set);

/* SIGKILLs every process of the set. */
void proctrack_set_kill(struct proctrack_set *set);

/*
 * True when no process of the set is left. For pgroup, a group found empty,
 * or whose number now names a stranger's group, is forgotten: its number
 * may be reused by a stranger from then on.
 */
bool proctrack_set_empty(struct proctrack_set *set);

/* How many processes the set still holds (for pgroup: a lower bound, one
 * per non-empty group). */
unsigned proctrack_set_count(const struct proctrack_set *set);

#endif
