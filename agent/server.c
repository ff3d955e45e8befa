#include "server.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

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

struct cached_reply {
	uint64_t op;
	enum proto_type type;
	char *frame;
	size_t len;
};

struct server {
	nng_socket sock;
	nng_listener *listeners; /* one per listen URL, started */
	size_t nlisteners;
	int recv_fd;
	char *node;
	struct cached_reply cache[REPLY_CACHE_SIZE];
	size_t cache_next;
	int64_t last_reply_ms; /* when the last reply was queued */
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
listen_one(struct server *s, const char *url)
{
	nng_listener l;
	char *bound;
	int rv;

	if ((rv = nng_listener_create(&l, s->sock, url)) != 0
	    || (rv = nng_listener_set_size(
	            l, NNG_OPT_RECVMAXSZ, PROTO_MAX_REQUEST))
	        != 0
	    || (rv = nng_listener_start(l, 0)) != 0) {
		log_err("cannot listen on %s: %s", url, nng_strerror(rv));
		return HPCXL_ETRANSPORT;
	}
	s->listeners[s->nlisteners++] = l;
	bound = bound_url(l);
	log_info("listening on %s", bound != NULL ? bound : url);
	nng_strfree(bound);
	return 0;
}

/* One line per listener: the URL it is bound to. */
static int
ready_print(const struct server *s, FILE *f)
{
	char *bound;
	size_t i;

	for (i = 0; i < s->nlisteners; i++) {
		if ((bound = bound_url(s->listeners[i])) == NULL)
			return HPCXL_ENOMEM;
		fprintf(f, "%s\n", bound);
		nng_strfree(bound);
	}
	return 0;
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
	bad = ready_print(s, f) != 0;
	bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
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

	s->listeners = calloc(c->nlisten + 1, sizeof(*s->listeners));
	if (s->listeners == NULL)
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

int
server_open(const struct config *c, struct server **out)
{
	struct server *s;
	int rv;

	if ((s = calloc(1, sizeof(*s))) == NULL
	    || (s->node = strdup(c->node)) == NULL) {
		free(s);
		return HPCXL_ENOMEM;
	}
	if ((rv = nng_respondent0_open_raw(&s->sock)) != 0
	    || (rv = server_set_queues(s->sock)) != 0
	    || (rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recv_fd))
	        != 0) {
		log_err("cannot open respondent socket: %s", nng_strerror(rv));
		free(s->node);
		free(s);
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
cache_find(struct server *s, uint64_t op, enum proto_type type)
{
	size_t i;

	for (i = 0; i < REPLY_CACHE_SIZE; i++) {
		if (s->cache[i].frame != NULL && s->cache[i].op == op
		    && s->cache[i].type == type)
			return &s->cache[i];
	}
	return NULL;
}

/* Keeps one slot per op: repeats of an op must not flush the others. */
static void
cache_put(struct server *s, uint64_t op, enum proto_type type,
    const char *frame, size_t len)
{
	struct cached_reply *c = cache_find(s, op, type);
	char *copy = malloc(len);

	if (copy == NULL)
		return; /* a retry will be answered afresh: still correct */
	if (c == NULL) {
		c = &s->cache[s->cache_next];
		s->cache_next = (s->cache_next + 1) % REPLY_CACHE_SIZE;
	}
	free(c->frame);
	memcpy(copy, frame, len);
	*c = (struct cached_reply) { op, type, copy, len };
	s->last_reply_ms = util_now_ms();
}

/* Sends frame on msg's route; msg (and its header) is consumed. */
static void
send_on_route(struct server *s, nng_msg *msg, const char *frame, size_t len)
{
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
	}
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
	send_on_route(s, msg, frame, len);
	free(frame);
}

/* Returns true when msg was consumed (bad or answered from the cache). */
static bool
handle_frame(struct server *s, nng_msg *msg, struct proto_msg *m)
{
	const struct cached_reply *c;
	const char *why = NULL;
	int rv;

	rv = proto_decode(
	    nng_msg_body(msg), nng_msg_len(msg), PROTO_MAX_REQUEST, m, &why);
	if (rv == 0 && m->type == PROTO_REPLY) {
		proto_msg_free(m);
		rv = HPCXL_EPROTO;
		why = "a reply is not a request";
	}
	if (rv != 0) {
		log_notice("bad request: %s", why != NULL ? why : "?");
		reply_bad_request(s, msg, why);
		return true;
	}
	if ((c = cache_find(s, m->op, m->type)) != NULL) {
		log_debug("repeat of op %016llx answered from cache",
		    (unsigned long long)m->op);
		send_on_route(s, msg, c->frame, c->len);
		proto_msg_free(m);
		return true;
	}
	return false;
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
		if (handle_frame(s, msg, &req->m)) {
			free(req);
			continue;
		}
		req->msg = msg;
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
	if (proto_encode(&m, &frame, &len) != 0) {
		log_err("cannot encode a reply to op %016llx",
		    (unsigned long long)req->m.op);
		server_req_free(req);
		return;
	}
	if (req->m.op != 0)
		cache_put(s, req->m.op, req->m.type, frame, len);
	send_on_route(s, req->msg, frame, len);
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
	nng_close(s->sock);
	for (i = 0; i < REPLY_CACHE_SIZE; i++)
		free(s->cache[i].frame);
	free(s->listeners);
	free(s->node);
	free(s);
}
