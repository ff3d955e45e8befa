/*
 * The public entry points: argument checks, one request per operation, one
 * survey (two for an open that has to be rolled back), one report. The
 * connections are the fleet's (fleet.c), a call's exchange the survey's
 * (survey.c).
 */
#include "hpcxl/hpcxl.h"

#include "fleet.h"
#include "report.h"
#include "survey.h"

#include "hpcxl/common/log.h"
#include "hpcxl/common/tls.h"
#include "hpcxl/common/util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hpcxl_client {
	size_t n;
	char **names; /* owned, by row */
	char **urls; /* owned, by row */
	struct fleet *fleet;
	struct survey_opts opts; /* names and progress reports */
};

/* Longest node name accepted (the CLI allows less). */
#define CLIENT_NAME_MAX 255

static int
client_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* False if two of strs[0..n) are equal; sorts a copy: O(n log n). */
static int
client_check_unique(char *const *strs, size_t n)
{
	char **sorted;
	size_t i;
	int rv = 0;

	if ((sorted = malloc(n * sizeof(*sorted))) == NULL)
		return HPCXL_ENOMEM;
	memcpy(sorted, strs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), client_cmp_str);
	for (i = 1; rv == 0 && i < n; i++) {
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			rv = HPCXL_EINVAL;
	}
	free(sorted);
	return rv;
}

static int
client_copy_nodes(
    struct hpcxl_client *c, const struct hpcxl_node *nodes, size_t n)
{
	const char *name;

	if ((c->names = calloc(n, sizeof(*c->names))) == NULL
	    || (c->urls = calloc(n, sizeof(*c->urls))) == NULL)
		return HPCXL_ENOMEM;
	for (c->n = 0; c->n < n; c->n++) {
		if (nodes[c->n].url == NULL)
			return HPCXL_EINVAL;
		name = nodes[c->n].name != NULL ? nodes[c->n].name
		                                : nodes[c->n].url;
		if (name[0] == '\0' || strlen(name) > CLIENT_NAME_MAX)
			return HPCXL_EINVAL;
		c->names[c->n] = strdup(name);
		c->urls[c->n] = strdup(nodes[c->n].url);
		if (c->names[c->n] == NULL || c->urls[c->n] == NULL) {
			c->n++; /* frees what was copied */
			return HPCXL_ENOMEM;
		}
	}
	return 0;
}

/*
 * Copies a caller's struct that starts with its size (hpcxl.h, rule 2) into
 * ours of our_size bytes, as far as the caller's header had it, zeroing the
 * rest: size 0 stands for first_size, the struct's first layout. Fails on
 * a size below min_size or above ours (a later header's struct).
 */
static int
client_take_sized(const void *given, size_t min_size, size_t first_size,
    void *ours, size_t our_size)
{
	size_t size;

	memcpy(&size, given, sizeof(size));
	if (size == 0)
		size = first_size;
	if (size < min_size || size > our_size)
		return HPCXL_EINVAL;
	memset(ours, 0, our_size);
	memcpy(ours, given, size);
	return 0;
}

/* End of a field: the size of the layout that ends with it. */
#define CLIENT_UPTO(type, field)                                              \
	(offsetof(type, field) + sizeof(((type *)0)->field))

/* The caller's options, as far as its header had them; zero beyond. */
static int
client_take_opts(
    const struct hpcxl_client_opts *given, struct hpcxl_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (given == NULL)
		return 0;
	if (client_take_sized(given,
	        offsetof(struct hpcxl_client_opts, errbuf),
	        CLIENT_UPTO(struct hpcxl_client_opts, errbuf_len), o,
	        sizeof(*o))
	    != 0)
		return HPCXL_EINVAL;
	util_set_err(o->errbuf, o->errbuf_len, "%s", "");
	return 0;
}

/* The first tls+tcp:// node of c's roster, or c->n. */
static size_t
client_first_tls_node(const struct hpcxl_client *c)
{
	size_t i;

	for (i = 0; i < c->n && !tls_url(c->urls[i]); i++)
		;
	return i;
}

/* Reads the TLS files of o into pem; a tls+tcp:// node needs a CA. */
static int
client_load_tls(const struct hpcxl_client *c,
    const struct hpcxl_client_opts *o, struct tls_pem *pem)
{
	size_t row = client_first_tls_node(c);

	if (row < c->n && o->tls_ca == NULL) {
		util_set_err(o->errbuf, o->errbuf_len,
		    "node '%s' (%s): a tls+tcp:// node needs a CA (tls_ca) "
		    "to check its agent's certificate against",
		    c->names[row], c->urls[row]);
		return HPCXL_ECONFIG;
	}
	return tls_pem_load(
	    pem, o->tls_cert, o->tls_key, o->tls_ca, o->errbuf, o->errbuf_len);
}

