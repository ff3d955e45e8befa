/*
 * Close and renew requests, the requests waiting on a session, and the
 * actions of the state machine (closefsm.h): the one place a session
 * changes state is session_feed(), and session_close_step() turns what a
 * closing session's clocks and process set say into its events.
 */
#include "session_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First re-kill after this long, doubling up to KILL_BACKOFF_MAX_MS. */
#define KILL_BACKOFF_MIN_MS 50
#define KILL_BACKOFF_MAX_MS 1000

/* The error a waiting open gets once the session it started is gone, or
 * at its deadline while processes remain. */
static void
reply_open_failed(struct session_table *t, struct server_req *req,
    const struct session *s, bool remains)
{
	char msg[sizeof(s->open_why) + 64];

	snprintf(msg, sizeof(msg), "%s%s",
	    s->open_why[0] != '\0' ? s->open_why : "the open did not complete",
	    remains ? " (what it started is still being killed)" : "");
	server_reply_code(t->srv, req, PROTO_CODE_ERROR, msg);
}

/*
 * The session is gone: every waiting close gets "ok" with counts, a
 * waiting open its error. Newest first: when a connection has more
 * waiters than nng queues replies (two), the reply most likely still
 * awaited goes first (a cooked surveyor abandons its older surveys).
 */
static void
answer_waiters(struct session_table *t, struct session *s, int64_t now_ms)
{
	struct server_req *req;

	while ((req = s->waiters) != NULL) {
		s->waiters = req->next;
		req->next = NULL;
		if (req->m.type == PROTO_OPEN)
			reply_open_failed(t, req, s, false);
		else /* REPLY_OK comes only with SET_EMPTY */
			session_reply_counts(t, req, PROTO_CODE_OK, "closed",
			    session_counts_gone(s, now_ms));
	}
}

static int64_t
profile_grace_ms(const struct session_table *t, const char *profile)
{
	const struct config_profile *p = config_find_profile(t->cfg, profile);

	return p != NULL && p->stop_grace_ms >= 0 ? p->stop_grace_ms
	                                          : t->cfg->default_grace_ms;
}

static void
kill_session(struct session *s)
{
	proctrack_set_kill(&s->set);
}

/* proctrack_signal_worker_fn: through the pidfd, never a reused pid. */
static pid_t
signal_worker(void *arg, size_t i, int sig)
{
	struct worker *w = &((struct session *)arg)->workers[i];

	worker_signal(w, sig);
	return worker_alive(w) ? w->pid : 0;
}

/* Every process of the session gets SIGCONT, then SIGTERM, exactly once:
 * a stopped process cannot act on SIGTERM. */
static void
terminate_session(struct session *s)
{
	static const int sigs[] = { SIGCONT, SIGTERM };

	proctrack_set_signal(&s->set, sigs, 2, signal_worker, s);
}

static void
stop_workers(struct session *s)
{
	for (uint32_t i = 0; i < s->nworkers; i++) {
		s->workers[i].restart_at_ms = 0; /* closing: no restarts */
		if (worker_alive(&s->workers[i]))
			s->workers[i].state = PROTO_W_STOPPING;
	}
}

/* ARM_GRACE: the close clock starts; the grace may be cut by deadlines. */
static void
arm_grace(struct session_table *t, struct session *s, int64_t now_ms)
{
	s->close_start_ms = now_ms;
	s->grace_end_ms = now_ms + profile_grace_ms(t, s->profile);
	stop_workers(s);
}

/* ARM_KILL: clocks kept across an agent restart (the unkillable limit
 * counts from the first kill). */
static void
arm_kill(struct session *s, int64_t now_ms)
{
	if (s->close_start_ms == 0)
		s->close_start_ms = now_ms;
	stop_workers(s);
	if (s->kill_start_ms == 0)
		s->kill_start_ms = now_ms;
	s->kill_backoff_ms = KILL_BACKOFF_MIN_MS;
	s->next_kill_ms = now_ms + s->kill_backoff_ms;
}

