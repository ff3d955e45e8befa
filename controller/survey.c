/*
 * The survey engine (DESIGN.md, "Close-session algorithm", controller side).
 *
 * One cooked surveyor socket per operation, one non-blocking dialer per
 * roster URL. A socket per operation rather than per client keeps the client
 * immutable (calls may run concurrently from several threads) and means no
 * reply, pipe or survey of an earlier call can leak into this one; the cost
 * is one connection setup per node and call, small next to a close.
 *
 * Threads: nng runs the pipe callback on its own threads. The callback only
 * records which pipe each node has, under mtx, and wakes the loop through an
 * eventfd; everything else (sending, receiving, decoding, timing) happens on
 * the calling thread, which never holds mtx across an nng call (nng_close
 * waits for the callbacks, which take mtx). Once the results are final the
 * socket is closed, and the state freed, on a detached thread: closing can
 * take long in 1.5.2 and must not delay the caller (survey_dispose()).
 *
 * nng 1.5.2 facts this relies on (see notes/nng-1.5.2.md):
 *  - a survey reaches only the pipes attached when it is sent, so a node
 *    that attaches later, or reconnects, is surveyed again with the same op;
 *  - a new survey drops the replies of the previous one that are queued or
 *    in flight, so queued replies are read first, and a node whose reply was
 *    dropped answers the repeat from the agent's op -> reply cache;
 *  - non-blocking receives (EAGAIN) keep the survey alive, and the socket's
 *    receive fd is readable exactly while replies are queued;
 *  - the survey time is set to what is left of the timeout, so the survey
 *    itself ends at the deadline.
 */
#include "survey.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* How long the first survey waits for the whole roster to attach. */
#define SURVEY_ATTACH_WINDOW_MS 250
/* Period of re-surveys while attached nodes have not answered (a reply
 * dropped by a later survey or by a reconnect); doubles up to the max. */
#define SURVEY_RETRY_MIN_MS 500
#define SURVEY_RETRY_MAX_MS 2000
/* Least time between two surveys, so a burst of attaches costs one. */
#define SURVEY_GAP_MS 20
/* A node that is down now may be back well within the timeout. */
#define SURVEY_RECONN_MIN_MS 100
#define SURVEY_RECONN_MAX_MS 1000
/* Time kept for a close reply to travel back: 10 %, at most this. */
#define SURVEY_REPLY_MARGIN_MAX_MS 500
/* The SP header (survey id, one word per device hop, at most 8) travels in
 * the same frame as the reply, on top of PROTO_MAX_REPLY. */
#define SURVEY_HEADER_MAX (8 * 4)

struct survey_node {
	const char *url;
	nng_dialer dialer;
	int dialer_id; /* -1: no dialer; dial_err says why */
	int dial_err;
	/* Written by the pipe callback under mtx. Pipe ids are never reused
	 * within a process, and a dialer has at most one pipe at a time. */
	uint32_t pipe_id; /* attached pipe, 0 = none */
	uint32_t gone_pipe_id; /* last pipe removed: its late ADD_POST is
	                          stale (REM_POST can overtake it) */
	/* Calling thread only. */
	uint32_t seen_pipe_id; /* copy of pipe_id for this iteration */
	uint32_t surveyed_pipe_id; /* pipe attached at the last survey */
	const char *bad_reply; /* why the last reply was malformed */
};

struct survey {
	nng_socket sock;
	bool sock_open;
	pthread_mutex_t mtx;
	int wake_fd; /* eventfd the pipe callback writes to */
	int recv_fd; /* nng's: readable while replies are queued */
	struct proto_msg req; /* shallow copy: only deadline_ms changes */
	size_t n;
	struct survey_node *nodes;
	struct survey_result *results;
	size_t nanswered;
	size_t nundialable; /* nodes without a dialer: they never answer */
	int timeout_ms;
	int64_t start_ms, window_end_ms, deadline_ms;
	int64_t sent_ms; /* last survey; -1 before the first */
	int64_t retry_ms; /* next re-survey is due at sent_ms + retry_ms */
};

