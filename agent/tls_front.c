/* The agent's TLS front: see tls_front.h for what and why. */
#include "tls_front.h"
#include "caller.h"
#include "pipe_map.h"
#include "tls_conf.h"

#include <mbedtls/net_sockets.h>

#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Longest a client may take to finish its handshake and reach nng, and a
 * relay whose peer has gone to hand nng its last bytes (nng's own TLS
 * transport gives a new connection 10 s to negotiate). */
#define RELAY_SETUP_MS 10000
/* Plain bytes buffered each way per relay. */
#define RELAY_BUF 8192
/* Connections relayed at once; one more is closed at once (with a warning),
 * as the caller table would close one more pipe. */
#define FRONT_MAX_RELAYS CALLER_MAX_PIPES
/* epoll events taken per wait. */
#define FRONT_EVENTS 64
/* Refusals logged in a burst, and one more per second after it: a port
 * scan must not flood the log. */
#define WARN_BURST 20
#define WARN_REFILL_MS 1000

/* What an epoll event is about: the first member of what it points to. */
enum watch_kind {
	WATCH_WAKE, /* the eventfd: stop */
	WATCH_LISTENER,
	WATCH_OUTER, /* a relay's client side */
	WATCH_INNER, /* a relay's side towards nng */
};

struct watch {
	enum watch_kind kind;
};

struct listener {
	struct watch w;
	int fd;
};

/*
 * A relay's life:
 *   HANDSHAKE   TLS with the client; on success the client certificate's
 *               CN is checked (tls_conf_identity()), then nng is dialled;
 *   CONNECTING  waiting for the loopback connection to nng;
 *   OPEN        bytes flow both ways until one side is done, then the
 *               other is given the rest (see relay_finished()).
 * HANDSHAKE and CONNECTING, and a relay closing, are timed (RELAY_SETUP_MS).
 */
enum relay_phase { RELAY_HANDSHAKE, RELAY_CONNECTING, RELAY_OPEN };

/* Bytes from [start, end) are waiting to be written. */
struct buf {
	size_t start, end;
	unsigned char data[RELAY_BUF];
};

struct relay {
	struct watch outer_w, inner_w;
	int outer, inner; /* -1: none, or closed */
	uint32_t outer_mask, inner_mask; /* as registered */
	bool outer_watched, inner_watched;
	mbedtls_ssl_context ssl;
	enum relay_phase phase;
	bool handshake_wants_write;
	bool outer_hup, inner_hup; /* epoll said: hung up or in error */
	bool outer_read_done; /* the client will send nothing more */
	bool outer_broken; /* nothing can be written to the client */
	bool inner_done; /* nng closed the connection, or it failed */
	bool inner_write_shut; /* nng was told the client is done */
	bool inner_blocked; /* the last write to nng would have blocked */
	uint32_t outer_write_wait; /* EPOLLIN/EPOLLOUT an ssl_write awaits */
	size_t
	    down_pending; /* the length that ssl_write must be given again */
	bool dead; /* close now */
	bool closed; /* fds closed, waiting to be freed */
	int64_t deadline_ms; /* when timed */
	uint16_t port; /* our end of the loopback connection; 0: none */
	char identity[HPCXL_IDENTITY_MAX + 1];
	char peer[INET6_ADDRSTRLEN + 8];
	struct buf up; /* client -> nng */
	struct buf down; /* nng -> client */
	struct relay *prev, *next; /* every relay */
	struct relay *tprev, *tnext; /* the timed ones, by deadline */
	bool timed;
};

struct tls_front {
	struct tls_conf conf;
	int epfd, wakefd;
	struct watch wake_w;
	struct listener listeners[CONFIG_MAX_LISTEN];
	size_t nlisteners;
	struct sockaddr_in inner_addr;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* the front's thread writes, nng's read */
	struct pipe_map callers; /* loopback source port -> identity */
	struct relay *relays; /* every relay, newest first */
	size_t nrelays;
	struct relay *timed_head, *timed_tail; /* deadlines only grow */
	struct relay *graveyard; /* closed during one epoll batch */
	int warn_tokens;
	int64_t warn_refill_ms;
	unsigned long warn_quiet;
};

/* ---- buffers ----------------------------------------------------------- */

static size_t
buf_len(const struct buf *b)
{
	return b->end - b->start;
}

/* Room at the end; moves the waiting bytes to the front when that makes
 * room (never while an ssl_write of them is pending: see relay_to_outer). */
