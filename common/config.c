#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

int
config_set_str(char **slot, const char *val)
{
	char *copy = strdup(val);

	if (copy == NULL)
		return HPCXL_ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

int
config_init(struct config *c)
{
	char host[256] = "localhost";

	memset(c, 0, sizeof(*c));
	c->default_grace_ms = CONFIG_DEFAULT_GRACE_MS;
	c->log_max_bytes = CONFIG_DEFAULT_LOG_MAX_BYTES;
	c->log_retention_s = CONFIG_DEFAULT_LOG_RETENTION_S;
	c->unkillable_limit_ms = CONFIG_DEFAULT_UNKILLABLE_MS;
	gethostname(host, sizeof(host) - 1);
	if (config_set_str(&c->node, host) != 0
	    || config_set_str(&c->state_dir, CONFIG_DEFAULT_STATE_DIR) != 0
	    || config_set_str(&c->backend, "auto") != 0
	    || config_set_str(&c->cgroup_root, "auto") != 0)
		return HPCXL_ENOMEM;
	return 0;
}

static struct config_profile *
profile_get_or_add(struct config *c, const char *name)
{
	struct config_profile *p;
	size_t i;

	for (i = 0; i < c->nprofiles; i++) {
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	}
	if (c->nprofiles == CONFIG_MAX_PROFILES)
		return NULL;
	p = &c->profiles[c->nprofiles];
	memset(p, 0, sizeof(*p));
	if ((p->name = strdup(name)) == NULL)
		return NULL;
	p->stop_grace_ms = -1; /* inherit the agent default */
	p->restart = CONFIG_RESTART_NEVER;
	p->max_restarts = CONFIG_DEFAULT_MAX_RESTARTS;
	for (size_t l = 0; l < CONFIG_NLIMITS; l++)
		p->limits[l] = CONFIG_LIMIT_INHERIT;
	c->nprofiles++;
	return p;
}

static void
argv_free(char **argv)
{
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* Splits a command line into a malloc'd NULL-terminated vector. */
static int
split_command(const char *cmd, char ***out, char *err, size_t errlen)
{
	wordexp_t we;
	char **argv;
	size_t i;
	int rv;

	if ((rv = wordexp(cmd, &we, WRDE_NOCMD | WRDE_UNDEF)) != 0) {
		util_set_err(err, errlen, "cannot split command '%s' (%s)",
		    cmd,
		    rv == WRDE_CMDSUB ? "command substitution is not allowed"
		                      : "bad quoting or undefined variable");
		return HPCXL_ECONFIG;
	}
	if (we.we_wordc == 0) {
		wordfree(&we);
		util_set_err(err, errlen, "empty command");
		return HPCXL_ECONFIG;
	}
	if ((argv = calloc(we.we_wordc + 1, sizeof(*argv))) == NULL) {
		wordfree(&we);
		return HPCXL_ENOMEM;
	}
	for (i = 0; i < we.we_wordc; i++) {
		if ((argv[i] = strdup(we.we_wordv[i])) == NULL) {
			argv_free(argv);
			wordfree(&we);
			return HPCXL_ENOMEM;
		}
	}
	wordfree(&we);
	*out = argv;
	return 0;
}

static int
profile_set_command(
    struct config_profile *p, const char *cmd, char *err, size_t errlen)
{
	char **argv;
	int rv;

	if ((rv = split_command(cmd, &argv, err, errlen)) != 0)
		return rv;
	argv_free(p->argv);
	p->argv = argv;
	return 0;
}

int
config_add_profile_spec(
    struct config *c, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '=');
	char name[HPCXL_ID_MAX + 1];
	struct config_profile *p;
	size_t n;

	n = eq != NULL ? (size_t)(eq - spec) : 0;
	if (eq == NULL || n == 0 || n > HPCXL_ID_MAX) {
		util_set_err(
		    err, errlen, "profile '%s' is not NAME=COMMAND", spec);
		return HPCXL_ECONFIG;
	}
	memcpy(name, spec, n);
	name[n] = '\0';
	if (!util_valid_id(name)) {
		util_set_err(err, errlen, "invalid profile name '%s'", name);
		return HPCXL_ECONFIG;
	}
	if ((p = profile_get_or_add(c, name)) == NULL) {
		util_set_err(err, errlen, "too many profiles");
		return HPCXL_ECONFIG;
	}
	return profile_set_command(p, eq + 1, err, errlen);
}

int
config_add_listen(struct config *c, const char *url, char *err, size_t errlen)
{
	if (c->nlisten == CONFIG_MAX_LISTEN) {
		util_set_err(err, errlen, "more than %d listen URLs",
		    CONFIG_MAX_LISTEN);
		return HPCXL_ECONFIG;
	}
	if ((c->listen[c->nlisten] = strdup(url)) == NULL)
		return HPCXL_ENOMEM;
	c->nlisten++;
	return 0;
}

/* One name of an admins list, its spaces dropped: a copy, or NULL. */
static char *
admin_name(const char *start, size_t len)
{
	while (len > 0 && start[0] == ' ') {
		start++;
		len--;
	}
	while (len > 0 && start[len - 1] == ' ')
		len--;
	return strndup(start, len);
}

static int
add_admin(struct config *c, char *name, char *err, size_t errlen)
{
	if (!util_valid_identity(name)) {
		util_set_err(err, errlen,
		    "admin '%s' is not an identity (1 to %d printable ASCII "
		    "characters, no comma)",
		    name, HPCXL_IDENTITY_MAX);
		free(name);
		return HPCXL_ECONFIG;
	}
	if (config_is_admin(c, name)) {
		free(name);
		return 0;
	}
	if (c->nadmins == CONFIG_MAX_ADMINS) {
		util_set_err(
		    err, errlen, "more than %d admins", CONFIG_MAX_ADMINS);
		free(name);
		return HPCXL_ECONFIG;
	}
	c->admins[c->nadmins++] = name;
	return 0;
}

int
config_add_admins(struct config *c, const char *list, char *err, size_t errlen)
{
	const char *p = list;
	int rv = 0;

	while (rv == 0) {
		size_t len = strcspn(p, ",");
		char *name = admin_name(p, len);

		if (name == NULL)
			return HPCXL_ENOMEM;
		rv = add_admin(c, name, err, errlen);
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	return rv;
}

bool
config_is_admin(const struct config *c, const char *identity)
{
	for (size_t i = 0; i < c->nadmins; i++) {
		if (strcmp(c->admins[i], identity) == 0)
			return true;
	}
	return false;
}

/* What the inih callback needs: where to store and where to complain. */
struct ini_ctx {
	struct config *c;
	char *err;
	size_t errlen;
	int rv;
};

static int
parse_ms(const char *val, int64_t *out)
{
	return util_parse_i64(val, 0, 24LL * 3600 * 1000, out);
}

/* "604800", "7d", "12h", "30m", "90s": a duration in seconds, at most
 * ten years. */
static int
parse_duration_s(const char *val, int64_t *out)
{
	static const struct {
		char unit;
		int64_t s;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	size_t n = strlen(val);
	int64_t mult = 1;
	char num[32];

	for (size_t i = 0; n > 1 && i < sizeof(units) / sizeof(units[0]);
	     i++) {
		if (val[n - 1] == units[i].unit) {
			mult = units[i].s;
			n--;
			break;
		}
	}
	if (n == 0 || n >= sizeof(num))
		return HPCXL_ECONFIG;
	memcpy(num, val, n);
	num[n] = '\0';
	if (util_parse_i64(num, 0, 3650LL * 86400 / mult, out) != 0)
		return HPCXL_ECONFIG;
	*out *= mult;
	return 0;
}

static int
parse_bool(struct ini_ctx *x, const char *val, bool *out)
{
	if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0) {
		*out = false;
		return 0;
	}
	util_set_err(
	    x->err, x->errlen, "'%s' is not true, false, yes or no", val);
	return HPCXL_ECONFIG;
}

/* A per-identity limit: a count, 0 for none. */
static int
parse_limit_count(struct ini_ctx *x, const char *val, int64_t *out)
{
	if (util_parse_i64(val, 0, INT32_MAX, out) != 0) {
		util_set_err(x->err, x->errlen,
		    "'%s' is not a count from 0 (no limit) to %d", val,
		    INT32_MAX);
		return HPCXL_ECONFIG;
	}
	return 0;
}

/*
 * A user or group: a decimal id, or a name that is only looked up when a
 * worker starts (see config.h). The id range leaves out (uid_t)-1, which
 * the set*id calls read as "unchanged".
 */
static int
set_account(struct ini_ctx *x, char **slot, const char *what, const char *val)
{
	int64_t id;

	if (val[0] != '\0' && val[strspn(val, "0123456789")] == '\0') {
		if (util_parse_i64(val, 0, (int64_t)UINT32_MAX - 1, &id)
		    != 0) {
			util_set_err(x->err, x->errlen,
			    "%s id '%s' out of range", what, val);
			return HPCXL_ECONFIG;
		}
	} else if (val[0] == '\0' || val[0] == '-'
	    || strpbrk(val, " \t:/,") != NULL || strlen(val) > 255) {
		util_set_err(x->err, x->errlen, "'%s' is not a %s name or id",
		    val, what);
		return HPCXL_ECONFIG;
	}
	return config_set_str(slot, val);
}

static int
agent_key(struct ini_ctx *x, const char *key, const char *val)
{
	struct config *c = x->c;
	int64_t v;

	if (strcmp(key, "node") == 0) {
		if (!util_valid_id(val))
			return HPCXL_ECONFIG;
		return config_set_str(&c->node, val);
	}
	if (strcmp(key, "listen") == 0)
		return config_add_listen(c, val, x->err, x->errlen);
	if (strcmp(key, "state_dir") == 0)
		return config_set_str(&c->state_dir, val);
	if (strcmp(key, "backend") == 0) {
		if (strcmp(val, "auto") != 0 && strcmp(val, "cgroup2") != 0
		    && strcmp(val, "pgroup") != 0)
			return HPCXL_ECONFIG;
		return config_set_str(&c->backend, val);
	}
	if (strcmp(key, "cgroup_root") == 0)
		return config_set_str(&c->cgroup_root, val);
	if (strcmp(key, "stop_grace_ms") == 0) {
		if (parse_ms(val, &v) != 0)
			return HPCXL_ECONFIG;
		c->default_grace_ms = v;
		return 0;
	}
	if (strcmp(key, "close_on_exit") == 0)
		return parse_bool(x, val, &c->close_on_exit);
	if (strcmp(key, "unkillable_limit_ms") == 0) {
		if (parse_ms(val, &v) != 0)
			return HPCXL_ECONFIG;
		c->unkillable_limit_ms = v;
		return 0;
	}
	if (strcmp(key, "tls_cert") == 0)
		return config_set_str(&c->tls_cert, val);
	if (strcmp(key, "tls_key") == 0)
		return config_set_str(&c->tls_key, val);
	if (strcmp(key, "tls_ca") == 0)
		return config_set_str(&c->tls_ca, val);
	if (strcmp(key, "allow_insecure") == 0)
		return parse_bool(x, val, &c->allow_insecure);
	if (strcmp(key, "ipc_group") == 0)
		return set_account(x, &c->ipc_group, "group", val);
	if (strcmp(key, "metrics_listen") == 0)
		return config_set_str(&c->metrics_listen, val);
	if (strcmp(key, "default_user") == 0)
		return set_account(x, &c->default_user, "user", val);
	if (strcmp(key, "admins") == 0)
		return config_add_admins(c, val, x->err, x->errlen);
	if (strcmp(key, "max_sessions") == 0)
		return parse_limit_count(x, val, &c->max_sessions);
	if (strcmp(key, "max_workers") == 0)
		return parse_limit_count(x, val, &c->max_workers);
	if (strcmp(key, "log_max_bytes") == 0) {
		if (util_parse_i64(val, 0, INT64_MAX, &v) != 0) {
			util_set_err(x->err, x->errlen,
			    "'%s' is not a byte count (0 = no cap)", val);
			return HPCXL_ECONFIG;
		}
		c->log_max_bytes = v;
		return 0;
	}
	if (strcmp(key, "log_retention") == 0) {
		if (parse_duration_s(val, &c->log_retention_s) != 0) {
			util_set_err(x->err, x->errlen,
			    "'%s' is not a duration (seconds, or a number "
			    "with s, m, h or d; 0 = keep)",
			    val);
			return HPCXL_ECONFIG;
		}
		return 0;
	}
	return HPCXL_ECONFIG;
}

static int
parse_restart(const char *val, enum config_restart *out)
{
	static const char *const names[] = { "never", "on-failure", "always" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(val, names[i]) == 0) {
			*out = (enum config_restart)i;
			return 0;
		}
	}
	return HPCXL_ECONFIG;
}

/* POSIX portable environment names: [A-Za-z_][A-Za-z0-9_]*. */
static bool
env_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Sets entry ("NAME=VALUE", taken) in p->env: in place if NAME is there. */
static int
env_put(struct ini_ctx *x, struct config_profile *p, char *entry, size_t n)
{
	char **grown;
	size_t i;

	for (i = 0; i < p->nenv; i++) {
		if (strncmp(p->env[i], entry, n + 1) == 0) {
			free(p->env[i]);
			p->env[i] = entry;
			return 0;
		}
	}
	if (p->nenv == CONFIG_MAX_ENV) {
		util_set_err(x->err, x->errlen, "more than %d variables",
		    CONFIG_MAX_ENV);
		free(entry);
		return HPCXL_ECONFIG;
	}
	/* One more slot than entries: the vector stays NULL-terminated. */
	if ((grown = realloc(p->env, (p->nenv + 2) * sizeof(*grown)))
	    == NULL) {
		free(entry);
		return HPCXL_ENOMEM;
	}
	p->env = grown;
	p->env[p->nenv++] = entry;
	p->env[p->nenv] = NULL;
	return 0;
}

static int
profile_add_env(struct ini_ctx *x, struct config_profile *p, const char *val)
{
	const char *eq = strchr(val, '=');
	size_t n = eq != NULL ? (size_t)(eq - val) : 0;
	char *entry;

	if (eq == NULL || !env_name_ok(val, n)) {
		util_set_err(x->err, x->errlen,
		    "'%s' is not NAME=VALUE with NAME of "
		    "[A-Za-z_][A-Za-z0-9_]*",
		    val);
		return HPCXL_ECONFIG;
	}
	/* The agent sets these last; a profile's value would be dropped. */
	if (strncmp(val, "HPCXL_", 6) == 0) {
		util_set_err(x->err, x->errlen,
		    "%.*s: HPCXL_* variables are set by the agent", (int)n,
		    val);
		return HPCXL_ECONFIG;
	}
	if ((entry = strdup(val)) == NULL)
		return HPCXL_ENOMEM;
	return env_put(x, p, entry, n);
}

static const char *const limit_keys[CONFIG_NLIMITS] = {
	[CONFIG_LIMIT_NOFILE] = "limit_nofile",
	[CONFIG_LIMIT_NPROC] = "limit_nproc",
	[CONFIG_LIMIT_CORE] = "limit_core",
	[CONFIG_LIMIT_AS] = "limit_as",
	[CONFIG_LIMIT_CPU] = "limit_cpu",
	[CONFIG_LIMIT_FSIZE] = "limit_fsize",
};

const char *
config_limit_key(enum config_limit lim)
{
	return (unsigned)lim < CONFIG_NLIMITS ? limit_keys[lim] : "limit_?";
}

/* An integer >= 0, -1 (inherit) or "infinity". */
static int
parse_limit(
    struct ini_ctx *x, enum config_limit lim, const char *val, int64_t *out)
{
	if (strcmp(val, "infinity") == 0) {
		/* setrlimit refuses it: open files stop at fs.nr_open. */
		if (lim == CONFIG_LIMIT_NOFILE) {
			util_set_err(x->err, x->errlen,
			    "cannot be infinity (the kernel caps it at "
			    "fs.nr_open): give a number");
			return HPCXL_ECONFIG;
		}
		*out = CONFIG_LIMIT_INFINITY;
		return 0;
	}
	/* INT64_MAX itself is the infinity sentinel. */
	if (util_parse_i64(val, -1, INT64_MAX - 1, out) != 0) {
		util_set_err(x->err, x->errlen,
		    "'%s' is not an integer >= 0, -1 (inherit) or infinity",
		    val);
		return HPCXL_ECONFIG;
	}
	return 0;
}

static int
profile_limit_key(struct ini_ctx *x, struct config_profile *p, const char *key,
    const char *val)
{
	for (size_t l = 0; l < CONFIG_NLIMITS; l++) {
		if (strcmp(key, limit_keys[l]) == 0)
			return parse_limit(
			    x, (enum config_limit)l, val, &p->limits[l]);
	}
	return HPCXL_ECONFIG;
}

static int
profile_key(struct ini_ctx *x, struct config_profile *p, const char *key,
    const char *val)
{
	if (strcmp(key, "command") == 0)
		return profile_set_command(p, val, x->err, x->errlen);
	if (strcmp(key, "stop_grace_ms") == 0)
		return parse_ms(val, &p->stop_grace_ms) != 0 ? HPCXL_ECONFIG
		                                             : 0;
	if (strcmp(key, "workdir") == 0)
		return config_set_str(&p->workdir, val);
	if (strcmp(key, "restart") == 0)
		return parse_restart(val, &p->restart);
	if (strcmp(key, "max_restarts") == 0)
		return util_parse_i64(val, 0, 1000000, &p->max_restarts) != 0
		    ? HPCXL_ECONFIG
		    : 0;
	if (strcmp(key, "user") == 0)
		return set_account(x, &p->user, "user", val);
	if (strcmp(key, "group") == 0)
		return set_account(x, &p->group, "group", val);
	if (strcmp(key, "env") == 0)
		return profile_add_env(x, p, val);
	if (strncmp(key, "limit_", 6) == 0)
		return profile_limit_key(x, p, key, val);
	return HPCXL_ECONFIG;
}

/* A detailed message still says which key of which section it is about. */
static void
name_the_key(struct ini_ctx *x, const char *section, const char *key)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", x->err);
	util_set_err(x->err, x->errlen, "[%s] %s: %s", section, key, detail);
}

