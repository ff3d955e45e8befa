/*
 * The agent, end to end: the real hpcxl-agent binary, real xlsim workers,
 * real nng sockets. Each test starts its own agent with a unique node name
 * and uses unique session ids, so tests may run side by side.
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLOSE_DEADLINE_MS 8000
#define PROCS_TIMEOUT_MS 5000

static struct harness_agent agent;

static void
start_agent(void)
{
	cr_assert_eq(harness_agent_start(&agent, "ta", NULL), 0,
	    "agent did not start (its log is above)");
}

static void
stop_agent(void)
{
	harness_agent_stop(&agent, 15000);
}

static void
new_session(char *id, size_t len)
{
	harness_unique("s", id, len);
}

/*
 * Opens a new session (its id goes to id) of n workers of profile and waits
 * until procs processes of it run.
 */
static void
open_running(char *id, size_t len, const char *profile, uint32_t n, int procs)
{
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, len);
	r = ask_open(agent.url, id, profile, n, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open %s: %s", profile, r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, procs, PROCS_TIMEOUT_MS));
}

/* Closes id; the reply must be "ok" and no process of id may be left. */
static struct proto_counts
close_all_gone(const char *id)
{
	struct proto_msg h;
	struct proto_reply r
	    = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	struct proto_counts c = r.counts;

	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.remaining, 0);
	/* The reply comes once the set is empty: nothing may be left now. */
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
	return c;
}

static bool
backend_is_cgroup2(void)
{
	struct proto_msg ping = { .type = PROTO_PING }, h;
	bool yes = strcmp(ask(agent.url, &ping, &h).backend, "cgroup2") == 0;

	proto_msg_free(&h);
	return yes;
}

TestSuite(agent, .init = start_agent, .fini = stop_agent, .timeout = 60);

Test(agent, ping_names_node_version_and_backend)
{
	struct proto_msg req = { .type = PROTO_PING }, h;
	struct proto_reply r = ask(agent.url, &req, &h);

	cr_assert_eq(r.code, PROTO_CODE_OK);
	cr_assert_str_eq(r.node, agent.node);
	cr_assert_not_null(r.version);
	cr_assert_not_null(r.backend);
	cr_assert(strcmp(r.backend, "cgroup2") == 0
	    || strcmp(r.backend, "pgroup") == 0);
	proto_msg_free(&h);
}

/* Where pid's descriptor fd points ("" when it has none). */
static void
fd_target(pid_t pid, int fd, char *out, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
}

/* No socket, pipe or other descriptor of the agent reaches a worker. */
static bool
holds_a_socket_or_pipe(pid_t pid)
{
	char target[PATH_MAX];

	for (int fd = 0; fd < 1024; fd++) {
		fd_target(pid, fd, target, sizeof(target));
		if (strncmp(target, "socket:", 7) == 0
		    || strncmp(target, "pipe:", 5) == 0
		    || strncmp(target, "anon_inode:[pidfd]", 18) == 0)
			return true;
	}
	return false;
}

Test(agent, open_spawns_workers_with_their_environment)
{
	char id[64], val[256];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 4, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open failed: %s", r.msg);
	cr_assert_eq(r.nsessions, 1);
	cr_assert_eq(r.sessions[0].nworkers, 4);
	cr_assert(harness_wait_procs(id, 4, PROCS_TIMEOUT_MS));
	for (uint32_t i = 0; i < 4; i++) {
		pid_t pid = r.sessions[0].workers[i].pid;
		char want[16];

		cr_assert_gt(pid, 0);
		cr_assert_eq(
		    harness_proc_env(pid, "HPCXL_NODE", val, sizeof(val)), 0);
		cr_assert_str_eq(val, agent.node);
		cr_assert_eq(
		    harness_proc_env(pid, "HPCXL_WORKER", val, sizeof(val)),
		    0);
		snprintf(
		    want, sizeof(want), "%u", r.sessions[0].workers[i].index);
		cr_assert_str_eq(val, want);
		cr_assert_eq(
		    harness_proc_env(pid, "HPCXL_WORKBOOK", val, sizeof(val)),
		    0);
		cr_assert_str_eq(val, "/data/book.xlsx");
		/* Its stdout and stderr are its log, nothing else of the
		 * agent's came with it (the child starts in the agent's
		 * descriptor table, spawn_clone.h). */
		fd_target(pid, 1, val, sizeof(val));
		cr_assert(strstr(val, id) != NULL, "stdout: %s", val);
		fd_target(pid, 2, val, sizeof(val));
		cr_assert(strstr(val, id) != NULL, "stderr: %s", val);
		cr_assert_not(holds_a_socket_or_pipe(pid));
	}
	/* ... and the agent's own stderr is still its log. */
	fd_target(agent.pid, 2, val, sizeof(val));
	cr_assert(strstr(val, "agent.log") != NULL, "agent stderr: %s", val);
	proto_msg_free(&h);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

Test(agent, close_ends_workers_and_their_children)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	open_running(id, sizeof(id), "xl-children", 3, 9);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert(r.has_counts);
	cr_assert_eq(r.counts.workers, 3);
	cr_assert_eq(r.counts.exited + r.counts.killed, 3);
	cr_assert_eq(r.counts.remaining, 0);
	/* The reply comes once the set is empty: nothing may be left now. */
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
}

