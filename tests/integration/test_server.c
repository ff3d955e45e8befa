/*
 * The agent's end of the wire (agent/server.c, issue 8), seen from raw
 * surveyors as libhpcxl's fleet speaks to it: one nng raw surveyor socket
 * per connection, the survey id written into the SP header by the test, so
 * a test chooses which connection and which survey carries each request.
 *
 * - A close retried with the same op on another connection, or under
 *   another survey, is answered on every route (PROTOCOL.md §3); a repeat
 *   on the same route once.
 * - Past 64 requests waiting on one session, more are refused at once.
 * - More than two requests in flight on one connection: nng 1.5.2 may drop
 *   replies past two; the agent says so (rate-limited), a retry recovers
 *   them, and the agent keeps serving (PROTOCOL.md §1.3).
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE_DEADLINE_MS 8000
#define WAIT_MS 10000
/* How long a reply nng may have dropped is waited for before it counts as
 * lost: loopback answers come within milliseconds. */
#define LOST_AFTER_MS 3000
/* Pings sent at once. Whether nng drops replies depends on how fast its
 * I/O thread writes them out: of bursts of 8 about half come whole, often
 * ten in a row; of bursts of 12 about one in six, two in a row. (The
 * surveyor side queues 16 per connection.) */
#define PIPELINED 12
/* Bursts tried for one that loses a reply. */
#define MAX_BURSTS 50
/* The agent's least interval between two of these warnings. */
#define RISK_INTERVAL_MS 10000
/* What the agent logs when a connection breaks PROTOCOL.md §1.3. */
#define RISK_TEXT "more than two requests in flight"

static struct harness_agent agent;

/* A raw surveyor with one connection to the agent. */
struct conn {
	nng_socket sock;
	atomic_int pipes; /* attached connections (pipe notify) */
};

/* A reply as it came: its survey id, decoded frame and raw body. */
struct got {
	uint32_t survey;
	struct proto_msg m;
	char *body;
	size_t len;
};

static void
start_agent(void)
{
	cr_assert_eq(harness_agent_start(&agent, "tsv", NULL), 0,
	    "agent did not start (see /tmp/hpcxl-test-*/agent.log)");
}

/* Stops the agent if a test left it running and removes its directory. */
static void
stop_agent(void)
{
	harness_agent_stop(&agent, 15000);
	harness_remove_tree(agent.dir);
}

/* The end of every test: a clean exit also says the sanitizers of an
 * instrumented build found nothing in the agent. */
static void
agent_exits_cleanly(void)
{
	int status = harness_agent_stop(&agent, 15000);

	cr_assert_eq(status, 0, "agent exit status %d", status);
}

TestSuite(server, .init = start_agent, .fini = stop_agent, .timeout = 60);

static void
on_pipe_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct conn *c = arg;

	(void)p;
	(void)ev;
	atomic_fetch_add(&c->pipes, 1);
}

/* Dials the agent and waits until the connection is attached: a raw
 * surveyor sends only on the pipes it has at that moment. */
static void
conn_open(struct conn *c)
{
	int64_t end = util_now_ms() + WAIT_MS;

	atomic_init(&c->pipes, 0);
	cr_assert_eq(nng_surveyor0_open_raw(&c->sock), 0);
	cr_assert_eq(
	    nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe_add, c), 0);
	cr_assert_eq(nng_socket_set_size(
	                 c->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_REPLY + 64),
	    0);
	cr_assert_eq(nng_dial(c->sock, agent.url, NULL, 0), 0);
	while (atomic_load(&c->pipes) == 0) {
		cr_assert_lt(util_now_ms(), end, "never connected");
		harness_nap_ms(5);
	}
}

static void
conn_close(struct conn *c)
{
	nng_close(c->sock);
}

/* Sends req on c under survey id survey (the high bit is set here). */
static void
conn_send(struct conn *c, uint32_t survey, const struct proto_msg *req)
{
	nng_msg *msg;
	char *frame;
	size_t len;

	cr_assert_eq(proto_encode(req, &frame, &len), 0);
	cr_assert_eq(nng_msg_alloc(&msg, 0), 0);
	cr_assert_eq(nng_msg_header_append_u32(msg, survey | 0x80000000u), 0);
	cr_assert_eq(nng_msg_append(msg, frame, len), 0);
	free(frame);
	cr_assert_eq(nng_sendmsg(c->sock, msg, 0), 0);
}