/* Unanswered nodes, by what they are waiting for. */
struct survey_view {
	size_t fresh; /* attached, not surveyed on this pipe yet */
	size_t waiting; /* surveyed on their current pipe */
	size_t dialing; /* not attached (yet) */
};

/* ---- pipe notifications (nng threads) ---------------------------------- */

static struct survey_node *
survey_node_of_dialer(struct survey *s, int dialer_id)
{
	size_t i;

	for (i = 0; dialer_id > 0 && i < s->n; i++) {
		if (s->nodes[i].dialer_id == dialer_id)
			return &s->nodes[i];
	}
	return NULL;
}

static void
survey_node_pipe_event(
    struct survey_node *node, uint32_t pipe_id, nng_pipe_ev ev)
{
	if (ev == NNG_PIPE_EV_REM_POST) {
		node->gone_pipe_id = pipe_id;
		if (node->pipe_id == pipe_id)
			node->pipe_id = 0;
	} else if (pipe_id != node->gone_pipe_id) {
		node->pipe_id = pipe_id;
	}
}

static void
survey_wake(struct survey *s)
{
	uint64_t one = 1;

	/* Cannot block (EFD_NONBLOCK) and cannot fail short of a counter
	 * overflow, which would leave the fd readable anyway. */
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* Must not block or call into the socket: record, wake, return. */
static void
survey_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct survey *s = arg;
	int dialer_id = nng_dialer_id(nng_pipe_dialer(p));
	struct survey_node *node;

	pthread_mutex_lock(&s->mtx);
	node = survey_node_of_dialer(s, dialer_id);
	if (node != NULL)
		survey_node_pipe_event(node, (uint32_t)nng_pipe_id(p), ev);
	pthread_mutex_unlock(&s->mtx);
	if (node != NULL)
		survey_wake(s);
}

/* ---- setup and teardown ------------------------------------------------ */

static int
survey_init(struct survey *s, size_t n, const struct proto_msg *req,
    int timeout_ms, struct survey_result *results)
{
	memset(s, 0, sizeof(*s));
	s->wake_fd = -1;
	s->recv_fd = -1;
	s->req = *req;
	s->n = n;
	s->results = results;
	s->timeout_ms = timeout_ms;
	s->start_ms = util_now_ms();
	s->deadline_ms = s->start_ms + timeout_ms;
	s->window_end_ms = s->start_ms
	    + (timeout_ms < SURVEY_ATTACH_WINDOW_MS ? timeout_ms
	                                            : SURVEY_ATTACH_WINDOW_MS);
	s->sent_ms = -1;
	s->retry_ms = SURVEY_RETRY_MIN_MS;
	if ((s->nodes = calloc(n, sizeof(*s->nodes))) == NULL)
		return HPCXL_ENOMEM;
	if (pthread_mutex_init(&s->mtx, NULL) != 0) {
		free(s->nodes);
		return HPCXL_ENOMEM;
	}
	return 0;
}

/* Creates (but does not start) node's dialer; a failure stays with node. */
static void
survey_node_dialer(struct survey *s, struct survey_node *node)
{
	nng_dialer d;
	int rv;

	node->dialer_id = -1;
	if ((rv = nng_dialer_create(&d, s->sock, node->url)) == 0
	    && (rv = nng_dialer_set_size(
	            d, NNG_OPT_RECVMAXSZ, PROTO_MAX_REPLY + SURVEY_HEADER_MAX))
	        == 0
	    && (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMINT, SURVEY_RECONN_MIN_MS))
	        == 0
	    && (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMAXT, SURVEY_RECONN_MAX_MS))
	        == 0) {
		node->dialer = d;
		node->dialer_id = nng_dialer_id(d);
		return;
	}
	node->dial_err = rv;
	log_debug("cannot dial %s: %s", node->url, nng_strerror(rv));
}

static void
survey_node_start(struct survey *s, struct survey_node *node)
{
	int rv;

	if (node->dialer_id < 0)
		return;
	/* Non-blocking: the dialer keeps retrying in the background. */
	if ((rv = nng_dialer_start(node->dialer, NNG_FLAG_NONBLOCK)) == 0)
		return;
	pthread_mutex_lock(&s->mtx);
	node->dial_err = rv;
	node->dialer_id = -1;
	pthread_mutex_unlock(&s->mtx);
	log_debug("cannot dial %s: %s", node->url, nng_strerror(rv));
}

