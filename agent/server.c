#include "server.h"
#include "caller.h"
#include "front.h"
#include "listen.h"
#include "metrics.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <nng/protocol/survey0/respond.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Recent answers by op: a repeated survey gets exactly the same reply. */
#define REPLY_CACHE_SIZE 256
/* Messages queued between nng and the loop, each way. */
#define QUEUE_DEPTH 1024
/* Longest the loop may block handing a reply to nng (queue full). */
#define SEND_TIMEOUT_MS 100
/* How long replies queued just before exit get to reach their peers. */
#define LINGER_MS 200
/* Replies nng 1.5.2 keeps unsent per connection; it drops any further one. */
#define PIPE_SENDQ 2
/* At most one warning this often about connections over that limit. */
#define RISK_WARN_INTERVAL_MS 10000
/* A connection that nng's statistics leave out this long after its last
 * reply is closed. (A new one shows there only just after it attaches.) */
#define PIPE_GONE_MS 1000

/* Keyed by the caller too: a reply is only ever repeated to whoever the
 * first one went to (an op seen by someone else never shows them the
 * owner's answer). */
struct cached_reply {
	uint64_t op;
	enum proto_type type;
	char caller[HPCXL_IDENTITY_MAX + 1];
	char *frame;
	size_t len;
};

/*
 * Replies of one connection (pipe), against what nng wrote of them.
 *
 * nng 1.5.2's raw respondent keeps at most PIPE_SENDQ unsent replies per
 * pipe (xrespond.c: a send queue of depth 2 per pipe, filled with
 * nni_msgq_tryput) and frees any further one without a word. The agent
 * cannot keep a queue of its own and hand nng only what fits: nng says
 * nothing when a pipe's queue drains (no event, no option; only the pipe's
 * tx_msgs statistic, read from a snapshot of the whole statistics tree,
 * which the ws and inproc transports do not even keep), and the loop has no
 * timer to poll it. So the protocol sets the limit (PROTOCOL.md §1.3: at
 * most two requests in flight per connection) and the agent reports a
 * controller that breaks it: a reply handed to nng while PIPE_SENDQ earlier
 * replies of its pipe are still unwritten is one nng may drop.
 */
struct pipe_out {
	uint32_t pipe;
	uint64_t handed; /* replies given to nng */
	uint64_t written; /* nng's tx_msgs when last read */
	int64_t last_ms; /* when a reply was last given to nng */
	bool uncounted; /* its transport keeps no counts (ws, inproc) */
	bool seen; /* in the statistics just read */
};

struct server {
	nng_socket sock;
	char **bound; /* per listen URL, the URL as bound (real port) */
	size_t nbound;
	struct listen_setup *setup; /* TLS files, ipc group: see listen.h */
	struct front *front; /* serves tls+tcp:// and ipc:// (front.h) */
	nng_listener inner; /* where the front relays to (id 0: none yet) */
	struct caller_table *callers; /* who is on each connection */
	int recv_fd;
	char *node;
	struct cached_reply cache[REPLY_CACHE_SIZE];
	size_t cache_next;
	int64_t last_reply_ms; /* when the last reply was queued */
	struct pipe_out *outs; /* connections replied to, unordered */
	size_t nouts, outs_cap;
	bool no_stats; /* nng was built without statistics */
	struct log_limit risk_warnings; /* replies at risk, rate-limited */
};

/* The URL l is bound to (the real port of tcp://...:0), to be freed with
 * nng_strfree(); or NULL. */
static char *
bound_url(nng_listener l)
{
	char *bound = NULL;

	return nng_listener_get_string(l, NNG_OPT_URL, &bound) == 0 ? bound
	                                                            : NULL;
}

static int
keep_bound(struct server *s, const char *bound)
{
	if ((s->bound[s->nbound] = strdup(bound)) == NULL)
		return HPCXL_ENOMEM;
	s->nbound++;
	log_info("listening on %s", bound);
	return 0;
}

