#include "closefsm.h"

#include <stddef.h>

/* Shorthands that keep each row of the table on one line. */
#define GO(to, ...)                                                           \
	{                                                                     \
		.allowed = true, .next = CLOSEFSM_##to,                       \
		.actions                                                      \
		    = { __VA_ARGS__ }                                         \
	}
#define STAY(st, ...) GO(st, __VA_ARGS__)
/* An allowed event with no action (C11 wants a variadic argument). */
#define NOTHING CLOSEFSM_NONE

#define ARM_GRACE CLOSEFSM_ARM_GRACE
#define ARM_KILL CLOSEFSM_ARM_KILL
#define STORE CLOSEFSM_STORE
#define SEND_TERM CLOSEFSM_SEND_TERM
#define KILL_SET CLOSEFSM_KILL_SET

/* Entering STOPPING: the new state is stored before the signals go. */
#define TERM ARM_GRACE, STORE, SEND_TERM
/* Entering KILLING: stored before the kill, which is idempotent. */
#define KILL ARM_KILL, STORE, KILL_SET

/*
 * The whole state machine (closefsm.h lists it as text). A missing entry
 * is zero: allowed false, the event is not allowed in that state.
 */
static const struct closefsm_step table[CLOSEFSM_NSTATES][CLOSEFSM_NEVENTS]
    = {
	      [CLOSEFSM_OPENING] = {
		      [CLOSEFSM_WORKERS_STARTED]
		      = GO(RUNNING, STORE, CLOSEFSM_REPLY_OPENED),
		      [CLOSEFSM_OPEN_FAILED] = GO(KILLING, KILL),
		      /* What started gets SIGTERM; the open fails. */
		      [CLOSEFSM_CLOSE_REQUESTED]
		      = GO(STOPPING, TERM, CLOSEFSM_ADD_WAITER),
		      [CLOSEFSM_AGENT_STOPPING]
		      = GO(STOPPING, TERM, CLOSEFSM_SHORTEN_GRACE),
		      [CLOSEFSM_AGENT_KILL] = GO(STOPPING, TERM),
		      /* Half open cannot be handed over: undone. */
		      [CLOSEFSM_AGENT_RELEASE] = GO(KILLING, KILL),
	      },
	      [CLOSEFSM_RUNNING] = {
		      [CLOSEFSM_CLOSE_REQUESTED]
		      = GO(STOPPING, TERM, CLOSEFSM_ADD_WAITER),
		      [CLOSEFSM_LEASE_LAPSED] = GO(STOPPING, TERM),
		      [CLOSEFSM_AGENT_STOPPING]
		      = GO(STOPPING, TERM, CLOSEFSM_SHORTEN_GRACE),
		      [CLOSEFSM_AGENT_KILL] = GO(STOPPING, TERM),
		      [CLOSEFSM_AGENT_RELEASE]
		      = GO(RELEASED, STORE, CLOSEFSM_LET_GO),
		      /* Its record could not be stored: undone. */
		      [CLOSEFSM_OPEN_FAILED] = GO(KILLING, KILL),
		      /* An open cut short is undone like a failed one. */
		      [CLOSEFSM_RESTORED_OPENING] = GO(KILLING, KILL),
		      [CLOSEFSM_RESTORED_RUNNING] = STAY(RUNNING, NOTHING),
		      /* SIGTERM went before the record said STOPPING. */
		      [CLOSEFSM_RESTORED_STOPPING] = GO(STOPPING, NOTHING),
		      /* The kill resumes at once; the kill clock is kept. */
		      [CLOSEFSM_RESTORED_KILLING] = GO(KILLING, KILL),
	      },
	      [CLOSEFSM_STOPPING] = {
		      /* A close under way is joined: it answers both. */
		      [CLOSEFSM_CLOSE_REQUESTED]
		      = STAY(STOPPING, CLOSEFSM_ADD_WAITER),
		      [CLOSEFSM_GRACE_OVER] = GO(KILLING, KILL),
		      [CLOSEFSM_AGENT_KILL] = GO(KILLING, KILL),
		      [CLOSEFSM_SET_EMPTY]
		      = GO(DONE, CLOSEFSM_FORGET, CLOSEFSM_REPLY_OK),
		      [CLOSEFSM_DEADLINE] = STAY(STOPPING, CLOSEFSM_REPLY_PARTIAL),
		      [CLOSEFSM_AGENT_STOPPING] = STAY(STOPPING, NOTHING),
		      [CLOSEFSM_AGENT_RELEASE] = STAY(STOPPING, NOTHING),
	      },
	      [CLOSEFSM_KILLING] = {
		      [CLOSEFSM_CLOSE_REQUESTED]
		      = STAY(KILLING, CLOSEFSM_ADD_WAITER),
		      [CLOSEFSM_KILL_RETRY_DUE]
		      = STAY(KILLING, KILL_SET, CLOSEFSM_KILL_BACKOFF),
		      [CLOSEFSM_UNKILLABLE]
		      = STAY(KILLING, CLOSEFSM_MARK_UNHEALTHY),
		      [CLOSEFSM_SET_EMPTY]
		      = GO(DONE, CLOSEFSM_FORGET, CLOSEFSM_REPLY_OK),
		      [CLOSEFSM_DEADLINE] = STAY(KILLING, CLOSEFSM_REPLY_PARTIAL),
		      [CLOSEFSM_AGENT_STOPPING] = STAY(KILLING, NOTHING),
		      [CLOSEFSM_AGENT_KILL] = STAY(KILLING, NOTHING),
		      [CLOSEFSM_AGENT_RELEASE] = STAY(KILLING, NOTHING),
	      },
	      /* DONE, RELEASED: gone from the table; nothing allowed. */
      };

