/*
 * Unit tests of the agent configuration (common/config.c): defaults, INI
 * files read with inih, profile commands split with wordexp(3), profile
 * specs from the command line, and config_validate().
 *
 * Every test runs with a fresh config (config_init in the fixture,
 * config_free in the teardown, so an aborted test leaks nothing either) and
 * a private mkdtemp directory for its INI files, removed afterwards.
 */
#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include "scratch.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixture ------------------------------------------------------------ */

static char tmpdir[PATH_MAX];
static char ini_path[PATH_MAX + 64]; /* what ini_write() wrote last */
static struct config cfg;
static char err[1024];

static void
setup(void)
{
	scratch_dir_make(tmpdir, sizeof(tmpdir), "config");
	cr_assert_eq(config_init(&cfg), 0);
	err[0] = '\0';
}

static void
teardown(void)
{
	config_free(&cfg);
	scratch_dir_remove(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------ */

/* Writes text to <tmpdir>/<name>; returns the path (valid until the next
 * call). */
static const char *
ini_write(const char *name, const char *text)
{
	FILE *f;

	snprintf(ini_path, sizeof(ini_path), "%s/%s", tmpdir, name);
	f = fopen(ini_path, "w");
	cr_assert_not_null(f, "cannot create %s", ini_path);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
	return ini_path;
}

/* Writes text to agent.ini and loads it into cfg. */
static int
load(const char *text)
{
	const char *path = ini_write("agent.ini", text);

	err[0] = '\0';
	return config_load_file(&cfg, path, err, sizeof(err));
}

static void
assert_loads(const char *text)
{
	int rv = load(text);

	cr_assert_eq(rv, 0, "rejected (%d: %s):\n%s", rv, err, text);
}

/*
 * Loading text must fail with HPCXL_ECONFIG and a message that starts with
 * the file name, gives the line number and contains needle (if not NULL).
 */
static void
assert_file_error(const char *text, int line, const char *needle)
{
	char where[sizeof(ini_path) + 32];
	int rv = load(text);

	cr_assert_eq(
	    rv, HPCXL_ECONFIG, "accepted or wrong error %d:\n%s", rv, text);
	snprintf(where, sizeof(where), "%s:%d:", ini_path, line);
	cr_assert(strncmp(err, where, strlen(where)) == 0,
	    "message \"%s\" does not start with \"%s\"", err, where);
	if (needle != NULL)
		cr_assert_not_null(strstr(err, needle),
		    "message \"%s\" does not mention \"%s\"", err, needle);
}

/* argv must be exactly the n words of want, then NULL. */
static void
assert_argv(char *const *argv, const char *const *want, size_t n)
{
	size_t i;

	cr_assert_not_null(argv);
	for (i = 0; i < n; i++) {
		cr_assert_not_null(argv[i], "argv[%zu] missing", i);
		cr_assert_str_eq(argv[i], want[i], "argv[%zu]", i);
	}
	cr_assert_null(argv[n], "argv has more than %zu words", n);
}

#define ASSERT_ARGV(argv, ...)                                                \
	do {                                                                  \
		const char *const want_[] = { __VA_ARGS__ };                  \
		assert_argv(argv, want_, sizeof(want_) / sizeof(want_[0]));   \
	} while (0)

/* ---- defaults ----------------------------------------------------------- */

Test(config, defaults_after_init)
{
	char host[256] = "";

	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	cr_assert_str_eq(cfg.node, host);
	cr_assert_str_eq(cfg.state_dir, CONFIG_DEFAULT_STATE_DIR);
	cr_assert_str_eq(cfg.state_dir, "/var/lib/hpcxl");
	cr_assert_str_eq(cfg.backend, "auto");
	cr_assert_str_eq(cfg.cgroup_root, "auto");
	cr_assert_eq(cfg.default_grace_ms, 10000);
	cr_assert_eq(cfg.default_grace_ms, CONFIG_DEFAULT_GRACE_MS);
	cr_assert_eq(cfg.log_max_bytes, 10485760);
	cr_assert_eq(cfg.log_max_bytes, CONFIG_DEFAULT_LOG_MAX_BYTES);
	cr_assert_eq(cfg.nlisten, 0);
	cr_assert_eq(cfg.nprofiles, 0);
	cr_assert_null(config_find_profile(&cfg, "excel"));
}

Test(config, empty_file_keeps_the_defaults)
{
	char *node = strdup(cfg.node);

	cr_assert_not_null(node);
	assert_loads("; nothing but a comment\n\n# and another\n");
	cr_expect_str_eq(cfg.node, node);
	free(node);
	cr_assert_str_eq(cfg.backend, "auto");
	cr_assert_eq(cfg.default_grace_ms, 10000);
	cr_assert_eq(cfg.nlisten, 0);
	cr_assert_eq(cfg.nprofiles, 0);
}

/* ---- a full, valid file ------------------------------------------------- */

static const char full_ini[]
    = "; hpcxl-agent test configuration\n"
      "[agent]\n"
      "node = n01.rack-2_a\n"
      "listen = tcp://0.0.0.0:7420   ; comment after a value\n"
      "listen = ipc:///run/hpcxl/agent.sock\n"
      "state_dir = /srv/hpcxl/state\n"
      "backend = pgroup\n"
      "cgroup_root = /sys/fs/cgroup/hpcxl\n"
      "stop_grace_ms = 2500\n"
      "\n"
      "[profile.excel]\n"
      "command = /opt/xl/bin/worker --title \"a b\" 'c  d' $HPCXL_T_DIR/x "
      "'$HPCXL_T_DIR'\n"
      "stop_grace_ms = 5000\n"
      "workdir = /srv/excel\n"
      "\n"
      "[profile.py-3.12]\n"
      "command = \"${HPCXL_T_BIN}/python3\" -u -c \"print(1)\" a\\ b\n"
      "stop_grace_ms = 0\n"
      "workdir = /tmp/py\n";

Test(config, full_file_sets_every_field)
{
	const struct config_profile *p;

	cr_assert_eq(setenv("HPCXL_T_DIR", "/data/in", 1), 0);
	cr_assert_eq(setenv("HPCXL_T_BIN", "/usr/local/bin", 1), 0);
	assert_loads(full_ini);

	cr_assert_str_eq(cfg.node, "n01.rack-2_a");
	cr_assert_eq(cfg.nlisten, 2);
	cr_assert_str_eq(cfg.listen[0], "tcp://0.0.0.0:7420");
	cr_assert_str_eq(cfg.listen[1], "ipc:///run/hpcxl/agent.sock");
	cr_assert_str_eq(cfg.state_dir, "/srv/hpcxl/state");
	cr_assert_str_eq(cfg.backend, "pgroup");
	cr_assert_str_eq(cfg.cgroup_root, "/sys/fs/cgroup/hpcxl");
	cr_assert_eq(cfg.default_grace_ms, 2500);

	cr_assert_eq(cfg.nprofiles, 2);
	p = &cfg.profiles[0];
	cr_assert_str_eq(p->name, "excel");
	ASSERT_ARGV(p->argv, "/opt/xl/bin/worker", "--title", "a b", "c  d",
	    "/data/in/x", "$HPCXL_T_DIR");
	cr_assert_eq(p->stop_grace_ms, 5000);
	cr_assert_str_eq(p->workdir, "/srv/excel");

	p = &cfg.profiles[1];
	cr_assert_str_eq(p->name, "py-3.12");
	ASSERT_ARGV(
	    p->argv, "/usr/local/bin/python3", "-u", "-c", "print(1)", "a b");
	cr_assert_eq(p->stop_grace_ms, 0);
	cr_assert_str_eq(p->workdir, "/tmp/py");

	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, every_backend_value_is_accepted)
{
	static const char *const ok[] = { "auto", "cgroup2", "pgroup" };
	char text[128];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "[agent]\nbackend = %s\n", ok[i]);
		assert_loads(text);
		cr_assert_str_eq(cfg.backend, ok[i]);
	}
}

