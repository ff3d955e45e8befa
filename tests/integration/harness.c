#include "harness.h"

#include "hpcxl/common/tls.h"
#include "hpcxl/common/util.h"
#include "sp_tls.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_STEP_MS 10
/* Agents of one test process; every one has a directory of its own. */
#define MAX_AGENTS 64
#define AGENT_DIR_PREFIX "/tmp/hpcxl-test-"
/* At exit: how long agents a test left running get to stop, and how long
 * cgroups whose last processes are still exiting get to empty. */
#define EXIT_STOP_MS 10000
#define EXIT_RMDIR_MS 3000
/* How long a killed child's last output gets to reach us. */
#define RUN_DRAIN_MS 2000

void
harness_nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

const char *
harness_bin(const char *name)
{
	static char path[8][PATH_MAX];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", HPCXL_BIN_DIR, name);
	return p;
}

const char *
harness_own_user(void)
{
	static char name[256];
	struct passwd *pw;

	if (name[0] == '\0') {
		pw = getpwuid(geteuid());
		if (pw != NULL)
			snprintf(name, sizeof(name), "%s", pw->pw_name);
		else
			snprintf(
			    name, sizeof(name), "%u", (unsigned)geteuid());
	}
	return name;
}

void
harness_unique(const char *prefix, char *out, size_t len)
{
	static int counter;

	snprintf(out, len, "%s-%d-%d", prefix, (int)getpid(), ++counter);
}

/* Every word of the NULL-terminated words is in line. */
static bool
line_has_all(const char *line, const void *words)
{
	for (const char *const *w = words; *w != NULL; w++) {
		if (strstr(line, *w) == NULL)
			return false;
	}
	return true;
}

static bool
line_starts_with(const char *line, const void *prefix)
{
	return strncmp(line, prefix, strlen(prefix)) == 0;
}

/*
 * How many lines (newline dropped) of the file name in a's directory
 * match(line, arg) takes, up to max; the first into out (when not NULL).
 * 0 when the file cannot be read.
 */
static int
match_lines(const struct harness_agent *a, const char *name,
    bool (*match)(const char *line, const void *arg), const void *arg, int max,
    char *out, size_t len)
{
	char path[PATH_MAX + 16], line[2048];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", a->dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!match(line, arg))
			continue;
		if (n++ == 0 && out != NULL)
			snprintf(out, len, "%s", line);
	}
	fclose(f);
	return n;
}

/* The first line of the file name in a's directory that match takes. */
static bool
find_line(const struct harness_agent *a, const char *name,
    bool (*match)(const char *line, const void *arg), const void *arg,
    char *out, size_t len)
{
	return match_lines(a, name, match, arg, 1, out, len) == 1;
}

bool
harness_ready_url(
    const struct harness_agent *a, const char *prefix, char *out, size_t len)
{
	return find_line(a, "ready", line_starts_with, prefix, out, len);
}

bool
harness_agent_logged(const struct harness_agent *a, const char *const *words)
{
	char line[2048];

	return find_line(
	    a, "agent.log", line_has_all, words, line, sizeof(line));
}

int
harness_agent_log_count(const struct harness_agent *a, const char *text)
{
	const char *const words[] = { text, NULL };

	return match_lines(
	    a, "agent.log", line_has_all, words, INT_MAX, NULL, 0);
}

bool
harness_agent_wait_log(
    const struct harness_agent *a, const char *text, int n, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	while (harness_agent_log_count(a, text) < n) {
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(POLL_STEP_MS);
	}
	return true;
}

static int
read_ready(struct harness_agent *a)
{
	char path[PATH_MAX + 16];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/ready", a->dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fgets(a->url, sizeof(a->url), f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	a->url[strcspn(a->url, "\n")] = '\0';
	return 0;
}

static bool
agent_exited(struct harness_agent *a)
{
	int st;

	if (waitpid(a->pid, &st, WNOHANG) != a->pid)
		return false;
	a->exit_status = st;
	a->pid = 0;
	return true;
}

