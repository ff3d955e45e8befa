/*
 * The session table: every session this node runs, and the state machine
 * of each (its table is closefsm.h; the modules of session_impl.h turn
 * what they see into the table's events and run the actions it returns).
 *
 *   OPENING --started--> RUNNING --close--> STOPPING --grace--> KILLING
 *                                  STOPPING/KILLING --empty--> DONE
 *
 * OPENING: the open's request waits while its workers start, in batches
 * of at most SPAWN_SLICE_MS per loop pass; it is answered when the last
 * has started or, if the open fails, once what it started is gone.
 * STOPPING: SIGCONT+SIGTERM went to every worker; grace is
 * min(profile stop grace, 80 % of the close deadline). KILLING: the whole
 * process set was killed (cgroup.kill or SIGKILL per process group) and is
 * killed again with backoff until empty; if the deadline comes first, every
 * waiting close gets "partial" with what remains. DONE: waiters get "ok"
 * with counts and the session is forgotten, so a later close of it gets
 * not_found. A RUNNING session whose lease lapses starts the same close
 * with nobody waiting. All of this runs on the agent's loop thread.
 *
 * Every session is stored in the state directory (state.h) when it opens
 * and on every change, and forgotten when DONE; a new agent re-adopts the
 * stored sessions and resumes a close that was under way. A session whose
 * processes outlive the kill by cfg->unkillable_limit_ms marks the node
 * unhealthy: opens are refused until an operator clears the mark.
 */
#ifndef HPCXL_AGENT_SESSION_H
#define HPCXL_AGENT_SESSION_H

#include "hpcxl/common/config.h"
#include "metrics.h"
#include "proctrack.h"
#include "server.h"
#include "state.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

struct session;

struct session_table {
	struct session *head;
	const struct config *cfg;
	const struct proctrack *pt;
	struct server *srv;
	char log_root[PATH_MAX]; /* <state_dir>/logs */
	const struct state_dir *state; /* opened (locked) by the caller */
	char unhealthy[512]; /* why the node refuses opens; "" = healthy */
	int64_t next_logcap_ms; /* worker logs are measured again then */
	int64_t next_logsweep_ms; /* expired log folders are removed then */
	int64_t spawn_until_ms; /* this pass starts workers until then */
	bool releasing; /* running sessions were left to the next agent */
};

/*
 * Borrows cfg, pt, srv and state (locked by state_open()) for the table's
 * lifetime; re-adopts the sessions stored there by an earlier agent, and
 * its unhealthy mark.
 */
int session_table_init(struct session_table *t, const struct config *cfg,
    const struct proctrack *pt, struct server *srv,
    const struct state_dir *state);

/* Each takes ownership of req and answers it (now or when done). */
void session_open(struct session_table *t, struct server_req *req);
void session_close(struct session_table *t, struct server_req *req);
void session_status(struct session_table *t, struct server_req *req);
/* Extends (or with lease_ms 0 removes) a session's lease. A session whose
 * lease lapses is closed by the agent with the normal sequence. */
void session_renew(struct session_table *t, struct server_req *req);

/* Answers clear: removes the unhealthy mark. */
void session_clear_health(struct session_table *t, struct server_req *req);

/* Why the node refuses opens, or NULL when it is healthy. */
const char *session_table_unhealthy(const struct session_table *t);

/* A child was reaped: records it if it was a worker of some session. */
void session_table_reaped(struct session_table *t, pid_t pid, int status);

/* After a batch of session_table_reaped(): every set forgets the process
 * groups that emptied. */
void session_table_prune(struct session_table *t);

/* Advances every session's state machine to time now_ms. */
void session_table_step(struct session_table *t, int64_t now_ms);

/* The next time a step is needed (monotonic ms), or -1 for none. */
int64_t session_table_next_wakeup(const struct session_table *t);

/* Fills fds (up to max) with descriptors whose events need a step:
 * cgroup.events of closing sessions, pidfds of adopted workers. Returns how
 * many it would fill with no limit. */
size_t session_table_pollfds(
    const struct session_table *t, struct pollfd *fds, size_t max);

/* Starts closing every running session (agent shutdown). */
void session_table_close_all(struct session_table *t, int64_t deadline_ms);

/* Agent shutdown: stores and lets go of every running session, whose
 * workers keep running for the next agent. Closes under way stay. */
void session_table_release_running(struct session_table *t);

/* Kills every session's processes now (second shutdown signal). */
void session_table_kill_all(struct session_table *t);

bool session_table_empty(const struct session_table *t);

/* Sessions the agent holds: opening, running or closing. */
size_t session_table_count(const struct session_table *t);

/* Adds the sessions and workers by state, and the unhealthy mark, to g
 * (session_metrics.c; for a metrics scrape, on the loop). */
void session_table_gauges(
    const struct session_table *t, struct metrics_gauges *g);

/* Frees everything; answers nobody (call once the table is empty). Safe on
 * a zeroed table that was never initialised. */
void session_table_fini(struct session_table *t);

#endif
