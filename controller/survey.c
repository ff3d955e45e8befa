/*
 * One survey over the fleet (ARCHITECTURE.md, "Survey engine").
 *
 * The calling thread does everything here: it sends the request to each
 * targeted node as soon as that node has a pipe (at once for the nodes the
 * client is already connected to, later for those still connecting), takes
 * the replies the fleet routed to this call, decodes them, and sleeps in
 * poll() on the call's fd until a reply, an attach, the next retry, the next
 * progress report or the deadline. Cost per node and call: one encoded
 * request copied into one message, one reply decoded, O(1) work per wake-up
 * for each reply and O(n) per wake-up to look for nodes to send to.
 *
 * A request goes again to a node (same op and survey id, so the agent
 * answers from its op -> reply cache or joins the close in progress) when
 * the node reconnected since it was sent, or when a reply is long overdue
 * on the same pipe (lost on the agent's side), every 2 s, 4 s, then 8 s.
 */
#include "survey.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A resend on the same pipe after this, doubling up to the max. */
#define SURVEY_RETRY_MIN_MS 2000
#define SURVEY_RETRY_MAX_MS 8000
/* A send the socket could not take now is tried again this soon. */
#define SURVEY_BUSY_RETRY_MS 10
/* Time kept for a close reply to travel back: 10 %, at most this. */
#define SURVEY_REPLY_MARGIN_MAX_MS 500
/* Replies taken from the mailbox per pass. */
#define SURVEY_TAKE_BATCH 256

/* Per-node bookkeeping of this call. */
struct survey_row {
	bool wanted; /* targeted and dialable */
	uint32_t pipe; /* the node's pipe at the last look */
	uint32_t sent_pipe; /* pipe the request last went out on, 0 none */
	int64_t retry_at_ms; /* when a resend on sent_pipe is due */
	int64_t retry_gap_ms;
	const char *bad_reply; /* why the last reply was malformed */
};

struct survey {
	struct fleet *fleet;
	struct fleet_call *call;
	struct proto_msg req; /* shallow copy: only deadline_ms changes */
	size_t n;
	struct survey_row *rows;
	uint32_t *pipes; /* scratch for fleet_pipes() */
	struct survey_result *results;
	const struct survey_opts *opts;
	size_t nwanted, nanswered;
	bool interrupted;
	int timeout_ms;
	int64_t start_ms, deadline_ms;
	int64_t wake_ms; /* earliest retry or busy resend due */
	int64_t progress_ms; /* next progress report, INT64_MAX: none */
};

/* ---- setup ------------------------------------------------------------- */

static int
survey_init(struct survey *s, struct fleet *f, const struct proto_msg *req,
    int timeout_ms, const bool *targets, const struct survey_opts *opts,
    struct survey_result *results)
{
	size_t i;

	*s = (struct survey) {
		.fleet = f,
		.req = *req,
		.n = fleet_size(f),
		.results = results,
		.opts = opts,
		.timeout_ms = timeout_ms,
		.start_ms = util_now_ms(),
		.progress_ms = INT64_MAX,
	};
	s->deadline_ms = s->start_ms + timeout_ms;
	if (opts->progress != NULL && opts->interval_ms > 0)
		s->progress_ms = s->start_ms + opts->interval_ms;
	s->rows = calloc(s->n, sizeof(*s->rows));
	s->pipes = calloc(s->n, sizeof(*s->pipes));
	if (s->rows == NULL || s->pipes == NULL)
		return HPCXL_ENOMEM;
	for (i = 0; i < s->n; i++) {
		s->rows[i].wanted = (targets == NULL || targets[i])
		    && !fleet_undialable(f, i);
		s->rows[i].retry_gap_ms = SURVEY_RETRY_MIN_MS;
		s->nwanted += s->rows[i].wanted;
	}
	return fleet_call_begin(f, &s->call);
}

static void
survey_fini(struct survey *s)
{
	if (s->call != NULL)
		fleet_call_end(s->call);
	free(s->rows);
	free(s->pipes);
}