/* The argument vector is kept per agent so a restart can reuse it. */
#define MAX_ARGS 64
static char *saved_args[MAX_AGENTS][MAX_ARGS];
static int nsaved;

/* ---- what a test process leaves behind ----------------------------------
 *
 * Every agent a test process starts is noted here, and its directory and
 * the cgroups it made go when that process exits, pass or fail: Criterion
 * runs each test, its .fini and then the exit handlers in a process of its
 * own. Not as soon as the agent stops: a test may restart it on the same
 * state (harness_agent_restart), or edit that state while it is down. A
 * test process that crashes leaves them behind.
 */
struct started_agent {
	pid_t pid; /* the last one spawned here; it may be reaped since */
	char node[64];
	char dir[PATH_MAX];
};

static struct started_agent started[MAX_AGENTS];
static int nstarted;
static pid_t started_by; /* whose agents these are: not its forks' */

/* Agents on the default cgroup root make <hub>/<node>/<session>. The hubs
 * stay: every agent of the machine shares them, and removing one would
 * race another's mkdir of its node. */
static const char *const cgroup_hubs[]
    = { "/sys/fs/cgroup/hpcxl", "/sys/fs/cgroup/unified/hpcxl" };
static int64_t rmdir_deadline;

/* An agent the test did not stop: SIGTERM, as its death would send it
 * (PR_SET_PDEATHSIG), then SIGKILL. */
static void
stop_if_running(const struct started_agent *s, int64_t deadline)
{
	struct harness_agent a = { .pid = s->pid };
	int st;

	/* Only a child not yet reaped: a reused pid is never signalled. */
	if (s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == 0)
		harness_agent_stop(&a, (int)(deadline - util_now_ms()));
}

/* nftw() callback, deepest first: a cgroup goes with rmdir (its files go
 * with it), once the processes killed in it have finished exiting. */
static int
rmdir_cgroup(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag != FTW_DP)
		return 0;
	while (rmdir(path) != 0 && errno == EBUSY
	    && util_now_ms() < rmdir_deadline)
		harness_nap_ms(POLL_STEP_MS);
	return 0;
}

static void
remove_cgroups(const char *node)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(cgroup_hubs) / sizeof(cgroup_hubs[0]);
	     i++) {
		snprintf(path, sizeof(path), "%s/%s", cgroup_hubs[i], node);
		nftw(path, rmdir_cgroup, 8, FTW_DEPTH | FTW_PHYS);
	}
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

void
harness_remove_tree(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The agent's directory, whole: ready file, config, log and state. */
static void
remove_dir(const char *dir)
{
	/* Only a directory agent_start() named, whatever else went wrong. */
	if (strncmp(dir, AGENT_DIR_PREFIX, strlen(AGENT_DIR_PREFIX)) == 0)
		harness_remove_tree(dir);
}

/* What an agent that no longer runs leaves: its cgroups, its directory
 * (unless HPCXL_TEST_KEEP is set). The caller sets rmdir_deadline. */
static void
remove_traces(const char *node, const char *dir)
{
	remove_cgroups(node);
	if (getenv("HPCXL_TEST_KEEP") != NULL)
		fprintf(stderr, "kept %s\n", dir);
	else
		remove_dir(dir);
}

static void
clean_up_at_exit(void)
{
	int64_t deadline = util_now_ms() + EXIT_STOP_MS;
	int i;

	if (getpid() != started_by)
		return; /* a fork of the test process */
	for (i = 0; i < nstarted; i++)
		stop_if_running(&started[i], deadline);
	rmdir_deadline = util_now_ms() + EXIT_RMDIR_MS;
	for (i = 0; i < nstarted; i++)
		remove_traces(started[i].node, started[i].dir);
}

/* Notes agent a (again, when restarted) for the clean-up at exit. */
static void
note_started(const struct harness_agent *a)
{
	struct started_agent *s = NULL;
	int i;

	if (started_by != getpid()) {
		/* The handler is inherited over fork: registered once. */
		if (started_by == 0)
			atexit(clean_up_at_exit);
		started_by = getpid();
		nstarted = 0;
	}
	for (i = 0; i < nstarted && s == NULL; i++) {
		if (strcmp(started[i].node, a->node) == 0)
			s = &started[i];
	}
	if (s == NULL && nstarted == MAX_AGENTS) {
		fprintf(stderr, "harness: %s will stay behind\n", a->dir);
		return;
	}
	if (s == NULL) {
		s = &started[nstarted++];
		snprintf(s->node, sizeof(s->node), "%s", a->node);
		snprintf(s->dir, sizeof(s->dir), "%s", a->dir);
	}
	s->pid = a->pid;
}

/* Why an agent did not start is in its log, which goes at exit: into the
 * test's output with it. */
static void
print_log(const struct harness_agent *a)
{
	char path[PATH_MAX + 16], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.log", a->dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	fprintf(stderr, "--- %s (agent %s did not start):\n", path, a->node);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

/* Profiles that need more than --profile can say go in a config file. */
static void
write_config(const struct harness_agent *a, const char *xl)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.ini", a->dir);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fprintf(f,
	    "[agent]\nstop_grace_ms = 1000\n\n"
	    "[profile.xl-restart]\ncommand = %s --crash-after 100\n"
	    "restart = on-failure\nmax_restarts = 2\n",
	    xl);
	fclose(f);
}

