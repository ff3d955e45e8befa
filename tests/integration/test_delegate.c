/*
 * Delegate=yes without systemd: the test makes a cgroup, marks it as
 * systemd marks a delegated one (xattr trusted.delegate = 1), sets
 * INVOCATION_ID and starts a real agent inside it. The agent must move
 * itself into <cgroup>/agent and put its sessions under
 * <cgroup>/sessions/<node>; without the mark the usual
 * <mount>/hpcxl/<node> stays (every other integration test). Needs root
 * and a writable cgroup2 mount; skipped otherwise.
 */
#include "ask.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WAIT_MS 10000
#define CGROUP2_MAGIC 0x63677270

static struct harness_agent agent;
static char mount[64];
static char cg[PATH_MAX]; /* the "delegated" cgroup the test made */
static char home[PATH_MAX + 64]; /* the test process's own cgroup */
static char session[64];

static bool
find_mount(void)
{
	static const char *const mounts[]
	    = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs sf;

	for (size_t i = 0; i < 2; i++) {
		if (statfs(mounts[i], &sf) == 0 && sf.f_type == CGROUP2_MAGIC
		    && access(mounts[i], W_OK) == 0) {
			snprintf(mount, sizeof(mount), "%s", mounts[i]);
			return true;
		}
	}
	return false;
}

/* Moves this process into dir (a cgroup directory). */
static int
join(const char *dir)
{
	char path[PATH_MAX + 16];
	int fd, rv = -1;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0) {
		rv = write(fd, "0", 1) == 1 ? 0 : -1;
		close(fd);
	}
	return rv;
}

static void
rmdir_in(const char *fmt, const char *a, const char *b)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), fmt, cg, a, b);
	rmdir(path);
}

static void
clean_up(void)
{
	harness_agent_stop(&agent, 15000);
	if (session[0] != '\0')
		harness_session_kill(session);
	if (home[0] != '\0')
		join(home);
	if (cg[0] == '\0')
		return;
	harness_wait_procs(session, 0, WAIT_MS);
	rmdir_in("%s/sessions/%s/%s", agent.node, session);
	rmdir_in("%s/sessions/%s%s", agent.node, "");
	rmdir_in("%s/sessions%s%s", "", "");
	rmdir_in("%s/agent%s%s", "", "");
	rmdir(cg);
}

TestSuite(delegate, .fini = clean_up, .timeout = 90);

/* The test process's cgroup directory; false when it cannot tell. */
static bool
own_cgroup(void)
{
	char rel[PATH_MAX];

	harness_proc_cgroup(getpid(), rel, sizeof(rel));
	if (rel[0] != '/')
		return false;
	snprintf(home, sizeof(home), "%s%s", mount,
	    strcmp(rel, "/") == 0 ? "" : rel);
	return true;
}

/* The agent removes a cgroup once its last process is gone. */
static bool
gone(const char *path)
{
	struct stat st;

	for (int waited = 0; waited < WAIT_MS; waited += 20) {
		if (stat(path, &st) != 0)
			return true;
		harness_nap_ms(20);
	}
	return false;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

Test(delegate, sessions_in_the_agents_own_subtree)
{
	char name[64], path[PATH_MAX * 2], where[PATH_MAX];
	struct proto_msg h;
	struct stat st;
	int rv;

	if (geteuid() != 0 || !find_mount() || !own_cgroup())
		cr_skip_test("needs root and a writable cgroup2 mount");
	harness_unique("hpcxl-deleg-", name, sizeof(name));
	snprintf(cg, sizeof(cg), "%s/%s", mount, name);
	cr_assert_eq(mkdir(cg, 0755), 0, "%s", cg);
	if (setxattr(cg, "trusted.delegate", "1", 1, 0) != 0)
		cr_skip_test("cannot set trusted.delegate on %s", cg);

	/* The agent inherits the cgroup and the variable, as from systemd. */
	cr_assert_eq(join(cg), 0);
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	rv = harness_agent_start(&agent, "deleg", NULL);
	unsetenv("INVOCATION_ID");
	cr_assert_eq(join(home), 0);
	cr_assert_eq(rv, 0);

	harness_proc_cgroup(agent.pid, where, sizeof(where));
	snprintf(path, sizeof(path), "/%s/agent", name);
	cr_assert(ends_with(where, path), "agent in %s", where);

	harness_unique("deleg-s", session, sizeof(session));
	cr_assert_eq(
	    ask_open(agent.url, session, "xl", 1, 0, &h).code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert(harness_wait_ready(&agent, session, 1, WAIT_MS));
	snprintf(
	    path, sizeof(path), "%s/sessions/%s/%s", cg, agent.node, session);
	cr_assert_eq(stat(path, &st), 0, "no %s", path);

	cr_assert_eq(
	    ask_close(agent.url, session, 0, 8000, &h).code, PROTO_CODE_OK);
	proto_msg_free(&h);
	cr_assert(gone(path), "%s stayed after the close", path);
	cr_assert_eq(harness_agent_stop(&agent, 15000), 0);
	snprintf(path, sizeof(path), "%s/sessions/%s", cg, agent.node);
	cr_assert(gone(path), "the node's root stayed");
}
