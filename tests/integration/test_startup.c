/*
 * A second hpcxl-agent started on a node by mistake refuses to start and
 * touches nothing on its way out: the running agent keeps its cgroup root,
 * its state directory and its ready file, and keeps opening sessions. The
 * refused agent writes no ready file, so a script waiting for one never
 * believes in an agent that is not there. Real agents, real xlsim workers,
 * real cgroups.
 */
#include "ask.h"
#include "harness.h"

#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000

static struct harness_agent agent; /* the one that serves the node */
static pid_t second; /* the one started by mistake */
static char second_dir[PATH_MAX]; /* its ready file, log, own state */
static char session[64];
static char cg_root[PATH_MAX]; /* <cgroup2 mount>/hpcxl/<node> */

/* What a refused agent must leave as it was. */
struct before {
	ino_t root_ino;
	char *state; /* listing of the serving agent's state dir */
	char ready[512]; /* the serving agent's ready file */
};

/* Agents, workers, cgroups and temp dirs go, pass or fail. */
static void
clean_up(void)
{
	char path[PATH_MAX + 64];
	int st;

	if (second > 0) {
		kill(second, SIGKILL);
		waitpid(second, &st, 0);
		second = 0;
	}
	harness_agent_stop(&agent, 15000);
	if (session[0] != '\0')
		harness_session_kill(session);
	/* The agent removes both when it stops; not when it was killed. */
	if (cg_root[0] != '\0' && session[0] != '\0') {
		harness_wait_procs(session, 0, WAIT_MS);
		snprintf(path, sizeof(path), "%s/%s", cg_root, session);
		rmdir(path);
	}
	if (cg_root[0] != '\0')
		rmdir(cg_root);
	harness_remove_tree(agent.dir);
	harness_remove_tree(second_dir);
}

TestSuite(startup, .fini = clean_up, .timeout = 90);

/* nftw() takes no argument: the listing being built. */
static FILE *listing;

static int
list_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	fprintf(listing, "%s %o %lld %lld.%09ld\n", path,
	    (unsigned)st->st_mode, (long long)st->st_size,
	    (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	return 0;
}

/* Every entry under dir with its mode, size and mtime (malloc'd). */
static char *
list_tree(const char *dir)
{
	char *text = NULL;
	size_t len;

	cr_assert_not_null(listing = open_memstream(&text, &len));
	cr_assert_eq(
	    nftw(dir, list_one, 16, FTW_PHYS), 0, "cannot list %s", dir);
	cr_assert_eq(fclose(listing), 0);
	return text;
}

static void
read_text(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "cannot read %s", path);
	out[fread(out, 1, len - 1, f)] = '\0';
	fclose(f);
}

/* The node's cgroup root, where the agent made it: <mount>/hpcxl/<node>. */
static bool
find_cgroup_root(void)
{
	static const char *const mounts[]
	    = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	char procs[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		snprintf(cg_root, sizeof(cg_root), "%s/hpcxl/%s", mounts[i],
		    agent.node);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_root);
		if (access(procs, F_OK) == 0)
			return true;
	}
	cg_root[0] = '\0';
	return false;
}

/* Starts the agent that serves the node and notes what it owns. */
static void
start_serving(struct before *b)
{
	char path[PATH_MAX + 16];
	struct stat st;
	struct proto_msg h;
	bool cgroup2;

	cr_assert_eq(harness_agent_start(&agent, "su", NULL), 0,
	    "agent did not start (see /tmp/hpcxl-test-*/agent.log)");
	cgroup2
	    = strcmp(ask_type(agent.url, PROTO_PING, &h).backend, "cgroup2")
	    == 0;
	proto_msg_free(&h);
	if (!cgroup2)
		cr_skip_test("no writable cgroup2 hierarchy on this machine");
	cr_assert(find_cgroup_root(), "no cgroup root for %s", agent.node);
	cr_assert_eq(stat(cg_root, &st), 0);
	b->root_ino = st.st_ino;
	snprintf(path, sizeof(path), "%s/state", agent.dir);
	b->state = list_tree(path);
	snprintf(path, sizeof(path), "%s/ready", agent.dir);
	read_text(path, b->ready, sizeof(b->ready));
	harness_unique(
	    "/tmp/hpcxl-test-second", second_dir, sizeof(second_dir));
	cr_assert_eq(mkdir(second_dir, 0755), 0);
}

