/*
 * Unit tests of the close state machine table (agent/closefsm.c): every
 * state x event pair against the transitions closefsm.h documents (the
 * ones not listed must be refused: no action, state unchanged), then
 * sequences driven through a fake process set that implements what the
 * actions mean to the proctrack ops (count, empty, kill), as session.c
 * executes them.
 */
#include "closefsm.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* ---- the documented table ----------------------------------------------- */

#define A(x) CLOSEFSM_##x

struct row {
	enum closefsm_state st;
	enum closefsm_event ev;
	enum closefsm_state next;
	enum closefsm_action actions[CLOSEFSM_MAX_ACTIONS];
};

/* closefsm.h's list, written out again: the table must match it. */
static const struct row rows[] = {
	{ A(OPENING), A(WORKERS_STARTED), A(RUNNING),
	    { A(STORE), A(REPLY_OPENED) } },
	{ A(OPENING), A(OPEN_FAILED), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(OPENING), A(CLOSE_REQUESTED), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM), A(ADD_WAITER) } },
	{ A(OPENING), A(AGENT_STOPPING), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM), A(SHORTEN_GRACE) } },
	{ A(OPENING), A(AGENT_KILL), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM) } },
	{ A(OPENING), A(AGENT_RELEASE), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(RUNNING), A(CLOSE_REQUESTED), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM), A(ADD_WAITER) } },
	{ A(RUNNING), A(LEASE_LAPSED), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM) } },
	{ A(RUNNING), A(AGENT_STOPPING), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM), A(SHORTEN_GRACE) } },
	{ A(RUNNING), A(AGENT_KILL), A(STOPPING),
	    { A(ARM_GRACE), A(STORE), A(SEND_TERM) } },
	{ A(RUNNING), A(AGENT_RELEASE), A(RELEASED), { A(STORE), A(LET_GO) } },
	{ A(RUNNING), A(OPEN_FAILED), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(RUNNING), A(RESTORED_OPENING), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(RUNNING), A(RESTORED_RUNNING), A(RUNNING), { A(NONE) } },
	{ A(RUNNING), A(RESTORED_STOPPING), A(STOPPING), { A(NONE) } },
	{ A(RUNNING), A(RESTORED_KILLING), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(STOPPING), A(CLOSE_REQUESTED), A(STOPPING), { A(ADD_WAITER) } },
	{ A(STOPPING), A(GRACE_OVER), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(STOPPING), A(AGENT_KILL), A(KILLING),
	    { A(ARM_KILL), A(STORE), A(KILL_SET) } },
	{ A(STOPPING), A(SET_EMPTY), A(DONE), { A(FORGET), A(REPLY_OK) } },
	{ A(STOPPING), A(DEADLINE), A(STOPPING), { A(REPLY_PARTIAL) } },
	{ A(STOPPING), A(AGENT_STOPPING), A(STOPPING), { A(NONE) } },
	{ A(STOPPING), A(AGENT_RELEASE), A(STOPPING), { A(NONE) } },
	{ A(KILLING), A(CLOSE_REQUESTED), A(KILLING), { A(ADD_WAITER) } },
	{ A(KILLING), A(KILL_RETRY_DUE), A(KILLING),
	    { A(KILL_SET), A(KILL_BACKOFF) } },
	{ A(KILLING), A(UNKILLABLE), A(KILLING), { A(MARK_UNHEALTHY) } },
	{ A(KILLING), A(SET_EMPTY), A(DONE), { A(FORGET), A(REPLY_OK) } },
	{ A(KILLING), A(DEADLINE), A(KILLING), { A(REPLY_PARTIAL) } },
	{ A(KILLING), A(AGENT_STOPPING), A(KILLING), { A(NONE) } },
	{ A(KILLING), A(AGENT_KILL), A(KILLING), { A(NONE) } },
	{ A(KILLING), A(AGENT_RELEASE), A(KILLING), { A(NONE) } },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct row *
find_row(enum closefsm_state st, enum closefsm_event ev)
{
	for (size_t i = 0; i < NROWS; i++) {
		if (rows[i].st == st && rows[i].ev == ev)
			return &rows[i];
	}
	return NULL;
}