static char **
agent_argv(struct harness_agent *a, const char *const *extra, bool keep)
{
	const char *xl = harness_bin("xlsim");
	char **v = saved_args[nsaved++ % MAX_AGENTS];
	int n = 0;

	for (int i = 0; i < MAX_ARGS && v[i] != NULL; i++)
		free(v[i]);
	memset(v, 0, sizeof(char *) * MAX_ARGS);
#define ARG(...)                                                              \
	do {                                                                  \
		if (asprintf(&v[n], __VA_ARGS__) > 0)                         \
			n++;                                                  \
	} while (0)
	write_config(a, xl);
	ARG("%s", harness_bin("hpcxl-agent"));
	ARG("--config");
	ARG("%s/agent.ini", a->dir);
	ARG("--listen");
	ARG("tcp://127.0.0.1:0");
	ARG("--ready-file");
	ARG("%s/ready", a->dir);
	ARG("--state-dir");
	ARG("%s/state", a->dir);
	ARG("--node");
	ARG("%s", a->node);
	/* A whole suite run again on the other backend (CTest sets it). */
	if (getenv("HPCXL_TEST_BACKEND") != NULL) {
		ARG("--backend");
		ARG("%s", getenv("HPCXL_TEST_BACKEND"));
	}
	/* Debug lines in the kept logs, to chase a failure (with
	 * HPCXL_TEST_KEEP=1). */
	if (getenv("HPCXL_TEST_VERBOSE") != NULL)
		ARG("--verbose");
	ARG("--stop-grace");
	ARG("1000");
	ARG("--default-user");
	ARG("%s", harness_own_user());
	/* Its callers come over plain tcp:// on loopback, so they are all
	 * "anonymous" (agent/caller.h): as an admin, a test may clear the
	 * unhealthy mark and close sessions a test before it left. */
	ARG("--admin");
	ARG("anonymous");
	/* Tests that do not test restarts leave nothing behind them. */
	if (!keep)
		ARG("--close-on-exit");
	ARG("--profile");
	ARG("xl=%s", xl);
	ARG("--profile");
	ARG("xl-ignore=%s --on-term ignore", xl);
	ARG("--profile");
	ARG("xl-children=%s --children 2", xl);
	ARG("--profile");
	ARG("xl-detach=%s --detach", xl);
	ARG("--profile");
	ARG("xl-crash=%s --crash-after 100", xl);
	ARG("--profile");
	ARG("xl-storm=%s --fork-storm", xl);
	ARG("--profile");
	ARG("broken=%s/no-such-program", a->dir);
	for (int i = 0; extra != NULL && extra[i] != NULL && n < MAX_ARGS - 1;
	     i++)
		ARG("%s", extra[i]);
#undef ARG
	return v;
}