/* An nng listener on url, noted in the caller table as kind. */
static int
nng_listen_url(struct server *s, const char *url, enum listen_kind kind,
    nng_listener *out)
{
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, s->sock, url)) != 0
	    || (rv = caller_table_add_listener(s->callers, l, kind)) != 0
	    || (rv = nng_listener_set_size(
	            l, NNG_OPT_RECVMAXSZ, PROTO_MAX_REQUEST))
	        != 0
	    || (rv = nng_listener_start(l, 0)) != 0) {
		log_err("cannot listen on %s: %s", url,
		    rv == HPCXL_ETOOBIG ? "too many listeners"
		                        : nng_strerror(rv));
		return HPCXL_ETRANSPORT;
	}
	*out = l;
	return 0;
}

/* The loopback listener the front relays to: made with the front's first
 * URL, listed nowhere (a program that finds it gets nothing: its
 * connections are no relay's, caller.h). */
static int
listen_inner(struct server *s)
{
	nng_sockaddr sa;
	int rv;

	if (nng_listener_id(s->inner) > 0)
		return 0;
	if ((rv = nng_listen_url(
	         s, "tcp4://127.0.0.1:0", LISTEN_FRONT, &s->inner))
	    != 0)
		return rv;
	if ((rv = nng_listener_get_addr(s->inner, NNG_OPT_LOCADDR, &sa)) != 0
	    || sa.s_family != NNG_AF_INET) {
		log_err("cannot read the front's loopback port");
		return HPCXL_ETRANSPORT;
	}
	log_info(
	    "the front relays to tcp://127.0.0.1:%u", ntohs(sa.s_in.sa_port));
	return front_start(s->front, ntohs(sa.s_in.sa_port));
}

static int
listen_front(struct server *s, const char *url)
{
	char bound[512];
	int rv;

	if ((rv = front_listen(s->front, url, bound, sizeof(bound))) != 0
	    || (rv = listen_inner(s)) != 0)
		return rv;
	return keep_bound(s, bound);
}

static int
listen_one(struct server *s, const char *url)
{
	nng_listener l;
	char *bound;
	int rv;

	if (front_serves(url))
		return listen_front(s, url);
	if ((rv = nng_listen_url(s, url, listen_url_kind(url), &l)) != 0)
		return rv;
	if ((bound = bound_url(l)) == NULL)
		return HPCXL_ENOMEM;
	rv = keep_bound(s, bound);
	nng_strfree(bound);
	return rv;
}

/* One line per listen URL: the URL it is bound to. */
static void
ready_print(const struct server *s, FILE *f)
{
	for (size_t i = 0; i < s->nbound; i++)
		fprintf(f, "%s\n", s->bound[i]);
}

/* The ready file appears whole or not at all: write, fsync, rename. */
int
server_write_ready(const struct server *s, const char *ready_file)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int bad;

	snprintf(tmp, sizeof(tmp), "%s.tmp", ready_file);
	if ((f = fopen(tmp, "we")) == NULL) {
		log_err("cannot write %s: %s", tmp, strerror(errno));
		return HPCXL_ESYSTEM;
	}
	ready_print(s, f);
	bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, ready_file) != 0) {
		log_err("cannot write ready file %s", ready_file);
		unlink(tmp);
		return HPCXL_ESYSTEM;
	}
	return 0;
}

static int
server_listen_all(struct server *s, const struct config *c)
{
	size_t i;
	int rv = 0;

	s->bound = calloc(c->nlisten + 1, sizeof(*s->bound));
	if (s->bound == NULL)
		return HPCXL_ENOMEM;
	for (i = 0; i < c->nlisten && rv == 0; i++)
		rv = listen_one(s, c->listen[i]);
	return rv;
}

/*
 * A raw socket's send queue has depth 0 by default: a non-blocking send
 * succeeds only while nng's dispatcher happens to wait for it, so replies
 * sent back to back were dropped. Deep queues keep the loop from blocking.
 */
static int
server_set_queues(nng_socket sock)
{
	int rv;

	if ((rv = nng_socket_set_int(sock, NNG_OPT_SENDBUF, QUEUE_DEPTH)) != 0
	    || (rv = nng_socket_set_ms(
	            sock, NNG_OPT_SENDTIMEO, SEND_TIMEOUT_MS))
	        != 0)
		return rv;
	return nng_socket_set_int(sock, NNG_OPT_RECVBUF, QUEUE_DEPTH);
}

