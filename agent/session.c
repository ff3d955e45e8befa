/*
 * The session table: every session of this node, its stored record, its
 * counts and status, and the loop's step, which turns what the clocks and
 * the process sets say into each session's events (session_impl.h lists
 * the modules).
 */
#include "session_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"
#include "logcap.h"
#include "logsweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Worker logs are measured this often: a log may pass its cap by what a
 * worker writes in this time. */
#define LOGCAP_EVERY_MS 2000

/* The longest a pass spends starting workers before it polls again: a
 * ping waits at most this long behind an open of thousands. */
#define SPAWN_SLICE_MS 10

int
session_table_init(struct session_table *t, const struct config *cfg,
    const struct proctrack *pt, struct server *srv,
    const struct state_dir *state)
{
	int n;

	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	t->pt = pt;
	t->srv = srv;
	t->state = state;
	n = snprintf(
	    t->log_root, sizeof(t->log_root), "%s/logs", cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(t->log_root))
		return HPCXL_ECONFIG;
	if (mkdir(t->log_root, 0750) != 0 && errno != EEXIST) {
		log_err("cannot create %s: %s", t->log_root, strerror(errno));
		return HPCXL_ESYSTEM;
	}
	if (state_load_health(t->state, t->unhealthy, sizeof(t->unhealthy)))
		log_warn("node is unhealthy (%s); opens are refused until "
		         "an operator clears it",
		    t->unhealthy);
	n = (int)state_load_all(t->state, session_adopt_record, t);
	if (n > 0)
		log_notice(
		    "re-adopted %d session(s) from %s", n, t->state->sessions);
	return 0;
}

static enum state_phase
session_phase(const struct session *s)
{
	switch (s->state) {
	case CLOSEFSM_STOPPING:
		return STATE_STOPPING;
	case CLOSEFSM_KILLING:
	case CLOSEFSM_DONE:
		return STATE_KILLING;
	case CLOSEFSM_RELEASED: /* its workers run on for the next agent */
		return STATE_RUNNING;
	case CLOSEFSM_OPENING:
		return STATE_OPENING;
	default:
		return STATE_RUNNING;
	}
}

int
session_persist(struct session_table *t, struct session *s)
{
	pid_t pgids[PROTO_MAX_WORKERS];
	struct state_session r = {
		.workbook = s->workbook,
		.phase = session_phase(s),
		.lease_end_ms = s->lease_end_ms,
		.close_start_ms = s->close_start_ms,
		.grace_end_ms = s->grace_end_ms,
		.kill_start_ms = s->kill_start_ms,
		.nworkers = s->nworkers,
		.workers = s->workers,
		.pgids = pgids,
	};

	for (uint32_t i = 0; i < s->nworkers && i < PROTO_MAX_WORKERS; i++)
		pgids[i] = proctrack_set_group(&s->set, i);
	snprintf(r.id, sizeof(r.id), "%s", s->id);
	snprintf(r.profile, sizeof(r.profile), "%s", s->profile);
	memcpy(r.owner, s->owner, sizeof(r.owner));
	/* A failed store is retried at the end of every pass. */
	s->dirty = state_save(t->state, &r) != 0;
	return s->dirty ? HPCXL_ESYSTEM : 0;
}

/* A DONE or RELEASED session is gone even before the step unlinks it. */
struct session *
session_find(const struct session_table *t, const char *id)
{
	struct session *s;

	for (s = t->head; s != NULL; s = s->next) {
		if (strcmp(s->id, id) == 0 && s->state != CLOSEFSM_DONE
		    && s->state != CLOSEFSM_RELEASED)
			return s;
	}
	return NULL;
}

bool
session_caller_owns(
    const struct session_table *t, const struct session *s, const char *caller)
{
	return config_is_admin(t->cfg, caller)
	    || (s->owner[0] != '\0' && strcmp(s->owner, caller) == 0);
}

