/*
 * bench_hpcxl: times libhpcxl calls against running agents, through the
 * public API (<hpcxl/hpcxl.h>) only. One mode per invocation; ROSTER is a
 * file with one agent URL a line. Results are RESULT lines (bench_util.h).
 *
 *   open-close ROSTER WORKERS RUNS SETTLE_MS
 *       On one client, RUNS times: open a new session of WORKERS xlsim
 *       workers ("xl" profile) per node, wait SETTLE_MS (so the workers are
 *       up, as after floor_spawn's ready phase), close it. Times the open
 *       and the close call. A run whose open is not ok on every node with
 *       WORKERS workers, or whose close leaves a process, is a failure.
 *   survey ROSTER ping|close cold|warm CALLS TIMEOUT_MS
 *       CALLS pings, or closes of a session no agent has ("empty close":
 *       every node answers already_closed). cold: each call on a new client
 *       (hpcxl_client_open + call + hpcxl_client_close, all timed; the
 *       close is also shown apart, as floor_survey's own close is). warm:
 *       every call on one client; the result is over calls 2..CALLS (the
 *       first is shown apart). Counts unreachable rows over all calls.
 *   overshoot ROSTER RUNS TIMEOUT_MS
 *       RUNS empty closes with TIMEOUT_MS, on a roster where some node does
 *       not answer: how far past TIMEOUT_MS each call returned.
 *   open-ping ROSTER WORKERS PINGS
 *       The loop under load (roster: one agent). PINGS warm pings on an
 *       idle agent (the baseline), then an open of WORKERS "tiny" workers
 *       (sleep; the agent's cost, not the workers') on a second client
 *       while the first pings as fast as it is answered until the open
 *       returns; then a close. Ping times during the open against the
 *       idle ones, and the open's time.
 *   rss ROSTER TIMEOUT_MS
 *       One client for the whole roster, one ping: the process's VmHWM and
 *       VmRSS afterwards (kB), and how many nodes answered.
 *
 * A roster of tls+tcp:// URLs takes its TLS files from $HPCXL_TLS_CERT,
 * $HPCXL_TLS_KEY and $HPCXL_TLS_CA.
 */
#include "bench_util.h"

#include <hpcxl/hpcxl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_URLS 8192
#define MAX_RUNS 100
#define OPEN_CLOSE_TIMEOUT_MS 60000
#define EMPTY_SESSION "bench-nobody"

static char **urls;
static size_t nurls;

static struct hpcxl_client *
client(void)
{
	struct hpcxl_client_opts o = HPCXL_CLIENT_OPTS_INIT;
	struct hpcxl_node *nodes = calloc(nurls, sizeof(*nodes));
	struct hpcxl_client *c;
	char why[1024] = "";
	int rv = HPCXL_ENOMEM;

	/* tls+tcp:// rosters take their files as the CLI does. */
	o.tls_cert = getenv("HPCXL_TLS_CERT");
	o.tls_key = getenv("HPCXL_TLS_KEY");
	o.tls_ca = getenv("HPCXL_TLS_CA");
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	for (size_t i = 0; nodes != NULL && i < nurls; i++)
		nodes[i].url = urls[i];
	if (nodes != NULL)
		rv = hpcxl_client_open_opts(nodes, nurls, &o, &c);
	free(nodes);
	if (rv != 0) {
		fprintf(stderr, "hpcxl_client_open_opts: %s %s\n",
		    hpcxl_strerror(rv), why);
		exit(1);
	}
	return c;
}

/* A report's rows in state s. */
static size_t
rows_in(const struct hpcxl_report *r, enum hpcxl_node_state s)
{
	size_t k = 0;

	for (size_t i = 0; r != NULL && i < r->nnodes; i++)
		k += r->nodes[i].state == s;
	return k;
}

/* Every row ok with w workers (open), or closed with nothing left. */
static bool
all_done(const struct hpcxl_report *r, bool open, unsigned w)
{
	for (size_t i = 0; r != NULL && i < r->nnodes; i++) {
		const struct hpcxl_node_report *n = &r->nodes[i];

		if (open
		        ? n->state != HPCXL_NODE_OK || n->workers != w
		        : n->state != HPCXL_NODE_CLOSED || n->remaining != 0) {
			fprintf(stderr, "%s: %s: %s\n", n->url,
			    hpcxl_node_state_name(n->state), n->msg);
			return false;
		}
	}
	return r != NULL;
}

