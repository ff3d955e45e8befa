/*
 * The cgroup2 backend: one cgroup per session under the node's root. A
 * worker joins it in the child before exec, so nothing it forks,
 * double-forks or setsid()s can leave; the kill is cgroup.kill and "empty"
 * is cgroup.events populated 0, which the loop polls (POLLPRI).
 */
#include "proctrack_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
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

static const char *const cgroup_mounts[]
    = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };

/* This process's cgroup2 directory (the "0::" line of /proc/self/cgroup
 * under the first cgroup2 mount), or -1. */
static int
own_cgroup(char *out, size_t len)
{
	char line[PATH_MAX + 8] = "";
	FILE *f = fopen("/proc/self/cgroup", "re");
	const char *mount = NULL;
	int n;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL
	    && strncmp(line, "0::", 3) != 0)
		line[0] = '\0';
	if (f != NULL)
		fclose(f);
	line[strcspn(line, "\n")] = '\0';
	for (size_t i = 0; i < 2 && mount == NULL; i++)
		if (is_cgroup2(cgroup_mounts[i]))
			mount = cgroup_mounts[i];
	if (strncmp(line, "0::/", 4) != 0 || mount == NULL)
		return -1;
	n = snprintf(out, len, "%s%s", mount,
	    strcmp(line, "0::/") == 0 ? "" : line + 3);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* systemd marks a cgroup it delegates (Delegate=yes) with the xattr
 * trusted.delegate = 1 (user.delegate too, from v253). */
static bool
is_delegated(const char *dir)
{
	static const char *const names[]
	    = { "trusted.delegate", "user.delegate" };
	char v[8];

	for (size_t i = 0; i < 2; i++) {
		ssize_t n = getxattr(dir, names[i], v, sizeof(v));

		if (n == 1 && v[0] == '1')
			return true;
	}
	return false;
}

/* Moves this process (every thread) into dir/agent, made if need be. */
static int
move_self_to_leaf(const char *dir)
{
	char leaf[PATH_MAX + 16];
	bool made;
	int fd, rv = -1;

	snprintf(leaf, sizeof(leaf), "%s/agent", dir);
	if (mkdir_ok(leaf, &made) != 0)
		return -1;
	strncat(leaf, "/cgroup.procs", sizeof(leaf) - strlen(leaf) - 1);
	if ((fd = open(leaf, O_WRONLY | O_CLOEXEC)) >= 0) {
		rv = write(fd, "0", 1) == 1 ? 0 : -1; /* "0": the writer */
		close(fd);
	}
	return rv;
}

/*
 * Under systemd with Delegate=yes (INVOCATION_ID set, and the agent's own
 * cgroup marked delegated) the agent's subtree is its own: session cgroups
 * go to <own>/sessions/<node>, not to a tree of the mount's root that
 * systemd may not expect. The agent first moves into the leaf <own>/agent:
 * cgroup v2 allows no processes in a cgroup whose children get
 * controllers ("no internal processes"), and systemd enables them in a
 * delegated cgroup's subtree once asked.
 */
static int
cgroup_delegated_root(struct proctrack *pt, const char *node)
{
	char own[PATH_MAX], base[PATH_MAX + 16];
	bool made;

	if (getenv("INVOCATION_ID") == NULL
	    || own_cgroup(own, sizeof(own)) != 0 || !is_delegated(own))
		return -1;
	snprintf(base, sizeof(base), "%s/sessions", own);
	if (move_self_to_leaf(own) != 0 || mkdir_ok(base, &made) != 0) {
		log_warn("cgroup %s is delegated, but the agent cannot make "
		         "%s/agent and %s/sessions there: %s",
		    own, own, own, strerror(errno));
		return -1;
	}
	log_info("delegated cgroup %s: the agent runs in %s/agent", own, own);
	return cgroup_make_root(pt, base, false, node);
}