bool
session_check_owner(
    struct session_table *t, const struct session *s, struct server_req *req)
{
	char msg[HPCXL_ID_MAX + 64];

	if (session_caller_owns(t, s, req->caller))
		return true;
	/* The owner is not named: it is none of this caller's business. */
	log_info("%s of session %s (owner %s) refused to %s: not the owner",
	    proto_type_name(req->m.type), s->id, session_owner_name(s),
	    req->caller);
	snprintf(msg, sizeof(msg), "not the owner of session %s", s->id);
	server_reply_code(t->srv, req, PROTO_CODE_REFUSED, msg);
	return false;
}

const char *
session_owner_name(const struct session *s)
{
	return s->owner[0] != '\0' ? s->owner : "(no owner)";
}

void
session_link(struct session_table *t, struct session *s)
{
	s->next = t->head;
	t->head = s;
}

void
session_free(struct session *s)
{
	uint32_t i;

	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].pidfd >= 0)
			close(s->workers[i].pidfd);
	}
	while (s->waiters != NULL) {
		struct server_req *req = s->waiters;

		s->waiters = req->next;
		server_req_free(req);
	}
	worker_plan_free(&s->plan);
	plan_job_abandon(s->plan_job);
	proctrack_set_destroy(&s->set);
	free(s->workbook);
	free(s->workers);
	free(s);
}

uint32_t
session_count_state(const struct session *s, enum proto_wstate st)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += s->workers[i].state == st;
	return n;
}

uint32_t
session_count_alive(const struct session *s)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += worker_alive(&s->workers[i]);
	return n;
}

struct proto_counts
session_counts_gone(const struct session *s, int64_t now_ms)
{
	return (struct proto_counts) {
		.workers = s->nworkers,
		.exited = session_count_state(s, PROTO_W_EXITED),
		.killed = session_count_state(s, PROTO_W_KILLED),
		.elapsed_ms = s->close_start_ms > 0
		    ? (uint64_t)(now_ms - s->close_start_ms)
		    : 0,
	};
}

struct proto_counts
session_counts(const struct session *s, int64_t now_ms)
{
	struct proto_counts c = session_counts_gone(s, now_ms);

	/* Unreaped workers count even where the set no longer lists them. */
	c.remaining = proctrack_set_count(&s->set);
	if (c.remaining < session_count_alive(s))
		c.remaining = session_count_alive(s);
	return c;
}

int
session_info(const struct session *s, struct proto_session *info)
{
	/* An open under way shows the workers started so far. */
	uint32_t i,
	    n = s->state == CLOSEFSM_OPENING ? s->nstarted : s->nworkers;

	info->session = (char *)s->id;
	info->profile = (char *)s->profile;
	info->owner = s->owner[0] != '\0' ? (char *)s->owner : NULL;
	info->nworkers = n;
	info->workers = calloc(n + 1, sizeof(*info->workers));
	if (info->workers == NULL)
		return HPCXL_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct worker *w = &s->workers[i];

		info->workers[i] = (struct proto_worker) { w->index, w->pid,
			w->state, w->exit_status, w->restarts };
	}
	return 0;
}

void
session_reply_counts(struct session_table *t, struct server_req *req,
    enum proto_code code, const char *msg, struct proto_counts c)
{
	struct proto_reply r = { .code = code, .msg = (char *)msg };

	r.has_counts = true;
	r.counts = c;
	server_reply(t->srv, req, &r);
}

void
session_log_path(const struct session_table *t, const struct session *s,
    uint32_t i, char *path, size_t len)
{
	snprintf(path, len, "%s/%s/worker-%u.log", t->log_root, s->id, i);
}

static void
cap_session_logs(const struct session_table *t, const struct session *s)
{
	char path[SESSION_LOG_PATH_MAX];

	for (uint32_t i = 0; i < s->nworkers; i++) {
		session_log_path(t, s, i, path, sizeof(path));
		logcap_enforce(path, t->cfg->log_max_bytes);
	}
}

