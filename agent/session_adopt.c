/*
 * Sessions an earlier agent on this node left: the records it stored
 * (read back at start; each gets the RESTORED_ event of its stored phase)
 * and cgroups found without a record (a close still ends them).
 */
#include "session_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * A session this agent does not know may still have processes: an earlier
 * agent on this node ran it and was restarted or killed. Its cgroup is
 * adopted (with no known workers) so the close still ends everything.
 */
struct session *
session_adopt_cgroup(struct session_table *t, const char *id)
{
	struct proctrack_set set;
	struct session *s;

	if (proctrack_set_adopt(t->pt, id, 0, &set) != 0) {
		proctrack_set_destroy(&set);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		proctrack_set_destroy(&set);
		return NULL;
	}
	s->set = set;
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->profile, sizeof(s->profile), "%s", "unknown");
	s->state = CLOSEFSM_RUNNING;
	session_link(t, s);
	log_warn("session %s: adopting the cgroup an earlier agent left (no "
	         "owner: only admins may close it)",
	    id);
	return s;
}

/*
 * Takes back a worker an earlier agent started; returns true when it ended
 * while no agent watched it. The pidfd is opened first and the start time
 * checked after: if the pid was reused in between, the pidfd names the
 * stranger and the check fails, so a stranger is never signalled.
 */
static bool
reattach_worker(struct session *s, struct worker *w, pid_t pgid)
{
	bool was_alive = worker_alive(w);

	w->adopted = false;
	w->restart_at_ms = 0;
	/* Even with its leader gone, a group may hold the worker's helpers;
	 * the set forgets it if the number was reused. */
	proctrack_set_add(&s->set, w->index, pgid, w->start_ticks, false);
	if (!was_alive)
		return false;
	w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
	if (w->pidfd >= 0 && w->start_ticks != 0
	    && proctrack_start_ticks(w->pid) == w->start_ticks) {
		w->adopted = true;
		return false;
	}
	worker_ended(w, WORKER_STATUS_UNKNOWN, false);
	return true;
}

static enum closefsm_event
restored_event(enum state_phase p)
{
	switch (p) {
	case STATE_OPENING:
		return CLOSEFSM_RESTORED_OPENING;
	case STATE_STOPPING:
		return CLOSEFSM_RESTORED_STOPPING;
	case STATE_KILLING:
		return CLOSEFSM_RESTORED_KILLING;
	default:
		return CLOSEFSM_RESTORED_RUNNING;
	}
}

/* state_load_all() callback: r's workbook and workers become the session's.
 */
void
session_adopt_record(void *arg, struct state_session *r)
{
	struct session_table *t = arg;
	struct session *s = NULL;
	uint32_t alive = 0;

	/* readdir may show a record renamed meanwhile twice; once is enough.
	 */
	if (session_find(t, r->id) == NULL
	    && ((s = calloc(1, sizeof(*s))) == NULL
	        || proctrack_set_adopt(t->pt, r->id, r->nworkers, &s->set)
	            == HPCXL_ENOMEM))
		log_err("session %s: out of memory re-adopting it", r->id);
	if (s == NULL || s->set.ops == NULL) {
		free(s);
		free(r->workbook);
		free(r->workers);
		free(r->pgids);
		return;
	}
	memcpy(s->id, r->id, sizeof(s->id));
	memcpy(s->profile, r->profile, sizeof(s->profile));
	memcpy(s->owner, r->owner, sizeof(s->owner));
	s->workbook = r->workbook;
	s->workers = r->workers;
	s->nworkers = r->nworkers;
	s->lease_end_ms = r->lease_end_ms;
	s->close_start_ms = r->close_start_ms;
	s->grace_end_ms = r->grace_end_ms;
	s->kill_start_ms = r->kill_start_ms;
	/* The session is RUNNING until its RESTORED_ event, fed once every
	 * worker's group is back in the set (the kill needs them). */
	s->state = CLOSEFSM_RUNNING;
	for (uint32_t i = 0; i < s->nworkers; i++) {
		/* One that ended while no agent ran gets its restart policy
		 * if the session was not closing. */
		if (reattach_worker(s, &s->workers[i], r->pgids[i])
		    && (r->phase == STATE_OPENING
		        || r->phase == STATE_RUNNING))
			session_plan_restart(
			    t, s, &s->workers[i], util_now_ms());
		alive += worker_alive(&s->workers[i]);
	}
	free(r->pgids);
	s->dirty = true;
	session_link(t, s);
	log_notice("session %s (owner %s) re-adopted (%s): %u of %u "
	           "worker(s) alive",
	    s->id, session_owner_name(s), proctrack_set_kind(&s->set), alive,
	    s->nworkers);
	if (r->phase == STATE_OPENING)
		log_warn(
		    "session %s: its open was cut short; closing it", s->id);
	session_feed(t, s, restored_event(r->phase), util_now_ms(), NULL);
}
