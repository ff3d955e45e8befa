/*
 * What the agent listens on, and how. Whoever reaches a listener can open
 * sessions, that is run the profiles' programs, and acts as the identity
 * its transport gives it (caller.h), so:
 *
 *   tls+tcp://  (tls+tcp4, tls+tcp6) mutual TLS: the agent shows tls_cert
 *               and requires of every client a certificate of tls_ca;
 *   tcp://      (tcp4, tcp6) plain text: on loopback only (127.0.0.0/8,
 *               ::1, the name localhost) unless allow_insecure (--insecure),
 *               and then with a warning;
 *   ipc://      a socket file of mode 0660 in ipc_group (else the agent's
 *               group): the file system says who may connect;
 *
 * and nothing else; tls+tcp:// and ipc:// are served by the agent's front
 * (front.h), tcp:// by nng. Every URL is checked, and the TLS files read,
 * before the first listener is made, so a refused configuration listens
 * nowhere.
 */
#ifndef HPCXL_AGENT_LISTEN_H
#define HPCXL_AGENT_LISTEN_H

#include "hpcxl/common/config.h"
#include "hpcxl/common/tls.h"

#include <nng/nng.h>
#include <sys/types.h>

enum listen_kind {
	LISTEN_TLS, /* tls+tcp:// */
	LISTEN_TCP_LOOPBACK, /* tcp:// on a loopback address */
	LISTEN_TCP_OPEN, /* tcp:// anywhere else, "all addresses" too */
	LISTEN_IPC, /* ipc:// */
	LISTEN_UNSUPPORTED, /* another scheme, or not a URL nng reads */
	LISTEN_FRONT, /* never a URL's: the loopback listener of the agent's
	                 front, which serves tls+tcp:// and ipc:// (front.h) */
};

/* True for 127.0.0.0/8, ::1 and "localhost" (no name is resolved); the
 * metrics listener (metrics.c) follows the same rule. */
bool listen_host_is_loopback(const char *host);

/* What kind of listener url asks for (pure: no name is resolved). */
enum listen_kind listen_url_kind(const char *url);

struct listen_setup;

/*
 * Checks every listen URL of c against the rules above, reads the TLS files
 * when a URL needs them and looks up ipc_group. Returns 0 and *out, or
 * HPCXL_ECONFIG (HPCXL_ENOMEM) with the reason logged, naming the URL,
 * file or group.
 */
int listen_setup_new(const struct config *c, struct listen_setup **out);

/* The TLS files, read and checked, when some URL is tls+tcp://; else
 * NULL. */
const struct tls_pem *listen_setup_tls(const struct listen_setup *ls);

/* True, with *gid, when ipc sockets go to ipc_group. */
bool listen_setup_ipc_group(const struct listen_setup *ls, gid_t *gid);

void listen_setup_free(struct listen_setup *ls);

#endif
