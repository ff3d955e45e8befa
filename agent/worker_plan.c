#include "worker_plan.h"

#include "hpcxl/common/err.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int
resolve_program(const char *prog, char **path, char *why, size_t whylen)
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
plan_account_env(struct worker_plan *pl, const struct passwd *pw)
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
plan_grouplist(struct worker_plan *pl, const char *name)
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
plan_user(struct worker_plan *pl, const char *user, bool *has_gid, char **name,
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
plan_group(struct worker_plan *pl, const char *group, char *why, size_t whylen)
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
plan_changes(struct worker_plan *pl, bool has_user)
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
plan_identity(struct worker_plan *pl, const struct config_profile *p,
    char *why, size_t whylen)
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
plan_limits(struct worker_plan *pl, const struct config_profile *p)
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

void
worker_plan_free(struct worker_plan *pl)
{
	config_profile_free(&pl->profile);
	free(pl->path);
	free(pl->groups);
	for (size_t i = 0; i < 3; i++)
		free(pl->account[i]);
	memset(pl, 0, sizeof(*pl));
}

int
worker_plan_build(struct worker_plan *pl, const struct config_profile *p,
    char *why, size_t whylen)
{
	int rv;

	memset(pl, 0, sizeof(*pl));
	if (config_profile_dup(&pl->profile, p) != 0) {
		snprintf(why, whylen, "out of memory");
		return HPCXL_ENOMEM;
	}
	if ((rv = resolve_program(p->argv[0], &pl->path, why, whylen)) != 0) {
		worker_plan_free(pl);
		return rv;
	}
	plan_limits(pl, p);
	if ((rv = plan_identity(pl, p, why, whylen)) != 0) {
		if (why[0] == '\0')
			snprintf(why, whylen, "cannot resolve user/group: %s",
			    hpcxl_strerror(rv));
		worker_plan_free(pl);
	}
	return rv;
}

char **
worker_plan_env(const struct worker_plan *pl, char *const *base)
{
	return env_merge(base, pl->account, &pl->profile);
}

int
worker_plan_resource(enum config_limit l)
{
	return limit_resource[l];
}
