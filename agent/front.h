/*
 * The agent's front: it accepts the connections of tls+tcp:// and ipc://
 * listen URLs itself, works out who the caller is (the client
 * certificate's CN after mutual TLS; the peer's account by SO_PEERCRED),
 * and relays each connection's plain bytes, unchanged, to a loopback
 * tcp:// listener of the agent's nng socket. nng sees ordinary tcp pipes;
 * the caller module (caller.h) asks the front whose each one is by the
 * pipe's source port. Plain tcp:// URLs are nng's own.
 *
 * Why nng does not serve these two itself (ARCHITECTURE.md, "The front"):
 *   tls+tcp://  nng 1.5.2's TLS transport can wedge nng's only reaper
 *               thread for good: its pipe sends a message one piece at a
 *               time and re-posts the rest from its send callback without
 *               checking for a close, so a client that hangs up while the
 *               agent answers leaves a send that never completes, and
 *               xresp0_pipe_stop() waits for it, on the reaper, with every
 *               later connection's teardown behind it (the agent leaked a
 *               descriptor per connection: 15 -> 586 in 600 cycles);
 *   ipc://      nng 1.5.2's ipc listener stops accepting for good when a
 *               client hangs up during the SP handshake (the write of the
 *               agent's header fails with EPIPE, which nng reports as
 *               NNG_ECLOSED, which its listener takes for its own close:
 *               nng #1518, fixed after 1.5.2). 50 connect-and-close in a
 *               row from any member of ipc_group left the agent deaf on
 *               ipc.
 *
 * One thread, one epoll set: listening sockets, both ends of every relay,
 * an eventfd to stop it. A TLS handshake (a millisecond or so of CPU) and
 * an ipc peer's account lookup (NSS) run there, never on the agent's loop.
 * A connection must be identified and reach nng within RELAY_SETUP_MS, and
 * a relay whose peer has gone gets as long to hand over its last bytes;
 * then it is closed.
 */
#ifndef HPCXL_AGENT_FRONT_H
#define HPCXL_AGENT_FRONT_H

#include "hpcxl/common/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct front;

struct front_setup {
	const struct tls_pem *tls; /* checked files; NULL: no tls+tcp:// */
	bool ipc_chown; /* give ipc sockets to ipc_gid (ipc_group) */
	gid_t ipc_gid;
};

/*
 * A front for s. Returns 0 and *out, or HPCXL_ECONFIG / HPCXL_ENOMEM /
 * HPCXL_ESYSTEM with why in err.
 */
int front_new(
    const struct front_setup *s, struct front **out, char *err, size_t errlen);

/* True for the URLs a front serves (tls+tcp://, ipc://). */
bool front_serves(const char *url);

/*
 * Binds and listens on url before the front starts (connections wait in
 * the kernel's backlog until then):
 *   tls+tcp://HOST:PORT, tls+tcp4://, tls+tcp6:// (port 0: any);
 *   ipc:///PATH, a socket file of mode 0660 (and ipc_group), replacing a
 *   stale one, refused when a live program listens there; removed when the
 *   front is freed.
 * Writes the URL as bound (the real port) to bound. Returns 0, or
 * HPCXL_ECONFIG / HPCXL_ETRANSPORT with the reason logged.
 */
int front_listen(struct front *f, const char *url, char *bound, size_t len);

/*
 * Starts the front's thread, once, which serves every listener, those
 * added later too: identified connections are relayed to
 * 127.0.0.1:inner_port (the agent's loopback tcp:// listener). Returns 0 or
 * HPCXL_ESYSTEM.
 */
int front_start(struct front *f, uint16_t inner_port);

/*
 * The identity of the relay whose loopback connection comes from source
 * port port, into identity (at least HPCXL_IDENTITY_MAX + 1 bytes). False
 * when no relay of the front uses that port (any other local program).
 * Safe on any thread.
 */
bool front_caller(struct front *f, uint16_t port, char *identity);

/* Stops the thread, closes every connection and listener, removes ipc
 * socket files. NULL is fine. */
void front_free(struct front *f);

#endif
