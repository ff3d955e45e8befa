/*
 * The agent's Prometheus metrics (--metrics-listen), end to end: a real
 * agent serving on a free loopback port, real xlsim workers, scraped with
 * a plain HTTP/1.1 GET over a TCP socket, during a session and after its
 * close; the text is checked line by line against format 0.0.4.
 */
#include "ask.h"
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 3
#define CLOSE_DEADLINE_MS 8000
#define PROCS_TIMEOUT_MS 5000
#define SCRAPE_TIMEOUT_S 10

static struct harness_agent agent;

static const char *const metrics_args[]
    = { "--metrics-listen", "http://127.0.0.1:0", NULL };

static void
start_agent(void)
{
	cr_assert_eq(harness_agent_start(&agent, "tm", metrics_args), 0,
	    "agent did not start (its log is above)");
}

static void
stop_agent(void)
{
	harness_agent_stop(&agent, 15000);
}

/* The port the agent logged ("metrics at http://127.0.0.1:PORT/..."): the
 * log line comes before the ready file, which the harness waited for. */
static unsigned
metrics_port(void)
{
	char path[PATH_MAX + 16], line[1024];
	unsigned port = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.log", agent.dir);
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, "metrics at http://127.0.0.1:");

		if (p != NULL)
			port = (unsigned)strtoul(p + 28, NULL, 10);
	}
	fclose(f);
	cr_assert_neq(port, 0, "no 'metrics at' line in %s", path);
	return port;
}

/* GET path over a new connection; the whole response, malloc'd. */
static char *
http_get(unsigned port, const char *path)
{
	struct sockaddr_in sa
	    = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = SCRAPE_TIMEOUT_S };
	char req[256];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	cr_assert_not_null(buf);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	    path);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 1024)
			cr_assert_not_null(buf = realloc(buf, cap *= 2));
	}
	close(fd);
	cr_assert_geq(n, 0, "the scrape timed out or failed");
	buf[len] = '\0';
	return buf;
}

/* The body of a 200 response to GET /metrics, malloc'd. */
static char *
scrape(void)
{
	char *resp = http_get(metrics_port(), "/metrics");
	char *body = strstr(resp, "\r\n\r\n");

	cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
	cr_assert_not_null(strstr(resp, "version=0.0.4"), "%s", resp);
	cr_assert_not_null(body);
	body = strdup(body + 4);
	free(resp);
	return body;
}

/* The value of the sample line that starts with "series ", or -1. */
static double
sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return -1;
}

/* name of a sample line without the histogram suffix, into out. */
static void
family_of(const char *line, char *out, size_t len)
{
	size_t n = strcspn(line, "{ ");
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

	snprintf(out, len, "%.*s", (int)n, line);
	for (size_t i = 0; i < 3; i++) {
		size_t s = strlen(suffixes[i]), o = strlen(out);

		if (o > s && strcmp(out + o - s, suffixes[i]) == 0) {
			char typed[256];

			snprintf(
			    typed, sizeof(typed), "%.*s", (int)(o - s), out);
			snprintf(out, len, "%s", typed);
		}
	}
}

/* True when text holds "# TYPE family " and "# HELP family ". */
static bool
has_heads(const char *text, const char *family)
{
	char t[300], h[300];

	snprintf(t, sizeof(t), "# TYPE %s ", family);
	snprintf(h, sizeof(h), "# HELP %s ", family);
	return strstr(text, t) != NULL && strstr(text, h) != NULL;
}

/* One sample line: name{label="value",...} number. */
static bool
sample_line_ok(const char *line)
{
	const char *p = line;
	char *end;

	if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == ':'))
		return false;
	p += strspn(p,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
	    ":");
	if (*p == '{') {
		while (*p != '}') {
			p++;
			p += strspn(p, "abcdefghijklmnopqrstuvwxyz_");
			if (p[0] != '=' || p[1] != '"')
				return false;
			for (p += 2; *p != '"'; p++) {
				if (*p == '\0' || *p == '\n')
					return false;
				if (*p == '\\')
					p++;
			}
			p++;
			if (*p != ',' && *p != '}')
				return false;
		}
		p++;
	}
	if (*p != ' ')
		return false;
	strtod(p + 1, &end);
	return end != p + 1 && (*end == '\n' || *end == '\0');
}

/* Every line is a HELP, a TYPE or a sample of a family with both. */
static void
check_format(const char *text)
{
	int samples = 0;

	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		char line[512], family[256];

		cr_assert_not_null(nl, "the text ends without a newline");
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if (strncmp(line, "# HELP ", 7) == 0
		    || strncmp(line, "# TYPE ", 7) == 0) {
			cr_assert_gt(strlen(line), 9, "%s", line);
		} else {
			cr_assert(sample_line_ok(line), "bad line '%s'", line);
			family_of(line, family, sizeof(family));
			cr_assert(has_heads(text, family),
			    "no HELP/TYPE for '%s'", family);
			samples++;
		}
		p = nl + 1;
	}
	cr_assert_gt(samples, 20);
}

TestSuite(metrics, .init = start_agent, .fini = stop_agent);

