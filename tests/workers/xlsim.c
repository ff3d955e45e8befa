/*
 * xlsim: a stand-in for an Excel worker, used by the tests, the demo and the
 * benchmarks. It does no work: it waits until a signal or a timer tells it to
 * go, and on request builds the process shapes the agent must be able to
 * kill (helpers in its group, a setsid() escapee, a fork storm).
 *
 * usage: xlsim [options]
 *   --on-term exit|ignore|delay:MS  SIGTERM policy of every long-lived xlsim
 *                                   process (main, helpers, detached)
 *   --children N       fork N helpers: same process group and session
 *   --detach           leave a double-forked setsid() grandchild behind
 *   --fork-storm       fork a short-lived child (which forks once more)
 *                      every ~10 ms, at most STORM_MAX alive
 *   --crash-after MS   _exit(3) MS ms after ready (main process only)
 *   --ready-file FILE  when ready, write "<pid>\n" to FILE (tmp + rename)
 *   --help             usage on stdout, exit 0
 *
 * When ready it prints exactly one line to stdout:
 *   xlsim ready pid=P session=S node=N worker=W workbook=B
 * then writes --ready-file, so a test that saw the file also has the line.
 *
 * Exit status: 0 after SIGTERM (exit or delay policy), 1 setup failed
 * (fork, ready file, stdout), 2 bad usage, 3 --crash-after fired. Any other
 * end is a death by signal.
 *
 * Process names (/proc/PID/comm), so tests can find every shape:
 *   xlsim (main), xlsim-child, xlsim-detach, xlsim-storm.
 *
 * Only libc: it must run wherever a worker may run, sanitizers included.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
	XLSIM_EXIT_OK = 0,
	XLSIM_EXIT_FAIL = 1,
	XLSIM_EXIT_USAGE = 2,
	XLSIM_EXIT_CRASH = 3,
};

/* Upper bounds keep a typo from forking the machine to death. */
#define CHILDREN_MAX 256
#define MS_MAX (INT64_C(7) * 24 * 3600 * 1000)
/* Storm units alive at once; each is at most 2 processes. */
#define STORM_MAX 32
#define STORM_TICK_MS 10
/* Lifetime of a storm process, in [STORM_LIFE_MS, 2 * STORM_LIFE_MS). */
#define STORM_LIFE_MS 20

enum term_policy {
	TERM_EXIT,
	TERM_IGNORE,
	TERM_DELAY,
};

struct opts {
	enum term_policy on_term;
	int64_t term_delay_ms;
	int64_t children;
	bool detach;
	bool fork_storm;
	int64_t crash_after_ms; /* -1: never */
	const char *ready_file; /* NULL: none; points into argv */
};

/* One long-lived xlsim process. Timer fds are -1 while unarmed. */
struct sim {
	const struct opts *opt;
	int term_fd; /* armed by SIGTERM under the delay policy */
	int crash_fd; /* main only */
	int storm_fd; /* main only, periodic */
	pid_t storm[STORM_MAX];
	int storm_live;
};

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_chld;

/*
 * The mask ppoll() waits with: the startup mask minus SIGTERM and SIGCHLD.
 * Those two stay blocked everywhere else, so a signal can only be taken
 * inside ppoll() and never lost between a flag check and the wait.
 */
static sigset_t wait_mask;

static void
usage(FILE *f)
{
	fputs(
	    "usage: xlsim [options]\n"
	    "A stand-in for an Excel worker: waits until signalled.\n"
	    "\n"
	    "  --on-term exit|ignore|delay:MS\n"
	    "                     on SIGTERM: exit 0 (default), ignore it,\n"
	    "                     or exit 0 after MS milliseconds\n"
	    "  --children N       fork N helpers (same group and session,\n"
	    "                     same --on-term policy)\n"
	    "  --detach           leave a double-forked setsid() grandchild\n"
	    "  --fork-storm       fork short-lived children every ~10 ms\n"
	    "  --crash-after MS   _exit(3) MS milliseconds after ready\n"
	    "  --ready-file FILE  when ready, write the pid to FILE\n"
	    "  --help             show this text\n"
	    "\n"
	    "Prints 'xlsim ready pid=... session=... node=... worker=...\n"
	    "workbook=...' once ready (values from HPCXL_* variables).\n"
	    "Exit: 0 on SIGTERM, 1 setup failed, 2 bad usage,\n"
	    "3 --crash-after.\n",
	    f);
}