static void
kill_backoff(struct session *s, int64_t now_ms)
{
	s->kill_backoff_ms *= 2;
	if (s->kill_backoff_ms > KILL_BACKOFF_MAX_MS)
		s->kill_backoff_ms = KILL_BACKOFF_MAX_MS;
	s->next_kill_ms = now_ms + s->kill_backoff_ms;
}

/*
 * A controller resends its close with the same op while it waits. On the
 * same route (connection and survey) the new request replaces the old one:
 * one reply reaches the same place. Any other route gets its own reply
 * (PROTOCOL.md §3): a retry on a new connection must not take the answer
 * away from the first one, which may still be waiting.
 */
static void
drop_same_waiter(struct session *s, const struct server_req *retry)
{
	struct server_req **pp = &s->waiters, *req;

	while ((req = *pp) != NULL) {
		if (req->m.op == retry->m.op
		    && server_req_same_route(req, retry)) {
			*pp = req->next;
			server_req_free(req);
		} else
			pp = &req->next;
	}
}

/* A stopping session's grace may end earlier, never later. */
static void
shorten_grace(struct session *s, int64_t grace_end_ms)
{
	if (s->state == CLOSEFSM_STOPPING && grace_end_ms < s->grace_end_ms) {
		s->grace_end_ms = grace_end_ms;
		s->dirty = true;
	}
}

/* A close with deadline d may shorten grace to 80 % of d, never extend it. */
static void
session_fit_deadline(struct session_table *t, struct session *s,
    struct server_req *req, int64_t now_ms)
{
	int64_t d = (int64_t)req->m.u.close.deadline_ms;
	int64_t grace_end = now_ms + d * 8 / 10;

	req->reply_by_ms = now_ms + d;
	shorten_grace(s, grace_end);
	session_add_waiter(t, s, req);
}

/* Requests waiting on one session from distinct routes (a controller's
 * repeats replace each other): more is a flood, not a fleet. */
#define SESSION_MAX_WAITERS 64

static unsigned
count_waiters(const struct session *s)
{
	unsigned n = 0;

	for (const struct server_req *r = s->waiters; r != NULL; r = r->next)
		n++;
	return n;
}

void
session_add_waiter(
    struct session_table *t, struct session *s, struct server_req *req)
{
	drop_same_waiter(s, req);
	if (count_waiters(s) >= SESSION_MAX_WAITERS) {
		server_reply_code(t->srv, req, PROTO_CODE_REFUSED,
		    "too many requests wait on this session; retry later");
		return;
	}
	req->next = s->waiters;
	s->waiters = req;
}

/*
 * A session this agent does not know may be one it just left for the next
 * agent: "not found" would tell a close it is closed, and a renew that it
 * is gone (the controller stops renewing; the next agent lets the lease
 * lapse). Both get "refused": retry on the next agent.
 */
static bool
refuse_while_releasing(struct session_table *t, struct server_req *req)
{
	if (!t->releasing)
		return false;
	server_reply_code(t->srv, req, PROTO_CODE_REFUSED,
	    "the agent is restarting; retry on the next one");
	return true;
}

void
session_close(struct session_table *t, struct server_req *req)
{
	struct session *s = session_find(t, req->m.u.close.session);
	int64_t now = util_now_ms();

	if (s == NULL && refuse_while_releasing(t, req))
		return;
	if (s == NULL)
		s = session_adopt_cgroup(t, req->m.u.close.session);
	if (s == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
		return;
	}
	/* A cgroup adopted just now has no owner: an admin's to close. */
	if (!session_check_owner(t, s, req))
		return;
	if (s->state == CLOSEFSM_RUNNING || s->state == CLOSEFSM_OPENING)
		log_info("closing session %s (owner %s) for %s (deadline %llu "
		         "ms)",
		    s->id, session_owner_name(s), req->caller,
		    (unsigned long long)req->m.u.close.deadline_ms);
	if (s->state == CLOSEFSM_OPENING)
		session_open_abandon(s, "closed before every worker started");
	if (!session_feed(t, s, CLOSEFSM_CLOSE_REQUESTED, now,
	        &(struct close_ctx) { .req = req }))
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
	session_close_step(t, s, now);
}

