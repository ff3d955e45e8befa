/*
 * Inside the front (front.h): a relay, and the operations that differ by
 * the kind of client connection, one file per kind (front_tls.c,
 * front_ipc.c), as nng's transports are ops vectors.
 */
#ifndef HPCXL_AGENT_FRONT_IMPL_H
#define HPCXL_AGENT_FRONT_IMPL_H

#include "front.h"
#include "spframe.h"

#include "hpcxl/common/util.h"

#include <arpa/inet.h>
#include <mbedtls/ssl.h>
#include <stdbool.h>
#include <stdint.h>

/* What a client-side operation says when it moves no bytes. */
#define FRONT_WAIT_IN (-1) /* again once the client's socket is readable */
#define FRONT_WAIT_OUT (-2) /* again once it is writable */
#define FRONT_BROKEN (-3) /* the connection is unusable */

/* Plain bytes buffered each way per relay. */
#define RELAY_BUF 8192

struct relay;

struct front_ops {
	const char *name; /* "TLS", "ipc": for log lines */
	/* The client frames messages as SP over ipc does (spframe.h): the
	 * relay translates, since nng's side is tcp. */
	bool ipc_framing;
	/* Readies a relay whose client socket r->outer was just accepted.
	 * 0, or HPCXL_E* (the connection is dropped). */
	int (*init)(struct front *f, struct relay *r);
	/* Works out the caller into r->identity: 0 when done, FRONT_WAIT_*,
	 * or FRONT_BROKEN with why (a phrase for a log line). */
	int (*start)(struct relay *r, char *why, size_t whylen);
	/* > 0: bytes moved; read only: 0 when the client sent its last byte;
	 * else FRONT_WAIT_* or FRONT_BROKEN. A write that waited must be
	 * repeated with the same length (TLS). */
	int (*read)(struct relay *r, unsigned char *buf, size_t len);
	int (*write)(struct relay *r, const unsigned char *buf, size_t len);
	/* Tells the client the relay ends (TLS: close_notify); best effort. */
	void (*finish)(struct relay *r);
	void (*fini)(struct relay *r);
};

extern const struct front_ops front_tls_ops;
extern const struct front_ops front_ipc_ops;

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

/* Bytes from [start, end) are waiting to be written. */
struct buf {
	size_t start, end;
	unsigned char data[RELAY_BUF];
};

/*
 * A relay's life:
 *   STARTING    the caller is worked out (TLS: the handshake, then the
 *               certificate's CN; ipc: the peer's account);
 *   GREETING    the client's SP handshake header is read (kept for nng);
 *               then nng is dialled from a port noted with that identity.
 *               A client that hangs up before it has sent the header
 *               never reaches nng (relay_greet() says why);
 *   CONNECTING  waiting for the loopback connection to nng;
 *   OPEN        bytes flow both ways until one side is done, then the
 *               other is given the rest (relay_finished()).
 * Every phase before OPEN is timed, and so is an OPEN relay once one side
 * is done (RELAY_SETUP_MS).
 */
enum relay_phase {
	RELAY_STARTING,
	RELAY_GREETING,
	RELAY_CONNECTING,
	RELAY_OPEN
};

struct relay {
	struct watch outer_w, inner_w;
	const struct front_ops *ops;
	int outer, inner; /* -1: none, or closed */
	mbedtls_ssl_context ssl; /* TLS relays only */
	uint32_t outer_mask, inner_mask; /* as registered with epoll */
	bool outer_watched, inner_watched;
	enum relay_phase phase;
	uint32_t start_wait; /* EPOLLIN/EPOLLOUT the start awaits */
	bool outer_hup, inner_hup; /* epoll said: hung up or in error */
	bool outer_read_done; /* the client will send nothing more */
	bool outer_broken; /* nothing can be written to the client */
	bool inner_done; /* nng closed the connection, or it failed */
	bool inner_write_shut; /* nng was told the client is done */
	bool inner_blocked; /* the last write to nng would have blocked */
	uint32_t outer_write_wait; /* EPOLLIN/EPOLLOUT a write awaits */
	size_t down_pending; /* the length a waiting write must repeat */
	bool dead; /* close now */
	bool closed; /* fds closed, waiting to be freed */
	bool timed;
	int64_t deadline_ms; /* when timed */
	uint16_t port; /* our end of the loopback connection; 0: none */
	char identity[HPCXL_IDENTITY_MAX + 1];
	char peer[INET6_ADDRSTRLEN + 32]; /* for log lines */
	struct buf up; /* client -> nng */
	struct buf down; /* nng -> client */
	struct spframe up_frame, down_frame; /* ops->ipc_framing only */
	struct relay *prev, *next; /* every relay */
	struct relay *tprev, *tnext; /* the timed ones, by deadline */
};

/* The TLS configuration relays of f use (front_tls.c); NULL when the
 * agent has no TLS files. */
const mbedtls_ssl_config *front_tls_config(const struct front *f);

/* Adds a bound, listening, non-blocking socket serving ops (accepted
 * from once the thread runs); path: a socket file to remove at the end
 * (copied), or NULL. On failure the socket stays the caller's. */
int front_add_listener(
    struct front *f, int fd, const struct front_ops *ops, const char *path);

/* TCP_NODELAY on a TCP socket: request and answer, Nagle would hold an
 * answer's last segment for the peer's delayed ACK. */
void front_nodelay(int fd);

/* The listeners of each kind (front_tls.c, front_ipc.c): as
 * front_listen(). */
int front_tls_listen(
    struct front *f, const char *url, char *bound, size_t len);
int front_ipc_listen(struct front *f, const char *url, bool chown_gid,
    gid_t gid, char *bound, size_t len);

#endif
