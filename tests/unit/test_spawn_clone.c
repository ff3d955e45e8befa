/*
 * Unit tests of what a worker's child keeps of the agent's descriptors
 * (agent/spawn_clone.c): a child with a copied table closes everything
 * above 2, however many there are (more than one getdents64 batch), and
 * the agent's start-up seal makes every inherited descriptor above 2
 * close-on-exec. Each runs in a forked child, so the test process's own
 * descriptors are left alone; the child's exit status is the verdict.
 */
#include "spawn_clone.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* More than one 4 KiB getdents64 batch of /proc/self/fd (~150 each). */
#define MANY_FDS 400

enum verdict { PASS = 0, CALL_FAILED = 10, LEFT_OPEN = 11, NOT_SEALED = 12 };

/* Opens n descriptors on /dev/null, every other one without CLOEXEC
 * (in the child: no Criterion assertion there). */
static bool
open_many(int n)
{
	for (int i = 0; i < n; i++) {
		if (open("/dev/null", O_RDONLY | (i % 2 ? O_CLOEXEC : 0)) < 0)
			return false;
	}
	return true;
}

/* Descriptors above 2 this process holds, but the listing's own. */
static int
count_above_2(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		n += e->d_name[0] != '.' && fd > 2 && fd != dirfd(d);
	}
	closedir(d);
	return n;
}

/* Runs fn in a forked child and returns its exit status. */
static int in_child(enum verdict (*fn)(void))
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	cr_assert_gt(pid, 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child was killed: %d", status);
	return WEXITSTATUS(status);
}

static enum verdict
close_down(void)
{
	if (!open_many(MANY_FDS) || spawn_clone_child_close_fds() != 0)
		return CALL_FAILED;
	return count_above_2() == 0 ? PASS : LEFT_OPEN;
}

static enum verdict
seal(void)
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd < 3)
		return CALL_FAILED;
	spawn_clone_seal_inherited_fds();
	return fcntl(fd, F_GETFD) & FD_CLOEXEC ? PASS : NOT_SEALED;
}

Test(spawn_clone, a_copied_table_is_closed_down_to_0_2)
{
	cr_assert_eq(in_child(close_down), PASS);
}

Test(spawn_clone, inherited_descriptors_are_sealed_at_start)
{
	cr_assert_eq(in_child(seal), PASS);
}