/*
 * Every connection is identified when nng adds it, before it can deliver
 * a request, and forgotten when nng removes it (caller.h). Set before the
 * first listener starts.
 */
static int
server_watch_pipes(struct server *s)
{
	int rv;

	if ((rv = nng_pipe_notify(
	         s->sock, NNG_PIPE_EV_ADD_PRE, caller_pipe_event, s->callers))
	        != 0
	    || (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST,
	            caller_pipe_event, s->callers))
	        != 0)
		return rv;
	return 0;
}

static void
server_free_setup(struct server *s)
{
	front_free(s->front);
	caller_table_free(s->callers);
	listen_setup_free(s->setup);
	free(s->node);
	free(s);
}

/* Every URL checked, and the TLS files read, before any is listened on;
 * the front is made whatever the URLs (it starts no thread before its
 * first listener). */
static int
server_prepare(struct server *s, const struct config *c)
{
	struct front_setup fs = { 0 };
	char err[512];
	int rv;

	if ((s->node = strdup(c->node)) == NULL)
		return HPCXL_ENOMEM;
	if ((rv = caller_table_new(&s->callers)) != 0
	    || (rv = listen_setup_new(c, &s->setup)) != 0)
		return rv;
	fs.tls = listen_setup_tls(s->setup);
	fs.ipc_chown = listen_setup_ipc_group(s->setup, &fs.ipc_gid);
	if ((rv = front_new(&fs, &s->front, err, sizeof(err))) != 0) {
		log_err("%s", err);
		return rv;
	}
	caller_table_set_front(s->callers, s->front);
	return 0;
}

int
server_open(const struct config *c, struct server **out)
{
	struct server *s;
	int rv;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return HPCXL_ENOMEM;
	s->risk_warnings
	    = (struct log_limit)LOG_LIMIT_INIT(1, RISK_WARN_INTERVAL_MS);
	if ((rv = server_prepare(s, c)) != 0) {
		server_free_setup(s);
		return rv;
	}
	if ((rv = nng_respondent0_open_raw(&s->sock)) != 0
	    || (rv = server_set_queues(s->sock)) != 0
	    || (rv = server_watch_pipes(s)) != 0
	    || (rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recv_fd))
	        != 0) {
		log_err("cannot open respondent socket: %s", nng_strerror(rv));
		if (nng_socket_id(s->sock) > 0)
			nng_close(s->sock);
		server_free_setup(s);
		return HPCXL_ETRANSPORT;
	}
	if ((rv = server_listen_all(s, c)) != 0) {
		server_close(s);
		return rv;
	}
	*out = s;
	return 0;
}

int
server_fd(const struct server *s)
{
	return s->recv_fd;
}

static struct cached_reply *
cache_find(struct server *s, const struct server_req *req)
{
	size_t i;

	for (i = 0; i < REPLY_CACHE_SIZE; i++) {
		if (s->cache[i].frame != NULL && s->cache[i].op == req->m.op
		    && s->cache[i].type == req->m.type
		    && strcmp(s->cache[i].caller, req->caller) == 0)
			return &s->cache[i];
	}
	return NULL;
}

/* Keeps one slot per op: repeats of an op must not flush the others. */
static void
cache_put(struct server *s, const struct server_req *req, const char *frame,
    size_t len)
{
	struct cached_reply *c = cache_find(s, req);
	char *copy = malloc(len);

	if (copy == NULL)
		return; /* a retry will be answered afresh: still correct */
	if (c == NULL) {
		c = &s->cache[s->cache_next];
		s->cache_next = (s->cache_next + 1) % REPLY_CACHE_SIZE;
	}
	free(c->frame);
	memcpy(copy, frame, len);
	*c = (struct cached_reply) {
		.op = req->m.op, .type = req->m.type, .frame = copy, .len = len
	};
	memcpy(c->caller, req->caller, sizeof(c->caller));
	s->last_reply_ms = util_now_ms();
}

/* ---- replies per connection (see struct pipe_out) -------------------- */

