/*
 * Restart-safe state: what a new agent on this node needs to re-adopt the
 * sessions of the one before it.
 *
 * One JSON file per session, <state_dir>/sessions/<id>.json, replaced
 * atomically (the new text goes into <id>.json.tmp, which then trades
 * names with the record and keeps the old version as the next store's
 * spare), so an agent's crash leaves the old record or the new one, never
 * half of one. Not fsynced: a record is
 * for the next agent of the same boot, and the page cache outlives the
 * agent (state.c, replace_file()). Times in
 * a record are CLOCK_MONOTONIC ms, which only mean something within one
 * boot: every record carries the boot id, and the records of an earlier
 * boot are dropped on load (their processes died with it).
 *
 * The node's unhealthy mark lives in <state_dir>/unhealthy the same way, so
 * restarting the agent does not clear what an operator must clear.
 */
#ifndef HPCXL_AGENT_STATE_H
#define HPCXL_AGENT_STATE_H

#include "hpcxl/common/util.h"
#include "worker.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Where a session's close had got to: what a new agent resumes. */
enum state_phase {
	STATE_OPENING, /* workers being started; the open was not answered */
	STATE_RUNNING,
	STATE_STOPPING, /* SIGTERM sent; the kill comes at grace_end_ms */
	STATE_KILLING, /* killed; kill again until empty */
};

struct state_dir {
	char sessions[PATH_MAX]; /* <state_dir>/sessions */
	char health[PATH_MAX]; /* <state_dir>/unhealthy */
	int lock_fd; /* <state_dir>/lock, flock'ed: one agent per state dir */
	char boot_id[64];
};

/*
 * One session as stored. state_save() borrows workbook and workers;
 * state_load_all() hands a record whose workbook, workers and pgids are
 * malloc'd and owned by the callback from then on.
 */
struct state_session {
	char id[HPCXL_ID_MAX + 1];
	char profile[HPCXL_ID_MAX + 1];
	/* Who opened it; "" = nobody (a record of an agent that predates
	 * owners has none: only admins may act on it). */
	char owner[HPCXL_IDENTITY_MAX + 1];
	char *workbook; /* NULL = none */
	enum state_phase phase;
	int64_t lease_end_ms; /* 0 = no lease */
	int64_t close_start_ms;
	int64_t grace_end_ms;
	int64_t kill_start_ms; /* when the kill began (the unkillable clock) */
	uint32_t nworkers;
	struct worker *workers; /* pidfd is -1 in a loaded record */
	pid_t *pgids; /* worker i's process group (the process set's) */
};

/*
 * Locks state_dir (creating it if needed), then creates its sessions/ if
 * needed: an agent refused here has created nothing. Returns 0,
 * HPCXL_EEXIST when another agent holds the lock, or HPCXL_ESYSTEM (sd is
 * to be closed with state_close() either way).
 */
int state_open(struct state_dir *sd, const char *state_dir);
/* Releases the lock (a no-op on a state_dir that was never opened, when
 * lock_fd is -1). */
void state_close(struct state_dir *sd);

/* Replaces the record of r->id atomically. Returns 0 or an HPCXL_ error. */
int state_save(const struct state_dir *sd, const struct state_session *r);

/* Removes the record of id (the session ended). */
void state_forget(const struct state_dir *sd, const char *id);

/*
 * Calls take(arg, r) for every valid record of this boot. A record of an
 * earlier boot is removed; one that cannot be parsed, or whose name is not
 * a valid session id, is renamed to <name>.bad (kept for a human) and
 * skipped; a temporary left by a crash is removed. Returns how many records
 * were handed over.
 */
size_t state_load_all(const struct state_dir *sd,
    void (*take)(void *arg, struct state_session *r), void *arg);

/* Stores the unhealthy reason, or with reason NULL removes it. */
int state_save_health(const struct state_dir *sd, const char *reason);

/* Copies a stored reason of this boot into reason; false when healthy. */
bool state_load_health(const struct state_dir *sd, char *reason, size_t len);

#endif
