/*
 * An agent opening thousands of workers keeps serving: its loop starts
 * workers in slices between polls, so while one open of 4,096 workers is
 * under way, pings are answered and a close of another session keeps its
 * deadline. What is asserted is order, not speed: pings and the close are
 * answered while the big open is still waiting for its reply (a loop that
 * blocked for the whole open could answer none of them in that window),
 * each within a generous bound; the exact latency is the benchmark's
 * (tests/bench, "ping during an open").
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define BIG_OPEN 4096
#define BIG_OPEN_TIMEOUT_MS 180000
/* Generous (next to a parallel build pings took up to 0.55 s; on an idle
 * machine 31 ms): a blocked loop holds a ping for the whole open, 4 s and
 * more. */
#define PING_BOUND_MS 2000
#define CLOSE_DEADLINE_MS 3000
#define MAX_PINGS 2000

static struct harness_agent agent;

/* "tiny": a worker that costs the machine almost nothing. */
static void
setup(void)
{
	static const char *const extra[]
	    = { "--profile", "tiny=sleep 3600", NULL };

	cr_assert_eq(harness_agent_start(&agent, "busy", extra), 0);
}

static void
teardown(void)
{
	harness_agent_stop(&agent, 60000);
}

TestSuite(busy, .init = setup, .fini = teardown, .timeout = 400);

/* The big open runs in its own thread (no Criterion asserts there). */
struct big_open {
	const char *url;
	char session[64];
	uint32_t workers;
	uint64_t op;
	atomic_bool done;
	int rv;
	struct proto_msg reply;
};

static void *
run_big_open(void *arg)
{
	struct big_open *b = arg;
	struct proto_msg req = { .type = PROTO_OPEN };

	req.op = b->op;
	req.u.open.session = b->session;
	req.u.open.profile = "tiny";
	req.u.open.workers = b->workers;
	b->rv = harness_request(b->url, &req, BIG_OPEN_TIMEOUT_MS, &b->reply);
	atomic_store(&b->done, true);
	return NULL;
}

/* Workers of session the agent reports started, or -1 if not listed. */
static int
started_workers(const char *session)
{
	struct proto_msg h;
	struct proto_reply r = ask_status(agent.url, session, &h);
	int n = r.nsessions == 1 ? (int)r.sessions[0].nworkers : -1;

	proto_msg_free(&h);
	return n;
}

/* Starts the open of b's workers in a thread; returns once the agent
 * shows some but not all of them started (false if it never did). */
static bool
start_open_under_way(struct big_open *b, pthread_t *th)
{
	int64_t end = util_now_ms() + 60000;

	b->url = agent.url;
	b->op = util_random_u64();
	cr_assert_eq(pthread_create(th, NULL, run_big_open, b), 0);
	while (!atomic_load(&b->done) && util_now_ms() < end) {
		int n = started_workers(b->session);

		if (n > 0 && n < (int)b->workers)
			return true;
		harness_nap_ms(5);
	}
	return false;
}

struct pings {
	int answered_during_open;
	int64_t max_ms;
};

/* Pings until the big open is answered; each must come within the bound. */
static struct pings
ping_through_the_open(struct big_open *b)
{
	struct pings p = { 0, 0 };

	for (int i = 0; i < MAX_PINGS && !atomic_load(&b->done); i++) {
		struct proto_msg h;
		int64_t t0 = util_now_ms();
		struct proto_reply r = ask_type(agent.url, PROTO_PING, &h);
		int64_t took = util_now_ms() - t0;

		cr_assert_eq(r.code, PROTO_CODE_OK);
		proto_msg_free(&h);
		cr_assert_leq(took, PING_BOUND_MS,
		    "a ping waited %lld ms behind the open", (long long)took);
		if (took > p.max_ms)
			p.max_ms = took;
		p.answered_during_open += !atomic_load(&b->done);
	}
	return p;
}

