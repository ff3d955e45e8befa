#include "session.h"

#include "closefsm.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"
#include "logcap.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Worker logs are measured this often: a log may pass its cap by what a
 * worker writes in this time. */
#define LOGCAP_EVERY_MS 2000

/* First re-kill after this long, doubling up to KILL_BACKOFF_MAX_MS. */
#define KILL_BACKOFF_MIN_MS 50
#define KILL_BACKOFF_MAX_MS 1000

struct session {
	char id[HPCXL_ID_MAX + 1];
	char profile[HPCXL_ID_MAX + 1];
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
	struct server_req *waiters; /* closes waiting for the end */
	bool dirty; /* changed since last stored (or the store failed) */
	bool opening; /* workers being started: stored as "opening" */
	bool unkillable_noted; /* already marked the node unhealthy */
	struct session *next;
};

static void session_adopt_record(void *arg, struct state_session *r);
static void plan_restart(struct session_table *t, struct session *s,
    struct worker *w, int64_t now_ms);

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

/* ---- the stored record ------------------------------------------------ */

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
	default:
		return s->opening ? STATE_OPENING : STATE_RUNNING;
	}
}

static int
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
	/* A failed store is retried at the end of every pass. */
	s->dirty = state_save(t->state, &r) != 0;
	return s->dirty ? HPCXL_ESYSTEM : 0;
}

static struct session *
session_find(const struct session_table *t, const char *id)
{
	struct session *s;

	for (s = t->head; s != NULL; s = s->next) {
		if (strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

static void
session_free(struct session *s)
{
	uint32_t i;

	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].pidfd >= 0)
			close(s->workers[i].pidfd);
	}
	proctrack_set_destroy(&s->set);
	free(s->workbook);
	free(s->workers);
	free(s);
}

/* ---- counts and replies -------------------------------------------- */

static uint32_t
count_state(const struct session *s, enum proto_wstate st)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += s->workers[i].state == st;
	return n;
}

static uint32_t
count_alive(const struct session *s)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += worker_alive(&s->workers[i]);
	return n;
}

static struct proto_counts
session_counts(const struct session *s, int64_t now_ms)
{
	struct proto_counts c = {
		.workers = s->nworkers,
		.exited = count_state(s, PROTO_W_EXITED),
		.killed = count_state(s, PROTO_W_KILLED),
	};

	/* Unreaped workers count even where the set no longer lists them. */
	c.remaining = proctrack_set_count(&s->set);
	if (c.remaining < count_alive(s))
		c.remaining = count_alive(s);
	c.elapsed_ms = s->close_start_ms > 0
	    ? (uint64_t)(now_ms - s->close_start_ms)
	    : 0;
	return c;
}

/* Fills a proto_session that borrows s's strings; free info->workers. */
static int
session_info(const struct session *s, struct proto_session *info)
{
	uint32_t i;

	info->session = (char *)s->id;
	info->profile = (char *)s->profile;
	info->nworkers = s->nworkers;
	info->workers = calloc(s->nworkers + 1, sizeof(*info->workers));
	if (info->workers == NULL)
		return HPCXL_ENOMEM;
	for (i = 0; i < s->nworkers; i++) {
		const struct worker *w = &s->workers[i];

		info->workers[i] = (struct proto_worker) { w->index, w->pid,
			w->state, w->exit_status, w->restarts };
	}
	return 0;
}

static void
reply_counts(struct session_table *t, struct server_req *req,
    enum proto_code code, const char *msg, struct proto_counts c)
{
	struct proto_reply r = { .code = code, .msg = (char *)msg };

	r.has_counts = true;
	r.counts = c;
	server_reply(t->srv, req, &r);
}

/*
 * Answers every waiting close and empties the list. Newest first: when a
 * connection has more waiters than nng queues replies (two), the reply
 * most likely still awaited goes first (a cooked surveyor abandons its
 * older surveys).
 */