static void
expect_actions(const struct closefsm_step *got,
    const enum closefsm_action *want, const char *what)
{
	for (int i = 0; i < CLOSEFSM_MAX_ACTIONS; i++) {
		cr_expect_eq(got->actions[i], want[i],
		    "%s: action %d is %s, not %s", what, i,
		    closefsm_action_name(got->actions[i]),
		    closefsm_action_name(want[i]));
	}
}

static void
check_pair(enum closefsm_state st, enum closefsm_event ev)
{
	const enum closefsm_action none[CLOSEFSM_MAX_ACTIONS] = { 0 };
	struct closefsm_step got = closefsm_next(st, ev);
	const struct row *r = find_row(st, ev);
	char what[96];

	snprintf(what, sizeof(what), "%s x %s", closefsm_state_name(st),
	    closefsm_event_name(ev));
	cr_expect_eq(
	    got.allowed, r != NULL, "%s: allowed is %d", what, got.allowed);
	cr_expect_eq(got.next, r != NULL ? r->next : st, "%s: next is %s",
	    what, closefsm_state_name(got.next));
	expect_actions(&got, r != NULL ? r->actions : none, what);
}

Test(closefsm, every_state_and_event_matches_the_documented_table)
{
	for (int st = 0; st < CLOSEFSM_NSTATES; st++) {
		for (int ev = 0; ev < CLOSEFSM_NEVENTS; ev++)
			check_pair(st, ev);
	}
}

/* The final states: the session has left the table. */
static void
check_final(enum closefsm_state st)
{
	for (int ev = 0; ev < CLOSEFSM_NEVENTS; ev++) {
		struct closefsm_step got = closefsm_next(st, ev);

		cr_expect_not(got.allowed, "%s x %s", closefsm_state_name(st),
		    closefsm_event_name(ev));
		cr_expect_eq(got.next, st);
		cr_expect_eq(got.actions[0], CLOSEFSM_NONE);
	}
}

Test(closefsm, done_and_released_allow_nothing)
{
	check_final(CLOSEFSM_DONE);
	check_final(CLOSEFSM_RELEASED);
}

Test(closefsm, out_of_range_is_refused)
{
	struct closefsm_step a = closefsm_next(CLOSEFSM_NSTATES, 0);
	struct closefsm_step b
	    = closefsm_next(CLOSEFSM_RUNNING, CLOSEFSM_NEVENTS);

	cr_expect_not(a.allowed);
	cr_expect_not(b.allowed);
	cr_expect_eq(b.next, CLOSEFSM_RUNNING);
	cr_expect_str_eq(closefsm_state_name(CLOSEFSM_NSTATES), "?");
	cr_expect_str_eq(closefsm_event_name(CLOSEFSM_NEVENTS), "?");
	cr_expect_str_eq(closefsm_action_name(CLOSEFSM_NACTIONS), "?");
}

/* Every row of the documented list is used: a typo there would hide. */
Test(closefsm, documented_rows_are_unique)
{
	for (size_t i = 0; i < NROWS; i++)
		cr_expect_eq(find_row(rows[i].st, rows[i].ev), &rows[i],
		    "row %zu repeats a pair", i);
}

Test(closefsm, names_are_distinct)
{
	for (int i = 0; i < CLOSEFSM_NEVENTS; i++) {
		for (int j = i + 1; j < CLOSEFSM_NEVENTS; j++)
			cr_expect_str_neq(
			    closefsm_event_name(i), closefsm_event_name(j));
	}
	for (int i = 0; i < CLOSEFSM_NACTIONS; i++) {
		for (int j = i + 1; j < CLOSEFSM_NACTIONS; j++)
			cr_expect_str_neq(
			    closefsm_action_name(i), closefsm_action_name(j));
	}
	cr_expect_str_eq(closefsm_state_name(CLOSEFSM_KILLING), "KILLING");
}

/* ---- a fake process set driven through the table -------------------- */

/*
 * What the proctrack ops of a session's set do, reduced to a count:
 * SIGTERM ends the processes that honour it, the kill ends the killable
 * ones. The session part records what session.c would have done.
 */