Test(agent, sigterm_ignoring_worker_is_killed_after_grace)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl-ignore", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	/* Until xlsim is ready, SIGTERM would still kill it by default. */
	cr_assert(harness_wait_ready(&agent, id, 2, PROCS_TIMEOUT_MS));
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.killed, 2, "killed %u exited %u",
	    r.counts.killed, r.counts.exited);
	cr_assert_eq(r.counts.exited, 0);
	/* It took the grace period (1000 ms in the harness) to kill them. */
	cr_assert_geq(r.counts.elapsed_ms, 1000);
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
	/* Logged before the reply: one line for the close, with its counts;
	 * the workers' ends one by one only with --verbose. */
	cr_assert(harness_agent_logged(&agent,
	    (const char *const[]) { id, "closed in", "of 2 worker(s), 0 ended",
	        "2 were killed", NULL }));
	if (getenv("HPCXL_TEST_VERBOSE") == NULL) /* harness: --verbose */
		cr_assert_not(harness_agent_logged(&agent,
		    (const char *const[]) { id, "ended, status", NULL }));
}

Test(agent, stopped_worker_is_continued_and_closed)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;
	pid_t pid;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	pid = r.sessions[0].workers[0].pid;
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, 1, PROCS_TIMEOUT_MS));
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.workers, 1);
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
}

Test(agent, detached_grandchild_cannot_escape)
{
	char id[64];

	if (!backend_is_cgroup2())
		cr_skip_test("pgroup backend: setsid() escapes by design");
	open_running(id, sizeof(id), "xl-detach", 2, 4);
	close_all_gone(id);
}

Test(agent, fork_storm_during_the_close_leaves_nothing)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl-storm", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	/* The storm is under way once a worker has more than one process. */
	cr_assert(harness_wait_ready(&agent, id, 2, PROCS_TIMEOUT_MS));
	close_all_gone(id);
}

Test(agent, close_after_agent_was_killed_still_ends_everything)
{
	char id[64];

	if (!backend_is_cgroup2())
		cr_skip_test(
		    "pgroup backend: nothing to adopt after a restart");
	open_running(id, sizeof(id), "xl-children", 2, 6);
	harness_agent_kill(&agent);
	cr_assert_eq(
	    harness_session_procs(id), 6, "workers died with the agent");
	cr_assert_eq(harness_agent_restart(&agent), 0);
	close_all_gone(id);
}

Test(agent, second_close_and_unknown_session_are_not_found)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&h);
	r = ask_close(agent.url, "never-opened", 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	cr_assert_str_eq(r.node, agent.node);
	proto_msg_free(&h);
}

Test(agent, repeated_op_gets_the_same_reply)
{
	char id[64];
	struct proto_msg h1, h2;
	struct proto_reply r1, r2;
	uint64_t op = util_random_u64();

	new_session(id, sizeof(id));
	r1 = ask_open(agent.url, id, "xl", 2, 0, &h1);
	cr_assert_eq(r1.code, PROTO_CODE_OK);
	proto_msg_free(&h1);
	r1 = ask_close(agent.url, id, op, CLOSE_DEADLINE_MS, &h1);
	r2 = ask_close(agent.url, id, op, CLOSE_DEADLINE_MS, &h2);
	cr_assert_eq(r1.code, PROTO_CODE_OK);
	cr_assert_eq(r2.code, PROTO_CODE_OK, "a retry must not see not_found");
	cr_assert_eq(r2.counts.workers, r1.counts.workers);
	cr_assert_eq(r2.counts.elapsed_ms, r1.counts.elapsed_ms);
	proto_msg_free(&h1);
	proto_msg_free(&h2);
}