static int
ini_on_key(void *user, const char *section, const char *key, const char *val)
{
	struct ini_ctx *x = user;
	struct config_profile *p;

	if (x->rv != 0)
		return 0; /* inih goes on after an error: keep the first */
	x->err[0] = '\0';
	if (strcmp(section, "agent") == 0)
		x->rv = agent_key(x, key, val);
	else if (strncmp(section, "profile.", 8) == 0
	    && util_valid_id(section + 8)) {
		p = profile_get_or_add(x->c, section + 8);
		x->rv
		    = p == NULL ? HPCXL_ECONFIG : profile_key(x, p, key, val);
	} else
		x->rv = HPCXL_ECONFIG;
	if (x->rv == 0)
		return 1;
	if (x->err[0] == '\0')
		util_set_err(x->err, x->errlen, "[%s] %s = %s: %s", section,
		    key, val, "unknown key, section or invalid value");
	else
		name_the_key(x, section, key);
	return 0; /* inih reports the line of the first error */
}

/*
 * Debian's inih cuts lines at INI_MAX_LINE bytes and reads the rest as a
 * new line, and takes an indented line as the continuation of the key
 * above it, which for "command" silently replaces the command with the
 * tail. Both are refused before inih sees the file.
 */
#define CONFIG_MAX_LINE 198
/* What inih skips at the start of a line (isspace() in the C locale, bar
 * the newline): \v, \f and \r indent a line as much as a space does. */