struct fake {
	enum closefsm_state state;
	unsigned procs; /* proctrack_set_count() */
	bool term_ends; /* the workers exit on SIGTERM */
	bool killable; /* false: D state, the kill does nothing */
	unsigned terms, kills, backoffs, stores, waiters;
	unsigned ok_replies, partial_replies;
	bool open_waits; /* an open request waits for its reply */
	unsigned opened_replies, open_errors;
	bool armed_grace, armed_kill, forgotten, unhealthy, let_go;
	char log[512]; /* every action, in order */
};

static bool
fake_empty(const struct fake *f)
{
	return f->procs == 0;
}

static void
fake_act(struct fake *f, enum closefsm_action a)
{
	switch (a) {
	case CLOSEFSM_SEND_TERM:
		f->terms++;
		if (f->term_ends)
			f->procs = 0;
		break;
	case CLOSEFSM_KILL_SET:
		f->kills++;
		if (f->killable)
			f->procs = 0;
		break;
	case CLOSEFSM_KILL_BACKOFF:
		f->backoffs++;
		break;
	case CLOSEFSM_STORE:
		f->stores++;
		break;
	case CLOSEFSM_ADD_WAITER:
		f->waiters++;
		break;
	case CLOSEFSM_REPLY_OPENED:
		f->opened_replies += f->open_waits;
		f->open_waits = false;
		break;
	case CLOSEFSM_REPLY_OK:
		f->ok_replies += f->waiters;
		f->waiters = 0;
		f->open_errors += f->open_waits;
		f->open_waits = false;
		break;
	case CLOSEFSM_REPLY_PARTIAL:
		f->partial_replies += f->waiters;
		f->waiters = 0;
		f->open_errors += f->open_waits;
		f->open_waits = false;
		break;
	case CLOSEFSM_ARM_GRACE:
		f->armed_grace = true;
		break;
	case CLOSEFSM_ARM_KILL:
		f->armed_kill = true;
		break;
	case CLOSEFSM_FORGET:
		f->forgotten = true;
		break;
	case CLOSEFSM_MARK_UNHEALTHY:
		f->unhealthy = true;
		break;
	case CLOSEFSM_LET_GO:
		f->let_go = true;
		break;
	default:
		break;
	}
}

/* session_feed() as session.c does it: state first, then the actions. */
static bool
feed(struct fake *f, enum closefsm_event ev)
{
	struct closefsm_step st = closefsm_next(f->state, ev);

	if (!st.allowed)
		return false;
	f->state = st.next;
	for (int i = 0; i < CLOSEFSM_MAX_ACTIONS && st.actions[i]; i++) {
		fake_act(f, st.actions[i]);
		strncat(f->log, closefsm_action_name(st.actions[i]),
		    sizeof(f->log) - strlen(f->log) - 2);
		strcat(f->log, " ");
	}
	return true;
}

/* One pass of session_step() for a closing session, timers all due. */
static void
step_due(struct fake *f, bool deadline)
{
	if (!fake_empty(f)) {
		if (f->state == CLOSEFSM_STOPPING)
			feed(f, CLOSEFSM_GRACE_OVER);
		else if (f->state == CLOSEFSM_KILLING)
			feed(f, CLOSEFSM_KILL_RETRY_DUE);
	}
	if (fake_empty(f))
		feed(f, CLOSEFSM_SET_EMPTY);
	else if (deadline)
		feed(f, CLOSEFSM_DEADLINE);
}

Test(closefsm_fake, term_honoured_ends_without_a_kill)
{
	struct fake f = { .state = CLOSEFSM_RUNNING,
		.procs = 3,
		.term_ends = true,
		.killable = true };

	cr_assert(feed(&f, CLOSEFSM_CLOSE_REQUESTED));
	cr_expect_eq(f.state, CLOSEFSM_STOPPING);
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect_eq(f.kills, 0);
	cr_expect_eq(f.ok_replies, 1);
	cr_expect(f.forgotten);
	cr_expect_str_eq(
	    f.log, "ARM_GRACE STORE SEND_TERM ADD_WAITER FORGET REPLY_OK ");
}