static int
client_open_fleet(struct hpcxl_client *c, const struct hpcxl_client_opts *o)
{
	struct tls_pem pem;
	size_t bad_row;
	int rv;

	if ((rv = client_load_tls(c, o, &pem)) != 0)
		return rv;
	rv = fleet_open(
	    (const char *const *)c->urls, c->n, &pem, &c->fleet, &bad_row);
	tls_pem_free(&pem);
	if (rv == HPCXL_EINVAL) {
		log_debug("cannot dial '%s'", c->urls[bad_row]);
		util_set_err(o->errbuf, o->errbuf_len,
		    "node '%s': invalid URL '%s'", c->names[bad_row],
		    c->urls[bad_row]);
	}
	return rv;
}

int
hpcxl_client_open_opts(const struct hpcxl_node *nodes, size_t n,
    const struct hpcxl_client_opts *opts, struct hpcxl_client **out)
{
	struct hpcxl_client_opts o;
	struct hpcxl_client *c;
	int rv;

	if (nodes == NULL || n == 0 || out == NULL
	    || client_take_opts(opts, &o) != 0)
		return HPCXL_EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return HPCXL_ENOMEM;
	if ((rv = client_copy_nodes(c, nodes, n)) != 0
	    || (rv = client_check_unique(c->names, n)) != 0
	    || (rv = client_check_unique(c->urls, n)) != 0
	    || (rv = client_open_fleet(c, &o)) != 0)
		goto out;
	c->opts.names = (const char *const *)c->names;
	*out = c;
	c = NULL;
out:
	hpcxl_client_close(c);
	return rv;
}

int
hpcxl_client_open_nodes(
    const struct hpcxl_node *nodes, size_t n, struct hpcxl_client **out)
{
	return hpcxl_client_open_opts(nodes, n, NULL, out);
}

int
hpcxl_client_open(
    const char *const *urls, size_t nurls, struct hpcxl_client **out)
{
	struct hpcxl_node *nodes;
	size_t i;
	int rv;

	if (urls == NULL || nurls == 0)
		return HPCXL_EINVAL;
	if ((nodes = calloc(nurls, sizeof(*nodes))) == NULL)
		return HPCXL_ENOMEM;
	for (i = 0; i < nurls; i++)
		nodes[i].url = urls[i];
	rv = hpcxl_client_open_nodes(nodes, nurls, out);
	free(nodes);
	return rv;
}

int
hpcxl_url_check(const char *url)
{
	return fleet_url_check(url);
}

void
hpcxl_client_close(struct hpcxl_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	fleet_close(c->fleet);
	for (i = 0; i < c->n; i++) {
		free(c->names[i]);
		free(c->urls[i]);
	}
	free(c->names);
	free(c->urls);
	free(c);
}

void
hpcxl_client_interrupt(struct hpcxl_client *c)
{
	if (c != NULL)
		fleet_interrupt(c->fleet);
}

void
hpcxl_client_set_progress(struct hpcxl_client *c,
    void (*fn)(const struct hpcxl_progress *p, void *arg), void *arg,
    int interval_ms)
{
	if (c == NULL)
		return;
	c->opts.progress = interval_ms > 0 ? fn : NULL;
	c->opts.arg = arg;
	c->opts.interval_ms = interval_ms;
}

void
hpcxl_set_log_level(int level)
{
	log_set_level(level);
}

/* libhpcxl's copy of common/log.c is its own (the version script keeps it
 * private), so this sink takes the library's lines only: a program's own
 * use of log.c, as the CLI's, still goes to stderr. */
void
hpcxl_set_log_callback(hpcxl_log_fn *fn, void *arg)
{
	log_set_sink(fn, arg);
}

const char *
hpcxl_version(void)
{
	return HPCXL_VERSION;
}

static int
client_resolve_timeout(int timeout_ms)
{
	return timeout_ms < 0 ? HPCXL_DEFAULT_TIMEOUT_MS : timeout_ms;
}

/*
 * Surveys the targeted rows (NULL: all) with req under a fresh op: the op
 * is the same for every resend of this survey, so agents answer repeats from
 * their cache (or join a close in progress). results: c->n zeroed rows.
 */
static int
client_survey(struct hpcxl_client *c, struct proto_msg *req, int timeout_ms,
    const bool *targets, struct survey_result *results)
{
	req->op = util_random_u64();
	return survey_run(
	    c->fleet, req, timeout_ms, targets, &c->opts, results);
}

