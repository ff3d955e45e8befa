#include "worker.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "spawn_clone.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the child stopped; it writes this with errno into its args. */
enum child_step {
	STEP_SETPGID,
	STEP_CGROUP,
	STEP_FDS,
	STEP_STDIN,
	STEP_LOG,
	STEP_CLOSE_FDS,
	STEP_RLIMIT, /* detail: the enum config_limit */
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CHDIR,
	STEP_EXEC,
};

struct child_report {
	int step;
	int detail;
	int err; /* 0 while nothing failed */
};

/*
 * What the child reads, and where it writes its report: the child shares
 * the agent's memory until exec (spawn_clone.h), so the report needs no
 * pipe and is read once spawn_clone() returns.
 */
struct child_args {
	const struct worker_plan *plan;
	const struct worker_spec *spec;
	char **envp; /* the merged environment */
	volatile bool in_cgroup; /* born in the set's cgroup: no join */
	volatile bool shares_fds; /* born in the agent's descriptor table */
	volatile struct child_report report;
};

/* ---- the child ---------------------------------------------------------- */

/*
 * The child is its own process (not a thread of the agent), so the raw id
 * syscalls change just the child; glibc's wrappers would first try to
 * broadcast to the agent's threads, which is not async-signal-safe. Saved
 * ids change too: the worker cannot get the agent's back.
 */
static int
child_identity(const struct worker_plan *pl, volatile struct child_report *r)
{
	r->step = STEP_SETGROUPS;
	if (pl->set_groups
	    && syscall(SYS_setgroups, (long)pl->ngroups, pl->groups) != 0)
		return -1;
	r->step = STEP_SETGID;
	if (pl->set_gid
	    && syscall(
	           SYS_setresgid, (long)pl->gid, (long)pl->gid, (long)pl->gid)
	        != 0)
		return -1;
	r->step = STEP_SETUID;
	if (pl->set_uid
	    && syscall(
	           SYS_setresuid, (long)pl->uid, (long)pl->uid, (long)pl->uid)
	        != 0)
		return -1;
	return 0;
}

/* Soft and hard alike, while still privileged (raising a hard limit
 * needs CAP_SYS_RESOURCE). */
static int
child_limits(const struct worker_plan *pl, volatile struct child_report *r)
{
	r->step = STEP_RLIMIT;
	for (int l = 0; l < CONFIG_NLIMITS; l++) {
		r->detail = l;
		if (pl->limit_set[l]
		    && setrlimit(worker_plan_resource((enum config_limit)l),
		           &pl->limit[l])
		        != 0)
			return -1;
	}
	return 0;
}

/* stdin from /dev/null, stdout and stderr appended to the log. */
static int
child_stdio(const struct worker_spec *spec, volatile struct child_report *r)
{
	int fd;

	r->step = STEP_STDIN;
	/* CLOEXEC: dup2 gives 0-2 without it, the originals die at exec. */
	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
	    || dup2(fd, 0) < 0)
		return -1;
	r->step = STEP_LOG;
	fd = open(
	    spec->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		return -1;
	return 0;
}

static int
child_join(const struct child_args *a, volatile struct child_report *r)
{
	int e;

	r->step = STEP_CGROUP;
	if (a->in_cgroup || (e = proctrack_child_join(a->spec->set)) == 0)
		return 0;
	errno = e;
	return -1;
}

/* The last step that may use the agent's descriptors is child_join(). */
static int
child_own_fds(const struct child_args *a, volatile struct child_report *r,
    bool *only_0_2)
{
	int e;

	r->step = STEP_FDS;
	*only_0_2 = false;
	if (!a->shares_fds || (e = spawn_clone_child_own_fds(only_0_2)) == 0)
		return 0;
	errno = e;
	return -1;
}

/* A copied table: everything but 0-2 goes before exec (spawn_clone.h). */
static int
child_close_fds(bool only_0_2, volatile struct child_report *r)
{
	int e;

	r->step = STEP_CLOSE_FDS;
	if (only_0_2 || (e = spawn_clone_child_close_fds()) == 0)
		return 0;
	errno = e;
	return -1;
}

/*
 * The child between clone and exec, on a borrowed stack in the agent's
 * memory, while the agent's nng threads run: only async-signal-safe calls
 * here, no malloc, no stdio, no locks. A failure leaves the step and errno
 * in the report. The log is opened before the privileges go (it lives in
 * the agent's state directory); chdir comes after, so the worker's user
 * must be allowed into its workdir.
 */
static int
child_run(void *arg)
{
	struct child_args *a = arg;
	const struct worker_plan *pl = a->plan;
	volatile struct child_report *r = &a->report;
	bool only_0_2;
	sigset_t none;

	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	r->step = STEP_SETPGID;
	/* Nothing of the agent's but 0-2 reaches the worker. */
	if (setpgid(0, 0) != 0 || child_join(a, r) != 0
	    || child_own_fds(a, r, &only_0_2) != 0
	    || child_stdio(a->spec, r) != 0
	    || child_close_fds(only_0_2, r) != 0 || child_limits(pl, r) != 0
	    || child_identity(pl, r) != 0)
		goto fail;
	r->step = STEP_CHDIR;
	if (pl->profile.workdir != NULL && chdir(pl->profile.workdir) != 0)
		goto fail;
	r->step = STEP_EXEC;
	execve(pl->path, pl->profile.argv, a->envp);
fail:
	r->err = errno != 0 ? errno : EIO;
	_exit(127);
}