/* The next reply on c within timeout_ms: 0 and *g, or -1 on a timeout. */
static int
conn_recv(struct conn *c, int timeout_ms, struct got *g)
{
	nng_msg *msg;
	size_t hlen;

	if (timeout_ms <= 0)
		return -1;
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	if (nng_recvmsg(c->sock, &msg, 0) != 0)
		return -1;
	/* The survey id is the header's last word (the respondent copied
	 * back what we sent). */
	hlen = nng_msg_header_len(msg);
	cr_assert_geq(hlen, 4);
	memcpy(&g->survey, (char *)nng_msg_header(msg) + hlen - 4, 4);
	g->survey = ntohl(g->survey) & 0x7fffffffu;
	g->len = nng_msg_len(msg);
	cr_assert_not_null(g->body = malloc(g->len));
	memcpy(g->body, nng_msg_body(msg), g->len);
	nng_msg_free(msg);
	cr_assert_eq(
	    proto_decode(g->body, g->len, PROTO_MAX_REPLY, &g->m, NULL), 0);
	cr_assert_eq(g->m.type, PROTO_REPLY);
	return 0;
}

static void
got_free(struct got *g)
{
	proto_msg_free(&g->m);
	free(g->body);
}

static struct proto_msg
close_req(const char *session, uint64_t op)
{
	struct proto_msg req = { .type = PROTO_CLOSE, .op = op };

	req.u.close.session = (char *)session;
	req.u.close.deadline_ms = CLOSE_DEADLINE_MS;
	return req;
}

/* Opens a session of SIGTERM-deaf workers: its close lasts the 1 s grace,
 * long enough for retries to join it. */
static void
open_deaf(char *id, size_t len)
{
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("s", id, len);
	r = ask_open(agent.url, id, "xl-ignore", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, id, 2, WAIT_MS));
}

/* Waits until the close of id is under way (its workers are stopping). */
static void
wait_closing(const char *id)
{
	int64_t end = util_now_ms() + WAIT_MS;

	for (;;) {
		struct proto_msg h;
		struct proto_reply r = ask_status(agent.url, id, &h);
		bool stopping = r.code == PROTO_CODE_OK && r.nsessions == 1
		    && r.sessions[0].nworkers > 0
		    && r.sessions[0].workers[0].state == PROTO_W_STOPPING;

		proto_msg_free(&h);
		if (stopping)
			return;
		cr_assert_lt(util_now_ms(), end, "the close never started");
		harness_nap_ms(10);
	}
}

/* A close's reply: ok, every process gone, the right op. */
static void
assert_closed(const struct got *g, uint64_t op)
{
	cr_assert_eq(g->m.op, op);
	cr_assert_eq(
	    g->m.u.reply.code, PROTO_CODE_OK, "close: %s", g->m.u.reply.msg);
	cr_assert_eq(g->m.u.reply.counts.remaining, 0);
}

/*
 * Opens a session of SIGTERM-deaf workers into id and closes it with op:
 * first on a (survey sa), then, once the close is under way, again on b
 * (survey sb), which joins it.
 */
static void
join_close(char *id, size_t len, uint64_t op, struct conn *a, uint32_t sa,
    struct conn *b, uint32_t sb)
{
	struct proto_msg req;

	open_deaf(id, len);
	req = close_req(id, op);
	conn_send(a, sa, &req);
	wait_closing(id);
	conn_send(b, sb, &req);
}

Test(server, a_close_retried_from_another_connection_answers_both)
{
	struct conn a, b;
	struct got ga, gb;
	uint64_t op = util_random_u64();
	char id[64];

	conn_open(&a);
	conn_open(&b);
	/* The controller lost its connection and retries on a new one; the
	 * first may still be waiting (PROTOCOL.md §3: both are answered). */
	join_close(id, sizeof(id), op, &a, 1, &b, 1);
	cr_assert_eq(conn_recv(&b, WAIT_MS, &gb), 0, "the retry: no reply");
	cr_assert_eq(conn_recv(&a, WAIT_MS, &ga), 0, "the first: no reply");
	assert_closed(&ga, op);
	cr_assert_eq(ga.survey, 1);
	cr_assert_eq(gb.survey, 1);
	cr_assert_eq(ga.len, gb.len, "both replies have the same content");
	cr_assert_eq(memcmp(ga.body, gb.body, ga.len), 0);
	cr_assert_eq(harness_session_procs(id), 0);
	got_free(&ga);
	got_free(&gb);
	conn_close(&a);
	conn_close(&b);
	agent_exits_cleanly();
}