/* Runs req against the whole roster and builds the report. */
static int
client_call(struct hpcxl_client *c, struct proto_msg *req, const char *session,
    int timeout_ms, struct hpcxl_report **out)
{
	int64_t start_ms = util_now_ms();
	struct survey_result *results;
	struct hpcxl_report *r = NULL;
	int rv;

	if ((results = calloc(c->n, sizeof(*results))) == NULL)
		return HPCXL_ENOMEM;
	rv = client_survey(
	    c, req, client_resolve_timeout(timeout_ms), NULL, results);
	if (rv != 0)
		goto out;
	rv = report_build((const char *const *)c->names,
	    (const char *const *)c->urls, results, c->n, req->type, session,
	    util_now_ms() - start_ms, &r);
	survey_results_free(results, c->n);
	if (rv != 0)
		goto out;
	*out = r;
	rv = r->ok ? 0 : HPCXL_EPARTIAL;
out:
	free(results);
	return rv;
}

/* ---- open, and its roll-back ------------------------------------------ */

/* A node may run workers of the session unless it answered that it did
 * not start any (refused, error, bad_request): an unreachable node may have
 * opened it and lost only the reply. */
static bool
client_may_run(const struct survey_result *res)
{
	return !res->answered || res->reply.code == PROTO_CODE_OK
	    || res->reply.code == PROTO_CODE_PARTIAL;
}

static size_t
client_count_open(const struct survey_result *results, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += results[i].answered
		    && results[i].reply.code == PROTO_CODE_OK;
	return k;
}

/* Puts row i of the close's report in r in place of the open's, led by
 * why the session was closed. */
static int
client_take_close_row(struct hpcxl_report *r, struct hpcxl_report *closing,
    size_t i, size_t nopen, size_t n, size_t need)
{
	struct hpcxl_node_report *closed = &closing->nodes[i];
	char *msg;

	if (asprintf(&msg,
	        "session closed again: %zu of %zu nodes opened, %zu "
	        "needed%s%s",
	        nopen, n, need, closed->msg[0] != '\0' ? "; " : "",
	        closed->msg)
	    < 0)
		return HPCXL_ENOMEM;
	free(closed->msg);
	closed->msg = msg;
	report_swap_rows(r, closing, i); /* the open's row goes with closing */
	return 0;
}

/*
 * Closes session on every node that may run it, with what is left of the
 * call's timeout, and rewrites those rows of r with what the close found.
 */
static int
client_roll_back(struct hpcxl_client *c, const char *session,
    const struct survey_result *opened, size_t need, int64_t deadline_ms,
    struct hpcxl_report *r)
{
	struct proto_msg req = { .type = PROTO_CLOSE };
	size_t i, nopen = client_count_open(opened, c->n);
	struct survey_result *results = calloc(c->n, sizeof(*results));
	bool *targets = calloc(c->n, sizeof(*targets));
	struct hpcxl_report *closed = NULL;
	int64_t left_ms = deadline_ms - util_now_ms();
	int rv = HPCXL_ENOMEM;

	if (results == NULL || targets == NULL)
		goto out;
	for (i = 0; i < c->n; i++)
		targets[i] = client_may_run(&opened[i]);
	req.u.close.session = (char *)session;
	log_info("%s: %zu of %zu nodes opened, %zu needed: closing it again",
	    session, nopen, c->n, need);
	rv = client_survey(
	    c, &req, left_ms > 0 ? (int)left_ms : 0, targets, results);
	if (rv == 0)
		rv = report_build((const char *const *)c->names,
		    (const char *const *)c->urls, results, c->n, PROTO_CLOSE,
		    session, 0, &closed);
	for (i = 0; rv == 0 && i < c->n; i++) {
		if (targets[i])
			rv = client_take_close_row(
			    r, closed, i, nopen, c->n, need);
	}
	r->ok = false;
	survey_results_free(results, c->n);
out:
	hpcxl_report_free(closed);
	free(results);
	free(targets);
	return rv;
}

/*
 * The open itself may take three quarters of the timeout: the rest is kept
 * for closing the session again if fewer than need nodes opened. An
 * interrupted open is not rolled back: the caller asked to stop waiting.
 */
static int
client_open(struct hpcxl_client *c, struct proto_msg *req, size_t need,
    int timeout_ms, struct hpcxl_report **out)
{
	int64_t start_ms = util_now_ms();
	int64_t deadline_ms = start_ms + timeout_ms;
	struct survey_result *results;
	struct hpcxl_report *r = NULL;
	const char *session = req->u.open.session;
	int rv;

	if ((results = calloc(c->n, sizeof(*results))) == NULL)
		return HPCXL_ENOMEM;
	rv = client_survey(c, req, timeout_ms - timeout_ms / 4, NULL, results);
	if (rv == 0)
		rv = report_build((const char *const *)c->names,
		    (const char *const *)c->urls, results, c->n, PROTO_OPEN,
		    session, 0, &r);
	if (rv == 0 && client_count_open(results, c->n) >= need)
		r->ok = !fleet_interrupted(c->fleet); /* enough nodes opened */
	else if (rv == 0 && !fleet_interrupted(c->fleet))
		rv = client_roll_back(
		    c, session, results, need, deadline_ms, r);
	survey_results_free(results, c->n);
	free(results);
	if (rv != 0) {
		hpcxl_report_free(r);
		return rv;
	}
	r->elapsed_ms = util_now_ms() - start_ms;
	*out = r;
	return r->ok ? 0 : HPCXL_EPARTIAL;
}