Test(metrics, a_session_and_its_close)
{
	struct proto_msg h;
	struct proto_reply r;
	char id[64], *text;

	harness_unique("s", id, sizeof(id));
	r = ask_open(agent.url, id, "xl", NWORKERS, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, NWORKERS, PROCS_TIMEOUT_MS));

	text = scrape();
	check_format(text);
	cr_expect_eq(sample(text, "hpcxl_sessions{state=\"running\"}"), 1);
	cr_expect_eq(sample(text, "hpcxl_workers{state=\"running\"}"),
	    NWORKERS, "%s", text);
	cr_expect_eq(sample(text, "hpcxl_opens_total{outcome=\"ok\"}"), 1);
	cr_expect_eq(sample(text, "hpcxl_closes_total{outcome=\"ok\"}"), 0);
	cr_expect_eq(sample(text, "hpcxl_close_duration_seconds_count"), 0);
	cr_expect_eq(sample(text, "hpcxl_unhealthy"), 0);
	cr_expect_not_null(strstr(text, "hpcxl_build_info{version=\""));
	free(text);

	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	proto_msg_free(&h);

	text = scrape();
	check_format(text);
	cr_expect_eq(sample(text, "hpcxl_closes_total{outcome=\"ok\"}"), 1);
	cr_expect_eq(sample(text, "hpcxl_close_duration_seconds_count"), 1);
	cr_expect_eq(
	    sample(text, "hpcxl_close_duration_seconds_bucket{le=\"+Inf\"}"),
	    1);
	cr_expect_eq(sample(text, "hpcxl_sessions{state=\"running\"}"), 0);
	cr_expect_eq(sample(text, "hpcxl_workers{state=\"running\"}"), 0);
	cr_expect_eq(sample(text, "hpcxl_workers{state=\"exited\"}"), 0);
	cr_expect_eq(sample(text, "hpcxl_opens_total{outcome=\"ok\"}"), 1);
	free(text);
}

Test(metrics, outcomes_of_refused_and_unknown)
{
	struct proto_msg h;
	struct proto_reply r;
	char *text;

	r = ask_close(agent.url, "no-such-session", 0, 1000, &h);
	cr_assert_eq(r.code, PROTO_CODE_NOT_FOUND, "close: %s", r.msg);
	proto_msg_free(&h);
	r = ask_open(agent.url, "tm-broken", "broken", 1, 0, &h);
	cr_assert_neq(r.code, PROTO_CODE_OK);
	proto_msg_free(&h);

	text = scrape();
	check_format(text);
	cr_expect_eq(
	    sample(text, "hpcxl_closes_total{outcome=\"not_found\"}"), 1);
	cr_expect_eq(sample(text, "hpcxl_opens_total{outcome=\"error\"}"), 1);
	cr_expect_eq(sample(text, "hpcxl_opens_total{outcome=\"ok\"}"), 0);
	free(text);
}

/* Opens n workers of profile as a new session (its id into id). */
static void
open_session(char *id, size_t len, const char *profile, uint32_t n)
{
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("s", id, len);
	r = ask_open(agent.url, id, profile, n, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open %s: %s", profile, r.msg);
	proto_msg_free(&h);
}

/* A worker that ignores SIGTERM is killed at the end of the 1 s grace:
 * a kill is counted and the close lands in the [1 s, 2.5 s] buckets.
 * Exactly 1.000 s is "le 1" (the kill and the reap can fall in the
 * grace's last millisecond): the buckets say "over 0.5 s", the sum says
 * "at least 1 s". */
Test(metrics, a_kill_and_a_slow_close)
{
	struct proto_msg h;
	struct proto_reply r;
	char id[64], *text;

	open_session(id, sizeof(id), "xl-ignore", 1);
	cr_assert(harness_wait_ready(&agent, id, 1, PROCS_TIMEOUT_MS));
	r = ask_close(agent.url, id, 0, CLOSE_DEADLINE_MS, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	proto_msg_free(&h);

	text = scrape();
	cr_expect_geq(sample(text, "hpcxl_kills_total"), 1, "%s", text);
	cr_expect_eq(
	    sample(text, "hpcxl_close_duration_seconds_bucket{le=\"0.5\"}"),
	    0);
	cr_expect_eq(
	    sample(text, "hpcxl_close_duration_seconds_bucket{le=\"2.5\"}"),
	    1);
	/* The one close took the whole grace. */
	cr_expect_geq(sample(text, "hpcxl_close_duration_seconds_sum"), 1.0);
	free(text);
}

/* xl-restart crashes after 100 ms and is restarted after 1 s: scraped
 * until the counter shows it (the restart's time is the agent's). */
Test(metrics, restarts_are_counted)
{
	char id[64], *text = NULL;
	double n = 0;

	open_session(id, sizeof(id), "xl-restart", 1);
	for (int i = 0; i < 100 && n < 1; i++) {
		if (i > 0)
			harness_nap_ms(100);
		free(text);
		text = scrape();
		n = sample(text, "hpcxl_restarts_total");
	}
	cr_expect_geq(n, 1, "%s", text);
	free(text);
}

Test(metrics, other_paths_are_not_found)
{
	char *resp = http_get(metrics_port(), "/");

	cr_expect(strncmp(resp, "HTTP/1.1 404", 12) == 0, "%s", resp);
	free(resp);
}

/* The agent with these metrics arguments refuses to start: exit 2 with
 * a message naming the URL and holding why. */
static void
refused(const char *url, const char *insecure, const char *why)
{
	const char *argv[] = { "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1",
		harness_bin("hpcxl-agent"), "--listen", "tcp://127.0.0.1:0",
		"--state-dir", "/nonexistent/hpcxl-test-metrics",
		"--metrics-listen", url, insecure, NULL };
	struct harness_run_result res;

	cr_assert_eq(harness_run_bounded(argv, 10000, &res), 0);
	cr_expect(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 2,
	    "%s: status %d", url, res.status);
	cr_expect_not_null(strstr(res.out, url), "%s", res.out);
	cr_expect_not_null(strstr(res.out, why), "%s", res.out);
	free(res.out);
}

Test(metrics_refused, bad_urls_exit_2)
{
	refused("http://10.1.2.3:9742", NULL, "loopback only");
	refused("not a url", NULL, "not a URL");
	refused("https://127.0.0.1:9742", NULL, "http://HOST:PORT");
	refused("http://127.0.0.1:9742/other", NULL, "http://HOST:PORT");
}