static int
survey_open_socket(struct survey *s)
{
	if (nng_surveyor0_open(&s->sock) != 0)
		return HPCXL_ETRANSPORT;
	s->sock_open = true;
	if (nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, survey_pipe_cb, s)
	        != 0
	    || nng_pipe_notify(
	           s->sock, NNG_PIPE_EV_REM_POST, survey_pipe_cb, s)
	        != 0
	    || nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recv_fd) != 0)
		return HPCXL_ETRANSPORT;
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return s->wake_fd < 0 ? HPCXL_ETRANSPORT : 0;
}

static int
survey_start(struct survey *s, const char *const *urls)
{
	size_t i;
	int rv;

	if ((rv = survey_open_socket(s)) != 0)
		return rv;
	/* Every dialer id is in place before the first dialer starts: no
	 * callback can run before, so the table needs no lock yet. */
	for (i = 0; i < s->n; i++) {
		s->nodes[i].url = urls[i];
		survey_node_dialer(s, &s->nodes[i]);
	}
	for (i = 0; i < s->n; i++) {
		survey_node_start(s, &s->nodes[i]);
		s->nundialable += s->nodes[i].dialer_id < 0;
	}
	return 0;
}

static void
survey_fini(struct survey *s)
{
	/* Returns once every pipe callback has run; quick, as it only
	 * aborts connects and closes pipes. */
	if (s->sock_open)
		nng_close(s->sock);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->mtx);
	free(s->nodes);
}

/* ---- replies ----------------------------------------------------------- */

/* The roster row a reply came from: by its pipe's dialer, or by our record
 * of the node's pipes when the pipe is already gone. */
static bool
survey_row_of_pipe(struct survey *s, nng_pipe p, size_t *row)
{
	int dialer_id = nng_dialer_id(nng_pipe_dialer(p));
	uint32_t pipe_id = (uint32_t)nng_pipe_id(p);
	bool found = false;
	size_t i;

	pthread_mutex_lock(&s->mtx);
	for (i = 0; !found && i < s->n; i++) {
		const struct survey_node *node = &s->nodes[i];

		found = (dialer_id > 0 && node->dialer_id == dialer_id)
		    || (pipe_id != 0
		        && (node->pipe_id == pipe_id
		            || node->gone_pipe_id == pipe_id));
		if (found)
			*row = i;
	}
	pthread_mutex_unlock(&s->mtx);
	return found;
}

/* A reply to our op; or the agent's bad_request, which carries op 0 (it
 * echoes nothing of a frame it rejects) and reached us on our survey. */
static bool
survey_reply_ours(const struct survey *s, const struct proto_msg *m)
{
	return m->type == PROTO_REPLY
	    && (m->op == s->req.op
	        || (m->op == 0 && m->u.reply.code == PROTO_CODE_BAD_REQUEST));
}

static void
survey_take(struct survey *s, nng_msg *msg)
{
	struct survey_node *node;
	struct survey_result *res;
	const char *why = NULL;
	struct proto_msg m;
	size_t row;

	if (!survey_row_of_pipe(s, nng_msg_get_pipe(msg), &row))
		return;
	node = &s->nodes[row];
	res = &s->results[row];
	if (res->answered)
		return; /* a repeat, answered from the agent's cache */
	if (proto_decode(
	        nng_msg_body(msg), nng_msg_len(msg), PROTO_MAX_REPLY, &m, &why)
	    != 0) {
		node->bad_reply = why != NULL ? why : "malformed";
		log_warn("%s: malformed reply ignored: %s", node->url,
		    node->bad_reply);
		return;
	}
	if (!survey_reply_ours(s, &m)) {
		log_debug("%s: ignored a %s for op %016llx", node->url,
		    proto_type_name(m.type), (unsigned long long)m.op);
		proto_msg_free(&m);
		return;
	}
	res->answered = true;
	res->reply = m.u.reply; /* moved: m is not freed */
	res->reply_ms = util_now_ms() - s->start_ms;
	s->nanswered++;
	log_debug("%s: %s from %s after %lld ms", node->url,
	    proto_code_name(res->reply.code), res->reply.node,
	    (long long)res->reply_ms);
}

