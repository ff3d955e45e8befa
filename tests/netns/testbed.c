#include "testbed.h"

#include "harness.h"
#include "hpcxl/common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_DIR "/run/netns"
#define POLL_STEP_MS 10
/* Deadlines: generous, for sanitizer builds on a loaded 2-core machine. */
#define IP_TIMEOUT_MS 20000
#define AGENTS_READY_MS 60000
#define AGENTS_STOP_MS 20000
#define KILL_WAIT_MS 10000
#define MAX_NAMES 2048 /* namespaces one sweep removes, at most */

static const char *const cgroup_hubs[]
    = { "/sys/fs/cgroup/hpcxl", "/sys/fs/cgroup/unified/hpcxl" };

/* ---- small helpers ----------------------------------------------------- */

static void
set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static const char *
ip_path(void)
{
	static const char *const dirs[]
	    = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	static char path[64];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/ip", dirs[i]);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/* The inode of a network namespace by name, or 0. */
static ino_t
ns_inode(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* The inode of pid's network namespace, or 0: a process that is gone or
 * exiting (a zombie among them) has left its namespaces. */
static ino_t
proc_net_inode(const char *pid)
{
	char path[300], link[64];
	unsigned long long ino;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
		return 0;
	link[n] = '\0';
	return sscanf(link, "net:[%llu]", &ino) == 1 ? (ino_t)ino : 0;
}

static bool
ino_in(ino_t ino, const ino_t *set, size_t n)
{
	for (size_t i = 0; ino != 0 && i < n; i++) {
		if (set[i] == ino)
			return true;
	}
	return false;
}

/*
 * Live (not exiting, not zombie) processes whose network namespace is one
 * of set[0..n), with HPCXL_SESSION=session when session is not NULL; each
 * is sent sig when sig > 0. Returns how many there are.
 */
static int
procs_in(const ino_t *set, size_t n, const char *session, int sig)
{
	char value[128];
	struct dirent *de;
	DIR *d;
	int count = 0;

	if (n == 0 || (d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid()
		    || !ino_in(proc_net_inode(de->d_name), set, n))
			continue;
		if (session != NULL
		    && (harness_proc_env(
		            pid, "HPCXL_SESSION", value, sizeof(value))
		            != 0
		        || strcmp(value, session) != 0))
			continue;
		count++;
		if (sig > 0)
			kill(pid, sig);
	}
	closedir(d);
	return count;
}

/* ---- running programs -------------------------------------------------- */

/*
 * Forks argv[0] with stdout on out_fd and stderr on err_fd (-1: inherited),
 * inside network namespace ns (NULL: this one). Every fd this file opens
 * is close-on-exec, so a long-lived child holds none of them.
 */
static pid_t
spawn(char *const argv[], const char *ns, int out_fd, int err_fd)
{
	char path[PATH_MAX];
	int nsfd = -1;
	pid_t pid;

	if (ns != NULL) {
		snprintf(path, sizeof(path), NETNS_DIR "/%s", ns);
		if ((nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return -1;
	}
	if ((pid = fork()) == 0) {
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0)
			_exit(126);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (nsfd >= 0)
		close(nsfd);
	return pid;
}

/* Waits up to timeout_ms for pid; SIGKILLs it after that. Returns its wait
 * status, or -1 when it had to be killed. A pidfd wakes the wait the
 * moment the process ends (a measured time must not include a nap). */
static int
reap_within(pid_t pid, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;
	int pidfd = pidfd_open(pid, 0), st;
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		int left = (int)(deadline - util_now_ms());

		if (r == pid) {
			if (pidfd >= 0)
				close(pidfd);
			return st;
		}
		if (r < 0 && errno != EINTR) {
			if (pidfd >= 0)
				close(pidfd);
			return -1; /* not a child of ours: nothing to kill */
		}
		if (left <= 0)
			break;
		if (pidfd < 0 || poll(&p, 1, left) < 0)
			harness_nap_ms(
			    left < POLL_STEP_MS ? left : POLL_STEP_MS);
	}
	if (pidfd >= 0)
		close(pidfd);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Reads fd until EOF or the deadline into a malloc'd string. */
static char *
read_until(int fd, int64_t deadline, bool *eof)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char chunk[4096], *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ssize_t n;

	*eof = false;
	while (m != NULL && !*eof && util_now_ms() < deadline) {
		int wait = (int)(deadline - util_now_ms());

		if (poll(&p, 1, wait > 0 ? wait : 0) <= 0)
			continue; /* EINTR or the deadline: the loop checks */
		if ((n = read(fd, chunk, sizeof(chunk))) > 0)
			fwrite(chunk, 1, (size_t)n, m);
		else if (n == 0)
			*eof = true;
		else if (errno != EINTR)
			break;
	}
	if (m == NULL || fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Runs argv with stdout and stderr into out (truncated); returns the exit
 * code, or -1 (could not run, killed by a signal or on timeout). */
static int
run_capture(char *const argv[], char *out, size_t outlen)
{
	int64_t deadline = util_now_ms() + IP_TIMEOUT_MS;
	int pfd[2], st;
	bool eof;
	char *text;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	pid = spawn(argv, NULL, pfd[1], pfd[1]);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -1;
	}
	text = read_until(pfd[0], deadline, &eof);
	close(pfd[0]);
	if (text != NULL) {
		size_t len = strlen(text);

		while (
		    len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
			text[--len] = '\0';
		snprintf(out, outlen, "%s", text);
		free(text);
	}
	st = reap_within(pid, eof ? IP_TIMEOUT_MS : 0);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An ip batch: commands written to a file, then run by one ip. */
struct batch {
	FILE *f;
	char path[PATH_MAX + 64];
};

static int
batch_open(struct batch *b, const char *dir, const char *name, char *err,
    size_t errlen)
{
	snprintf(b->path, sizeof(b->path), "%s/%s", dir, name);
	if ((b->f = fopen(b->path, "we")) == NULL) {
		set_err(err, errlen, "cannot write %s: %s", b->path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Closes the batch and runs ip [-n ns] [-force] -batch FILE; 0 or -1 with
 * ip's words in err. */
static int
batch_run(
    struct batch *b, const char *ns, bool force, char *err, size_t errlen)
{
	char *argv[8], out[512];
	bool bad = ferror(b->f) != 0;
	int n = 0, rc;

	if (fclose(b->f) != 0 || bad) {
		set_err(err, errlen, "cannot write %s", b->path);
		return -1;
	}
	if ((argv[n++] = (char *)ip_path()) == NULL) {
		set_err(err, errlen, "no ip program");
		return -1;
	}
	if (ns != NULL) {
		argv[n++] = "-n";
		argv[n++] = (char *)ns;
	}
	if (force)
		argv[n++] = "-force";
	argv[n++] = "-batch";
	argv[n++] = b->path;
	argv[n] = NULL;
	if ((rc = run_capture(argv, out, sizeof(out))) != 0) {
		set_err(err, errlen, "ip%s%s -batch %s: exit %d: %s",
		    ns != NULL ? " -n " : "", ns != NULL ? ns : "", b->path,
		    rc, out);
		return -1;
	}
	return 0;
}

/* ---- availability ------------------------------------------------------ */

const char *
testbed_unavailable(void)
{
	static char why[600];
	char name[64], out[400];
	char *add[] = { (char *)ip_path(), "netns", "add", name, NULL };
	char *bridge[] = { add[0], "-n", name, "link", "add", "br0", "type",
		"bridge", NULL };
	char *veth[] = { add[0], "-n", name, "link", "add", "v0", "type",
		"veth", "peer", "name", "v1", NULL };
	char *del[] = { add[0], "netns", "del", name, NULL };
	int rc;

	if (geteuid() != 0)
		return "not root (network namespaces need CAP_SYS_ADMIN and "
		       "CAP_NET_ADMIN)";
	if (add[0] == NULL)
		return "no ip program (install iproute2)";
	snprintf(name, sizeof(name), "hpcxl-nt%d-probe", (int)getpid());
	if ((rc = run_capture(add, out, sizeof(out))) != 0) {
		snprintf(why, sizeof(why),
		    "cannot create a network namespace (ip netns add: exit "
		    "%d: %s)",
		    rc, out);
		return why;
	}
	if ((rc = run_capture(bridge, out, sizeof(out))) != 0)
		snprintf(why, sizeof(why),
		    "cannot create a bridge in a network namespace (exit %d: "
		    "%s)",
		    rc, out);
	else if ((rc = run_capture(veth, out, sizeof(out))) != 0)
		snprintf(why, sizeof(why),
		    "cannot create a veth pair in a network namespace (exit "
		    "%d: %s)",
		    rc, out);
	run_capture(del, out, sizeof(out));
	return rc != 0 ? why : NULL;
}

/* ---- tearing down ------------------------------------------------------ */

/* rmdir that waits (bounded) while the cgroup still empties. */
static void
rmdir_cgroup(const char *path)
{
	int64_t deadline = util_now_ms() + KILL_WAIT_MS;

	while (rmdir(path) != 0 && errno == EBUSY && util_now_ms() < deadline)
		harness_nap_ms(POLL_STEP_MS);
}

/* Removes <hub>/<name>/<session> cgroups and <hub>/<name> for every name
 * starting with prefix (agents killed with SIGKILL leave them). */
static void
remove_cgroups(const char *prefix)
{
	char node[PATH_MAX], sub[PATH_MAX + 300];
	struct dirent *de, *se;
	DIR *d, *s;

	for (size_t h = 0; h < sizeof(cgroup_hubs) / sizeof(*cgroup_hubs);
	     h++) {
		if ((d = opendir(cgroup_hubs[h])) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
				continue;
			snprintf(node, sizeof(node), "%s/%s", cgroup_hubs[h],
			    de->d_name);
			if ((s = opendir(node)) != NULL) {
				while ((se = readdir(s)) != NULL) {
					if (se->d_type != DT_DIR
					    || se->d_name[0] == '.')
						continue;
					snprintf(sub, sizeof(sub), "%s/%s",
					    node, se->d_name);
					rmdir_cgroup(sub);
				}
				closedir(s);
			}
			rmdir_cgroup(node);
		}
		closedir(d);
	}
}

/*
 * Removes everything named prefix*: kills every process in those
 * namespaces (agents, workers, controllers: by construction only the
 * test's own processes live there), deletes the namespaces (their links
 * and bridge go with them), their cgroups, and the directory dir.
 */
static void
teardown_prefix(const char *prefix, const char *dir)
{
	static ino_t inos[MAX_NAMES];
	static char names[MAX_NAMES][64];
	char err[512];
	struct batch b;
	struct dirent *de;
	size_t n = 0;
	int64_t deadline;
	DIR *d;

	if ((d = opendir(NETNS_DIR)) != NULL) {
		while ((de = readdir(d)) != NULL && n < MAX_NAMES) {
			if (strncmp(de->d_name, prefix, strlen(prefix)) != 0
			    || strlen(de->d_name) >= sizeof(names[0]))
				continue;
			strcpy(names[n], de->d_name); /* length checked */
			inos[n] = ns_inode(de->d_name);
			n++;
		}
		closedir(d);
	}
	deadline = util_now_ms() + KILL_WAIT_MS;
	while (
	    procs_in(inos, n, NULL, SIGKILL) > 0 && util_now_ms() < deadline)
		harness_nap_ms(POLL_STEP_MS);
	if (n > 0) {
		bool done
		    = batch_open(&b, dir, "teardown.batch", err, sizeof(err))
		    == 0;

		for (size_t i = 0; done && i < n; i++)
			fprintf(b.f, "netns del %s\n", names[i]);
		if (!done
		    || batch_run(&b, NULL, true, err, sizeof(err)) != 0) {
			/* No batch file (no dir): one ip run per namespace. */
			for (size_t i = 0; i < n; i++) {
				char *del[] = { (char *)ip_path(), "netns",
					"del", names[i], NULL };

				if (del[0] != NULL)
					run_capture(del, err, sizeof(err));
			}
		}
	}
	remove_cgroups(prefix);
	harness_remove_tree(dir);
}

static bool
pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* The pid in a name "hpcxl-nt<pid>...", or 0. */
static pid_t
name_pid(const char *name)
{
	int pid;

	return sscanf(name, "hpcxl-nt%d", &pid) == 1 && pid > 0 ? pid : 0;
}

static void
sweep_pid(pid_t pid)
{
	char prefix[32], dir[64];

	snprintf(prefix, sizeof(prefix), "hpcxl-nt%d-", (int)pid);
	snprintf(dir, sizeof(dir), "/tmp/hpcxl-nt%d", (int)pid);
	/* The batch file goes into dir: make sure it is there. */
	mkdir(dir, 0700);
	teardown_prefix(prefix, dir);
}

/* Sweeps every dead run named in directory path. */
static void
sweep_dir(const char *path)
{
	pid_t dead[64];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && n < 64) {
		pid_t pid = name_pid(de->d_name);

		if (pid <= 0 || pid == getpid() || pid_alive(pid))
			continue;
		for (i = 0; i < n && dead[i] != pid; i++)
			;
		if (i == n)
			dead[n++] = pid;
	}
	closedir(d);
	for (i = 0; i < n; i++)
		sweep_pid(dead[i]);
}

void
testbed_sweep_stale(void)
{
	sweep_dir(NETNS_DIR);
	sweep_dir("/tmp");
	for (size_t h = 0; h < sizeof(cgroup_hubs) / sizeof(*cgroup_hubs); h++)
		sweep_dir(cgroup_hubs[h]);
}

void
testbed_down(struct testbed *tb)
{
	int64_t deadline;
	int running;

	if (!tb->up)
		return;
	for (int i = 0; i < tb->n; i++) {
		if (tb->nodes[i].pid > 0) {
			kill(tb->nodes[i].pid, SIGCONT);
			kill(tb->nodes[i].pid, SIGTERM);
		}
	}
	/* --close-on-exit: each closes its sessions, then exits. */
	deadline = util_now_ms() + AGENTS_STOP_MS;
	do {
		running = 0;
		for (int i = 0; i < tb->n; i++) {
			struct testbed_node *nd = &tb->nodes[i];

			if (nd->pid > 0
			    && waitpid(nd->pid, &nd->exit_status, WNOHANG)
			        == nd->pid)
				nd->pid = 0;
			running += nd->pid > 0;
		}
		if (running > 0)
			harness_nap_ms(POLL_STEP_MS);
	} while (running > 0 && util_now_ms() < deadline);
	for (int i = 0; i < tb->n; i++)
		testbed_agent_kill(tb, i);
	teardown_prefix(tb->prefix, tb->dir);
	free(tb->nodes);
	free(tb->roster);
	tb->nodes = NULL;
	tb->roster = NULL;
	tb->n = 0;
	tb->up = false;
}

/* ---- agents ------------------------------------------------------------ */

/* Starts node i's agent in its namespace, its output into agent.log. */
static int
agent_spawn(struct testbed *tb, int i)
{
	struct testbed_node *nd = &tb->nodes[i];
	const char *xlsim = harness_bin("xlsim");
	char ready[PATH_MAX + 16], state[PATH_MAX + 16], log[PATH_MAX + 16];
	char grace[16], xl[PATH_MAX + 16], xl_ignore[PATH_MAX + 32];
	const char *argv[] = { harness_bin("hpcxl-agent"), "--listen", nd->url,
		"--ready-file", ready, "--state-dir", state, "--node", nd->ns,
		"--stop-grace", grace,
		/* A test that fails leaves no session running behind it. */
		"--close-on-exit", "--profile", xl, "--profile", xl_ignore,
		"--default-user", harness_own_user(),
		/* Plain tcp:// on the testbed's bridge, which only this
		 * machine's namespaces reach: what is tested is the network,
		 * not TLS (tests/integration/test_tls.c is). */
		"--insecure", NULL };
	int fd;

	snprintf(ready, sizeof(ready), "%s/ready", nd->dir);
	snprintf(state, sizeof(state), "%s/state", nd->dir);
	snprintf(log, sizeof(log), "%s/agent.log", nd->dir);
	snprintf(grace, sizeof(grace), "%d", TESTBED_STOP_GRACE_MS);
	snprintf(xl, sizeof(xl), "xl=%s", xlsim);
	snprintf(xl_ignore, sizeof(xl_ignore), "xl-ignore=%s --on-term ignore",
	    xlsim);
	unlink(ready);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	nd->exit_status = -1;
	nd->pid = spawn((char *const *)argv, nd->ns, fd, fd);
	close(fd);
	return nd->pid > 0 ? 0 : -1;
}

/* 1: ready (the file names the node's URL), 0: not yet, -1: never will. */
static int
agent_ready(struct testbed_node *nd, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], line[256];
	FILE *f;
	bool got;

	if (waitpid(nd->pid, &nd->exit_status, WNOHANG) == nd->pid) {
		nd->pid = 0;
		set_err(err, errlen, "agent %s exited (status %#x); see %s",
		    nd->ns, nd->exit_status, nd->dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ready", nd->dir);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!got)
		return 0;
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, nd->url) != 0) {
		set_err(err, errlen, "agent %s listens on %s, not %s", nd->ns,
		    line, nd->url);
		return -1;
	}
	return 1;
}

/* Waits until every agent in [from, to) is ready. */
static int
agents_wait(struct testbed *tb, int from, int to, int timeout_ms, char *err,
    size_t errlen)
{
	int64_t deadline = util_now_ms() + timeout_ms;
	int waiting, i, r;
	char *ready = calloc((size_t)tb->n, 1);

	if (ready == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		waiting = 0;
		for (i = from; i < to; i++) {
			if (ready[i])
				continue;
			if ((r = agent_ready(&tb->nodes[i], err, errlen)) < 0)
				break;
			ready[i] = r == 1;
			waiting += r == 0;
		}
		if (i < to || waiting == 0 || util_now_ms() >= deadline)
			break;
		harness_nap_ms(POLL_STEP_MS);
	}
	free(ready);
	if (i < to)
		return -1;
	if (waiting > 0) {
		set_err(err, errlen, "%d agent(s) not ready after %d ms",
		    waiting, timeout_ms);
		return -1;
	}
	return 0;
}

int
testbed_agent_start(struct testbed *tb, int i, int timeout_ms)
{
	char err[512] = "already running, or cannot fork";

	if (tb->nodes[i].pid > 0 || agent_spawn(tb, i) != 0
	    || agents_wait(tb, i, i + 1, timeout_ms, err, sizeof(err)) != 0) {
		fprintf(stderr, "testbed: agent %d: %s\n", i, err);
		return -1;
	}
	return 0;
}

int
testbed_agent_stop(struct testbed *tb, int i, int timeout_ms)
{
	struct testbed_node *nd = &tb->nodes[i];
	int st;

	if (nd->pid <= 0)
		return -1;
	kill(nd->pid, SIGTERM);
	st = reap_within(nd->pid, timeout_ms);
	nd->pid = 0;
	nd->exit_status = st;
	return st == -1 ? -1 : 0;
}

void
testbed_agent_kill(struct testbed *tb, int i)
{
	struct testbed_node *nd = &tb->nodes[i];

	if (nd->pid <= 0)
		return;
	kill(nd->pid, SIGKILL);
	waitpid(nd->pid, &nd->exit_status, 0);
	nd->pid = 0;
}

/* ---- setting up -------------------------------------------------------- */

static int
nodes_init(struct testbed *tb, int n, char *err, size_t errlen)
{
	size_t len = 0, cap = (size_t)n * 64 + 1;

	if ((tb->nodes = calloc((size_t)n, sizeof(*tb->nodes))) == NULL
	    || (tb->roster = malloc(cap)) == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	tb->n = n;
	tb->roster[0] = '\0';
	for (int i = 0; i < n; i++) {
		struct testbed_node *nd = &tb->nodes[i];

		snprintf(nd->ns, sizeof(nd->ns), "%s%d", tb->prefix, i);
		snprintf(nd->veth, sizeof(nd->veth), "v%d", i);
		/* 10.213.0.1 is the hub; nodes from 10.213.1.1 on. */
		snprintf(nd->addr, sizeof(nd->addr), "10.213.%d.%d",
		    1 + i / 200, 1 + i % 200);
		snprintf(nd->url, sizeof(nd->url), "tcp://%s:%d", nd->addr,
		    TESTBED_PORT);
		snprintf(nd->dir, sizeof(nd->dir), "%s/%d", tb->dir, i);
		nd->exit_status = -1;
		if (mkdir(nd->dir, 0755) != 0) {
			set_err(err, errlen, "mkdir %s: %s", nd->dir,
			    strerror(errno));
			return -1;
		}
		len += (size_t)snprintf(tb->roster + len, cap - len, "%s%s",
		    i > 0 ? "," : "", nd->url);
	}
	return 0;
}

/* The namespaces, the bridge in the hub, a veth pair per node. */
static int
network_up(struct testbed *tb, char *err, size_t errlen)
{
	struct batch b;
	int i;

	if (batch_open(&b, tb->dir, "netns.batch", err, errlen) != 0)
		return -1;
	fprintf(b.f, "netns add %s\n", tb->hub);
	for (i = 0; i < tb->n; i++)
		fprintf(b.f, "netns add %s\n", tb->nodes[i].ns);
	if (batch_run(&b, NULL, false, err, errlen) != 0)
		return -1;

	if (batch_open(&b, tb->dir, "hub.batch", err, errlen) != 0)
		return -1;
	fputs("link set lo up\n"
	      "link add br0 type bridge\n"
	      "link set br0 up\n"
	      "addr add 10.213.0.1/16 dev br0\n",
	    b.f);
	for (i = 0; i < tb->n; i++)
		fprintf(b.f,
		    "link add %s type veth peer name eth0 netns %s\n"
		    "link set %s master br0 up\n",
		    tb->nodes[i].veth, tb->nodes[i].ns, tb->nodes[i].veth);
	if (batch_run(&b, tb->hub, false, err, errlen) != 0)
		return -1;

	for (i = 0; i < tb->n; i++) {
		if (batch_open(&b, tb->nodes[i].dir, "node.batch", err, errlen)
		    != 0)
			return -1;
		fprintf(b.f,
		    "link set lo up\n"
		    "addr add %s/16 dev eth0\n"
		    "link set eth0 up\n",
		    tb->nodes[i].addr);
		if (batch_run(&b, tb->nodes[i].ns, false, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int
testbed_up(struct testbed *tb, int n, char *err, size_t errlen)
{
	memset(tb, 0, sizeof(*tb));
	if (n < 1 || n > TESTBED_MAX_NODES) {
		set_err(err, errlen, "bad node count %d", n);
		return -1;
	}
	testbed_sweep_stale();
	snprintf(tb->prefix, sizeof(tb->prefix), "hpcxl-nt%d-", (int)getpid());
	snprintf(tb->hub, sizeof(tb->hub), "%shub", tb->prefix);
	snprintf(tb->dir, sizeof(tb->dir), "/tmp/hpcxl-nt%d", (int)getpid());
	tb->up = true; /* from here on testbed_down() has work to do */
	if (mkdir(tb->dir, 0755) != 0) {
		set_err(err, errlen, "mkdir %s: %s", tb->dir, strerror(errno));
		return -1;
	}
	if (nodes_init(tb, n, err, errlen) != 0
	    || network_up(tb, err, errlen) != 0)
		return -1;
	/* Every agent at once, then one deadline for all ready files. */
	for (int i = 0; i < n; i++) {
		if (agent_spawn(tb, i) != 0) {
			set_err(err, errlen, "cannot start agent %d", i);
			return -1;
		}
	}
	return agents_wait(tb, 0, n, AGENTS_READY_MS, err, errlen);
}

int
testbed_link(struct testbed *tb, int i, bool up)
{
	char *argv[] = { (char *)ip_path(), "-n", tb->hub, "link", "set",
		tb->nodes[i].veth, up ? "up" : "down", NULL };
	char out[256];

	return argv[0] != NULL && run_capture(argv, out, sizeof(out)) == 0
	    ? 0
	    : -1;
}

/* ---- observing --------------------------------------------------------- */

bool
testbed_log_has(const struct testbed *tb, int i, const char *text)
{
	char path[PATH_MAX + 16], *log;
	bool eof, found;
	int fd;

	snprintf(path, sizeof(path), "%s/agent.log", tb->nodes[i].dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	log = read_until(fd, util_now_ms() + IP_TIMEOUT_MS, &eof);
	close(fd);
	found = log != NULL && strstr(log, text) != NULL;
	free(log);
	return found;
}

bool
testbed_wait_log(
    const struct testbed *tb, int i, const char *text, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		if (testbed_log_has(tb, i, text))
			return true;
		if (util_now_ms() >= deadline)
			return false;
		harness_nap_ms(POLL_STEP_MS);
	}
}

bool
testbed_wait_ready(const struct testbed *tb, int i, const char *session, int n,
    int timeout_ms)
{
	struct harness_agent a = { .pid = tb->nodes[i].pid };

	snprintf(a.dir, sizeof(a.dir), "%s", tb->nodes[i].dir);
	return harness_wait_ready(&a, session, n, timeout_ms);
}

int
testbed_node_procs(const struct testbed *tb, int i, const char *session)
{
	ino_t ino = ns_inode(tb->nodes[i].ns);

	return ino == 0 ? 0 : procs_in(&ino, 1, session, 0);
}

/* ---- the controller ---------------------------------------------------- */

int
testbed_cli_start(
    const struct testbed *tb, const char *const *args, struct testbed_cli *c)
{
	const char *argv[64];
	int n = 0, pfd[2];

	argv[n++] = harness_bin("hpcxl");
	argv[n++] = "--nodes";
	argv[n++] = tb->roster;
	argv[n++] = "--json";
	for (; *args != NULL && n < 63; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	c->start_ms = util_now_ms();
	c->pid = spawn((char *const *)argv, tb->hub, pfd[1], -1);
	close(pfd[1]);
	if (c->pid < 0) {
		close(pfd[0]);
		return -1;
	}
	c->out_fd = pfd[0];
	return 0;
}

int
testbed_cli_finish(struct testbed_cli *c, int timeout_ms, char **out,
    int *status, int64_t *wall_ms)
{
	int64_t deadline = c->start_ms + timeout_ms;
	int left, st;
	bool eof;
	char *text = read_until(c->out_fd, deadline, &eof);

	close(c->out_fd);
	left = (int)(deadline - util_now_ms());
	st = reap_within(c->pid, eof && left > 0 ? left : 0);
	*wall_ms = util_now_ms() - c->start_ms;
	c->pid = 0;
	if (st == -1 || text == NULL) {
		free(text);
		return -1;
	}
	*status = st;
	*out = text;
	return 0;
}