#define CONFIG_INDENT " \t\v\f\r"

bool
config_line_continues(const char *line)
{
	size_t lead = strspn(line, CONFIG_INDENT);

	return lead > 0 && line[lead] != '\0' && line[lead] != '\n'
	    && line[lead] != ';' && line[lead] != '#';
}

/* Names the white space a line starts with when an editor may not show
 * it; a space or a tab is plain to see. */
static const char *
indent_name(char c)
{
	switch (c) {
	case '\v':
		return " (it starts with \\v, a vertical tab)";
	case '\f':
		return " (it starts with \\f, a form feed)";
	case '\r':
		return " (it starts with \\r, a carriage return)";
	default:
		return "";
	}
}

/* Returns 0, -1 if unreadable, or the number of the first bad line. */
static int
config_prescan(const char *path, char *why, size_t whylen)
{
	char buf[CONFIG_MAX_LINE + 2];
	FILE *f = fopen(path, "r");
	int line = 0, bad = 0;

	if (f == NULL)
		return -1;
	while (bad == 0 && fgets(buf, sizeof(buf), f) != NULL) {
		line++;
		if (strchr(buf, '\n') == NULL && !feof(f)) {
			util_set_err(why, whylen, "line longer than %d bytes",
			    CONFIG_MAX_LINE);
			bad = line;
		} else if (config_line_continues(buf)) {
			util_set_err(why, whylen,
			    "indented line%s: continuation "
			    "lines are not supported",
			    indent_name(buf[0]));
			bad = line;
		}
	}
	fclose(f);
	return bad;
}