/* Starts a second agent of the same node (and so the same cgroup root). */
static void
start_second(const char *listen, const char *state_dir)
{
	char ready[PATH_MAX + 16], log[PATH_MAX + 16], xl[PATH_MAX + 8];
	const char *argv[] = { harness_bin("hpcxl-agent"), "--listen", listen,
		"--ready-file", ready, "--state-dir", state_dir, "--node",
		agent.node, "--profile", xl, "--default-user",
		harness_own_user(), NULL };
	pid_t parent = getpid();
	int fd;

	snprintf(ready, sizeof(ready), "%s/ready", second_dir);
	snprintf(log, sizeof(log), "%s/agent.log", second_dir);
	snprintf(xl, sizeof(xl), "xl=%s", harness_bin("xlsim"));
	cr_assert_neq(second = fork(), -1);
	if (second == 0) {
		/* Dies with the test, as the harness's agents do. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0
		    || getppid() != parent)
			_exit(126);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0)
			dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* True when the second agent's log (a few lines) holds text. */
static bool
second_logged(const char *text)
{
	char path[PATH_MAX + 16], log[8192];

	snprintf(path, sizeof(path), "%s/agent.log", second_dir);
	read_text(path, log, sizeof(log));
	return strstr(log, text) != NULL;
}

/* Waits for the second agent to exit; returns its wait status. */
static int
second_wait(void)
{
	int64_t deadline = util_now_ms() + WAIT_MS;
	int st;

	while (waitpid(second, &st, WNOHANG) != second) {
		cr_assert_lt(
		    util_now_ms(), deadline, "second agent still runs");
		harness_nap_ms(10);
	}
	second = 0;
	return st;
}

/* It refused, for the reason given, with status 2. */
static void
check_refused(int st, const char *reason)
{
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
	    "second agent: status 0x%x", st);
	cr_assert(second_logged(reason), "its log does not say '%s'", reason);
}

static bool
second_file_exists(const char *name)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s", second_dir, name);
	return access(path, F_OK) == 0;
}

/* Nothing of the serving agent changed; the second wrote no ready file. */
static void
check_untouched(struct before *b)
{
	char path[PATH_MAX + 16], ready[512];
	struct stat st;
	char *state;

	cr_assert_eq(
	    stat(cg_root, &st), 0, "cgroup root %s was removed", cg_root);
	cr_assert_eq(
	    st.st_ino, b->root_ino, "cgroup root %s was recreated", cg_root);
	snprintf(path, sizeof(path), "%s/state", agent.dir);
	state = list_tree(path);
	cr_assert_str_eq(state, b->state, "state directory changed");
	free(state);
	free(b->state);
	snprintf(path, sizeof(path), "%s/ready", agent.dir);
	read_text(path, ready, sizeof(ready));
	cr_assert_str_eq(ready, b->ready, "serving agent's ready file");
	cr_assert(!second_file_exists("ready"), "refused agent said ready");
	cr_assert(!second_file_exists("ready.tmp"));
}

/* The serving agent still opens a session with its workers in the node's
 * cgroup, and closes it. */
static void
check_still_serves(void)
{
	char want[PATH_MAX + 64], cgroup[PATH_MAX];
	struct proto_msg h;
	struct proto_reply r;

	harness_unique("su", session, sizeof(session));
	r = ask_open(agent.url, session, "xl", 2, 0, &h);
	cr_assert_eq(r.code, PROTO_CODE_OK, "open: %s", r.msg);
	cr_assert_eq(r.sessions[0].nworkers, 2);
	snprintf(want, sizeof(want), "/hpcxl/%s/%s", agent.node, session);
	for (uint32_t i = 0; i < 2; i++) {
		harness_proc_cgroup(
		    r.sessions[0].workers[i].pid, cgroup, sizeof(cgroup));
		cr_assert_str_eq(cgroup, want, "worker %u", i);
	}
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, session, 2, WAIT_MS));
	r = ask_close(agent.url, session, 0, 8000, &h);
	cr_assert(r.code == PROTO_CODE_OK && r.counts.remaining == 0,
	    "close: %s, %u left", r.msg, r.counts.remaining);
	proto_msg_free(&h);
	cr_assert_eq(harness_session_procs(session), 0);
}

Test(startup, a_second_agent_on_a_locked_state_dir_touches_nothing)
{
	char state[PATH_MAX + 8];
	struct before b;
	int st;

	start_serving(&b);
	snprintf(state, sizeof(state), "%s/state", agent.dir);
	start_second("tcp://127.0.0.1:0", state);
	st = second_wait();
	check_untouched(&b);
	check_refused(st, "in use by another agent");
	check_still_serves();
}

Test(startup, a_second_agent_on_a_used_address_touches_nothing)
{
	char state[PATH_MAX + 8];
	struct before b;
	int st;

	start_serving(&b);
	snprintf(state, sizeof(state), "%s/state", second_dir);
	start_second(agent.url, state);
	st = second_wait();
	check_untouched(&b);
	cr_assert(
	    !second_file_exists("state"), "refused agent made %s", state);
	check_refused(st, "cannot listen");
	check_still_serves();
}

/* A script that waits for the ready file must never see one from an agent
 * that then exits. */
Test(startup, a_refused_agent_never_writes_its_ready_file)
{
	char state[PATH_MAX + 8];
	struct before b;
	int st;

	start_serving(&b);
	free(b.state);
	snprintf(state, sizeof(state), "%s/state", agent.dir);
	start_second("tcp://127.0.0.1:0", state);
	st = second_wait();
	cr_assert(!second_file_exists("ready"), "refused agent said ready");
	cr_assert(!second_file_exists("ready.tmp"));
	check_refused(st, "in use by another agent");
}