/* The usual cause of EPERM from the id calls, said once in the reply. */
static const char *
identity_hint(const struct child_report *r)
{
	if (r->err != EPERM || r->step < STEP_SETGROUPS
	    || r->step > STEP_SETUID)
		return "";
	return " (only a root agent can run workers as another user or group)";
}

/* "cannot start PATH: WHAT: ERROR" for a failure the child reported. */
static void
report_why(const struct worker_plan *pl, const struct worker_spec *spec,
    const struct child_report *r, char *why, size_t whylen)
{
	char what[PATH_MAX + 64];

	switch (r->step) {
	case STEP_SETPGID:
		snprintf(what, sizeof(what), "setpgid");
		break;
	case STEP_CGROUP:
		snprintf(what, sizeof(what), "joining the process set");
		break;
	case STEP_FDS:
		snprintf(what, sizeof(what), "a descriptor table of its own");
		break;
	case STEP_CLOSE_FDS:
		snprintf(
		    what, sizeof(what), "closing the agent's descriptors");
		break;
	case STEP_STDIN:
		snprintf(what, sizeof(what), "/dev/null");
		break;
	case STEP_LOG:
		snprintf(what, sizeof(what), "log %s", spec->log_path);
		break;
	case STEP_RLIMIT:
		snprintf(what, sizeof(what), "setrlimit (%s)",
		    config_limit_key((enum config_limit)r->detail));
		break;
	case STEP_SETGROUPS:
		snprintf(what, sizeof(what), "setgroups");
		break;
	case STEP_SETGID:
		snprintf(what, sizeof(what), "setgid(%u)", (unsigned)pl->gid);
		break;
	case STEP_SETUID:
		snprintf(what, sizeof(what), "setuid(%u)", (unsigned)pl->uid);
		break;
	case STEP_CHDIR:
		snprintf(what, sizeof(what), "chdir %s", pl->profile.workdir);
		break;
	default:
		snprintf(why, whylen, "cannot start %s: %s", pl->path,
		    strerror(r->err));
		return;
	}
	snprintf(why, whylen, "cannot start %s: %s: %s%s", pl->path, what,
	    strerror(r->err), identity_hint(r));
}

/*
 * The child could not take a descriptor table of its own for good: a
 * seccomp filter refused the calls (EPERM, EACCES), killed it (SIGSYS), or
 * the kernel lacks them. A passing ENOMEM or EMFILE is no reason to stop
 * sharing.
 */
static bool
sharing_refused(const struct child_report *r, int status)
{
	if (r->step != STEP_FDS)
		return false;
	if (r->err == 0)
		return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
	return r->err == EPERM || r->err == EACCES || r->err == ENOSYS
	    || r->err == EINVAL;
}

/* Clones the child; a child that failed is reaped (it has exited or is
 * exiting: spawn_clone returned after its _exit). */
static int
clone_child(struct worker *w, struct child_args *a, char *why, size_t whylen)
{
	int pidfd = -1;
	pid_t pid
	    = spawn_clone(child_run, a, proctrack_set_clone_fd(a->spec->set),
	        &pidfd, &a->in_cgroup, &a->shares_fds);
	struct child_report r;

	if (pid < 0) {
		snprintf(why, whylen, "clone: %s", strerror(errno));
		return HPCXL_ESYSTEM;
	}
	r = (struct child_report) { a->report.step, a->report.detail,
		a->report.err };
	/* Only an exec leaves STEP_EXEC with no error: short of it, the child
	 * failed, or a signal (a seccomp filter's SIGSYS) ended it. */
	if (r.err != 0 || r.step != STEP_EXEC) {
		int status = 0;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (pidfd >= 0)
			close(pidfd);
		if (a->shares_fds && sharing_refused(&r, status)) {
			/* Once: the next child does not share the table. */
			spawn_clone_stop_sharing_fds(r.err);
			a->report = (struct child_report) { 0 };
			return clone_child(w, a, why, whylen);
		}
		if (r.err == 0 && WIFSIGNALED(status)) {
			snprintf(why, whylen,
			    "cannot start %s: killed by signal %d (%s) before "
			    "its exec",
			    a->plan->path, WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
			return HPCXL_EEXEC;
		}
		if (r.err == 0)
			r.err = EIO;
		report_why(a->plan, a->spec, &r, why, whylen);
		return HPCXL_EEXEC;
	}
	w->pid = pid;
	w->pidfd = pidfd;
	w->state = PROTO_W_RUNNING;
	w->exit_status = -1;
	return 0;
}

int
worker_spawn(struct worker *w, const struct worker_plan *plan,
    const struct worker_spec *spec, char *why, size_t whylen)
{
	struct child_args a = { .plan = plan, .spec = spec };
	int rv;

	if ((a.envp = worker_plan_env(plan, spec->envp)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return HPCXL_ENOMEM;
	}
	rv = clone_child(w, &a, why, whylen);
	free(a.envp);
	return rv;
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
	bool by_sigkill = status == WORKER_STATUS_UNKNOWN
	    || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	w->exit_status = status;
	w->state = killed && by_sigkill ? PROTO_W_KILLED : PROTO_W_EXITED;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
}

bool
worker_alive(const struct worker *w)
{
	/* Not exit_status: an adopted worker can end with it unknown (-1). */
	return w->pid > 0
	    && (w->state == PROTO_W_RUNNING || w->state == PROTO_W_STOPPING);
}