Test(closefsm_fake, grace_over_kill_empty_done)
{
	struct fake f
	    = { .state = CLOSEFSM_RUNNING, .procs = 2, .killable = true };

	feed(&f, CLOSEFSM_CLOSE_REQUESTED);
	cr_expect_eq(f.procs, 2, "SIGTERM ignored");
	feed(&f, CLOSEFSM_CLOSE_REQUESTED); /* a second close joins */
	cr_expect_eq(f.terms, 1, "SIGTERM never repeated");
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect_eq(f.kills, 1);
	cr_expect_eq(f.ok_replies, 2, "both closes answered");
	cr_expect_eq(f.partial_replies, 0);
	cr_expect_str_eq(f.log,
	    "ARM_GRACE STORE SEND_TERM ADD_WAITER ADD_WAITER "
	    "ARM_KILL STORE KILL_SET FORGET REPLY_OK ");
}

Test(closefsm_fake, never_dies_partial_then_unhealthy)
{
	struct fake f = { .state = CLOSEFSM_RUNNING, .procs = 1 };

	feed(&f, CLOSEFSM_CLOSE_REQUESTED);
	step_due(&f, false); /* grace over: killed, still there */
	cr_expect_eq(f.state, CLOSEFSM_KILLING);
	step_due(&f, true); /* retry, then the deadline */
	cr_expect_eq(f.partial_replies, 1);
	cr_expect_eq(f.ok_replies, 0);
	cr_expect_eq(f.kills, 2);
	cr_expect_eq(f.backoffs, 1);
	cr_assert(feed(&f, CLOSEFSM_UNKILLABLE));
	cr_expect(f.unhealthy);
	cr_expect_eq(f.state, CLOSEFSM_KILLING, "still killing");
	cr_expect_not(f.forgotten);
	/* The process leaves at last (the mount came back). */
	f.procs = 0;
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect(f.forgotten);
}

Test(closefsm_fake, lease_lapse_closes_with_nobody_waiting)
{
	struct fake f
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };

	feed(&f, CLOSEFSM_LEASE_LAPSED);
	cr_expect_eq(f.waiters, 0);
	step_due(&f, false);
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect_eq(f.ok_replies, 0);
	cr_expect_not(feed(&f, CLOSEFSM_CLOSE_REQUESTED), "DONE is final");
}

Test(closefsm_fake, restored_phases_resume)
{
	struct fake opening
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };
	struct fake running
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };
	struct fake stopping
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };
	struct fake killing
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };

	feed(&opening, CLOSEFSM_RESTORED_OPENING);
	cr_expect_eq(opening.state, CLOSEFSM_KILLING);
	cr_expect_eq(opening.kills, 1, "an open cut short is undone");
	feed(&running, CLOSEFSM_RESTORED_RUNNING);
	cr_expect_eq(running.state, CLOSEFSM_RUNNING);
	cr_expect_eq(running.procs, 1, "left alone");
	feed(&stopping, CLOSEFSM_RESTORED_STOPPING);
	cr_expect_eq(stopping.terms, 0, "SIGTERM is not repeated");
	step_due(&stopping, false);
	cr_expect_eq(stopping.kills, 1);
	cr_expect_eq(stopping.state, CLOSEFSM_DONE);
	feed(&killing, CLOSEFSM_RESTORED_KILLING);
	cr_expect_eq(killing.kills, 1, "the kill resumes at once");
	cr_expect_not(
	    feed(&killing, CLOSEFSM_RESTORED_KILLING), "restored once only");
}

Test(closefsm_fake, agent_kill_fed_until_killing)
{
	struct fake f
	    = { .state = CLOSEFSM_RUNNING, .procs = 1, .killable = true };
	int feeds = 0;

	while (f.state != CLOSEFSM_KILLING && feed(&f, CLOSEFSM_AGENT_KILL))
		feeds++;
	cr_expect_eq(feeds, 2);
	cr_expect_eq(f.terms, 1);
	cr_expect_eq(f.kills, 1);
	cr_expect_eq(f.stores, 2);
}

