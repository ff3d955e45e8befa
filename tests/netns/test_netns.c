/*
 * Many hosts on one machine: each hpcxl-agent in its own network namespace
 * at its own address, the hpcxl CLI in a hub namespace that bridges them
 * (tests/netns/testbed.h). Links can be cut, agents frozen, killed and
 * restarted while a close is under way, and every row of the report must
 * still tell the truth, within the call's deadline.
 *
 * Needs root and iproute2; elsewhere every test is skipped with the reason.
 */
#include "harness.h"
#include "testbed.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define NODES 32
#define MANY_NODES 128
#define MANY_ROUNDS 20
#define WORKERS 2
/* A close that some node cannot answer: the call must end by this. */
#define CLOSE_TIMEOUT_MS 3000
/* How much later than its timeout the library call may return (its own
 * elapsed_ms, the time from the call's start to its return). */
#define CALL_OVERSHOOT_MS 100
/* The CLI process also starts, dials, prints and exits (sanitizers: more). */
#define PROCESS_OVERSHOOT_MS 1500
/* Calls every node can answer. */
#define LONG_TIMEOUT_MS 30000
#define SURVEY_TIMEOUT_MS 5000
#define READY_TIMEOUT_MS 20000
/* How long a CLI may run at most before the test gives up on it. */
#define CLI_LIMIT_MS (LONG_TIMEOUT_MS + 30000)

static struct testbed tb;
static char session[64];
static int last_exit; /* of the last CLI run */

/* ---- the test bed ------------------------------------------------------ */

static void
bed_down(void)
{
	testbed_down(&tb);
}

/* Criterion's fini does not run when a test process dies early: atexit
 * does for exit(), and testbed_sweep_stale() for the rest. */
static void
bed_down_at_exit(void)
{
	testbed_down(&tb);
}

static void
bed_up(int n)
{
	static bool registered;
	const char *why = testbed_unavailable();
	int64_t start = util_now_ms();
	char err[512];

	if (why != NULL)
		cr_skip_test("hpcxl-netns SKIPPED: cannot build the network "
		             "namespace test bed here: %s",
		    why);
	if (!registered && atexit(bed_down_at_exit) == 0)
		registered = true;
	cr_assert_eq(testbed_up(&tb, n, err, sizeof(err)), 0,
	    "test bed of %d nodes: %s", n, err);
	cr_log_info("test bed: %d namespaces and agents up in %lld ms", n,
	    (long long)(util_now_ms() - start));
	harness_unique("nt", session, sizeof(session));
}

TestSuite(netns, .fini = bed_down, .timeout = 300);

/* In the runner, after every test process has ended: whatever a killed
 * test process left behind. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	testbed_sweep_stale();
}

/* ---- reading reports --------------------------------------------------- */

/* obj[key], which must be there with JSON type t. */
static json_t *
field(json_t *obj, const char *key, json_type t)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(v != NULL && json_typeof(v) == t,
	    "\"%s\" is missing or of another type", key);
	return v;
}

#define str_of(obj, key) json_string_value(field(obj, key, JSON_STRING))
#define int_of(obj, key) json_integer_value(field(obj, key, JSON_INTEGER))

/* Row i of a report: one per roster node, in roster order. */
static json_t *
row(json_t *root, int i)
{
	json_t *rows = json_object_get(root, "nodes");

	cr_assert(json_is_array(rows));
	cr_assert_eq(json_array_size(rows), (size_t)tb.n);
	return json_array_get(rows, (size_t)i);
}

static const char *
state_of(json_t *root, int i)
{
	return str_of(row(root, i), "state");
}

/*
 * Ends a CLI run: its exit status must be want_exit (< 0: any, see
 * last_exit); returns the parsed report (json_decref it), its rows checked
 * against the roster.
 */
static json_t *
cli_end(struct testbed_cli *c, int want_exit, int64_t *wall_ms)
{
	json_error_t jerr;
	json_t *root;
	int64_t wall;
	char *out;
	int st;

	cr_assert_eq(testbed_cli_finish(c, CLI_LIMIT_MS, &out, &st, &wall), 0,
	    "hpcxl did not end within %d ms", CLI_LIMIT_MS);
	cr_assert(WIFEXITED(st), "hpcxl died (status %#x)", st);
	root = json_loads(out, 0, &jerr);
	cr_assert_not_null(root, "not JSON (%s):\n%s", jerr.text, out);
	last_exit = WEXITSTATUS(st);
	cr_assert(want_exit < 0 || last_exit == want_exit,
	    "hpcxl exited %d, want %d:\n%s", last_exit, want_exit, out);
	free(out);
	for (int i = 0; i < tb.n; i++)
		cr_assert_str_eq(str_of(row(root, i), "url"), tb.nodes[i].url);
	if (wall_ms != NULL)
		*wall_ms = wall;
	return root;
}

