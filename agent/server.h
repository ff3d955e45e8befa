/*
 * The agent's end of the wire: a raw respondent socket (see DESIGN.md: the
 * cooked respondent of nng 1.5.2 can crash when a surveyor vanishes during
 * a receive, #1959). Raw mode hands us each survey with its routing header;
 * we reply, now or much later, by sending a message with the same header.
 *
 * Everything runs on the agent's loop thread: the loop polls server_fd()
 * and calls server_next() until it returns HPCXL_ENOTFOUND.
 *
 * nng keeps at most two unsent replies per connection and drops the rest;
 * the agent warns when a connection goes past that (see server.c).
 */
#ifndef HPCXL_AGENT_SERVER_H
#define HPCXL_AGENT_SERVER_H

#include "hpcxl/common/config.h"
#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <nng/nng.h>
#include <stdbool.h>

struct server;

/* A decoded request waiting for its reply. Owned by whoever holds it. */
struct server_req {
	nng_msg *msg; /* keeps the routing header; body already consumed */
	struct proto_msg m;
	/* Who sent it: the identity of its connection (caller.h), copied
	 * when it was taken, so it outlives the connection. */
	char caller[HPCXL_IDENTITY_MAX + 1];
	/* Bookkeeping of the holder: when the reply is due (monotonic ms, 0 =
	 * no deadline) and the next request in a list of waiters. */
	int64_t reply_by_ms;
	struct server_req *next;
};

/*
 * Opens the socket and listens on every URL of c, with the rules and the
 * TLS and ipc settings of listen.h. Requests queue until the loop takes
 * them. Returns 0 and *out, or HPCXL_ECONFIG (a URL the rules refuse, a bad
 * TLS file or ipc_group), HPCXL_ETRANSPORT (an address in use, say) or
 * HPCXL_ENOMEM, with the reason logged.
 */
int server_open(const struct config *c, struct server **out);

/*
 * Writes the bound URLs (with real ports for tcp://...:0), one per line,
 * to ready_file (atomic rename). Whoever waits for that file takes the
 * agent as serving: call it only once it does. Returns 0 or HPCXL_ESYSTEM.
 */
int server_write_ready(const struct server *s, const char *ready_file);

/* A descriptor that polls readable while requests are queued. */
int server_fd(const struct server *s);

/*
 * Takes the next request. Malformed frames are answered with bad_request,
 * a request whose connection has no known caller (it should not happen:
 * every connection is identified before it can deliver, and kept for
 * CALLER_LINGER_MS after it is gone) with refused, and
 * repeats of an op recently answered to the same caller get the cached
 * reply; none of them is returned. Returns 0 with *out (caller owns it: answer
 * it with server_reply or free it with server_req_free), or HPCXL_ENOTFOUND
 * when nothing is queued.
 */
int server_next(struct server *s, struct server_req **out);

/*
 * Sends r (node is filled in when NULL) as the reply to req, remembers it
 * for repeats of req's op, and frees req.
 */
void server_reply(
    struct server *s, struct server_req *req, struct proto_reply *r);

/* Replies with just a code and a message. */
void server_reply_code(struct server *s, struct server_req *req,
    enum proto_code code, const char *msg);

/*
 * True when a and b came on the same route: the same connection and the
 * same SP header (survey id, device hops). One reply answers both; a
 * request of another connection or survey needs its own.
 */
bool server_req_same_route(
    const struct server_req *a, const struct server_req *b);

void server_req_free(struct server_req *req);

void server_close(struct server *s);

#endif
