#include "proctrack.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static bool
is_cgroup2(const char *dir)
{
	struct statfs sf;

	return statfs(dir, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* Makes dir unless it exists; *made says whether this call created it. */
static int
mkdir_ok(const char *dir, bool *made)
{
	*made = mkdir(dir, 0755) == 0;
	return *made || errno == EEXIST ? 0 : -1;
}

/* Removes the node's root if this process made it: it is not in use. */
static void
cgroup_unmake_root(struct proctrack *pt)
{
	if (pt->root_made && rmdir(pt->root) != 0 && errno != ENOENT
	    && errno != EBUSY)
		log_warn(
		    "cannot remove cgroup %s: %s", pt->root, strerror(errno));
	pt->root_made = false;
	pt->root[0] = '\0';
}

/*
 * Makes <base>/hpcxl/<node> (or <base>/<node> for an explicit root). The
 * shared <base>/hpcxl is never removed, not even when made here: another
 * node's agent may be between its own mkdir of it and of its root.
 */
static int
cgroup_make_root(
    struct proctrack *pt, const char *base, bool add_hpcxl, const char *node)
{
	char dir[PATH_MAX];
	bool made;
	int n;

	if (!is_cgroup2(base))
		return -1;
	n = snprintf(
	    dir, sizeof(dir), "%s%s", base, add_hpcxl ? "/hpcxl" : "");
	if (n < 0 || (size_t)n >= sizeof(dir) || mkdir_ok(dir, &made) != 0)
		return -1;
	n = snprintf(pt->root, sizeof(pt->root), "%s/%s", dir, node);
	if (n < 0 || (size_t)n >= sizeof(pt->root)
	    || mkdir_ok(pt->root, &pt->root_made) != 0)
		return -1;
	if (access(pt->root, W_OK) == 0)
		return 0;
	cgroup_unmake_root(pt);
	return -1;
}

static int
cgroup_find_root(
    struct proctrack *pt, const char *cgroup_root, const char *node)
{
	static const char *const mounts[]
	    = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	size_t i;

	if (strcmp(cgroup_root, "auto") != 0)
		return cgroup_make_root(pt, cgroup_root, false, node);
	for (i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		if (cgroup_make_root(pt, mounts[i], true, node) == 0)
			return 0;
	}
	return -1;
}

/* cgroup.kill came with Linux 5.14; without it there is no atomic kill. */
static bool
cgroup_has_kill(const struct proctrack *pt)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/cgroup.kill", pt->root);
	if (access(path, W_OK) == 0)
		return true;
	log_warn("%s has no cgroup.kill (Linux < 5.14): not using cgroup2",
	    pt->root);
	return false;
}

int
proctrack_init(struct proctrack *pt, const char *want, const char *cgroup_root,
    const char *node)
{
	memset(pt, 0, sizeof(*pt));
	/* Orphans of workers come to us, so they are reaped, not zombies. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn(
		    "cannot become a child subreaper: %s", strerror(errno));
	if (strcmp(want, "pgroup") != 0
	    && cgroup_find_root(pt, cgroup_root, node) == 0) {
		if (cgroup_has_kill(pt)) {
			pt->backend = PROCTRACK_CGROUP2;
			log_info(
			    "process tracking: cgroup2 under %s", pt->root);
			return 0;
		}
		cgroup_unmake_root(pt);
	}
	if (strcmp(want, "cgroup2") == 0) {
		log_err("no writable cgroup2 hierarchy at '%s'", cgroup_root);
		return HPCXL_ECONFIG;
	}
	pt->backend = PROCTRACK_PGROUP;
	pt->root[0] = '\0';
	if (strcmp(want, "pgroup") != 0)
		log_warn("no writable cgroup2 hierarchy: tracking by process "
		         "group; a worker's setsid() descendants can escape");
	return 0;
}

void
proctrack_fini(struct proctrack *pt)
{
	/* Fails harmlessly (EBUSY) while sessions of this node remain. */
	if (pt->backend == PROCTRACK_CGROUP2)
		cgroup_unmake_root(pt);
}

const char *
proctrack_backend_name(const struct proctrack *pt)
{
	return pt->backend == PROCTRACK_CGROUP2 ? "cgroup2" : "pgroup";
}

static int
open_in(const char *dir, const char *file, int flags)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, flags | O_CLOEXEC);
}

static bool
cgroup_populated(int events_fd)
{
	char buf[256];
	ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);

	/* Removed under us (ENODEV): nothing can live in it any more. */
	if (n < 0 && (errno == ENODEV || errno == ENOENT))
		return false;
	if (n <= 0)
		return true; /* cannot tell: assume the worst */
	buf[n] = '\0';
	return strstr(buf, "populated 0") == NULL;
}

int
proctrack_set_create(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	int n;

	set->procs_fd = set->events_fd = -1;
	set->path[0] = '\0';
	if (pt->backend == PROCTRACK_PGROUP)
		return 0;
	n = snprintf(set->path, sizeof(set->path), "%s/%s", pt->root, session);
	if (n < 0 || (size_t)n >= sizeof(set->path))
		return HPCXL_ESYSTEM;
	if (mkdir(set->path, 0755) != 0 && errno != EEXIST)
		goto fail;
	set->events_fd = open_in(set->path, "cgroup.events", O_RDONLY);
	set->procs_fd = open_in(set->path, "cgroup.procs", O_WRONLY);
	if (set->events_fd < 0 || set->procs_fd < 0)
		goto fail;
	if (cgroup_populated(set->events_fd)) {
		log_err("cgroup %s still holds processes", set->path);
		proctrack_set_destroy(set);
		return HPCXL_EEXIST;
	}
	return 0;
fail:
	log_err("cannot create cgroup %s: %s", set->path, strerror(errno));
	proctrack_set_destroy(set);
	return HPCXL_ESYSTEM;
}

