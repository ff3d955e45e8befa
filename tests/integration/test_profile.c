/*
 * Profile settings, end to end: the real hpcxl-agent, with a second config
 * file (--config=FILE, loaded after the harness's own) whose profiles set
 * user, group, env, resource limits and a workdir, and real xlsim workers
 * whose /proc entries show what they got.
 *
 * The user tests need root (the agent drops to "nobody"); they are skipped
 * otherwise. Each test starts its own agent, so tests may run side by side.
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLOSE_DEADLINE_MS 8000
#define PROCS_TIMEOUT_MS 5000
/* The chatty profile writes CHATTY_BYTES to its log at once, over the cap
 * (xlsim's ready line is far under it). */
#define LOG_CAP 4096
#define CHATTY_BYTES 20000

static struct harness_agent agent;
static char cfg_dir[PATH_MAX]; /* mkdtemp: 0700, so "nobody" cannot enter */
static char cfg_path[PATH_MAX + 32];

/* The profiles under test; every one runs plain xlsim. */
static void
write_profiles(void)
{
	const char *xl = harness_bin("xlsim");
	FILE *f = fopen(cfg_path, "w");

	cr_assert_not_null(f, "cannot write %s", cfg_path);
	fprintf(f,
	    "[agent]\nlog_max_bytes = %d\n\n"
	    "[profile.chatty]\ncommand = /bin/sh -c "
	    "'head -c %d /dev/zero; exec sleep 600'\n\n"
	    "[profile.xl-nobody]\ncommand = %s\nuser = nobody\n\n"
	    "[profile.xl-env]\ncommand = %s\n"
	    "env = FOO=first\nenv = PROFILE_T_OVER=profile\n"
	    "env = FOO=bar\n\n"
	    "[profile.xl-limits]\ncommand = %s\nlimit_nofile = 64\n"
	    "limit_core = 0\nlimit_cpu = infinity\n\n"
	    "[profile.xl-baduser]\ncommand = %s\nuser = no-such-user-xyz\n\n"
	    "[profile.xl-badgroup]\ncommand = %s\n"
	    "group = no-such-group-xyz\n\n"
	    "[profile.xl-nobody-wd]\ncommand = %s\nuser = nobody\n"
	    "workdir = %s\n\n"
	    "[profile.xl-root-wd]\ncommand = %s\nworkdir = %s\n",
	    LOG_CAP, CHATTY_BYTES, xl, xl, xl, xl, xl, xl, cfg_dir, xl,
	    cfg_dir);
	cr_assert_eq(fclose(f), 0);
}

static void
start_agent(void)
{
	const char *base = getenv("TMPDIR");
	const char *extra[2] = { NULL, NULL };
	char arg[PATH_MAX + 64];

	snprintf(cfg_dir, sizeof(cfg_dir), "%s/hpcxl-test-profile-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	cr_assert_not_null(mkdtemp(cfg_dir), "mkdtemp failed");
	snprintf(cfg_path, sizeof(cfg_path), "%s/profiles.ini", cfg_dir);
	write_profiles();
	/* The agent's own environment: one variable a profile overrides,
	 * one it leaves alone. */
	cr_assert_eq(setenv("PROFILE_T_OVER", "agent", 1), 0);
	cr_assert_eq(setenv("PROFILE_T_KEEP", "agent", 1), 0);
	snprintf(arg, sizeof(arg), "--config=%s", cfg_path);
	extra[0] = arg;
	cr_assert_eq(harness_agent_start(&agent, "tp", extra), 0,
	    "agent did not start (its log went to stderr)");
}

static void
stop_agent(void)
{
	harness_agent_stop(&agent, 15000);
	unlink(cfg_path);
	rmdir(cfg_dir);
}

TestSuite(profile, .init = start_agent, .fini = stop_agent, .timeout = 60);

/* ---- requests (as in test_agent.c) -------------------------------------- */

/* Closes id; the reply must be "ok" and no process of id may be left. */
static void
close_all_gone(const char *id)
{
	struct proto_msg req = { .type = PROTO_CLOSE }, h;
	struct proto_reply r;

	req.u.close.session = (char *)id;
	req.u.close.deadline_ms = CLOSE_DEADLINE_MS;
	r = ask(agent.url, &req, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "close: %s", r.msg);
	cr_assert_eq(r.counts.remaining, 0);
	cr_assert_eq(harness_session_procs(id), 0);
	proto_msg_free(&h);
}

/*
 * Opens a new session (id out) of n workers of profile, waits until they
 * run and have printed xlsim's ready line into their logs, and copies
 * their pids into pids.
 */
static void
open_ready(char *id, size_t len, const char *profile, uint32_t n, pid_t *pids)
{
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("p", id, len);
	r = ask_open(agent.url, id, profile, n, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open %s: %s", profile, r.msg);
	cr_assert_eq(r.nsessions, 1);
	cr_assert_eq(r.sessions[0].nworkers, n);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(r.sessions[0].workers[i].index, i);
		pids[i] = r.sessions[0].workers[i].pid;
		cr_assert_gt(pids[i], 0);
	}
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, (int)n, PROCS_TIMEOUT_MS));
	cr_assert(harness_wait_ready(&agent, id, (int)n, PROCS_TIMEOUT_MS),
	    "workers of %s did not write their logs", profile);
}