/*
 * In the agent's child before exec (syscalls only): the system calls of
 * deny (ended by -1) fail with EPERM from then on, or kill the process
 * that makes one (SIGSYS), in the agent and in what it starts, as under a
 * sandbox's seccomp filter. 0, or -1 where this architecture is not known
 * here.
 */
static int
deny_syscalls(const long *deny, bool kill)
{
	const unsigned action
	    = kill ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM;
#if defined(__x86_64__)
	const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const unsigned arch = AUDIT_ARCH_AARCH64;
#else
	const unsigned arch = 0;
#endif
	struct sock_filter f[64];
	struct sock_fprog prog = { .filter = f };
	unsigned short n = 0;

	if (arch == 0)
		return -1;
	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(
	    BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0);
	f[n++]
	    = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (; *deny >= 0 && n < 60; deny++) {
		f[n++] = (struct sock_filter)BPF_JUMP(
		    BPF_JMP | BPF_JEQ | BPF_K, (unsigned)*deny, 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action);
	}
	f[n++]
	    = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = n;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
	    || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return -1;
	return 0;
}

bool
harness_can_deny_syscalls(void)
{
	static const long probe[] = { SYS_close_range, -1 };
	int status = -1;
	pid_t pid = fork();

	/* Tried in a child of its own: the filter cannot be taken back. */
	if (pid == 0)
		_exit(deny_syscalls(probe, false) == 0 ? 0 : 1);
	if (pid < 0)
		return false;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
agent_spawn(struct harness_agent *a, char **argv, const long *deny, bool kill)
{
	char path[PATH_MAX + 16];
	int64_t deadline = util_now_ms() + 10000;
	pid_t parent;
	int fd;

	snprintf(path, sizeof(path), "%s/ready", a->dir);
	unlink(path);
	a->exit_status = -1;
	parent = getpid();
	if ((a->pid = fork()) == 0) {
		/* A test process that crashes takes its agents with it (they
		 * close their sessions on SIGTERM), instead of leaving them
		 * holding the test runner's pipes. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0
		    || getppid() != parent)
			_exit(126);
		snprintf(path, sizeof(path), "%s/agent.log", a->dir);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		if (deny != NULL && deny_syscalls(deny, kill) != 0)
			_exit(125);
		execv(argv[0], argv);
		_exit(127);
	}
	note_started(a);
	while (util_now_ms() < deadline) {
		if (read_ready(a) == 0)
			return 0;
		if (agent_exited(a))
			break;
		harness_nap_ms(POLL_STEP_MS);
	}
	harness_agent_kill(a);
	print_log(a);
	return -1;
}

static int
agent_start(struct harness_agent *a, const char *node,
    const char *const *extra_args, bool keep, const long *deny, bool kill)
{
	char **argv;

	memset(a, 0, sizeof(*a));
	harness_unique(node, a->node, sizeof(a->node));
	snprintf(a->dir, sizeof(a->dir), AGENT_DIR_PREFIX "%s", a->node);
	mkdir(a->dir, 0755);
	argv = agent_argv(a, extra_args, keep);
	if (agent_spawn(a, argv, deny, kill) == 0)
		return 0;
	/* Gone now: a failed start is most often in a suite's .init, which
	 * Criterion then ends like a crash, without exit handlers. The log,
	 * all that is worth keeping, is on stderr already. */
	rmdir_deadline = util_now_ms() + EXIT_RMDIR_MS;
	remove_traces(a->node, a->dir);
	return -1;
}

int
harness_agent_start(
    struct harness_agent *a, const char *node, const char *const *extra_args)
{
	return agent_start(a, node, extra_args, false, NULL, false);
}

int
harness_agent_start_keeping(
    struct harness_agent *a, const char *node, const char *const *extra_args)
{
	return agent_start(a, node, extra_args, true, NULL, false);
}

int
harness_agent_start_denying(
    struct harness_agent *a, const char *node, const long *deny, bool kill)
{
	return agent_start(a, node, NULL, false, deny, kill);
}

int
harness_agent_restart(struct harness_agent *a)
{
	for (int i = 0; i < nsaved && i < MAX_AGENTS; i++) {
		char **v = saved_args[i];

		/* Find the argv whose --node matches this agent. */
		for (int k = 0; v[k] != NULL && v[k + 1] != NULL; k++) {
			if (strcmp(v[k], "--node") == 0
			    && strcmp(v[k + 1], a->node) == 0)
				return agent_spawn(a, v, NULL, false);
		}
	}
	return -1;
}

int
harness_agent_stop(struct harness_agent *a, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	if (a->pid <= 0)
		return a->exit_status;
	kill(a->pid, SIGTERM);
	while (util_now_ms() < deadline) {
		if (agent_exited(a))
			return a->exit_status;
		harness_nap_ms(POLL_STEP_MS);
	}
	harness_agent_kill(a);
	return -1;
}

void
harness_agent_kill(struct harness_agent *a)
{
	int st;

	if (a->pid <= 0)
		return;
	kill(a->pid, SIGKILL);
	if (waitpid(a->pid, &st, 0) == a->pid)
		a->exit_status = st;
	a->pid = 0;
}

static bool
is_zombie(const char *pid)
{
	char path[64], buf[512], *rp;
	FILE *f;
	bool z = false;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return true; /* gone already */
	if (fgets(buf, sizeof(buf), f) != NULL
	    && (rp = strrchr(buf, ')')) != NULL)
		z = rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
	fclose(f);
	return z;
}

/* Reads /proc/<pid>/environ whole; returns the length or -1. */
static ssize_t
read_environ(const char *pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n, total = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	while ((size_t)total < len
	    && (n = read(fd, buf + total, len - (size_t)total)) > 0)
		total += n;
	close(fd);
	return total;
}

static const char *
environ_find(const char *env, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		const char *e = env + i;
		size_t el = strnlen(e, len - i);

		if (el > nl && memcmp(e, name, nl) == 0 && e[nl] == '=')
			return e + nl + 1;
		i += el + 1;
	}
	return NULL;
}

int
harness_proc_env(pid_t pid, const char *name, char *out, size_t len)
{
	static char env[1 << 16];
	char p[32];
	const char *v;
	ssize_t n;

	snprintf(p, sizeof(p), "%d", (int)pid);
	if ((n = read_environ(p, env, sizeof(env) - 1)) < 0)
		return -1;
	env[n] = '\0';
	if ((v = environ_find(env, (size_t)n, name)) == NULL)
		return -1;
	snprintf(out, len, "%s", v);
	return 0;
}

/* Sends sig (when > 0) to every live process of session; returns how many
 * there are. */
static int
session_procs_signal(const char *session, int sig)
{
	static char env[1 << 16];
	struct dirent *de;
	DIR *d = opendir("/proc");
	const char *v;
	ssize_t n;
	int count = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if ((n = read_environ(de->d_name, env, sizeof(env) - 1)) <= 0)
			continue;
		env[n] = '\0';
		v = environ_find(env, (size_t)n, "HPCXL_SESSION");
		if (v == NULL || strcmp(v, session) != 0
		    || is_zombie(de->d_name))
			continue;
		count++;
		if (sig > 0)
			kill((pid_t)atoi(de->d_name), sig);
	}
	closedir(d);
	return count;
}