int
config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	char detail[512] = "";
	struct ini_ctx x = { c, detail, sizeof(detail), 0 };
	int line = config_prescan(path, detail, sizeof(detail));

	if (line == 0)
		line = ini_parse(path, ini_on_key, &x);
	if (line == 0)
		return 0;
	if (line < 0)
		util_set_err(err, errlen, "%s: cannot read the file", path);
	else if (detail[0] != '\0')
		util_set_err(err, errlen, "%s:%d: %s", path, line, detail);
	else
		util_set_err(err, errlen, "%s:%d: syntax error", path, line);
	return HPCXL_ECONFIG;
}

int
config_validate(const struct config *c, char *err, size_t errlen)
{
	if (!util_valid_id(c->node)) {
		util_set_err(err, errlen, "invalid node name '%s'", c->node);
		return HPCXL_ECONFIG;
	}
	if (c->nlisten == 0) {
		util_set_err(err, errlen, "no listen URL (use --listen)");
		return HPCXL_ECONFIG;
	}
	return config_validate_profiles(c, err, errlen);
}

int
config_validate_profiles(const struct config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nprofiles; i++) {
		if (c->profiles[i].argv == NULL) {
			util_set_err(err, errlen,
			    "profile '%s' has no command",
			    c->profiles[i].name);
			return HPCXL_ECONFIG;
		}
	}
	return 0;
}

