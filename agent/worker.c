#include "worker.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *const hpcxl_vars[]
    = { "HPCXL_SESSION=", "HPCXL_NODE=", "HPCXL_WORKER=", "HPCXL_WORKBOOK=" };
#define NVARS (sizeof(hpcxl_vars) / sizeof(hpcxl_vars[0]))

static bool
is_hpcxl_var(const char *entry)
{
	for (size_t i = 0; i < NVARS; i++) {
		if (strncmp(entry, hpcxl_vars[i], strlen(hpcxl_vars[i])) == 0)
			return true;
	}
	return false;
}

static char *
env_entry(const char *prefix, const char *value)
{
	char *s;

	if (asprintf(&s, "%s%s", prefix, value) < 0)
		return NULL;
	return s;
}

char **
worker_env_build(const char *session, const char *node, uint32_t index,
    const char *workbook)
{
	char idx[16];
	const char *values[NVARS];
	size_t n = 0, i, k = 0;
	char **envp;

	snprintf(idx, sizeof(idx), "%u", index);
	values[0] = session;
	values[1] = node;
	values[2] = idx;
	values[3] = workbook != NULL ? workbook : "";
	while (environ[n] != NULL)
		n++;
	if ((envp = calloc(n + NVARS + 1, sizeof(*envp))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		/* Ours win: a stale HPCXL_SESSION in the agent's env is
		 * dropped. */
		if (is_hpcxl_var(environ[i]))
			continue;
		if ((envp[k++] = strdup(environ[i])) == NULL)
			goto fail;
	}
	for (i = 0; i < NVARS; i++) {
		if ((envp[k++] = env_entry(hpcxl_vars[i], values[i])) == NULL)
			goto fail;
	}
	return envp;
fail:
	worker_env_free(envp);
	return NULL;
}

void
worker_env_free(char **envp)
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

static bool
is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode)
	    && access(path, X_OK) == 0;
}

int
worker_resolve(const char *prog, char **path, char *why, size_t whylen)
{
	const char *env = getenv("PATH");
	char *dirs, *dir, *save = NULL, *cand = NULL;

	if (strchr(prog, '/') != NULL) {
		if (is_executable(prog) && (*path = strdup(prog)) != NULL)
			return 0;
		snprintf(why, whylen, "'%s' is not an executable file", prog);
		return HPCXL_EEXEC;
	}
	if ((dirs = strdup(env != NULL ? env : "/usr/bin:/bin")) == NULL)
		return HPCXL_ENOMEM;
	for (dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/%s", dir, prog) < 0)
			break;
		if (is_executable(cand)) {
			free(dirs);
			*path = cand;
			return 0;
		}
		free(cand);
	}
	free(dirs);
	snprintf(why, whylen, "'%s' not found in PATH", prog);
	return HPCXL_EEXEC;
}

/* ---- what the child applies, prepared in the parent ------------------- */

/*
 * Everything the child does beyond the spec, resolved before fork: the
 * passwd/group lookups (NSS may allocate, lock, open sockets), the merged
 * environment and the rlimit values. The child only reads it.
 */
struct child_plan {
	const struct worker_spec *spec;
	/* malloc'd vector; its strings are the spec's, the profile's and
	 * account's */
	char **envp;
	/* HOME, USER, LOGNAME of the profile's user (malloc'd), as login(1)
	 * and systemd's User= set them; NULL when no user is named. */
	char *account[4];
	bool set_groups, set_gid, set_uid; /* only what must change */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* malloc'd; supplementary groups, gid included */
	int ngroups;
	bool limit_set[CONFIG_NLIMITS];
	struct rlimit limit[CONFIG_NLIMITS];
};

/* Where the child stopped; sent with errno through the error pipe. */
enum child_step {
	STEP_SETPGID,
	STEP_CGROUP,
	STEP_STDIN,
	STEP_LOG,
	STEP_RLIMIT, /* detail: the enum config_limit */
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CHDIR,
	STEP_EXEC,
};

struct child_report {
	int step;
	int detail;
	int err;
};

static const int limit_resource[CONFIG_NLIMITS] = {
	[CONFIG_LIMIT_NOFILE] = RLIMIT_NOFILE,
	[CONFIG_LIMIT_NPROC] = RLIMIT_NPROC,
	[CONFIG_LIMIT_CORE] = RLIMIT_CORE,
	[CONFIG_LIMIT_AS] = RLIMIT_AS,
	[CONFIG_LIMIT_CPU] = RLIMIT_CPU,
	[CONFIG_LIMIT_FSIZE] = RLIMIT_FSIZE,
};