void
session_renew(struct session_table *t, struct server_req *req)
{
	struct session *s = session_find(t, req->m.u.renew.session);
	uint64_t lease_ms = req->m.u.renew.lease_ms;

	if (s == NULL && refuse_while_releasing(t, req))
		return;
	if (s == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
		return;
	}
	if (!session_check_owner(t, s, req))
		return;
	if (s->state != CLOSEFSM_RUNNING && s->state != CLOSEFSM_OPENING) {
		server_reply_code(
		    t->srv, req, PROTO_CODE_REFUSED, "the session is closing");
		return;
	}
	/* lease_ms 0 removes the lease: the session lives until closed. */
	s->lease_end_ms = lease_ms > 0 ? util_now_ms() + (int64_t)lease_ms : 0;
	/* Acknowledged only once stored: a restart must not bring back the
	 * old lease. */
	if (session_persist(t, s) != 0) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot store the lease in the state directory");
		return;
	}
	server_reply_code(t->srv, req, PROTO_CODE_OK,
	    lease_ms > 0 ? "lease renewed" : "lease removed");
}

static bool
session_gone(struct session *s)
{
	/* The set first: reading cgroup.events is what clears its POLLPRI,
	 * so it must be read on every pass or poll() would spin. */
	bool set_empty = proctrack_set_empty(&s->set);

	return set_empty && session_count_alive(s) == 0;
}

/* A waiting request's reply time has come (0: it has none). */
static bool
reply_due(const struct server_req *req, int64_t now_ms)
{
	return req->reply_by_ms > 0 && req->reply_by_ms <= now_ms;
}

/* Answers the requests whose deadline came before the set emptied. */
static void
answer_overdue(struct session_table *t, struct session *s, int64_t now_ms)
{
	struct server_req **pp = &s->waiters, *req;

	while ((req = *pp) != NULL) {
		if (!reply_due(req, now_ms)) {
			pp = &req->next;
			continue;
		}
		*pp = req->next;
		req->next = NULL;
		log_warn(
		    "session %s: processes remain at the deadline", s->id);
		if (req->m.type == PROTO_OPEN)
			reply_open_failed(t, req, s, true);
		else
			session_reply_counts(t, req, PROTO_CODE_PARTIAL,
			    "processes remain after the kill; still killing",
			    session_counts(s, now_ms));
	}
}

/* The first close whose reply time has come, or NULL. */
static const struct server_req *
first_overdue(const struct session *s, int64_t now_ms)
{
	const struct server_req *req;

	for (req = s->waiters; req != NULL; req = req->next) {
		if (reply_due(req, now_ms))
			return req;
	}
	return NULL;
}

/*
 * Processes that outlive the kill by the limit are beyond the agent's
 * reach (uninterruptible sleep on a dead mount, a frozen v1 cgroup): the
 * node takes no new sessions until an operator has looked at it. A node
 * already unhealthy keeps its first reason.
 */
static void
mark_unhealthy(struct session_table *t, struct session *s, int64_t now_ms)
{
	s->unkillable_noted = true;
	if (t->unhealthy[0] != '\0')
		return;
	snprintf(t->unhealthy, sizeof(t->unhealthy),
	    "session %s: %u process(es) survived the kill for %lld ms", s->id,
	    session_counts(s, now_ms).remaining,
	    (long long)(now_ms - s->kill_start_ms));
	state_save_health(t->state, t->unhealthy);
	log_err("node marked unhealthy: %s", t->unhealthy);
}

static void
forget_session(struct session_table *t, struct session *s, int64_t now_ms)
{
	state_forget(t->state, s->id);
	/* Its workers' ends are logged one by one only with --verbose. */
	log_info("session %s (owner %s) closed in %lld ms: of %u worker(s), "
	         "%u ended on their own or on SIGTERM, %u were killed",
	    s->id, session_owner_name(s),
	    (long long)(now_ms - s->close_start_ms), s->nworkers,
	    session_count_state(s, PROTO_W_EXITED),
	    session_count_state(s, PROTO_W_KILLED));
}