static size_t
buf_room(struct buf *b, bool may_move)
{
	if (b->start == b->end)
		b->start = b->end = 0;
	else if (b->end == RELAY_BUF && b->start > 0 && may_move) {
		memmove(b->data, b->data + b->start, buf_len(b));
		b->end -= b->start;
		b->start = 0;
	}
	return RELAY_BUF - b->end;
}

static void
buf_drop(struct buf *b)
{
	b->start = b->end = 0;
}

/* ---- logging ----------------------------------------------------------- */

/* A refused or failed connection is worth a warning, but a flood of them is
 * not worth a flood of lines: WARN_BURST, then one per WARN_REFILL_MS. */
static bool
front_may_warn(struct tls_front *f)
{
	int64_t earned = (util_now_ms() - f->warn_refill_ms) / WARN_REFILL_MS;

	if (earned > 0) {
		f->warn_tokens = earned >= WARN_BURST - f->warn_tokens
		    ? WARN_BURST
		    : f->warn_tokens + (int)earned;
		f->warn_refill_ms += earned * WARN_REFILL_MS;
	}
	if (f->warn_tokens == 0) {
		f->warn_quiet++;
		return false;
	}
	f->warn_tokens--;
	return true;
}

static void
relay_refuse(struct tls_front *f, struct relay *r, const char *why)
{
	if (front_may_warn(f)) {
		log_warn("connection from %s closed: %s (%lu more not logged)",
		    r->peer, why, f->warn_quiet);
		f->warn_quiet = 0;
	}
	r->dead = true;
}

static void
relay_refuse_tls(
    struct tls_front *f, struct relay *r, const char *what, int rv)
{
	char why[200], text[160];

	snprintf(why, sizeof(why), "%s: %s", what,
	    tls_conf_strerror(rv, text, sizeof(text)));
	relay_refuse(f, r, why);
}

static void
sockaddr_text(const struct sockaddr_storage *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else
		snprintf(out, len, "?");
}

/* ---- epoll ------------------------------------------------------------- */

/* Registers, changes or (mask 0) removes fd's interest: an fd with nothing
 * to wait for is taken out, since epoll reports a hang-up whatever the
 * mask, and a relay that no longer reads a side would be woken for ever. */
static int
front_watch(struct tls_front *f, int fd, struct watch *w, uint32_t mask,
    uint32_t *current, bool *watched)
{
	struct epoll_event ev = { .events = mask, .data.ptr = w };
	int rv = 0;

	if (*watched && mask == 0) {
		rv = epoll_ctl(f->epfd, EPOLL_CTL_DEL, fd, NULL);
		*watched = false;
	} else if (!*watched && mask != 0) {
		rv = epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev);
		*watched = rv == 0;
	} else if (*watched && mask != *current)
		rv = epoll_ctl(f->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (rv == 0)
		*current = mask;
	return rv;
}

/* ---- the timed relays -------------------------------------------------- */

static void
timed_remove(struct tls_front *f, struct relay *r)
{
	if (!r->timed)
		return;
	if (r->tprev != NULL)
		r->tprev->tnext = r->tnext;
	else
		f->timed_head = r->tnext;
	if (r->tnext != NULL)
		r->tnext->tprev = r->tprev;
	else
		f->timed_tail = r->tprev;
	r->tprev = r->tnext = NULL;
	r->timed = false;
}

/* Every deadline is now + RELAY_SETUP_MS: appending keeps them sorted. */
static void
timed_add(struct tls_front *f, struct relay *r)
{
	if (r->timed)
		return;
	r->deadline_ms = util_now_ms() + RELAY_SETUP_MS;
	r->tprev = f->timed_tail;
	r->tnext = NULL;
	if (f->timed_tail != NULL)
		f->timed_tail->tnext = r;
	else
		f->timed_head = r;
	f->timed_tail = r;
	r->timed = true;
}

/* ---- closing ----------------------------------------------------------- */

static void
relay_forget_port(struct tls_front *f, struct relay *r)
{
	if (r->port == 0)
		return;
	pthread_mutex_lock(&f->lock);
	pipe_map_remove(&f->callers, r->port);
	pthread_mutex_unlock(&f->lock);
	r->port = 0;
}

/* Closes r's connections now; its memory waits for the end of the epoll
 * batch, which may still hold events about it. */