static void
answer_waiters(struct session_table *t, struct session *s,
    enum proto_code code, const char *msg, int64_t now_ms)
{
	struct server_req *req;

	while ((req = s->waiters) != NULL) {
		s->waiters = req->next;
		req->next = NULL;
		reply_counts(t, req, code, msg, session_counts(s, now_ms));
	}
}

/* ---- open -------------------------------------------------------------- */

static int
make_log_dir(
    const struct session_table *t, const char *id, char *dir, size_t len)
{
	int n = snprintf(dir, len, "%s/%s", t->log_root, id);

	if (n < 0 || (size_t)n >= len)
		return HPCXL_ESYSTEM;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return HPCXL_ESYSTEM;
	return 0;
}

static int64_t
profile_grace_ms(const struct session_table *t, const char *profile)
{
	const struct config_profile *p = config_find_profile(t->cfg, profile);

	return p != NULL && p->stop_grace_ms >= 0 ? p->stop_grace_ms
	                                          : t->cfg->default_grace_ms;
}

/* Spawns worker i of s; why gets the reason on failure. */
static int
spawn_one(struct session_table *t, struct session *s,
    const struct config_profile *p, const char *path, const char *log_dir,
    uint32_t i, char *why, size_t whylen)
{
	struct worker_spec spec = { .path = path, .argv = p->argv };
	char log_path[PATH_MAX + 32];
	char **envp;
	int rv;

	snprintf(log_path, sizeof(log_path), "%s/worker-%u.log", log_dir, i);
	envp = worker_env_build(s->id, t->cfg->node, i, s->workbook);
	if (envp == NULL)
		return HPCXL_ENOMEM;
	spec.envp = envp;
	spec.profile = p;
	spec.workdir = p->workdir;
	spec.log_path = log_path;
	spec.set = &s->set;
	s->workers[i].index = i;
	rv = worker_spawn(&s->workers[i], &spec, why, whylen);
	worker_env_free(envp);
	if (rv == 0) {
		s->workers[i].start_ticks
		    = proctrack_start_ticks(s->workers[i].pid);
		s->workers[i].adopted = false;
		/* The worker leads its own group. */
		proctrack_set_add(
		    &s->set, i, s->workers[i].pid, s->workers[i].start_ticks);
	}
	return rv;
}

static uint32_t
open_worker_count(const struct proto_open *o)
{
	long n;

	if (!o->per_core)
		return o->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (uint32_t)n : 1;
}

static struct session *
session_new(const struct proto_open *o, uint32_t n)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->workers = calloc(n, sizeof(*s->workers));
	if (o->workbook != NULL)
		s->workbook = strdup(o->workbook);
	if (s->workers == NULL
	    || (o->workbook != NULL && s->workbook == NULL)) {
		free(s->workbook);
		free(s->workers);
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		s->workers[i].pidfd = -1;
		s->workers[i].exit_status = -1;
		s->workers[i].state = PROTO_W_FAILED;
	}
	snprintf(s->id, sizeof(s->id), "%s", o->session);
	snprintf(s->profile, sizeof(s->profile), "%s", o->profile);
	s->state = CLOSEFSM_RUNNING;
	return s;
}

/* Starts every worker; on failure the started ones are being killed. */
static int
session_start(struct session_table *t, struct session *s,
    const struct proto_open *o, char *why, size_t whylen)
{
	const struct config_profile *p
	    = config_find_profile(t->cfg, o->profile);
	char log_dir[PATH_MAX];
	char *path = NULL;
	uint32_t i;
	int rv;

	if ((rv = proctrack_set_create(t->pt, s->id, s->nworkers, &s->set))
	    != 0) {
		snprintf(why, whylen, "cannot create the process set: %s",
		    hpcxl_strerror(rv));
		return rv;
	}
	if ((rv = make_log_dir(t, s->id, log_dir, sizeof(log_dir))) != 0) {
		snprintf(why, whylen, "cannot create log directory");
		return rv;
	}
	if ((rv = worker_resolve(p->argv[0], &path, why, whylen)) != 0)
		return rv;
	for (i = 0; i < s->nworkers && rv == 0; i++)
		rv = spawn_one(t, s, p, path, log_dir, i, why, whylen);
	free(path);
	return rv;
}