/* Opening profile must fail with a message holding each of needles. */
static void
open_fails(const char *profile, const char *needle1, const char *needle2)
{
	char id[64];
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("p", id, sizeof(id));
	r = ask_open(agent.url, id, profile, 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_ERROR, "open %s: code %d (%s)",
	    profile, r.code, r.msg);
	cr_assert_not_null(r.msg);
	cr_assert_not_null(strstr(r.msg, needle1), "msg \"%s\"", r.msg);
	if (needle2 != NULL)
		cr_assert_not_null(
		    strstr(r.msg, needle2), "msg \"%s\"", r.msg);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(id, 0, PROCS_TIMEOUT_MS),
	    "a process of the failed session remains");
}

/* ---- /proc readers ------------------------------------------------------ */

/* The rest of the line of /proc/<pid>/<file> starting with prefix. */
static void
proc_line(
    pid_t pid, const char *file, const char *prefix, char *out, size_t len)
{
	char path[64], line[512];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot read %s", path);
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, prefix, strlen(prefix)) == 0) {
			snprintf(out, len, "%s", line + strlen(prefix));
			found = true;
		}
	}
	fclose(f);
	cr_assert(found, "%s has no '%s' line", path, prefix);
}

/* The real, effective, saved and fs ids of a "Uid:" or "Gid:" line. */
static void
assert_ids(pid_t pid, const char *prefix, unsigned want)
{
	char rest[256];
	unsigned v[4];

	proc_line(pid, "status", prefix, rest, sizeof(rest));
	cr_assert_eq(sscanf(rest, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]),
	    4, "%s%s", prefix, rest);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(v[i], want, "%s%s (want %u everywhere)", prefix,
		    rest, want);
}

/* The soft and hard values of a /proc/<pid>/limits row ("unlimited"...). */
static void
read_limit(pid_t pid, const char *row, char soft[64], char hard[64])
{
	char rest[256];

	proc_line(pid, "limits", row, rest, sizeof(rest));
	cr_assert_eq(
	    sscanf(rest, "%63s %63s", soft, hard), 2, "%s%s", row, rest);
}

static void
assert_limit(pid_t pid, const char *row, const char *soft, const char *hard)
{
	char s[64], h[64];

	read_limit(pid, row, s, h);
	cr_assert_str_eq(s, soft, "%s soft", row);
	cr_assert_str_eq(h, hard, "%s hard", row);
}

static void
skip_unless_root_and_nobody(struct passwd *pw)
{
	struct passwd *res = NULL;
	static char buf[4096];

	if (geteuid() != 0)
		cr_skip_test("needs root: the agent must be able to setuid");
	if (getpwnam_r("nobody", pw, buf, sizeof(buf), &res) != 0
	    || res == NULL)
		cr_skip_test("no 'nobody' account on this machine");
}

/* ---- user and group ----------------------------------------------------- */