static bool
env_same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");

	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* True when one of the n entries of list sets the variable of entry. */
static bool
env_in_list(const char *entry, char *const *list, size_t n)
{
	for (size_t i = 0; i < n && list[i] != NULL; i++) {
		if (env_same_name(list[i], entry))
			return true;
	}
	return false;
}

/*
 * The worker's environment, later layers winning: base (the agent's plus
 * HPCXL_*, from worker_env_build), then account (HOME, USER, LOGNAME of the
 * profile's user; NULL-terminated), then the profile's env. HPCXL_* stay as
 * base has them: the config refuses them in profiles. Returns a malloc'd
 * vector whose strings still belong to the callers (free only the vector),
 * or NULL.
 */
static char **
env_merge(
    char *const *base, char *const *account, const struct config_profile *p)
{
	size_t n = 0, na = 0, k = 0, i;
	char **v;

	while (base[n] != NULL)
		n++;
	while (account[na] != NULL)
		na++;
	if ((v = calloc(n + na + p->nenv + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!env_in_list(base[i], p->env, p->nenv)
		    && !env_in_list(base[i], account, na))
			v[k++] = base[i];
	}
	for (i = 0; i < na; i++) {
		if (!env_in_list(account[i], p->env, p->nenv))
			v[k++] = account[i];
	}
	for (i = 0; i < p->nenv; i++)
		v[k++] = p->env[i];
	return v;
}

/* Fills pl->account from the user's passwd entry. */
static int
plan_account_env(struct child_plan *pl, const struct passwd *pw)
{
	pl->account[0] = env_entry("HOME=", pw->pw_dir);
	pl->account[1] = env_entry("USER=", pw->pw_name);
	pl->account[2] = env_entry("LOGNAME=", pw->pw_name);
	for (size_t i = 0; i < 3; i++) {
		if (pl->account[i] == NULL)
			return ENOMEM;
	}
	return 0;
}

static bool
is_decimal(const char *s)
{
	return s[0] != '\0' && s[strspn(s, "0123456789")] == '\0';
}

/* A buffer for the *_r lookups, grown on ERANGE up to 1 MiB. */
static int
grow_buf(char **buf, size_t *len)
{
	size_t want = *len == 0 ? 1024 : *len * 2;
	char *b;

	if (want > (1u << 20) || (b = realloc(*buf, want)) == NULL)
		return -1;
	*buf = b;
	*len = want;
	return 0;
}

/* Some NSS modules report "no such entry" as an error (getpwnam_r(3)). */
static int
not_found_is_no_error(int rv)
{
	return rv == ENOENT || rv == ESRCH ? 0 : rv;
}

/*
 * Looks user up by name, or by uid when it is decimal. *found says whether
 * there is an entry; the strings of pw point into *buf (caller frees).
 * Returns 0 or the errno of a failed lookup.
 */
static int
user_lookup(const char *user, struct passwd *pw, char **buf, bool *found)
{
	struct passwd *res = NULL;
	size_t len = 0;
	int rv = ERANGE;

	while (rv == ERANGE) {
		if (grow_buf(buf, &len) != 0)
			return ENOMEM;
		if (is_decimal(user))
			rv = getpwuid_r((uid_t)strtoul(user, NULL, 10), pw,
			    *buf, len, &res);
		else
			rv = getpwnam_r(user, pw, *buf, len, &res);
	}
	rv = not_found_is_no_error(rv);
	*found = rv == 0 && res != NULL;
	return rv;
}

/* Same for a group: *gid is set when there is an entry. */
static int
group_lookup(const char *group, gid_t *gid, bool *found)
{
	struct group gr, *res = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rv = ERANGE;

	while (rv == ERANGE) {
		if (grow_buf(&buf, &len) != 0) {
			free(buf);
			return ENOMEM;
		}
		if (is_decimal(group))
			rv = getgrgid_r((gid_t)strtoul(group, NULL, 10), &gr,
			    buf, len, &res);
		else
			rv = getgrnam_r(group, &gr, buf, len, &res);
	}
	rv = not_found_is_no_error(rv);
	*found = rv == 0 && res != NULL;
	if (*found)
		*gid = gr.gr_gid;
	free(buf);
	return rv;
}

/* The supplementary groups of name with gid, as initgroups(3) would set. */
static int
plan_grouplist(struct child_plan *pl, const char *name)
{
	int n = 16;
	gid_t *g = NULL, *grown;

	for (;;) {
		int want = n;

		if ((grown = realloc(g, (size_t)want * sizeof(*g))) == NULL) {
			free(g);
			return HPCXL_ENOMEM;
		}
		g = grown;
		if (getgrouplist(name, pl->gid, g, &n) >= 0)
			break;
		/* n now holds the size needed (glibc); grow at least. */
		if (n <= want)
			n = want * 2;
		if (n > 65536) {
			free(g);
			return HPCXL_ESYSTEM;
		}
	}
	pl->groups = g;
	pl->ngroups = n;
	return 0;
}

static int
plan_user(struct child_plan *pl, const char *user, bool *has_gid, char **name,
    char *why, size_t whylen)
{
	struct passwd pw;
	char *buf = NULL;
	bool found;
	int rv = user_lookup(user, &pw, &buf, &found);

	if (rv != 0) {
		snprintf(why, whylen, "cannot look up user '%s': %s", user,
		    strerror(rv));
	} else if (found) {
		pl->uid = pw.pw_uid;
		pl->gid = pw.pw_gid;
		*has_gid = true;
		if ((*name = strdup(pw.pw_name)) == NULL)
			rv = ENOMEM;
		else
			rv = plan_account_env(pl, &pw);
	} else if (is_decimal(user)) {
		/* A uid without an account: fine, but it has no group. */
		pl->uid = (uid_t)strtoul(user, NULL, 10);
	} else {
		snprintf(why, whylen, "unknown user '%s'", user);
		rv = ENOENT;
	}
	free(buf);
	return rv == 0 ? 0 : rv == ENOMEM ? HPCXL_ENOMEM : HPCXL_EEXEC;
}

static int
plan_group(struct child_plan *pl, const char *group, char *why, size_t whylen)
{
	bool found;
	int rv = group_lookup(group, &pl->gid, &found);

	if (rv != 0) {
		snprintf(why, whylen, "cannot look up group '%s': %s", group,
		    strerror(rv));
		return HPCXL_EEXEC;
	}
	if (!found && !is_decimal(group)) {
		snprintf(why, whylen, "unknown group '%s'", group);
		return HPCXL_EEXEC;
	}
	if (!found)
		pl->gid = (gid_t)strtoul(group, NULL, 10);
	return 0;
}

/* True when the process's supplementary groups are already exactly g. */
static bool
same_groups(const gid_t *g, int n)
{
	gid_t cur[256];
	int ncur = getgroups(256, cur), i, k;

	if (ncur < 0 || ncur != n)
		return false;
	for (i = 0; i < n; i++) {
		for (k = 0; k < ncur && cur[k] != g[i]; k++)
			;
		if (k == ncur)
			return false;
	}
	return true;
}

/* Marks which of the three calls the child must make: none when the
 * profile names the agent's own ids, so a non-root agent can do that. */
static void
plan_changes(struct child_plan *pl, bool has_user)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	pl->set_groups = !same_groups(pl->groups, pl->ngroups);
	pl->set_gid = rg != pl->gid || eg != pl->gid || sg != pl->gid;
	pl->set_uid
	    = has_user && (ru != pl->uid || eu != pl->uid || su != pl->uid);
}