/* Parses a whole decimal string in [min, max]; returns 0 or -1. */
static int
parse_num(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_on_term(const char *s, struct opts *o)
{
	if (strcmp(s, "exit") == 0) {
		o->on_term = TERM_EXIT;
		return 0;
	}
	if (strcmp(s, "ignore") == 0) {
		o->on_term = TERM_IGNORE;
		return 0;
	}
	if (strncmp(s, "delay:", 6) == 0
	    && parse_num(s + 6, 0, MS_MAX, &o->term_delay_ms) == 0) {
		o->on_term = TERM_DELAY;
		return 0;
	}
	return -1;
}

/* Applies one getopt_long() result; returns 0 or -1 (message printed). */
static int
apply_opt(const char *name, const char *arg, struct opts *o)
{
	int rc = 0;

	if (strcmp(name, "on-term") == 0)
		rc = parse_on_term(arg, o);
	else if (strcmp(name, "children") == 0)
		rc = parse_num(arg, 0, CHILDREN_MAX, &o->children);
	else if (strcmp(name, "crash-after") == 0)
		rc = parse_num(arg, 0, MS_MAX, &o->crash_after_ms);
	else if (strcmp(name, "ready-file") == 0 && *arg != '\0')
		o->ready_file = arg;
	else
		rc = -1;
	if (rc != 0)
		fprintf(
		    stderr, "xlsim: bad value for --%s: '%s'\n", name, arg);
	return rc;
}

/*
 * Fills o from argv. Returns -1 to go on, or the exit status to end with
 * (0 after --help, XLSIM_EXIT_USAGE on bad arguments).
 */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	int detach = 0, storm = 0, help = 0;
	const struct option lo[] = {
		{ "on-term", required_argument, NULL, 0 },
		{ "children", required_argument, NULL, 0 },
		{ "detach", no_argument, &detach, 1 },
		{ "fork-storm", no_argument, &storm, 1 },
		{ "crash-after", required_argument, NULL, 0 },
		{ "ready-file", required_argument, NULL, 0 },
		{ "help", no_argument, &help, 1 },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx;

	*o = (struct opts) { .on_term = TERM_EXIT, .crash_after_ms = -1 };
	/* '+': no argv permutation; a stray operand is reported below. */
	while ((c = getopt_long(argc, argv, "+", lo, &idx)) != -1) {
		if (c != 0
		    || (lo[idx].flag == NULL
		        && apply_opt(lo[idx].name, optarg, o) != 0))
			goto bad;
	}
	if (optind < argc) {
		fprintf(
		    stderr, "xlsim: unexpected argument '%s'\n", argv[optind]);
		goto bad;
	}
	if (help) {
		usage(stdout);
		return XLSIM_EXIT_OK;
	}
	o->detach = detach;
	o->fork_storm = storm;
	return -1;
bad:
	fputs("xlsim: try 'xlsim --help'\n", stderr);
	return XLSIM_EXIT_USAGE;
}

/* Only sets flags: all the work happens in the loop, outside the handler. */
static void
on_signal(int sig)
{
	if (sig == SIGTERM)
		got_term = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
}

static int
signals_init(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &block, &wait_mask) != 0
	    || sigaction(SIGTERM, &sa, NULL) != 0
	    || sigaction(SIGCHLD, &sa, NULL) != 0)
		return -1;
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGCHLD);
	return 0;
}

/* Storm processes are throw-away: plain default signal behaviour. */
static void
signals_default(void)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &wait_mask, NULL);
}

static void
ms_to_timespec(int64_t ms, struct timespec *ts)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
	/* An all-zero it_value disarms a timerfd; 1 ns makes 0 ms "now". */
	if (ms == 0)
		ts->tv_nsec = 1;
}

