/*
 * Log retention, end to end: a real agent with log_retention = 1s (from a
 * second config file) removes the log folder of a session once it has been
 * closed that long, and a folder of no known session by its mtime, but
 * never the folder of a session it runs, however old.
 */
#include "ask.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000

static struct harness_agent agent;
static char cfg_dir[PATH_MAX];
static char cfg_path[PATH_MAX + 32];
static char session[64];

static void
set_up(void)
{
	FILE *f;

	snprintf(cfg_dir, sizeof(cfg_dir), "/tmp/hpcxl-logs-XXXXXX");
	cr_assert_not_null(mkdtemp(cfg_dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/logs.ini", cfg_dir);
	cr_assert_not_null(f = fopen(cfg_path, "w"));
	fputs("[agent]\nlog_retention = 1s\n", f);
	cr_assert_eq(fclose(f), 0);
}

static void
clean_up(void)
{
	harness_agent_stop(&agent, 15000);
	if (session[0] != '\0')
		harness_session_kill(session);
	harness_remove_tree(cfg_dir);
}

TestSuite(logs, .init = set_up, .fini = clean_up, .timeout = 90);

/* Makes dir's mtime an hour old: long expired for a 1 s retention. */
static void
age(const char *dir)
{
	struct timespec ts[2] = { { .tv_sec = time(NULL) - 3600 },
		{ .tv_sec = time(NULL) - 3600 } };

	cr_assert_eq(utimensat(AT_FDCWD, dir, ts, 0), 0, "%s", dir);
}

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static bool
wait_gone(const char *path)
{
	for (int waited = 0; waited < WAIT_MS; waited += 20) {
		if (!exists(path))
			return true;
		harness_nap_ms(20);
	}
	return false;
}

Test(logs, closed_and_unknown_folders_go_running_ones_stay)
{
	const char *const args[] = { "--config", cfg_path, NULL };
	char logs[PATH_MAX + 64], stale[PATH_MAX + 128];
	char running[PATH_MAX + 128], file[PATH_MAX + 160];
	struct proto_msg h;
	FILE *f;

	cr_assert_eq(harness_agent_start(&agent, "logs", args), 0);
	snprintf(logs, sizeof(logs), "%s/state/logs", agent.dir);
	harness_unique("logs-s", session, sizeof(session));
	cr_assert_eq(
	    ask_open(agent.url, session, "xl", 1, 0, &h).code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, session, 1, WAIT_MS));
	snprintf(running, sizeof(running), "%s/%s", logs, session);
	age(running);

	/* A folder an earlier agent left: no session of this one. */
	snprintf(stale, sizeof(stale), "%s/left-behind", logs);
	cr_assert_eq(mkdir(stale, 0750), 0);
	snprintf(file, sizeof(file), "%s/worker-0.log", stale);
	cr_assert_not_null(f = fopen(file, "w"));
	fclose(f);
	age(stale);
	cr_assert(wait_gone(stale), "the unknown expired folder stayed");
	/* That sweep saw the running session's folder as old, and kept it. */
	cr_assert(exists(running), "a running session's logs were removed");

	cr_assert_eq(
	    ask_close(agent.url, session, 0, 8000, &h).code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert(wait_gone(running), "a closed session's logs stayed");
}
