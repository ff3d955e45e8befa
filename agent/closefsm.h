/*
 * The state machine of one session, from its open to its close, as one table:
 * state x event -> (next state, actions). Pure: no system calls, no clock, no
 * session. The session table (session.c) turns what it sees into events, sets
 * the session's state to the step's next state, then executes the step's
 * actions in order, so a STORE records the new state and an agent killed
 * after it resumes from there (it never repeats SIGTERM; a repeated kill is
 * harmless).
 *
 *   OPENING --started--> RUNNING --close--> STOPPING --grace--> KILLING
 *      \--failed-------------------------------------------------/  |
 *                                     STOPPING/KILLING --empty--> DONE
 *
 * The transitions (every pair not listed is not allowed: no action, the
 * state is unchanged, and closefsm_next() says so):
 *
 *   OPENING  WORKERS_STARTED  -> RUNNING   STORE REPLY_OPENED
 *   OPENING  OPEN_FAILED      -> KILLING   ARM_KILL STORE KILL_SET
 *   OPENING  CLOSE_REQUESTED  -> STOPPING  ARM_GRACE STORE SEND_TERM
 *                                          ADD_WAITER
 *   OPENING  AGENT_STOPPING   -> STOPPING  ARM_GRACE STORE SEND_TERM
 *                                          SHORTEN_GRACE
 *   OPENING  AGENT_KILL       -> STOPPING  ARM_GRACE STORE SEND_TERM
 *   OPENING  AGENT_RELEASE    -> KILLING   ARM_KILL STORE KILL_SET
 *   RUNNING  CLOSE_REQUESTED  -> STOPPING  ARM_GRACE STORE SEND_TERM
 *                                          ADD_WAITER
 *   RUNNING  LEASE_LAPSED     -> STOPPING  ARM_GRACE STORE SEND_TERM
 *   RUNNING  AGENT_STOPPING   -> STOPPING  ARM_GRACE STORE SEND_TERM
 *                                          SHORTEN_GRACE
 *   RUNNING  AGENT_KILL       -> STOPPING  ARM_GRACE STORE SEND_TERM
 *   RUNNING  AGENT_RELEASE    -> RELEASED  STORE LET_GO
 *   RUNNING  OPEN_FAILED      -> KILLING   ARM_KILL STORE KILL_SET
 *   RUNNING  RESTORED_OPENING -> KILLING   ARM_KILL STORE KILL_SET
 *   RUNNING  RESTORED_RUNNING -> RUNNING   (nothing)
 *   RUNNING  RESTORED_STOPPING-> STOPPING  (nothing: SIGTERM went already)
 *   RUNNING  RESTORED_KILLING -> KILLING   ARM_KILL STORE KILL_SET
 *   STOPPING CLOSE_REQUESTED  -> STOPPING  ADD_WAITER
 *   STOPPING GRACE_OVER       -> KILLING   ARM_KILL STORE KILL_SET
 *   STOPPING AGENT_KILL       -> KILLING   ARM_KILL STORE KILL_SET
 *   STOPPING SET_EMPTY        -> DONE      FORGET REPLY_OK
 *   STOPPING DEADLINE         -> STOPPING  REPLY_PARTIAL
 *   STOPPING AGENT_STOPPING   -> STOPPING  (nothing: already closing)
 *   STOPPING AGENT_RELEASE    -> STOPPING  (nothing: a close under way stays)
 *   KILLING  CLOSE_REQUESTED  -> KILLING   ADD_WAITER
 *   KILLING  KILL_RETRY_DUE   -> KILLING   KILL_SET KILL_BACKOFF
 *   KILLING  UNKILLABLE       -> KILLING   MARK_UNHEALTHY
 *   KILLING  SET_EMPTY        -> DONE      FORGET REPLY_OK
 *   KILLING  DEADLINE         -> KILLING   REPLY_PARTIAL
 *   KILLING  AGENT_STOPPING   -> KILLING   (nothing)
 *   KILLING  AGENT_KILL       -> KILLING   (nothing: killed already)
 *   KILLING  AGENT_RELEASE    -> KILLING   (nothing)
 *   DONE     (any)            -> not allowed: the session is gone
 *   RELEASED (any)            -> not allowed: the next agent has it
 *
 * An open starts OPENING with its request waiting: workers start in
 * batches between the loop's polls, and the reply goes when all have
 * started (REPLY_OPENED) or, when the open does not complete (a spawn
 * failed, a close or the agent's shutdown came first), once what it
 * started is gone (REPLY_OK and REPLY_PARTIAL answer a waiting open with
 * the reason it failed), so a retry of the same session id never meets
 * the remains of the first. A half-open session cannot be handed to the
 * next agent: AGENT_RELEASE undoes it. RUNNING OPEN_FAILED is the record
 * of a complete open that could not be stored: it is undone too.
 *
 * A session read back from the state directory starts RUNNING and gets the
 * RESTORED_ event of its stored phase. AGENT_KILL is fed until the session
 * is KILLING: a running one gets SIGTERM and then the kill at once.
 */