Test(closefsm_fake, release_leaves_only_running_sessions)
{
	struct fake run = { .state = CLOSEFSM_RUNNING, .procs = 1 };
	struct fake stop = { .state = CLOSEFSM_RUNNING, .procs = 1 };

	feed(&stop, CLOSEFSM_CLOSE_REQUESTED);
	cr_assert(feed(&run, CLOSEFSM_AGENT_RELEASE));
	cr_expect_eq(run.state, CLOSEFSM_RELEASED);
	cr_expect(run.let_go);
	cr_expect_not(run.forgotten, "the record stays for the next agent");
	cr_assert(feed(&stop, CLOSEFSM_AGENT_RELEASE));
	cr_expect_eq(stop.state, CLOSEFSM_STOPPING);
	cr_expect_not(stop.let_go);
}

/* An open as session_open starts it: OPENING, its request waiting. */
#define OPENING_FAKE(n)                                                       \
	{                                                                     \
		.state = CLOSEFSM_OPENING, .procs = (n), .killable = true,    \
		.open_waits = true                                            \
	}

Test(closefsm_fake, open_answered_once_every_worker_started)
{
	struct fake f = OPENING_FAKE(2);

	cr_assert(feed(&f, CLOSEFSM_WORKERS_STARTED));
	cr_expect_eq(f.state, CLOSEFSM_RUNNING);
	cr_expect_eq(f.opened_replies, 1);
	cr_expect_eq(f.stores, 1, "stored as running before the reply");
	cr_expect_str_eq(f.log, "STORE REPLY_OPENED ");
	cr_expect_not(feed(&f, CLOSEFSM_WORKERS_STARTED), "once only");
}

Test(closefsm_fake, open_failed_kills_what_started_then_answers)
{
	struct fake f = OPENING_FAKE(2);

	feed(&f, CLOSEFSM_OPEN_FAILED);
	cr_expect_eq(f.terms, 0);
	cr_expect_eq(f.kills, 1);
	cr_expect_eq(f.open_errors, 0, "not before its workers are gone");
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect_eq(f.open_errors, 1);
	cr_expect_eq(f.opened_replies, 0);
}

Test(closefsm_fake, open_failed_with_unkillable_workers_answers_by_deadline)
{
	struct fake f = OPENING_FAKE(1);

	f.killable = false;
	feed(&f, CLOSEFSM_OPEN_FAILED);
	step_due(&f, true);
	cr_expect_eq(f.state, CLOSEFSM_KILLING, "still killing");
	cr_expect_eq(f.open_errors, 1, "answered at its deadline");
}

Test(closefsm_fake, close_during_open_answers_both)
{
	struct fake f = OPENING_FAKE(3);

	f.term_ends = true;
	cr_assert(feed(&f, CLOSEFSM_CLOSE_REQUESTED));
	cr_expect_eq(f.state, CLOSEFSM_STOPPING);
	cr_expect_not(feed(&f, CLOSEFSM_WORKERS_STARTED), "the open is over");
	step_due(&f, false);
	cr_expect_eq(f.state, CLOSEFSM_DONE);
	cr_expect_eq(f.ok_replies, 1, "the close: ok");
	cr_expect_eq(f.open_errors, 1, "the open: failed");
}

Test(closefsm_fake, release_undoes_a_half_open_session)
{
	struct fake f = OPENING_FAKE(1);

	cr_assert(feed(&f, CLOSEFSM_AGENT_RELEASE));
	cr_expect_eq(f.state, CLOSEFSM_KILLING);
	cr_expect_not(f.let_go);
	step_due(&f, false);
	cr_expect_eq(f.open_errors, 1);
}

Test(closefsm_fake, stored_open_that_failed_to_store_is_undone)
{
	struct fake f = OPENING_FAKE(1);

	feed(&f, CLOSEFSM_WORKERS_STARTED);
	cr_assert(feed(&f, CLOSEFSM_OPEN_FAILED));
	cr_expect_eq(f.state, CLOSEFSM_KILLING);
	cr_expect_eq(f.kills, 1);
}