static void
set_close_fds(struct proctrack_set *set)
{
	if (set->procs_fd >= 0)
		close(set->procs_fd);
	if (set->events_fd >= 0)
		close(set->events_fd);
	set->procs_fd = set->events_fd = -1;
}

void
proctrack_set_forget(struct proctrack_set *set)
{
	set_close_fds(set);
	set->path[0] = '\0';
}

void
proctrack_set_destroy(struct proctrack_set *set)
{
	set_close_fds(set);
	if (set->path[0] != '\0' && rmdir(set->path) != 0 && errno != ENOENT)
		log_warn(
		    "cannot remove cgroup %s: %s", set->path, strerror(errno));
	set->path[0] = '\0';
}

int
proctrack_child_join(const struct proctrack_set *set)
{
	if (set->procs_fd < 0)
		return 0;
	/* "0" means the writing process itself. */
	return write(set->procs_fd, "0", 1) == 1 ? 0 : errno;
}

static void
cgroup_kill(const struct proctrack_set *set)
{
	int fd = open_in(set->path, "cgroup.kill", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1)
		log_err("cgroup.kill of %s failed: %s", set->path,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
}

void
proctrack_set_kill(
    const struct proctrack_set *set, const pid_t *pgids, size_t n)
{
	size_t i;

	if (set->path[0] != '\0') {
		cgroup_kill(set);
		return;
	}
	for (i = 0; i < n; i++) {
		if (pgids[i] > 0)
			kill(-pgids[i], SIGKILL);
	}
}

bool
proctrack_set_empty(const struct proctrack_set *set, pid_t *pgids, size_t n)
{
	bool empty = true;
	size_t i;

	if (set->events_fd >= 0)
		return !cgroup_populated(set->events_fd);
	for (i = 0; i < n; i++) {
		if (pgids[i] <= 0)
			continue;
		if (kill(-pgids[i], 0) != 0 && errno == ESRCH)
			pgids[i] = 0;
		else
			empty = false;
	}
	return empty;
}

/* Calls fn for each pid in the set's cgroup.procs; returns the count. */
static unsigned
cgroup_each_pid(const struct proctrack_set *set,
    void (*fn)(pid_t, const void *), const void *arg)
{
	FILE *f;
	unsigned count = 0;
	long pid;
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", set->path);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%ld", &pid) == 1) {
		count++;
		if (fn != NULL && pid > 0)
			fn((pid_t)pid, arg);
	}
	fclose(f);
	return count;
}

struct signal_job {
	int sig;
	const pid_t *except;
	size_t nexcept;
};

static void
signal_pid(pid_t pid, const void *arg)
{
	const struct signal_job *job = arg;

	for (size_t i = 0; i < job->nexcept; i++) {
		if (job->except[i] == pid)
			return;
	}
	kill(pid, job->sig);
}

void
proctrack_set_signal(const struct proctrack_set *set, const pid_t *pgids,
    size_t n, int sig, const pid_t *except, size_t nexcept)
{
	struct signal_job job = { sig, except, nexcept };
	size_t i;

	if (set->path[0] != '\0') {
		cgroup_each_pid(set, signal_pid, &job);
		return;
	}
	for (i = 0; i < n; i++) {
		if (pgids[i] > 0)
			kill(-pgids[i], sig);
	}
}

unsigned
proctrack_set_count(
    const struct proctrack_set *set, const pid_t *pgids, size_t n)
{
	unsigned count = 0;
	size_t i;

	if (set->path[0] != '\0')
		return cgroup_each_pid(set, NULL, NULL);
	for (i = 0; i < n; i++)
		count += pgids[i] > 0 && kill(-pgids[i], 0) == 0;
	return count;
}

bool
proctrack_set_is_cgroup(const struct proctrack_set *set)
{
	return set->path[0] != '\0';
}

void
proctrack_set_drop_group(const struct proctrack_set *set, pid_t *pgid)
{
	if (proctrack_set_is_cgroup(set) || *pgid <= 0)
		return;
	kill(-*pgid, SIGKILL);
	*pgid = 0;
}

int
proctrack_set_adopt(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	struct proctrack_set found = { .procs_fd = -1, .events_fd = -1 };
	int n;

	if (pt->backend != PROCTRACK_CGROUP2)
		return HPCXL_ENOTFOUND;
	n = snprintf(
	    found.path, sizeof(found.path), "%s/%s", pt->root, session);
	if (n < 0 || (size_t)n >= sizeof(found.path))
		return HPCXL_ENOTFOUND;
	found.events_fd = open_in(found.path, "cgroup.events", O_RDONLY);
	/* Writable too: a worker restarted later must join it as well. */
	found.procs_fd = open_in(found.path, "cgroup.procs", O_WRONLY);
	if (found.events_fd < 0 || found.procs_fd < 0) {
		set_close_fds(&found);
		return HPCXL_ENOTFOUND;
	}
	*set = found;
	return 0;
}
