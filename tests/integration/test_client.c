/*
 * libhpcxl's client object against real agents: named rosters, standing
 * connections, concurrent calls, open with a minimum and its roll-back,
 * progress reports and interruption. Each test starts its own agents and
 * uses its own session ids.
 */
#include "harness.h"

#include "hpcxl/common/util.h"
#include "hpcxl/hpcxl.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAGENTS 3
/* The roster: the agents, then one URL nobody listens on. */
#define NNODES (NAGENTS + 1)
#define DEAD_ROW NAGENTS
#define WORKERS 2
#define CALL_TIMEOUT_MS 10000
#define SHORT_TIMEOUT_MS 3000
/* What a call may take beyond its timeout on a loaded CI machine: a
 * property of the API, not a speed measurement. */
#define OVERSHOOT_MS 1500
#define CONCURRENT_THREADS 4
#define CONCURRENT_CALLS 25

static struct harness_agent agents[NAGENTS];
static char dead_url[64];
static char session[64];

/* ---- fixtures ---------------------------------------------------------- */

/* A loopback port that was free a moment ago: nothing listens on it. */
static void
make_dead_url(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(dead_url, sizeof(dead_url), "tcp://127.0.0.1:%u",
	    ntohs(sa.sin_port));
}

static void
start_agents(void)
{
	int i;

	harness_unique("cl", session, sizeof(session));
	for (i = 0; i < NAGENTS; i++)
		cr_assert_eq(harness_agent_start(&agents[i], "cl", NULL), 0,
		    "agent %d did not start", i);
	make_dead_url();
}

static void
stop_agents(void)
{
	int i;

	for (i = 0; i < NAGENTS; i++) {
		kill(agents[i].pid, SIGCONT); /* a test may have frozen it */
		harness_agent_stop(&agents[i], 15000);
	}
	harness_session_kill(session);
}

TestSuite(client, .init = start_agents, .fini = stop_agents, .timeout = 120);

static const char *const node_names[NNODES]
    = { "alpha", "beta", "gamma", "dead" };

/* A client for the first n nodes of the roster, named. */
static struct hpcxl_client *
open_client(size_t n)
{
	struct hpcxl_node nodes[NNODES];
	struct hpcxl_client *c = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		nodes[i].name = node_names[i];
		nodes[i].url = i == DEAD_ROW ? dead_url : agents[i].url;
	}
	cr_assert_eq(hpcxl_client_open_nodes(nodes, n, &c), 0);
	return c;
}

/* ---- named roster ------------------------------------------------------ */