static void
cli_begin(const char *const *args, struct testbed_cli *c)
{
	cr_assert_eq(testbed_cli_start(&tb, args, c), 0, "cannot run hpcxl");
}

/* Runs hpcxl --nodes ROSTER --json ARGS in the hub. */
static json_t *
cli(const char *const *args, int want_exit)
{
	struct testbed_cli c;

	cli_begin(args, &c);
	return cli_end(&c, want_exit, NULL);
}

/* Says which rows are not in one of the states want (a "|"-separated
 * list); "" when all are. Static storage. */
static const char *
rows_not_in(json_t *root, const char *want)
{
	static char text[2048];
	size_t len = 0;
	int bad = 0;

	text[0] = '\0';
	for (int i = 0; i < tb.n; i++) {
		const char *s = state_of(root, i);
		char quoted[64];

		snprintf(quoted, sizeof(quoted), "|%s|", s);
		if (strstr(want, quoted) != NULL)
			continue;
		if (bad++ < 8 && len < sizeof(text))
			len += (size_t)snprintf(text + len, sizeof(text) - len,
			    "\n  %s: %s (%s)", tb.nodes[i].url, s,
			    str_of(row(root, i), "msg"));
	}
	if (bad > 0 && len < sizeof(text))
		snprintf(text + len, sizeof(text) - len,
		    "\n  %d of %d node(s) in all", bad, tb.n);
	return text;
}

/* ---- steps ------------------------------------------------------------- */

/* Opens the session with WORKERS of profile on every node and waits until
 * every worker is ready, in its own node's namespace. */
static void
open_everywhere(const char *profile)
{
	char workers[16], timeout[16];
	const char *args[]
	    = { "open-session", "--profile", profile, "--workers", workers,
		      "--session", session, "--timeout", timeout, NULL };
	json_t *root;

	snprintf(workers, sizeof(workers), "%d", WORKERS);
	snprintf(timeout, sizeof(timeout), "%d", LONG_TIMEOUT_MS);
	root = cli(args, 0);
	cr_assert_str_eq(rows_not_in(root, "|ok|"), "", "open:%s",
	    rows_not_in(root, "|ok|"));
	for (int i = 0; i < tb.n; i++) {
		cr_assert_str_eq(str_of(row(root, i), "node"), tb.nodes[i].ns);
		cr_assert_eq(int_of(row(root, i), "workers"), WORKERS);
	}
	json_decref(root);
	for (int i = 0; i < tb.n; i++) {
		cr_assert(testbed_wait_ready(
		              &tb, i, session, WORKERS, READY_TIMEOUT_MS),
		    "workers of node %d not ready", i);
		cr_assert_eq(testbed_node_procs(&tb, i, session), WORKERS,
		    "node %d: its workers are not in its namespace", i);
	}
	cr_assert_eq(harness_session_procs(session), tb.n * WORKERS);
}

/* A close of the session with a timeout, begun in the background. */
struct close_call {
	char timeout[16];
	const char *args[5];
	struct testbed_cli cli;
};

static void
close_begin(struct close_call *c, int timeout_ms)
{
	snprintf(c->timeout, sizeof(c->timeout), "%d", timeout_ms);
	c->args[0] = "close-session";
	c->args[1] = session;
	c->args[2] = "--timeout";
	c->args[3] = c->timeout;
	c->args[4] = NULL;
	cli_begin(c->args, &c->cli);
}

/* Waits until agent i has begun the close (its log says so). */
static void
wait_close_reached(int i)
{
	char line[128];

	snprintf(line, sizeof(line), "closing session %s ", session);
	cr_assert(testbed_wait_log(&tb, i, line, CLOSE_TIMEOUT_MS),
	    "node %d never began the close", i);
}

/* The call ended by its deadline: the library's own time and the
 * process's wall time. */
static void
assert_deadline_kept(json_t *root, int64_t wall_ms, const char *what)
{
	json_int_t call_ms = int_of(root, "elapsed_ms");

	cr_log_info("%s: call %lld ms, process %lld ms, timeout %d ms", what,
	    (long long)call_ms, (long long)wall_ms, CLOSE_TIMEOUT_MS);
	cr_assert_leq(call_ms, CLOSE_TIMEOUT_MS + CALL_OVERSHOOT_MS,
	    "%s: the call took %lld ms with a %d ms timeout", what,
	    (long long)call_ms, CLOSE_TIMEOUT_MS);
	cr_assert_leq(wall_ms, CLOSE_TIMEOUT_MS + PROCESS_OVERSHOOT_MS,
	    "%s: hpcxl ran %lld ms with a %d ms timeout", what,
	    (long long)wall_ms, CLOSE_TIMEOUT_MS);
}

