#include "worker.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *const hpcxl_vars[]
    = { "HPCXL_SESSION=", "HPCXL_NODE=", "HPCXL_WORKER=", "HPCXL_WORKBOOK=" };
#define NVARS (sizeof(hpcxl_vars) / sizeof(hpcxl_vars[0]))

static bool
is_hpcxl_var(const char *entry)
{
	for (size_t i = 0; i < NVARS; i++) {
		if (strncmp(entry, hpcxl_vars[i], strlen(hpcxl_vars[i])) == 0)
			return true;
	}
	return false;
}

static char *
env_entry(const char *prefix, const char *value)
{
	char *s;

	if (asprintf(&s, "%s%s", prefix, value) < 0)
		return NULL;
	return s;
}

char **
worker_env_build(const char *session, const char *node, uint32_t index,
    const char *workbook)
{
	char idx[16];
	const char *values[NVARS];
	size_t n = 0, i, k = 0;
	char **envp;

	snprintf(idx, sizeof(idx), "%u", index);
	values[0] = session;
	values[1] = node;
	values[2] = idx;
	values[3] = workbook != NULL ? workbook : "";
	while (environ[n] != NULL)
		n++;
	if ((envp = calloc(n + NVARS + 1, sizeof(*envp))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		/* Ours win: a stale HPCXL_SESSION in the agent's env is
		 * dropped. */
		if (is_hpcxl_var(environ[i]))
			continue;
		if ((envp[k++] = strdup(environ[i])) == NULL)
			goto fail;
	}
	for (i = 0; i < NVARS; i++) {
		if ((envp[k++] = env_entry(hpcxl_vars[i], values[i])) == NULL)
			goto fail;
	}
	return envp;
fail:
	worker_env_free(envp);
	return NULL;
}

void
worker_env_free(char **envp)
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

static bool
is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode)
	    && access(path, X_OK) == 0;
}

int
worker_resolve(const char *prog, char **path, char *why, size_t whylen)
{
	const char *env = getenv("PATH");
	char *dirs, *dir, *save = NULL, *cand = NULL;

	if (strchr(prog, '/') != NULL) {
		if (is_executable(prog) && (*path = strdup(prog)) != NULL)
			return 0;
		snprintf(why, whylen, "'%s' is not an executable file", prog);
		return HPCXL_EEXEC;
	}
	if ((dirs = strdup(env != NULL ? env : "/usr/bin:/bin")) == NULL)
		return HPCXL_ENOMEM;
	for (dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/%s", dir, prog) < 0)
			break;
		if (is_executable(cand)) {
			free(dirs);
			*path = cand;
			return 0;
		}
		free(cand);
	}
	free(dirs);
	snprintf(why, whylen, "'%s' not found in PATH", prog);
	return HPCXL_EEXEC;
}

/*
 * The child between fork and exec. The agent has nng threads, so only
 * async-signal-safe calls here: no malloc, no stdio, no locks. Any failure
 * sends errno up the pipe.
 */
static void __attribute__((noreturn))
child_run(const struct worker_spec *spec, int err_fd)
{
	sigset_t none;
	int fd, e;

	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setpgid(0, 0) != 0 || (e = proctrack_child_join(spec->set)) != 0)
		goto fail;
	/* CLOEXEC: dup2 gives 0-2 without it, the originals die at exec. */
	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
	    || dup2(fd, 0) < 0)
		goto fail;
	fd = open(
	    spec->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		goto fail;
	if (spec->workdir != NULL && chdir(spec->workdir) != 0)
		goto fail;
	/* Nothing of the agent's but 0-2 survives exec (the error pipe is
	 * CLOEXEC too: its closing is how the parent learns exec worked).
	 * close_range needs Linux 5.11; the agent's own fds are CLOEXEC. */
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(spec->path, spec->argv, spec->envp);
fail:
	e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

static int
pidfd_open_sys(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Blocks until exec happens (EOF) or the child reports errno. */
static int
exec_result(int err_fd)
{
	int e = 0;
	ssize_t n;

	do
		n = read(err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

int
worker_spawn(
    struct worker *w, const struct worker_spec *spec, char *why, size_t whylen)
{
	int pfd[2], e;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return HPCXL_ESYSTEM;
	}
	if ((pid = fork()) < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return HPCXL_ESYSTEM;
	}
	if (pid == 0)
		child_run(spec, pfd[1]);
	close(pfd[1]);
	e = exec_result(pfd[0]);
	close(pfd[0]);
	if (e != 0) {
		waitpid(pid, NULL, 0);
		snprintf(why, whylen, "cannot start %s: %s", spec->path,
		    strerror(e));
		return HPCXL_EEXEC;
	}
	w->pid = pid;
	w->pgid = pid;
	w->pidfd = pidfd_open_sys(pid);
	w->state = PROTO_W_RUNNING;
	w->exit_status = -1;
	return 0;
}

void
worker_signal(const struct worker *w, int sig)
{
	if (w->pidfd < 0)
		return;
	if (syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) != 0
	    && errno != ESRCH)
		log_warn("signal %d to worker %d: %s", sig, w->pid,
		    strerror(errno));
}

void
worker_ended(struct worker *w, int status, bool killed)
{
	w->exit_status = status;
	w->state = killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
	    ? PROTO_W_KILLED
	    : PROTO_W_EXITED;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
}

bool
worker_alive(const struct worker *w)
{
	return w->pid > 0 && w->exit_status == -1;
}