/* ---- replies ----------------------------------------------------------- */

/* A reply to our op; or the agent's bad_request, which carries op 0 (it
 * echoes nothing of a frame it rejects) and came on our survey id. */
static bool
survey_reply_ours(const struct survey *s, const struct proto_msg *m)
{
	return m->type == PROTO_REPLY
	    && (m->op == s->req.op
	        || (m->op == 0 && m->u.reply.code == PROTO_CODE_BAD_REQUEST));
}

/* Keeps msg's reply for row, or rejects it (the row takes another). */
static void
survey_take(struct survey *s, size_t row, nng_msg *msg)
{
	struct survey_result *res = &s->results[row];
	const char *why = NULL;
	struct proto_msg m;

	if (!s->rows[row].wanted || res->answered)
		return; /* not ours to wait for */
	if (proto_decode(
	        nng_msg_body(msg), nng_msg_len(msg), PROTO_MAX_REPLY, &m, &why)
	    != 0) {
		s->rows[row].bad_reply = why != NULL ? why : "malformed";
		log_warn("%s: malformed reply ignored: %s",
		    s->opts->names[row], s->rows[row].bad_reply);
		fleet_call_reopen(s->call, row);
		return;
	}
	if (!survey_reply_ours(s, &m)) {
		log_debug("%s: ignored a %s for op %016llx",
		    s->opts->names[row], proto_type_name(m.type),
		    (unsigned long long)m.op);
		proto_msg_free(&m);
		fleet_call_reopen(s->call, row);
		return;
	}
	res->answered = true;
	res->reply = m.u.reply; /* moved: m is not freed */
	res->reply_ms = util_now_ms() - s->start_ms;
	s->nanswered++;
	log_debug("%s: %s from %s after %lld ms", s->opts->names[row],
	    proto_code_name(res->reply.code), res->reply.node,
	    (long long)res->reply_ms);
}

static void
survey_collect(struct survey *s)
{
	size_t rows[SURVEY_TAKE_BATCH];
	nng_msg *msgs[SURVEY_TAKE_BATCH];
	size_t i, k;

	do {
		k = fleet_call_take(s->call, rows, msgs, SURVEY_TAKE_BATCH);
		for (i = 0; i < k; i++) {
			survey_take(s, rows[i], msgs[i]);
			nng_msg_free(msgs[i]);
		}
	} while (k == SURVEY_TAKE_BATCH);
}

/* ---- sending ----------------------------------------------------------- */

/* What a close may take on the agent: the time left, less the reply's
 * trip back, so a "partial" arrives before our deadline. */
static uint64_t
survey_close_deadline_ms(int64_t left_ms)
{
	int64_t margin = left_ms / 10;

	if (margin > SURVEY_REPLY_MARGIN_MAX_MS)
		margin = SURVEY_REPLY_MARGIN_MAX_MS;
	return left_ms > margin ? (uint64_t)(left_ms - margin) : 0;
}

/* The request as it goes out now: a close carries the time left. */
static int
survey_encode(struct survey *s, int64_t now, char **buf, size_t *len)
{
	if (s->req.type == PROTO_CLOSE)
		s->req.u.close.deadline_ms
		    = survey_close_deadline_ms(s->deadline_ms - now);
	return proto_encode(&s->req, buf, len);
}

/* The node needs the request now: it has a pipe the request did not go
 * out on, or its reply is overdue on that pipe. */
static bool
survey_row_due(const struct survey *s, size_t i, int64_t now)
{
	const struct survey_row *row = &s->rows[i];

	if (!row->wanted || s->results[i].answered || row->pipe == 0)
		return false;
	return row->pipe != row->sent_pipe || now >= row->retry_at_ms;
}

static void
survey_row_sent(struct survey_row *row, int64_t now)
{
	if (row->pipe == row->sent_pipe) {
		/* A resend on the same pipe: back off. */
		if (row->retry_gap_ms < SURVEY_RETRY_MAX_MS)
			row->retry_gap_ms *= 2;
	}
	row->sent_pipe = row->pipe;
	row->retry_at_ms = now + row->retry_gap_ms;
}

