/*
 * Who sent a request: the caller's identity, by the connection (nng pipe)
 * the request came on.
 *
 *   tls+tcp://  the subject CN of the client certificate the agent's CA
 *               vouched for; a certificate whose CN is missing, not an
 *               identity (util_valid_identity()) or a reserved name below
 *               is refused;
 *   ipc://      the account name of the peer's uid (SO_PEERCRED), or
 *               "uid:N" when the uid has no account (or its name is not an
 *               identity, or is reserved);
 *               both worked out by the agent's front (front.h), which
 *               relays the connection to a loopback listener of nng's:
 *               its pipe is known by its source port;
 *   tcp://      "anonymous": plain tcp says nothing about its peer (it is
 *               loopback only unless the agent runs with --insecure).
 *
 * "anonymous" and names starting with "uid:" are reserved: no certificate
 * can claim them. Certificate CNs and account names share one namespace,
 * so alice is alice over TLS and over ipc.
 *
 * An identity is noted once per connection, when nng adds the pipe
 * (NNG_PIPE_EV_ADD_PRE, on an nng thread, before the pipe can deliver a
 * message; the front has done the work, and an NSS lookup that waits on
 * LDAP holds its thread, never the agent's loop),
 * and kept in a bounded table until CALLER_LINGER_MS after nng removes the
 * pipe: a client that hangs up right after its request has that request
 * queued for the loop still, and it is served as that client's. The loop
 * reads the identity for every request it takes. The table has its own lock:
 * nng's threads add and remove, the loop reads.
 */
#ifndef HPCXL_AGENT_CALLER_H
#define HPCXL_AGENT_CALLER_H

#include "listen.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

/* The identity of plain tcp:// callers. */
#define CALLER_ANONYMOUS "anonymous"
/* The identity of an ipc peer without an account: "uid:" and the uid. */
#define CALLER_UID_PREFIX "uid:"
/* Connections known at once; one more is closed (with a warning). Pipes
 * removed less than CALLER_LINGER_MS ago count too, but make room. */
#define CALLER_MAX_PIPES 16384
/* How long a removed pipe's identity is kept for its queued requests (the
 * loop takes them within milliseconds; nng never reuses a pipe id soon). */
#define CALLER_LINGER_MS 10000

struct caller_table;
struct front;

/* True for the reserved identities above. */
bool caller_identity_reserved(const char *name);

/* Returns 0 and *out, or HPCXL_ENOMEM / HPCXL_ESYSTEM. */
int caller_table_new(struct caller_table **out);

/* Call only once nng calls the table's callbacks no more (after the
 * socket is closed). NULL is fine. */
void caller_table_free(struct caller_table *t);

/* The front whose relays come in on the LISTEN_FRONT listener. Set
 * before that listener starts. */
void caller_table_set_front(struct caller_table *t, struct front *f);

/* Notes what kind of URL listener l listens on, before it starts: a pipe
 * of a listener not noted is closed. */
int caller_table_add_listener(
    struct caller_table *t, nng_listener l, enum listen_kind kind);

/*
 * nng's pipe callback (nng_pipe_notify(), arg: the table) for
 * NNG_PIPE_EV_ADD_PRE, which identifies the pipe or closes it, and
 * NNG_PIPE_EV_REM_POST, which forgets it.
 */
void caller_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg);

/* Copies the identity of pipe into out (at least HPCXL_IDENTITY_MAX + 1
 * bytes); false when the pipe is not known (gone, or refused). */
bool caller_lookup(struct caller_table *t, nng_pipe pipe, char *out);

/* The peer of pipe for a log line: "127.0.0.1:41234", an ipc path, or
 * "pipe N" when nng no longer knows. */
void caller_peer_address(nng_pipe pipe, char *out, size_t len);

#endif