static void
relay_close(struct tls_front *f, struct relay *r)
{
	if (r->phase == RELAY_OPEN && !r->outer_broken)
		(void)mbedtls_ssl_close_notify(&r->ssl); /* best effort */
	front_watch(
	    f, r->outer, &r->outer_w, 0, &r->outer_mask, &r->outer_watched);
	close(r->outer);
	if (r->inner >= 0) {
		front_watch(f, r->inner, &r->inner_w, 0, &r->inner_mask,
		    &r->inner_watched);
		close(r->inner);
	}
	r->outer = r->inner = -1;
	relay_forget_port(f, r);
	timed_remove(f, r);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		f->relays = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	f->nrelays--;
	r->closed = true;
	r->next = f->graveyard;
	f->graveyard = r;
}

static void
front_bury(struct tls_front *f)
{
	struct relay *r;

	while ((r = f->graveyard) != NULL) {
		f->graveyard = r->next;
		mbedtls_ssl_free(&r->ssl);
		free(r);
	}
}

/* ---- the client side: TLS over a non-blocking socket ------------------ */

/* mbedTLS's I/O callbacks; send() with MSG_NOSIGNAL, whatever SIGPIPE's
 * disposition in the process. */
static int
bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	ssize_t n = recv(*(int *)ctx, buf, len, 0);

	if (n >= 0)
		return (int)n; /* 0: the peer closed (mbedTLS: CONN_EOF) */
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static bool
tls_would_block(int rv)
{
	return rv == MBEDTLS_ERR_SSL_WANT_READ
	    || rv == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* ---- the nng side ------------------------------------------------------ */

static void
socket_nodelay(int fd)
{
	int one = 1;

	/* The protocol is request and answer: Nagle would hold an answer's
	 * last segment for the client's delayed ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The port our end of the loopback connection will use, bound before the
 * connect so that the caller table knows it before nng adds the pipe. */
static int
relay_bind_inner(struct tls_front *f, struct relay *r)
{
	struct sockaddr_in me = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(me);
	int rv;

	r->inner
	    = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->inner < 0 || bind(r->inner, (struct sockaddr *)&me, len) != 0
	    || getsockname(r->inner, (struct sockaddr *)&me, &len) != 0)
		return HPCXL_ESYSTEM;
	socket_nodelay(r->inner);
	pthread_mutex_lock(&f->lock);
	rv = pipe_map_put(&f->callers, ntohs(me.sin_port), r->identity);
	pthread_mutex_unlock(&f->lock);
	if (rv == 0)
		r->port = ntohs(me.sin_port);
	return rv;
}

static void
relay_dial_nng(struct tls_front *f, struct relay *r)
{
	int rv = relay_bind_inner(f, r);

	if (rv == 0
	    && connect(r->inner, (const struct sockaddr *)&f->inner_addr,
	           sizeof(f->inner_addr))
	        != 0
	    && errno != EINPROGRESS)
		rv = HPCXL_ESYSTEM;
	if (rv != 0) {
		log_err("connection from %s (%s) closed: cannot reach the "
		        "agent's loopback listener: %s",
		    r->peer, r->identity,
		    rv == HPCXL_ESYSTEM ? strerror(errno)
		                        : hpcxl_strerror(rv));
		r->dead = true;
		return;
	}
	log_debug("connection from %s is %s (relayed from 127.0.0.1:%u)",
	    r->peer, r->identity, r->port);
	r->phase = RELAY_CONNECTING;
}

/* ---- the phases -------------------------------------------------------- */

static bool
relay_handshake(struct tls_front *f, struct relay *r)
{
	char why[200];
	int rv = mbedtls_ssl_handshake(&r->ssl);

	if (tls_would_block(rv)) {
		r->handshake_wants_write = rv == MBEDTLS_ERR_SSL_WANT_WRITE;
		return false;
	}
	if (rv != 0)
		relay_refuse_tls(f, r, "TLS handshake failed", rv);
	else if (tls_conf_identity(&r->ssl, r->identity, why, sizeof(why))
	    != 0)
		relay_refuse(f, r, why);
	else
		relay_dial_nng(f, r);
	return !r->dead;
}

static bool
relay_connected(struct relay *r)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(r->inner, SOL_SOCKET, SO_ERROR, &err, &len) != 0
	    || err != 0) {
		log_err("connection from %s (%s) closed: the agent's loopback "
		        "listener refused it: %s",
		    r->peer, r->identity, strerror(err != 0 ? err : errno));
		r->dead = true;
		return false;
	}
	len = sizeof(peer);
	if (getpeername(r->inner, (struct sockaddr *)&peer, &len) != 0)
		return false; /* still connecting */
	r->phase = RELAY_OPEN;
	return true;
}