static void
survey_send_row(
    struct survey *s, size_t i, const char *buf, size_t len, int64_t now)
{
	int rv = fleet_call_send(s->call, i, buf, len);
	int64_t busy_ms = now + SURVEY_BUSY_RETRY_MS;

	if (rv == 0) {
		survey_row_sent(&s->rows[i], now);
		return;
	}
	/* The socket is full or its pipe is going: try again soon, and not
	 * before (a resend due in the past would be due at once again). */
	log_debug("%s: send failed: %s", s->opts->names[i], nng_strerror(rv));
	s->rows[i].retry_at_ms = busy_ms;
	if (busy_ms < s->wake_ms)
		s->wake_ms = busy_ms;
}

/* A node waiting on the pipe the request went out on wakes us for its
 * resend. */
static void
survey_note_retry(struct survey *s, size_t i)
{
	const struct survey_row *row = &s->rows[i];

	if (row->wanted && !s->results[i].answered && row->sent_pipe != 0
	    && row->sent_pipe == row->pipe && row->retry_at_ms < s->wake_ms)
		s->wake_ms = row->retry_at_ms;
}

/* Encodes the request once for every node that needs it now. */
static int
survey_send_due(struct survey *s, int64_t now)
{
	size_t i, len = 0;
	char *buf = NULL;
	int rv = 0;

	s->wake_ms = INT64_MAX;
	fleet_pipes(s->fleet, s->pipes);
	for (i = 0; i < s->n; i++) {
		s->rows[i].pipe = s->pipes[i];
		if (survey_row_due(s, i, now)) {
			if (buf == NULL
			    && (rv = survey_encode(s, now, &buf, &len)) != 0)
				break;
			survey_send_row(s, i, buf, len, now);
		}
		survey_note_retry(s, i);
	}
	free(buf);
	return rv;
}

/* ---- waiting ----------------------------------------------------------- */

static void
survey_progress(struct survey *s, int64_t now)
{
	struct hpcxl_progress p = { .total = s->nwanted };
	size_t i;

	if (now < s->progress_ms)
		return;
	p.answered = s->nanswered;
	p.elapsed_ms = now - s->start_ms;
	p.left_ms = s->deadline_ms > now ? s->deadline_ms - now : 0;
	for (i = 0; i < s->n && p.nwaiting < HPCXL_PROGRESS_NAMES; i++) {
		if (s->rows[i].wanted && !s->results[i].answered)
			p.waiting[p.nwaiting++] = s->opts->names[i];
	}
	s->opts->progress(&p, s->opts->arg);
	s->progress_ms = now + s->opts->interval_ms;
}

/* Sleeps until a reply, an attach, an interrupt or the next due time. */
static int
survey_wait(struct survey *s)
{
	struct pollfd pfd[2] = {
		{ .fd = fleet_call_fd(s->call), .events = POLLIN },
		{ .fd = fleet_interrupt_fd(s->fleet), .events = POLLIN },
	};
	int64_t until = s->deadline_ms, wait_ms;

	if (s->wake_ms < until)
		until = s->wake_ms;
	if (s->progress_ms < until)
		until = s->progress_ms;
	wait_ms = until - util_now_ms();
	if (wait_ms < 0)
		wait_ms = 0;
	if (wait_ms > INT_MAX)
		wait_ms = INT_MAX;
	if (poll(pfd, 2, (int)wait_ms) < 0 && errno != EINTR)
		return HPCXL_ETRANSPORT;
	return 0;
}

