/*
 * floor_survey: the floor for one survey of a roster of agents, with nng
 * and nothing else: no retries, no per-node bookkeeping beyond a count, no
 * decoding. Per run:
 *
 *   attach  a raw surveyor (NNG_OPT_RECVBUF 8192, the most nng allows)
 *           starts one non-blocking dialer per URL and waits until every
 *           pipe has reported NNG_PIPE_EV_ADD_POST (SP handshake done);
 *   reply   it sends ONE ping survey, the SP header written by hand
 *           (survey id 0x80000001, big-endian) in front of the msgpack
 *           frame [1, "ping", op, {}], and receives until N distinct pipes
 *           have answered with that survey id;
 *   close   nng_close() of the socket, which closes its N connections
 *           (and wakes N agents, on the same CPUs when they are local).
 *
 * usage: floor_survey ROSTER RUNS TIMEOUT_MS
 * ROSTER has one URL a line. Prints RESULT attach/reply/close/total lines
 * (ms, median over RUNS; total is the three together) and RESULT replies
 * min=.. (fewest distinct replies in a run) of=N. Each wait ends at
 * TIMEOUT_MS.
 */
#include "bench_util.h"

#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_URLS 8192
#define MAX_RUNS 100
#define SURVEY_ID 0x80000001u

/* Pipes attached so far; the pipe callback runs on nng's threads. */
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static size_t attached;

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	pthread_mutex_lock(&mtx);
	attached++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mtx);
}

/* Waits until n pipes attached or timeout_ms; returns the count. */
static size_t
wait_attached(size_t n, int timeout_ms)
{
	double deadline = bench_now_ms() + timeout_ms;
	struct timespec ts;
	size_t got;

	clock_gettime(CLOCK_REALTIME, &ts); /* the condvar's clock */
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mtx);
	while (attached < n && bench_now_ms() < deadline
	    && pthread_cond_timedwait(&cv, &mtx, &ts) == 0)
		;
	got = attached;
	pthread_mutex_unlock(&mtx);
	return got;
}

/* A set of pipe ids (never 0), open addressing; true if id was new. */
static bool
set_add(uint32_t *set, size_t cap, uint32_t id)
{
	size_t i = (id * 2654435761u) & (cap - 1);

	while (set[i] != 0 && set[i] != id)
		i = (i + 1) & (cap - 1);
	if (set[i] == id)
		return false;
	set[i] = id;
	return true;
}

/* The ping survey: SP header by hand, then [1, "ping", op (uint64), {}]. */
static nng_msg *
ping_msg(void)
{
	uint8_t frame[17] = { 0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xcf };
	uint64_t op = 0;
	nng_msg *m;

	/* A new op per run: the agent answers a known one from its cache. */
	if (getrandom(&op, sizeof(op), 0) != sizeof(op) || op == 0)
		op = (uint64_t)(bench_now_ms() * 1e3) | 1;
	for (int i = 0; i < 8; i++)
		frame[8 + i] = (uint8_t)(op >> (56 - 8 * i));
	frame[16] = 0x80; /* empty map */
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, frame, 17) != 0
	    || nng_msg_header_append_u32(m, SURVEY_ID) != 0) {
		fprintf(stderr, "floor_survey: out of memory\n");
		exit(1);
	}
	return m;
}

/* Receives until n distinct pipes answered or the deadline; returns it. */
static size_t
collect(nng_socket s, size_t n, int timeout_ms)
{
	double deadline = bench_now_ms() + timeout_ms;
	size_t cap = 4, got = 0;
	uint32_t *set, hdr;
	nng_msg *m;
	int left;

	while (cap < 4 * n)
		cap *= 2;
	if ((set = calloc(cap, sizeof(*set))) == NULL)
		return 0;
	while (got < n && (left = (int)(deadline - bench_now_ms())) > 0) {
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, left);
		if (nng_recvmsg(s, &m, 0) != 0)
			break;
		if (nng_msg_header_trim_u32(m, &hdr) == 0 && hdr == SURVEY_ID
		    && set_add(set, cap, nng_pipe_id(nng_msg_get_pipe(m))))
			got++;
		nng_msg_free(m);
	}
	free(set);
	return got;
}

/* The times of one run's phases, in ms. */
struct phases {
	double attach, reply, close;
};

/* One run; fills its phase times, returns the replies counted. */
static size_t
run_once(char **urls, size_t n, int timeout_ms, struct phases *ph)
{
	nng_socket s;
	nng_dialer d;
	nng_msg *m;
	size_t got;
	double t0;

	attached = 0;
	if (nng_surveyor0_open_raw(&s) != 0
	    || nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192) != 0
	    || nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe, NULL) != 0) {
		fprintf(stderr, "floor_survey: cannot open the socket\n");
		exit(1);
	}
	t0 = bench_now_ms();
	for (size_t i = 0; i < n; i++) {
		if (nng_dialer_create(&d, s, urls[i]) != 0
		    || nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 50) != 0
		    || nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0)
			fprintf(
			    stderr, "floor_survey: cannot dial %s\n", urls[i]);
	}
	if ((got = wait_attached(n, timeout_ms)) < n)
		fprintf(stderr, "floor_survey: only %zu of %zu attached\n",
		    got, n);
	ph->attach = bench_now_ms() - t0;
	t0 = bench_now_ms();
	m = ping_msg();
	got = 0;
	if (nng_sendmsg(s, m, 0) == 0)
		got = collect(s, n, timeout_ms);
	else
		nng_msg_free(m);
	ph->reply = bench_now_ms() - t0;
	t0 = bench_now_ms();
	nng_close(s);
	ph->close = bench_now_ms() - t0;
	return got;
}

int
main(int argc, char **argv)
{
	static double att[MAX_RUNS], rep[MAX_RUNS], cls[MAX_RUNS],
	    tot[MAX_RUNS];
	struct phases ph;
	size_t n, got, fewest;
	int runs, timeout_ms;
	char **urls;

	if (argc != 4) {
		fprintf(
		    stderr, "usage: floor_survey ROSTER RUNS TIMEOUT_MS\n");
		return 2;
	}
	n = bench_read_urls(argv[1], MAX_URLS, &urls);
	runs = (int)bench_arg(argv[2], 1, MAX_RUNS, "RUNS");
	timeout_ms = (int)bench_arg(argv[3], 1, 600000, "TIMEOUT_MS");
	fewest = n;
	for (int r = 0; r < runs; r++) {
		got = run_once(urls, n, timeout_ms, &ph);
		att[r] = ph.attach;
		rep[r] = ph.reply;
		cls[r] = ph.close;
		tot[r] = ph.attach + ph.reply + ph.close;
		if (got < fewest)
			fewest = got;
	}
	bench_result("attach", att, (size_t)runs);
	bench_result("reply", rep, (size_t)runs);
	bench_result("close", cls, (size_t)runs);
	bench_result("total", tot, (size_t)runs);
	printf("RESULT replies min=%zu of=%zu\n", fewest, n);
	return fewest != n;
}