int
config_settle_users(
    struct config *c, bool agent_is_root, char *err, size_t errlen)
{
	struct config_profile *p;
	size_t i;

	for (i = 0; i < c->nprofiles; i++) {
		p = &c->profiles[i];
		if (p->user != NULL)
			continue;
		if (c->default_user != NULL) {
			if (config_set_str(&p->user, c->default_user) != 0)
				return HPCXL_ENOMEM;
			continue;
		}
		/* A root agent would run it as root: only when asked to. */
		if (agent_is_root) {
			util_set_err(err, errlen,
			    "profile '%s' names no user, and a root agent "
			    "runs workers as root only when told to: set "
			    "user = NAME (or user = root) in [profile.%s], "
			    "or default_user in [agent] (--default-user "
			    "USER) for every profile that names none",
			    p->name, p->name);
			return HPCXL_ECONFIG;
		}
	}
	return 0;
}

const struct config_profile *
config_find_profile(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nprofiles; i++) {
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	}
	return NULL;
}

void
config_free(struct config *c)
{
	size_t i;

	free(c->node);
	free(c->state_dir);
	free(c->backend);
	free(c->cgroup_root);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->ipc_group);
	free(c->metrics_listen);
	free(c->default_user);
	for (i = 0; i < c->nadmins; i++)
		free(c->admins[i]);
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	for (i = 0; i < c->nprofiles; i++)
		config_profile_free(&c->profiles[i]);
	memset(c, 0, sizeof(*c));
}