/* What an event's actions need beyond the session: the close request
 * (ADD_WAITER), the agent's shutdown grace end (SHORTEN_GRACE). */
struct close_ctx {
	struct server_req *req;
	int64_t grace_end_ms;
};

static bool session_feed(struct session_table *t, struct session *s,
    enum closefsm_event ev, int64_t now_ms, const struct close_ctx *c);
static void restart_due_workers(
    struct session_table *t, struct session *s, int64_t now_ms);

static void
reply_unhealthy(struct session_table *t, struct server_req *req)
{
	struct proto_reply r = { .code = PROTO_CODE_REFUSED };
	char msg[sizeof(t->unhealthy) + 32];

	snprintf(msg, sizeof(msg), "node unhealthy: %s", t->unhealthy);
	r.msg = msg;
	r.unhealthy = t->unhealthy;
	server_reply(t->srv, req, &r);
}

static void
reply_opened(
    struct session_table *t, struct server_req *req, const struct session *s)
{
	struct proto_reply r = { .code = PROTO_CODE_OK, .msg = "opened" };
	struct proto_session info;

	r.has_counts = true;
	r.counts.workers = s->nworkers;
	if (session_info(s, &info) == 0) {
		r.has_sessions = true;
		r.nsessions = 1;
		r.sessions = &info;
	}
	server_reply(t->srv, req, &r);
	if (r.has_sessions)
		free(info.workers);
}

void
session_open(struct session_table *t, struct server_req *req)
{
	const struct proto_open *o = &req->m.u.open;
	char why[512] = "";
	struct session *s;
	uint32_t n = open_worker_count(o);
	int rv;

	if (t->unhealthy[0] != '\0') {
		reply_unhealthy(t, req);
		return;
	}
	if (session_find(t, o->session) != NULL) {
		snprintf(
		    why, sizeof(why), "session %s already exists", o->session);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
		return;
	}
	if (config_find_profile(t->cfg, o->profile) == NULL) {
		snprintf(why, sizeof(why), "unknown profile '%s'", o->profile);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
		return;
	}
	if (n == 0 || n > PROTO_MAX_WORKERS
	    || (s = session_new(o, n)) == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot allocate the session");
		return;
	}
	s->nworkers = n;
	s->next = t->head;
	t->head = s;
	if (o->lease_ms > 0)
		s->lease_end_ms = util_now_ms() + (int64_t)o->lease_ms;
	/* Stored before the first fork: an agent killed while spawning
	 * leaves a record, and the next one undoes the open. */
	s->opening = true;
	rv = session_persist(t, s);
	if (rv == 0)
		rv = session_start(t, s, o, why, sizeof(why));
	s->opening = false;
	if (rv == 0)
		rv = session_persist(t, s);
	if (rv != 0) {
		/* Spawning explains its system errors; a failed store not. */
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s",
			    rv == HPCXL_ESYSTEM
			        ? "cannot store the session in "
			          "the state directory"
			        : hpcxl_strerror(rv));
		log_warn("open %s failed: %s", s->id, why);
		/* Nothing may stay running: the started workers are killed
		 * and the session ends through the normal state machine. */
		session_feed(t, s, CLOSEFSM_OPEN_FAILED, util_now_ms(), NULL);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
		return;
	}
	log_info("session %s opened: %u worker(s) of profile %s", s->id, n,
	    s->profile);
	reply_opened(t, req, s);
}

/* ---- close ------------------------------------------------------------- */

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