Test(profile, user_nobody_runs_as_nobody_with_its_groups)
{
	struct passwd pw;
	char id[64], rest[256], *tok, *save = NULL;
	gid_t want[64];
	int nwant = 64, ngot = 0;
	pid_t pid;

	skip_unless_root_and_nobody(&pw);
	cr_assert_geq(getgrouplist("nobody", pw.pw_gid, want, &nwant), 0);
	/* The log is the agent's (opened before the drop): the ready line in
	 * it proves the worker could still write there. */
	open_ready(id, sizeof(id), "xl-nobody", 1, &pid);
	assert_ids(pid, "Uid:", (unsigned)pw.pw_uid);
	assert_ids(pid, "Gid:", (unsigned)pw.pw_gid);
	cr_assert_eq(pw.pw_uid, 65534);
	cr_assert_eq(pw.pw_gid, 65534);
	/* Supplementary groups: the user's, none of the agent's (root's 0). */
	proc_line(pid, "status", "Groups:", rest, sizeof(rest));
	for (tok = strtok_r(rest, " \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		gid_t g = (gid_t)strtoul(tok, NULL, 10);
		bool listed = false;

		for (int i = 0; i < nwant; i++)
			listed = listed || want[i] == g;
		cr_assert(listed, "group %s is not one of nobody's", tok);
		ngot++;
	}
	cr_assert_eq(
	    ngot, nwant, "Groups: has %d, nobody has %d", ngot, nwant);
	/* The account's variables, as login(1) and systemd's User= set. */
	cr_assert_eq(harness_proc_env(pid, "HOME", rest, sizeof(rest)), 0);
	cr_assert_str_eq(rest, pw.pw_dir);
	cr_assert_eq(harness_proc_env(pid, "USER", rest, sizeof(rest)), 0);
	cr_assert_str_eq(rest, "nobody");
	cr_assert_eq(harness_proc_env(pid, "LOGNAME", rest, sizeof(rest)), 0);
	cr_assert_str_eq(rest, "nobody");
	close_all_gone(id);
}

Test(profile, unknown_user_fails_the_open_and_leaves_nothing)
{
	open_fails("xl-baduser", "unknown user", "no-such-user-xyz");
}

Test(profile, unknown_group_fails_the_open_and_leaves_nothing)
{
	open_fails("xl-badgroup", "unknown group", "no-such-group-xyz");
}

/*
 * The workdir is entered after the privileges are dropped: root may enter
 * the 0700 config directory, nobody may not.
 */
Test(profile, workdir_is_entered_as_the_profile_user)
{
	struct passwd pw;
	char id[64], cwd[PATH_MAX + 1], link[64];
	ssize_t n;
	pid_t pid;

	skip_unless_root_and_nobody(&pw);
	open_ready(id, sizeof(id), "xl-root-wd", 1, &pid);
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	cr_assert_gt(n, 0);
	cwd[n] = '\0';
	cr_assert_str_eq(cwd, cfg_dir);
	close_all_gone(id);
	open_fails("xl-nobody-wd", "chdir", "Permission denied");
}

/* ---- env ---------------------------------------------------------------- */

Test(profile, env_is_added_and_hpcxl_variables_stay)
{
	char id[64], val[256], want[16];
	pid_t pids[2];

	open_ready(id, sizeof(id), "xl-env", 2, pids);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(
		    harness_proc_env(pids[i], "FOO", val, sizeof(val)), 0,
		    "FOO not set");
		cr_assert_str_eq(val, "bar", "the later env line wins");
		cr_assert_eq(harness_proc_env(
		                 pids[i], "PROFILE_T_OVER", val, sizeof(val)),
		    0);
		cr_assert_str_eq(val, "profile", "the profile wins");
		cr_assert_eq(harness_proc_env(
		                 pids[i], "PROFILE_T_KEEP", val, sizeof(val)),
		    0);
		cr_assert_str_eq(val, "agent", "the agent's env is inherited");
		cr_assert_eq(harness_proc_env(
		                 pids[i], "HPCXL_SESSION", val, sizeof(val)),
		    0);
		cr_assert_str_eq(val, id);
		cr_assert_eq(harness_proc_env(
		                 pids[i], "HPCXL_WORKER", val, sizeof(val)),
		    0);
		snprintf(want, sizeof(want), "%d", i);
		cr_assert_str_eq(val, want);
		cr_assert_eq(
		    harness_proc_env(pids[i], "HPCXL_NODE", val, sizeof(val)),
		    0);
		cr_assert_str_eq(val, agent.node);
	}
	close_all_gone(id);
}

Test(profile, profile_without_env_gets_the_agents_only)
{
	char id[64], val[256];
	pid_t pid;

	open_ready(id, sizeof(id), "xl-limits", 1, &pid);
	cr_assert_eq(harness_proc_env(pid, "FOO", val, sizeof(val)), -1,
	    "FOO leaked from another profile: %s", val);
	cr_assert_eq(
	    harness_proc_env(pid, "PROFILE_T_OVER", val, sizeof(val)), 0);
	cr_assert_str_eq(val, "agent");
	close_all_gone(id);
}

/* ---- limits ------------------------------------------------------------- */

Test(profile, limits_are_set_soft_and_hard)
{
	char id[64], ref[64], soft[64], hard[64];
	pid_t pid;

	open_ready(id, sizeof(id), "xl-limits", 1, &pid);
	assert_limit(pid, "Max open files", "64", "64");
	assert_limit(pid, "Max core file size", "0", "0");
	assert_limit(pid, "Max cpu time", "unlimited", "unlimited");
	close_all_gone(id);
	/* A profile without limits inherits the agent's, which are not 64:
	 * the rows above are the profile's doing. */
	open_ready(ref, sizeof(ref), "xl", 1, &pid);
	read_limit(pid, "Max open files", soft, hard);
	cr_assert_str_neq(soft, "64");
	cr_assert_str_neq(hard, "64");
	close_all_gone(ref);
}

/* ---- log cap ------------------------------------------------------------ */

static long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

Test(profile, worker_log_over_the_cap_is_rotated_and_truncated)
{
	char id[64], log[PATH_MAX + 128], old[PATH_MAX + 136];
	struct proto_msg h;
	struct proto_reply r;
	int64_t deadline = util_now_ms() + PROCS_TIMEOUT_MS;

	harness_unique("lc", id, sizeof(id));
	r = ask_open(agent.url, id, "chatty", 1, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	proto_msg_free(&h);
	snprintf(
	    log, sizeof(log), "%s/state/logs/%s/worker-0.log", agent.dir, id);
	snprintf(old, sizeof(old), "%s.1", log);
	/* The agent measures logs every 2 s: wait for the rotation. */
	while (file_size(old) < CHATTY_BYTES && util_now_ms() < deadline)
		harness_nap_ms(50);
	cr_assert_eq(file_size(old), CHATTY_BYTES, "rotated copy of %s", log);
	cr_assert_leq(
	    file_size(log), LOG_CAP, "the live log is under the cap");
	close_all_gone(id);
}
