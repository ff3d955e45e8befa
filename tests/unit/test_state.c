/*
 * Unit tests of the session records (agent/state.c): a store replaces the
 * record whole, keeping the previous version as the next store's spare
 * ("<id>.json.tmp"); a spare longer than the new text leaves no tail; the
 * end of a session removes the record and its spare; a spare found at
 * start is removed, never read as a record; the unhealthy mark goes the
 * same way.
 *
 * Every test has a private mkdtemp directory, removed afterwards.
 */
#include "state.h"

#include "hpcxl/common/proto.h"

#include "scratch.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SESSION "st-1"

/* ---- fixture ------------------------------------------------------------ */

static char tmpdir[PATH_MAX];
static struct state_dir sd = { .lock_fd = -1 };

static void
setup(void)
{
	scratch_dir_make(tmpdir, sizeof(tmpdir), "state");
	cr_assert_eq(state_open(&sd, tmpdir), 0);
}

static void
teardown(void)
{
	state_close(&sd);
	scratch_dir_remove(sd.sessions);
	scratch_dir_remove(tmpdir);
}

TestSuite(state, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers ------------------------------------------------------------ */

static struct worker workers[2];
static pid_t pgids[2];

/* A record of SESSION in phase, with a workbook of n 'x' (0: none). */
static struct state_session
record(enum state_phase phase, size_t n)
{
	static char workbook[8192];
	struct state_session r = { .id = SESSION,
		.profile = "xl",
		.owner = "alice",
		.phase = phase,
		.nworkers = 2,
		.workers = workers,
		.pgids = pgids };

	cr_assert_lt(n, sizeof(workbook));
	memset(workbook, 'x', n);
	workbook[n] = '\0';
	r.workbook = n > 0 ? workbook : NULL;
	for (uint32_t i = 0; i < 2; i++) {
		workers[i] = (struct worker) { .index = i,
			.pid = 100 + (int)i,
			.pidfd = -1,
			.state = PROTO_W_RUNNING,
			.exit_status = -1,
			.start_ticks = 1000 + i };
		pgids[i] = 100 + (int)i;
	}
	return r;
}

/* The files in the sessions directory, names joined by spaces (sorted
 * by readdir's order: the tests only ask for sets of one or two). */
static int
session_files(char *names, size_t len)
{
	DIR *d = opendir(sd.sessions);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	names[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		strncat(names, de->d_name, len - strlen(names) - 2);
		strcat(names, " ");
	}
	closedir(d);
	return n;
}

static bool
has_file(const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", sd.sessions, name);
	return access(path, F_OK) == 0;
}

static struct state_session loaded;
static size_t nloaded;

static void
take(void *arg, struct state_session *r)
{
	(void)arg;
	if (nloaded++ == 0) {
		loaded = *r;
		return;
	}
	free(r->workbook);
	free(r->workers);
	free(r->pgids);
}

/* Loads every record; the first is kept in loaded (its parts freed by
 * the caller through loaded_free()). */
static size_t
load(void)
{
	nloaded = 0;
	memset(&loaded, 0, sizeof(loaded));
	return state_load_all(&sd, take, NULL);
}

static void
loaded_free(void)
{
	free(loaded.workbook);
	free(loaded.workers);
	free(loaded.pgids);
}

/* ---- tests ---------------------------------------------------------------
 */

Test(state, a_second_store_replaces_the_first_and_keeps_one_spare)
{
	struct state_session r = record(STATE_RUNNING, 0);
	char names[256];

	cr_assert_eq(state_save(&sd, &r), 0);
	cr_assert_eq(session_files(names, sizeof(names)), 1, "%s", names);
	r = record(STATE_STOPPING, 0);
	r.grace_end_ms = 4242;
	cr_assert_eq(state_save(&sd, &r), 0);
	cr_assert_eq(session_files(names, sizeof(names)), 2, "%s", names);
	cr_assert(has_file(SESSION ".json") && has_file(SESSION ".json.tmp"),
	    "files: %s", names);

	cr_assert_eq(load(), 1);
	cr_assert_eq(loaded.phase, STATE_STOPPING);
	cr_assert_eq(loaded.grace_end_ms, 4242);
	cr_assert_eq(loaded.nworkers, 2);
	cr_assert_eq(loaded.workers[1].start_ticks, 1001);
	loaded_free();
	cr_assert_not(
	    has_file(SESSION ".json.tmp"), "the spare is removed at start");
}

Test(state, a_longer_spare_leaves_no_tail_in_a_shorter_record)
{
	struct state_session r = record(STATE_RUNNING, 4000);

	cr_assert_eq(state_save(&sd, &r), 0);
	r = record(STATE_RUNNING, 10);
	cr_assert_eq(state_save(&sd, &r), 0); /* the long one is the spare */
	r = record(STATE_KILLING, 0);
	r.kill_start_ms = 77;
	cr_assert_eq(state_save(&sd, &r), 0); /* written over the long one */

	cr_assert_eq(load(), 1, "the record did not parse");
	cr_assert_eq(loaded.phase, STATE_KILLING);
	cr_assert_eq(loaded.kill_start_ms, 77);
	cr_assert_null(loaded.workbook);
	loaded_free();
	cr_assert_not(has_file(SESSION ".json.bad"));
}

Test(state, forget_removes_the_record_and_its_spare)
{
	struct state_session r = record(STATE_RUNNING, 0);
	char names[256];

	cr_assert_eq(state_save(&sd, &r), 0);
	cr_assert_eq(state_save(&sd, &r), 0);
	state_forget(&sd, SESSION);
	cr_assert_eq(
	    session_files(names, sizeof(names)), 0, "left: %s", names);
	cr_assert_eq(load(), 0);
}

Test(state, a_spare_alone_is_removed_and_never_read)
{
	char path[PATH_MAX + 64], names[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.json.tmp", sd.sessions, SESSION);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "{\"format\":", 10), 10);
	close(fd);

	cr_assert_eq(load(), 0);
	cr_assert_eq(
	    session_files(names, sizeof(names)), 0, "left: %s", names);
}

Test(state, the_unhealthy_mark_is_replaced_and_removed_whole)
{
	char reason[256], path[PATH_MAX + 8];

	cr_assert_eq(state_save_health(&sd, "first"), 0);
	cr_assert_eq(state_save_health(&sd, "second"), 0);
	cr_assert(state_load_health(&sd, reason, sizeof(reason)));
	cr_assert_str_eq(reason, "second");
	cr_assert_eq(state_save_health(&sd, NULL), 0);
	cr_assert_not(state_load_health(&sd, reason, sizeof(reason)));
	snprintf(path, sizeof(path), "%s.tmp", sd.health);
	cr_assert_neq(access(path, F_OK), 0, "the mark's spare is left");
}