/* Client -> buffer: what TLS has decrypted, while there is room. */
static bool
relay_from_outer(struct relay *r)
{
	size_t room;
	int n;

	if (r->outer_read_done || (room = buf_room(&r->up, true)) == 0)
		return false;
	n = mbedtls_ssl_read(&r->ssl, r->up.data + r->up.end, room);
	if (n > 0) {
		r->up.end += (size_t)n;
		return true;
	}
	if (tls_would_block(n))
		return false;
	/* 0, close_notify, EOF: done; anything else: broken as well. */
	r->outer_read_done = true;
	if (n != 0 && n != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY
	    && n != MBEDTLS_ERR_SSL_CONN_EOF)
		r->outer_broken = true;
	return true;
}

/* Buffer -> nng. */
static bool
relay_to_inner(struct relay *r)
{
	ssize_t n;

	if (r->inner_done || buf_len(&r->up) == 0)
		return false;
	n = send(
	    r->inner, r->up.data + r->up.start, buf_len(&r->up), MSG_NOSIGNAL);
	if (n > 0) {
		r->up.start += (size_t)n;
		r->inner_blocked = false;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		r->inner_blocked = true;
		return false;
	}
	r->inner_done = true;
	return true;
}

/* nng -> buffer. */
static bool
relay_from_inner(struct relay *r)
{
	size_t room;
	ssize_t n;

	if (r->inner_done
	    || (room = buf_room(&r->down, r->down_pending == 0)) == 0)
		return false;
	n = recv(r->inner, r->down.data + r->down.end, room, 0);
	if (n > 0) {
		r->down.end += (size_t)n;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	r->inner_done = true; /* nng closed its side, or it failed */
	return true;
}

/*
 * Buffer -> client. After WANT_WRITE mbedTLS has the record made and must
 * be called again with the same length: it then only flushes and returns
 * that length (mbedTLS 2.28, ssl_write_real()).
 */
static bool
relay_to_outer(struct relay *r)
{
	size_t len;
	int n;

	if (r->outer_broken || buf_len(&r->down) == 0)
		return false;
	len = r->down_pending != 0 ? r->down_pending : buf_len(&r->down);
	n = mbedtls_ssl_write(&r->ssl, r->down.data + r->down.start, len);
	if (n > 0) {
		r->down.start += (size_t)n;
		r->down_pending = 0;
		r->outer_write_wait = 0;
		return true;
	}
	if (tls_would_block(n)) {
		r->down_pending = len;
		r->outer_write_wait
		    = n == MBEDTLS_ERR_SSL_WANT_WRITE ? EPOLLOUT : EPOLLIN;
		return false;
	}
	r->outer_broken = r->outer_read_done = true;
	return true;
}

/* Tells nng, once everything the client sent is written, that it is done:
 * nng reads the last request, then sees the end and closes the pipe. */
static bool
relay_shut_inner(struct relay *r)
{
	if (!r->outer_read_done || r->inner_write_shut || r->inner_done
	    || buf_len(&r->up) > 0)
		return false;
	(void)shutdown(r->inner, SHUT_WR);
	r->inner_write_shut = true;
	return true;
}

static bool
relay_move(struct relay *r)
{
	bool moved = false;

	moved |= relay_from_outer(r);
	moved |= relay_to_inner(r);
	moved |= relay_from_inner(r);
	moved |= relay_to_outer(r);
	moved |= relay_shut_inner(r);
	if (r->outer_broken)
		buf_drop(&r->down); /* no one to give it to */
	if (r->inner_done)
		buf_drop(&r->up);
	return moved;
}

/* Done: nng has closed and the client has had all of nng's bytes (or can
 * have none); or the client is gone and nng has been told. */
static bool
relay_finished(const struct relay *r)
{
	if (r->dead)
		return true;
	if (r->phase != RELAY_OPEN)
		return false;
	return r->inner_done && (buf_len(&r->down) == 0 || r->outer_broken);
}

/* What each side waits for now. */
static void
relay_watch(struct tls_front *f, struct relay *r)
{
	uint32_t outer = 0, inner = 0;

	switch (r->phase) {
	case RELAY_HANDSHAKE:
		outer = r->handshake_wants_write ? EPOLLOUT : EPOLLIN;
		break;
	case RELAY_CONNECTING:
		inner = EPOLLOUT;
		break;
	case RELAY_OPEN:
		if (!r->outer_broken) {
			if (!r->outer_read_done && buf_room(&r->up, true) > 0)
				outer |= EPOLLIN;
			if (buf_len(&r->down) > 0)
				outer |= r->outer_write_wait;
		}
		if (!r->inner_done) {
			if (buf_room(&r->down, r->down_pending == 0) > 0)
				inner |= EPOLLIN;
			if (r->inner_blocked && buf_len(&r->up) > 0)
				inner |= EPOLLOUT;
		}
		break;
	}
	if (front_watch(f, r->outer, &r->outer_w, outer, &r->outer_mask,
	        &r->outer_watched)
	        != 0
	    || (r->inner >= 0
	        && front_watch(f, r->inner, &r->inner_w, inner, &r->inner_mask,
	               &r->inner_watched)
	            != 0)) {
		log_err("connection from %s closed: epoll: %s", r->peer,
		    strerror(errno));
		r->dead = true;
	}
}

/* An end epoll reported hung up or in error has given all it had once
 * the steps stop moving: from then on it is gone. */
static void
relay_take_hangups(struct relay *r)
{
	if (r->outer_hup) {
		if (r->phase != RELAY_OPEN)
			r->dead = true; /* gone before it was ever relayed */
		r->outer_broken = r->outer_read_done = true;
	}
	if (r->inner_hup)
		r->inner_done = true;
	r->outer_hup = r->inner_hup = false;
}

static bool
relay_step_once(struct tls_front *f, struct relay *r)
{
	switch (r->phase) {
	case RELAY_HANDSHAKE:
		return relay_handshake(f, r);
	case RELAY_CONNECTING:
		return relay_connected(r);
	case RELAY_OPEN:
		return relay_move(r);
	}
	return false;
}

/* Moves r as far as it goes without waiting, then closes it or waits. */
static void
relay_step(struct tls_front *f, struct relay *r)
{
	bool hangups = r->outer_hup || r->inner_hup;

	for (;;) {
		while (!r->dead && relay_step_once(f, r))
			;
		if (!hangups)
			break;
		relay_take_hangups(r);
		hangups = false;
	}
	if (relay_finished(r)) {
		relay_close(f, r);
		return;
	}
	if (r->phase == RELAY_OPEN && (r->outer_read_done || r->inner_done))
		timed_add(f, r); /* closing: bounded */
	else if (r->phase == RELAY_OPEN)
		timed_remove(f, r);
	relay_watch(f, r);
	if (r->dead)
		relay_close(f, r);
}

/* ---- accepting --------------------------------------------------------- */

static int
relay_init(struct tls_front *f, struct relay *r, int fd,
    const struct sockaddr_storage *sa)
{
	r->outer_w.kind = WATCH_OUTER;
	r->inner_w.kind = WATCH_INNER;
	r->outer = fd;
	r->inner = -1;
	sockaddr_text(sa, r->peer, sizeof(r->peer));
	socket_nodelay(fd);
	mbedtls_ssl_init(&r->ssl);
	mbedtls_ssl_set_bio(&r->ssl, &r->outer, bio_send, bio_recv, NULL);
	return mbedtls_ssl_setup(&r->ssl, &f->conf.ssl);
}

static void
front_accept_one(
    struct tls_front *f, int fd, const struct sockaddr_storage *sa)
{
	struct relay *r = calloc(1, sizeof(*r));
	char peer[INET6_ADDRSTRLEN + 8];

	if (r == NULL || f->nrelays >= FRONT_MAX_RELAYS
	    || relay_init(f, r, fd, sa) != 0) {
		sockaddr_text(sa, peer, sizeof(peer));
		if (front_may_warn(f))
			log_warn("connection from %s closed: %zu connections "
			         "are open, or no memory for one more",
			    peer, f->nrelays);
		if (r != NULL)
			mbedtls_ssl_free(&r->ssl);
		free(r);
		close(fd);
		return;
	}
	if ((r->next = f->relays) != NULL)
		r->next->prev = r;
	f->relays = r;
	f->nrelays++;
	timed_add(f, r);
	relay_step(f, r);
}

/* Takes what the backlog holds, up to one batch (the others' events are
 * not kept waiting behind a flood of connections). */
static void
front_accept(struct tls_front *f, struct listener *l)
{
	for (int i = 0; i < FRONT_EVENTS; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK
			    && errno != EINTR && errno != ECONNABORTED
			    && front_may_warn(f))
				log_warn("TLS listener: accept: %s",
				    strerror(errno));
			return;
		}
		front_accept_one(f, fd, &sa);
	}
}