/* Reads every queued reply, so none is lost to the next survey. */
static int
survey_drain(struct survey *s)
{
	nng_msg *msg;
	int rv;

	while ((rv = nng_recvmsg(s->sock, &msg, NNG_FLAG_NONBLOCK)) == 0) {
		survey_take(s, msg);
		nng_msg_free(msg);
	}
	/* EAGAIN: nothing queued; ESTATE, ETIMEDOUT: no survey running. */
	return rv == NNG_ENOMEM ? HPCXL_ENOMEM : 0;
}

/* ---- surveys ----------------------------------------------------------- */

/* Logged here rather than in the callback, which must not block. */
static void
survey_log_pipe(const struct survey_node *node, uint32_t pipe_id)
{
	if (pipe_id != 0)
		log_debug("%s: attached (pipe %u)", node->url, pipe_id);
	else
		log_debug("%s: detached", node->url);
}

/* Copies the nodes' pipes (callback state) and sorts what waits for what. */
static struct survey_view
survey_look(struct survey *s)
{
	struct survey_view v = { 0, 0, 0 };
	size_t i;

	pthread_mutex_lock(&s->mtx);
	for (i = 0; i < s->n; i++) {
		if (s->nodes[i].seen_pipe_id != s->nodes[i].pipe_id)
			survey_log_pipe(&s->nodes[i], s->nodes[i].pipe_id);
		s->nodes[i].seen_pipe_id = s->nodes[i].pipe_id;
	}
	pthread_mutex_unlock(&s->mtx);
	for (i = 0; i < s->n; i++) {
		const struct survey_node *node = &s->nodes[i];

		if (s->results[i].answered || node->dialer_id < 0)
			continue;
		if (node->seen_pipe_id == 0)
			v.dialing++;
		else if (node->seen_pipe_id != node->surveyed_pipe_id)
			v.fresh++;
		else
			v.waiting++;
	}
	return v;
}

/* When fresh nodes may be surveyed: the first survey waits (within the
 * attach window) for the whole roster; later ones keep a small gap. */
static int64_t
survey_fresh_due_ms(const struct survey *s, const struct survey_view *v)
{
	if (s->sent_ms < 0)
		return v->dialing == 0 ? s->start_ms : s->window_end_ms;
	return s->sent_ms + SURVEY_GAP_MS;
}

/* Sets *retry when the survey is a periodic retry (not for fresh nodes). */
static bool
survey_due(const struct survey *s, const struct survey_view *v, int64_t now,
    bool *retry)
{
	*retry = false;
	if (v->fresh > 0 && now >= survey_fresh_due_ms(s, v))
		return true;
	*retry = v->waiting > 0 && now >= s->sent_ms + s->retry_ms;
	return *retry;
}

/* When the loop must look again if nothing wakes it before. */
static int64_t
survey_next_ms(const struct survey *s, const struct survey_view *v)
{
	int64_t next = s->deadline_ms;
	int64_t t;

	if (v->fresh > 0 && (t = survey_fresh_due_ms(s, v)) < next)
		next = t;
	if (v->waiting > 0 && (t = s->sent_ms + s->retry_ms) < next)
		next = t;
	return next;
}

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

static int
survey_message(struct survey *s, int64_t left_ms, nng_msg **out)
{
	nng_msg *msg = NULL;
	size_t len;
	char *buf;
	int rv;

	if (s->req.type == PROTO_CLOSE)
		s->req.u.close.deadline_ms = survey_close_deadline_ms(left_ms);
	if ((rv = proto_encode(&s->req, &buf, &len)) != 0)
		return rv;
	if (nng_msg_alloc(&msg, len) != 0)
		rv = HPCXL_ENOMEM;
	else
		memcpy(nng_msg_body(msg), buf, len);
	free(buf);
	if (rv == 0)
		*out = msg;
	return rv;
}