int
harness_session_procs(const char *session)
{
	return session_procs_signal(session, 0);
}

void
harness_session_kill(const char *session)
{
	session_procs_signal(session, SIGKILL);
}

bool
harness_wait_procs(const char *session, int n, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		if (harness_session_procs(session) == n)
			return true;
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(POLL_STEP_MS);
	}
}

static bool
log_says_ready(const char *path)
{
	char line[512];
	bool ready = false;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	while (!ready && fgets(line, sizeof(line), f) != NULL)
		ready = strncmp(line, "xlsim ready", 11) == 0;
	fclose(f);
	return ready;
}

static int
count_ready(const struct harness_agent *a, const char *session, int n)
{
	char path[PATH_MAX + 128];
	int ready = 0;

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/state/logs/%s/worker-%d.log",
		    a->dir, session, i);
		ready += log_says_ready(path);
	}
	return ready;
}

bool
harness_wait_ready(
    const struct harness_agent *a, const char *session, int n, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		if (count_ready(a, session, n) == n)
			return true;
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(POLL_STEP_MS);
	}
}

/* Who this process is to tls+tcp:// agents (harness_tls_client()). */
static struct {
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	char server_name[256];
} tls_client;

void
harness_tls_client(
    const char *cert, const char *key, const char *ca, const char *server_name)
{
	snprintf(tls_client.cert, PATH_MAX, "%s", cert != NULL ? cert : "");
	snprintf(tls_client.key, PATH_MAX, "%s", key != NULL ? key : "");
	snprintf(tls_client.ca, PATH_MAX, "%s", ca != NULL ? ca : "");
	snprintf(tls_client.server_name, sizeof(tls_client.server_name), "%s",
	    server_name != NULL ? server_name : "");
}