static int
open_close(int argc, char **argv)
{
	static double topen[MAX_RUNS], tclose[MAX_RUNS];
	struct hpcxl_open_params p = { .profile = "xl" };
	struct hpcxl_client *c = client();
	struct hpcxl_report *r;
	int runs, settle, failures = 0;
	char session[64];
	double t0;

	if (argc != 3)
		return 2;
	p.workers = (unsigned)bench_arg(argv[0], 1, 4096, "WORKERS");
	runs = (int)bench_arg(argv[1], 1, MAX_RUNS, "RUNS");
	settle = (int)bench_arg(argv[2], 0, 60000, "SETTLE_MS");
	for (int i = 0; i < runs; i++) {
		snprintf(
		    session, sizeof(session), "bench-%d-%d", (int)getpid(), i);
		p.session = session;
		r = NULL;
		t0 = bench_now_ms();
		hpcxl_open_session(c, &p, OPEN_CLOSE_TIMEOUT_MS, &r);
		topen[i] = bench_now_ms() - t0;
		failures += !all_done(r, true, p.workers);
		hpcxl_report_free(r);
		bench_nap_ms(settle);
		r = NULL;
		t0 = bench_now_ms();
		hpcxl_close_session(c, session, OPEN_CLOSE_TIMEOUT_MS, &r);
		tclose[i] = bench_now_ms() - t0;
		failures += !all_done(r, false, 0);
		hpcxl_report_free(r);
	}
	hpcxl_client_close(c);
	bench_result("open", topen, (size_t)runs);
	bench_result("close", tclose, (size_t)runs);
	printf("RESULT failures count=%d\n", failures);
	return failures != 0;
}

/* One ping or empty close; adds its unreachable rows to *unreach. */
static void
survey_call(struct hpcxl_client *c, bool ping, int timeout_ms, size_t *unreach,
    size_t *bad_calls)
{
	struct hpcxl_report *r = NULL;
	size_t u;

	if (ping)
		hpcxl_ping(c, timeout_ms, &r);
	else
		hpcxl_close_session(c, EMPTY_SESSION, timeout_ms, &r);
	u = r != NULL ? rows_in(r, HPCXL_NODE_UNREACHABLE) : nurls;
	*unreach += u;
	*bad_calls += r == NULL || !r->ok;
	hpcxl_report_free(r);
}

static int
survey(int argc, char **argv)
{
	static double t[MAX_RUNS], closing[MAX_RUNS];
	struct hpcxl_client *c = NULL;
	size_t unreach = 0, bad_calls = 0;
	bool ping, warm;
	int calls, timeout_ms;
	double t0, t1;

	if (argc != 4)
		return 2;
	ping = strcmp(argv[0], "ping") == 0;
	warm = strcmp(argv[1], "warm") == 0;
	calls = (int)bench_arg(argv[2], warm ? 2 : 1, MAX_RUNS, "CALLS");
	timeout_ms = (int)bench_arg(argv[3], 0, 600000, "TIMEOUT_MS");
	if (warm)
		c = client();
	for (int i = 0; i < calls; i++) {
		t0 = bench_now_ms();
		if (!warm)
			c = client();
		survey_call(c, ping, timeout_ms, &unreach, &bad_calls);
		t1 = bench_now_ms();
		if (!warm) {
			hpcxl_client_close(c);
			c = NULL;
		}
		t[i] = bench_now_ms() - t0;
		closing[i] = bench_now_ms() - t1;
	}
	hpcxl_client_close(c);
	if (warm) {
		printf("RESULT first ms=%.1f\n", t[0]);
		bench_result("call", t + 1, (size_t)calls - 1);
	} else {
		bench_result("call", t, (size_t)calls);
		bench_result("close", closing, (size_t)calls);
	}
	printf("RESULT unreachable rows=%zu calls=%zu of=%d\n", unreach,
	    bad_calls, calls);
	return 0;
}

static int
overshoot(int argc, char **argv)
{
	static double over[MAX_RUNS];
	struct hpcxl_client *c = client();
	struct hpcxl_report *r;
	size_t fewest = nurls, ok;
	int runs, timeout_ms;
	double t0;

	if (argc != 2)
		return 2;
	runs = (int)bench_arg(argv[0], 1, MAX_RUNS, "RUNS");
	timeout_ms = (int)bench_arg(argv[1], 0, 600000, "TIMEOUT_MS");
	for (int i = 0; i < runs; i++) {
		r = NULL;
		t0 = bench_now_ms();
		hpcxl_close_session(c, EMPTY_SESSION, timeout_ms, &r);
		over[i] = bench_now_ms() - t0 - timeout_ms;
		ok = rows_in(r, HPCXL_NODE_ALREADY_CLOSED);
		if (ok < fewest)
			fewest = ok;
		hpcxl_report_free(r);
	}
	hpcxl_client_close(c);
	bench_result("overshoot", over, (size_t)runs);
	printf("RESULT answered min=%zu of=%zu\n", fewest, nurls);
	return 0;
}

#define MAX_PINGS 100000
#define PING_TIMEOUT_MS 10000

struct bg_open {
	struct hpcxl_open_params p;
	atomic_bool done;
	bool ok;
	double ms;
};