static void
cap_logs(struct session_table *t, int64_t now_ms)
{
	if (t->cfg->log_max_bytes <= 0 || now_ms < t->next_logcap_ms)
		return;
	t->next_logcap_ms = now_ms + LOGCAP_EVERY_MS;
	for (const struct session *s = t->head; s != NULL; s = s->next)
		cap_session_logs(t, s);
}

/* logsweep_in_use_fn: a folder of a session in the table, whatever its
 * state, is still of use (a re-adopted one's workers write there). */
static bool
log_in_use(void *arg, const char *id)
{
	const struct session_table *t = arg;

	for (const struct session *s = t->head; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			return true;
	return false;
}

/* On the loop's timer (session_table_next_wakeup()); the first pass after
 * start sweeps what earlier agents left. */
static void
sweep_logs(struct session_table *t, int64_t now_ms)
{
	int64_t keep_s = t->cfg->log_retention_s;

	if (keep_s <= 0 || now_ms < t->next_logsweep_ms)
		return;
	t->next_logsweep_ms = now_ms + logsweep_period_ms(keep_s);
	logsweep_run(t->log_root, keep_s, log_in_use, t);
}

/* Turns what the session's clocks and process set say into events. */
static void
session_step(struct session_table *t, struct session *s, int64_t now_ms)
{
	session_check_adopted_workers(t, s, now_ms);
	if (s->state == CLOSEFSM_OPENING)
		session_open_step(t, s, now_ms);
	else if (s->state == CLOSEFSM_RUNNING)
		session_running_step(t, s, now_ms);
	else
		session_close_step(t, s, now_ms);
}

void
session_table_step(struct session_table *t, int64_t now_ms)
{
	struct session **pp = &t->head, *s;

	t->spawn_until_ms = util_now_ms() + SPAWN_SLICE_MS;
	while ((s = *pp) != NULL) {
		session_step(t, s, now_ms);
		if (s->state == CLOSEFSM_DONE) {
			*pp = s->next;
			logsweep_mark_closed(t->log_root, s->id);
			session_free(s);
			continue;
		}
		/* One store per pass for what changed without a transition:
		 * worker ends (before the close) and restarts, renewals,
		 * shortened grace. */
		if (s->dirty)
			session_persist(t, s);
		pp = &s->next;
	}
	cap_logs(t, now_ms);
	sweep_logs(t, now_ms);
}

static void
min_time(int64_t *best, int64_t t)
{
	if (*best < 0 || t < *best)
		*best = t;
}

int64_t
session_table_next_wakeup(const struct session_table *t)
{
	const struct server_req *req;
	const struct session *s;
	int64_t best = -1;

	if (t->head != NULL && t->cfg->log_max_bytes > 0)
		min_time(&best, t->next_logcap_ms);
	/* Even with no session: closed ones' logs expire meanwhile. */
	if (t->cfg->log_retention_s > 0)
		min_time(&best, t->next_logsweep_ms);
	for (s = t->head; s != NULL; s = s->next) {
		/* Workers left to start: poll, then straight back. */
		if (s->state == CLOSEFSM_OPENING && s->plan_job == NULL)
			min_time(&best, util_now_ms());
		if (s->state == CLOSEFSM_RUNNING && s->lease_end_ms > 0)
			min_time(&best, s->lease_end_ms);
		for (uint32_t i = 0;
		     s->state == CLOSEFSM_RUNNING && i < s->nworkers; i++) {
			if (s->workers[i].restart_at_ms > 0)
				min_time(&best, s->workers[i].restart_at_ms);
		}
		if (s->state == CLOSEFSM_STOPPING)
			min_time(&best, s->grace_end_ms);
		if (s->state == CLOSEFSM_KILLING)
			min_time(&best, s->next_kill_ms);
		for (req = s->waiters; req != NULL; req = req->next) {
			if (req->reply_by_ms > 0)
				min_time(&best, req->reply_by_ms);
		}
	}
	return best;
}

static void
add_pollfd(struct pollfd *fds, size_t max, size_t *n, int fd, short events)
{
	if (*n < max)
		fds[*n] = (struct pollfd) { .fd = fd, .events = events };
	(*n)++;
}

size_t
session_table_pollfds(
    const struct session_table *t, struct pollfd *fds, size_t max)
{
	const struct session *s;
	size_t n = 0;

	for (s = t->head; s != NULL; s = s->next) {
		/* cgroup.events signals a change with POLLPRI. */
		int set_fd = proctrack_set_pollfd(&s->set);

		if (s->state != CLOSEFSM_RUNNING
		    && s->state != CLOSEFSM_OPENING && set_fd >= 0)
			add_pollfd(fds, max, &n, set_fd, POLLPRI);
		if (s->state == CLOSEFSM_OPENING && s->plan_job != NULL)
			add_pollfd(
			    fds, max, &n, plan_job_fd(s->plan_job), POLLIN);
		/* Not our children: no SIGCHLD, their pidfd says they ended.
		 */
		for (uint32_t i = 0; i < s->nworkers; i++) {
			const struct worker *w = &s->workers[i];

			if (w->adopted && worker_alive(w) && w->pidfd >= 0)
				add_pollfd(fds, max, &n, w->pidfd, POLLIN);
		}
	}
	return n;
}

/* Records pid's end in the session that ran it; false if none did. */
static bool
record_worker_end(struct session_table *t, pid_t pid, int status)
{
	struct session *s;
	uint32_t i;

	for (s = t->head; s != NULL; s = s->next) {
		for (i = 0; i < s->nworkers; i++) {
			struct worker *w = &s->workers[i];

			if (w->pid != pid || !worker_alive(w))
				continue;
			session_note_worker_end(
			    t, s, w, status, util_now_ms());
			return true;
		}
	}
	return false;
}

void
session_table_reaped(struct session_table *t, pid_t pid, int status)
{
	struct session *s;

	record_worker_end(t, pid, status);
	for (s = t->head; s != NULL; s = s->next)
		proctrack_set_reaped(&s->set, pid);
}

void
session_table_prune(struct session_table *t)
{
	struct session *s;

	/* pgroup: forget every group that just emptied, in every state, so a
	 * group number reused later by a stranger is never signalled. */
	for (s = t->head; s != NULL; s = s->next)
		proctrack_set_prune(&s->set);
}

void
session_table_close_all(struct session_table *t, int64_t deadline_ms)
{
	struct session *s;
	int64_t now = util_now_ms();

	struct close_ctx c = { .grace_end_ms = now + deadline_ms * 8 / 10 };

	for (s = t->head; s != NULL; s = s->next) {
		if (s->state == CLOSEFSM_OPENING)
			session_open_abandon(s, "the agent is stopping");
		session_feed(t, s, CLOSEFSM_AGENT_STOPPING, now, &c);
	}
}

void
session_table_release_running(struct session_table *t)
{
	struct session **pp = &t->head, *s;

	t->releasing = true;
	while ((s = *pp) != NULL) {
		if (s->state == CLOSEFSM_OPENING)
			session_open_abandon(s, "the agent is restarting");
		if (!session_feed(
		        t, s, CLOSEFSM_AGENT_RELEASE, util_now_ms(), NULL)
		    || s->state != CLOSEFSM_RELEASED) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		session_free(s);
	}
}

void
session_table_kill_all(struct session_table *t)
{
	struct session *s;
	int64_t now = util_now_ms();

	/* Fed until KILLING: a running session gets SIGTERM first. */
	for (s = t->head; s != NULL; s = s->next) {
		bool fed = true;

		if (s->state == CLOSEFSM_OPENING)
			session_open_abandon(s, "the agent is stopping");
		while (fed && s->state != CLOSEFSM_KILLING)
			fed = session_feed(
			    t, s, CLOSEFSM_AGENT_KILL, now, NULL);
	}
}

const char *
session_table_unhealthy(const struct session_table *t)
{
	return t->unhealthy[0] != '\0' ? t->unhealthy : NULL;
}

void
session_clear_health(struct session_table *t, struct server_req *req)
{
	bool was = t->unhealthy[0] != '\0';

	/* The mark says an operator must look at the node first. */
	if (!config_is_admin(t->cfg, req->caller)) {
		log_info("clear refused to %s: not an admin", req->caller);
		server_reply_code(t->srv, req, PROTO_CODE_REFUSED,
		    "only the agent's admins may clear the unhealthy mark");
		return;
	}
	if (was && state_save_health(t->state, NULL) != 0) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot remove the stored unhealthy mark");
		return;
	}
	if (was)
		log_notice("unhealthy mark cleared by %s (was: %s)",
		    req->caller, t->unhealthy);
	t->unhealthy[0] = '\0';
	server_reply_code(
	    t->srv, req, PROTO_CODE_OK, was ? "cleared" : "healthy");
}

