/*
 * libhpcxl's client object against real agents: named rosters, standing
 * connections, concurrent calls, open with a minimum and its roll-back,
 * progress reports and interruption, closes that never redial. Each test
 * starts its own agents and uses its own session ids.
 */
#include "harness.h"

#include "hpcxl/common/util.h"
#include "hpcxl/hpcxl.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* ---- closing never redials --------------------------------------------- */

/*
 * A TCP relay in front of a real agent that counts the connections made
 * to it: one thread polls the listener and every relayed pair, copies what
 * either side sends to the other, and closes both when either ends. The
 * counters are read by the test while the thread runs.
 */
#define RELAY_MAX_PAIRS 8
#define RELAY_POLL_MS 20
/* Bounds a connect or a send that cannot proceed (loopback: never). */
#define RELAY_IO_TIMEOUT_MS 2000

struct relay_pair {
	int client_fd; /* -1: slot free */
	int agent_fd;
};

struct relay {
	int listen_fd;
	struct sockaddr_in agent_addr;
	char url[64]; /* what the client dials */
	struct relay_pair pairs[RELAY_MAX_PAIRS];
	atomic_int accepted; /* connections accepted since the start */
	atomic_int open_pairs; /* relayed connections not ended yet */
	atomic_bool stop;
	int64_t deadline_ms; /* the thread's own bound, if never stopped */
	pthread_t thread;
};