Test(config, profile_without_optional_keys_inherits)
{
	const struct config_profile *p;

	assert_loads("[profile.min]\ncommand = /bin/true\n");
	p = config_find_profile(&cfg, "min");
	cr_assert_not_null(p);
	ASSERT_ARGV(p->argv, "/bin/true");
	cr_assert_eq(p->stop_grace_ms, -1, "must inherit the agent default");
	cr_assert_null(p->workdir);
	cr_assert_eq(p->restart, CONFIG_RESTART_NEVER);
	cr_assert_eq(p->max_restarts, CONFIG_DEFAULT_MAX_RESTARTS);
	cr_assert_null(p->user);
	cr_assert_null(p->group);
	cr_assert_null(p->env);
	cr_assert_eq(p->nenv, 0);
	for (int l = 0; l < CONFIG_NLIMITS; l++)
		cr_assert_eq(
		    p->limits[l], CONFIG_LIMIT_INHERIT, "limit %d", l);
}

Test(config, grace_limits_and_blanks)
{
	/* 0 and one day are the bounds. */
	assert_loads("[agent]\nstop_grace_ms = 0\n");
	cr_assert_eq(cfg.default_grace_ms, 0);
	assert_loads("[agent]\nstop_grace_ms = 86400000\n");
	cr_assert_eq(cfg.default_grace_ms, 86400000);
	/* inih strips the blanks around a value before config.c sees it. */
	assert_loads("[agent]\nstop_grace_ms =    7   \n");
	cr_assert_eq(cfg.default_grace_ms, 7);
}

Test(config, second_file_adds_and_overrides)
{
	const struct config_profile *p;
	const char *first = ini_write("first.ini",
	    "[agent]\nnode = a1\nlisten = tcp://a:1\n"
	    "[profile.w]\ncommand = /bin/one\n"
	    "workdir = /w\n");

	cr_assert_eq(
	    config_load_file(&cfg, first, err, sizeof(err)), 0, "%s", err);
	assert_loads("[agent]\nnode = a2\nlisten = tcp://b:2\n"
	             "[profile.w]\ncommand = /bin/two 2\n");
	cr_assert_str_eq(cfg.node, "a2");
	cr_assert_eq(cfg.nlisten, 2);
	cr_assert_str_eq(cfg.listen[0], "tcp://a:1");
	cr_assert_str_eq(cfg.listen[1], "tcp://b:2");
	cr_assert_eq(cfg.nprofiles, 1);
	p = config_find_profile(&cfg, "w");
	cr_assert_not_null(p);
	ASSERT_ARGV(p->argv, "/bin/two", "2");
	cr_assert_str_eq(p->workdir, "/w");
}

Test(config, restart_policy)
{
	const struct config_profile *p;

	assert_loads("[profile.a]\ncommand = /bin/true\nrestart = always\n"
	             "max_restarts = 0\n"
	             "[profile.b]\ncommand = /bin/true\n"
	             "restart = on-failure\nmax_restarts = 1000000\n"
	             "[profile.c]\ncommand = /bin/true\nrestart = always\n"
	             "restart = never\n");
	p = config_find_profile(&cfg, "a");
	cr_assert_not_null(p);
	cr_assert_eq(p->restart, CONFIG_RESTART_ALWAYS);
	cr_assert_eq(p->max_restarts, 0);
	p = config_find_profile(&cfg, "b");
	cr_assert_not_null(p);
	cr_assert_eq(p->restart, CONFIG_RESTART_ON_FAILURE);
	cr_assert_eq(p->max_restarts, 1000000);
	p = config_find_profile(&cfg, "c");
	cr_assert_not_null(p);
	cr_assert_eq(p->restart, CONFIG_RESTART_NEVER);
	cr_assert_eq(p->max_restarts, CONFIG_DEFAULT_MAX_RESTARTS);
}

Test(config, bad_restart_values)
{
	assert_file_error(
	    "[profile.p]\ncommand = /bin/true\nrestart = maybe\n", 3,
	    "restart");
	assert_file_error("[profile.p]\nrestart = Always\n", 2, "restart");
	assert_file_error("[profile.p]\nrestart =\n", 2, "restart");
	assert_file_error(
	    "[profile.p]\nmax_restarts = -1\n", 2, "max_restarts");
	assert_file_error(
	    "[profile.p]\nmax_restarts = 1000001\n", 2, "max_restarts");
	assert_file_error(
	    "[profile.p]\nmax_restarts = +3\n", 2, "max_restarts");
	/* Profile keys only. */
	assert_file_error("[agent]\nrestart = always\n", 2, "restart");
}

/* ---- log cap ------------------------------------------------------------ */

Test(config, log_max_bytes)
{
	assert_loads("[agent]\nlog_max_bytes = 1048576\n");
	cr_assert_eq(cfg.log_max_bytes, 1048576);
	assert_loads("[agent]\nlog_max_bytes = 0\n");
	cr_assert_eq(cfg.log_max_bytes, 0, "0 means no cap");
	assert_loads("[agent]\nlog_max_bytes = 9223372036854775807\n");
	cr_assert_eq(cfg.log_max_bytes, INT64_MAX);
}

/* Every one of bad as the value of [agent] key is refused, naming key. */
static void
assert_agent_key_refuses(const char *key, const char *const *bad, size_t nbad)
{
	char text[160];

	for (size_t i = 0; i < nbad; i++) {
		snprintf(text, sizeof(text), "[agent]\nnode = n1\n%s = %s\n",
		    key, bad[i]);
		assert_file_error(text, 3, key);
	}
}

Test(config, bad_log_max_bytes)
{
	static const char *const bad[] = { "-1", "abc", "10M", "1.5", "+5",
		"0x10", "", "99999999999999999999" };

	assert_agent_key_refuses(
	    "log_max_bytes", bad, sizeof(bad) / sizeof(bad[0]));
	cr_assert_eq(cfg.log_max_bytes, CONFIG_DEFAULT_LOG_MAX_BYTES);
	/* An agent key only. */
	assert_file_error(
	    "[profile.p]\nlog_max_bytes = 5\n", 2, "log_max_bytes");
}

