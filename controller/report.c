#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const report_state_names[] = {
	[HPCXL_NODE_OK] = "ok",
	[HPCXL_NODE_CLOSED] = "closed",
	[HPCXL_NODE_ALREADY_CLOSED] = "already_closed",
	[HPCXL_NODE_PARTIAL] = "partial",
	[HPCXL_NODE_UNREACHABLE] = "unreachable",
	[HPCXL_NODE_ERROR] = "error",
	[HPCXL_NODE_INTERRUPTED] = "interrupted",
};

const char *
hpcxl_node_state_name(enum hpcxl_node_state s)
{
	if ((unsigned)s
	    >= sizeof(report_state_names) / sizeof(report_state_names[0]))
		return "?";
	return report_state_names[s];
}

static enum hpcxl_node_state
report_state(enum proto_type op, const struct survey_result *res)
{
	if (!res->answered)
		return res->interrupted ? HPCXL_NODE_INTERRUPTED
		                        : HPCXL_NODE_UNREACHABLE;
	switch (res->reply.code) {
	case PROTO_CODE_OK:
		return op == PROTO_CLOSE ? HPCXL_NODE_CLOSED : HPCXL_NODE_OK;
	case PROTO_CODE_NOT_FOUND:
		/* Closing what is not there leaves it closed: success. */
		return op == PROTO_CLOSE ? HPCXL_NODE_ALREADY_CLOSED
		                         : HPCXL_NODE_ERROR;
	case PROTO_CODE_PARTIAL:
		return HPCXL_NODE_PARTIAL;
	default:
		return HPCXL_NODE_ERROR;
	}
}

/* The row's word for hpcxl_report.codes: the wire code, which the row
 * state does not keep apart (refused, bad_request and error are all
 * HPCXL_NODE_ERROR). */
static const char *
report_code(const struct survey_result *res)
{
	if (!res->answered)
		return res->interrupted ? "interrupted" : "unreachable";
	return proto_code_name(res->reply.code);
}

bool
report_state_ok(enum hpcxl_node_state s)
{
	return s == HPCXL_NODE_OK || s == HPCXL_NODE_CLOSED
	    || s == HPCXL_NODE_ALREADY_CLOSED;
}

/* Moves *p out of its owner. */
static char *
report_take(char **p)
{
	char *s = *p;

	*p = NULL;
	return s;
}

static bool
report_sessions(struct hpcxl_node_report *row, struct proto_reply *reply)
{
	size_t i, j;

	if (reply->nsessions == 0)
		return true;
	row->sessions = calloc(reply->nsessions, sizeof(*row->sessions));
	if (row->sessions == NULL)
		return false;
	row->nsessions = reply->nsessions;
	for (i = 0; i < reply->nsessions; i++) {
		struct proto_session *ps = &reply->sessions[i];
		struct hpcxl_session_info *si = &row->sessions[i];

		si->session = report_take(&ps->session);
		si->profile = report_take(&ps->profile);
		if (ps->nworkers == 0)
			continue;
		si->workers = calloc(ps->nworkers, sizeof(*si->workers));
		if (si->workers == NULL)
			return false;
		si->nworkers = ps->nworkers;
		for (j = 0; j < ps->nworkers; j++) {
			const struct proto_worker *pw = &ps->workers[j];

			si->workers[j] = (struct hpcxl_worker_info) {
				.index = pw->index,
				.pid = pw->pid,
				.state = proto_wstate_name(pw->state),
				.exit_status = pw->exit_status,
				.restarts = pw->restarts,
			};
		}
	}
	return true;
}

static void
report_counts(struct hpcxl_node_report *row, const struct survey_result *res)
{
	const struct proto_counts *c = &res->reply.counts;

	row->elapsed_ms = res->reply_ms;
	if (!res->answered || !res->reply.has_counts)
		return;
	row->workers = c->workers;
	row->exited = c->exited;
	row->killed = c->killed;
	row->remaining = c->remaining;
	row->elapsed_ms
	    = c->elapsed_ms > INT64_MAX ? INT64_MAX : (int64_t)c->elapsed_ms;
}

/* The agent's text; for a failure other than "error" (refused,
 * bad_request, not_found of status) led by the code, which says more. */