void
config_profile_free(struct config_profile *p)
{
	free(p->name);
	free(p->workdir);
	free(p->user);
	free(p->group);
	argv_free(p->argv);
	argv_free(p->env);
	memset(p, 0, sizeof(*p));
}

/* A copy of a NULL-terminated vector of n strings (NULL stays NULL). */
static int
strv_dup(char *const *v, char ***out)
{
	size_t n = 0;

	*out = NULL;
	if (v == NULL)
		return 0;
	while (v[n] != NULL)
		n++;
	if ((*out = calloc(n + 1, sizeof(**out))) == NULL)
		return HPCXL_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (((*out)[i] = strdup(v[i])) == NULL)
			return HPCXL_ENOMEM;
	return 0;
}

static int
str_dup(const char *s, char **out)
{
	*out = s != NULL ? strdup(s) : NULL;
	return s != NULL && *out == NULL ? HPCXL_ENOMEM : 0;
}

int
config_profile_dup(
    struct config_profile *dst, const struct config_profile *src)
{
	*dst = *src;
	dst->name = dst->workdir = dst->user = dst->group = NULL;
	dst->argv = dst->env = NULL;
	if (str_dup(src->name, &dst->name) != 0
	    || str_dup(src->workdir, &dst->workdir) != 0
	    || str_dup(src->user, &dst->user) != 0
	    || str_dup(src->group, &dst->group) != 0
	    || strv_dup(src->argv, &dst->argv) != 0
	    || strv_dup(src->env, &dst->env) != 0) {
		config_profile_free(dst);
		return HPCXL_ENOMEM;
	}
	return 0;
}

void
config_take_profiles(struct config *c, struct config *from)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		config_profile_free(&c->profiles[i]);
	memcpy(c->profiles, from->profiles,
	    from->nprofiles * sizeof(from->profiles[0]));
	c->nprofiles = from->nprofiles;
	from->nprofiles = 0;
}