/* A reply body into reply; 0 or -1. */
static int
decode_reply(const void *body, size_t len, struct proto_msg *reply)
{
	return proto_decode(body, len, PROTO_MAX_REPLY, reply, NULL) == 0 ? 0
	                                                                  : -1;
}

/* tls+tcp:// through sp_tls.h (nng 1.5.2's TLS client can hang this
 * process: see there). */
static int
request_tls(const char *url, const void *frame, size_t len, int timeout_ms,
    struct proto_msg *reply)
{
	struct sp_tls_client c = { tls_client.cert, tls_client.key,
		tls_client.ca, tls_client.server_name, false };
	unsigned char *body;
	size_t n;
	int rv;

	if (tls_client.cert[0] == '\0'
	    || sp_tls_survey(url, &c, frame, len, timeout_ms, &body, &n) != 0)
		return -1;
	rv = decode_reply(body, n, reply);
	free(body);
	return rv;
}

int
harness_request_raw(const char *url, const void *frame, size_t len,
    int timeout_ms, struct proto_msg *reply)
{
	nng_socket s;
	nng_msg *msg = NULL;
	int rv = -1;

	if (tls_url(url))
		return request_tls(url, frame, len, timeout_ms, reply);
	if (nng_surveyor0_open(&s) != 0)
		return -1;
	nng_socket_set_ms(s, NNG_OPT_SURVEYOR_SURVEYTIME, timeout_ms);
	if (nng_dial(s, url, NULL, 0) != 0
	    || nng_send(s, (void *)frame, len, 0) != 0
	    || nng_recvmsg(s, &msg, 0) != 0)
		goto out;
	rv = decode_reply(nng_msg_body(msg), nng_msg_len(msg), reply);
	nng_msg_free(msg);
out:
	nng_close(s);
	return rv;
}

int
harness_request(const char *url, const struct proto_msg *req, int timeout_ms,
    struct proto_msg *reply)
{
	char *frame;
	size_t len;
	int rv;

	if (proto_encode(req, &frame, &len) != 0)
		return -1;
	rv = harness_request_raw(url, frame, len, timeout_ms, reply);
	free(frame);
	return rv;
}

/* The code of the agent's answer to a status of session, or -1. */
static int
status_code(const char *url, const char *session, int timeout_ms)
{
	struct proto_msg req = { .type = PROTO_STATUS }, reply;
	int code = -1;

	req.op = util_random_u64();
	req.u.status.session = (char *)session;
	if (harness_request(url, &req, timeout_ms, &reply) != 0)
		return -1;
	if (reply.type == PROTO_REPLY && reply.op == req.op)
		code = (int)reply.u.reply.code;
	proto_msg_free(&reply);
	return code;
}