static int
cgroup_find_root(
    struct proctrack *pt, const char *cgroup_root, const char *node)
{
	if (strcmp(cgroup_root, "auto") != 0)
		return cgroup_make_root(pt, cgroup_root, false, node);
	if (cgroup_delegated_root(pt, node) == 0)
		return 0;
	for (size_t i = 0; i < 2; i++) {
		if (cgroup_make_root(pt, cgroup_mounts[i], true, node) == 0)
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
proctrack_cgroup_init(
    struct proctrack *pt, const char *cgroup_root, const char *node)
{
	if (cgroup_find_root(pt, cgroup_root, node) != 0)
		return -1;
	if (cgroup_has_kill(pt))
		return 0;
	cgroup_unmake_root(pt);
	return -1;
}

static void
cgroup_fini(struct proctrack *pt)
{
	/* Fails harmlessly (EBUSY) while sessions of this node remain. */
	cgroup_unmake_root(pt);
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

static void
cgroup_release(struct proctrack_set *set, bool remove)
{
	if (set->procs_fd >= 0)
		close(set->procs_fd);
	if (set->events_fd >= 0)
		close(set->events_fd);
	if (set->dir_fd >= 0)
		close(set->dir_fd);
	set->procs_fd = set->events_fd = set->dir_fd = -1;
	if (remove && set->path[0] != '\0' && rmdir(set->path) != 0
	    && errno != ENOENT)
		log_warn(
		    "cannot remove cgroup %s: %s", set->path, strerror(errno));
	set->path[0] = '\0';
}

/* events to poll, the directory to clone into, procs to join by hand. */
static int
cgroup_open_fds(struct proctrack_set *set)
{
	set->events_fd = open_in(set->path, "cgroup.events", O_RDONLY);
	set->dir_fd = open(set->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	set->procs_fd = open_in(set->path, "cgroup.procs", O_WRONLY);
	return set->events_fd < 0 || set->dir_fd < 0 || set->procs_fd < 0 ? -1
	                                                                  : 0;
}

static int
cgroup_path(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	int n = snprintf(
	    set->path, sizeof(set->path), "%s/%s", pt->root, session);

	return n < 0 || (size_t)n >= sizeof(set->path) ? -1 : 0;
}

static int
cgroup_create(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	if (cgroup_path(pt, session, set) != 0)
		return HPCXL_ESYSTEM;
	if (mkdir(set->path, 0755) != 0 && errno != EEXIST)
		goto fail;
	if (cgroup_open_fds(set) != 0)
		goto fail;
	if (cgroup_populated(set->events_fd)) {
		log_err("cgroup %s still holds processes", set->path);
		cgroup_release(set, true);
		return HPCXL_EEXIST;
	}
	return 0;
fail:
	log_err("cannot create cgroup %s: %s", set->path, strerror(errno));
	cgroup_release(set, true);
	return HPCXL_ESYSTEM;
}

static int
cgroup_adopt(
    const struct proctrack *pt, const char *session, struct proctrack_set *set)
{
	if (cgroup_path(pt, session, set) != 0)
		return HPCXL_ENOTFOUND;
	/* Joinable too: a worker restarted later must join it as well. */
	if (cgroup_open_fds(set) != 0) {
		cgroup_release(set, false);
		return HPCXL_ENOTFOUND;
	}
	return 0;
}

static int
cgroup_pollfd(const struct proctrack_set *set)
{
	return set->events_fd;
}

static int
cgroup_child_join(const struct proctrack_set *set)
{
	if (set->procs_fd < 0)
		return 0;
	/* "0" means the writing process itself. */
	return write(set->procs_fd, "0", 1) == 1 ? 0 : errno;
}

static void
cgroup_kill(struct proctrack_set *set)
{
	int fd = open_in(set->path, "cgroup.kill", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1)
		log_err("cgroup.kill of %s failed: %s", set->path,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
}

static bool
cgroup_empty(struct proctrack_set *set)
{
	return !cgroup_populated(set->events_fd);
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

static unsigned
cgroup_count(const struct proctrack_set *set)
{
	return cgroup_each_pid(set, NULL, NULL);
}

struct signal_job {
	const int *sigs;
	size_t nsigs;
	const pid_t *except; /* sorted */
	size_t nexcept;
};

static int
pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static void
signal_pid(pid_t pid, const void *arg)
{
	const struct signal_job *job = arg;

	/* A search, not a scan: 4,096 workers made 16 M compares. */
	if (bsearch(&pid, job->except, job->nexcept, sizeof(pid), pid_cmp)
	    != NULL)
		return;
	for (size_t k = 0; k < job->nsigs; k++)
		kill(pid, job->sigs[k]);
}

/* Workers first, through their pidfds; then the rest of the cgroup. */
static void
cgroup_signal(struct proctrack_set *set, const int *sigs, size_t nsigs,
    proctrack_signal_worker_fn signal_worker, void *arg)
{
	pid_t except[PROTO_MAX_WORKERS];
	struct signal_job job = { sigs, nsigs, except, 0 };

	for (size_t i = 0; i < set->ngroups && i < PROTO_MAX_WORKERS; i++) {
		pid_t pid = 0;

		for (size_t k = 0; k < nsigs; k++)
			pid = signal_worker(arg, i, sigs[k]);
		if (pid > 0)
			except[job.nexcept++] = pid;
	}
	qsort(except, job.nexcept, sizeof(*except), pid_cmp);
	cgroup_each_pid(set, signal_pid, &job);
}

static void
cgroup_drop_group(struct proctrack_set *set, size_t i)
{
	/* What is left of the old group stays in the cgroup, tracked. */
	(void)set;
	(void)i;
}

static void
cgroup_prune(struct proctrack_set *set)
{
	/* Not even cgroup.events: reading it clears the POLLPRI the loop
	 * waits for. */
	(void)set;
}

const struct proctrack_ops proctrack_cgroup_ops = {
	.name = "cgroup2",
	.set_kind = "cgroup",
	.fini = cgroup_fini,
	.create = cgroup_create,
	.adopt = cgroup_adopt,
	.release = cgroup_release,
	.pollfd = cgroup_pollfd,
	.child_join = cgroup_child_join,
	.signal = cgroup_signal,
	.drop_group = cgroup_drop_group,
	.prune = cgroup_prune,
	.kill = cgroup_kill,
	.empty = cgroup_empty,
	.count = cgroup_count,
};
