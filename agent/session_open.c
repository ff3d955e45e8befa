/*
 * Open: a request is checked, the session stored as OPENING and its plan
 * resolved (one set of NSS lookups), then its workers start in batches
 * from the loop's step, each batch bounded by a time slice so pings and
 * the deadlines of other sessions' closes are served in between. The
 * request waits on the session and is answered when the last worker has
 * started, or, when the open fails, once what it started is gone.
 */
#include "session_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int
session_spawn_worker(struct session_table *t, struct session *s,
    const struct worker_plan *plan, uint32_t i, char *why, size_t whylen)
{
	struct worker *w = &s->workers[i];
	struct worker_spec spec = { .set = &s->set };
	char log_path[SESSION_LOG_PATH_MAX];
	char **envp;
	int rv;

	session_log_path(t, s, i, log_path, sizeof(log_path));
	envp = worker_env_build(s->id, t->cfg->node, i, s->workbook);
	if (envp == NULL)
		return HPCXL_ENOMEM;
	spec.envp = envp;
	spec.log_path = log_path;
	w->index = i;
	rv = worker_spawn(w, plan, &spec, why, whylen);
	worker_env_free(envp);
	if (rv == 0) {
		w->start_ticks = proctrack_start_ticks(w->pid);
		w->adopted = false;
		/* The worker leads its own group. */
		proctrack_set_add(&s->set, i, w->pid, w->start_ticks, true);
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
session_new(const struct server_req *req, uint32_t n)
{
	const struct proto_open *o = &req->m.u.open;
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
		s->workers[i].index = i;
		s->workers[i].pidfd = -1;
		s->workers[i].exit_status = -1;
		s->workers[i].state = PROTO_W_FAILED;
	}
	s->nworkers = n;
	snprintf(s->id, sizeof(s->id), "%s", o->session);
	snprintf(s->profile, sizeof(s->profile), "%s", o->profile);
	memcpy(s->owner, req->caller, sizeof(s->owner));
	s->state = CLOSEFSM_OPENING;
	return s;
}

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
session_reply_opened(
    struct session_table *t, struct session *s, int64_t now_ms)
{
	struct server_req *req;

	(void)now_ms;
	if (s->dirty) {
		/* Not "opened" unless a restarted agent would find it: the
		 * step undoes it, and the waiting open gets why. */
		session_open_abandon(
		    s, "cannot store the session in the state directory");
		s->undo_open = true;
		return;
	}
	log_info("session %s opened by %s: %u worker(s) of profile %s", s->id,
	    session_owner_name(s), s->nworkers, s->profile);
	while ((req = s->waiters) != NULL) {
		s->waiters = req->next;
		req->next = NULL;
		reply_opened(t, req, s);
	}
}

/* How long a failed open's reply may wait for its workers to be gone:
 * beyond it (unkillable ones) it says they are still being killed. */
#define OPEN_UNDO_REPLY_MS 2000

void
session_open_abandon(struct session *s, const char *why)
{
	int64_t reply_by = util_now_ms() + OPEN_UNDO_REPLY_MS;

	if (s->open_why[0] == '\0')
		snprintf(s->open_why, sizeof(s->open_why), "%s", why);
	for (struct server_req *req = s->waiters; req != NULL; req = req->next)
		if (req->m.type == PROTO_OPEN)
			req->reply_by_ms = reply_by;
	worker_plan_free(&s->plan);
	plan_job_abandon(s->plan_job);
	s->plan_job = NULL;
}

/* The open failed with rv; why says how, when the failing step could. */
static void
open_fail(struct session_table *t, struct session *s, int rv, const char *why,
    int64_t now_ms)
{
	if (why[0] == '\0')
		why = hpcxl_strerror(rv);
	log_warn(
	    "open %s by %s failed: %s", s->id, session_owner_name(s), why);
	session_open_abandon(s, why);
	session_feed(t, s, CLOSEFSM_OPEN_FAILED, now_ms, NULL);
}

/* What every worker needs before the first starts: the process set, the
 * log directory, the plan. */
static int
open_prepare(
    struct session_table *t, struct session *s, char *why, size_t whylen)
{
	const struct config_profile *p
	    = config_find_profile(t->cfg, s->profile);
	char log_dir[PATH_MAX];
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
	if (!plan_job_needed(p))
		return worker_plan_build(&s->plan, p, why, whylen);
	if ((s->plan_job = plan_job_start(p)) == NULL) {
		snprintf(why, whylen, "cannot start the user lookup");
		return HPCXL_ESYSTEM;
	}
	return 0;
}

/* The plan built off the loop: false while it is not there yet, or when
 * it failed (the open then fails). */
static bool
plan_ready(struct session_table *t, struct session *s, int64_t now_ms)
{
	char why[512] = "";
	int rv;

	if (s->plan_job == NULL)
		return true;
	if (!plan_job_done(s->plan_job))
		return false;
	rv = plan_job_finish(s->plan_job, &s->plan, why, sizeof(why));
	s->plan_job = NULL;
	if (rv != 0)
		open_fail(t, s, rv, why, now_ms);
	return rv == 0;
}

void
session_open_step(struct session_table *t, struct session *s, int64_t now_ms)
{
	char why[512] = "";

	if (!plan_ready(t, s, now_ms))
		return;
	while (
	    s->nstarted < s->nworkers && util_now_ms() < t->spawn_until_ms) {
		int rv = session_spawn_worker(
		    t, s, &s->plan, s->nstarted, why, sizeof(why));

		if (rv != 0) {
			open_fail(t, s, rv, why, now_ms);
			return;
		}
		s->nstarted++;
	}
	if (s->nstarted == s->nworkers) {
		worker_plan_free(&s->plan);
		session_feed(t, s, CLOSEFSM_WORKERS_STARTED, now_ms, NULL);
	}
}

/*
 * A request for a session that exists. The open's own resend (same op)
 * joins it, or gets "opened" again once it has; anything else is a
 * duplicate id.
 */
static void
open_existing(
    struct session_table *t, struct server_req *req, struct session *s)
{
	char why[HPCXL_ID_MAX + 32];

	/* Only the caller that opened it may join its open (same op). */
	if (req->m.op != s->open_op || s->open_op == 0
	    || strcmp(req->caller, s->owner) != 0) {
		snprintf(why, sizeof(why), "session %s already exists", s->id);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
	} else if (s->state == CLOSEFSM_RUNNING)
		reply_opened(t, req, s);
	else if (s->state == CLOSEFSM_OPENING)
		session_add_waiter(t, s, req);
	else if (s->open_why[0] != '\0') {
		/* Failed and being undone: the reply comes with the first. */
		req->reply_by_ms = util_now_ms() + OPEN_UNDO_REPLY_MS;
		session_add_waiter(t, s, req);
	} else {
		snprintf(why, sizeof(why), "session %s is closing", s->id);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
	}
}

/* What one identity holds on this node: its sessions (closing ones too,
 * until their last process is gone) and their workers. */
struct holdings {
	int64_t sessions;
	int64_t workers;
};

static struct holdings
holdings_of(const struct session_table *t, const char *identity)
{
	struct holdings h = { 0, 0 };

	for (const struct session *s = t->head; s != NULL; s = s->next) {
		if (s->state == CLOSEFSM_DONE || s->state == CLOSEFSM_RELEASED
		    || strcmp(s->owner, identity) != 0)
			continue;
		h.sessions++;
		h.workers += s->nworkers;
	}
	return h;
}

/* The caller's max_sessions and max_workers (config.h; 0: no limit);
 * false when the open would pass one (req answered refused, with it). */
static bool
open_within_limits(struct session_table *t, struct server_req *req, uint32_t n)
{
	struct holdings h = holdings_of(t, req->caller);
	int64_t max_s = t->cfg->max_sessions, max_w = t->cfg->max_workers;
	char why[HPCXL_IDENTITY_MAX + 160];

	if (max_s > 0 && h.sessions + 1 > max_s)
		snprintf(why, sizeof(why),
		    "%s has %lld session(s) on this node: max_sessions is "
		    "%lld",
		    req->caller, (long long)h.sessions, (long long)max_s);
	else if (max_w > 0 && h.workers + n > max_w)
		snprintf(why, sizeof(why),
		    "%s has %lld worker(s) on this node and asks for %u more: "
		    "max_workers is %lld",
		    req->caller, (long long)h.workers, n, (long long)max_w);
	else
		return true;
	log_info("open %s refused: %s", req->m.u.open.session, why);
	server_reply_code(t->srv, req, PROTO_CODE_REFUSED, why);
	return false;
}

/* Checks what needs no session; false when req was answered. */
static bool
open_check(struct session_table *t, struct server_req *req, uint32_t n)
{
	const struct proto_open *o = &req->m.u.open;
	const struct config_profile *p
	    = config_find_profile(t->cfg, o->profile);
	char why[HPCXL_ID_MAX + 32];

	if (t->unhealthy[0] != '\0') {
		reply_unhealthy(t, req);
		return false;
	}
	if (p == NULL) {
		snprintf(why, sizeof(why), "unknown profile '%s'", o->profile);
		server_reply_code(t->srv, req, PROTO_CODE_ERROR, why);
		return false;
	}
	if (n == 0 || n > PROTO_MAX_WORKERS) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot allocate the session");
		return false;
	}
	return open_within_limits(t, req, n);
}

void
session_open(struct session_table *t, struct server_req *req)
{
	const struct proto_open *o = &req->m.u.open;
	uint32_t n = open_worker_count(o);
	int64_t now = util_now_ms();
	char why[512] = "";
	struct session *s;
	int rv;

	if ((s = session_find(t, o->session)) != NULL) {
		open_existing(t, req, s);
		return;
	}
	if (!open_check(t, req, n))
		return;
	if ((s = session_new(req, n)) == NULL) {
		server_reply_code(t->srv, req, PROTO_CODE_ERROR,
		    "cannot allocate the session");
		return;
	}
	session_link(t, s);
	s->open_op = req->m.op;
	if (o->lease_ms > 0)
		s->lease_end_ms = now + (int64_t)o->lease_ms;
	session_add_waiter(t, s, req);
	/* Stored before the first spawn: an agent killed while spawning
	 * leaves a record, and the next one undoes the open. */
	if ((rv = session_persist(t, s)) != 0)
		snprintf(why, sizeof(why),
		    "cannot store the session in the state directory");
	else
		rv = open_prepare(t, s, why, sizeof(why));
	if (rv != 0)
		open_fail(t, s, rv, why, now);
}