/* Arms a new timerfd in *fdp, firing after ms (then every ms if periodic). */
static int
timer_arm(int *fdp, int64_t ms, bool periodic)
{
	struct itimerspec its = { 0 };
	int fd;

	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -1;
	ms_to_timespec(ms, &its.it_value);
	if (periodic)
		its.it_interval = its.it_value;
	if (timerfd_settime(fd, 0, &its, NULL) != 0) {
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

/* True when the timer in fd fired; consumes the expiry count. */
static bool
timer_fired(const struct pollfd *p)
{
	uint64_t n;

	if (p->fd < 0 || (p->revents & POLLIN) == 0)
		return false;
	return read(p->fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
}

static void
set_name(const char *name)
{
	/* Best effort: only tests looking for a shape depend on it. */
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

static void
nap_ms(int64_t ms)
{
	struct timespec ts;

	ms_to_timespec(ms, &ts);
	nanosleep(&ts, NULL);
}

/*
 * One storm unit: a child that forks a grandchild, both living a few tens of
 * ms. The child reaps the grandchild before it exits, so a unit never leaves
 * an orphan behind and the STORM_MAX bound holds.
 */
_Noreturn static void
storm_unit(void)
{
	pid_t pid;

	set_name("xlsim-storm");
	signals_default();
	pid = fork();
	nap_ms(STORM_LIFE_MS + getpid() % STORM_LIFE_MS);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	_exit(0);
}

static void
storm_tick(struct sim *s)
{
	pid_t pid;

	if (s->storm_live >= STORM_MAX)
		return;
	pid = fork();
	if (pid == 0)
		storm_unit();
	/* EAGAIN and friends just skip a tick: the storm is best effort. */
	if (pid > 0)
		s->storm[s->storm_live++] = pid;
}

static void
storm_forget(struct sim *s, pid_t pid)
{
	int i;

	for (i = 0; i < s->storm_live; i++) {
		if (s->storm[i] == pid) {
			s->storm[i] = s->storm[--s->storm_live];
			return;
		}
	}
}

static void
reap(struct sim *s)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		storm_forget(s, pid);
}

/* Returns -1 to keep waiting, or the exit status to end with now. */
static int
handle_term(struct sim *s)
{
	switch (s->opt->on_term) {
	case TERM_EXIT:
		return XLSIM_EXIT_OK;
	case TERM_IGNORE:
		return -1;
	case TERM_DELAY:
		/* A repeated SIGTERM keeps the first deadline. */
		if (s->term_fd < 0
		    && timer_arm(&s->term_fd, s->opt->term_delay_ms, false)
		        != 0)
			return XLSIM_EXIT_OK; /* cannot delay: do not hang */
		return -1;
	}
	return -1;
}

/*
 * The wait loop of every long-lived xlsim process: sleeps in ppoll() until a
 * signal or a timer. Returns the exit status; --crash-after ends the process
 * from here.
 */
static int
sim_run(struct sim *s)
{
	struct pollfd p[3];
	int rc = -1;

	while (rc < 0) {
		p[0] = (struct pollfd) { .fd = s->term_fd, .events = POLLIN };
		p[1] = (struct pollfd) { .fd = s->crash_fd, .events = POLLIN };
		p[2] = (struct pollfd) { .fd = s->storm_fd, .events = POLLIN };
		if (ppoll(p, 3, NULL, &wait_mask) < 0 && errno != EINTR)
			return XLSIM_EXIT_FAIL;
		if (got_chld) {
			got_chld = 0;
			reap(s);
		}
		if (got_term) {
			got_term = 0;
			rc = handle_term(s);
		}
		if (timer_fired(&p[1]))
			_exit(XLSIM_EXIT_CRASH);
		if (timer_fired(&p[0]))
			rc = XLSIM_EXIT_OK;
		if (timer_fired(&p[2]))
			storm_tick(s);
	}
	return rc;
}

static void
sim_init(struct sim *s, const struct opts *o)
{
	*s = (struct sim) {
		.opt = o,
		.term_fd = -1,
		.crash_fd = -1,
		.storm_fd = -1,
	};
}

/* Body of a forked helper or detached process: wait, then _exit. */
_Noreturn static void
sim_child(const struct opts *o)
{
	struct sim s;

	sim_init(&s, o);
	/* _exit: the parent's stdio buffers and atexit hooks are not ours. */
	_exit(sim_run(&s));
}

static int
fork_children(const struct opts *o)
{
	int64_t i;
	pid_t pid;

	for (i = 0; i < o->children; i++) {
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			set_name("xlsim-child");
			sim_child(o);
		}
	}
	return 0;
}

/*
 * The detached grandchild drops stdin/stdout like a daemon would, so it does
 * not hold a test's pipe open; stderr stays for sanitizer reports.
 */
_Noreturn static void
detached_main(const struct opts *o)
{
	int fd;

	set_name("xlsim-detach");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	sim_child(o);
}

/*
 * Classic double fork: the middle process starts a new session and exits,
 * so the grandchild is in another session and process group and has been
 * reparented away from us. Only a cgroup can still find it.
 */
static int
detach(const struct opts *o)
{
	pid_t mid, pid;
	int status;

	mid = fork();
	if (mid < 0)
		return -1;
	if (mid == 0) {
		if (setsid() < 0)
			_exit(XLSIM_EXIT_FAIL);
		pid = fork();
		if (pid == 0)
			detached_main(o);
		_exit(pid < 0 ? XLSIM_EXIT_FAIL : XLSIM_EXIT_OK);
	}
	while (waitpid(mid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static const char *
env_or_empty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? v : "";
}

/* Writes "<pid>\n" to a temporary file renamed over path: never torn. */
static int
write_ready_file(const char *path)
{
	char tmp[PATH_MAX], buf[32];
	int fd, len, saved, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid())
	    >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, buf, (size_t)len) == len)
		rc = 0;
	if (close(fd) != 0)
		rc = -1;
	/* Readers are on this host: rename is atomic, fsync is not needed. */
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc != 0) {
		saved = errno; /* the caller reports it, not unlink's */
		unlink(tmp);
		errno = saved;
	}
	return rc;
}