/* ---- log retention ------------------------------------------------------ */

Test(config, log_retention)
{
	static const struct {
		const char *val;
		int64_t s;
	} good[] = { { "0", 0 }, { "90", 90 }, { "90s", 90 }, { "30m", 1800 },
		{ "12h", 43200 }, { "7d", 604800 } };
	char text[128];

	cr_assert_eq(cfg.log_retention_s, 7 * 86400, "default: 7 days");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[agent]\nlog_retention = %s\n",
		    good[i].val);
		assert_loads(text);
		cr_assert_eq(
		    cfg.log_retention_s, good[i].s, "%s", good[i].val);
	}
}

Test(config, bad_log_retention)
{
	static const char *const bad[]
	    = { "-1", "d", "7w", "1.5d", "7dd", "", "99999d", "5 d" };

	assert_agent_key_refuses(
	    "log_retention", bad, sizeof(bad) / sizeof(bad[0]));
}

/* ---- restarts and unkillable processes ---------------------------------- */

Test(config, close_on_exit_and_unkillable_limit)
{
	cr_assert_not(
	    cfg.close_on_exit, "sessions survive a restart by default");
	cr_assert_eq(cfg.unkillable_limit_ms, CONFIG_DEFAULT_UNKILLABLE_MS);
	cr_assert_eq(cfg.unkillable_limit_ms, 60000);
	assert_loads(
	    "[agent]\nclose_on_exit = yes\nunkillable_limit_ms = 250\n");
	cr_assert(cfg.close_on_exit);
	cr_assert_eq(cfg.unkillable_limit_ms, 250);
	assert_loads("[agent]\nclose_on_exit = false\n");
	cr_assert_not(cfg.close_on_exit);
}

Test(config, bad_close_on_exit_and_unkillable_limit)
{
	static const char *const bad_bool[] = { "1", "True", "on", "" };
	static const char *const bad_ms[] = { "-1", "1s", "", "86400001" };
	char text[128];

	for (size_t i = 0; i < sizeof(bad_bool) / sizeof(bad_bool[0]); i++) {
		snprintf(text, sizeof(text), "[agent]\nclose_on_exit = %s\n",
		    bad_bool[i]);
		assert_file_error(text, 2, "close_on_exit");
	}
	for (size_t i = 0; i < sizeof(bad_ms) / sizeof(bad_ms[0]); i++) {
		snprintf(text, sizeof(text),
		    "[agent]\nunkillable_limit_ms = %s\n", bad_ms[i]);
		assert_file_error(text, 2, "unkillable_limit_ms");
	}
}

/* ---- who may do what ---------------------------------------------------- */

Test(config, admins_and_limits_default_to_none)
{
	cr_assert_eq(cfg.nadmins, 0);
	cr_assert_eq(cfg.max_sessions, 0, "0 means no limit");
	cr_assert_eq(cfg.max_workers, 0, "0 means no limit");
	cr_assert_not(config_is_admin(&cfg, "anonymous"));
}

Test(config, admins_lists_add_up_and_trim_spaces)
{
	assert_loads("[agent]\nadmins = alice,  Ops Team ,bob@example.com\n"
	             "admins = uid:1001\nadmins = alice\n");
	cr_assert_eq(cfg.nadmins, 4, "a repeated name is kept once");
	cr_assert_str_eq(cfg.admins[0], "alice");
	cr_assert_str_eq(cfg.admins[1], "Ops Team");
	cr_assert_str_eq(cfg.admins[2], "bob@example.com");
	cr_assert_str_eq(cfg.admins[3], "uid:1001");
	cr_assert(config_is_admin(&cfg, "Ops Team"));
	cr_assert_not(config_is_admin(&cfg, "ops team"), "exact match");
	cr_assert_not(config_is_admin(&cfg, "Ops"));
	cr_assert_eq(config_add_admins(&cfg, "anonymous", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert(config_is_admin(&cfg, "anonymous"));
}

Test(config, bad_admins_are_named)
{
	static const char *const bad[]
	    = { "alice,", ",alice", "a,,b", " ", "al\x01ice", "caf\xc3\xa9" };
	char text[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[agent]\nadmins = %s\n", bad[i]);
		assert_file_error(text, 2, "admin");
	}
	cr_assert_eq(
	    config_add_admins(&cfg, "a,", err, sizeof(err)), HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "not an identity"), "%s", err);
	assert_file_error("[profile.p]\nadmins = a\n", 2, "admins");
}

Test(config, too_many_admins)
{
	char name[32];

	for (int i = 0; i < CONFIG_MAX_ADMINS; i++) {
		snprintf(name, sizeof(name), "admin%d", i);
		cr_assert_eq(config_add_admins(&cfg, name, err, sizeof(err)),
		    0, "%s", err);
	}
	cr_assert_eq(config_add_admins(&cfg, "one-more", err, sizeof(err)),
	    HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "admins"), "%s", err);
}

Test(config, per_identity_limits)
{
	assert_loads("[agent]\nmax_sessions = 3\nmax_workers = 4096\n");
	cr_assert_eq(cfg.max_sessions, 3);
	cr_assert_eq(cfg.max_workers, 4096);
	assert_loads("[agent]\nmax_sessions = 0\n");
	cr_assert_eq(cfg.max_sessions, 0);
}

Test(config, bad_per_identity_limits)
{
	static const char *const bad[]
	    = { "-1", "", "3 sessions", "0x10", "2147483648" };
	char text[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[agent]\nmax_sessions = %s\n",
		    bad[i]);
		assert_file_error(text, 2, "max_sessions");
		snprintf(
		    text, sizeof(text), "[agent]\nmax_workers = %s\n", bad[i]);
		assert_file_error(text, 2, "max_workers");
	}
}

/* ---- user and group ----------------------------------------------------- */

Test(config, user_and_group_names_and_ids)
{
	const struct config_profile *p;

	/* Names are kept as written: they are looked up at spawn, so an
	 * account that does not exist yet is not an error here. */
	assert_loads("[profile.a]\ncommand = /bin/true\nuser = nobody\n"
	             "group = nogroup\n"
	             "[profile.b]\ncommand = /bin/true\nuser = 65534\n"
	             "group = 0\n"
	             "[profile.c]\ncommand = /bin/true\n"
	             "user = not-created-yet_1.x\n"
	             "[profile.d]\ncommand = /bin/true\ngroup = 4294967294\n");
	p = config_find_profile(&cfg, "a");
	cr_assert_str_eq(p->user, "nobody");
	cr_assert_str_eq(p->group, "nogroup");
	p = config_find_profile(&cfg, "b");
	cr_assert_str_eq(p->user, "65534");
	cr_assert_str_eq(p->group, "0");
	p = config_find_profile(&cfg, "c");
	cr_assert_str_eq(p->user, "not-created-yet_1.x");
	cr_assert_null(p->group, "group defaults to the user's");
	p = config_find_profile(&cfg, "d");
	cr_assert_null(p->user);
	cr_assert_str_eq(p->group, "4294967294");
}

