/*
 * Nothing that happens to the agent loses track of a worker: a stopped
 * agent leaves its sessions running and the next one re-adopts them; an
 * agent killed in the middle of a close finishes it after a restart; and
 * processes the kill cannot end mark the node unhealthy until an operator
 * clears it. Real agents, real xlsim workers, real cgroups.
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 8000

static struct harness_agent agent;
static char session[64];

/* Whatever a test leaves behind goes, pass or fail. */
static void
clean_up(void)
{
	harness_agent_kill(&agent);
	if (session[0] != '\0')
		harness_session_kill(session);
}

TestSuite(restart, .fini = clean_up, .timeout = 90);

/* Opens session (a fresh id) with n workers of profile, all running. */
static void
open_running(const char *profile, uint32_t n)
{
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("rs", session, sizeof(session));
	r = ask_open(agent.url, session, profile, n, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, session, (int)n, WAIT_MS));
	cr_assert_eq(harness_session_procs(session), (int)n);
}

/* The workers status lists for session; fills pids (n of them). */
static void
worker_pids(pid_t *pids, uint32_t n)
{
	struct proto_msg h;
	struct proto_reply r = ask_status(agent.url, session, &h);

	cr_assert_eq(r.code, PROTO_CODE_OK, "status: %s", r.msg);
	cr_assert_eq(r.nsessions, 1);
	cr_assert_eq(r.sessions[0].nworkers, n);
	for (uint32_t i = 0; i < n; i++)
		pids[i] = r.sessions[0].workers[i].pid;
	proto_msg_free(&h);
}

/* Waits until status of session says not_found (its close completed). */
static bool
wait_session_gone(int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		struct proto_msg h;
		enum proto_code code = ask_status(agent.url, session, &h).code;

		proto_msg_free(&h);
		if (code == PROTO_CODE_NOT_FOUND)
			return true;
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(20);
	}
}

/* Files in the agent's sessions directory: a closed session's record and
 * the spare its stores keep (state.c) must both be gone. */
