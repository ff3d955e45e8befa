#include "metrics.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Scrapes waiting for the loop at once; more are answered 503. */
#define METRICS_MAX_PENDING 64
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Upper bounds of the close-duration buckets, in ms (then +Inf): from a
 * worker that exits on SIGTERM at once to a close that used a long
 * deadline. */
static const int64_t close_buckets_ms[]
    = { 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000 };
#define NBUCKETS (sizeof(close_buckets_ms) / sizeof(close_buckets_ms[0]))

enum { OPEN_OK, OPEN_ERROR, OPEN_REFUSED, NOPEN };
enum {
	CLOSE_OK,
	CLOSE_PARTIAL,
	CLOSE_NOT_FOUND,
	CLOSE_REFUSED,
	CLOSE_ERROR,
	NCLOSE
};
static const char *const open_outcomes[NOPEN] = { "ok", "error", "refused" };
static const char *const close_outcomes[NCLOSE]
    = { "ok", "partial", "not_found", "refused", "error" };

/* The loop's counters (loop thread only: see metrics.h). */
static struct {
	uint64_t opens[NOPEN];
	uint64_t closes[NCLOSE];
	uint64_t kills;
	uint64_t restarts;
	uint64_t close_buckets[NBUCKETS]; /* not cumulative; summed when
	                                     rendered */
	uint64_t close_count;
	int64_t close_sum_ms;
} counters;

struct metrics {
	nng_http_server *srv;
	int efd;
	pthread_mutex_t mtx; /* guards what follows: the handler's side */
	nng_aio *pending[METRICS_MAX_PENDING];
	size_t npending;
	bool closed;
};

/* ---- counters ---------------------------------------------------------- */

static int
open_outcome(enum proto_code code)
{
	if (code == PROTO_CODE_OK)
		return OPEN_OK;
	return code == PROTO_CODE_REFUSED ? OPEN_REFUSED : OPEN_ERROR;
}

static int
close_outcome(enum proto_code code)
{
	switch (code) {
	case PROTO_CODE_OK:
		return CLOSE_OK;
	case PROTO_CODE_PARTIAL:
		return CLOSE_PARTIAL;
	case PROTO_CODE_NOT_FOUND:
		return CLOSE_NOT_FOUND;
	case PROTO_CODE_REFUSED:
		return CLOSE_REFUSED;
	default:
		return CLOSE_ERROR;
	}
}

void
metrics_count_reply(enum proto_type type, enum proto_code code)
{
	if (type == PROTO_OPEN)
		counters.opens[open_outcome(code)]++;
	else if (type == PROTO_CLOSE)
		counters.closes[close_outcome(code)]++;
}

void
metrics_count_kill(void)
{
	counters.kills++;
}

void
metrics_count_restart(void)
{
	counters.restarts++;
}

void
metrics_observe_close(int64_t ms)
{
	if (ms < 0)
		ms = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		if (ms <= close_buckets_ms[i]) {
			counters.close_buckets[i]++;
			break;
		}
	}
	counters.close_count++;
	counters.close_sum_ms += ms;
}

/* ---- the text ---------------------------------------------------------- */