struct closefsm_step
closefsm_next(enum closefsm_state st, enum closefsm_event ev)
{
	struct closefsm_step none = { .allowed = false, .next = st };

	if ((unsigned)st >= CLOSEFSM_NSTATES
	    || (unsigned)ev >= CLOSEFSM_NEVENTS || !table[st][ev].allowed)
		return none;
	return table[st][ev];
}

static const char *const state_names[CLOSEFSM_NSTATES] = {
	"OPENING",
	"RUNNING",
	"STOPPING",
	"KILLING",
	"DONE",
	"RELEASED",
};

static const char *const event_names[CLOSEFSM_NEVENTS] = {
	"CLOSE_REQUESTED",
	"LEASE_LAPSED",
	"GRACE_OVER",
	"SET_EMPTY",
	"DEADLINE",
	"KILL_RETRY_DUE",
	"UNKILLABLE",
	"WORKERS_STARTED",
	"OPEN_FAILED",
	"RESTORED_OPENING",
	"RESTORED_RUNNING",
	"RESTORED_STOPPING",
	"RESTORED_KILLING",
	"AGENT_STOPPING",
	"AGENT_KILL",
	"AGENT_RELEASE",
};

static const char *const action_names[CLOSEFSM_NACTIONS] = {
	"NONE",
	"ARM_GRACE",
	"ARM_KILL",
	"STORE",
	"SEND_TERM",
	"KILL_SET",
	"KILL_BACKOFF",
	"ADD_WAITER",
	"SHORTEN_GRACE",
	"FORGET",
	"REPLY_OPENED",
	"REPLY_OK",
	"REPLY_PARTIAL",
	"MARK_UNHEALTHY",
	"LET_GO",
};

const char *
closefsm_state_name(enum closefsm_state st)
{
	return (unsigned)st < CLOSEFSM_NSTATES ? state_names[st] : "?";
}

const char *
closefsm_event_name(enum closefsm_event ev)
{
	return (unsigned)ev < CLOSEFSM_NEVENTS ? event_names[ev] : "?";
}

const char *
closefsm_action_name(enum closefsm_action a)
{
	return (unsigned)a < CLOSEFSM_NACTIONS ? action_names[a] : "?";
}