/* ---- the thread -------------------------------------------------------- */

static struct relay *
relay_of(struct watch *w)
{
	size_t off = w->kind == WATCH_OUTER ? offsetof(struct relay, outer_w)
	                                    : offsetof(struct relay, inner_w);

	return (struct relay *)(void *)((char *)w - off);
}

static void
front_expire(struct tls_front *f)
{
	int64_t now = util_now_ms();
	struct relay *r;

	while ((r = f->timed_head) != NULL && r->deadline_ms <= now) {
		if (r->phase != RELAY_OPEN)
			relay_refuse(f, r,
			    "no TLS handshake and connection within 10 s");
		relay_close(f, r);
	}
}

static int
front_timeout(const struct tls_front *f)
{
	int64_t left;

	if (f->timed_head == NULL)
		return -1;
	left = f->timed_head->deadline_ms - util_now_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* One batch of events; false once told to stop. */
static bool
front_dispatch(struct tls_front *f, struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		struct watch *w = ev[i].data.ptr;
		struct relay *r;

		switch (w->kind) {
		case WATCH_WAKE:
			return false;
		case WATCH_LISTENER:
			front_accept(f, (struct listener *)(void *)w);
			break;
		case WATCH_OUTER:
		case WATCH_INNER:
			r = relay_of(w);
			if (r->closed)
				break;
			if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
				if (w->kind == WATCH_OUTER)
					r->outer_hup = true;
				else
					r->inner_hup = true;
			}
			relay_step(f, r);
			break;
		}
	}
	return true;
}