static void
put_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static void
put_label_value(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* name{label="names[i]"} values[i] for each i. */
static void
put_by_label(FILE *f, const char *name, const char *label,
    const char *(*name_of)(int), const uint64_t *values, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%s{%s=\"%s\"} %llu\n", name, label, name_of(i),
		    (unsigned long long)values[i]);
}

/* Label values in the format's style (closefsm_state_name() is "OPENING");
 * DONE and RELEASED leave the table, so they are never counted. */
static const char *const session_states[CLOSEFSM_DONE] = {
	[CLOSEFSM_OPENING] = "opening",
	[CLOSEFSM_RUNNING] = "running",
	[CLOSEFSM_STOPPING] = "stopping",
	[CLOSEFSM_KILLING] = "killing",
};

static const char *
session_state_label(int i)
{
	return session_states[i];
}

static const char *
worker_state_label(int i)
{
	return proto_wstate_name((enum proto_wstate)i);
}

static const char *
open_label(int i)
{
	return open_outcomes[i];
}

static const char *
close_label(int i)
{
	return close_outcomes[i];
}

static void
put_close_histogram(FILE *f)
{
	const char *n = "hpcxl_close_duration_seconds";
	uint64_t cum = 0;

	put_head(f, n, "histogram",
	    "Time from the start of a session's close to its last process "
	    "gone.");
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += counters.close_buckets[i];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", n,
		    (double)close_buckets_ms[i] / 1000.0,
		    (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", n,
	    (unsigned long long)counters.close_count);
	fprintf(f, "%s_sum %.3f\n%s_count %llu\n", n,
	    (double)counters.close_sum_ms / 1000.0, n,
	    (unsigned long long)counters.close_count);
}

static void
put_gauges(FILE *f, const struct metrics_gauges *g)
{
	put_head(f, "hpcxl_sessions", "gauge", "Sessions by state.");
	put_by_label(f, "hpcxl_sessions", "state", session_state_label,
	    g->sessions, CLOSEFSM_DONE);
	put_head(
	    f, "hpcxl_workers", "gauge", "Workers of the sessions by state.");
	put_by_label(f, "hpcxl_workers", "state", worker_state_label,
	    g->workers, METRICS_WSTATES);
	put_head(f, "hpcxl_unhealthy", "gauge",
	    "1 when the node refuses opens (unhealthy mark), else 0.");
	fprintf(f, "hpcxl_unhealthy %d\n", g->unhealthy ? 1 : 0);
	put_head(f, "hpcxl_build_info", "gauge",
	    "The agent's version and process-tracking backend.");
	fputs("hpcxl_build_info{version=\"", f);
	put_label_value(f, g->version);
	fputs("\",backend=\"", f);
	put_label_value(f, g->backend);
	fputs("\"} 1\n", f);
}

static void
put_counters(FILE *f)
{
	put_head(f, "hpcxl_opens_total", "counter",
	    "Open requests answered, by outcome.");
	put_by_label(f, "hpcxl_opens_total", "outcome", open_label,
	    counters.opens, NOPEN);
	put_head(f, "hpcxl_closes_total", "counter",
	    "Close requests answered, by outcome.");
	put_by_label(f, "hpcxl_closes_total", "outcome", close_label,
	    counters.closes, NCLOSE);
	put_close_histogram(f);
	put_head(f, "hpcxl_kills_total", "counter",
	    "Kills of a session's whole process set.");
	fprintf(
	    f, "hpcxl_kills_total %llu\n", (unsigned long long)counters.kills);
	put_head(f, "hpcxl_restarts_total", "counter",
	    "Workers started again by their profile's restart policy.");
	fprintf(f, "hpcxl_restarts_total %llu\n",
	    (unsigned long long)counters.restarts);
}

char *
metrics_render(const struct metrics_gauges *g, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		return NULL;
	put_gauges(f, g);
	put_counters(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- HTTP -------------------------------------------------------------- */

static void
finish_with(nng_aio *aio, const char *text, size_t len, uint16_t status)
{
	nng_http_res *res = NULL;
	int rv = status == NNG_HTTP_STATUS_OK
	    ? nng_http_res_alloc(&res)
	    : nng_http_res_alloc_error(&res, status);

	if (rv == 0 && text != NULL
	    && ((rv = nng_http_res_set_header(
	             res, "Content-Type", METRICS_CONTENT_TYPE))
	            != 0
	        || (rv = nng_http_res_copy_data(res, text, len)) != 0)) {
		nng_http_res_free(res);
	}
	if (rv != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* nng's thread: queue the scrape for the loop, wake it. */
static void
metrics_handler(nng_aio *aio)
{
	struct metrics *m
	    = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	uint64_t one = 1;
	bool queued = false, closed;

	pthread_mutex_lock(&m->mtx);
	closed = m->closed;
	if (!closed && m->npending < METRICS_MAX_PENDING) {
		m->pending[m->npending++] = aio;
		queued = true;
	}
	pthread_mutex_unlock(&m->mtx);
	if (closed)
		nng_aio_finish(aio, NNG_ECLOSED);
	else if (!queued)
		finish_with(aio, NULL, 0, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE);
	else if (write(m->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("metrics: cannot wake the loop: %s", strerror(errno));
}

/* Takes the waiting scrapes into out; returns how many. */
static size_t
take_pending(struct metrics *m, nng_aio **out)
{
	size_t n;

	pthread_mutex_lock(&m->mtx);
	n = m->npending;
	memcpy(out, m->pending, n * sizeof(*out));
	m->npending = 0;
	pthread_mutex_unlock(&m->mtx);
	return n;
}

void
metrics_serve(struct metrics *m, const struct metrics_gauges *g)
{
	nng_aio *aios[METRICS_MAX_PENDING];
	uint64_t v;
	size_t n, len = 0;
	char *text;

	if (m == NULL)
		return;
	if (read(m->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("metrics: eventfd: %s", strerror(errno));
	if ((n = take_pending(m, aios)) == 0)
		return;
	text = metrics_render(g, &len);
	for (size_t i = 0; i < n; i++) {
		if (text != NULL)
			finish_with(aios[i], text, len, NNG_HTTP_STATUS_OK);
		else
			finish_with(aios[i], NULL, 0,
			    NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR);
	}
	free(text);
}

int
metrics_fd(const struct metrics *m)
{
	return m != NULL ? m->efd : -1;
}

/* ---- the listen URL ---------------------------------------------------- */

static int
check_url(const nng_url *u, const char *url, bool allow_insecure)
{
	if (strcmp(u->u_scheme, "http") != 0
	    || (u->u_path[0] != '\0' && strcmp(u->u_path, "/") != 0)
	    || u->u_query != NULL || u->u_fragment != NULL) {
		log_err("metrics listen URL '%s': give http://HOST:PORT (the "
		        "metrics are served at /metrics; no https)",
		    url);
		return HPCXL_ECONFIG;
	}
	if (listen_host_is_loopback(u->u_hostname))
		return 0;
	if (!allow_insecure) {
		log_err("metrics listen URL '%s': the agent serves metrics on "
		        "loopback only (127.0.0.0/8, ::1, localhost); allow "
		        "other addresses with --insecure (allow_insecure = "
		        "true)",
		    url);
		return HPCXL_ECONFIG;
	}
	log_warn("serving metrics on %s (--insecure): they carry no secrets, "
	         "but name the node's sessions' counts to whoever asks",
	    url);
	return 0;
}

/* Logs the bound address (port 0 binds a free port). */
static void
log_bound(const struct metrics *m, const nng_url *u)
{
	nng_sockaddr sa;
	unsigned port = 0;

	if (nng_http_server_get_addr(m->srv, &sa) == 0)
		port = ntohs(sa.s_family == NNG_AF_INET6 ? sa.s_in6.sa_port
		                                         : sa.s_in.sa_port);
	log_info("metrics at http://%s%s%s:%u/metrics",
	    strchr(u->u_hostname, ':') != NULL ? "[" : "", u->u_hostname,
	    strchr(u->u_hostname, ':') != NULL ? "]" : "", port);
}

static int
metrics_start(struct metrics *m, const nng_url *u)
{
	nng_http_handler *h;
	int rv;

	if ((rv = nng_http_server_hold(&m->srv, u)) != 0)
		return rv;
	if ((rv = nng_http_handler_alloc(&h, "/metrics", metrics_handler))
	    != 0)
		return rv;
	if ((rv = nng_http_handler_set_data(h, m, NULL)) != 0
	    || (rv = nng_http_server_add_handler(m->srv, h)) != 0) {
		nng_http_handler_free(h);
		return rv;
	}
	return nng_http_server_start(m->srv);
}

int
metrics_open(const char *url, bool allow_insecure, struct metrics **out)
{
	struct metrics *m;
	nng_url *u;
	int rv;

	if (nng_url_parse(&u, url) != 0) {
		log_err("metrics listen URL '%s' is not a URL (give "
		        "http://HOST:PORT)",
		    url);
		return HPCXL_ECONFIG;
	}
	if ((rv = check_url(u, url, allow_insecure)) != 0) {
		nng_url_free(u);
		return rv;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		nng_url_free(u);
		return HPCXL_ENOMEM;
	}
	pthread_mutex_init(&m->mtx, NULL);
	if ((m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_err("metrics: eventfd: %s", strerror(errno));
		rv = HPCXL_ESYSTEM;
	} else if ((rv = metrics_start(m, u)) != 0) {
		log_err("metrics listen URL '%s': %s", url, nng_strerror(rv));
		rv = HPCXL_ECONFIG;
	} else {
		log_bound(m, u);
	}
	nng_url_free(u);
	if (rv != 0) {
		metrics_close(m);
		return rv;
	}
	*out = m;
	return 0;
}

void
metrics_close(struct metrics *m)
{
	nng_aio *aios[METRICS_MAX_PENDING];
	size_t n;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mtx);
	m->closed = true;
	pthread_mutex_unlock(&m->mtx);
	n = take_pending(m, aios);
	/* A waiting scrape holds its connection: nng's stop waits for it. */
	for (size_t i = 0; i < n; i++)
		nng_aio_finish(aios[i], NNG_ECLOSED);
	if (m->srv != NULL) {
		nng_http_server_stop(m->srv);
		nng_http_server_release(m->srv);
	}
	pthread_mutex_destroy(&m->mtx);
	if (m->efd >= 0)
		close(m->efd);
	free(m);
}