static char *
report_msg(enum hpcxl_node_state state, struct proto_reply *reply)
{
	const char *code = proto_code_name(reply->code);
	const char *msg = reply->msg != NULL ? reply->msg : "";
	char *text;

	if (msg[0] == '\0')
		return strdup(code);
	if (state != HPCXL_NODE_ERROR || reply->code == PROTO_CODE_ERROR)
		return report_take(&reply->msg);
	return asprintf(&text, "%s: %s", code, msg) < 0 ? NULL : text;
}

/* Fills row from res; false on a failed allocation (row stays freeable). */
static bool
report_row(struct hpcxl_node_report *row, const char *name, const char *url,
    struct survey_result *res, enum proto_type op)
{
	struct proto_reply *reply = &res->reply;

	row->state = report_state(op, res);
	report_counts(row, res);
	if ((row->name = strdup(name)) == NULL
	    || (row->url = strdup(url)) == NULL)
		return false;
	if (!res->answered)
		return (row->msg = strdup(res->why)) != NULL;
	row->node = report_take(&reply->node);
	row->version = report_take(&reply->version);
	row->backend = report_take(&reply->backend);
	row->unhealthy = report_take(&reply->unhealthy);
	row->msg = report_msg(row->state, reply);
	return row->msg != NULL && report_sessions(row, reply);
}

/* The owners of row i's sessions, into r's parallel arrays (hpcxl.h). */
static bool
report_owners(struct hpcxl_report *r, size_t i, struct proto_reply *reply)
{
	size_t n = r->nodes[i].nsessions;

	if (n == 0)
		return true;
	if ((r->session_owners[i] = calloc(n, sizeof(char *))) == NULL)
		return false;
	for (size_t j = 0; j < n; j++)
		r->session_owners[i][j]
		    = report_take(&reply->sessions[j].owner);
	return true;
}

int
report_build(const char *const *names, const char *const *urls,
    struct survey_result *results, size_t n, enum proto_type op,
    const char *session, int64_t elapsed_ms, struct hpcxl_report **out)
{
	struct hpcxl_report *r;
	bool ok = true;
	size_t i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return HPCXL_ENOMEM;
	r->elapsed_ms = elapsed_ms;
	r->ok = true;
	if ((session != NULL && (r->session = strdup(session)) == NULL)
	    || (r->nodes = calloc(n, sizeof(*r->nodes))) == NULL
	    || (r->session_owners = calloc(n, sizeof(char **))) == NULL
	    || (r->codes = calloc(n, sizeof(char *))) == NULL)
		ok = false;
	for (i = 0; ok && i < n; i++) {
		r->nnodes = i + 1;
		ok = report_row(
		         &r->nodes[i], names[i], urls[i], &results[i], op)
		    && report_owners(r, i, &results[i].reply);
		r->codes[i] = report_code(&results[i]);
		if (!report_state_ok(r->nodes[i].state))
			r->ok = false;
	}
	if (!ok) {
		hpcxl_report_free(r);
		return HPCXL_ENOMEM;
	}
	*out = r;
	return 0;
}

void
report_swap_rows(struct hpcxl_report *a, struct hpcxl_report *b, size_t i)
{
	struct hpcxl_node_report row = a->nodes[i];
	char **owners = a->session_owners[i];
	const char *code = a->codes[i];

	a->nodes[i] = b->nodes[i];
	a->session_owners[i] = b->session_owners[i];
	a->codes[i] = b->codes[i];
	b->nodes[i] = row;
	b->session_owners[i] = owners;
	b->codes[i] = code;
}

static void
report_row_free(struct hpcxl_node_report *row)
{
	size_t i;

	free(row->name);
	free(row->url);
	free(row->node);
	free(row->msg);
	free(row->version);
	free(row->backend);
	free(row->unhealthy);
	for (i = 0; i < row->nsessions; i++) {
		free(row->sessions[i].session);
		free(row->sessions[i].profile);
		free(row->sessions[i].workers);
	}
	free(row->sessions);
}

void
hpcxl_report_free(struct hpcxl_report *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; r->session_owners != NULL && i < r->nnodes; i++) {
		for (size_t j = 0;
		     r->session_owners[i] != NULL && j < r->nodes[i].nsessions;
		     j++)
			free(r->session_owners[i][j]);
		free(r->session_owners[i]);
	}
	free(r->session_owners);
	free(r->codes);
	for (i = 0; i < r->nnodes; i++)
		report_row_free(&r->nodes[i]);
	free(r->nodes);
	free(r->session);
	free(r);
}
