/*
 * Supervision: a worker's end (reaped, or seen on the pidfd of one an
 * earlier agent started), the profile's restart policy with its backoff,
 * and a running session's lease.
 */
#include "session_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/*
 * A worker that ends while its session runs is news; one that ends
 * because the session closes is expected, and the close's own line counts
 * them (forget_session()): one line per worker there is noise a 4,096-
 * worker close would fill the journal with, and a write per worker on the
 * loop while the close is timed.
 */
static void
log_worker_end(const struct session *s, const struct worker *w, int status)
{
	int level
	    = s->state == CLOSEFSM_RUNNING || s->state == CLOSEFSM_OPENING
	    ? LOG_INFO
	    : LOG_DEBUG;

	if (status == WORKER_STATUS_UNKNOWN)
		log_write(level,
		    "session %s worker %u (pid %d) ended, status unknown "
		    "(adopted: another agent was its parent)",
		    s->id, w->index, w->pid);
	else
		log_write(level,
		    "session %s worker %u (pid %d) ended, status 0x%x", s->id,
		    w->index, w->pid, status);
}

/* Worker w of s ended (reaped, or seen on its pidfd if adopted). */
void
session_note_worker_end(struct session_table *t, struct session *s,
    struct worker *w, int status, int64_t now_ms)
{
	worker_ended(w, status, s->state == CLOSEFSM_KILLING);
	/* A closing session's record is left as it is: a restarted agent
	 * checks every worker it lists against its pid and start time, and
	 * the record goes once the set is empty. Stored, each end cost a
	 * store per reaping pass: 3 to 7 stores per agent closing 16. */
	if (s->state == CLOSEFSM_RUNNING || s->state == CLOSEFSM_OPENING)
		s->dirty = true;
	log_worker_end(s, w, status);
	/* One that dies while its siblings start restarts once they have. */
	if (s->state == CLOSEFSM_RUNNING || s->state == CLOSEFSM_OPENING)
		session_plan_restart(t, s, w, now_ms);
}

/* An adopted worker's pidfd turns readable when it ends. */
static bool
pidfd_ended(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

void
session_check_adopted_workers(
    struct session_table *t, struct session *s, int64_t now_ms)
{
	for (uint32_t i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->adopted && worker_alive(w) && pidfd_ended(w->pidfd))
			session_note_worker_end(
			    t, s, w, WORKER_STATUS_UNKNOWN, now_ms);
	}
}

/* Backoff before restart number n+1: 1 s, 2 s, 4 s ... capped at 60 s. */
static int64_t
restart_backoff_ms(uint32_t n)
{
	return n >= 6 ? 60000 : 1000LL << n;
}

static bool
restart_wanted(const struct config_profile *p, const struct worker *w)
{
	bool failed
	    = !WIFEXITED(w->exit_status) || WEXITSTATUS(w->exit_status) != 0;

	if (p == NULL || w->restarts >= p->max_restarts)
		return false;
	return p->restart == CONFIG_RESTART_ALWAYS
	    || (p->restart == CONFIG_RESTART_ON_FAILURE && failed);
}

void
session_plan_restart(struct session_table *t, struct session *s,
    struct worker *w, int64_t now_ms)
{
	const struct config_profile *p
	    = config_find_profile(t->cfg, s->profile);

	if (!restart_wanted(p, w))
		return;
	w->restart_at_ms = now_ms + restart_backoff_ms(w->restarts);
	log_info("session %s worker %u: restart %u of %lld in %lld ms", s->id,
	    w->index, w->restarts + 1, (long long)p->max_restarts,
	    (long long)(w->restart_at_ms - now_ms));
}

/* Starts worker i again; a failure leaves it FAILED with the reason logged. */
static void
restart_worker(struct session_table *t, struct session *s, uint32_t i)
{
	const struct config_profile *p
	    = config_find_profile(t->cfg, s->profile);
	struct worker *w = &s->workers[i];
	struct worker_plan plan;
	char why[512] = "";
	int rv;

	w->restart_at_ms = 0;
	w->restarts++;
	metrics_count_restart();
	w->adopted = false;
	s->dirty = true;
	/* The new worker gets a new group: what is left of the old one would
	 * otherwise be forgotten by the pgroup backend. */
	proctrack_set_drop_group(&s->set, i);
	/* One worker: its own plan (the profile may have changed). */
	rv = p == NULL ? HPCXL_ENOTFOUND
	               : worker_plan_build(&plan, p, why, sizeof(why));
	if (rv == 0) {
		rv = session_spawn_worker(t, s, &plan, i, why, sizeof(why));
		worker_plan_free(&plan);
	}
	if (rv != 0) {
		w->state = PROTO_W_FAILED;
		log_warn("session %s worker %u: restart failed: %s", s->id, i,
		    why[0] != '\0' ? why : hpcxl_strerror(rv));
	}
}

static void
restart_due_workers(struct session_table *t, struct session *s, int64_t now_ms)
{
	for (uint32_t i = 0; i < s->nworkers; i++) {
		int64_t at = s->workers[i].restart_at_ms;

		if (at > 0 && now_ms >= at)
			restart_worker(t, s, i);
	}
}

void
session_running_step(
    struct session_table *t, struct session *s, int64_t now_ms)
{
	if (s->undo_open)
		session_feed(t, s, CLOSEFSM_OPEN_FAILED, now_ms, NULL);
	else if (s->lease_end_ms > 0 && now_ms >= s->lease_end_ms) {
		log_notice("session %s (owner %s): lease lapsed, closing",
		    s->id, session_owner_name(s));
		session_feed(t, s, CLOSEFSM_LEASE_LAPSED, now_ms, NULL);
	} else
		restart_due_workers(t, s, now_ms);
}