Test(server, a_close_retried_under_another_survey_answers_both)
{
	struct conn a;
	struct got g1, g2;
	uint64_t op = util_random_u64();
	char id[64];

	conn_open(&a);
	join_close(id, sizeof(id), op, &a, 7, &a, 8);
	cr_assert_eq(conn_recv(&a, WAIT_MS, &g1), 0, "no reply");
	cr_assert_eq(conn_recv(&a, WAIT_MS, &g2), 0, "one survey unanswered");
	assert_closed(&g1, op);
	assert_closed(&g2, op);
	/* The newest survey is answered first: a cooked surveyor, which
	 * abandons the older one, gets its reply even from a full queue. */
	cr_assert_eq(g1.survey, 8);
	cr_assert_eq(g2.survey, 7);
	got_free(&g1);
	got_free(&g2);
	conn_close(&a);
	agent_exits_cleanly();
}

Test(server, a_close_repeated_on_the_same_survey_is_answered_once)
{
	struct conn a;
	struct got g, next;
	struct proto_msg ping = { .type = PROTO_PING };
	uint64_t op = util_random_u64();
	char id[64];

	conn_open(&a);
	/* libhpcxl resends on the same connection and survey when a reply
	 * is overdue: one route, one answer. */
	join_close(id, sizeof(id), op, &a, 3, &a, 3);
	cr_assert_eq(conn_recv(&a, WAIT_MS, &g), 0, "no reply");
	assert_closed(&g, op);
	/* A second answer would have been sent with the first, before this
	 * ping was even asked: the next reply must be the ping's. */
	ping.op = util_random_u64();
	conn_send(&a, 4, &ping);
	cr_assert_eq(conn_recv(&a, WAIT_MS, &next), 0, "no pong");
	cr_assert_eq(next.survey, 4, "the close was answered twice");
	cr_assert_eq(next.m.op, ping.op);
	got_free(&g);
	got_free(&next);
	conn_close(&a);
	agent_exits_cleanly();
}

/* The agent's cap on requests waiting on one session (session_close.c). */
#define SESSION_MAX_WAITERS 64
#define FLOOD (SESSION_MAX_WAITERS + 6)

/* A flood of closes from distinct connections cannot grow the agent's
 * waiting list without bound: past the cap each is refused at once, the
 * others are all answered when the close ends. */
Test(server, closes_past_the_waiter_cap_are_refused_and_the_rest_answered)
{
	static struct conn c[FLOOD];
	struct proto_msg req;
	uint64_t op = util_random_u64();
	int ok = 0, refused = 0;
	char id[64];

	for (int i = 0; i < FLOOD; i++)
		conn_open(&c[i]);
	open_deaf(id, sizeof(id));
	req = close_req(id, op);
	conn_send(&c[0], 1, &req);
	wait_closing(id);
	for (int i = 1; i < FLOOD; i++)
		conn_send(&c[i], 1, &req);
	for (int i = 0; i < FLOOD; i++) {
		struct got g;

		cr_assert_eq(conn_recv(&c[i], WAIT_MS, &g), 0,
		    "connection %d: no reply", i);
		ok += g.m.u.reply.code == PROTO_CODE_OK;
		refused += g.m.u.reply.code == PROTO_CODE_REFUSED
		    && strstr(g.m.u.reply.msg, "too many") != NULL;
		got_free(&g);
		conn_close(&c[i]);
	}
	cr_expect_eq(ok, SESSION_MAX_WAITERS);
	cr_expect_eq(refused, FLOOD - SESSION_MAX_WAITERS);
	cr_expect_eq(harness_session_procs(id), 0);
	agent_exits_cleanly();
}

/*
 * Sends PIPELINED pings on c at once (survey ids first..), collects the
 * replies until all came or none came for LOST_AFTER_MS; answered[i] says
 * which. Returns how many came.
 */
