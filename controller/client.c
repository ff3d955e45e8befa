/*
 * The public entry points: argument checks, one request per operation, one
 * survey, one report. Everything that talks to the network is in survey.c.
 */
#include "hpcxl/hpcxl.h"

#include "report.h"
#include "survey.h"

#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>

#include <stdlib.h>
#include <string.h>

struct hpcxl_client {
	size_t nurls;
	char **urls;
};

/* nng knows the URL's scheme and form: a dialer can be created for it on a
 * surveyor (not started: nothing is resolved or dialled). */
static int
client_check_urls(const char *const *urls, size_t nurls)
{
	nng_socket sock;
	nng_dialer d;
	size_t i;
	int rv = 0;

	if (nng_surveyor0_open(&sock) != 0)
		return HPCXL_ETRANSPORT;
	for (i = 0; rv == 0 && i < nurls; i++) {
		if (urls[i] == NULL
		    || nng_dialer_create(&d, sock, urls[i]) != 0)
			rv = HPCXL_EINVAL;
	}
	nng_close(sock);
	return rv;
}

int
hpcxl_client_open(
    const char *const *urls, size_t nurls, struct hpcxl_client **out)
{
	struct hpcxl_client *c = NULL;
	int rv;

	if (urls == NULL || nurls == 0 || out == NULL)
		return HPCXL_EINVAL;
	if ((rv = client_check_urls(urls, nurls)) != 0)
		return rv;
	if ((c = calloc(1, sizeof(*c))) == NULL
	    || (c->urls = calloc(nurls, sizeof(*c->urls))) == NULL) {
		rv = HPCXL_ENOMEM;
		goto out;
	}
	for (c->nurls = 0; c->nurls < nurls; c->nurls++) {
		if ((c->urls[c->nurls] = strdup(urls[c->nurls])) == NULL) {
			rv = HPCXL_ENOMEM;
			goto out;
		}
	}
	*out = c;
	c = NULL;
out:
	hpcxl_client_close(c);
	return rv;
}

void
hpcxl_client_close(struct hpcxl_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nurls && c->urls != NULL; i++)
		free(c->urls[i]);
	free(c->urls);
	free(c);
}

void
hpcxl_set_log_level(int level)
{
	log_set_level(level);
}

/*
 * Runs req (type and body set) against the roster under a fresh op and
 * builds the report. The op is the same for every re-survey of this call,
 * so agents answer repeats from their cache (or join a close in progress).
 */
static int
client_call(struct hpcxl_client *c, struct proto_msg *req, const char *session,
    int timeout_ms, struct hpcxl_report **out)
{
	int64_t start_ms = util_now_ms();
	struct survey_result *results;
	struct hpcxl_report *r = NULL;
	int rv;

	if (timeout_ms < 0)
		timeout_ms = HPCXL_DEFAULT_TIMEOUT_MS;
	if ((results = calloc(c->nurls, sizeof(*results))) == NULL)
		return HPCXL_ENOMEM;
	req->op = util_random_u64();
	rv = survey_run(
	    (const char *const *)c->urls, c->nurls, req, timeout_ms, results);
	if (rv != 0)
		goto out;
	rv = report_build((const char *const *)c->urls, results, c->nurls,
	    req->type, session, util_now_ms() - start_ms, &r);
	survey_results_free(results, c->nurls);
	if (rv != 0)
		goto out;
	*out = r;
	rv = r->ok ? 0 : HPCXL_EPARTIAL;
out:
	free(results);
	return rv;
}

int
hpcxl_open_session(struct hpcxl_client *c, const struct hpcxl_open_params *p,
    int timeout_ms, struct hpcxl_report **out)
{
	struct proto_msg req = { .type = PROTO_OPEN };

	if (c == NULL || p == NULL || out == NULL || !util_valid_id(p->session)
	    || !util_valid_id(p->profile)
	    || (!p->per_core
	        && (p->workers == 0 || p->workers > PROTO_MAX_WORKERS))
	    || (p->workbook != NULL && strlen(p->workbook) > PROTO_MAX_TEXT)
	    || p->lease_ms > UINT32_MAX * UINT64_C(1000))
		return HPCXL_EINVAL;
	/* The codec never writes through these: the casts only drop const. */
	req.u.open = (struct proto_open) {
		.session = (char *)p->session,
		.profile = (char *)p->profile,
		.workers = p->per_core ? 0 : p->workers,
		.per_core = p->per_core,
		.workbook = (char *)p->workbook,
		.lease_ms = p->lease_ms,
	};
	return client_call(c, &req, p->session, timeout_ms, out);
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