/*
 * Resolves the profile's user and group now, at spawn, not at config
 * load: accounts created after the agent started work. The user's
 * supplementary groups come with it; a group alone leaves the worker a
 * member of that group only.
 */
static int
plan_identity(struct child_plan *pl, const struct config_profile *p, char *why,
    size_t whylen)
{
	bool has_gid = false;
	char *name = NULL;
	int rv = 0;

	if (p->user == NULL && p->group == NULL)
		return 0;
	if (p->user != NULL)
		rv = plan_user(pl, p->user, &has_gid, &name, why, whylen);
	if (rv == 0 && p->group != NULL) {
		rv = plan_group(pl, p->group, why, whylen);
		has_gid = rv == 0;
	}
	if (rv == 0 && !has_gid) {
		snprintf(why, whylen,
		    "user '%s' has no account: set the profile's group",
		    p->user);
		rv = HPCXL_EEXEC;
	}
	if (rv == 0 && name != NULL)
		rv = plan_grouplist(pl, name);
	else if (rv == 0) {
		if ((pl->groups = malloc(sizeof(*pl->groups))) == NULL)
			rv = HPCXL_ENOMEM;
		else
			pl->groups[pl->ngroups++] = pl->gid;
	}
	free(name);
	if (rv == 0)
		plan_changes(pl, p->user != NULL);
	return rv;
}

