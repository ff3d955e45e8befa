/*
 * The fleet: a client's standing connections to its roster, and the routing
 * of replies to the calls that wait for them.
 *
 * Each node has its own raw surveyor socket with one dialer, dialled once
 * when the fleet opens and redialled by nng whenever the connection drops;
 * a receive is always posted on it. A call registers a mailbox under a
 * survey id of its own; a reply is routed by the survey id in its SP header
 * and by the node whose socket it came in on, so calls may run concurrently
 * and no reply of one call can reach another. The first reply per node
 * waits in the mailbox; later ones (a repeat answered from the agent's
 * cache) are dropped until the call rejects the one it holds.
 *
 * Why one socket per node: nng 1.5.2's raw surveyor sends every message to
 * every pipe of its socket, so on one shared socket the request for a node
 * that attaches late would be sent again to every node already surveyed,
 * which each answers again; per node, a request goes exactly where it is
 * needed, at the moment its pipe attaches. Cost measured with nng 1.5.2:
 * 7.7 KiB per node (socket + dialer) against 4.7 KiB for a dialer on a
 * shared socket, i.e. 31 MiB for 4,096 nodes.
 */
#ifndef HPCXL_CONTROLLER_FLEET_H
#define HPCXL_CONTROLLER_FLEET_H

#include <nng/nng.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fleet;
struct fleet_call;

struct tls_pem;

/*
 * Opens a socket per node and starts dialling urls[0..n) without waiting;
 * tls+tcp:// nodes with tls (NULL: nng's defaults), the agent's certificate
 * checked against the URL's host. The strings are not copied and must
 * outlive the fleet; tls is used during the call only. Returns 0 and sets
 * *out, HPCXL_EINVAL (nng cannot dial a URL: *bad_row says which),
 * HPCXL_ETRANSPORT, HPCXL_ECONFIG or HPCXL_ENOMEM.
 */
int fleet_open(const char *const *urls, size_t n, const struct tls_pem *tls,
    struct fleet **out, size_t *bad_row);

/* 0 if a dialer can be made for url (nothing is dialled), else
 * HPCXL_EINVAL; HPCXL_ETRANSPORT if nng cannot make a socket. */
int fleet_url_check(const char *url);

/* Closes every connection and frees f (NULL is fine). No call may be
 * registered. */
void fleet_close(struct fleet *f);

size_t fleet_size(const struct fleet *f);

/*
 * Copies the pipe each node is attached on now (0 = not attached) into
 * pipes[0..n). A node's pipe id changes when it reconnects; ids are never
 * reused within a process.
 */
void fleet_pipes(struct fleet *f, uint32_t *pipes);

/*
 * Registers a call: a fresh survey id and an empty mailbox with an fd that
 * becomes readable when a reply arrives, a node attaches, or the fleet is
 * interrupted. Returns 0 and sets *out, or HPCXL_ENOMEM/HPCXL_ETRANSPORT.
 */
int fleet_call_begin(struct fleet *f, struct fleet_call **out);

/* Unregisters call and frees it with every reply it still holds. */
void fleet_call_end(struct fleet_call *call);

/* The fd to poll for POLLIN; fleet_call_take() clears it. */
int fleet_call_fd(const struct fleet_call *call);

/*
 * Sends body (the encoded request) to node row under the call's survey id.
 * Returns 0 once nng took the message, NNG_EAGAIN when the socket cannot
 * take it now, or another nng error. A message nng took can still be lost:
 * with its pipe, when the pipe is going and no longer in the protocol's
 * list, or when the pipe's 16-deep send queue is full (dropped silently);
 * the survey's resends recover it.
 */
int fleet_call_send(
    struct fleet_call *call, size_t row, const void *body, size_t len);

/*
 * Takes up to max replies that arrived since the last take: rows[i] is the
 * node, msgs[i] the message (owned by the caller). Returns their number.
 */
size_t fleet_call_take(
    struct fleet_call *call, size_t *rows, nng_msg **msgs, size_t max);

/* Lets node row's mailbox take a reply again (the one taken was not
 * valid). */
void fleet_call_reopen(struct fleet_call *call, size_t row);

/*
 * Async-signal-safe: marks f interrupted for good and makes
 * fleet_interrupt_fd() readable, so every call, running or later, stops.
 */
void fleet_interrupt(struct fleet *f);
bool fleet_interrupted(const struct fleet *f);
/* Readable once f is interrupted; never read by anyone. */
int fleet_interrupt_fd(const struct fleet *f);

/* Why a node is not attached, from its dialer's statistics. */
struct fleet_dial {
	const char *reason; /* e.g. "connection refused"; static storage */
	bool lost; /* it was connected once */
	bool undialable; /* no dialer could be made: it never will be */
};

/* Fills dials[row] for every row with want[row] set, from one snapshot of
 * nng's statistics. */
void fleet_dials(struct fleet *f, const bool *want, struct fleet_dial *dials);

/* True when node row has no dialer: it will never attach. */
bool fleet_undialable(const struct fleet *f, size_t row);

#endif