bool
session_table_empty(const struct session_table *t)
{
	return t->head == NULL;
}

size_t
session_table_count(const struct session_table *t)
{
	size_t n = 0;

	/* DONE and RELEASED ones are gone already (session_find()). */
	for (const struct session *s = t->head; s != NULL; s = s->next)
		n += s->state != CLOSEFSM_DONE
		    && s->state != CLOSEFSM_RELEASED;
	return n;
}

/* The session named only, or without a name every session the caller
 * may see (its own; an admin's: all). */
static bool
session_listed(const struct session_table *t, const struct session *s,
    const char *only, const char *caller)
{
	if (only != NULL)
		return strcmp(only, s->id) == 0;
	return session_caller_owns(t, s, caller);
}

static size_t
session_list(const struct session_table *t, const struct server_req *req,
    struct proto_session *infos, size_t max)
{
	const char *only = req->m.u.status.session;
	const struct session *s;
	size_t n = 0;

	for (s = t->head; s != NULL && n < max; s = s->next) {
		if (!session_listed(t, s, only, req->caller))
			continue;
		if (session_info(s, &infos[n]) == 0)
			n++;
	}
	return n;
}

/* The status of one session someone else owns is refused (req answered:
 * false), as its close and renew are. */
static bool
status_allowed(struct session_table *t, struct server_req *req)
{
	const char *only = req->m.u.status.session;

	for (const struct session *s = t->head; only != NULL && s != NULL;
	     s = s->next) {
		if (strcmp(only, s->id) == 0)
			return session_check_owner(t, s, req);
	}
	return true;
}