static void *
front_main(void *arg)
{
	struct tls_front *f = arg;
	struct epoll_event ev[FRONT_EVENTS];
	bool running = true;

	while (running) {
		int n
		    = epoll_wait(f->epfd, ev, FRONT_EVENTS, front_timeout(f));

		if (n < 0 && errno != EINTR) {
			log_err("TLS front: epoll_wait: %s; no more TLS "
			        "connections are served",
			    strerror(errno));
			break;
		}
		running = front_dispatch(f, ev, n > 0 ? n : 0);
		front_expire(f);
		front_bury(f);
	}
	while (f->relays != NULL)
		relay_close(f, f->relays);
	front_bury(f);
	return NULL;
}

/* ---- the API ----------------------------------------------------------- */

bool
tls_front_caller(const struct tls_front *f, uint16_t port, char *identity)
{
	struct tls_front *mf = (struct tls_front *)f; /* the lock only */
	const char *found;

	pthread_mutex_lock(&mf->lock);
	found = port != 0 ? pipe_map_get(&f->callers, port) : NULL;
	if (found != NULL)
		snprintf(identity, HPCXL_IDENTITY_MAX + 1, "%s", found);
	pthread_mutex_unlock(&mf->lock);
	return found != NULL;
}

static int
front_open_fds(struct tls_front *f)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &f->wake_w };

	f->wake_w.kind = WATCH_WAKE;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->epfd < 0 || f->wakefd < 0
	    || epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->wakefd, &ev) != 0)
		return HPCXL_ESYSTEM;
	return 0;
}

int
tls_front_new(const struct tls_pem *pem, struct tls_front **out, char *err,
    size_t errlen)
{
	struct tls_front *f = calloc(1, sizeof(*f));
	int rv;

	if (f == NULL)
		return HPCXL_ENOMEM;
	f->epfd = f->wakefd = -1;
	f->warn_tokens = WARN_BURST;
	f->warn_refill_ms = util_now_ms();
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		return HPCXL_ESYSTEM;
	}
	rv = tls_conf_init(&f->conf, pem, err, errlen);
	if (rv == 0 && pipe_map_init(&f->callers, FRONT_MAX_RELAYS) != 0)
		rv = HPCXL_ENOMEM;
	if (rv == 0 && front_open_fds(f) != 0) {
		snprintf(err, errlen, "TLS front: %s", strerror(errno));
		rv = HPCXL_ESYSTEM;
	}
	if (rv != 0) {
		tls_front_free(f);
		return rv;
	}
	*out = f;
	return 0;
}

/* ---- listening --------------------------------------------------------- */