static int
session_files(void)
{
	char path[PATH_MAX + 32];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/state/sessions", agent.dir);
	cr_assert_not_null(d = opendir(path), "%s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(restart, sigterm_leaves_workers_and_the_next_agent_readopts_them)
{
	struct proto_msg h;
	struct proto_reply r;
	pid_t pids[2];
	int st;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rk", NULL), 0);
	open_running("xl", 2);
	worker_pids(pids, 2);

	st = harness_agent_stop(&agent, 15000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	cr_assert_eq(
	    harness_session_procs(session), 2, "workers must survive");
	/* One worker ends while no agent watches it. */
	cr_assert_eq(kill(pids[1], SIGKILL), 0);
	cr_assert(harness_wait_procs(session, 1, WAIT_MS));

	cr_assert_eq(harness_agent_restart(&agent), 0);
	r = ask_status(agent.url, session, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "status: %s", r.msg);
	cr_assert_eq(r.nsessions, 1);
	cr_assert_str_eq(r.sessions[0].profile, "xl");
	cr_assert_eq(r.sessions[0].workers[0].pid, pids[0]);
	cr_assert_eq(r.sessions[0].workers[0].state, PROTO_W_RUNNING);
	cr_assert_eq(r.sessions[0].workers[1].state, PROTO_W_EXITED);
	cr_assert_eq(r.sessions[0].workers[1].exit_status, -1,
	    "how it ended is unknown to the new agent");
	proto_msg_free(&h);

	r = ask_close(agent.url, session, 0, 8000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.workers, 2);
	cr_assert_eq(r.counts.remaining, 0);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(session), 0);
	cr_assert(wait_session_gone(WAIT_MS));
	cr_assert_eq(session_files(), 0, "the record or its spare is left");
}

Test(restart, adopted_worker_that_ends_is_seen_without_a_close)
{
	pid_t pid;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rw", NULL), 0);
	open_running("xl", 1);
	worker_pids(&pid, 1);
	cr_assert_eq(harness_agent_stop(&agent, 15000), 0, "exit status 0");
	cr_assert_eq(harness_agent_restart(&agent), 0);
	/* Not the new agent's child: it learns of the end from the pidfd. */
	cr_assert_eq(kill(pid, SIGTERM), 0);
	for (int64_t end = util_now_ms() + WAIT_MS;; harness_nap_ms(20)) {
		struct proto_msg h;
		struct proto_reply r = ask_status(agent.url, session, &h);
		enum proto_wstate state;

		cr_assert_eq(r.code, PROTO_CODE_OK, "status: %s", r.msg);
		state = r.sessions[0].workers[0].state;

		proto_msg_free(&h);
		if (state == PROTO_W_EXITED)
			break;
		cr_assert_lt(util_now_ms(), end, "state still %d", state);
	}
}

/* True once the agent's log holds text (its stderr goes to agent.log). */
static bool
agent_logged(const char *text)
{
	return harness_agent_logged(
	    &agent, (const char *const[]) { text, NULL });
}

Test(restart, a_close_while_the_agent_stops_is_refused_not_lost)
{
	struct proto_msg req = { .type = PROTO_CLOSE }, h;
	struct proto_reply r;
	char closing[64];
	int64_t end;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rr", NULL), 0);
	/* closing: SIGTERM-deaf, so its close keeps the agent 1 s (grace). */
	open_running("xl-ignore", 1);
	snprintf(closing, sizeof(closing), "%s", session);
	req.u.close.session = closing;
	req.u.close.deadline_ms = 8000;
	req.op = util_random_u64();
	cr_assert_neq(harness_request(agent.url, &req, 100, &h), 0);
	open_running("xl", 1);
	kill(agent.pid, SIGTERM);
	for (end = util_now_ms() + WAIT_MS; !agent_logged("left running");
	     harness_nap_ms(20))
		cr_assert_lt(util_now_ms(), end, "agent never let go");
	/* The stopping agent no longer has it, but it is not closed. */
	r = ask_close(agent.url, session, 0, 8000, &h);
	cr_assert_eq(r.code, PROTO_CODE_REFUSED, "close: %s", r.msg);
	proto_msg_free(&h);
	cr_assert_eq(harness_agent_stop(&agent, 15000), 0, "exit status 0");
	cr_assert_eq(harness_session_procs(closing), 0, "its close finished");
	cr_assert_eq(harness_session_procs(session), 1, "this one was left");
	cr_assert_eq(harness_agent_restart(&agent), 0);
	r = ask_close(agent.url, session, 0, 8000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(session), 0);
}

/* A worker restarted by the new agent joins the session's cgroup too, so
 * the close still reaches it and everything it forks. */
Test(restart, a_worker_restarted_after_readoption_is_still_tracked)
{
	char cfg[PATH_MAX + 32], arg[PATH_MAX + 48], cgroup[256];
	const char *extra[] = { arg, NULL };
	struct proto_msg h;
	struct proto_reply r;
	pid_t pid, again = 0;
	FILE *f;

	snprintf(cfg, sizeof(cfg), "/tmp/hpcxl-test-always-%d.ini", getpid());
	cr_assert_not_null(f = fopen(cfg, "w"));
	fprintf(f, "[profile.xl-always]\ncommand = %s\nrestart = always\n",
	    harness_bin("xlsim"));
	cr_assert_eq(fclose(f), 0);
	snprintf(arg, sizeof(arg), "--config=%s", cfg);
	cr_assert_eq(harness_agent_start_keeping(&agent, "ra", extra), 0);
	open_running("xl-always", 1);
	worker_pids(&pid, 1);
	cr_assert_eq(harness_agent_stop(&agent, 15000), 0, "exit status 0");
	cr_assert_eq(harness_agent_restart(&agent), 0);
	unlink(cfg);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	/* Restarted after the 1 s backoff. */
	for (int64_t end = util_now_ms() + WAIT_MS; again == 0 || again == pid;
	     harness_nap_ms(50)) {
		cr_assert_lt(util_now_ms(), end, "never restarted");
		r = ask_status(agent.url, session, &h);
		if (r.sessions[0].workers[0].state == PROTO_W_RUNNING)
			again = r.sessions[0].workers[0].pid;
		proto_msg_free(&h);
	}
	r = ask_type(agent.url, PROTO_PING, &h);
	if (strcmp(r.backend, "cgroup2") == 0) {
		harness_proc_cgroup(again, cgroup, sizeof(cgroup));
		cr_assert(strstr(cgroup, session) != NULL,
		    "restarted worker is in cgroup %s", cgroup);
	}
	proto_msg_free(&h);
	r = ask_close(agent.url, session, 0, 8000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.remaining, 0);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(session), 0);
}

Test(restart, sigkill_in_the_middle_of_a_close_then_restart_completes_it)
{
	struct proto_msg req = { .type = PROTO_CLOSE }, h;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rc", NULL), 0);
	/* They ignore SIGTERM: the close waits out the 1 s grace. */
	open_running("xl-ignore", 2);
	req.op = util_random_u64();
	req.u.close.session = session;
	req.u.close.deadline_ms = 8000;
	/* No reply within 200 ms: the close is under way, in its grace. */
	cr_assert_neq(harness_request(agent.url, &req, 200, &h), 0);
	cr_assert_eq(harness_session_procs(session), 2);
	harness_agent_kill(&agent);
	cr_assert_eq(harness_session_procs(session), 2);

	/* Nobody asks again: the new agent finishes the close by itself. */
	cr_assert_eq(harness_agent_restart(&agent), 0);
	cr_assert(harness_wait_procs(session, 0, WAIT_MS),
	    "%d process(es) left", harness_session_procs(session));
	cr_assert(wait_session_gone(WAIT_MS));
}

Test(restart, a_session_of_an_earlier_boot_is_dropped)
{
	char path[PATH_MAX + 64];
	struct proto_msg h;
	struct proto_reply r;
	FILE *f;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rb", NULL), 0);
	harness_agent_kill(&agent);
	snprintf(
	    path, sizeof(path), "%s/state/sessions/old-boot.json", agent.dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fprintf(f,
	    "{\"format\":1,\"boot_id\":\"not-this-boot\",\"session\":"
	    "\"old-boot\",\"profile\":\"xl\",\"workbook\":null,\"phase\":"
	    "\"running\",\"lease_end_ms\":0,\"close_start_ms\":0,"
	    "\"grace_end_ms\":0,\"workers\":[]}");
	fclose(f);
	cr_assert_eq(harness_agent_restart(&agent), 0);
	r = ask_status(agent.url, "old-boot", &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND);
	proto_msg_free(&h);
	cr_assert_eq(access(path, F_OK), -1, "the stale record must go");
	strcat(path, ".bad");
	cr_assert_eq(access(path, F_OK), -1, "dropped, not set aside");
}

Test(restart, a_broken_record_is_set_aside_and_the_agent_starts)
{
	char path[PATH_MAX + 64], bad[PATH_MAX + 80];
	struct proto_msg h;
	FILE *f;

	cr_assert_eq(harness_agent_start_keeping(&agent, "rx", NULL), 0);
	harness_agent_kill(&agent);
	snprintf(path, sizeof(path), "%s/state/sessions/junk.json", agent.dir);
	snprintf(bad, sizeof(bad), "%s.bad", path);
	cr_assert_not_null(f = fopen(path, "w"));
	fprintf(f, "{\"format\":1, \"session\": 42");
	fclose(f);
	cr_assert_eq(harness_agent_restart(&agent), 0);
	cr_assert_eq(ask_type(agent.url, PROTO_PING, &h).code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert_eq(access(bad, F_OK), 0, "kept for a human to read");
	cr_assert_eq(access(path, F_OK), -1);
}

/* ---- unkillable processes ------------------------------------------------
 *
 * A task in a frozen cgroup-v1 freezer cannot die, not even of SIGKILL,
 * until it is thawed: a real unkillable process, under the test's control.
 */
static char freezer[PATH_MAX];

static bool
freezer_write(const char *file, const char *text)
{
	char path[PATH_MAX + 32];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", freezer, file);
	if ((f = fopen(path, "w")) == NULL)
		return false;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static void
thaw_and_remove(void)
{
	/* A test skipped for want of a freezer still has an agent (started
	 * keeping: its sessions outlive a SIGTERM) and a session to end. */
	if (freezer[0] == '\0') {
		clean_up();
		return;
	}
	freezer_write("freezer.state", "THAWED");
	clean_up();
	/* rmdir succeeds once the killed tasks have left. */
	for (int64_t end = util_now_ms() + WAIT_MS;
	     rmdir(freezer) != 0 && errno == EBUSY && util_now_ms() < end;)
		harness_nap_ms(20);
	freezer[0] = '\0';
}

/* Freezes pid in a v1 freezer cgroup of its own; false when there is none. */
static bool
freeze(pid_t pid)
{
	char text[32];

	snprintf(
	    freezer, sizeof(freezer), "/sys/fs/cgroup/freezer/%s", session);
	if (mkdir(freezer, 0755) != 0) {
		freezer[0] = '\0';
		return false;
	}
	snprintf(text, sizeof(text), "%d", (int)pid);
	return freezer_write("cgroup.procs", text)
	    && freezer_write("freezer.state", "FROZEN");
}

static const char *
ping_unhealthy(struct proto_msg *h)
{
	return ask_type(agent.url, PROTO_PING, h).unhealthy;
}

static void
wait_unhealthy(void)
{
	for (int64_t end = util_now_ms() + WAIT_MS;; harness_nap_ms(20)) {
		struct proto_msg h;
		bool marked = ping_unhealthy(&h) != NULL;

		proto_msg_free(&h);
		if (marked)
			return;
		cr_assert_lt(util_now_ms(), end, "never marked unhealthy");
	}
}

/*
 * What an ops script sees: `hpcxl --nodes URL --json CMD`; returns the one
 * node row and checks the exit status.
 */
static json_t *
cli_node(const char *cmd, int want_exit)
{
	const char *argv[] = { harness_bin("hpcxl"), "--nodes", agent.url,
		"--json", cmd, NULL };
	json_t *root, *node;
	json_error_t jerr;
	int64_t ms;
	char *out = NULL;
	int st;

	cr_assert_eq(harness_run(argv, &out, &st, &ms), 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == want_exit,
	    "hpcxl %s: status 0x%x, output %s", cmd, st, out);
	root = json_loads(out, 0, &jerr);
	cr_assert_not_null(root, "not JSON: %s", out);
	free(out);
	node = json_array_get(json_object_get(root, "nodes"), 0);
	cr_assert_not_null(node);
	json_incref(node);
	json_decref(root);
	return node;
}

TestSuite(unkillable, .fini = thaw_and_remove, .timeout = 90);

Test(unkillable, survivors_of_the_kill_mark_the_node_until_cleared)
{
	static const char *const args[]
	    = { "--unkillable-limit", "300", NULL };
	struct proto_msg h;
	struct proto_reply r;
	char other[64];
	json_t *node;
	pid_t pid;

	cr_assert_eq(harness_agent_start_keeping(&agent, "ru", args), 0);
	open_running("xl", 1);
	worker_pids(&pid, 1);
	if (!freeze(pid))
		cr_skip_test("no writable cgroup-v1 freezer on this machine");

	r = ask_close(agent.url, session, 0, 1500, &h);
	cr_assert_eq(r.code, PROTO_CODE_PARTIAL, "close: %s", r.msg);
	cr_assert_geq(r.counts.remaining, 1);
	proto_msg_free(&h);
	wait_unhealthy();

	/* Refused while marked, with the reason; and the mark survives an
	 * agent restart. */
	harness_agent_kill(&agent);
	cr_assert_eq(harness_agent_restart(&agent), 0);
	cr_assert_not_null(ping_unhealthy(&h));
	cr_assert(strstr(h.u.reply.unhealthy, session) != NULL,
	    "reason '%s' names the session", h.u.reply.unhealthy);
	proto_msg_free(&h);
	harness_unique("rs", other, sizeof(other));
	r = ask_open(agent.url, other, "xl", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_REFUSED, "open: %s", r.msg);
	cr_assert_not_null(r.unhealthy);
	proto_msg_free(&h);
	node = cli_node("ping", 1);
	cr_assert(json_is_false(json_object_get(node, "healthy")));
	cr_assert(json_is_string(json_object_get(node, "unhealthy")));
	json_decref(node);

	/* Thawed, the process dies of the pending kill; the close ends. */
	cr_assert(freezer_write("freezer.state", "THAWED"));
	cr_assert(harness_wait_procs(session, 0, WAIT_MS));
	cr_assert(wait_session_gone(WAIT_MS));

	/* Still marked until an operator clears it. */
	cr_assert_not_null(ping_unhealthy(&h));
	proto_msg_free(&h);
	node = cli_node("clear-unhealthy", 0);
	cr_assert_str_eq(
	    json_string_value(json_object_get(node, "msg")), "cleared");
	json_decref(node);
	cr_assert_null(ping_unhealthy(&h));
	proto_msg_free(&h);
	node = cli_node("ping", 0);
	cr_assert(json_is_true(json_object_get(node, "healthy")));
	json_decref(node);
	r = ask_type(agent.url, PROTO_CLEAR, &h);
	cr_assert_str_eq(r.msg, "healthy");
	proto_msg_free(&h);

	snprintf(session, sizeof(session), "%s", other);
	r = ask_open(agent.url, session, "xl", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open after clear: %s", r.msg);
	proto_msg_free(&h);
}