/* Every process of the session gets sig exactly once. */
static void
signal_session(struct session *s, int sig)
{
	proctrack_set_signal(&s->set, sig, signal_worker, s);
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
session_fit_deadline(struct session *s, struct server_req *req, int64_t now_ms)
{
	int64_t d = (int64_t)req->m.u.close.deadline_ms;
	int64_t grace_end = now_ms + d * 8 / 10;

	req->reply_by_ms = now_ms + d;
	shorten_grace(s, grace_end);
	drop_same_waiter(s, req);
	req->next = s->waiters;
	s->waiters = req;
}

/*
 * A session this agent does not know may still have processes: an earlier
 * agent on this node ran it and was restarted or killed. Its cgroup is
 * adopted (with no known workers) so the close still ends everything.
 */
static struct session *
session_adopt(struct session_table *t, const char *id)
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
	s->next = t->head;
	t->head = s;
	log_warn("session %s: adopting the cgroup an earlier agent left", id);
	return s;
}

/* ---- re-adoption after an agent restart --------------------------------- */

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
	proctrack_set_add(&s->set, w->index, pgid, w->start_ticks);
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
static void
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
			plan_restart(t, s, &s->workers[i], util_now_ms());
		alive += worker_alive(&s->workers[i]);
	}
	free(r->pgids);
	s->dirty = true;
	s->next = t->head;
	t->head = s;
	log_notice("session %s re-adopted (%s): %u of %u worker(s) alive",
	    s->id, proctrack_set_kind(&s->set), alive, s->nworkers);
	if (r->phase == STATE_OPENING)
		log_warn(
		    "session %s: its open was cut short; closing it", s->id);
	session_feed(t, s, restored_event(r->phase), util_now_ms(), NULL);
}

/* Worker w of s ended (reaped, or seen on its pidfd if adopted). */
static void
note_worker_end(struct session_table *t, struct session *s, struct worker *w,
    int status, int64_t now_ms)
{
	worker_ended(w, status, s->state == CLOSEFSM_KILLING);
	s->dirty = true;
	log_info("session %s worker %u (pid %d) ended, status 0x%x", s->id,
	    w->index, w->pid, status);
	if (s->state == CLOSEFSM_RUNNING)
		plan_restart(t, s, w, now_ms);
}

/* An adopted worker's pidfd turns readable when it ends. */
static bool
pidfd_ended(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

static void
check_adopted_workers(
    struct session_table *t, struct session *s, int64_t now_ms)
{
	for (uint32_t i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->adopted && worker_alive(w) && pidfd_ended(w->pidfd))
			note_worker_end(
			    t, s, w, WORKER_STATUS_UNKNOWN, now_ms);
	}
}

void
session_close(struct session_table *t, struct server_req *req)
{
	struct session *s = session_find(t, req->m.u.close.session);
	int64_t now = util_now_ms();

	if (s == NULL && t->releasing) {
		/* It may be one just left for the next agent: "not found"
		 * would tell the controller it is closed. */
		server_reply_code(t->srv, req, PROTO_CODE_REFUSED,
		    "the agent is restarting; retry on the next one");
		return;
	}
	if (s == NULL)
		s = session_adopt(t, req->m.u.close.session);
	if (s == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
		return;
	}
	if (s->state == CLOSEFSM_RUNNING)
		log_info("closing session %s (deadline %llu ms)", s->id,
		    (unsigned long long)req->m.u.close.deadline_ms);
	if (!session_feed(t, s, CLOSEFSM_CLOSE_REQUESTED, now,
	        &(struct close_ctx) { .req = req }))
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
	session_table_step(t, now);
}

