#include "spawn_clone.h"

#include "hpcxl/common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The child's stack: its frames (child setup up to execve) stay small,
 * but NSS-free libc calls may use a few pages; glibc's posix_spawn uses
 * 32 KiB plus PATH_MAX. */
#define CHILD_STACK_SIZE (256 * 1024)

static _Alignas(64) unsigned char child_stack[CHILD_STACK_SIZE];

/* Set once clone3 has said it cannot serve us: every later spawn goes
 * straight to clone(2). */
static bool clone3_unusable;

/* Set once a child could not take a descriptor table of its own (a
 * seccomp filter refusing close_range and unshare): every later child
 * gets a copy at clone time instead, as fork does. */
static bool fd_sharing_unusable;

#if defined(__x86_64__) && defined(SYS_clone3)
/*
 * clone3 with a stack of our own returns twice, the second time in the
 * child on an empty stack: that half cannot return into C, so it calls
 * fn(arg) and exits in assembly (as glibc's own clone does). r8 and r9
 * survive the syscall; rcx and r11 do not. The stack top is 16-byte
 * aligned, so after the call the child's frame is aligned as the ABI
 * wants.
 */
static long
clone3_run(struct clone_args *args, int (*fn)(void *), void *arg)
{
	register long ret __asm__("rax") = SYS_clone3;
	register int (*r8)(void *) __asm__("r8") = fn;
	register void *r9 __asm__("r9") = arg;

	__asm__ volatile("syscall\n\t"
	                 "test %%rax, %%rax\n\t"
	                 "jnz 1f\n\t"
	                 "xor %%ebp, %%ebp\n\t"
	                 "mov %%r9, %%rdi\n\t"
	                 "call *%%r8\n\t"
	                 "mov %%eax, %%edi\n\t"
	                 "mov %[exit_nr], %%eax\n\t"
	                 "syscall\n\t"
	                 "hlt\n"
	                 "1:"
	                 : "+r"(ret)
	                 : "D"(args), "S"(sizeof(*args)), "r"(r8),
	                 "r"(r9), [exit_nr] "i"(SYS_exit)
	                 : "rcx", "r11", "memory");
	return ret;
}

static pid_t
spawn_clone3(int (*fn)(void *), void *arg, int cgroup_fd, int *pidfd,
    volatile bool *in_cgroup, uint64_t share)
{
	struct clone_args ca = {
		.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | share,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
		.stack = (uint64_t)(uintptr_t)child_stack,
		.stack_size = sizeof(child_stack),
	};
	long rv;

	if (cgroup_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cgroup_fd;
	}
	*in_cgroup = cgroup_fd >= 0;
	rv = clone3_run(&ca, fn, arg);
	if (rv < 0) {
		errno = (int)-rv;
		return -1;
	}
	return (pid_t)rv;
}
#else
static pid_t
spawn_clone3(int (*fn)(void *), void *arg, int cgroup_fd, int *pidfd,
    volatile bool *in_cgroup, uint64_t share)
{
	(void)fn, (void)arg, (void)cgroup_fd, (void)pidfd, (void)in_cgroup;
	(void)share;
	errno = ENOSYS;
	return -1;
}
#endif

/* The fallback: the same vfork semantics; the child joins its cgroup. */
static pid_t
spawn_clone2(int (*fn)(void *), void *arg, int *pidfd,
    volatile bool *in_cgroup, int share)
{
	*in_cgroup = false;
	return clone(fn, child_stack + sizeof(child_stack),
	    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | share, arg,
	    pidfd);
}

/* The errors of a kernel without clone3 or CLONE_INTO_CGROUP (or a
 * seccomp filter that refuses it), as opposed to fork's own failures. */
static bool
clone3_missing(int err)
{
	return err == ENOSYS || err == E2BIG || err == EINVAL || err == EPERM
	    || err == EOPNOTSUPP;
}

int
spawn_clone_child_own_fds(bool *only_0_2)
{
	/* A bounded copy (CLOSE_RANGE_UNSHARE with no upper bound): only 0-2
	 * remain. */
	*only_0_2 = syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_UNSHARE) == 0;
	if (*only_0_2)
		return 0;
	/* Before Linux 5.9, or refused: a copy of the whole table. */
	return unshare(CLONE_FILES) == 0 ? 0 : errno;
}

/* What getdents64 returns (the kernel's struct linux_dirent64). */
struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* The descriptor a /proc/self/fd entry names, or -1 ("." and ".."). */
static int
fd_of_name(const char *name)
{
	int fd = 0;

	if (*name == '\0')
		return -1;
	for (; *name != '\0'; name++) {
		if (*name < '0' || *name > '9' || fd > 100000000)
			return -1;
		fd = fd * 10 + (*name - '0');
	}
	return fd;
}

/* One pass over dir: closes each descriptor >= 3 but dir; how many. */
static int
close_listed_fds(int dir)
{
	char buf[4096];
	long n;
	int closed = 0;

	if (lseek(dir, 0, SEEK_SET) < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			const struct dirent64_raw *d
			    = (const struct dirent64_raw *)(buf + off);
			int fd = fd_of_name(d->d_name);

			if (fd >= 3 && fd != dir && close(fd) == 0)
				closed++;
			off += d->d_reclen;
		}
	}
	return n < 0 ? -1 : closed;
}

int
spawn_clone_child_close_fds(void)
{
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int closed = 0, e = 0;

	if (dir < 0)
		return errno;
	/* Until a pass finds nothing: closing while listing may skip. */
	for (int pass = 0; pass < 8; pass++) {
		if ((closed = close_listed_fds(dir)) <= 0)
			break;
	}
	/* Still closing after 8 passes: better no worker than a leak. */
	if (closed < 0)
		e = errno;
	else if (closed > 0)
		e = EMFILE;
	close(dir);
	return e;
}

void
spawn_clone_stop_sharing_fds(int err)
{
	if (fd_sharing_unusable)
		return;
	fd_sharing_unusable = true;
	log_notice("a child cannot take a descriptor table of its own (%s): "
	           "each spawn copies the agent's instead",
	    err != 0 ? strerror(err) : "killed by a seccomp filter");
}

void
spawn_clone_seal_inherited_fds(void)
{
	struct dirent *e;
	DIR *d;

	/* Not close_range: a seccomp filter may kill for it (SIGSYS). */
	if ((d = opendir("/proc/self/fd")) == NULL) {
		log_warn(
		    "cannot list inherited descriptors: %s", strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		int flags;

		if (*end != '\0' || end == e->d_name || fd <= 2
		    || fd == dirfd(d))
			continue;
		if ((flags = fcntl((int)fd, F_GETFD)) >= 0)
			fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
	}
	closedir(d);
}

pid_t
spawn_clone(int (*fn)(void *), void *arg, int cgroup_fd, int *pidfd,
    volatile bool *in_cgroup, volatile bool *shares_fds)
{
	int share = fd_sharing_unusable ? 0 : CLONE_FILES;
	pid_t pid;

	*shares_fds = share != 0;
	if (!clone3_unusable) {
		pid = spawn_clone3(
		    fn, arg, cgroup_fd, pidfd, in_cgroup, (uint64_t)share);
		if (pid >= 0 || !clone3_missing(errno))
			return pid;
		clone3_unusable = true;
		log_notice("clone3 unavailable (%s): workers start with "
		           "clone(2) and join their cgroup themselves",
		    strerror(errno));
	}
	return spawn_clone2(fn, arg, pidfd, in_cgroup, share);
}
