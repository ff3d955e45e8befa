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

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

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
		set_err(err, errlen, "cannot split command '%s' (%s)", cmd,
		    rv == WRDE_CMDSUB ? "command substitution is not allowed"
		                      : "bad quoting or undefined variable");
		return HPCXL_ECONFIG;
	}
	if (we.we_wordc == 0) {
		wordfree(&we);
		set_err(err, errlen, "empty command");
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
		set_err(err, errlen, "profile '%s' is not NAME=COMMAND", spec);
		return HPCXL_ECONFIG;
	}
	memcpy(name, spec, n);
	name[n] = '\0';
	if (!util_valid_id(name)) {
		set_err(err, errlen, "invalid profile name '%s'", name);
		return HPCXL_ECONFIG;
	}
	if ((p = profile_get_or_add(c, name)) == NULL) {
		set_err(err, errlen, "too many profiles");
		return HPCXL_ECONFIG;
	}
	return profile_set_command(p, eq + 1, err, errlen);
}

int
config_add_listen(struct config *c, const char *url, char *err, size_t errlen)
{
	if (c->nlisten == CONFIG_MAX_LISTEN) {
		set_err(err, errlen, "more than %d listen URLs",
		    CONFIG_MAX_LISTEN);
		return HPCXL_ECONFIG;
	}
	if ((c->listen[c->nlisten] = strdup(url)) == NULL)
		return HPCXL_ENOMEM;
	c->nlisten++;
	return 0;
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
	return HPCXL_ECONFIG;
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
		set_err(x->err, x->errlen, "[%s] %s = %s: %s", section, key,
		    val, "unknown key, section or invalid value");
	return 0; /* inih reports the line of the first error */
}

/*
 * Debian's inih cuts lines at INI_MAX_LINE bytes and reads the rest as a
 * new line, and takes an indented line as the continuation of the key
 * above it, which for "command" silently replaces the command with the
 * tail. Both are refused before inih sees the file.
 */
#define CONFIG_MAX_LINE 198

static bool
line_is_continuation(const char *line)
{
	size_t lead = strspn(line, " \t");

	return lead > 0 && line[lead] != '\0' && line[lead] != '\n'
	    && line[lead] != ';' && line[lead] != '#';
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
			set_err(why, whylen, "line longer than %d bytes",
			    CONFIG_MAX_LINE);
			bad = line;
		} else if (line_is_continuation(buf)) {
			set_err(why, whylen,
			    "indented line: continuation "
			    "lines are not supported");
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
		set_err(err, errlen, "%s: cannot read the file", path);
	else if (detail[0] != '\0')
		set_err(err, errlen, "%s:%d: %s", path, line, detail);
	else
		set_err(err, errlen, "%s:%d: syntax error", path, line);
	return HPCXL_ECONFIG;
}

int
config_validate(const struct config *c, char *err, size_t errlen)
{
	size_t i;

	if (!util_valid_id(c->node)) {
		set_err(err, errlen, "invalid node name '%s'", c->node);
		return HPCXL_ECONFIG;
	}
	if (c->nlisten == 0) {
		set_err(err, errlen, "no listen URL (use --listen)");
		return HPCXL_ECONFIG;
	}
	for (i = 0; i < c->nprofiles; i++) {
		if (c->profiles[i].argv == NULL) {
			set_err(err, errlen, "profile '%s' has no command",
			    c->profiles[i].name);
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
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	for (i = 0; i < c->nprofiles; i++) {
		free(c->profiles[i].name);
		free(c->profiles[i].workdir);
		argv_free(c->profiles[i].argv);
	}
	memset(c, 0, sizeof(*c));
}