static void
relay_bound_io(int fd)
{
	struct timeval tv = { .tv_sec = RELAY_IO_TIMEOUT_MS / 1000,
		.tv_usec = RELAY_IO_TIMEOUT_MS % 1000 * 1000 };

	/* On Linux SO_SNDTIMEO also bounds a blocking connect(). */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
relay_dial_agent(struct relay *y)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	relay_bound_io(fd);
	if (connect(
	        fd, (struct sockaddr *)&y->agent_addr, sizeof(y->agent_addr))
	    != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
relay_end_pair(struct relay *y, struct relay_pair *p)
{
	close(p->client_fd);
	close(p->agent_fd);
	p->client_fd = p->agent_fd = -1;
	atomic_fetch_sub(&y->open_pairs, 1);
}

/* Takes every connection waiting on the listener, in the order they
 * arrived; each is counted, relayed when the agent takes one too and a
 * slot is free, else closed at once. */
static void
relay_accept_waiting(struct relay *y)
{
	struct relay_pair *slot;
	int i, k, fd, agent_fd;

	for (i = 0; i < RELAY_MAX_PAIRS; i++) {
		fd = accept4(y->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: none left */
		atomic_fetch_add(&y->accepted, 1);
		relay_bound_io(fd);
		slot = NULL;
		for (k = 0; k < RELAY_MAX_PAIRS && slot == NULL; k++)
			if (y->pairs[k].client_fd < 0)
				slot = &y->pairs[k];
		if (slot == NULL || (agent_fd = relay_dial_agent(y)) < 0) {
			close(fd);
			continue;
		}
		slot->client_fd = fd;
		slot->agent_fd = agent_fd;
		atomic_fetch_add(&y->open_pairs, 1);
	}
}

/* Copies one read's worth from one side to the other; false when either
 * side ended (or failed). */
static bool
relay_copy(int from, int to)
{
	char buf[16384];
	ssize_t n = recv(from, buf, sizeof(buf), 0), sent;
	size_t off = 0;

	if (n <= 0)
		return false;
	while (off < (size_t)n) {
		sent = send(to, buf + off, (size_t)n - off, MSG_NOSIGNAL);
		if (sent <= 0)
			return false;
		off += (size_t)sent;
	}
	return true;
}

static void *
relay_run(void *arg)
{
	struct relay *y = arg;
	struct pollfd pfds[1 + 2 * RELAY_MAX_PAIRS];
	int i;

	while (!atomic_load(&y->stop) && util_now_ms() < y->deadline_ms) {
		pfds[0]
		    = (struct pollfd) { .fd = y->listen_fd, .events = POLLIN };
		for (i = 0; i < RELAY_MAX_PAIRS; i++) {
			/* A free slot's -1 descriptors are skipped by poll. */
			pfds[1 + 2 * i]
			    = (struct pollfd) { .fd = y->pairs[i].client_fd,
				      .events = POLLIN };
			pfds[2 + 2 * i]
			    = (struct pollfd) { .fd = y->pairs[i].agent_fd,
				      .events = POLLIN };
		}
		if (poll(pfds, 1 + 2 * RELAY_MAX_PAIRS, RELAY_POLL_MS) <= 0)
			continue;
		for (i = 0; i < RELAY_MAX_PAIRS; i++) {
			struct relay_pair *p = &y->pairs[i];
			bool alive = true;

			if (pfds[1 + 2 * i].revents != 0)
				alive = relay_copy(p->client_fd, p->agent_fd);
			if (alive && pfds[2 + 2 * i].revents != 0)
				alive = relay_copy(p->agent_fd, p->client_fd);
			if (!alive)
				relay_end_pair(y, p);
		}
		/* After the pairs: a new pair's descriptors were not polled.
		 */
		if (pfds[0].revents != 0)
			relay_accept_waiting(y);
	}
	for (i = 0; i < RELAY_MAX_PAIRS; i++)
		if (y->pairs[i].client_fd >= 0)
			relay_end_pair(y, &y->pairs[i]);
	return NULL;
}

/* A relay to the agent at agent_url (tcp://127.0.0.1:PORT), listening on
 * a loopback port of its own, for at most lifetime_ms. */
static void
relay_start(struct relay *y, const char *agent_url, int lifetime_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	unsigned agent_port;
	int i;

	cr_assert_eq(sscanf(agent_url, "tcp://127.0.0.1:%u", &agent_port), 1,
	    "not a loopback tcp:// URL: %s", agent_url);
	memset(y, 0, sizeof(*y));
	for (i = 0; i < RELAY_MAX_PAIRS; i++)
		y->pairs[i].client_fd = y->pairs[i].agent_fd = -1;
	y->agent_addr.sin_family = AF_INET;
	y->agent_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	y->agent_addr.sin_port = htons((uint16_t)agent_port);
	atomic_init(&y->accepted, 0);
	atomic_init(&y->open_pairs, 0);
	atomic_init(&y->stop, false);
	y->deadline_ms = util_now_ms() + lifetime_ms;
	y->listen_fd
	    = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(y->listen_fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(
	    bind(y->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(y->listen_fd, 64), 0);
	cr_assert_eq(
	    getsockname(y->listen_fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(
	    y->url, sizeof(y->url), "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
	cr_assert_eq(pthread_create(&y->thread, NULL, relay_run, y), 0);
}

static void
relay_stop(struct relay *y)
{
	atomic_store(&y->stop, true);
	pthread_join(y->thread, NULL);
	close(y->listen_fd);
}

/* Waits until every relayed connection has ended: the relay has seen the
 * clients' hang-ups. */
static bool
relay_wait_idle(struct relay *y, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	while (atomic_load(&y->open_pairs) != 0) {
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(5);
	}
	return true;
}

/* One short client of the relay: open, a ping that must reach the agent,
 * and (when close_it) the close. Returns the client when kept open. */
static struct hpcxl_client *
relay_client_cycle(const struct relay *y, bool close_it, int *failures)
{
	const char *urls[] = { y->url };
	struct hpcxl_client *c = NULL;
	struct hpcxl_report *r = NULL;

	if (hpcxl_client_open(urls, 1, &c) != 0) {
		(*failures)++;
		return NULL;
	}
	if (hpcxl_ping(c, CALL_TIMEOUT_MS, &r) != 0 || r == NULL
	    || r->nnodes != 1 || r->nodes[0].state != HPCXL_NODE_OK)
		(*failures)++;
	hpcxl_report_free(r);
	if (!close_it)
		return c;
	hpcxl_client_close(c);
	return NULL;
}

/*
 * Measured with the pipe closed first: one close in 100 to 400 redials
 * (5 to 33 of 2,000), not one in two, because the redial must also win a
 * race: nng's reaper has to remove the pipe, and the due timer dial,
 * before nng_dialer_close() marks the dialer closed. 2,000 closes miss
 * that about once in 10,000 runs; 20 would miss it most of the time.
 */
#define REDIAL_CYCLES 2000
#define REDIAL_CYCLES_MAX_MS 90000

/*
 * fleet_node_hang_up() closes a tcp:// node's dialer before its pipe. The
 * other order makes nng 1.5.2 redial at once, and that connection, cut in
 * the SP handshake, pauses the agent's listener for 100 ms. So each short
 * client (open, ping, close) must connect exactly once. A last client (the
 * fence) is pinged before the count is read: its connection reached the
 * relay after every earlier close had returned, and the relay accepts in
 * arrival order, so a redial of an earlier close is counted by the time
 * the fence has its reply.
 */
Test(client, closing_a_client_never_redials_its_agent, .timeout = 180)
{
	struct relay y;
	struct hpcxl_client *fence;
	int64_t deadline;
	int i, failures = 0, at_fence, after_close;
	bool idle;

	relay_start(
	    &y, agents[0].url, REDIAL_CYCLES_MAX_MS + 3 * CALL_TIMEOUT_MS);
	deadline = util_now_ms() + REDIAL_CYCLES_MAX_MS;
	for (i = 0; i < REDIAL_CYCLES && util_now_ms() < deadline; i++)
		relay_client_cycle(&y, true, &failures);
	fence = relay_client_cycle(&y, false, &failures);
	at_fence = atomic_load(&y.accepted);
	if (fence != NULL)
		hpcxl_client_close(fence);
	/* Also counts a redial of the fence's own close, if it comes before
	 * the relay has seen the close. */
	idle = relay_wait_idle(&y, CALL_TIMEOUT_MS);
	after_close = atomic_load(&y.accepted);
	relay_stop(&y);

	cr_assert_eq(i, REDIAL_CYCLES, "only %d cycles in %d ms", i,
	    REDIAL_CYCLES_MAX_MS);
	cr_assert_eq(failures, 0, "%d of %d clients not answered (relayed)",
	    failures, i + 1);
	cr_assert(idle, "the relay still holds %d connections",
	    atomic_load(&y.open_pairs));
	cr_assert_eq(at_fence, i + 1,
	    "%d connections for %d clients: closes redialled", at_fence,
	    i + 1);
	cr_assert_eq(after_close, i + 1,
	    "%d connections after the last close, not %d", after_close, i + 1);
}