static void
plan_limits(struct child_plan *pl, const struct config_profile *p)
{
	for (size_t l = 0; l < CONFIG_NLIMITS; l++) {
		int64_t v = p->limits[l];

		if (v == CONFIG_LIMIT_INHERIT || v < 0)
			continue;
		pl->limit_set[l] = true;
		pl->limit[l].rlim_cur
		    = v == CONFIG_LIMIT_INFINITY ? RLIM_INFINITY : (rlim_t)v;
		pl->limit[l].rlim_max = pl->limit[l].rlim_cur;
	}
}

static void
plan_free(struct child_plan *pl)
{
	free(pl->envp);
	free(pl->groups);
	for (size_t i = 0; i < 3; i++)
		free(pl->account[i]);
}

static int
plan_build(struct child_plan *pl, const struct worker_spec *spec, char *why,
    size_t whylen)
{
	const struct config_profile *p = spec->profile;
	int rv;

	memset(pl, 0, sizeof(*pl));
	pl->spec = spec;
	if (p == NULL)
		return 0;
	plan_limits(pl, p);
	if ((rv = plan_identity(pl, p, why, whylen)) != 0) {
		if (why[0] == '\0')
			snprintf(why, whylen, "cannot resolve user/group: %s",
			    hpcxl_strerror(rv));
		plan_free(pl);
		return rv;
	}
	if ((pl->envp = env_merge(spec->envp, pl->account, p)) == NULL) {
		snprintf(why, whylen, "out of memory");
		plan_free(pl);
		return HPCXL_ENOMEM;
	}
	return 0;
}

/* ---- the child ---------------------------------------------------------- */

/*
 * The child runs alone (fork copies one thread), so the raw id syscalls
 * change the whole process; glibc's wrappers would first try to
 * broadcast to the parent's other threads, which is not async-signal-safe.
 * Saved ids change too: the worker cannot get the agent's back.
 */
static int
child_identity(const struct child_plan *pl, struct child_report *r)
{
	r->step = STEP_SETGROUPS;
	if (pl->set_groups
	    && syscall(SYS_setgroups, (long)pl->ngroups, pl->groups) != 0)
		return -1;
	r->step = STEP_SETGID;
	if (pl->set_gid
	    && syscall(
	           SYS_setresgid, (long)pl->gid, (long)pl->gid, (long)pl->gid)
	        != 0)
		return -1;
	r->step = STEP_SETUID;
	if (pl->set_uid
	    && syscall(
	           SYS_setresuid, (long)pl->uid, (long)pl->uid, (long)pl->uid)
	        != 0)
		return -1;
	return 0;
}

/* Soft and hard alike, while still privileged (raising a hard limit
 * needs CAP_SYS_RESOURCE). */
static int
child_limits(const struct child_plan *pl, struct child_report *r)
{
	r->step = STEP_RLIMIT;
	for (int l = 0; l < CONFIG_NLIMITS; l++) {
		r->detail = l;
		if (pl->limit_set[l]
		    && setrlimit(limit_resource[l], &pl->limit[l]) != 0)
			return -1;
	}
	return 0;
}

/* stdin from /dev/null, stdout and stderr appended to the log. */
static int
child_stdio(const struct worker_spec *spec, struct child_report *r)
{
	int fd;

	r->step = STEP_STDIN;
	/* CLOEXEC: dup2 gives 0-2 without it, the originals die at exec. */
	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
	    || dup2(fd, 0) < 0)
		return -1;
	r->step = STEP_LOG;
	fd = open(
	    spec->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		return -1;
	return 0;
}

/*
 * The child between fork and exec. The agent has nng threads, so only
 * async-signal-safe calls here: no malloc, no stdio, no locks. Any failure
 * sends the step and errno up the pipe. The log is opened before the
 * privileges go (it lives in the agent's state directory); chdir comes
 * after, so the worker's user must be allowed into its workdir.
 */
static void __attribute__((noreturn))
child_run(const struct child_plan *pl, int err_fd)
{
	const struct worker_spec *spec = pl->spec;
	struct child_report r = { STEP_SETPGID, 0, 0 };
	sigset_t none;
	int e;

	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setpgid(0, 0) != 0)
		goto fail;
	r.step = STEP_CGROUP;
	if ((e = proctrack_child_join(spec->set)) != 0) {
		errno = e;
		goto fail;
	}
	if (child_stdio(spec, &r) != 0 || child_limits(pl, &r) != 0
	    || child_identity(pl, &r) != 0)
		goto fail;
	r.step = STEP_CHDIR;
	if (spec->workdir != NULL && chdir(spec->workdir) != 0)
		goto fail;
	/* Nothing of the agent's but 0-2 survives exec (the error pipe is
	 * CLOEXEC too: its closing is how the parent learns exec worked).
	 * close_range needs Linux 5.11; the agent's own fds are CLOEXEC. */
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	r.step = STEP_EXEC;
	execve(
	    spec->path, spec->argv, pl->envp != NULL ? pl->envp : spec->envp);