Test(busy, pings_and_a_close_are_served_while_4096_workers_start)
{
	struct big_open b = { .workers = BIG_OPEN };
	char small[64];
	struct proto_msg h;
	struct proto_reply r;
	struct pings p;
	pthread_t th;

	harness_unique("small", small, sizeof(small));
	harness_unique("big", b.session, sizeof(b.session));
	r = ask_open(agent.url, small, "xl", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "small open: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, small, 2, 10000));

	cr_assert(start_open_under_way(&b, &th),
	    "the big open was never seen "
	    "part-way: it did not run in "
	    "slices");
	/* The close of the other session, in the middle of the open. */
	r = ask_close(agent.url, small, 0, CLOSE_DEADLINE_MS, &h);
	cr_expect_eq(
	    r.code, PROTO_CODE_OK, "close during the open: %s", r.msg);
	cr_expect_leq(r.counts.elapsed_ms, CLOSE_DEADLINE_MS);
	cr_expect_not(atomic_load(&b.done),
	    "the open ended before the close "
	    "was answered: nothing showed");
	proto_msg_free(&h);
	p = ping_through_the_open(&b);
	pthread_join(th, NULL);
	cr_log_info("pings answered during the open: %d, slowest %lld ms",
	    p.answered_during_open, (long long)p.max_ms);
	cr_expect_gt(p.answered_during_open, 0);

	cr_assert_eq(b.rv, 0, "no reply to the big open");
	r = b.reply.u.reply;
	cr_assert_eq(r.code, PROTO_CODE_OK, "big open: %s", r.msg);
	cr_assert_eq(r.counts.workers, BIG_OPEN);
	proto_msg_free(&b.reply);
	cr_assert(harness_wait_procs(b.session, BIG_OPEN, 60000));
	r = ask_close(agent.url, b.session, 0, 60000, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "big close: %s", r.msg);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(b.session), 0);
}

/* A close that comes while the open starts its workers ends both: the
 * close gets ok once every process is gone, the open an error. */
Test(busy, close_during_the_open_fails_the_open_and_leaves_nothing)
{
	struct big_open b = { .workers = 1024 };
	struct proto_msg h;
	struct proto_reply r;
	pthread_t th;

	harness_unique("cut", b.session, sizeof(b.session));
	cr_assert(start_open_under_way(&b, &th));
	r = ask_close(agent.url, b.session, 0, 20000, &h);
	cr_expect_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	proto_msg_free(&h);
	pthread_join(th, NULL);
	cr_assert_eq(b.rv, 0, "no reply to the open");
	r = b.reply.u.reply;
	cr_expect_eq(r.code, PROTO_CODE_ERROR);
	cr_expect_not_null(strstr(r.msg, "closed before"), "open: %s", r.msg);
	proto_msg_free(&b.reply);
	cr_expect_eq(harness_session_procs(b.session), 0);
	cr_expect(harness_wait_session_gone(agent.url, b.session, 10000));
}

/* A controller resends its open (same op) on a new connection while the
 * first still waits: both get the one open's reply, nothing twice. */
Test(busy, resent_open_joins_the_open_under_way)
{
	struct big_open b = { .workers = 1024 };
	struct proto_msg req = { .type = PROTO_OPEN }, h;
	struct proto_reply r;
	pthread_t th;

	harness_unique("resent", b.session, sizeof(b.session));
	cr_assert(start_open_under_way(&b, &th));
	req.op = b.op;
	req.u.open.session = b.session;
	req.u.open.profile = "tiny";
	req.u.open.workers = b.workers;
	cr_assert_eq(
	    harness_request(agent.url, &req, BIG_OPEN_TIMEOUT_MS, &h), 0);
	r = h.u.reply;
	cr_expect_eq(r.code, PROTO_CODE_OK, "resend: %s", r.msg);
	cr_expect_eq(r.counts.workers, b.workers);
	proto_msg_free(&h);
	pthread_join(th, NULL);
	cr_assert_eq(b.rv, 0);
	cr_expect_eq(b.reply.u.reply.code, PROTO_CODE_OK, "first: %s",
	    b.reply.u.reply.msg);
	proto_msg_free(&b.reply);
	cr_expect(harness_wait_procs(b.session, (int)b.workers, 30000),
	    "started once: exactly %u workers", b.workers);
	r = ask_close(agent.url, b.session, 0, 20000, &h);
	cr_expect_eq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}