/* tls+tcp://HOST:PORT (tls+tcp4, tls+tcp6; [v6]:PORT; an empty host or
 * "*": every address) into its parts. */
static int
url_split(const char *url, int *family, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *rest, *colon, *end;
	size_t n;

	if (strncmp(url, "tls+tcp://", 10) == 0)
		*family = AF_UNSPEC, rest = url + 10;
	else if (strncmp(url, "tls+tcp4://", 11) == 0)
		*family = AF_INET, rest = url + 11;
	else if (strncmp(url, "tls+tcp6://", 11) == 0)
		*family = AF_INET6, rest = url + 11;
	else
		return HPCXL_ECONFIG;
	if (*rest == '[') {
		if ((end = strchr(rest, ']')) == NULL || end[1] != ':')
			return HPCXL_ECONFIG;
		rest++;
		colon = end + 1;
	} else if ((colon = end = strrchr(rest, ':')) == NULL)
		return HPCXL_ECONFIG;
	n = (size_t)(end - rest);
	if (n >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0'
	    || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return HPCXL_ECONFIG;
	memcpy(host, rest, n);
	host[n] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

static int
listen_socket(const struct addrinfo *ai)
{
	int one = 1;
	int fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -1;
	/* As nng's tcp listener: a restarted agent rebinds at once. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
	    || listen(fd, SOMAXCONN) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The URL as bound: url with its port replaced by the real one. */
static void
bound_url(const char *url, int fd, char *bound, size_t len)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	unsigned port = 0;
	const char *colon = strrchr(url, ':');

	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
		port = ntohs(sa.ss_family == AF_INET6
		        ? ((struct sockaddr_in6 *)(void *)&sa)->sin6_port
		        : ((struct sockaddr_in *)(void *)&sa)->sin_port);
	snprintf(bound, len, "%.*s:%u", (int)(colon - url), url, port);
}

int
tls_front_listen(
    struct tls_front *f, const char *url, char *bound, size_t boundlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[256], port[8];
	int rv, fd;

	if (f->nlisteners == CONFIG_MAX_LISTEN
	    || url_split(url, &hints.ai_family, host, sizeof(host), port,
	           sizeof(port))
	        != 0) {
		log_err("cannot listen on %s: not tls+tcp://HOST:PORT", url);
		return HPCXL_ECONFIG;
	}
	if ((rv = getaddrinfo(
	         host[0] != '\0' ? host : NULL, port, &hints, &ai))
	    != 0) {
		log_err("cannot listen on %s: %s", url, gai_strerror(rv));
		return HPCXL_ECONFIG;
	}
	/* The first address, as nng does. */
	fd = listen_socket(ai);
	freeaddrinfo(ai);
	if (fd < 0) {
		log_err("cannot listen on %s: %s", url, strerror(errno));
		return HPCXL_ETRANSPORT;
	}
	f->listeners[f->nlisteners++]
	    = (struct listener) { { WATCH_LISTENER }, fd };
	bound_url(url, fd, bound, boundlen);
	return 0;
}

int
tls_front_start(struct tls_front *f, uint16_t inner_port)
{
	f->inner_addr = (struct sockaddr_in) { .sin_family = AF_INET,
		.sin_port = htons(inner_port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (size_t i = 0; i < f->nlisteners; i++) {
		struct epoll_event ev
		    = { .events = EPOLLIN, .data.ptr = &f->listeners[i].w };

		if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->listeners[i].fd, &ev)
		    != 0) {
			log_err("TLS front: epoll: %s", strerror(errno));
			return HPCXL_ESYSTEM;
		}
	}
	if (pthread_create(&f->thread, NULL, front_main, f) != 0) {
		log_err("TLS front: cannot start its thread");
		return HPCXL_ESYSTEM;
	}
	f->started = true;
	return 0;
}

void
tls_front_free(struct tls_front *f)
{
	uint64_t one = 1;

	if (f == NULL)
		return;
	if (f->started) {
		if (write(f->wakefd, &one, sizeof(one)) != sizeof(one))
			log_err("TLS front: cannot wake its thread: %s",
			    strerror(errno));
		pthread_join(f->thread, NULL);
	}
	for (size_t i = 0; i < f->nlisteners; i++)
		close(f->listeners[i].fd);
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->wakefd >= 0)
		close(f->wakefd);
	pipe_map_fini(&f->callers);
	tls_conf_fini(&f->conf);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