fail:
	r.err = errno;
	if (write(err_fd, &r, sizeof(r)) < 0)
		_exit(126);
	_exit(127);
}

static int
pidfd_open_sys(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Blocks until exec happens (EOF: returns 0) or the child reports. */
static int
exec_result(int err_fd, struct child_report *r)
{
	ssize_t n;

	do
		n = read(err_fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r))
		return 0;
	return r->err != 0 ? r->err : EIO; /* it failed all the same */
}

/* The usual cause of EPERM from the id calls, said once in the reply. */
static const char *
identity_hint(const struct child_report *r)
{
	if (r->err != EPERM || r->step < STEP_SETGROUPS
	    || r->step > STEP_SETUID)
		return "";
	return " (only a root agent can run workers as another user or group)";
}

/* "cannot start PATH: WHAT: ERROR" for a failure the child reported. */
static void
report_why(const struct child_plan *pl, const struct child_report *r,
    char *why, size_t whylen)
{
	const struct worker_spec *spec = pl->spec;
	char what[PATH_MAX + 64];

	switch (r->step) {
	case STEP_SETPGID:
		snprintf(what, sizeof(what), "setpgid");
		break;
	case STEP_CGROUP:
		snprintf(what, sizeof(what), "joining the process set");
		break;
	case STEP_STDIN:
		snprintf(what, sizeof(what), "/dev/null");
		break;
	case STEP_LOG:
		snprintf(what, sizeof(what), "log %s", spec->log_path);
		break;
	case STEP_RLIMIT:
		snprintf(what, sizeof(what), "setrlimit (%s)",
		    config_limit_key((enum config_limit)r->detail));
		break;
	case STEP_SETGROUPS:
		snprintf(what, sizeof(what), "setgroups");
		break;
	case STEP_SETGID:
		snprintf(what, sizeof(what), "setgid(%u)", (unsigned)pl->gid);
		break;
	case STEP_SETUID:
		snprintf(what, sizeof(what), "setuid(%u)", (unsigned)pl->uid);
		break;
	case STEP_CHDIR:
		snprintf(what, sizeof(what), "chdir %s", spec->workdir);
		break;
	default:
		snprintf(why, whylen, "cannot start %s: %s", spec->path,
		    strerror(r->err));
		return;
	}
	snprintf(why, whylen, "cannot start %s: %s: %s%s", spec->path, what,
	    strerror(r->err), identity_hint(r));
}

int
worker_spawn(
    struct worker *w, const struct worker_spec *spec, char *why, size_t whylen)
{
	struct child_report r = { 0 };
	struct child_plan pl;
	int pfd[2], rv;
	pid_t pid;

	if ((rv = plan_build(&pl, spec, why, whylen)) != 0)
		return rv;
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		plan_free(&pl);
		return HPCXL_ESYSTEM;
	}
	if ((pid = fork()) < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		plan_free(&pl);
		return HPCXL_ESYSTEM;
	}
	if (pid == 0)
		child_run(&pl, pfd[1]);
	close(pfd[1]);
	rv = exec_result(pfd[0], &r);
	close(pfd[0]);
	if (rv != 0) {
		waitpid(pid, NULL, 0);
		report_why(&pl, &r, why, whylen);
		plan_free(&pl);
		return HPCXL_EEXEC;
	}
	plan_free(&pl);
	w->pid = pid;
	w->pidfd = pidfd_open_sys(pid);
	w->state = PROTO_W_RUNNING;
	w->exit_status = -1;
	return 0;
}

void
worker_signal(const struct worker *w, int sig)
{
	if (w->pidfd < 0)
		return;
	if (syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) != 0
	    && errno != ESRCH)
		log_warn("signal %d to worker %d: %s", sig, w->pid,
		    strerror(errno));
}

void
worker_ended(struct worker *w, int status, bool killed)
{
	bool by_sigkill = status == WORKER_STATUS_UNKNOWN
	    || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	w->exit_status = status;
	w->state = killed && by_sigkill ? PROTO_W_KILLED : PROTO_W_EXITED;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
}

bool
worker_alive(const struct worker *w)
{
	/* Not exit_status: an adopted worker can end with it unknown (-1). */
	return w->pid > 0
	    && (w->state == PROTO_W_RUNNING || w->state == PROTO_W_STOPPING);
}