/* The caller's open parameters, as far as its header had them, checked. */
static int
client_take_open_params(const struct hpcxl_client *c,
    const struct hpcxl_open_params *given, struct hpcxl_open_params *p)
{
	if (given == NULL
	    || client_take_sized(given, sizeof(p->size),
	           CLIENT_UPTO(struct hpcxl_open_params, min_nodes), p,
	           sizeof(*p))
	        != 0)
		return HPCXL_EINVAL;
	if (p->min_nodes > c->n || !util_valid_id(p->session)
	    || !util_valid_id(p->profile)
	    || (!p->per_core
	        && (p->workers == 0 || p->workers > PROTO_MAX_WORKERS))
	    || (p->workbook != NULL && strlen(p->workbook) > PROTO_MAX_TEXT)
	    || p->lease_ms > UINT32_MAX * UINT64_C(1000))
		return HPCXL_EINVAL;
	return 0;
}

int
hpcxl_open_session(struct hpcxl_client *c,
    const struct hpcxl_open_params *given, int timeout_ms,
    struct hpcxl_report **out)
{
	struct proto_msg req = { .type = PROTO_OPEN };
	struct hpcxl_open_params p;

	if (c == NULL || out == NULL
	    || client_take_open_params(c, given, &p) != 0)
		return HPCXL_EINVAL;
	/* The codec never writes through these: the casts only drop const. */
	req.u.open = (struct proto_open) {
		.session = (char *)p.session,
		.profile = (char *)p.profile,
		.workers = p.per_core ? 0 : p.workers,
		.per_core = p.per_core,
		.workbook = (char *)p.workbook,
		.lease_ms = p.lease_ms,
	};
	return client_open(c, &req, p.min_nodes > 0 ? p.min_nodes : c->n,
	    client_resolve_timeout(timeout_ms), out);
}

int
hpcxl_close_session(struct hpcxl_client *c, const char *session,
    int timeout_ms, struct hpcxl_report **out)
{
	struct proto_msg req = { .type = PROTO_CLOSE };

	if (c == NULL || out == NULL || !util_valid_id(session))
		return HPCXL_EINVAL;
	/* deadline_ms is set by the survey engine at every send. */
	req.u.close.session = (char *)session;
	return client_call(c, &req, session, timeout_ms, out);
}

int
hpcxl_status(struct hpcxl_client *c, const char *session, int timeout_ms,
    struct hpcxl_report **out)
{
	struct proto_msg req = { .type = PROTO_STATUS };

	if (c == NULL || out == NULL
	    || (session != NULL && !util_valid_id(session)))
		return HPCXL_EINVAL;
	req.u.status.session = (char *)session;
	return client_call(c, &req, session, timeout_ms, out);
}

int
hpcxl_renew_session(struct hpcxl_client *c, const char *session,
    uint64_t lease_ms, int timeout_ms, struct hpcxl_report **out)
{
	struct proto_msg req = { .type = PROTO_RENEW };

	if (c == NULL || out == NULL || !util_valid_id(session)
	    || lease_ms > UINT32_MAX * UINT64_C(1000))
		return HPCXL_EINVAL;
	req.u.renew.session = (char *)session;
	req.u.renew.lease_ms = lease_ms;
	return client_call(c, &req, session, timeout_ms, out);
}

/* A request about the node itself: empty body, no session. */
static int
client_node_call(struct hpcxl_client *c, enum proto_type type, int timeout_ms,
    struct hpcxl_report **out)
{
	struct proto_msg req = { .type = type };

	if (c == NULL || out == NULL)
		return HPCXL_EINVAL;
	return client_call(c, &req, NULL, timeout_ms, out);
}

int
hpcxl_ping(struct hpcxl_client *c, int timeout_ms, struct hpcxl_report **out)
{
	return client_node_call(c, PROTO_PING, timeout_ms, out);
}

int
hpcxl_clear_unhealthy(
    struct hpcxl_client *c, int timeout_ms, struct hpcxl_report **out)
{
	return client_node_call(c, PROTO_CLEAR, timeout_ms, out);
}
