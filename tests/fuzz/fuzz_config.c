/*
 * The agent's config loader: the input is an INI file, read as
 * agent/main.c reads one (config_init, config_load_file, config_validate,
 * config_free). A file that loads is loaded a second time over itself, so
 * that what replaces earlier settings runs too (a command set again, an
 * env NAME set again, listen URLs that add up). What loaded is checked
 * against the promises of config.h.
 */
#include "fuzz.h"

#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <string.h>

/*
 * A profile's command goes through wordexp(3), which expands glob patterns
 * against this machine's file system: "/ * / * / * / *" (without blanks)
 * lists /proc and /sys for seconds and hundreds of MiB. That is a cost of
 * the file system, not of the parser, and it would stop the run as a
 * timeout: inputs with more wildcards than this are skipped.
 */
#define MAX_WILDCARDS 2

static bool
too_many_wildcards(const uint8_t *data, size_t size)
{
	size_t i, n = 0;

	for (i = 0; i < size; i++)
		n += data[i] == '*' || data[i] == '?';
	return n > MAX_WILDCARDS;
}

/* config.h: NAME=VALUE entries, distinct NAMEs, never HPCXL_*, and a
 * NULL after the last. */
static bool
env_ok(const struct config_profile *p)
{
	size_t i, j, n;

	if (p->nenv > CONFIG_MAX_ENV || (p->nenv > 0 && p->env[p->nenv]))
		return false;
	for (i = 0; i < p->nenv; i++) {
		n = strcspn(p->env[i], "=");
		if (p->env[i][n] != '='
		    || strncmp(p->env[i], "HPCXL_", 6) == 0)
			return false;
		for (j = 0; j < i; j++) {
			if (strncmp(p->env[j], p->env[i], n + 1) == 0)
				return false;
		}
	}
	return true;
}

static bool
limits_ok(const struct config_profile *p)
{
	for (size_t l = 0; l < CONFIG_NLIMITS; l++) {
		if (p->limits[l] < CONFIG_LIMIT_INHERIT)
			return false;
	}
	/* setrlimit() refuses an infinite RLIMIT_NOFILE. */
	return p->limits[CONFIG_LIMIT_NOFILE] != CONFIG_LIMIT_INFINITY;
}

static bool
profile_ok(const struct config *c, const struct config_profile *p)
{
	return util_valid_id(p->name) && config_find_profile(c, p->name) == p
	    && (p->argv == NULL || p->argv[0] != NULL)
	    && p->stop_grace_ms >= -1 && env_ok(p) && limits_ok(p);
}

static void
check_loaded(const struct config *c)
{
	static const char *const backends[] = { "auto", "cgroup2", "pgroup" };
	bool backend_known = false;
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		backend_known |= strcmp(c->backend, backends[i]) == 0;
	fuzz_require(backend_known, "config: unknown backend loaded");
	fuzz_require(c->nlisten <= CONFIG_MAX_LISTEN
	        && c->nprofiles <= CONFIG_MAX_PROFILES,
	    "config: more listen URLs or profiles than the arrays hold");
	for (i = 0; i < c->nlisten; i++)
		fuzz_require(c->listen[i] != NULL, "config: NULL listen URL");
	for (i = 0; i < c->nprofiles; i++)
		fuzz_require(profile_ok(c, &c->profiles[i]),
		    "config: a loaded profile breaks config.h's rules");
}

/* A file that validates names a node, listens, and has a command for
 * every profile. */
static void
check_valid(const struct config *c)
{
	char err[512];
	size_t i;

	if (config_validate(c, err, sizeof(err)) != 0)
		return;
	fuzz_require(util_valid_id(c->node) && c->nlisten > 0,
	    "config: validated without a node name or a listen URL");
	for (i = 0; i < c->nprofiles; i++)
		fuzz_require(c->profiles[i].argv != NULL,
		    "config: validated a profile without a command");
}

/* Loads the file into c and checks what it holds; a failure must say
 * why. Returns true if it loaded. */
static bool
load_and_check(struct config *c)
{
	char err[512] = "";

	if (config_load_file(c, fuzz_file_path(), err, sizeof(err)) != 0) {
		fuzz_require(
		    err[0] != '\0', "config: a failed load gave no message");
		return false;
	}
	check_loaded(c);
	check_valid(c);
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;

	if (too_many_wildcards(data, size))
		return -1; /* -1: libFuzzer keeps it out of the corpus */
	fuzz_file_set(data, size);
	fuzz_require(config_init(&c) == 0, "config_init failed");
	if (load_and_check(&c))
		load_and_check(&c);
	config_free(&c);
	return 0;
}
