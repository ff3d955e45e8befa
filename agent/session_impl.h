/*
 * Inside the session table: what its modules share. Nothing outside them
 * includes this header.
 *
 *   session.c          the table: records, counts, status, the loop's step
 *                      (which turns clocks and process sets into events),
 *                      wake-ups, shutdown
 *   session_open.c     open: validation, the plan, workers started in
 *                      batches between polls, the open's reply
 *   session_close.c    close and renew, the waiting requests, and the
 *                      actions of the state machine (closefsm.h)
 *   session_restart.c  supervision: a worker's end, the restart policy
 *   session_adopt.c    sessions an earlier agent left: records read back,
 *                      cgroups found without a record
 *   session_metrics.c  the gauges of a metrics scrape (metrics.h)
 */
#ifndef HPCXL_AGENT_SESSION_IMPL_H
#define HPCXL_AGENT_SESSION_IMPL_H

#include "closefsm.h"
#include "plan_job.h"
#include "session.h"
#include "worker.h"

#include <stdbool.h>
#include <stdint.h>

struct session {
	char id[HPCXL_ID_MAX + 1];
	char profile[HPCXL_ID_MAX + 1];
	/* The identity that opened it (caller.h); "" = nobody: a session an
	 * agent that predates owners stored, or a cgroup found without a
	 * record. Only the agent's admins may act on those. */
	char owner[HPCXL_IDENTITY_MAX + 1];
	char *workbook; /* NULL when the open named none */
	enum closefsm_state state;
	uint32_t nworkers;
	struct worker *workers;
	struct proctrack_set set;
	int64_t close_start_ms;
	int64_t grace_end_ms;
	int64_t kill_start_ms;
	int64_t next_kill_ms;
	int64_t kill_backoff_ms;
	int64_t lease_end_ms; /* closed by the agent at this time; 0 = never */
	/* Requests waiting for the session: closes, and while it opens (or
	 * undoes a failed open) the open and its resends. */
	struct server_req *waiters;
	/* The open under way (OPENING): what every worker shares, and how
	 * many have started. A resend carries the open's op. */
	struct worker_plan plan;
	struct plan_job *plan_job; /* the plan, built off the loop (NSS) */
	uint32_t nstarted;
	uint64_t open_op;
	char open_why[512]; /* why the open failed; "" while it may succeed */
	bool dirty; /* changed since last stored (or the store failed) */
	bool unkillable_noted; /* already marked the node unhealthy */
	bool undo_open; /* opened, but its record could not be stored */
	struct session *next;
};

/* What an event's actions need beyond the session: the close request
 * (ADD_WAITER), the agent's shutdown grace end (SHORTEN_GRACE). */
struct close_ctx {
	struct server_req *req;
	int64_t grace_end_ms;
};

/* ---- session.c ---- */
struct session *session_find(const struct session_table *t, const char *id);
/* True when caller may act on s: its owner, or an admin (config.h). */
bool session_caller_owns(const struct session_table *t,
    const struct session *s, const char *caller);
/* Answers req refused ("not the owner") and returns false unless its
 * caller may act on s. */
bool session_check_owner(
    struct session_table *t, const struct session *s, struct server_req *req);
/* s's owner for a log line: the identity, or "(no owner)". */
const char *session_owner_name(const struct session *s);
/* Puts s at the head of the table. */
void session_link(struct session_table *t, struct session *s);
void session_free(struct session *s);
/* Worker i's log file: the one place its name is made. */
#define SESSION_LOG_PATH_MAX (PATH_MAX + HPCXL_ID_MAX + 32)
void session_log_path(const struct session_table *t, const struct session *s,
    uint32_t i, char *path, size_t len);
/* Stores s's record; 0, or HPCXL_ESYSTEM (s stays dirty: retried). */
int session_persist(struct session_table *t, struct session *s);
uint32_t session_count_alive(const struct session *s);
/* How many of s's workers are in state st. */
uint32_t session_count_state(const struct session *s, enum proto_wstate st);
struct proto_counts session_counts(const struct session *s, int64_t now_ms);
/* The same once s's set is empty and every worker reaped (remaining 0),
 * without reading the set (cgroup.procs). */
struct proto_counts session_counts_gone(
    const struct session *s, int64_t now_ms);
/* Fills a proto_session that borrows s's strings; free info->workers. */
int session_info(const struct session *s, struct proto_session *info);
void session_reply_counts(struct session_table *t, struct server_req *req,
    enum proto_code code, const char *msg, struct proto_counts c);

/* ---- session_open.c ---- */
/* Starts the next workers of an OPENING session, until t's spawn slice of
 * this pass is used; feeds WORKERS_STARTED or OPEN_FAILED. */
void session_open_step(
    struct session_table *t, struct session *s, int64_t now_ms);
/* An open that has not completed ends: its waiting requests will get
 * why. Call before feeding the event that ends it. */
void session_open_abandon(struct session *s, const char *why);
/* REPLY_OPENED: the waiting open (and its resends) get "opened". */
void session_reply_opened(
    struct session_table *t, struct session *s, int64_t now_ms);
/* Worker i of s, from plan; restarts use it too. */
int session_spawn_worker(struct session_table *t, struct session *s,
    const struct worker_plan *plan, uint32_t i, char *why, size_t whylen);

/* ---- session_close.c ---- */
/* The one place a session changes state (closefsm.h). False when ev is
 * not allowed in s's state. */
bool session_feed(struct session_table *t, struct session *s,
    enum closefsm_event ev, int64_t now_ms, const struct close_ctx *c);
/* A STOPPING or KILLING session: timers, emptiness, deadlines. */
void session_close_step(
    struct session_table *t, struct session *s, int64_t now_ms);
/* req waits on s: the newest of one route replaces the older one; past
 * SESSION_MAX_WAITERS it is refused at once. */
void session_add_waiter(
    struct session_table *t, struct session *s, struct server_req *req);

/* ---- session_restart.c ---- */
void session_note_worker_end(struct session_table *t, struct session *s,
    struct worker *w, int status, int64_t now_ms);
void session_check_adopted_workers(
    struct session_table *t, struct session *s, int64_t now_ms);
void session_plan_restart(struct session_table *t, struct session *s,
    struct worker *w, int64_t now_ms);
/* A RUNNING session: its lease, then its due restarts. */
void session_running_step(
    struct session_table *t, struct session *s, int64_t now_ms);

/* ---- session_adopt.c ---- */
/* A session this agent does not know whose cgroup an earlier agent left;
 * linked into the table. NULL when there is none. */
struct session *session_adopt_cgroup(struct session_table *t, const char *id);
/* state_load_all() callback (arg: the table). */
void session_adopt_record(void *arg, struct state_session *r);

#endif