static int
announce_ready(const struct opts *o)
{
	printf("xlsim ready pid=%d session=%s node=%s worker=%s workbook=%s\n",
	    (int)getpid(), env_or_empty("HPCXL_SESSION"),
	    env_or_empty("HPCXL_NODE"), env_or_empty("HPCXL_WORKER"),
	    env_or_empty("HPCXL_WORKBOOK"));
	if (fflush(stdout) != 0) {
		perror("xlsim: stdout");
		return -1;
	}
	if (o->ready_file != NULL && write_ready_file(o->ready_file) != 0) {
		fprintf(stderr, "xlsim: ready file '%s': %s\n", o->ready_file,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Builds the requested process shape; returns 0 or -1 (message printed). */
static int
setup(struct sim *s)
{
	const struct opts *o = s->opt;

	if (fork_children(o) != 0) {
		perror("xlsim: fork");
		return -1;
	}
	if (o->detach && detach(o) != 0) {
		perror("xlsim: detach");
		return -1;
	}
	/* Timers only now: forked processes must not share their fds. */
	if (o->crash_after_ms >= 0
	    && timer_arm(&s->crash_fd, o->crash_after_ms, false) != 0) {
		perror("xlsim: timerfd");
		return -1;
	}
	if (o->fork_storm
	    && timer_arm(&s->storm_fd, STORM_TICK_MS, true) != 0) {
		perror("xlsim: timerfd");
		return -1;
	}
	return announce_ready(o);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct sim s;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (signals_init() != 0) {
		perror("xlsim: signals");
		return XLSIM_EXIT_FAIL;
	}
	/* Nothing is buffered yet, but forks must never duplicate output. */
	fflush(NULL);
	sim_init(&s, &o);
	if (setup(&s) != 0)
		return XLSIM_EXIT_FAIL;
	return sim_run(&s);
}