static void
assert_closed_row(json_t *root, int i)
{
	json_t *r = row(root, i);

	cr_assert_str_eq(str_of(r, "state"), "closed", "node %d: %s (%s)", i,
	    str_of(r, "state"), str_of(r, "msg"));
	cr_assert_str_eq(str_of(r, "node"), tb.nodes[i].ns);
	cr_assert_eq(int_of(r, "workers"), WORKERS);
	cr_assert_eq(int_of(r, "remaining"), 0);
	/* "closed" promises that nothing of the session is left there. */
	cr_assert_eq(testbed_node_procs(&tb, i, session), 0,
	    "node %d said closed, but processes remain", i);
}

/* A node that did not answer: its row has no agent name and says why. */
static void
assert_unreachable_row(json_t *root, int i)
{
	json_t *r = row(root, i);

	cr_assert_str_eq(str_of(r, "state"), "unreachable", "node %d: %s (%s)",
	    i, str_of(r, "state"), str_of(r, "msg"));
	cr_assert(json_is_null(json_object_get(r, "node")));
	cr_assert_neq(strlen(str_of(r, "msg")), 0);
}

/* A repeat close: every node says the session is gone, and it is. */
static void
close_again_everywhere(void)
{
	char timeout[16];
	const char *args[]
	    = { "close-session", session, "--timeout", timeout, NULL };
	json_t *root;

	snprintf(timeout, sizeof(timeout), "%d", LONG_TIMEOUT_MS);
	root = cli(args, 0);
	cr_assert_str_eq(rows_not_in(root, "|closed|already_closed|"), "",
	    "repeat close:%s", rows_not_in(root, "|closed|already_closed|"));
	json_decref(root);
	cr_assert_eq(harness_session_procs(session), 0,
	    "processes of the session remain");
}

/* ---- tests ------------------------------------------------------------- */

Test(netns, open_status_close_on_32_nodes)
{
	char timeout[16];
	const char *status_args[] = { "status", session, NULL };
	const char *close_args[]
	    = { "close-session", session, "--timeout", timeout, NULL };
	json_t *root, *sessions, *workers;

	bed_up(NODES);
	open_everywhere("xl");

	root = cli(status_args, 0);
	for (int i = 0; i < tb.n; i++) {
		json_t *r = row(root, i);

		cr_assert_str_eq(str_of(r, "state"), "ok");
		cr_assert_str_eq(str_of(r, "node"), tb.nodes[i].ns);
		if (i == 0)
			cr_log_info("agents track processes with %s",
			    str_of(r, "backend"));
		sessions = json_object_get(r, "sessions");
		cr_assert_eq(json_array_size(sessions), 1);
		cr_assert_str_eq(
		    str_of(json_array_get(sessions, 0), "session"), session);
		workers
		    = json_object_get(json_array_get(sessions, 0), "workers");
		cr_assert_eq(json_array_size(workers), WORKERS);
		for (size_t w = 0; w < WORKERS; w++)
			cr_assert_str_eq(
			    str_of(json_array_get(workers, w), "state"),
			    "running");
	}
	json_decref(root);

	snprintf(timeout, sizeof(timeout), "%d", LONG_TIMEOUT_MS);
	root = cli(close_args, 0);
	for (int i = 0; i < tb.n; i++)
		assert_closed_row(root, i);
	json_decref(root);
	cr_assert_eq(harness_session_procs(session), 0);
}

Test(netns, link_cut_during_close_is_unreachable_by_the_deadline)
{
	const int cut = NODES / 2;
	struct close_call c;
	int64_t wall_ms;
	json_t *root;

	bed_up(NODES);
	/* Workers that ignore SIGTERM: the close lasts the agents' grace. */
	open_everywhere("xl-ignore");
	close_begin(&c, CLOSE_TIMEOUT_MS);
	wait_close_reached(cut);
	cr_assert_eq(testbed_link(&tb, cut, false), 0, "cannot cut the link");

	root = cli_end(&c.cli, 1, &wall_ms);
	assert_deadline_kept(root, wall_ms, "close with a cut link");
	for (int i = 0; i < tb.n; i++) {
		if (i == cut)
			assert_unreachable_row(root, i);
		else
			assert_closed_row(root, i);
	}
	json_decref(root);

	/* The agent behind the cut went on with the close it had been given:
	 * once the link is back, it says the session is gone. */
	cr_assert_eq(
	    testbed_link(&tb, cut, true), 0, "cannot restore the link");
	close_again_everywhere();
}