Test(agent, status_lists_running_workers)
{
	char id[64];
	struct proto_msg h, sh;
	struct proto_msg st = { .type = PROTO_STATUS };
	struct proto_reply r, s;
	const struct proto_session *found = NULL;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 3, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	st.u.status.session = id;
	s = ask(agent.url, &st, &sh);
	cr_assert_eq(s.code, PROTO_CODE_OK);
	cr_assert(s.has_sessions);
	for (uint32_t i = 0; i < s.nsessions; i++) {
		if (strcmp(s.sessions[i].session, id) == 0)
			found = &s.sessions[i];
	}
	cr_assert_not_null(found);
	cr_assert_str_eq(found->profile, "xl");
	cr_assert_eq(found->nworkers, 3);
	for (uint32_t i = 0; i < 3; i++) {
		cr_assert_eq(
		    found->workers[i].pid, r.sessions[0].workers[i].pid);
		cr_assert_eq(found->workers[i].state, PROTO_W_RUNNING);
		cr_assert_eq(found->workers[i].exit_status, -1);
	}
	proto_msg_free(&sh);
	proto_msg_free(&h);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	proto_msg_free(&h);
	st.op
	    = 0; /* a new operation: the same op would get the cached reply */
	st.u.status.session = id;
	s = ask(agent.url, &st, &sh);
	cr_assert_eq(s.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&sh);
}

Test(agent, crashed_worker_shows_its_exit_status)
{
	char id[64];
	struct proto_msg h, sh;
	struct proto_msg st = { .type = PROTO_STATUS };
	struct proto_reply r, s;
	int64_t deadline = util_now_ms() + PROCS_TIMEOUT_MS;
	bool ended = false;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl-crash", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	st.u.status.session = id;
	while (!ended && util_now_ms() < deadline) {
		st.op = 0;
		s = ask(agent.url, &st, &sh);
		cr_assert_eq(s.nsessions, 1);
		ended = s.sessions[0].workers[0].state == PROTO_W_EXITED;
		if (ended) {
			int es = s.sessions[0].workers[0].exit_status;

			cr_assert(WIFEXITED(es));
			cr_assert_eq(WEXITSTATUS(es), 3);
		}
		proto_msg_free(&sh);
		if (!ended)
			harness_nap_ms(20);
	}
	cr_assert(ended, "the crash was never reported");
	/* A running session's worker that ends is news: logged at info. */
	cr_assert(harness_agent_logged(&agent,
	    (const char *const[]) {
	        id, "worker 0", "ended, status 0x300", NULL }));
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	cr_assert_eq(r.counts.exited, 1);
	proto_msg_free(&h);
}

Test(agent, failing_worker_is_restarted_up_to_the_limit, .timeout = 60)
{
	char id[64];
	struct proto_msg h, sh, st = { .type = PROTO_STATUS };
	struct proto_reply r, s;
	int64_t deadline = util_now_ms() + 20000;
	pid_t first_pid;
	bool done = false;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl-restart", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	first_pid = r.sessions[0].workers[0].pid;
	proto_msg_free(&h);
	st.u.status.session = id;
	/* Restarts come after 1 s, then 2 s; then the worker stays down. */
	while (!done && util_now_ms() < deadline) {
		const struct proto_worker *w;

		st.op = 0;
		s = ask(agent.url, &st, &sh);
		cr_assert_eq(s.nsessions, 1);
		w = &s.sessions[0].workers[0];
		done = w->restarts == 2 && w->state == PROTO_W_EXITED;
		if (done) {
			cr_assert_neq(w->pid, first_pid, "never restarted");
			cr_assert(WIFEXITED(w->exit_status));
			cr_assert_eq(WEXITSTATUS(w->exit_status), 3);
		}
		cr_assert_leq(w->restarts, 2, "restarted past max_restarts");
		proto_msg_free(&sh);
		if (!done)
			harness_nap_ms(50);
	}
	cr_assert(done, "the worker was not restarted twice");
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

Test(agent, bad_opens_get_errors_and_leave_nothing)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "no-such-profile", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_ERROR);
	cr_assert_not_null(strstr(r.msg, "profile"));
	proto_msg_free(&h);
	r = ask_open(agent.url, id, "broken", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_ERROR);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(id), 0);
	r = ask_open(agent.url, id, "xl", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open after failures: %s", r.msg);
	proto_msg_free(&h);
	r = ask_open(agent.url, id, "xl", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_ERROR, "a duplicate id must fail");
	proto_msg_free(&h);
	/* The failed duplicate must not have touched the first session. */
	cr_assert(harness_wait_procs(id, 2, PROCS_TIMEOUT_MS));
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

Test(agent, lapsed_lease_closes_the_session_without_a_close)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl-children", 2, 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, 6, PROCS_TIMEOUT_MS));
	/* Nobody renews or closes: the agent must end it by itself. */
	cr_assert(harness_wait_procs(id, 0, 1000 + 1000 + PROCS_TIMEOUT_MS),
	    "the session outlived its lease");
	/* Until the agent has seen the last one go, a close would join the
	 * lease's close and answer "ok": wait for the agent, then a close
	 * must find nothing to do. */
	cr_assert(harness_wait_session_gone(agent.url, id, PROCS_TIMEOUT_MS),
	    "the agent kept the session after its processes were gone");
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&h);
}