Test(config, later_user_line_wins)
{
	assert_loads("[profile.a]\nuser = one\nuser = two\n");
	cr_assert_str_eq(config_find_profile(&cfg, "a")->user, "two");
}

Test(config, bad_users_and_groups)
{
	static const char *const bad[] = {
		"", /* empty */
		"a b", /* blank inside */
		"a:b", /* passwd separator */
		"a/b",
		"a,b",
		"-x", /* looks like an option */
		"4294967295", /* (uid_t)-1 means "unchanged" to setuid */
		"99999999999999999999",
	};
	static const char *const keys[] = { "user", "group" };
	char text[256];

	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(text, sizeof(text),
			    "[profile.p]\ncommand = /bin/true\n%s = %s\n",
			    keys[k], bad[i]);
			assert_file_error(text, 3, keys[k]);
		}
	}
	cr_assert_null(config_find_profile(&cfg, "p")->user);
	cr_assert_null(config_find_profile(&cfg, "p")->group);
	/* Profile keys only. */
	assert_file_error("[agent]\nuser = nobody\n", 2, "user");
	assert_file_error("[agent]\ngroup = nogroup\n", 2, "group");
}

/* ---- env ---------------------------------------------------------------- */

Test(config, env_keeps_order_and_later_name_wins)
{
	const struct config_profile *p;

	assert_loads("[profile.e]\ncommand = /bin/true\n"
	             "env = B=1\n"
	             "env = A=first\n"
	             "env = EMPTY=\n"
	             "env = EQ=x=y==z\n"
	             "env = _u9=ok\n"
	             "env = A=second value\n"
	             "env = hpcxl_session=lower case is another name\n"
	             "env = HPCXLX=not the prefix\n");
	p = config_find_profile(&cfg, "e");
	cr_assert_not_null(p);
	cr_assert_eq(p->nenv, 7);
	cr_assert_str_eq(p->env[0], "B=1");
	cr_assert_str_eq(p->env[1], "A=second value");
	cr_assert_str_eq(p->env[2], "EMPTY=");
	cr_assert_str_eq(p->env[3], "EQ=x=y==z");
	cr_assert_str_eq(p->env[4], "_u9=ok");
	cr_assert_str_eq(
	    p->env[5], "hpcxl_session=lower case is another name");
	cr_assert_str_eq(p->env[6], "HPCXLX=not the prefix");
	cr_assert_null(p->env[7], "the vector is NULL-terminated");
}

Test(config, env_name_prefix_is_not_the_same_name)
{
	const struct config_profile *p;

	assert_loads("[profile.e]\nenv = AB=1\nenv = A=2\nenv = ABC=3\n"
	             "env = A=4\n");
	p = config_find_profile(&cfg, "e");
	cr_assert_eq(p->nenv, 3);
	cr_assert_str_eq(p->env[0], "AB=1");
	cr_assert_str_eq(p->env[1], "A=4");
	cr_assert_str_eq(p->env[2], "ABC=3");
}

Test(config, env_second_file_adds_and_overrides)
{
	const struct config_profile *p;
	const char *first = ini_write("first.ini",
	    "[profile.e]\ncommand = /bin/true\nenv = X=1\nenv = Y=2\n");

	cr_assert_eq(
	    config_load_file(&cfg, first, err, sizeof(err)), 0, "%s", err);
	assert_loads("[profile.e]\nenv = Y=two\nenv = Z=3\n");
	p = config_find_profile(&cfg, "e");
	cr_assert_eq(p->nenv, 3);
	cr_assert_str_eq(p->env[0], "X=1");
	cr_assert_str_eq(p->env[1], "Y=two");
	cr_assert_str_eq(p->env[2], "Z=3");
}

Test(config, bad_env_entries)
{
	static const char *const bad[] = {
		"FOO", /* no '=' */
		"=x", /* empty name */
		"1A=x", /* leading digit */
		"A-B=x",
		"A.B=x",
		"A B=x",
		"\xc3\xa9=x", /* not ASCII */
		"",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		    "[profile.p]\ncommand = /bin/true\nenv = %s\n", bad[i]);
		assert_file_error(text, 3, "env");
	}
	cr_assert_eq(config_find_profile(&cfg, "p")->nenv, 0);
	assert_file_error("[agent]\nenv = A=1\n", 2, "env");
}

Test(config, env_cannot_set_hpcxl_variables)
{
	static const char *const names[] = { "HPCXL_SESSION", "HPCXL_NODE",
		"HPCXL_WORKER", "HPCXL_WORKBOOK", "HPCXL_ANYTHING", "HPCXL_" };
	char text[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(text, sizeof(text),
		    "[profile.p]\ncommand = /bin/true\nenv = OK=1\n"
		    "env = %s=x\n",
		    names[i]);
		assert_file_error(text, 4, "HPCXL_");
		cr_assert_not_null(strstr(err, "env"), "%s", err);
		cr_assert_not_null(strstr(err, names[i]), "%s", err);
	}
}

Test(config, env_up_to_the_limit)
{
	char text[8192] = "[profile.p]\ncommand = /bin/true\n";
	size_t n = strlen(text);
	const struct config_profile *p;
	int i;

	for (i = 0; i < CONFIG_MAX_ENV; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n, "env = V%d=%d\n", i, i);
	/* Replacing a value does not take a new slot. */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "env = V0=again\n");
	cr_assert_lt(n, sizeof(text));
	assert_loads(text);
	p = config_find_profile(&cfg, "p");
	cr_assert_eq(p->nenv, CONFIG_MAX_ENV);
	cr_assert_str_eq(p->env[0], "V0=again");
	cr_assert_null(p->env[CONFIG_MAX_ENV]);
	/* One more name is refused on its line: 2 header lines + 65. */
	config_free(&cfg);
	cr_assert_eq(config_init(&cfg), 0);
	n += (size_t)snprintf(
	    text + n, sizeof(text) - n, "env = ONE_MORE=x\n");
	cr_assert_lt(n, sizeof(text));
	assert_file_error(text, 2 + CONFIG_MAX_ENV + 2, "env");
	cr_assert_eq(config_find_profile(&cfg, "p")->nenv, CONFIG_MAX_ENV);
}

/* ---- resource limits ---------------------------------------------------- */

Test(config, limits_numbers_infinity_and_inherit)
{
	const struct config_profile *p;

	assert_loads("[profile.l]\ncommand = /bin/true\n"
	             "limit_nofile = 64\n"
	             "limit_nproc = infinity\n"
	             "limit_core = 0\n"
	             "limit_as = 17179869184\n"
	             "limit_cpu = 3600\n"
	             "limit_fsize = -1\n");
	p = config_find_profile(&cfg, "l");
	cr_assert_not_null(p);
	cr_assert_eq(p->limits[CONFIG_LIMIT_NOFILE], 64);
	cr_assert_eq(p->limits[CONFIG_LIMIT_NPROC], CONFIG_LIMIT_INFINITY);
	cr_assert_eq(p->limits[CONFIG_LIMIT_CORE], 0);
	cr_assert_eq(p->limits[CONFIG_LIMIT_AS], 17179869184LL);
	cr_assert_eq(p->limits[CONFIG_LIMIT_CPU], 3600);
	cr_assert_eq(p->limits[CONFIG_LIMIT_FSIZE], CONFIG_LIMIT_INHERIT);
}