static int
survey_send(struct survey *s, int64_t now)
{
	int64_t left_ms = s->deadline_ms - now;
	nng_msg *msg;
	size_t i;
	int rv;

	if ((rv = survey_message(s, left_ms, &msg)) != 0)
		return rv;
	/* The survey ends at our deadline: replies are wanted until then. */
	if (nng_socket_set_ms(
	        s->sock, NNG_OPT_SURVEYOR_SURVEYTIME, (nng_duration)left_ms)
	    != 0) {
		nng_msg_free(msg);
		return HPCXL_ETRANSPORT;
	}
	/* Marked before sending: a pipe attaching in between is surveyed
	 * once too often rather than never. */
	for (i = 0; i < s->n; i++)
		s->nodes[i].surveyed_pipe_id = s->nodes[i].seen_pipe_id;
	if ((rv = nng_sendmsg(s->sock, msg, NNG_FLAG_NONBLOCK)) != 0) {
		nng_msg_free(msg);
		return rv == NNG_ENOMEM ? HPCXL_ENOMEM : HPCXL_ETRANSPORT;
	}
	s->sent_ms = now;
	log_debug("%s op %016llx sent, %lld ms left",
	    proto_type_name(s->req.type), (unsigned long long)s->req.op,
	    (long long)left_ms);
	return 0;
}

