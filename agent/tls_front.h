/*
 * The agent's TLS front: it accepts the tls+tcp:// connections itself,
 * runs mutual TLS over mbedTLS, and relays each verified connection's
 * plain bytes, unchanged, to a loopback tcp:// listener of the agent's nng
 * socket. nng sees an ordinary tcp pipe; the caller module (caller.h) asks
 * the front whose it is by the pipe's source port.
 *
 * Why not nng's own TLS transport: in nng 1.5.2 it can wedge nng's only
 * reaper thread for good. Its pipe sends a message in pieces (the length,
 * then the header, then the body: the TLS layer completes one piece per
 * call) and re-posts the rest from its send callback without checking
 * whether the pipe was closed meanwhile. When the peer hangs up while the
 * agent answers it, the respondent protocol closes the pipe between two
 * pieces, the re-posted send is refused by an aio that is already closed
 * and never completes, and the protocol's pipe_stop (xresp0_pipe_stop ->
 * nni_aio_stop of its send) waits for it forever, on the reaper: every
 * later connection's teardown queues behind it. Seen with a debug build of
 * nng 1.5.2 under test_stress_tls: descriptors 15 -> 586 in 600 cycles.
 * The tcp transport writes a message with one writev, so it re-posts only
 * after a partial write (a full socket buffer); TLS re-posts every time.
 *
 * One thread, one epoll set: listening sockets, both ends of every relay,
 * an eventfd to stop it. A handshake costs a millisecond or so of CPU and
 * runs there, never on the agent's loop. A connection must finish its
 * handshake and reach nng within RELAY_SETUP_MS, and a relay whose peer
 * has gone gets as long to hand nng its last bytes; then it is closed.
 */
#ifndef HPCXL_AGENT_TLS_FRONT_H
#define HPCXL_AGENT_TLS_FRONT_H

#include "hpcxl/common/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_front;

/*
 * A front for the certificate, key and CA of pem (tls_pem_load() checked
 * them): clients must show a certificate of that CA. Returns 0 and *out, or
 * HPCXL_ECONFIG / HPCXL_ENOMEM with why in err.
 */
int tls_front_new(const struct tls_pem *pem, struct tls_front **out, char *err,
    size_t errlen);

/*
 * Binds and listens on url (tls+tcp://HOST:PORT, tls+tcp4://, tls+tcp6://;
 * port 0: any), before the front starts: connections wait in the kernel's
 * backlog until then. Writes the URL as bound (the real port) to bound.
 * Returns 0, or HPCXL_ECONFIG (a malformed URL, a name that does not
 * resolve) / HPCXL_ETRANSPORT (bind, listen) with the reason logged.
 */
int tls_front_listen(
    struct tls_front *f, const char *url, char *bound, size_t boundlen);

/*
 * Starts the front's thread; verified connections are relayed to
 * 127.0.0.1:inner_port (the agent's loopback tcp:// listener). Returns 0 or
 * HPCXL_ESYSTEM.
 */
int tls_front_start(struct tls_front *f, uint16_t inner_port);

/*
 * The identity (the client certificate's CN) of the relay whose loopback
 * connection comes from source port port, into identity (at least
 * HPCXL_IDENTITY_MAX + 1 bytes). False when no relay of the front uses that
 * port (any other local program). Safe on any thread.
 */
bool tls_front_caller(
    const struct tls_front *f, uint16_t port, char *identity);

/* Stops the thread and closes every connection and listener. NULL is
 * fine. */
void tls_front_free(struct tls_front *f);

#endif