Test(netns, frozen_killed_and_restarted_agents_during_close)
{
	enum { FROZEN = 5, KILLED = 17, RESTARTED = 26 };
	struct close_call c;
	int64_t wall_ms;
	const char *rs;
	json_t *root;
	int frozen_procs, killed_procs;

	bed_up(NODES);
	open_everywhere("xl-ignore");
	close_begin(&c, CLOSE_TIMEOUT_MS);
	wait_close_reached(FROZEN);
	wait_close_reached(KILLED);
	wait_close_reached(RESTARTED);
	/* Each within the grace (workers ignore SIGTERM): none of the three
	 * has finished its close yet. */
	cr_assert_eq(kill(tb.nodes[FROZEN].pid, SIGSTOP), 0);
	testbed_agent_kill(&tb, KILLED);
	/* A stopping agent finishes the closes under way before it exits. */
	cr_assert_eq(testbed_agent_stop(&tb, RESTARTED, LONG_TIMEOUT_MS), 0);
	cr_assert(WIFEXITED(tb.nodes[RESTARTED].exit_status)
	        && WEXITSTATUS(tb.nodes[RESTARTED].exit_status) == 0,
	    "the restarted agent's first run ended with status %#x",
	    tb.nodes[RESTARTED].exit_status);
	cr_assert_eq(testbed_agent_start(&tb, RESTARTED, READY_TIMEOUT_MS), 0,
	    "the agent did not start again");

	root = cli_end(&c.cli, 1, &wall_ms);
	frozen_procs = testbed_node_procs(&tb, FROZEN, session);
	killed_procs = testbed_node_procs(&tb, KILLED, session);
	assert_deadline_kept(root, wall_ms, "close with agents in trouble");
	for (int i = 0; i < tb.n; i++) {
		if (i != FROZEN && i != KILLED && i != RESTARTED)
			assert_closed_row(root, i);
	}
	/* Frozen in the middle of its close: it cannot answer, and its
	 * workers still run; "closed" would be a lie. */
	assert_unreachable_row(root, FROZEN);
	cr_assert_eq(
	    frozen_procs, WORKERS, "frozen node: %d processes", frozen_procs);
	/* Killed: nothing answers there, and its workers outlive it. */
	assert_unreachable_row(root, KILLED);
	cr_assert_eq(
	    killed_procs, WORKERS, "killed node: %d processes", killed_procs);
	/* Restarted: its first run finished the close, so nothing is left;
	 * the row says closed when that run's reply got out before it
	 * exited, unreachable when not (the survey is not sent again to the
	 * next run), already_closed if the survey was repeated to it. */
	cr_assert(testbed_log_has(&tb, RESTARTED, "closed in"),
	    "the stopped agent did not finish the close");
	cr_assert_eq(testbed_node_procs(&tb, RESTARTED, session), 0);
	rs = state_of(root, RESTARTED);
	cr_log_info("restarted node's row: %s", rs);
	if (strcmp(rs, "closed") == 0)
		assert_closed_row(root, RESTARTED);
	else if (strcmp(rs, "unreachable") == 0)
		assert_unreachable_row(root, RESTARTED);
	else
		cr_assert_str_eq(rs, "already_closed",
		    "restarted node: %s (%s)", rs,
		    str_of(row(root, RESTARTED), "msg"));
	json_decref(root);

	/* The frozen agent goes on; the killed one, started again on its
	 * state dir, finishes the close it was killed in. */
	cr_assert_eq(kill(tb.nodes[FROZEN].pid, SIGCONT), 0);
	cr_assert_eq(testbed_agent_start(&tb, KILLED, READY_TIMEOUT_MS), 0,
	    "the killed agent did not start again");
	close_again_everywhere();
}

Test(netns, every_one_of_128_nodes_answers_every_survey)
{
	char timeout[16], id[64];
	const char *ping_args[] = { "ping", "--timeout", timeout, NULL };
	const char *close_args[]
	    = { "close-session", id, "--timeout", timeout, NULL };
	json_t *root;

	bed_up(MANY_NODES);
	snprintf(timeout, sizeof(timeout), "%d", SURVEY_TIMEOUT_MS);
	for (int r = 0; r < MANY_ROUNDS; r++) {
		struct testbed_cli c;

		cli_begin(ping_args, &c);
		root = cli_end(&c, -1, NULL);
		cr_assert_str_eq(rows_not_in(root, "|ok|"), "", "ping %d:%s",
		    r, rows_not_in(root, "|ok|"));
		cr_assert_eq(last_exit, 0, "ping %d: exit %d", r, last_exit);
		json_decref(root);
	}
	/* A close of a session nobody has: every node says already_closed. */
	for (int r = 0; r < MANY_ROUNDS; r++) {
		struct testbed_cli c;

		harness_unique("none", id, sizeof(id));
		cli_begin(close_args, &c);
		root = cli_end(&c, -1, NULL);
		cr_assert_str_eq(rows_not_in(root, "|already_closed|"), "",
		    "empty close %d:%s", r,
		    rows_not_in(root, "|already_closed|"));
		cr_assert_eq(
		    last_exit, 0, "empty close %d: exit %d", r, last_exit);
		json_decref(root);
	}
}