#ifndef HPCXL_AGENT_CLOSEFSM_H
#define HPCXL_AGENT_CLOSEFSM_H

#include <stdbool.h>

enum closefsm_state {
	CLOSEFSM_OPENING, /* workers being started; the open waits */
	CLOSEFSM_RUNNING,
	CLOSEFSM_STOPPING, /* SIGTERM sent; the kill comes at grace end */
	CLOSEFSM_KILLING, /* killed; killed again with backoff until empty */
	CLOSEFSM_DONE, /* closed: its record forgotten, it leaves the table */
	CLOSEFSM_RELEASED, /* left running, stored as RUNNING, for the next
	                      agent; it leaves the table */
	CLOSEFSM_NSTATES,
};

enum closefsm_event {
	CLOSEFSM_CLOSE_REQUESTED, /* a close request (new or joining) */
	CLOSEFSM_LEASE_LAPSED, /* the lease was not renewed in time */
	CLOSEFSM_GRACE_OVER, /* grace ended with processes left */
	CLOSEFSM_SET_EMPTY, /* no process and no unreaped worker left */
	CLOSEFSM_DEADLINE, /* a waiting close's reply time came */
	CLOSEFSM_KILL_RETRY_DUE, /* the backoff before the next kill ended */
	CLOSEFSM_UNKILLABLE, /* processes outlived the kill by the limit */
	CLOSEFSM_WORKERS_STARTED, /* the open started its last worker */
	CLOSEFSM_OPEN_FAILED, /* a worker could not start, or the record of
	                         the complete open could not be stored */
	CLOSEFSM_RESTORED_OPENING, /* read back: its open was cut short */
	CLOSEFSM_RESTORED_RUNNING,
	CLOSEFSM_RESTORED_STOPPING,
	CLOSEFSM_RESTORED_KILLING,
	CLOSEFSM_AGENT_STOPPING, /* shutdown: close what runs */
	CLOSEFSM_AGENT_KILL, /* second shutdown signal: kill everything now */
	CLOSEFSM_AGENT_RELEASE, /* shutdown: leave it to the next agent */
	CLOSEFSM_NEVENTS,
};

enum closefsm_action {
	CLOSEFSM_NONE, /* ends an action list */
	CLOSEFSM_ARM_GRACE, /* close clock and grace end; no more restarts */
	CLOSEFSM_ARM_KILL, /* kill clock (kept if set), first backoff */
	CLOSEFSM_STORE, /* the session's record, with its new phase */
	CLOSEFSM_SEND_TERM, /* SIGCONT then SIGTERM to every process */
	CLOSEFSM_KILL_SET, /* SIGKILL the whole process set */
	CLOSEFSM_KILL_BACKOFF, /* double the wait before the next kill */
	CLOSEFSM_ADD_WAITER, /* the close waits; its deadline may cut grace */
	CLOSEFSM_SHORTEN_GRACE, /* to 80 % of the agent's shutdown deadline */
	CLOSEFSM_FORGET, /* remove the record: the session is closed */
	CLOSEFSM_REPLY_OPENED, /* the waiting open gets "ok" with workers */
	CLOSEFSM_REPLY_OK, /* every waiting close gets "ok" with counts, a
	                      waiting open the error it ended with */
	CLOSEFSM_REPLY_PARTIAL, /* each overdue close gets "partial", an
	                           overdue open its error */
	CLOSEFSM_MARK_UNHEALTHY, /* the node refuses opens until cleared */
	CLOSEFSM_LET_GO, /* its processes run on for the next agent */
	CLOSEFSM_NACTIONS,
};

/* The longest action list of a transition. */
#define CLOSEFSM_MAX_ACTIONS 4

struct closefsm_step {
	bool allowed; /* false: event not allowed here; nothing to do */
	enum closefsm_state next;
	enum closefsm_action actions[CLOSEFSM_MAX_ACTIONS]; /* NONE-ended */
};

/* What event ev does in state st. */
struct closefsm_step closefsm_next(
    enum closefsm_state st, enum closefsm_event ev);

/* Names for logs and tests ("RUNNING", "GRACE_OVER", "KILL_SET"...). */
const char *closefsm_state_name(enum closefsm_state st);
const char *closefsm_event_name(enum closefsm_event ev);
const char *closefsm_action_name(enum closefsm_action a);

#endif