Test(config, every_limit_but_nofile_takes_infinity)
{
	char text[128];

	for (int l = 0; l < CONFIG_NLIMITS; l++) {
		config_free(&cfg);
		cr_assert_eq(config_init(&cfg), 0);
		snprintf(text, sizeof(text),
		    "[profile.l]\ncommand = /bin/true\n%s = infinity\n",
		    config_limit_key((enum config_limit)l));
		if (l == CONFIG_LIMIT_NOFILE) {
			/* setrlimit would refuse it: fs.nr_open. */
			assert_file_error(text, 3, "limit_nofile");
			continue;
		}
		assert_loads(text);
		cr_assert_eq(config_find_profile(&cfg, "l")->limits[l],
		    CONFIG_LIMIT_INFINITY, "%s",
		    config_limit_key((enum config_limit)l));
	}
}

Test(config, later_limit_line_wins_and_minus_one_resets)
{
	const struct config_profile *p;

	assert_loads("[profile.l]\nlimit_cpu = 5\nlimit_cpu = 7\n"
	             "limit_core = 0\nlimit_core = -1\n");
	p = config_find_profile(&cfg, "l");
	cr_assert_eq(p->limits[CONFIG_LIMIT_CPU], 7);
	cr_assert_eq(p->limits[CONFIG_LIMIT_CORE], CONFIG_LIMIT_INHERIT);
}

Test(config, limit_keys_are_named)
{
	cr_assert_str_eq(
	    config_limit_key(CONFIG_LIMIT_NOFILE), "limit_nofile");
	cr_assert_str_eq(config_limit_key(CONFIG_LIMIT_NPROC), "limit_nproc");
	cr_assert_str_eq(config_limit_key(CONFIG_LIMIT_CORE), "limit_core");
	cr_assert_str_eq(config_limit_key(CONFIG_LIMIT_AS), "limit_as");
	cr_assert_str_eq(config_limit_key(CONFIG_LIMIT_CPU), "limit_cpu");
	cr_assert_str_eq(config_limit_key(CONFIG_LIMIT_FSIZE), "limit_fsize");
}

Test(config, bad_limit_values)
{
	static const char *const bad[] = { "abc", "-2", "1.5", "", "10k", "+1",
		"0x40", "Infinity", "inf", "unlimited", "9223372036854775807",
		"99999999999999999999" };
	char text[256];

	for (int l = 0; l < CONFIG_NLIMITS; l++) {
		const char *key = config_limit_key((enum config_limit)l);

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(text, sizeof(text),
			    "[profile.p]\ncommand = /bin/true\n%s = %s\n", key,
			    bad[i]);
			assert_file_error(text, 3, key);
		}
		cr_assert_eq(config_find_profile(&cfg, "p")->limits[l],
		    CONFIG_LIMIT_INHERIT);
	}
	assert_file_error("[profile.p]\nlimit_stack = 5\n", 2, "limit_stack");
	assert_file_error("[agent]\nlimit_nofile = 5\n", 2, "limit_nofile");
}

/* ---- config_find_profile ------------------------------------------------ */

Test(config, find_profile)
{
	const struct config_profile *p;

	cr_assert_eq(setenv("HPCXL_T_DIR", "/d", 1), 0);
	cr_assert_eq(setenv("HPCXL_T_BIN", "/b", 1), 0);
	assert_loads(full_ini);

	p = config_find_profile(&cfg, "excel");
	cr_assert_eq(p, &cfg.profiles[0]);
	p = config_find_profile(&cfg, "py-3.12");
	cr_assert_eq(p, &cfg.profiles[1]);
	cr_assert_str_eq(p->name, "py-3.12");
	cr_assert_null(config_find_profile(&cfg, "exce"));
	cr_assert_null(config_find_profile(&cfg, "excel2"));
	cr_assert_null(config_find_profile(&cfg, "Excel"));
	cr_assert_null(config_find_profile(&cfg, ""));
}

/* ---- config_add_profile_spec -------------------------------------------- */

Test(config, profile_spec_is_split)
{
	const struct config_profile *p;

	cr_assert_eq(config_add_profile_spec(
	                 &cfg, "xl=/bin/prog --x 1", err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(cfg.nprofiles, 1);
	p = config_find_profile(&cfg, "xl");
	cr_assert_not_null(p);
	cr_assert_str_eq(p->name, "xl");
	ASSERT_ARGV(p->argv, "/bin/prog", "--x", "1");
	cr_assert_eq(p->stop_grace_ms, -1);
	cr_assert_null(p->workdir);
}

Test(config, profile_spec_quoting_and_variables)
{
	const struct config_profile *p;

	cr_assert_eq(setenv("HPCXL_T_ARG", "v a l", 1), 0);
	cr_assert_eq(config_add_profile_spec(&cfg,
	                 "q=/bin/prog \"a b\" '$HPCXL_T_ARG' \"$HPCXL_T_ARG\" "
	                 "--k=v x=y",
	                 err, sizeof(err)),
	    0, "%s", err);
	p = config_find_profile(&cfg, "q");
	cr_assert_not_null(p);
	/* The first '=' ends the name; later ones belong to the command. */
	ASSERT_ARGV(p->argv, "/bin/prog", "a b", "$HPCXL_T_ARG", "v a l",
	    "--k=v", "x=y");
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), HPCXL_ECONFIG,
	    "no listen URL yet");
}

Test(config, profile_spec_name_of_max_length)
{
	char spec[HPCXL_ID_MAX + 32];
	char name[HPCXL_ID_MAX + 1];

	memset(name, 'n', HPCXL_ID_MAX);
	name[HPCXL_ID_MAX] = '\0';
	snprintf(spec, sizeof(spec), "%s=/bin/true", name);
	cr_assert_eq(config_add_profile_spec(&cfg, spec, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_not_null(config_find_profile(&cfg, name));
}

Test(config, bad_profile_specs_are_refused)
{
	char long_name[HPCXL_ID_MAX + 32];
	const char *bad[] = {
		"xl", /* no '=' */
		"xl /bin/prog", /* no '=' */
		"=/bin/prog", /* empty name */
		"a/b=/bin/prog", /* '/' in the name */
		"../x=/bin/prog",
		".x=/bin/prog", /* leading '.' */
		"-x=/bin/prog", /* leading '-' */
		"a b=/bin/prog", /* blank in the name */
		long_name, /* 65 bytes */
		"xl=", /* empty command */
		"xl=   \t ", /* blank command */
		"xl=/bin/echo $(id)", /* command substitution */
		"xl=/bin/echo \"$(id)\"",
		"xl=/bin/echo `id`",
		"xl=/bin/echo \"`id`\"",
		"xl=/bin/echo $HPCXL_T_UNDEFINED", /* undefined variable */
		"xl=/bin/echo ${HPCXL_T_UNDEFINED}/x",
		"xl=/bin/echo 'unterminated",
		"xl=/bin/a ; /bin/b", /* shell operators */
		"xl=/bin/a | /bin/b",
		"xl=/bin/a > /tmp/out",
	};
	size_t i;
	int rv;

	cr_assert_eq(unsetenv("HPCXL_T_UNDEFINED"), 0);
	memset(long_name, 'n', HPCXL_ID_MAX + 1);
	snprintf(long_name + HPCXL_ID_MAX + 1,
	    sizeof(long_name) - HPCXL_ID_MAX - 1, "=/bin/prog");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_free(&cfg);
		cr_assert_eq(config_init(&cfg), 0);
		err[0] = '\0';
		rv = config_add_profile_spec(&cfg, bad[i], err, sizeof(err));
		cr_assert_eq(rv, HPCXL_ECONFIG, "\"%s\" gave %d", bad[i], rv);
		cr_assert_neq(err[0], '\0', "\"%s\": no message", bad[i]);
		/* A refused spec never yields a profile that could be run. */
		for (size_t j = 0; j < cfg.nprofiles; j++)
			cr_assert_null(cfg.profiles[j].argv, "\"%s\"", bad[i]);
	}
}

Test(config, command_substitution_is_named_in_the_message)
{
	cr_assert_eq(config_add_profile_spec(
	                 &cfg, "xl=/bin/echo $(id)", err, sizeof(err)),
	    HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "command substitution"), "%s", err);
}

