/* The agent's front: see front.h for what and why; front_impl.h for the
 * relay and the kinds of client connection. */
#include "caller.h"
#include "front_impl.h"
#include "pipe_map.h"
#include "tls_conf.h"

#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Longest a client may take to be identified and reach nng, and a relay
 * whose peer has gone to hand over its last bytes (nng's own TLS transport
 * gives a new connection 10 s to negotiate). */
#define RELAY_SETUP_MS 10000
/* Connections relayed at once; one more is closed at once (with a
 * warning), as the caller table would close one more pipe. */
#define FRONT_MAX_RELAYS CALLER_MAX_PIPES
/* epoll events taken per wait. */
#define FRONT_EVENTS 64
/* Refusals logged in a burst, and one more per second after it: a port
 * scan must not flood the log. */
#define WARN_BURST 20
#define WARN_REFILL_MS 1000

struct listener {
	struct watch w;
	int fd;
	const struct front_ops *ops;
	char *path; /* an ipc socket file to remove at the end */
};

struct front {
	struct tls_conf conf;
	bool has_tls;
	struct front_setup setup;
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
	struct log_limit refusals; /* warnings of refused connections */
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
front_may_warn(struct front *f, unsigned long *held)
{
	return log_limit_allow(&f->refusals, util_now_ms(), held);
}

static void
relay_refuse(struct front *f, struct relay *r, const char *why)
{
	char held_text[64] = "";
	unsigned long held;

	if (front_may_warn(f, &held)) {
		if (held > 0)
			snprintf(held_text, sizeof(held_text),
			    " (%lu more not logged)", held);
		log_warn("%s connection from %s closed: %s%s", r->ops->name,
		    r->peer, why, held_text);
	}
	r->dead = true;
}

/* ---- epoll ------------------------------------------------------------- */

/* Registers, changes or (mask 0) removes fd's interest: an fd with nothing
 * to wait for is taken out, since epoll reports a hang-up whatever the
 * mask, and a relay that no longer reads a side would be woken for ever. */
static int
front_watch(struct front *f, int fd, struct watch *w, uint32_t mask,
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
timed_remove(struct front *f, struct relay *r)
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
timed_add(struct front *f, struct relay *r)
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
relay_forget_port(struct front *f, struct relay *r)
{
	if (r->port == 0)
		return;
	pthread_mutex_lock(&f->lock);
	pipe_map_remove(&f->callers, r->port);
	pthread_mutex_unlock(&f->lock);
	r->port = 0;
}

static void
relay_unlink(struct front *f, struct relay *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		f->relays = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	f->nrelays--;
}

/* Closes r's connections now; its memory waits for the end of the epoll
 * batch, which may still hold events about it. */
static void
relay_close(struct front *f, struct relay *r)
{
	if (r->phase == RELAY_OPEN && !r->outer_broken)
		r->ops->finish(r);
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
	relay_unlink(f, r);
	r->closed = true;
	r->next = f->graveyard;
	f->graveyard = r;
}

static void
front_bury(struct front *f)
{
	struct relay *r;

	while ((r = f->graveyard) != NULL) {
		f->graveyard = r->next;
		r->ops->fini(r);
		free(r);
	}
}

/* ---- the nng side ------------------------------------------------------ */

void
front_nodelay(int fd)
{
	int one = 1;

	/* The protocol is request and answer: Nagle would hold an answer's
	 * last segment for the client's delayed ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The port our end of the loopback connection will use, bound before the
 * connect so that the caller table knows it before nng adds the pipe. */
static int
relay_bind_inner(struct front *f, struct relay *r)
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
	front_nodelay(r->inner);
	pthread_mutex_lock(&f->lock);
	rv = pipe_map_put(&f->callers, ntohs(me.sin_port), r->identity);
	pthread_mutex_unlock(&f->lock);
	if (rv == 0)
		r->port = ntohs(me.sin_port);
	return rv;
}

static void
relay_dial_nng(struct front *f, struct relay *r)
{
	int rv = relay_bind_inner(f, r);

	if (rv == 0
	    && connect(r->inner, (const struct sockaddr *)&f->inner_addr,
	           sizeof(f->inner_addr))
	        != 0
	    && errno != EINPROGRESS)
		rv = HPCXL_ESYSTEM;
	if (rv != 0) {
		log_err("%s connection from %s (%s) closed: cannot reach the "
		        "agent's loopback listener: %s",
		    r->ops->name, r->peer, r->identity,
		    rv == HPCXL_ESYSTEM ? strerror(errno)
		                        : hpcxl_strerror(rv));
		r->dead = true;
		return;
	}
	log_debug("%s connection from %s is %s (relayed from 127.0.0.1:%u)",
	    r->ops->name, r->peer, r->identity, r->port);
	r->phase = RELAY_CONNECTING;
}

/* ---- the phases -------------------------------------------------------- */

static uint32_t
wait_events(int rv)
{
	return rv == FRONT_WAIT_OUT ? EPOLLOUT : EPOLLIN;
}

static bool
relay_start(struct front *f, struct relay *r)
{
	char why[256];
	int rv = r->ops->start(r, why, sizeof(why));

	if (rv == FRONT_WAIT_IN || rv == FRONT_WAIT_OUT) {
		r->start_wait = wait_events(rv);
		return false;
	}
	if (rv != 0)
		relay_refuse(f, r, why);
	else
		r->phase = RELAY_GREETING;
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
		log_err("%s connection from %s (%s) closed: the agent's "
		        "loopback listener refused it: %s",
		    r->ops->name, r->peer, r->identity,
		    strerror(err != 0 ? err : errno));
		r->dead = true;
		return false;
	}
	len = sizeof(peer);
	if (getpeername(r->inner, (struct sockaddr *)&peer, &len) != 0)
		return false; /* still connecting */
	r->phase = RELAY_OPEN;
	return true;
}

/* The n bytes an ipc client just sent, at up's end, in tcp's framing
 * (in place: never longer). Only type bytes read: nothing to add, but
 * more may follow at once. */
static bool
relay_unframe_ipc(struct relay *r, size_t n)
{
	unsigned char *at = r->up.data + r->up.end;
	long m = spframe_move(&r->up_frame, at, n, at);

	if (m < 0) {
		log_warn("ipc connection from %s closed: not SP over ipc (a "
		         "message type other than 1)",
		    r->peer);
		r->dead = true;
		return false;
	}
	r->up.end += (size_t)m;
	return true;
}

/* Client -> buffer, while there is room. */
static bool
relay_from_outer(struct relay *r)
{
	size_t room;
	int n;

	if (r->outer_read_done || (room = buf_room(&r->up, true)) == 0)
		return false;
	n = r->ops->read(r, r->up.data + r->up.end, room);
	if (n > 0 && r->ops->ipc_framing)
		return relay_unframe_ipc(r, (size_t)n);
	if (n > 0) {
		r->up.end += (size_t)n;
		return true;
	}
	if (n == FRONT_WAIT_IN || n == FRONT_WAIT_OUT)
		return false;
	r->outer_read_done = true;
	r->outer_broken = n != 0;
	return true;
}

/*
 * GREETING: nng is dialled once the client's SP header is here. nng
 * 1.5.2's tcp listener takes a connection that ends in its handshake
 * (NNG_ECONNSHUT) for a system failure and accepts nothing for 100 ms:
 * one TLS or ipc client hanging up right after connecting (a probe, a
 * killed CLI) would keep every other caller of the front waiting. With
 * the header sent first, nng's handshake completes (or meets a reset,
 * which it takes in its stride) however soon the client goes.
 */
static bool
relay_greet(struct front *f, struct relay *r)
{
	bool moved = relay_from_outer(r);

	if (buf_len(&r->up) >= SPFRAME_HEADER_LEN) {
		/* A header nng would refuse (NNG_EPROTO) pauses it the same
		 * way: refused here, as nng checks it (the protocol is
		 * checked later, without a pause). */
		if (!spframe_header_valid(r->up.data + r->up.start)) {
			relay_refuse(f, r, "not SP (a bad handshake header)");
			return false;
		}
		relay_dial_nng(f, r);
		return !r->dead;
	}
	if (r->outer_read_done && !r->dead) {
		log_debug("%s connection from %s (%s) closed before its SP "
		          "handshake",
		    r->ops->name, r->peer, r->identity);
		r->dead = true;
	}
	return moved && !r->dead;
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

/* nng's bytes as they go to the client: as they are, or in ipc's framing
 * (n read so that they fit room once framed). */
static ssize_t
relay_recv_inner(struct relay *r, unsigned char *to, size_t room)
{
	unsigned char raw[RELAY_BUF];
	size_t want = room > 1 ? (room - 1) * 8 / 9 : 0;
	ssize_t n;

	if (!r->ops->ipc_framing)
		return recv(r->inner, to, room, 0);
	if (want == 0) {
		errno = EAGAIN; /* room comes back once the client reads */
		return -1;
	}
	if ((n = recv(r->inner, raw, want, 0)) <= 0)
		return n;
	return spframe_move(&r->down_frame, raw, (size_t)n, to);
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
	n = relay_recv_inner(r, r->down.data + r->down.end, room);
	if (n > 0) {
		r->down.end += (size_t)n;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	r->inner_done = true; /* nng closed its side, or it failed */
	return true;
}

/* Buffer -> client. A write that waited is repeated with the same length
 * (mbedTLS has made the record and only flushes it then). */
static bool
relay_to_outer(struct relay *r)
{
	size_t len;
	int n;

	if (r->outer_broken || buf_len(&r->down) == 0)
		return false;
	len = r->down_pending != 0 ? r->down_pending : buf_len(&r->down);
	n = r->ops->write(r, r->down.data + r->down.start, len);
	if (n > 0) {
		r->down.start += (size_t)n;
		r->down_pending = 0;
		r->outer_write_wait = 0;
		return true;
	}
	if (n == FRONT_WAIT_IN || n == FRONT_WAIT_OUT) {
		r->down_pending = len;
		r->outer_write_wait = wait_events(n);
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
relay_watch(struct front *f, struct relay *r)
{
	uint32_t outer = 0, inner = 0;

	switch (r->phase) {
	case RELAY_STARTING:
		outer = r->start_wait;
		break;
	case RELAY_GREETING:
		outer = EPOLLIN;
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
 * the steps stop moving: from then on it is gone. A client gone while
 * nng is being dialled still has its header (and what followed) handed
 * over, or nng would meet a handshake cut short (relay_greet()). */
static void
relay_take_hangups(struct relay *r)
{
	if (r->outer_hup) {
		if (r->phase == RELAY_STARTING || r->phase == RELAY_GREETING)
			r->dead = true; /* gone before it was ever relayed */
		r->outer_broken = r->outer_read_done = true;
	}
	if (r->inner_hup)
		r->inner_done = true;
	r->outer_hup = r->inner_hup = false;
}

static bool
relay_step_once(struct front *f, struct relay *r)
{
	switch (r->phase) {
	case RELAY_STARTING:
		return relay_start(f, r);
	case RELAY_GREETING:
		return relay_greet(f, r);
	case RELAY_CONNECTING:
		return relay_connected(r);
	case RELAY_OPEN:
		return relay_move(r);
	}
	return false;
}

/* Moves r as far as it goes without waiting, then closes it or waits. */
static void
relay_step(struct front *f, struct relay *r)
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

static void
front_accept_one(struct front *f, struct listener *l, int fd)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r != NULL) {
		r->ops = l->ops;
		r->outer_w.kind = WATCH_OUTER;
		r->inner_w.kind = WATCH_INNER;
		r->outer = fd;
		r->inner = -1;
	}
	if (r == NULL || f->nrelays >= FRONT_MAX_RELAYS
	    || l->ops->init(f, r) != 0) {
		if (front_may_warn(f, NULL))
			log_warn("%s connection closed: %zu connections are "
			         "open, or no memory for one more",
			    l->ops->name, f->nrelays);
		if (r != NULL)
			r->ops->fini(r);
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
front_accept(struct front *f, struct listener *l)
{
	for (int i = 0; i < FRONT_EVENTS; i++) {
		int fd
		    = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK
			    && errno != EINTR && errno != ECONNABORTED
			    && front_may_warn(f, NULL))
				log_warn("%s listener: accept: %s",
				    l->ops->name, strerror(errno));
			return;
		}
		front_accept_one(f, l, fd);
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
front_expire(struct front *f)
{
	int64_t now = util_now_ms();
	struct relay *r;

	while ((r = f->timed_head) != NULL && r->deadline_ms <= now) {
		if (r->phase != RELAY_OPEN)
			relay_refuse(
			    f, r, "not identified and relayed within 10 s");
		relay_close(f, r);
	}
}

static int
front_timeout(const struct front *f)
{
	int64_t left;

	if (f->timed_head == NULL)
		return -1;
	left = f->timed_head->deadline_ms - util_now_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* One batch of events; false once told to stop. */
static bool
front_dispatch(struct front *f, struct epoll_event *ev, int n)
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
	struct front *f = arg;
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
front_caller(struct front *f, uint16_t port, char *identity)
{
	const char *found;

	pthread_mutex_lock(&f->lock);
	found = port != 0 ? pipe_map_get(&f->callers, port) : NULL;
	if (found != NULL)
		snprintf(identity, HPCXL_IDENTITY_MAX + 1, "%s", found);
	pthread_mutex_unlock(&f->lock);
	return found != NULL;
}

const mbedtls_ssl_config *
front_tls_config(const struct front *f)
{
	return f->has_tls ? &f->conf.ssl : NULL;
}

static int
front_open_fds(struct front *f)
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

static int
front_fill(
    struct front *f, const struct front_setup *s, char *err, size_t errlen)
{
	int rv;

	if (s->tls != NULL) {
		if ((rv = tls_conf_init(&f->conf, s->tls, err, errlen)) != 0)
			return rv;
		f->has_tls = true;
	}
	if (pipe_map_init(&f->callers, FRONT_MAX_RELAYS) != 0)
		return HPCXL_ENOMEM;
	if (front_open_fds(f) != 0) {
		snprintf(
		    err, errlen, "the agent's front: %s", strerror(errno));
		return HPCXL_ESYSTEM;
	}
	return 0;
}

int
front_new(
    const struct front_setup *s, struct front **out, char *err, size_t errlen)
{
	struct front *f = calloc(1, sizeof(*f));
	int rv;

	if (f == NULL)
		return HPCXL_ENOMEM;
	f->setup = *s;
	f->setup.tls = NULL; /* read once, here */
	f->epfd = f->wakefd = -1;
	f->refusals
	    = (struct log_limit)LOG_LIMIT_INIT(WARN_BURST, WARN_REFILL_MS);
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		return HPCXL_ESYSTEM;
	}
	if ((rv = front_fill(f, s, err, errlen)) != 0) {
		front_free(f);
		return rv;
	}
	*out = f;
	return 0;
}

bool
front_serves(const char *url)
{
	return tls_url(url) || strncmp(url, "ipc://", 6) == 0;
}

int
front_add_listener(
    struct front *f, int fd, const struct front_ops *ops, const char *path)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct listener *l;

	if (f->nlisteners == CONFIG_MAX_LISTEN)
		return HPCXL_ETOOBIG;
	l = &f->listeners[f->nlisteners];
	*l = (struct listener) { { WATCH_LISTENER }, fd, ops, NULL };
	if (path != NULL && (l->path = strdup(path)) == NULL)
		return HPCXL_ENOMEM;
	/* Watched at once, the thread running or not: the array never
	 * moves, and the thread finds a listener only through epoll. */
	ev.data.ptr = &l->w;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		log_err("the agent's front: epoll: %s", strerror(errno));
		free(l->path);
		l->path = NULL;
		return HPCXL_ESYSTEM;
	}
	f->nlisteners++;
	return 0;
}

int
front_listen(struct front *f, const char *url, char *bound, size_t len)
{
	if (tls_url(url)) {
		if (!f->has_tls) {
			log_err("cannot listen on %s: no TLS files", url);
			return HPCXL_ECONFIG;
		}
		return front_tls_listen(f, url, bound, len);
	}
	return front_ipc_listen(
	    f, url, f->setup.ipc_chown, f->setup.ipc_gid, bound, len);
}

int
front_start(struct front *f, uint16_t inner_port)
{
	f->inner_addr = (struct sockaddr_in) { .sin_family = AF_INET,
		.sin_port = htons(inner_port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (pthread_create(&f->thread, NULL, front_main, f) != 0) {
		log_err("the agent's front: cannot start its thread");
		return HPCXL_ESYSTEM;
	}
	f->started = true;
	return 0;
}

void
front_free(struct front *f)
{
	uint64_t one = 1;

	if (f == NULL)
		return;
	if (f->started) {
		if (write(f->wakefd, &one, sizeof(one)) != sizeof(one))
			log_err(
			    "the agent's front: cannot wake its thread: %s",
			    strerror(errno));
		pthread_join(f->thread, NULL);
	}
	for (size_t i = 0; i < f->nlisteners; i++) {
		close(f->listeners[i].fd);
		if (f->listeners[i].path != NULL)
			unlink(f->listeners[i].path);
		free(f->listeners[i].path);
	}
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->wakefd >= 0)
		close(f->wakefd);
	pipe_map_fini(&f->callers);
	if (f->has_tls)
		tls_conf_fini(&f->conf);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
