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
#include <sys/types.h>

enum proctrack_backend {
	PROCTRACK_CGROUP2,
	PROCTRACK_PGROUP,
};

struct proctrack {
	enum proctrack_backend backend;
	char root[PATH_MAX]; /* this node's cgroup directory (cgroup2) */
	bool root_made; /* root was created by this process */
};

/* The process set of one session. */
struct proctrack_set {
	char path[PATH_MAX]; /* cgroup directory; "" for pgroup */
	int procs_fd; /* cgroup.procs, written by the child; or -1 */
	int events_fd; /* cgroup.events, polled; or -1 */
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

/* Creates the (empty) set for a session. Returns 0, HPCXL_EEXIST when a
 * cgroup of that name still holds processes, or HPCXL_ESYSTEM. */
int proctrack_set_create(const struct proctrack *pt, const char *session,
    struct proctrack_set *set);

/*
 * Opens the cgroup of session that an earlier agent left behind (it was
 * restarted, or killed): 0 with the set, or HPCXL_ENOTFOUND when there is
 * none (always for pgroup).
 */
int proctrack_set_adopt(const struct proctrack *pt, const char *session,
    struct proctrack_set *set);

/* Closes the set's descriptors and removes its cgroup (best effort). */
void proctrack_set_destroy(struct proctrack_set *set);

/* Closes the set's descriptors and forgets its cgroup without removing
 * it: its processes keep running in it for the next agent to adopt. */
void proctrack_set_forget(struct proctrack_set *set);

/*
 * Called in the forked child before exec: joins the set. Only
 * async-signal-safe calls. Returns 0 or an errno value.
 */
int proctrack_child_join(const struct proctrack_set *set);

/*
 * Sends sig to every process of the set. cgroup2: every pid in cgroup.procs
 * but those in except (the caller signals its workers through their pidfds,
 * so each process gets the signal once); a pid that exits and is reused
 * between the read and the kill is the narrow race systemd accepts too.
 * pgroup: every process group in pgids, leaders included (except unused);
 * a group number stays pinned while its leader is unreaped or any member
 * lives. The final kill has no race at all with cgroup2: cgroup.kill.
 */
void proctrack_set_signal(const struct proctrack_set *set, const pid_t *pgids,
    size_t n, int sig, const pid_t *except, size_t nexcept);

/*
 * The set stops tracking the process group *pgid (a worker restarted in a
 * new group): pgroup kills what is left of it and zeroes *pgid; cgroup2
 * keeps tracking those processes in the cgroup and does nothing.
 */
void proctrack_set_drop_group(const struct proctrack_set *set, pid_t *pgid);

/* True when the set is a cgroup (signals to its pids need an except list). */
bool proctrack_set_is_cgroup(const struct proctrack_set *set);

/* SIGKILLs every process of the set; pgids lists the workers' groups. */
void proctrack_set_kill(
    const struct proctrack_set *set, const pid_t *pgids, size_t n);

/*
 * True when no process of the set is left. For pgroup, a group found empty
 * has its entry zeroed: its number may be reused by a stranger from then on.
 */
bool proctrack_set_empty(
    const struct proctrack_set *set, pid_t *pgids, size_t n);

/* How many processes the set still holds (for pgroup: a lower bound, one
 * per non-empty group). */
unsigned proctrack_set_count(
    const struct proctrack_set *set, const pid_t *pgids, size_t n);

#endif