static void
let_go(struct session *s)
{
	log_info("session %s left running for the next agent", s->id);
	proctrack_set_forget(&s->set);
}

/* Runs one action of closefsm.h for s. */
static void
session_act(struct session_table *t, struct session *s, enum closefsm_action a,
    int64_t now_ms, const struct close_ctx *c)
{
	switch (a) {
	case CLOSEFSM_ARM_GRACE:
		arm_grace(t, s, now_ms);
		break;
	case CLOSEFSM_ARM_KILL:
		arm_kill(s, now_ms);
		break;
	case CLOSEFSM_STORE:
		session_persist(t, s);
		break;
	case CLOSEFSM_SEND_TERM:
		terminate_session(s);
		break;
	case CLOSEFSM_KILL_SET:
		kill_session(s);
		metrics_count_kill();
		break;
	case CLOSEFSM_KILL_BACKOFF:
		kill_backoff(s, now_ms);
		break;
	case CLOSEFSM_ADD_WAITER:
		session_fit_deadline(t, s, c->req, now_ms);
		break;
	case CLOSEFSM_SHORTEN_GRACE:
		shorten_grace(s, c->grace_end_ms);
		break;
	case CLOSEFSM_FORGET:
		if (s->close_start_ms > 0)
			metrics_observe_close(now_ms - s->close_start_ms);
		forget_session(t, s, now_ms);
		break;
	case CLOSEFSM_REPLY_OPENED:
		session_reply_opened(t, s, now_ms);
		break;
	case CLOSEFSM_REPLY_OK:
		answer_waiters(t, s, now_ms);
		break;
	case CLOSEFSM_REPLY_PARTIAL:
		answer_overdue(t, s, now_ms);
		break;
	case CLOSEFSM_MARK_UNHEALTHY:
		mark_unhealthy(t, s, now_ms);
		break;
	case CLOSEFSM_LET_GO:
		let_go(s);
		break;
	case CLOSEFSM_NONE:
	case CLOSEFSM_NACTIONS:
		break;
	}
}

/*
 * The one place a session changes state: the table says what ev does, the
 * state changes first (so a STORE records it), then the actions run in
 * the table's order. Returns false when ev is not allowed in s's state.
 */
bool
session_feed(struct session_table *t, struct session *s,
    enum closefsm_event ev, int64_t now_ms, const struct close_ctx *c)
{
	struct closefsm_step st = closefsm_next(s->state, ev);

	if (!st.allowed)
		return false;
	s->state = st.next;
	for (int i = 0; i < CLOSEFSM_MAX_ACTIONS; i++) {
		if (st.actions[i] == CLOSEFSM_NONE)
			break;
		session_act(t, s, st.actions[i], now_ms, c);
	}
	return true;
}

/* The timers of a closing session with processes left: grace, then the
 * kill's backoff and the unkillable limit (measured at each kill). */
static void
feed_timers(struct session_table *t, struct session *s, int64_t now_ms)
{
	if (s->state == CLOSEFSM_STOPPING && now_ms >= s->grace_end_ms)
		session_feed(t, s, CLOSEFSM_GRACE_OVER, now_ms, NULL);
	else if (s->state == CLOSEFSM_KILLING && now_ms >= s->next_kill_ms) {
		session_feed(t, s, CLOSEFSM_KILL_RETRY_DUE, now_ms, NULL);
		if (!s->unkillable_noted
		    && now_ms - s->kill_start_ms
		        >= t->cfg->unkillable_limit_ms)
			session_feed(t, s, CLOSEFSM_UNKILLABLE, now_ms, NULL);
	}
}

void
session_close_step(struct session_table *t, struct session *s, int64_t now_ms)
{
	if (s->state != CLOSEFSM_STOPPING && s->state != CLOSEFSM_KILLING)
		return;
	if (!session_gone(s))
		feed_timers(t, s, now_ms);
	if (session_gone(s))
		session_feed(t, s, CLOSEFSM_SET_EMPTY, now_ms, NULL);
	else if (first_overdue(s, now_ms) != NULL)
		session_feed(t, s, CLOSEFSM_DEADLINE, now_ms, NULL);
}