/* Sleeps until a pipe event, a queued reply, or until_ms. */
static int
survey_wait(struct survey *s, int64_t until_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = s->wake_fd, .events = POLLIN },
		{ .fd = s->recv_fd, .events = POLLIN },
	};
	int64_t wait_ms = until_ms - util_now_ms();
	uint64_t count;

	if (wait_ms < 0)
		wait_ms = 0;
	if (wait_ms > INT_MAX)
		wait_ms = INT_MAX;
	if (poll(pfd, 2, (int)wait_ms) < 0 && errno != EINTR)
		return HPCXL_ETRANSPORT;
	if ((pfd[0].revents & POLLIN) != 0
	    && read(s->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return HPCXL_ETRANSPORT;
	return 0;
}

static int
survey_loop(struct survey *s)
{
	struct survey_view v;
	int64_t now;
	bool retry;
	int rv;

	for (;;) {
		if ((rv = survey_drain(s)) != 0)
			return rv;
		now = util_now_ms();
		if (s->nanswered + s->nundialable == s->n
		    || now >= s->deadline_ms)
			return 0;
		v = survey_look(s);
		if (survey_due(s, &v, now, &retry)) {
			if ((rv = survey_send(s, now)) != 0)
				return rv;
			if (retry && s->retry_ms < SURVEY_RETRY_MAX_MS)
				s->retry_ms *= 2;
			continue;
		}
		if ((rv = survey_wait(s, survey_next_ms(s, &v))) != 0)
			return rv;
	}
}

/* ---- explaining silence ------------------------------------------------ */

/* Dialer counters, most telling first: why a node never attached. */
static const struct {
	const char *stat;
	const char *text;
} survey_dial_errors[] = {
	{ "auth", "TLS authentication failed" },
	{ "reject", "peer rejected (not an hpcxl agent?)" },
	{ "proto", "protocol error" },
	{ "refused", "connection refused" },
	{ "timeout", "connection timed out" },
	{ "other", "cannot connect: address, name or network error" },
};

static uint64_t
survey_stat(nng_stat *scope, const char *name)
{
	nng_stat *st = scope != NULL ? nng_stat_find(scope, name) : NULL;

	return st != NULL ? nng_stat_value(st) : 0;
}

/*
 * Sets scopes[row] to the statistics scope of each row's dialer, in one
 * walk of the snapshot. Not nng_stat_find_dialer(): in 1.5.2 it returns the
 * first dialer's scope whatever the id.
 */
static void
survey_stat_dialers(const struct survey *s, nng_stat *st, nng_stat **scopes)
{
	nng_stat *id;
	size_t i;

	for (; st != NULL; st = nng_stat_next(st)) {
		if (nng_stat_type(st) != NNG_STAT_SCOPE)
			continue;
		if (strcmp(nng_stat_name(st), "dialer") != 0) {
			survey_stat_dialers(s, nng_stat_child(st), scopes);
			continue;
		}
		if ((id = nng_stat_find(st, "id")) == NULL)
			continue;
		for (i = 0; i < s->n; i++) {
			if (s->nodes[i].dialer_id > 0
			    && (uint64_t)s->nodes[i].dialer_id
			        == nng_stat_value(id))
				scopes[i] = st;
		}
	}
}

/* Why a node is not attached, from its dialer's statistics scope (NULL if
 * nng keeps none: then a plain "not connected"). */
static void
survey_explain_dial(nng_stat *scope, int timeout_ms, char *why, size_t len)
{
	const char *reason = "not connected";
	bool lost = survey_stat(scope, "connect") > 0;
	size_t i;

	for (i = 0;
	     i < sizeof(survey_dial_errors) / sizeof(survey_dial_errors[0]);
	     i++) {
		if (survey_stat(scope, survey_dial_errors[i].stat) > 0) {
			reason = survey_dial_errors[i].text;
			break;
		}
	}
	snprintf(why, len, "no reply within %d ms (%s%s)", timeout_ms,
	    lost ? "connection lost; " : "", reason);
}

static void
survey_explain_node(const struct survey *s, size_t i, nng_stat *scope)
{
	const struct survey_node *node = &s->nodes[i];
	struct survey_result *res = &s->results[i];
	size_t len = sizeof(res->why);

	res->reply_ms = util_now_ms() - s->start_ms;
	if (node->dialer_id < 0)
		snprintf(res->why, len, "cannot dial %s: %s", node->url,
		    nng_strerror(node->dial_err));
	else if (node->bad_reply != NULL)
		snprintf(res->why, len,
		    "no valid reply within %d ms (malformed reply: %s)",
		    s->timeout_ms, node->bad_reply);
	else if (node->seen_pipe_id != 0)
		snprintf(res->why, len, "no reply within %d ms (connected)",
		    s->timeout_ms);
	else
		survey_explain_dial(scope, s->timeout_ms, res->why, len);
}

/* Fills the why of every unanswered node; before the socket closes, while
 * the dialers' statistics still exist. */
static void
survey_explain(struct survey *s)
{
	nng_stat *stats = NULL, **scopes;
	size_t i;

	if (s->nanswered == s->n)
		return;
	(void)survey_look(s);
	/* Without memory or statistics the texts are only less precise. */
	if ((scopes = calloc(s->n, sizeof(*scopes))) != NULL
	    && nng_stats_get(&stats) == 0)
		survey_stat_dialers(s, stats, scopes);
	for (i = 0; i < s->n; i++) {
		if (!s->results[i].answered)
			survey_explain_node(s, i, scopes ? scopes[i] : NULL);
	}
	if (stats != NULL)
		nng_stats_free(stats);
	free(scopes);
}

/* ---- entry points ------------------------------------------------------ */

static void *
survey_reap(void *arg)
{
	survey_fini(arg);
	free(arg);
	return NULL;
}

/*
 * Closes s and frees it on a detached thread: in 1.5.2 nng_close() waits
 * for the reaper to catch up with every failed connect attempt (measured:
 * 0.2 to 1.5 ms per unreachable node), and the call must return on time.
 * The thread blocks every signal: they are the application's. Falls back
 * to closing here if no thread can be made.
 */
static void
survey_dispose(struct survey *s)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	bool started = false;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_attr_init(&attr) == 0) {
		started = pthread_attr_setdetachstate(
		              &attr, PTHREAD_CREATE_DETACHED)
		        == 0
		    && pthread_create(&t, &attr, survey_reap, s) == 0;
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!started)
		survey_reap(s);
}

int
survey_run(const char *const *urls, size_t n, const struct proto_msg *req,
    int timeout_ms, struct survey_result *results)
{
	struct survey *s;
	int rv;

	/* On the heap: it may outlive this call (survey_dispose()). */
	if ((s = malloc(sizeof(*s))) == NULL)
		return HPCXL_ENOMEM;
	if ((rv = survey_init(s, n, req, timeout_ms, results)) != 0) {
		free(s);
		return rv;
	}
	if ((rv = survey_start(s, urls)) == 0)
		rv = survey_loop(s);
	if (rv == 0)
		survey_explain(s);
	s->results = NULL; /* the caller's, from now on */
	survey_dispose(s);
	if (rv != 0)
		survey_results_free(results, n);
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