static struct pipe_out *
out_find(struct server *s, uint32_t pipe)
{
	for (size_t i = 0; i < s->nouts; i++) {
		if (s->outs[i].pipe == pipe)
			return &s->outs[i];
	}
	return NULL;
}

static uint64_t
out_unwritten(const struct pipe_out *o)
{
	return o->handed > o->written ? o->handed - o->written : 0;
}

/* Takes what nng counted for one pipe scope of its statistics. */
static void
out_take_stats(struct server *s, nng_stat *scope)
{
	nng_stat *id = nng_stat_find(scope, "id");
	nng_stat *rx = nng_stat_find(scope, "rx_msgs");
	nng_stat *tx = nng_stat_find(scope, "tx_msgs");
	struct pipe_out *o;

	if (id == NULL || rx == NULL || tx == NULL
	    || (o = out_find(s, (uint32_t)nng_stat_value(id))) == NULL)
		return;
	o->written = nng_stat_value(tx);
	/* Every pipe here sent a request: no count means no counting. */
	o->uncounted = nng_stat_value(rx) == 0;
	o->seen = true;
}

static void
out_walk_stats(struct server *s, nng_stat *st)
{
	for (; st != NULL; st = nng_stat_next(st)) {
		if (nng_stat_type(st) != NNG_STAT_SCOPE)
			continue;
		if (strcmp(nng_stat_name(st), "pipe") == 0)
			out_take_stats(s, st);
		else
			out_walk_stats(s, nng_stat_child(st));
	}
}

/* Forgets the pipes that are gone (closed connections). */
static void
out_prune(struct server *s, int64_t now_ms)
{
	size_t i = 0;

	while (i < s->nouts) {
		if (!s->outs[i].seen
		    && now_ms - s->outs[i].last_ms >= PIPE_GONE_MS)
			s->outs[i] = s->outs[--s->nouts];
		else
			i++;
	}
}

/* Reads how many replies nng wrote per pipe, from its statistics. */
static void
out_refresh(struct server *s, int64_t now_ms)
{
	nng_stat *stats;

	if (s->no_stats)
		return;
	if (nng_stats_get(&stats) != 0) {
		s->no_stats = true;
		log_notice("no nng statistics: replies nng may drop for a "
		           "connection over the limit are not reported");
		return;
	}
	for (size_t i = 0; i < s->nouts; i++)
		s->outs[i].seen = false;
	out_walk_stats(s, stats);
	nng_stats_free(stats);
	out_prune(s, now_ms);
}

/* The record of pipe, new if need be; NULL when out of memory. */
static struct pipe_out *
out_get(struct server *s, uint32_t pipe, int64_t now_ms)
{
	struct pipe_out *o = out_find(s, pipe), *bigger;
	size_t cap;

	if (o != NULL)
		return o;
	if (s->nouts == s->outs_cap && s->outs_cap > 0)
		out_refresh(s, now_ms); /* room from closed connections */
	if (s->nouts == s->outs_cap) {
		cap = s->outs_cap > 0 ? s->outs_cap * 2 : 16;
		if ((bigger = realloc(s->outs, cap * sizeof(*bigger))) == NULL)
			return NULL;
		s->outs = bigger;
		s->outs_cap = cap;
	}
	o = &s->outs[s->nouts++];
	*o = (struct pipe_out) { .pipe = pipe, .last_ms = now_ms };
	return o;
}

/*
 * How many replies of pipe nng has not written yet, for one about to be
 * handed to it. nng's counts are read only when ours say the limit may be
 * reached, i.e. every other reply of a busy connection.
 */
static uint64_t
out_before_send(struct server *s, uint32_t pipe, int64_t now_ms)
{
	struct pipe_out *o = out_get(s, pipe, now_ms);

	if (o == NULL)
		return 0;
	o->last_ms = now_ms;
	if (out_unwritten(o) >= PIPE_SENDQ && !o->uncounted) {
		out_refresh(s, now_ms);
		o = out_find(s, pipe); /* kept: just used, but maybe moved */
	}
	return o == NULL || o->uncounted || s->no_stats ? 0 : out_unwritten(o);
}

