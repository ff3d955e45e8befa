/*
 * floor_spawn: the kernel floor for opening and closing a session. It does
 * with plain libc what hpcxl-agent does for a session's workers, and
 * nothing more (no sockets, no cgroups, no logs, no state files):
 *
 *   spawn      posix_spawn() N xlsim workers, each in its own process group
 *              with an empty signal mask, stdin from /dev/null. glibc's
 *              posix_spawn() returns once the child has exec'd (or failed
 *              to): the agent's criterion for "started" too (its CLOEXEC
 *              error pipe reaches EOF at exec), so this phase is the floor
 *              of the agent's open.
 *   ready      (not a floor, shown for scale) until every worker has
 *              printed xlsim's ready line on the shared stdout pipe; the
 *              terminate phase starts only then, as the benchmark's close
 *              comes after a settle time.
 *   terminate  SIGTERM to every worker, then reap them all: the floor of
 *              the agent's close (xlsim exits on SIGTERM).
 *
 * usage: floor_spawn XLSIM WORKERS RUNS
 * Prints RESULT spawn/ready/terminate lines (bench_util.h) with the median
 * over RUNS, and RESULT failures count=F (runs where a worker did not get
 * ready or did not exit 0 on SIGTERM). Every wait has a deadline.
 */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 4096
#define MAX_RUNS 100
#define READY_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS 20000

extern char **environ;

/* Spawns n workers with stdout on out_fd; returns how many started. */
static int
spawn_all(const char *xlsim, int n, int out_fd, pid_t *pids)
{
	char *argv[] = { (char *)xlsim, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	int i;

	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(
	    &at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	for (i = 0; i < n; i++) {
		if (posix_spawn(&pids[i], xlsim, &fa, &at, argv, environ)
		    != 0) {
			perror("posix_spawn");
			break;
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return i;
}

/* Reads the pipe until n ready lines came; returns true if they did. */
static bool
wait_ready(int fd, int n)
{
	double deadline = bench_now_ms() + READY_TIMEOUT_MS;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	int lines = 0;
	ssize_t got;

	while (lines < n && bench_now_ms() < deadline) {
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((got = read(fd, buf, sizeof(buf))) <= 0)
			return false; /* EOF: every writer is gone */
		for (ssize_t i = 0; i < got; i++)
			lines += buf[i] == '\n';
	}
	return lines >= n;
}

/*
 * Reaps n children, sleeping in sigtimedwait() on the blocked SIGCHLD (no
 * polling delay); SIGKILLs what is left at the deadline. Returns how many
 * exited with status 0.
 */
static int
reap_all(int n, const pid_t *pids)
{
	double deadline = bench_now_ms() + EXIT_TIMEOUT_MS;
	struct timespec ts = { 0, 50 * 1000000L };
	int reaped = 0, clean = 0, st;
	sigset_t chld;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (reaped < n && bench_now_ms() < deadline) {
		while (reaped < n && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
			reaped++;
			clean += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		}
		if (reaped < n)
			sigtimedwait(&chld, NULL, &ts);
	}
	if (reaped < n) {
		fprintf(stderr, "floor_spawn: %d workers left, killing\n",
		    n - reaped);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
	return clean;
}

int
main(int argc, char **argv)
{
	static pid_t pids[MAX_WORKERS];
	static double spawn[MAX_RUNS], ready[MAX_RUNS], term[MAX_RUNS];
	int n, runs, started, pfd[2], failures = 0;
	sigset_t chld;
	double t0;

	if (argc != 4) {
		fprintf(stderr, "usage: floor_spawn XLSIM WORKERS RUNS\n");
		return 2;
	}
	n = (int)bench_arg(argv[2], 1, MAX_WORKERS, "WORKERS");
	runs = (int)bench_arg(argv[3], 1, MAX_RUNS, "RUNS");
	/* SIGCHLD stays blocked: reap_all() takes it with sigtimedwait(). */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	for (int r = 0; r < runs; r++) {
		if (pipe2(pfd, O_CLOEXEC) != 0) {
			perror("pipe2");
			return 1;
		}
		t0 = bench_now_ms();
		started = spawn_all(argv[1], n, pfd[1], pids);
		spawn[r] = bench_now_ms() - t0;
		close(pfd[1]); /* EOF once every worker has gone */
		if (!wait_ready(pfd[0], started) || started < n)
			failures++;
		ready[r] = bench_now_ms() - t0;
		t0 = bench_now_ms();
		for (int i = 0; i < started; i++)
			kill(pids[i], SIGTERM);
		if (reap_all(started, pids) < n)
			failures++;
		term[r] = bench_now_ms() - t0;
		close(pfd[0]);
	}
	bench_result("spawn", spawn, (size_t)runs);
	bench_result("ready", ready, (size_t)runs);
	bench_result("terminate", term, (size_t)runs);
	printf("RESULT failures count=%d\n", failures);
	return failures != 0;
}