bool
harness_wait_session_gone(const char *url, const char *session, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline - util_now_ms();

		if (status_code(url, session, left > 0 ? (int)left : 1)
		    == PROTO_CODE_NOT_FOUND)
			return true;
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(POLL_STEP_MS);
	}
}

/* What a child wrote to its stdout so far: NUL-terminated, growing. */
struct run_out {
	char *text;
	size_t len, cap;
};

/* Reads once from fd into o; false at EOF, or on an error or out of
 * memory (then the output stops there). */
static bool
run_out_read(struct run_out *o, int fd)
{
	ssize_t n;

	if (o->cap - o->len < 1024) {
		char *bigger = realloc(o->text, o->cap * 2);

		if (bigger == NULL)
			return false;
		o->text = bigger;
		o->cap *= 2;
	}
	n = read(fd, o->text + o->len, o->cap - o->len - 1);
	if (n > 0) {
		o->len += (size_t)n;
		o->text[o->len] = '\0';
		return true;
	}
	return n < 0 && errno == EINTR;
}

/* A poll() timeout for deadline: -1 without one (deadline < 0). */
static int
run_poll_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - util_now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/*
 * Reads pid's output from fd until it has closed it and exited (true), or
 * deadline passed (false). The exit is watched through a pidfd, so a child
 * that closes its stdout and then hangs is caught too; without pidfds only
 * the output is waited for.
 */
static bool
run_collect(pid_t pid, int fd, int64_t deadline, struct run_out *o)
{
	int pidfd = pidfd_open(pid, 0), rc;
	bool eof = false, exited = pidfd < 0;

	while (!eof || !exited) {
		struct pollfd p[2] = { { .fd = eof ? -1 : fd,
			                   .events = POLLIN },
			{ .fd = exited ? -1 : pidfd, .events = POLLIN } };

		if (deadline >= 0 && util_now_ms() >= deadline)
			break;
		rc = poll(p, 2, run_poll_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		if (p[0].revents != 0)
			eof = !run_out_read(o, fd);
		if (p[1].revents != 0)
			exited = true;
	}
	if (pidfd >= 0)
		close(pidfd);
	return eof && exited;
}

/* Who a program runs as: the test's own user when uid is NULL. */
struct run_creds {
	const uid_t *uid;
	gid_t gid;
};

/* In the child, between fork and exec: syscalls only. */
static bool
become(const struct run_creds *who)
{
	if (who->uid == NULL)
		return true;
	return setgroups(0, NULL) == 0 && setgid(who->gid) == 0
	    && setuid(*who->uid) == 0;
}

/* Starts argv as who with its stdout on pfd[1]; the pid, or -1. The
 * child exits 126 when it cannot become who. */
static pid_t
run_spawn(
    const char *const argv[], const struct run_creds *who, const int pfd[2])
{
	pid_t pid = fork();

	if (pid == 0) {
		/* The pipe is close-on-exec, so a program the test starts
		 * on another thread meanwhile cannot keep it open; stdout,
		 * dup2()'s copy, is not. */
		dup2(pfd[1], 1);
		if (!become(who))
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int
run_bounded_as(const char *const argv[], const struct run_creds *who,
    int timeout_ms, struct harness_run_result *r)
{
	int64_t start = util_now_ms();
	struct run_out o = { .text = calloc(1, 4096), .cap = 4096 };
	int pfd[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (o.text == NULL || pipe2(pfd, O_CLOEXEC) != 0) {
		free(o.text);
		return -1;
	}
	pid = run_spawn(argv, who, pfd);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		free(o.text);
		return -1;
	}
	if (!run_collect(
	        pid, pfd[0], timeout_ms < 0 ? -1 : start + timeout_ms, &o)) {
		r->timed_out = true;
		kill(pid, SIGKILL);
		/* What it wrote before, now that its end of the pipe is
		 * closed for it. */
		run_collect(pid, pfd[0], util_now_ms() + RUN_DRAIN_MS, &o);
	}
	close(pfd[0]);
	waitpid(pid, &r->status, 0);
	r->elapsed_ms = util_now_ms() - start;
	r->out = o.text;
	return 0;
}

int
harness_run_bounded(
    const char *const argv[], int timeout_ms, struct harness_run_result *r)
{
	struct run_creds self = { NULL, 0 };

	return run_bounded_as(argv, &self, timeout_ms, r);
}

int
harness_run_as(uid_t uid, gid_t gid, const char *const argv[], int timeout_ms,
    struct harness_run_result *r)
{
	struct run_creds who = { &uid, gid };

	return run_bounded_as(argv, &who, timeout_ms, r);
}

int
harness_run(
    const char *const argv[], char **out, int *status, int64_t *elapsed_ms)
{
	struct harness_run_result r;

	if (harness_run_bounded(argv, -1, &r) != 0)
		return -1;
	if (status != NULL)
		*status = r.status;
	if (elapsed_ms != NULL)
		*elapsed_ms = r.elapsed_ms;
	if (out != NULL)
		*out = r.out;
	else
		free(r.out);
	return 0;
}

void
harness_proc_cgroup(pid_t pid, char *out, size_t len)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	out[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + 3);
		}
	}
	fclose(f);
}