static void
out_handed(struct server *s, uint32_t pipe)
{
	struct pipe_out *o = out_find(s, pipe);

	if (o != NULL)
		o->handed++;
}

/* Rate-limited: a controller that pipelines does it on every request. */
static void
risk_warn(struct server *s, nng_pipe pipe, uint64_t unwritten, uint64_t op)
{
	char peer[256], held_text[80] = "";
	unsigned long held;

	if (!log_limit_allow(&s->risk_warnings, util_now_ms(), &held))
		return;
	if (held > 0)
		snprintf(held_text, sizeof(held_text),
		    " (%lu more replies at risk since the last warning)",
		    held);
	caller_peer_address(pipe, peer, sizeof(peer));
	log_warn("connection from %s has more than two requests in flight: "
	         "%llu replies to it not written yet, so nng may drop the "
	         "reply to op %016llx; controllers keep at most two per "
	         "connection (PROTOCOL.md 1.3)%s",
	    peer, (unsigned long long)unwritten, (unsigned long long)op,
	    held_text);
}

/* ---- sending ----------------------------------------------------------- */

/* Sends frame (the reply to op) on msg's route; msg is consumed. */
static void
send_on_route(
    struct server *s, nng_msg *msg, uint64_t op, const char *frame, size_t len)
{
	nng_pipe pipe = nng_msg_get_pipe(msg);
	uint64_t unwritten
	    = out_before_send(s, nng_pipe_id(pipe), util_now_ms());
	int rv;

	nng_msg_clear(msg);
	/* A blocking send bounded by SEND_TIMEOUT_MS: with a deep queue it
	 * returns at once. NNG_FLAG_NONBLOCK is not used because in nng 1.5.2
	 * a zero-timeout send can fail with EAGAIN while the queue has room
	 * (seen here: about 1 reply in 100 dropped under connection churn). */
	if ((rv = nng_msg_append(msg, frame, len)) == 0)
		rv = nng_sendmsg(s->sock, msg, 0);
	if (rv != 0) {
		/* The surveyor will ask again with the same op. */
		log_warn("reply dropped: %s", nng_strerror(rv));
		nng_msg_free(msg);
		return;
	}
	out_handed(s, nng_pipe_id(pipe));
	if (unwritten >= PIPE_SENDQ)
		risk_warn(s, pipe, unwritten, op);
}

/* Reply to a frame we could not decode: op 0 when op was unreadable. */
static void
reply_bad_request(struct server *s, nng_msg *msg, const char *why)
{
	struct proto_msg r = { .type = PROTO_REPLY };
	char *frame;
	size_t len;

	r.u.reply.node = s->node;
	r.u.reply.code = PROTO_CODE_BAD_REQUEST;
	r.u.reply.msg = (char *)(why != NULL ? why : "malformed request");
	if (proto_encode(&r, &frame, &len) != 0) {
		nng_msg_free(msg);
		return;
	}
	send_on_route(s, msg, 0, frame, len);
	free(frame);
}

/* Decodes msg into m; false when it is no request (answered bad_request,
 * msg consumed). */
static bool
decode_request(struct server *s, nng_msg *msg, struct proto_msg *m)
{
	const char *why = NULL;
	int rv;

	rv = proto_decode(
	    nng_msg_body(msg), nng_msg_len(msg), PROTO_MAX_REQUEST, m, &why);
	if (rv == 0 && m->type == PROTO_REPLY) {
		proto_msg_free(m);
		rv = HPCXL_EPROTO;
		why = "a reply is not a request";
	}
	if (rv == 0)
		return true;
	log_notice("bad request: %s", why != NULL ? why : "?");
	reply_bad_request(s, msg, why);
	return false;
}

/* Gives req its caller; false when its connection has none (req answered
 * refused and freed). */
static bool
take_caller(struct server *s, struct server_req *req)
{
	nng_pipe pipe = nng_msg_get_pipe(req->msg);
	char peer[256];

	if (caller_lookup(s->callers, pipe, req->caller))
		return true;
	caller_peer_address(pipe, peer, sizeof(peer));
	log_warn("request from %s refused: its connection has no known "
	         "caller",
	    peer);
	server_reply_code(s, req, PROTO_CODE_REFUSED,
	    "the agent does not know who is on this connection");
	return false;
}