Test(config, later_profile_spec_replaces_the_command)
{
	const struct config_profile *p;

	cr_assert_eq(
	    config_add_profile_spec(&cfg, "xl=/bin/one a", err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(config_add_profile_spec(
	                 &cfg, "xl=/bin/two \"b c\" d", err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(cfg.nprofiles, 1);
	p = config_find_profile(&cfg, "xl");
	cr_assert_not_null(p);
	ASSERT_ARGV(p->argv, "/bin/two", "b c", "d");
}

Test(config, refused_spec_keeps_the_previous_command)
{
	const struct config_profile *p;

	cr_assert_eq(
	    config_add_profile_spec(&cfg, "xl=/bin/one", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(config_add_profile_spec(
	                 &cfg, "xl=/bin/two $(id)", err, sizeof(err)),
	    HPCXL_ECONFIG);
	p = config_find_profile(&cfg, "xl");
	cr_assert_not_null(p);
	ASSERT_ARGV(p->argv, "/bin/one");
}

Test(config, profile_spec_overrides_the_file)
{
	const struct config_profile *p;

	assert_loads("[profile.xl]\ncommand = /bin/file-cmd\n"
	             "stop_grace_ms = 300\nworkdir = /wd\n");
	cr_assert_eq(config_add_profile_spec(
	                 &cfg, "xl=/bin/cli-cmd --flag", err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(cfg.nprofiles, 1);
	p = config_find_profile(&cfg, "xl");
	cr_assert_not_null(p);
	ASSERT_ARGV(p->argv, "/bin/cli-cmd", "--flag");
	/* Only the command changes. */
	cr_assert_eq(p->stop_grace_ms, 300);
	cr_assert_str_eq(p->workdir, "/wd");
}

/* ---- listen URLs -------------------------------------------------------- */

Test(config, add_listen_up_to_the_limit)
{
	char url[64];
	size_t i;

	for (i = 0; i < CONFIG_MAX_LISTEN; i++) {
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%zu", 7000 + i);
		cr_assert_eq(config_add_listen(&cfg, url, err, sizeof(err)), 0,
		    "url %zu: %s", i, err);
	}
	cr_assert_eq(cfg.nlisten, CONFIG_MAX_LISTEN);
	cr_assert_str_eq(cfg.listen[CONFIG_MAX_LISTEN - 1], url);
	err[0] = '\0';
	cr_assert_eq(
	    config_add_listen(&cfg, "tcp://127.0.0.1:1", err, sizeof(err)),
	    HPCXL_ECONFIG);
	cr_assert_neq(err[0], '\0');
	cr_assert_eq(cfg.nlisten, CONFIG_MAX_LISTEN);
}

Test(config, too_many_listen_urls_in_a_file)
{
	char text[4096] = "[agent]\n";
	size_t n = strlen(text);
	int i;

	for (i = 0; i <= CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "listen = tcp://127.0.0.1:%d\n", 7000 + i);
	cr_assert_lt(n, sizeof(text));
	/* Line 1 is the section: URL number 17 is on line 18. */
	assert_file_error(text, CONFIG_MAX_LISTEN + 2, "listen");
	cr_assert_eq(cfg.nlisten, CONFIG_MAX_LISTEN);
}

/* ---- file errors -------------------------------------------------------- */

Test(config, missing_file)
{
	char path[PATH_MAX + 32];
	int rv;

	snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
	rv = config_load_file(&cfg, path, err, sizeof(err));
	cr_assert_eq(rv, HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, path), "message \"%s\"", err);
}

Test(config, unknown_sections)
{
	assert_file_error(
	    "[agent]\nnode = n1\n[agnt]\nnode = n2\n", 4, "agnt");
	assert_file_error(
	    "[profile.a/b]\ncommand = /bin/true\n", 2, "profile.a/b");
	assert_file_error("[profile.]\ncommand = /bin/true\n", 2, NULL);
	assert_file_error("[profile]\ncommand = /bin/true\n", 2, NULL);
	assert_file_error("[Agent]\nnode = n1\n", 2, NULL);
	/* Keys before any section header. */
	assert_file_error("node = n1\n", 1, "node");
}

Test(config, unknown_keys)
{
	assert_file_error("[agent]\nnode = n1\ncolour = red\n", 3, "colour");
	assert_file_error("[agent]\ncommand = /bin/true\n", 2, "command");
	assert_file_error("[profile.p]\ncomand = /bin/true\n", 2, "comand");
	assert_file_error("[profile.p]\nlisten = tcp://a:1\n", 2, "listen");
}

Test(config, invalid_node_names)
{
	assert_file_error("[agent]\nnode = a/b\n", 2, "node");
	assert_file_error("[agent]\n\nnode = .hidden\n", 3, "node");
	assert_file_error("[agent]\nnode = -n\n", 2, "node");
	assert_file_error("[agent]\nnode = a b\n", 2, "node");
	assert_file_error("[agent]\nnode =\n", 2, "node");
}

Test(config, unknown_backend)
{
	assert_file_error("[agent]\nbackend = foo\n", 2, "foo");
	assert_file_error("[agent]\nbackend = Auto\n", 2, "backend");
	cr_assert_str_eq(cfg.backend, "auto");
}

Test(config, bad_stop_grace_values)
{
	static const char *const bad[] = {
		"abc",
		"-5",
		"+5",
		"5ms",
		"0x10",
		"1.5",
		"86400001",
		"99999999999999999999",
		"",
	};
	/* The section, and a valid line so that the value is on line 3. */
	static const char *const head[] = {
		"[agent]\nnode = n1",
		"[profile.p]\ncommand = /bin/true",
	};
	char text[256];
	size_t i, s;

	for (s = 0; s < sizeof(head) / sizeof(head[0]); s++) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(text, sizeof(text),
			    "%s\nstop_grace_ms = %s\n", head[s], bad[i]);
			assert_file_error(text, 3, "stop_grace_ms");
		}
	}
	cr_assert_eq(cfg.default_grace_ms, 10000);
}

Test(config, bad_commands_in_a_file)
{
	cr_assert_eq(unsetenv("HPCXL_T_UNDEFINED"), 0);
	assert_file_error("[profile.p]\ncommand = /bin/echo $(id)\n", 2,
	    "command substitution");
	assert_file_error("[profile.p]\ncommand = /bin/echo `id`\n", 2,
	    "command substitution");
	assert_file_error(
	    "[profile.p]\ncommand = /bin/echo $HPCXL_T_UNDEFINED\n", 2, NULL);
	assert_file_error("[profile.p]\ncommand = \"/bin/echo\n", 2, NULL);
	assert_file_error("[profile.p]\ncommand =\n", 2, "empty command");
}

Test(config, bad_ini_syntax)
{
	assert_file_error(
	    "[agent]\nnode = n1\njust some words\n", 3, "syntax");
	assert_file_error("[agent]\nnode = n1\n[profile.p\n", 3, "syntax");
	assert_file_error("[agent]\n= n1\n", 2, NULL);
}

/*
 * inih goes on after the handler reports an error: the message must still
 * describe the first bad line, not turn into a bare "syntax error" because
 * a later line was fine.
 */
Test(config, error_before_valid_lines_keeps_its_detail)
{
	assert_file_error(
	    "[agent]\nbackend = foo\nnode = n1\nlisten = tcp://a:1\n", 2,
	    "backend");
	assert_file_error("[profile.p]\ncommand = /bin/echo $(id)\n"
	                  "workdir = /tmp\n",
	    2, "command substitution");
}

/* ---- config_validate ---------------------------------------------------- */

Test(config, validate_without_listen)
{
	assert_loads("[agent]\nnode = n1\n[profile.p]\ncommand = /bin/true\n");
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "listen"), "message \"%s\"", err);
}

Test(config, validate_profile_without_command)
{
	assert_loads("[agent]\nlisten = tcp://127.0.0.1:7420\n"
	             "[profile.ok]\ncommand = /bin/true\n"
	             "[profile.nocmd]\nworkdir = /tmp\nstop_grace_ms = 5\n");
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "nocmd"), "message \"%s\"", err);
}

Test(config, validate_invalid_node)
{
	cr_assert_eq(
	    config_add_listen(&cfg, "tcp://a:1", err, sizeof(err)), 0);
	/* --node is set with config_set_str: only validate checks it. */
	cr_assert_eq(config_set_str(&cfg.node, "a/b"), 0);
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), HPCXL_ECONFIG);
	cr_assert_not_null(strstr(err, "a/b"), "message \"%s\"", err);
}

