/*
 * Prometheus metrics of the agent (text format 0.0.4 at /metrics), served
 * by nng's HTTP server on --metrics-listen (metrics_listen).
 *
 * Threads: nng runs the HTTP handler on its own threads, while the loop
 * owns the sessions. The handler never reads agent state: it queues the
 * request's aio under a mutex and wakes the loop through an eventfd
 * (metrics_fd()). The loop then counts the gauges from the session table
 * (session_table_gauges()), renders the whole text and completes every
 * queued aio with it (metrics_serve()). The counters below are written and
 * read on the loop only, so they are plain integers. A scrape therefore
 * sees the agent as of one point of its loop (every reply the loop sent
 * before it is counted), and a scrape of a stuck loop does not answer:
 * that is the agent's health too.
 */
#ifndef HPCXL_AGENT_METRICS_H
#define HPCXL_AGENT_METRICS_H

#include "closefsm.h"
#include "hpcxl/common/proto.h"

#include <stdbool.h>
#include <stdint.h>

/* Worker states of proto.h (running .. failed). */
#define METRICS_WSTATES (PROTO_W_FAILED + 1)

/* What the loop counts at each scrape. */
struct metrics_gauges {
	uint64_t sessions[CLOSEFSM_NSTATES]; /* by state */
	uint64_t workers[METRICS_WSTATES]; /* by state */
	bool unhealthy;
	const char *version;
	const char *backend; /* "cgroup2" or "pgroup" */
};

struct metrics;

/*
 * Checks url (http://HOST:PORT, on loopback unless allow_insecure), starts
 * the HTTP server and logs where. Returns 0 and *out, or HPCXL_ECONFIG
 * (with the reason logged) for a URL that is refused or cannot be bound.
 */
int metrics_open(const char *url, bool allow_insecure, struct metrics **out);

/* The eventfd the loop polls: readable when scrapes wait; -1 for NULL. */
int metrics_fd(const struct metrics *m);

/* Answers every waiting scrape with the counters and g (loop thread). */
void metrics_serve(struct metrics *m, const struct metrics_gauges *g);

/* The whole text: g and the counters; malloc'd, NULL when out of memory
 * (loop thread; metrics_serve() uses it, tests/unit/test_metrics_text.c
 * checks it). */
char *metrics_render(const struct metrics_gauges *g, size_t *len);

/* Fails what still waits, stops the server. NULL is fine. */
void metrics_close(struct metrics *m);

/* ---- counters: loop thread only ---- */

/* A reply sent: opens and closes are counted by outcome. */
void metrics_count_reply(enum proto_type type, enum proto_code code);
/* The state machine's KILL_SET. */
void metrics_count_kill(void);
/* A worker started again by its profile's restart policy. */
void metrics_count_restart(void);
/* A session's close ended after ms (its processes all gone). */
void metrics_observe_close(int64_t ms);

#endif