void
session_status(struct session_table *t, struct server_req *req)
{
	const char *only = req->m.u.status.session;
	struct proto_reply r = { .code = PROTO_CODE_OK, .msg = "" };
	struct proto_session *infos;
	size_t n = 0, i;

	if (!status_allowed(t, req))
		return;
	for (const struct session *s = t->head; s != NULL; s = s->next)
		n++;
	if ((infos = calloc(n + 1, sizeof(*infos))) == NULL) {
		server_reply_code(
		    t->srv, req, PROTO_CODE_ERROR, "out of memory");
		return;
	}
	n = session_list(t, req, infos, n);
	if (only != NULL && n == 0) {
		r.code = PROTO_CODE_NOT_FOUND;
		r.msg = "no such session on this node";
	}
	r.backend = (char *)proctrack_backend_name(t->pt);
	r.unhealthy = (char *)session_table_unhealthy(t);
	r.has_sessions = true;
	r.nsessions = (uint32_t)n;
	r.sessions = infos;
	server_reply(t->srv, req, &r);
	for (i = 0; i < n; i++)
		free(infos[i].workers);
	free(infos);
}

void
session_table_fini(struct session_table *t)
{
	struct session *s;

	while ((s = t->head) != NULL) {
		t->head = s->next;
		session_free(s);
	}
}
