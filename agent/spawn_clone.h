/*
 * Process creation with vfork semantics: the child shares the agent's
 * memory until it execs or exits, and the agent's thread waits meanwhile.
 * Nothing is copied (fork's page-table copy grows with the agent's size
 * and its copy-on-write faults follow), and the child's outcome is known
 * when spawn_clone() returns: no pipe, no second wait.
 *
 * Where the kernel has clone3 (Linux 5.7 for CLONE_INTO_CGROUP) the child
 * is born in the session's cgroup: no write to cgroup.procs, which takes
 * the cgroup migration lock. Elsewhere clone(2) does the same but the
 * child joins the cgroup itself. One file per way of cloning would be the
 * libuv layout; both ways are a dozen lines, so they share this one.
 */
#ifndef HPCXL_AGENT_SPAWN_CLONE_H
#define HPCXL_AGENT_SPAWN_CLONE_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Starts fn(arg) in a new process on a private stack and returns once fn
 * has called execve successfully or _exit. fn must never return and may
 * use only async-signal-safe calls (no malloc: the memory is the agent's,
 * and its other threads keep running). It may write its outcome into arg:
 * the caller reads it after the return.
 *
 * cgroup_fd >= 0: the child should start in that cgroup directory. Before
 * the child runs, *in_cgroup is set to whether the kernel put it there;
 * when false, fn must join the cgroup itself. *pidfd gets a pidfd of the
 * child. Returns the child's pid, or -1 with errno.
 *
 * *shares_fds is set, before the child runs, to whether it starts in the
 * agent's descriptor table (CLONE_FILES), so that a spawn costs the same
 * however many descriptors the agent holds (a copy of the table, as fork
 * makes, grows with them: O(workers) per spawn, and the exec then closed
 * them all again). Then fn may use the agent's descriptors, but must call
 * spawn_clone_child_own_fds() before it opens, closes or dup2s any: until
 * then those would be the agent's. If that fails, the caller reaps the
 * child, calls spawn_clone_stop_sharing_fds() and spawns again: children
 * then get a copy of the table.
 *
 * Not reentrant: one stack serves every spawn, so only one thread (the
 * agent's loop) may spawn.
 */
pid_t spawn_clone(int (*fn)(void *), void *arg, int cgroup_fd, int *pidfd,
    volatile bool *in_cgroup, volatile bool *shares_fds);

/*
 * In the child: gives it a descriptor table of its own, which holds only
 * 0-2 (the agent's, until the child replaces them) when *only_0_2 says
 * so; else it is a whole copy (before Linux 5.9, or a seccomp filter
 * refused close_range), for spawn_clone_child_close_fds(). Returns 0 or
 * an errno value; on failure the child must _exit at once, touching no
 * descriptor.
 */
int spawn_clone_child_own_fds(bool *only_0_2);

/*
 * In a child with a table of its own: closes every descriptor above 2,
 * listed from /proc/self/fd with raw system calls (no close_range
 * needed). For a copied table: nng marks an accepted connection CLOEXEC
 * only after accept(), so a copy taken in between would pass it on even
 * through exec. Returns 0 or an errno value.
 */
int spawn_clone_child_close_fds(void);

/* After a child could not take a table of its own (refused with err, or
 * killed by a seccomp filter, err 0): children no longer share the table
 * (logged once). */
void spawn_clone_stop_sharing_fds(int err);

/*
 * Makes every descriptor above 2 that the agent inherited (a shell's, a
 * test runner's pipes) close-on-exec, at start, before any thread, by a
 * walk of /proc/self/fd (close_range is what a seccomp filter may kill
 * for): a second guard, after the child's own closing.
 */
void spawn_clone_seal_inherited_fds(void);

#endif