Test(agent, renew_sets_and_refuses_leases)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	r = ask_renew(agent.url, "never-opened", 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&h);
	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 1, 3600 * 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, 1, PROCS_TIMEOUT_MS));
	/* Shortening the hour-long lease to 200 ms makes it lapse now. */
	r = ask_renew(agent.url, id, 200, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "renew: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, 0, 200 + 1000 + PROCS_TIMEOUT_MS));
	/* Still closing, a renew would be refused: wait for the agent. */
	cr_assert(harness_wait_session_gone(agent.url, id, PROCS_TIMEOUT_MS),
	    "the agent kept the session after its processes were gone");
	r = ask_renew(agent.url, id, 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&h);
}

Test(agent, renew_with_zero_removes_the_lease)
{
	char id[64];
	struct proto_msg h, sh, st = { .type = PROTO_STATUS };
	struct proto_reply r;

	new_session(id, sizeof(id));
	r = ask_open(agent.url, id, "xl", 1, 3600 * 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
	r = ask_renew(agent.url, id, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	cr_assert_str_eq(r.msg, "lease removed");
	proto_msg_free(&h);
	st.u.status.session = id;
	r = ask(agent.url, &st, &sh);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	cr_assert_eq(r.sessions[0].workers[0].state, PROTO_W_RUNNING);
	proto_msg_free(&sh);
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

/* Malformed frames: each gets bad_request, and the agent keeps serving. */
Test(agent, hostile_frames_get_bad_request)
{
	static const unsigned char frames[][12] = {
		{ 0xc1 }, /* reserved byte */
		{ 0x94, 0x01 }, /* truncated */
		{ 0x94, 0x02, 0xa4, 'p', 'i', 'n', 'g', 0x01, 0x80 },
		{ 0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x01, 0x80, 0x00 },
		{ 0xdd, 0xff, 0xff, 0xff, 0xff }, /* huge array */
		{ 0x94, 0x01, 0xa3, 'f', 'o', 'o', 0x01, 0x80 },
	};
	static const size_t lens[] = { 1, 2, 9, 10, 5, 8 };
	struct proto_msg h, ping = { .type = PROTO_PING };
	struct proto_reply r;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		cr_assert_eq(harness_request_raw(agent.url, frames[i], lens[i],
		                 ASK_TIMEOUT_MS, &h),
		    0, "no reply to bad frame %zu", i);
		cr_assert_eq(
		    h.u.reply.code, PROTO_CODE_BAD_REQUEST, "frame %zu", i);
		cr_assert_str_eq(h.u.reply.node, agent.node);
		proto_msg_free(&h);
	}
	r = ask(agent.url, &ping, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

Test(agent, oversized_frame_does_not_stop_the_agent)
{
	size_t len = PROTO_MAX_REQUEST * 2;
	char *big = calloc(1, len);
	struct proto_msg h, ping = { .type = PROTO_PING };
	struct proto_reply r;

	cr_assert_not_null(big);
	/* The pipe is dropped (RECVMAXSZ): no reply, and no crash. */
	cr_assert_neq(harness_request_raw(agent.url, big, len, 500, &h), 0);
	free(big);
	r = ask(agent.url, &ping, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

Test(agent, sigterm_with_close_on_exit_closes_sessions_then_exits_zero)
{
	char id[64];
	int st;

	open_running(id, sizeof(id), "xl-children", 2, 6);
	st = harness_agent_stop(&agent, 15000);
	cr_assert(
	    WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent status 0x%x", st);
	cr_assert_eq(harness_session_procs(id), 0);
}

/* The pgroup backend passes the same close tests (without setsid cases). */
static struct harness_agent pg_agent;

static void
start_pgroup_agent(void)
{
	static const char *const args[] = { "--backend", "pgroup", NULL };

	cr_assert_eq(harness_agent_start(&pg_agent, "tp", args), 0);
}

static void
stop_pgroup_agent(void)
{
	harness_agent_stop(&pg_agent, 15000);
}

TestSuite(pgroup, .init = start_pgroup_agent, .fini = stop_pgroup_agent,
    .timeout = 60);

Test(pgroup, close_ends_workers_children_and_stubborn_ones)
{
	const char *profiles[] = { "xl-children", "xl-ignore" };

	for (size_t i = 0; i < 2; i++) {
		struct proto_msg h;
		struct proto_reply r;
		char id[64];

		new_session(id, sizeof(id));
		r = ask_open(pg_agent.url, id, profiles[i], 2, 0, &h);
		cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
		proto_msg_free(&h);
		cr_assert(
		    harness_wait_procs(id, i == 0 ? 6 : 2, PROCS_TIMEOUT_MS));
		r = ask_close(pg_agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
		cr_assert_eq(r.code, PROTO_CODE_OK, "%s", r.msg);
		cr_assert_eq(r.counts.workers, 2);
		cr_assert_eq(harness_session_procs(id), 0);
		proto_msg_free(&h);
	}
}

Test(pgroup, ping_reports_pgroup)
{
	struct proto_msg h;

	cr_assert_str_eq(
	    ask_type(pg_agent.url, PROTO_PING, &h).backend, "pgroup");
	proto_msg_free(&h);
}

/*
 * Under a sandbox that refuses close_range and unshare (with EPERM, or by
 * killing the caller with SIGSYS as systemd's SystemCallFilter= does), a
 * child cannot take a descriptor table of its own: the agent says so once
 * and gives each child a copy instead, which the child closes down to 0-2.
 */
static void
open_and_close_under_a_filter(bool kill, const char *said)
{
	static const long deny[] = { SYS_close_range, SYS_unshare, -1 };
	struct harness_agent sandboxed;
	struct proto_msg h;
	struct proto_reply r;
	char id[64], target[PATH_MAX];

	if (!harness_can_deny_syscalls())
		cr_skip_test(
		    "cannot install a seccomp filter here (architecture "
		    "or kernel)");
	cr_assert_eq(
	    harness_agent_start_denying(&sandboxed, "sb", deny, kill), 0);
	new_session(id, sizeof(id));
	r = ask_open(sandboxed.url, id, "xl", 3, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	cr_assert(harness_wait_procs(id, 3, PROCS_TIMEOUT_MS));
	for (uint32_t i = 0; i < 3; i++) {
		pid_t pid = r.sessions[0].workers[i].pid;

		fd_target(pid, 2, target, sizeof(target));
		cr_assert(strstr(target, id) != NULL, "stderr: %s", target);
		cr_assert_not(holds_a_socket_or_pipe(pid));
	}
	proto_msg_free(&h);
	fd_target(sandboxed.pid, 2, target, sizeof(target));
	cr_assert(strstr(target, "agent.log") != NULL, "agent: %s", target);
	cr_assert(harness_agent_logged(&sandboxed,
	    (const char *const[]) {
	        "cannot take a descriptor table of its own", said, NULL }));
	r = ask_close(sandboxed.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
	harness_agent_stop(&sandboxed, 15000);
}

Test(agent, a_child_refused_its_own_descriptor_table_gets_a_copy)
{
	open_and_close_under_a_filter(false, "Operation not permitted");
}

Test(agent, a_child_killed_for_its_own_descriptor_table_gets_a_copy)
{
	open_and_close_under_a_filter(true, "killed by a seccomp filter");
}