/* A repeat of an op this caller was answered: the same reply again (req
 * freed). False when req is new. */
static bool
answer_repeat(struct server *s, struct server_req *req)
{
	const struct cached_reply *c = cache_find(s, req);

	if (c == NULL)
		return false;
	log_debug("repeat of op %016llx answered from cache",
	    (unsigned long long)req->m.op);
	send_on_route(s, req->msg, req->m.op, c->frame, c->len);
	req->msg = NULL;
	server_req_free(req);
	return true;
}

int
server_next(struct server *s, struct server_req **out)
{
	struct server_req *req;
	nng_msg *msg;

	for (;;) {
		if (nng_recvmsg(s->sock, &msg, NNG_FLAG_NONBLOCK) != 0)
			return HPCXL_ENOTFOUND;
		if ((req = calloc(1, sizeof(*req))) == NULL) {
			nng_msg_free(msg);
			continue;
		}
		if (!decode_request(s, msg, &req->m)) {
			free(req);
			continue;
		}
		req->msg = msg;
		if (!take_caller(s, req) || answer_repeat(s, req))
			continue;
		*out = req;
		return 0;
	}
}

void
server_reply(struct server *s, struct server_req *req, struct proto_reply *r)
{
	struct proto_msg m = { .type = PROTO_REPLY, .op = req->m.op };
	char *frame;
	size_t len;

	if (r->node == NULL)
		r->node = s->node;
	m.u.reply = *r;
	metrics_count_reply(req->m.type, r->code);
	if (proto_encode(&m, &frame, &len) != 0) {
		log_err("cannot encode a reply to op %016llx",
		    (unsigned long long)req->m.op);
		server_req_free(req);
		return;
	}
	/* A refusal for want of a caller is not kept: it has no owner. */
	if (req->m.op != 0 && req->caller[0] != '\0')
		cache_put(s, req, frame, len);
	send_on_route(s, req->msg, req->m.op, frame, len);
	req->msg = NULL;
	free(frame);
	server_req_free(req);
}

void
server_reply_code(struct server *s, struct server_req *req,
    enum proto_code code, const char *msg)
{
	struct proto_reply r = { .code = code, .msg = (char *)msg };

	server_reply(s, req, &r);
}

bool
server_req_same_route(const struct server_req *a, const struct server_req *b)
{
	size_t len = nng_msg_header_len(a->msg);

	/* The raw respondent's header: our pipe id, then the surveyor's
	 * backtrace (hops, survey id). */
	return nng_pipe_id(nng_msg_get_pipe(a->msg))
	    == nng_pipe_id(nng_msg_get_pipe(b->msg))
	    && len == nng_msg_header_len(b->msg)
	    && memcmp(nng_msg_header(a->msg), nng_msg_header(b->msg), len)
	    == 0;
}

void
server_req_free(struct server_req *req)
{
	if (req == NULL)
		return;
	if (req->msg != NULL)
		nng_msg_free(req->msg);
	proto_msg_free(&req->m);
	free(req);
}

/*
 * nng 1.5.2 has no linger: closing the socket drops replies still queued,
 * such as the last "closed" of a shutdown. Give recent ones a moment.
 */
static void
server_linger(const struct server *s)
{
	int64_t wait_ms = s->last_reply_ms + LINGER_MS - util_now_ms();
	struct timespec ts;

	if (s->last_reply_ms == 0 || wait_ms <= 0)
		return;
	ts.tv_sec = wait_ms / 1000;
	ts.tv_nsec = (wait_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

void
server_close(struct server *s)
{
	size_t i;

	if (s == NULL)
		return;
	server_linger(s);
	/* nng calls the pipe callbacks no more once the socket is closed;
	 * the front, which they ask, goes after it. */
	nng_close(s->sock);
	for (i = 0; i < REPLY_CACHE_SIZE; i++)
		free(s->cache[i].frame);
	for (i = 0; i < s->nbound; i++)
		free(s->bound[i]);
	free(s->bound);
	free(s->outs);
	server_free_setup(s);
}