Test(config, validate_valid)
{
	assert_loads("[agent]\nlisten = tcp://127.0.0.1:7420\n"
	             "[profile.p]\ncommand = /bin/true\n");
	cr_assert_eq(
	    config_add_profile_spec(&cfg, "q=/bin/false", err, sizeof(err)), 0,
	    "%s", err);
	err[0] = '\0';
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(err[0], '\0', "validate wrote \"%s\"", err);
}

Test(config, validate_defaults_plus_listen)
{
	char host[256] = "";
	int want;

	/* The default node is the host name: valid unless the host name is
	 * not a valid id (longer than HPCXL_ID_MAX, say). */
	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	want = util_valid_id(host) ? 0 : HPCXL_ECONFIG;
	cr_assert_eq(
	    config_add_listen(&cfg, "tcp://a:1", err, sizeof(err)), 0);
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), want, "%s", err);
}

/* ---- config_set_str ----------------------------------------------------- */

Test(config, set_str_copies)
{
	char val[] = "/srv/one";

	cr_assert_eq(config_set_str(&cfg.state_dir, val), 0);
	val[1] = 'X';
	cr_assert_str_eq(cfg.state_dir, "/srv/one");
	cr_assert_eq(config_set_str(&cfg.state_dir, "/srv/two"), 0);
	cr_assert_str_eq(cfg.state_dir, "/srv/two");
}

/* ---- the shipped example ------------------------------------------------ */

/* deploy/config/agent.ini must load and, with its listen URL, validate. */
Test(config, shipped_example_loads)
{
	char path[PATH_MAX];
	const char *tail = "tests/unit/test_config.c";
	const char *src = __FILE__;
	size_t n = strlen(src), t = strlen(tail);
	const struct config_profile *p;

	if (src[0] != '/' || n < t || strcmp(src + n - t, tail) != 0)
		cr_skip_test("source path unknown (%s)", src);
	snprintf(path, sizeof(path), "%.*sdeploy/config/agent.ini",
	    (int)(n - t), src);
	if (access(path, R_OK) != 0)
		cr_skip_test("%s not readable", path);
	cr_assert_eq(
	    config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.nlisten, 1);
	cr_assert_str_eq(cfg.backend, "auto");
	p = config_find_profile(&cfg, "excel");
	cr_assert_not_null(p);
	cr_assert_not_null(p->argv);
	cr_assert_null(p->workdir);
	cr_assert_eq(p->restart, CONFIG_RESTART_ON_FAILURE);
	cr_assert_eq(cfg.log_max_bytes, CONFIG_DEFAULT_LOG_MAX_BYTES);
	cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
	/* It ships TLS, and a root agent accepts its profile. */
	cr_assert_str_eq(cfg.listen[0], "tls+tcp://:7420");
	cr_assert_str_eq(cfg.tls_cert, "/etc/hpcxl/tls/agent.pem");
	cr_assert_str_eq(cfg.tls_key, "/etc/hpcxl/tls/agent.key");
	cr_assert_str_eq(cfg.tls_ca, "/etc/hpcxl/tls/ca.pem");
	cr_assert_not(cfg.allow_insecure);
	cr_assert_str_eq(p->user, "excel");
	cr_assert_eq(
	    config_settle_users(&cfg, true, err, sizeof(err)), 0, "%s", err);
}

/* ---- lines inih would misread ------------------------------------------ */

Test(config, indented_continuation_line_is_refused)
{
	/* inih would take "  --evil" as the new value of command. */
	assert_file_error(
	    "[profile.x]\ncommand = /bin/true\n  --evil\n", 3, "indented");
}

/* inih skips a line's leading isspace(): \v, \f and \r indent it too,
 * and the command would silently become "--evil". */