static int
survey_loop(struct survey *s)
{
	int64_t now;
	unsigned pass;
	int rv;

	for (pass = 0;; pass++) {
		survey_collect(s);
		now = util_now_ms();
		if (s->nanswered == s->nwanted)
			return 0;
		if (fleet_interrupted(s->fleet)) {
			s->interrupted = true;
			return 0;
		}
		/* The first pass sends even when no time is left: a connected
		 * node then still gets the request (a roll-back's close). */
		if (pass > 0 && now >= s->deadline_ms)
			return 0;
		if ((rv = survey_send_due(s, now)) != 0)
			return rv;
		if (now >= s->deadline_ms)
			return 0;
		survey_progress(s, now);
		if ((rv = survey_wait(s)) != 0)
			return rv;
	}
}

/* ---- explaining silence ------------------------------------------------ */

static void
survey_explain_row(struct survey *s, size_t i, const struct fleet_dial *dial)
{
	const struct survey_row *row = &s->rows[i];
	struct survey_result *res = &s->results[i];
	size_t len = sizeof(res->why);
	int64_t now = util_now_ms();

	res->reply_ms = now - s->start_ms;
	if (s->interrupted)
		res->interrupted = true;
	if (s->interrupted)
		snprintf(res->why, len, "interrupted after %lld ms",
		    (long long)res->reply_ms);
	else if (dial->undialable)
		snprintf(res->why, len, "cannot dial: %s", dial->reason);
	else if (row->bad_reply != NULL)
		snprintf(res->why, len,
		    "no valid reply within %d ms (malformed reply: %s)",
		    s->timeout_ms, row->bad_reply);
	else if (row->pipe != 0)
		snprintf(res->why, len, "no reply within %d ms (connected)",
		    s->timeout_ms);
	else
		snprintf(res->why, len, "no reply within %d ms (%s%s)",
		    s->timeout_ms, dial->lost ? "connection lost; " : "",
		    dial->reason);
}

/* Fills the why of every targeted node that did not answer. */
static int
survey_explain(struct survey *s, const bool *targets)
{
	struct fleet_dial *dials;
	bool *silent, *unattached;
	size_t i;

	if (s->nanswered == s->n)
		return 0;
	silent = calloc(s->n, sizeof(*silent));
	unattached = calloc(s->n, sizeof(*unattached));
	dials = calloc(s->n, sizeof(*dials));
	if (silent == NULL || unattached == NULL || dials == NULL) {
		free(silent);
		free(unattached);
		free(dials);
		return HPCXL_ENOMEM;
	}
	fleet_pipes(s->fleet, s->pipes);
	for (i = 0; i < s->n; i++) {
		s->rows[i].pipe = s->pipes[i];
		silent[i] = (targets == NULL || targets[i])
		    && !s->results[i].answered;
		unattached[i] = silent[i] && s->pipes[i] == 0;
	}
	/* Only nodes without a connection need nng's statistics (a walk of
	 * every socket's: about 15 ms per 1,000 such nodes). */
	fleet_dials(s->fleet, unattached, dials);
	for (i = 0; i < s->n; i++) {
		if (silent[i])
			survey_explain_row(s, i, &dials[i]);
	}
	free(silent);
	free(unattached);
	free(dials);
	return 0;
}

/* ---- entry points ------------------------------------------------------ */

int
survey_run(struct fleet *f, const struct proto_msg *req, int timeout_ms,
    const bool *targets, const struct survey_opts *opts,
    struct survey_result *results)
{
	struct survey s;
	int rv;

	if ((rv = survey_init(&s, f, req, timeout_ms, targets, opts, results))
	    == 0)
		rv = survey_loop(&s);
	if (rv == 0)
		rv = survey_explain(&s, targets);
	survey_fini(&s);
	if (rv != 0)
		survey_results_free(results, s.n);
	return rv;
}

void
survey_results_free(struct survey_result *results, size_t n)
{
	struct proto_msg m;
	size_t i;

	for (i = 0; i < n; i++) {
		if (results[i].answered) {
			memset(&m, 0, sizeof(m));
			m.type = PROTO_REPLY;
			m.u.reply = results[i].reply;
			proto_msg_free(&m);
		}
		memset(&results[i], 0, sizeof(results[i]));
	}
}