static void *
bg_open_run(void *arg)
{
	struct bg_open *b = arg;
	struct hpcxl_client *c = client();
	struct hpcxl_report *r = NULL;
	double t0 = bench_now_ms();

	hpcxl_open_session(c, &b->p, OPEN_CLOSE_TIMEOUT_MS, &r);
	b->ms = bench_now_ms() - t0;
	b->ok = all_done(r, true, b->p.workers);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
	atomic_store(&b->done, true);
	return NULL;
}

/* One ping's time in ms, or -1 when a node did not answer. */
static double
timed_ping(struct hpcxl_client *c)
{
	struct hpcxl_report *r = NULL;
	double t0 = bench_now_ms(), ms;

	hpcxl_ping(c, PING_TIMEOUT_MS, &r);
	ms = bench_now_ms() - t0;
	if (r == NULL || !r->ok)
		ms = -1;
	hpcxl_report_free(r);
	return ms;
}

static int
open_ping(int argc, char **argv)
{
	static double idle[MAX_RUNS], during[MAX_PINGS];
	struct bg_open b = { .p = { .profile = "tiny" } };
	struct hpcxl_client *c = client();
	struct hpcxl_report *r = NULL;
	size_t n = 0, lost = 0;
	char session[64];
	pthread_t th;
	int pings;

	if (argc != 2)
		return 2;
	b.p.workers = (unsigned)bench_arg(argv[0], 1, 4096, "WORKERS");
	pings = (int)bench_arg(argv[1], 2, MAX_RUNS, "PINGS");
	timed_ping(c); /* connects */
	for (int i = 0; i < pings; i++)
		lost += (idle[i] = timed_ping(c)) < 0;
	snprintf(session, sizeof(session), "bench-ping-%d", (int)getpid());
	b.p.session = session;
	if (pthread_create(&th, NULL, bg_open_run, &b) != 0)
		return 1;
	while (!atomic_load(&b.done) && n < MAX_PINGS) {
		double ms = timed_ping(c);

		if (!atomic_load(&b.done))
			lost += (during[n++] = ms) < 0;
	}
	pthread_join(th, NULL);
	hpcxl_close_session(c, session, OPEN_CLOSE_TIMEOUT_MS, &r);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
	bench_result("idle", idle, (size_t)pings);
	if (n > 0)
		bench_result("during", during, n);
	printf("RESULT open ms=%.1f ok=%d pings=%zu lost=%zu\n", b.ms, b.ok, n,
	    lost);
	return !b.ok || lost > 0;
}

/* Value in kB of a "Name:   123 kB" line of /proc/self/status; -1. */
static long
status_kb(const char *name)
{
	char line[256];
	size_t len = strlen(name);
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && kb < 0 && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, len) == 0 && line[len] == ':')
			kb = strtol(line + len + 1, NULL, 10);
	}
	if (f != NULL)
		fclose(f);
	return kb;
}

static int
rss(int argc, char **argv)
{
	struct hpcxl_client *c = client();
	struct hpcxl_report *r = NULL;
	int timeout_ms;

	if (argc != 1)
		return 2;
	timeout_ms = (int)bench_arg(argv[0], 0, 600000, "TIMEOUT_MS");
	hpcxl_ping(c, timeout_ms, &r);
	printf("RESULT rss hwm_kb=%ld rss_kb=%ld ok=%zu of=%zu\n",
	    status_kb("VmHWM"), status_kb("VmRSS"), rows_in(r, HPCXL_NODE_OK),
	    nurls);
	hpcxl_report_free(r);
	hpcxl_client_close(c);
	return 0;
}

int
main(int argc, char **argv)
{
	int rv = 2;

	if (argc >= 3) {
		nurls = bench_read_urls(argv[2], MAX_URLS, &urls);
		if (strcmp(argv[1], "open-close") == 0)
			rv = open_close(argc - 3, argv + 3);
		else if (strcmp(argv[1], "survey") == 0)
			rv = survey(argc - 3, argv + 3);
		else if (strcmp(argv[1], "overshoot") == 0)
			rv = overshoot(argc - 3, argv + 3);
		else if (strcmp(argv[1], "open-ping") == 0)
			rv = open_ping(argc - 3, argv + 3);
		else if (strcmp(argv[1], "rss") == 0)
			rv = rss(argc - 3, argv + 3);
	}
	if (rv == 2)
		fprintf(stderr,
		    "usage: bench_hpcxl open-close ROSTER WORKERS RUNS "
		    "SETTLE_MS\n"
		    "       bench_hpcxl survey ROSTER ping|close cold|warm "
		    "CALLS TIMEOUT_MS\n"
		    "       bench_hpcxl overshoot ROSTER RUNS TIMEOUT_MS\n"
		    "       bench_hpcxl open-ping ROSTER WORKERS PINGS\n"
		    "       bench_hpcxl rss ROSTER TIMEOUT_MS\n");
	return rv;
}