Test(client, rows_carry_roster_names_also_when_silent)
{
	struct hpcxl_client *c = open_client(NNODES);
	struct hpcxl_report *r = NULL;
	size_t i;

	cr_assert_eq(hpcxl_ping(c, SHORT_TIMEOUT_MS, &r), HPCXL_EPARTIAL);
	cr_assert_eq(r->nnodes, NNODES);
	for (i = 0; i < NNODES; i++)
		cr_assert_str_eq(r->nodes[i].name, node_names[i]);
	for (i = 0; i < NAGENTS; i++)
		cr_assert_eq(r->nodes[i].state, HPCXL_NODE_OK);
	cr_assert_eq(r->nodes[DEAD_ROW].state, HPCXL_NODE_UNREACHABLE);
	cr_assert_str_eq(r->nodes[DEAD_ROW].url, dead_url);
	cr_assert_null(r->nodes[DEAD_ROW].node);
	cr_assert(strstr(r->nodes[DEAD_ROW].msg, "refused") != NULL, "why: %s",
	    r->nodes[DEAD_ROW].msg);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

Test(client, unnamed_rows_are_named_by_url)
{
	const char *urls[] = { agents[0].url, agents[1].url };
	struct hpcxl_client *c = NULL;
	struct hpcxl_report *r = NULL;

	cr_assert_eq(hpcxl_client_open(urls, 2, &c), 0);
	cr_assert_eq(hpcxl_ping(c, CALL_TIMEOUT_MS, &r), 0);
	cr_assert_str_eq(r->nodes[0].name, agents[0].url);
	cr_assert_str_eq(r->nodes[1].name, agents[1].url);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

Test(client, duplicate_names_or_urls_are_refused)
{
	struct hpcxl_node same_name[]
	    = { { "a", agents[0].url }, { "a", agents[1].url } };
	struct hpcxl_node same_url[]
	    = { { "a", agents[0].url }, { "b", agents[0].url } };
	struct hpcxl_node empty_name[] = { { "", agents[0].url } };
	struct hpcxl_node no_url[] = { { "a", NULL } };
	struct hpcxl_client *c = NULL;

	cr_assert_eq(hpcxl_client_open_nodes(same_name, 2, &c), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_client_open_nodes(same_url, 2, &c), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_client_open_nodes(empty_name, 1, &c), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_client_open_nodes(no_url, 1, &c), HPCXL_EINVAL);
	cr_assert_null(c);
	cr_assert_eq(hpcxl_url_check(agents[0].url), 0);
	cr_assert_eq(hpcxl_url_check("nosuchscheme://x"), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_url_check(NULL), HPCXL_EINVAL);
}

/* ---- standing connections ---------------------------------------------- */

Test(client, calls_reuse_the_connections)
{
	struct hpcxl_client *c = open_client(NAGENTS);
	struct hpcxl_report *r = NULL;
	unsigned before[8], after[8];
	size_t nbefore, nafter;
	int i;

	cr_assert_eq(hpcxl_ping(c, CALL_TIMEOUT_MS, &r), 0);
	hpcxl_report_free(r);
	nbefore = harness_tcp_conns_to(agents[0].url, before, 8);
	cr_assert_eq(
	    nbefore, 1, "one connection to the agent, not %zu", nbefore);
	for (i = 0; i < 5; i++) {
		cr_assert_eq(
		    hpcxl_close_session(c, session, CALL_TIMEOUT_MS, &r), 0);
		hpcxl_report_free(r);
	}
	nafter = harness_tcp_conns_to(agents[0].url, after, 8);
	cr_assert_eq(nafter, 1);
	cr_assert_eq(before[0], after[0], "the client dialled again");
	hpcxl_client_close(c);
}

/* ---- concurrent calls -------------------------------------------------- */

struct caller {
	struct hpcxl_client *c;
	int failures;
};

static void *
caller_run(void *arg)
{
	struct caller *k = arg;
	struct hpcxl_report *r;
	int i, rv;

	for (i = 0; i < CONCURRENT_CALLS; i++) {
		r = NULL;
		rv = i % 2 == 0
		    ? hpcxl_ping(k->c, CALL_TIMEOUT_MS, &r)
		    : hpcxl_status(k->c, NULL, CALL_TIMEOUT_MS, &r);
		if (rv != 0 || r->nnodes != NAGENTS)
			k->failures++;
		hpcxl_report_free(r);
	}
	return NULL;
}

Test(client, concurrent_calls_each_get_every_reply)
{
	struct caller callers[CONCURRENT_THREADS];
	pthread_t threads[CONCURRENT_THREADS];
	struct hpcxl_client *c = open_client(NAGENTS);
	int i;

	for (i = 0; i < CONCURRENT_THREADS; i++) {
		callers[i] = (struct caller) { .c = c };
		cr_assert_eq(
		    pthread_create(&threads[i], NULL, caller_run, &callers[i]),
		    0);
	}
	for (i = 0; i < CONCURRENT_THREADS; i++) {
		pthread_join(threads[i], NULL);
		cr_expect_eq(callers[i].failures, 0,
		    "thread %d: %d calls without every reply", i,
		    callers[i].failures);
	}
	hpcxl_client_close(c);
}

/* ---- open with a minimum ----------------------------------------------- */

static struct hpcxl_open_params
open_params(size_t min_nodes)
{
	return (struct hpcxl_open_params) {
		.session = session,
		.profile = "xl",
		.workers = WORKERS,
		.min_nodes = min_nodes,
	};
}

Test(client, open_short_of_the_minimum_is_rolled_back)
{
	struct hpcxl_client *c = open_client(NNODES);
	struct hpcxl_open_params p = open_params(0); /* every node */
	struct hpcxl_report *r = NULL;
	int64_t start = util_now_ms();
	size_t i;

	cr_assert_eq(
	    hpcxl_open_session(c, &p, SHORT_TIMEOUT_MS, &r), HPCXL_EPARTIAL);
	cr_assert_leq(util_now_ms() - start, SHORT_TIMEOUT_MS + OVERSHOOT_MS);
	cr_assert_not(r->ok);
	for (i = 0; i < NAGENTS; i++) {
		cr_assert_eq(r->nodes[i].state, HPCXL_NODE_CLOSED,
		    "%s: %s (%s)", r->nodes[i].name,
		    hpcxl_node_state_name(r->nodes[i].state), r->nodes[i].msg);
		cr_assert(strstr(r->nodes[i].msg, "closed again") != NULL,
		    "msg: %s", r->nodes[i].msg);
	}
	cr_assert_eq(r->nodes[DEAD_ROW].state, HPCXL_NODE_UNREACHABLE);
	cr_assert_eq(harness_session_procs(session), 0,
	    "a rolled-back open left processes");
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

Test(client, open_that_meets_the_minimum_succeeds)
{
	struct hpcxl_client *c = open_client(NNODES);
	struct hpcxl_open_params p = open_params(NAGENTS);
	struct hpcxl_report *r = NULL;
	size_t i;

	cr_assert_eq(hpcxl_open_session(c, &p, SHORT_TIMEOUT_MS, &r), 0);
	cr_assert(r->ok);
	for (i = 0; i < NAGENTS; i++)
		cr_assert_eq(r->nodes[i].state, HPCXL_NODE_OK);
	cr_assert_eq(r->nodes[DEAD_ROW].state, HPCXL_NODE_UNREACHABLE);
	hpcxl_report_free(r);
	cr_assert(
	    harness_wait_procs(session, NAGENTS * WORKERS, CALL_TIMEOUT_MS));
	cr_assert_eq(hpcxl_close_session(c, session, SHORT_TIMEOUT_MS, &r),
	    HPCXL_EPARTIAL); /* the dead node cannot say it is closed */
	hpcxl_report_free(r);
	cr_assert(harness_wait_procs(session, 0, CALL_TIMEOUT_MS));
	p.min_nodes = NNODES + 1; /* more than the roster */
	r = NULL;
	cr_assert_eq(
	    hpcxl_open_session(c, &p, SHORT_TIMEOUT_MS, &r), HPCXL_EINVAL);
	cr_assert_null(r);
	hpcxl_client_close(c);
}

/*
 * hpcxl.h, rule 2: a struct passed in is read as far as the caller's
 * header had it (size), later fields taken as zero; size 0 is the first
 * layout; a size past this library's struct (a later header) is refused
 * before anything is sent.
 */
Test(client, sized_structs_are_read_as_far_as_the_caller_had_them)
{
	struct hpcxl_node node = { .name = "alpha", .url = agents[0].url };
	struct hpcxl_client_opts o = HPCXL_CLIENT_OPTS_INIT;
	struct hpcxl_open_params p = HPCXL_OPEN_PARAMS_INIT;
	struct hpcxl_client *c = NULL;
	struct hpcxl_report *r = NULL;

	o.size = sizeof(o) + sizeof(void *);
	cr_assert_eq(hpcxl_client_open_opts(&node, 1, &o, &c), HPCXL_EINVAL);
	o.size = 0;
	cr_assert_eq(hpcxl_client_open_opts(&node, 1, &o, &c), 0);
	p.session = session;
	p.profile = "xl";
	p.workers = WORKERS;
	p.min_nodes = 2; /* more than the roster: refused if read */
	p.size = sizeof(p) + sizeof(void *);
	cr_assert_eq(
	    hpcxl_open_session(c, &p, SHORT_TIMEOUT_MS, &r), HPCXL_EINVAL);
	cr_assert_null(r);
	p.size = offsetof(struct hpcxl_open_params, min_nodes);
	cr_assert_eq(hpcxl_open_session(c, &p, SHORT_TIMEOUT_MS, &r), 0);
	hpcxl_report_free(r);
	cr_assert_eq(hpcxl_close_session(c, session, SHORT_TIMEOUT_MS, &r), 0);
	hpcxl_report_free(r);
	cr_assert(harness_wait_procs(session, 0, CALL_TIMEOUT_MS));
	hpcxl_client_close(c);
}

/* A survey's first pass sends even with no time left, so the close of an
 * open that used up its timeout still reaches the connected nodes. */
Test(client, no_time_left_still_sends_once_to_connected_nodes)
{
	struct hpcxl_client *c = open_client(NAGENTS);
	struct hpcxl_open_params p = open_params(0);
	struct hpcxl_report *r = NULL;

	cr_assert_eq(hpcxl_open_session(c, &p, CALL_TIMEOUT_MS, &r), 0);
	hpcxl_report_free(r);
	cr_assert(
	    harness_wait_procs(session, NAGENTS * WORKERS, CALL_TIMEOUT_MS));
	/* Every node is connected now: a close with no time at all. */
	cr_assert_eq(hpcxl_close_session(c, session, 0, &r), HPCXL_EPARTIAL);
	hpcxl_report_free(r);
	cr_assert(harness_wait_procs(session, 0, CALL_TIMEOUT_MS),
	    "the close was never sent");
	hpcxl_client_close(c);
}

/* ---- progress and interruption ----------------------------------------- */

struct watcher {
	struct hpcxl_client *c;
	int reports;
	size_t answered, total;
	bool named_frozen; /* the frozen node was among the waiting */
};

/* Records the first report and interrupts the call. */
static void
watcher_progress(const struct hpcxl_progress *p, void *arg)
{
	struct watcher *w = arg;

	size_t i;

	if (w->reports++ == 0) {
		w->answered = p->answered;
		w->total = p->total;
		for (i = 0; i < p->nwaiting; i++)
			w->named_frozen |= strcmp(p->waiting[i], "beta") == 0;
	}
	hpcxl_client_interrupt(w->c);
}

Test(client, progress_names_the_silent_node_and_interrupt_ends_the_call)
{
	struct hpcxl_client *c = open_client(NAGENTS);
	struct watcher w = { .c = c };
	struct hpcxl_report *r = NULL;
	int64_t start;
	size_t i;

	/* A frozen agent holds its connection but never answers. */
	cr_assert_eq(kill(agents[1].pid, SIGSTOP), 0);
	hpcxl_client_set_progress(c, watcher_progress, &w, 200);
	start = util_now_ms();
	cr_assert_eq(
	    hpcxl_close_session(c, session, 60000, &r), HPCXL_EPARTIAL);
	cr_assert_lt(util_now_ms() - start, 30000,
	    "the interrupt did not end the call");
	kill(agents[1].pid, SIGCONT);
	cr_assert_geq(w.reports, 1);
	cr_assert_eq(w.total, NAGENTS);
	cr_assert(w.named_frozen, "the frozen node was not named");
	cr_assert_lt(w.answered, NAGENTS);
	cr_assert_eq(r->nodes[1].state, HPCXL_NODE_INTERRUPTED);
	cr_assert_eq(r->nodes[0].state, HPCXL_NODE_ALREADY_CLOSED);
	cr_assert_eq(r->nodes[2].state, HPCXL_NODE_ALREADY_CLOSED);
	hpcxl_report_free(r);
	/* An interrupted client stays so: later calls return at once. */
	cr_assert_eq(hpcxl_ping(c, 60000, &r), HPCXL_EPARTIAL);
	for (i = 0; i < NAGENTS; i++)
		cr_assert_eq(r->nodes[i].state, HPCXL_NODE_INTERRUPTED);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

/* ---- many short clients ------------------------------------------------ */

#define CYCLES 2000
#define CYCLES_MAX_MS 120000

/* Open, ping, close, as a CLI does: a teardown race in the fleet (nng
 * 1.5.2 panicked in about one of 2,000) must not come back. */
Test(client, thousands_of_short_clients, .timeout = 180)
{
	const char *urls[] = { agents[0].url, agents[1].url };
	int64_t deadline = util_now_ms() + CYCLES_MAX_MS;
	int i, failures = 0;

	for (i = 0; i < CYCLES && util_now_ms() < deadline; i++) {
		struct hpcxl_client *c = NULL;
		struct hpcxl_report *r = NULL;

		cr_assert_eq(hpcxl_client_open(urls, 2, &c), 0);
		failures += hpcxl_ping(c, CALL_TIMEOUT_MS, &r) != 0;
		hpcxl_report_free(r);
		hpcxl_client_close(c);
	}
	cr_assert_eq(i, CYCLES, "only %d cycles in %d ms", i, CYCLES_MAX_MS);
	cr_assert_eq(failures, 0, "%d of %d pings not answered by both",
	    failures, CYCLES);
}