void
session_renew(struct session_table *t, struct server_req *req)
{
	struct session *s = session_find(t, req->m.u.renew.session);
	uint64_t lease_ms = req->m.u.renew.lease_ms;

	if (s == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_NOT_FOUND,
		    "no such session on this node");
		return;
	}
	if (s->state != CLOSEFSM_RUNNING) {
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

/* ---- the state machine ------------------------------------------------- */

static bool
session_gone(struct session *s)
{
	/* The set first: reading cgroup.events is what clears its POLLPRI,
	 * so it must be read on every pass or poll() would spin. */
	bool set_empty = proctrack_set_empty(&s->set);

	return set_empty && count_alive(s) == 0;
}

/* Answers the closes whose deadline came before the set emptied. */
static void
answer_overdue(struct session_table *t, struct session *s, int64_t now_ms)
{
	struct server_req **pp = &s->waiters, *req;

	while ((req = *pp) != NULL) {
		if (req->reply_by_ms > now_ms) {
			pp = &req->next;
			continue;
		}
		*pp = req->next;
		req->next = NULL;
		log_warn(
		    "session %s: processes remain at the deadline", s->id);
		reply_counts(t, req, PROTO_CODE_PARTIAL,
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
		if (req->reply_by_ms <= now_ms)
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
	log_info("session %s closed in %lld ms", s->id,
	    (long long)(now_ms - s->close_start_ms));
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
		/* SIGCONT first: a stopped worker cannot act on SIGTERM. */
		signal_session(s, SIGCONT);
		signal_session(s, SIGTERM);
		break;
	case CLOSEFSM_KILL_SET:
		kill_session(s);
		break;
	case CLOSEFSM_KILL_BACKOFF:
		kill_backoff(s, now_ms);
		break;
	case CLOSEFSM_ADD_WAITER:
		session_fit_deadline(s, c->req, now_ms);
		break;
	case CLOSEFSM_SHORTEN_GRACE:
		shorten_grace(s, c->grace_end_ms);
		break;
	case CLOSEFSM_FORGET:
		forget_session(t, s, now_ms);
		break;
	case CLOSEFSM_REPLY_OK:
		answer_waiters(t, s, PROTO_CODE_OK, "closed", now_ms);
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
static bool
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

static void
step_running(struct session_table *t, struct session *s, int64_t now_ms)
{
	if (s->lease_end_ms > 0 && now_ms >= s->lease_end_ms) {
		log_notice("session %s: lease lapsed, closing", s->id);
		session_feed(t, s, CLOSEFSM_LEASE_LAPSED, now_ms, NULL);
	} else
		restart_due_workers(t, s, now_ms);
}

/* Turns what the session's clocks and process set say into events. */
static void
session_step(struct session_table *t, struct session *s, int64_t now_ms)
{
	check_adopted_workers(t, s, now_ms);
	if (s->state == CLOSEFSM_RUNNING) {
		step_running(t, s, now_ms);
		return;
	}
	if (s->state == CLOSEFSM_DONE)
		return;
	if (!session_gone(s))
		feed_timers(t, s, now_ms);
	if (session_gone(s))
		session_feed(t, s, CLOSEFSM_SET_EMPTY, now_ms, NULL);
	else if (first_overdue(s, now_ms) != NULL)
		session_feed(t, s, CLOSEFSM_DEADLINE, now_ms, NULL);
}

static void
cap_session_logs(const struct session_table *t, const struct session *s)
{
	char path[PATH_MAX + 96];

	for (uint32_t i = 0; i < s->nworkers; i++) {
		snprintf(path, sizeof(path), "%s/%s/worker-%u.log",
		    t->log_root, s->id, i);
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

void
session_table_step(struct session_table *t, int64_t now_ms)
{
	struct session **pp = &t->head, *s;

	while ((s = *pp) != NULL) {
		session_step(t, s, now_ms);
		if (s->state == CLOSEFSM_DONE) {
			*pp = s->next;
			session_free(s);
			continue;
		}
		/* One store per pass for what changed without a transition:
		 * worker ends and restarts, renewals, shortened grace. */
		if (s->dirty)
			session_persist(t, s);
		pp = &s->next;
	}
	cap_logs(t, now_ms);
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
	for (s = t->head; s != NULL; s = s->next) {
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
		for (req = s->waiters; req != NULL; req = req->next)
			min_time(&best, req->reply_by_ms);
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

		if (s->state != CLOSEFSM_RUNNING && set_fd >= 0)
			add_pollfd(fds, max, &n, set_fd, POLLPRI);
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

/* ---- supervision ------------------------------------------------------- */

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

static void
plan_restart(struct session_table *t, struct session *s, struct worker *w,
    int64_t now_ms)
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
	char log_dir[PATH_MAX], why[512] = "";
	char *path = NULL;
	int rv;

	w->restart_at_ms = 0;
	w->restarts++;
	w->adopted = false;
	s->dirty = true;
	/* The new worker gets a new group: what is left of the old one would
	 * otherwise be forgotten by the pgroup backend. */
	proctrack_set_drop_group(&s->set, i);
	rv = p == NULL ? HPCXL_ENOTFOUND
	               : make_log_dir(t, s->id, log_dir, sizeof(log_dir));
	if (rv == 0)
		rv = worker_resolve(p->argv[0], &path, why, sizeof(why));
	if (rv == 0)
		rv = spawn_one(t, s, p, path, log_dir, i, why, sizeof(why));
	free(path);
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
			note_worker_end(t, s, w, status, util_now_ms());
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

	for (s = t->head; s != NULL; s = s->next)
		session_feed(t, s, CLOSEFSM_AGENT_STOPPING, now, &c);
}

void
session_table_release_running(struct session_table *t)
{
	struct session **pp = &t->head, *s;

	t->releasing = true;
	while ((s = *pp) != NULL) {
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

		while (fed && s->state != CLOSEFSM_KILLING)
			fed = session_feed(
			    t, s, CLOSEFSM_AGENT_KILL, now, NULL);
	}
}

/* ---- health ------------------------------------------------------------ */

const char *
session_table_unhealthy(const struct session_table *t)
{
	return t->unhealthy[0] != '\0' ? t->unhealthy : NULL;
}

void
session_clear_health(struct session_table *t, struct server_req *req)
{
	bool was = t->unhealthy[0] != '\0';

	if (was && state_save_health(t->state, NULL) != 0) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot remove the stored unhealthy mark");
		return;
	}
	if (was)
		log_notice("unhealthy mark cleared (was: %s)", t->unhealthy);
	t->unhealthy[0] = '\0';
	server_reply_code(
	    t->srv, req, PROTO_CODE_OK, was ? "cleared" : "healthy");
}

bool
session_table_empty(const struct session_table *t)
{
	return t->head == NULL;
}

/* ---- status ------------------------------------------------------------ */

static size_t
session_list(const struct session_table *t, const char *only,
    struct proto_session *infos, size_t max)
{
	const struct session *s;
	size_t n = 0;

	for (s = t->head; s != NULL && n < max; s = s->next) {
		if (only != NULL && strcmp(only, s->id) != 0)
			continue;
		if (session_info(s, &infos[n]) == 0)
			n++;
	}
	return n;
}

void
session_status(struct session_table *t, struct server_req *req)
{
	const char *only = req->m.u.status.session;
	struct proto_reply r = { .code = PROTO_CODE_OK, .msg = "" };
	struct proto_session *infos;
	size_t n = 0, i;

	for (const struct session *s = t->head; s != NULL; s = s->next)
		n++;
	if ((infos = calloc(n + 1, sizeof(*infos))) == NULL) {
		server_reply_code(
		    t->srv, req, PROTO_CODE_ERROR, "out of memory");
		return;
	}
	n = session_list(t, only, infos, n);
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
		while (s->waiters != NULL) {
			struct server_req *req = s->waiters;

			s->waiters = req->next;
			server_req_free(req);
		}
		session_free(s);
	}
}