Test(config, line_indented_with_other_white_space_is_refused)
{
	static const struct {
		const char *text;
		int line;
		const char *named;
	} cases[] = {
		{ "[profile.x]\ncommand = /bin/true\n\v--evil\n", 3, "\\v" },
		{ "[profile.x]\ncommand = /bin/true\n\f--evil\n", 3, "\\f" },
		{ "[profile.x]\ncommand = /bin/true\n\r--evil\n", 3, "\\r" },
		/* A blank CRLF line first, then a mixed indentation. */
		{ "[profile.x]\ncommand = /bin/true\n\r\n\v\f --evil\n", 4,
		    "\\v" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_file_error(
		    cases[i].text, cases[i].line, "indented line");
		cr_assert_not_null(strstr(err, cases[i].named),
		    "case %zu: \"%s\" does not name %s", i, err,
		    cases[i].named);
	}
}

/* Windows line ends and lines of nothing but white space are no
 * continuations: such a file loads as it reads. */
Test(config, crlf_and_white_space_only_lines_load)
{
	assert_loads("[profile.x]\r\ncommand = /bin/true\r\n\r\n\f\n"
	             "\v \r\nrestart = always\r\n");
	ASSERT_ARGV(config_find_profile(&cfg, "x")->argv, "/bin/true");
	cr_assert_eq(
	    config_find_profile(&cfg, "x")->restart, CONFIG_RESTART_ALWAYS);
}

Test(config, indented_comments_and_blank_lines_are_fine)
{
	assert_loads("[profile.x]\n  ; a comment\ncommand = /bin/true\n   \n");
	ASSERT_ARGV(config_find_profile(&cfg, "x")->argv, "/bin/true");
}

Test(config, over_long_line_is_refused_not_cut)
{
	char text[512];
	int n
	    = snprintf(text, sizeof(text), "[profile.x]\ncommand = /bin/true");

	/* Pad the command line to 199 bytes: one more than inih can hold. */
	while (n < 12 + 199)
		text[n++] = 'a';
	snprintf(text + n, sizeof(text) - (size_t)n, " --tail\n");
	assert_file_error(text, 2, "longer than");
}

Test(config, line_of_the_longest_length_loads)
{
	char text[512];
	int n = snprintf(text, sizeof(text), "[profile.x]\ncommand = /bin/");

	while (n < 12 + 198)
		text[n++] = 'a';
	snprintf(text + n, sizeof(text) - (size_t)n, "\n");
	assert_loads(text);
	cr_assert_eq(
	    strlen(config_find_profile(&cfg, "x")->argv[0]), 198 - 10);
}

/* ---- transport and the users of profiles (issue 9) --------------------- */

Test(config, tls_insecure_ipc_group_and_default_user_keys)
{
	assert_loads("[agent]\nlisten = tls+tcp://n01:7420\n"
	             "tls_cert = /etc/hpcxl/tls/agent.pem\n"
	             "tls_key = /etc/hpcxl/tls/agent.key\n"
	             "tls_ca = /etc/hpcxl/tls/ca.pem\n"
	             "allow_insecure = yes\nipc_group = hpcxl\n"
	             "default_user = excel\n");
	cr_assert_str_eq(cfg.tls_cert, "/etc/hpcxl/tls/agent.pem");
	cr_assert_str_eq(cfg.tls_key, "/etc/hpcxl/tls/agent.key");
	cr_assert_str_eq(cfg.tls_ca, "/etc/hpcxl/tls/ca.pem");
	cr_assert(cfg.allow_insecure);
	cr_assert_str_eq(cfg.ipc_group, "hpcxl");
	cr_assert_str_eq(cfg.default_user, "excel");
}

Test(config, insecure_is_off_and_tls_unset_by_default)
{
	cr_assert_not(cfg.allow_insecure);
	cr_assert_null(cfg.tls_cert);
	cr_assert_null(cfg.ipc_group);
	cr_assert_null(cfg.default_user);
}

Test(config, bad_insecure_group_and_default_user)
{
	assert_file_error("[agent]\nallow_insecure = maybe\n", 2,
	    "'maybe' is not true, false, yes or no");
	assert_file_error(
	    "[agent]\nipc_group = a:b\n", 2, "'a:b' is not a group name");
	assert_file_error(
	    "[agent]\ndefault_user = -x\n", 2, "'-x' is not a user name");
}

/* The URL is checked when the agent starts it (agent/metrics.c). */
Test(config, metrics_listen_key)
{
	cr_assert_null(cfg.metrics_listen);
	assert_loads("[agent]\nmetrics_listen = http://127.0.0.1:9742\n");
	cr_assert_str_eq(cfg.metrics_listen, "http://127.0.0.1:9742");
}

Test(config, root_agent_refuses_a_profile_without_user)
{
	assert_loads("[profile.named]\ncommand = /bin/true\nuser = nobody\n"
	             "[profile.bare]\ncommand = /bin/true\ngroup = nogroup\n");
	cr_assert_eq(
	    config_settle_users(&cfg, true, err, sizeof(err)), HPCXL_ECONFIG);
	cr_assert_not_null(
	    strstr(err, "profile 'bare' names no user"), "%s", err);
	cr_assert_not_null(strstr(err, "[profile.bare]"), "%s", err);
	/* A non-root agent cannot switch users: it runs them as itself. */
	cr_assert_eq(config_settle_users(&cfg, false, err, sizeof(err)), 0);
	cr_assert_null(config_find_profile(&cfg, "bare")->user);
}

Test(config, default_user_fills_profiles_that_name_none)
{
	char spec[] = "cli=/bin/sleep 1";

	assert_loads("[agent]\ndefault_user = excel\n"
	             "[profile.named]\ncommand = /bin/true\nuser = root\n");
	cr_assert_eq(config_add_profile_spec(&cfg, spec, err, sizeof(err)), 0);
	cr_assert_eq(
	    config_settle_users(&cfg, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(config_find_profile(&cfg, "cli")->user, "excel");
	cr_assert_str_eq(config_find_profile(&cfg, "named")->user, "root");
}

/* ---- reload: profile copies, profiles replaced -----------------------------
 */

Test(config, profile_dup_is_deep_and_take_replaces_profiles)
{
	struct config fresh;
	struct config_profile copy;
	const struct config_profile *p;

	assert_loads("[profile.a]\ncommand = /bin/a -x\nenv = K=v\nuser = "
	             "nobody\nworkdir = /tmp\n");
	p = config_find_profile(&cfg, "a");
	cr_assert_not_null(p);
	cr_assert_eq(config_profile_dup(&copy, p), 0);

	cr_assert_eq(config_init(&fresh), 0);
	cr_assert_eq(
	    config_add_profile_spec(&fresh, "b=/bin/b", err, sizeof(err)), 0);
	config_take_profiles(&cfg, &fresh);
	cr_assert_eq(fresh.nprofiles, 0);
	config_free(&fresh);
	cr_assert_null(config_find_profile(&cfg, "a"));
	cr_assert_not_null(config_find_profile(&cfg, "b"));

	/* The copy outlives the profiles it came from. */
	cr_assert_str_eq(copy.name, "a");
	cr_assert_str_eq(copy.argv[1], "-x");
	cr_assert_str_eq(copy.env[0], "K=v");
	cr_assert_null(copy.env[1]);
	cr_assert_str_eq(copy.user, "nobody");
	cr_assert_str_eq(copy.workdir, "/tmp");
	cr_assert_null(copy.group);
	config_profile_free(&copy);
}
