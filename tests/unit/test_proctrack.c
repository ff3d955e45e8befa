/*
 * Unit tests of the pgroup backend's bookkeeping (agent/proctrack*.c) with
 * real processes: a group led by our unreaped child is the session's
 * without a look (its number is pinned); once the leader is reaped, the
 * group is kept while a member lives and forgotten when it empties; a
 * group read back from a record (not our child) whose leader's pid now
 * has another start time is forgotten, never signalled.
 *
 * Each test forks its own processes and reaps every one of them.
 */
#include "proctrack.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static struct proctrack pt;
static struct proctrack_set set;

static void
setup(void)
{
	int subreaper = 0;

	/* Makes this process a subreaper too: grandchildren come back here. */
	cr_assert_eq(proctrack_init(&pt, "pgroup", "auto", "ut"), 0);
	cr_assert_eq(prctl(PR_GET_CHILD_SUBREAPER, &subreaper), 0);
	cr_assert_eq(
	    subreaper, 1, "a member would not come back to be reaped");
	cr_assert_eq(proctrack_set_create(&pt, "s-1", 1, &set), 0);
}

static void
teardown(void)
{
	proctrack_set_destroy(&set);
	proctrack_fini(&pt);
}

TestSuite(pgroup, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers ------------------------------------------------------------ */

/* Blocks until fd's write end is closed, then exits. */
_Noreturn static void
wait_for_eof_and_exit(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

struct group {
	pid_t leader;
	pid_t member; /* the leader's child, in its group; 0: none */
	int leader_go; /* close: the leader exits */
	int member_go; /* close: the member exits */
};

/* Forks a leader of a new process group and, with_member, its child in the
 * same group; both wait for their pipe to close. */
static struct group
group_start(bool with_member)
{
	int lp[2], mp[2], ready[2];
	struct group g = { 0 };

	cr_assert_eq(pipe(lp), 0);
	cr_assert_eq(pipe(mp), 0);
	cr_assert_eq(pipe(ready), 0);
	g.leader = fork();
	cr_assert_geq(g.leader, 0);
	if (g.leader == 0) {
		pid_t m = 0;

		/* Only the test holds the write ends, or no EOF would come. */
		close(lp[1]);
		close(mp[1]);
		setpgid(0, 0);
		if (with_member && (m = fork()) == 0)
			wait_for_eof_and_exit(mp[0]);
		(void)!write(ready[1], &m, sizeof(m));
		wait_for_eof_and_exit(lp[0]);
	}
	setpgid(g.leader, g.leader); /* either side may run first */
	close(lp[0]);
	close(mp[0]);
	close(ready[1]);
	cr_assert_eq(read(ready[0], &g.member, sizeof(g.member)),
	    (ssize_t)sizeof(g.member));
	close(ready[0]);
	if (with_member)
		cr_assert_gt(g.member, 0, "the member's fork failed");
	g.leader_go = lp[1];
	g.member_go = mp[1];
	return g;
}

/* Lets pid's process exit (closing go) and reaps it; tells the set, as
 * the agent's loop does after each batch of reaps. */
static void
end_and_reap(pid_t pid, int go)
{
	close(go);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	proctrack_set_reaped(&set, pid);
	proctrack_set_prune(&set);
}

/* ---- tests -------------------------------------------------------------- */

Test(pgroup, a_group_outlives_its_reaped_leader_while_a_member_lives)
{
	struct group g = group_start(true);

	proctrack_set_add(
	    &set, 0, g.leader, proctrack_start_ticks(g.leader), true);
	cr_assert_not(proctrack_set_empty(&set));

	end_and_reap(g.leader, g.leader_go);
	cr_assert_not(proctrack_set_empty(&set), "the member still lives");
	cr_assert_eq(proctrack_set_group(&set, 0), g.leader);

	end_and_reap(g.member, g.member_go);
	cr_assert(proctrack_set_empty(&set));
	cr_assert_eq(proctrack_set_group(&set, 0), 0,
	    "an empty group is "
	    "forgotten");
}

Test(pgroup, a_group_led_by_our_unreaped_child_is_trusted_without_a_look)
{
	struct group g = group_start(false);

	/* A wrong start time would make an unpinned group a stranger's. */
	proctrack_set_add(
	    &set, 0, g.leader, proctrack_start_ticks(g.leader) + 1, true);
	cr_assert_not(proctrack_set_empty(&set));
	cr_assert_eq(proctrack_set_group(&set, 0), g.leader);

	end_and_reap(g.leader, g.leader_go);
	cr_assert(proctrack_set_empty(&set));
	cr_assert_eq(proctrack_set_group(&set, 0), 0);
	close(g.member_go);
}

Test(pgroup, a_read_back_group_whose_leader_changed_is_forgotten)
{
	struct group g = group_start(false);

	/* As a record read back after a restart names it, with the start
	 * time of a leader that is not the process now holding the pid. */
	proctrack_set_add(
	    &set, 0, g.leader, proctrack_start_ticks(g.leader) + 1, false);
	cr_assert(proctrack_set_empty(&set), "the group is a stranger's");
	cr_assert_eq(proctrack_set_group(&set, 0), 0);
	proctrack_set_kill(&set); /* must not reach the stranger */
	cr_assert_eq(kill(g.leader, 0), 0);

	end_and_reap(g.leader, g.leader_go);
	close(g.member_go);
}