size_t
harness_tcp_conns_to(const char *url, unsigned *ports, size_t max)
{
	const char *colon = strrchr(url, ':');
	unsigned remote, lport, rport, st;
	char line[512];
	size_t n = 0;
	FILE *f;

	if (colon == NULL || (f = fopen("/proc/net/tcp", "r")) == NULL)
		return 0;
	remote = (unsigned)atoi(colon + 1);
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		/* "sl local_address rem_address st ...", addresses in hex */
		if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lport, &rport, &st)
		        == 3
		    && rport == remote && st == 0x01 /* TCP_ESTABLISHED */)
			ports[n++] = lport;
	}
	fclose(f);
	return n;
}

int
harness_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

bool
harness_fds_settled(pid_t pid, int limit, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	while (harness_count_fds(pid) > limit) {
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(20);
	}
	return true;
}

/* make-certs.sh and openssl on a busy machine. */
#define MAKE_PKI_MS 60000

int
harness_make_pki(const char *script, const char *dir, const char *client,
    char *why, size_t whylen)
{
	const char *argv[] = { script, "--agent", "localhost", "--client",
		client, dir, NULL };
	struct harness_run_result r;
	bool ok;

	if (mkdir(dir, 0700) != 0) {
		snprintf(why, whylen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (harness_run_bounded(argv, MAKE_PKI_MS, &r) != 0) {
		snprintf(why, whylen, "cannot run %s", script);
		return -1;
	}
	ok = !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
	snprintf(why, whylen, "%s", r.out != NULL ? r.out : "");
	free(r.out);
	return ok ? 0 : -1;
}

const char *
harness_pki_file(const char *dir, const char *name)
{
	static char paths[8][PATH_MAX];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

int
harness_tls_agent_start(struct harness_agent *a, const char *node,
    const char *pki, bool keeping, const char *const *extra, char *url,
    size_t len)
{
	const char *args[8 + 16 + 1] = { "--listen", "tls+tcp4://localhost:0",
		"--tls-cert", harness_pki_file(pki, "agent-localhost.pem"),
		"--tls-key", harness_pki_file(pki, "agent-localhost.key"),
		"--tls-ca", harness_pki_file(pki, "ca.pem") };
	size_t n = 8;
	int rv;

	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (n == sizeof(args) / sizeof(args[0]) - 1)
			return -1;
		args[n++] = extra[i];
	}
	args[n] = NULL;
	rv = keeping ? harness_agent_start_keeping(a, node, args)
	             : harness_agent_start(a, node, args);
	if (rv != 0 || !harness_ready_url(a, "tls+tcp", url, len))
		return -1;
	return 0;
}