static int
ping_burst(struct conn *c, uint32_t first, uint64_t *ops, bool *answered)
{
	struct proto_msg ping = { .type = PROTO_PING };
	struct got g;
	int n = 0;

	for (int i = 0; i < PIPELINED; i++) {
		ping.op = ops[i] = util_random_u64();
		answered[i] = false;
		conn_send(c, first + (uint32_t)i, &ping);
	}
	while (n < PIPELINED && conn_recv(c, LOST_AFTER_MS, &g) == 0) {
		uint32_t i = g.survey - first;

		cr_assert_lt(i, PIPELINED, "unknown survey %u", g.survey);
		cr_assert_eq(g.m.op, ops[i]);
		cr_assert_eq(g.m.u.reply.code, PROTO_CODE_OK);
		cr_assert_not(
		    answered[i], "survey %u answered twice", g.survey);
		answered[i] = true;
		n++;
		got_free(&g);
	}
	return n;
}

/*
 * Asks again, one at a time as §1.3 wants, each ping left unanswered. A
 * reply of the burst may still come first, late: it was not lost after all.
 */
static void
retry_lost(
    struct conn *c, uint32_t first, const uint64_t *ops, const bool *answered)
{
	struct proto_msg ping = { .type = PROTO_PING };
	uint32_t retry;
	struct got g;

	for (int i = 0; i < PIPELINED; i++) {
		if (answered[i])
			continue;
		ping.op = ops[i];
		retry = first + PIPELINED + (uint32_t)i;
		conn_send(c, retry, &ping);
		do {
			uint32_t k;

			cr_assert_eq(conn_recv(c, WAIT_MS, &g), 0, "no reply");
			k = g.survey == retry ? (uint32_t)i : g.survey - first;
			cr_assert_lt(k, PIPELINED, "survey %u", g.survey);
			cr_assert_eq(g.m.op, ops[k]);
			got_free(&g);
		} while (g.survey != retry);
	}
}

/*
 * Bursts of PIPELINED pings on c until one loses a reply (nng drops it when
 * its queue is full, which depends on timing) or MAX_BURSTS went whole.
 * Each lost reply is recovered. Returns the replies of the last burst;
 * *start_ms is when the first began.
 */
static int
lossy_burst(struct conn *c, uint32_t first, int64_t *start_ms)
{
	uint64_t ops[PIPELINED];
	bool answered[PIPELINED];
	int n = PIPELINED;

	*start_ms = util_now_ms();
	for (int k = 0; k < MAX_BURSTS && n == PIPELINED; k++) {
		/* Survey ids: the burst's, then its retries'. */
		uint32_t base = first + (uint32_t)k * 2 * PIPELINED;

		n = ping_burst(c, base, ops, answered);
		/* PROTOCOL.md §1.3: two replies per connection always fit in
		 * nng's queue. */
		cr_assert_geq(n, 2, "only %d of %d answered", n, PIPELINED);
		/* A retry with the same op recovers each lost reply. */
		retry_lost(c, base, ops, answered);
	}
	return n;
}

Test(server, pipelined_requests_beyond_two_are_warned_about)
{
	struct proto_msg h, ping = { .type = PROTO_PING };
	struct conn c;
	struct got g;
	int64_t first_ms, unused_ms;

	conn_open(&c);
	if (lossy_burst(&c, 1000, &first_ms) < PIPELINED)
		cr_assert(
		    harness_agent_wait_log(&agent, RISK_TEXT, 1, WAIT_MS),
		    "replies lost, no warning");
	/* Rate-limited: within its interval a second loss adds no line. */
	lossy_burst(&c, 2000, &unused_ms);
	if (util_now_ms() - first_ms < RISK_INTERVAL_MS)
		cr_assert_leq(harness_agent_log_count(&agent, RISK_TEXT), 1,
		    "not rate-limited");
	/* The agent keeps serving, this connection and others. */
	ping.op = util_random_u64();
	conn_send(&c, 1, &ping);
	cr_assert_eq(conn_recv(&c, WAIT_MS, &g), 0, "no pong");
	cr_assert_eq(g.survey, 1);
	cr_assert_eq(g.m.op, ping.op);
	got_free(&g);
	ping.op = 0;
	ask(agent.url, &ping, &h);
	proto_msg_free(&h);
	conn_close(&c);
	agent_exits_cleanly();
}
