#include "state.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FORMAT 1
/* A record of PROTO_MAX_WORKERS workers is well under this. */
#define STATE_MAX_FILE (2 * 1024 * 1024)

static const char *const phase_names[] = {
	[STATE_OPENING] = "opening",
	[STATE_RUNNING] = "running",
	[STATE_STOPPING] = "stopping",
	[STATE_KILLING] = "killing",
};

/* Index of name in names[n], or -1. */
static int
name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

static int
wstate_from_name(const char *name)
{
	for (int i = PROTO_W_RUNNING; i <= PROTO_W_FAILED; i++) {
		if (strcmp(proto_wstate_name((enum proto_wstate)i), name) == 0)
			return i;
	}
	return -1;
}

static void
read_boot_id(char *out, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(out, len, "unknown");
	if (f == NULL)
		return;
	if (fgets(out, (int)len, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/*
 * Two agents on one state directory would both adopt every session. The
 * directory and its lock file are all this makes before the lock is held:
 * when another agent holds it, both existed already.
 */
static int
lock_state_dir(struct state_dir *sd, const char *state_dir)
{
	char path[PATH_MAX];

	if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
		log_err("cannot create state directory %s: %s", state_dir,
		    strerror(errno));
		return HPCXL_ESYSTEM;
	}
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	sd->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (sd->lock_fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return HPCXL_ESYSTEM;
	}
	if (flock(sd->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		log_err("state directory %s is in use by another agent",
		    state_dir);
		return HPCXL_EEXIST;
	}
	return 0;
}

int
state_open(struct state_dir *sd, const char *state_dir)
{
	int n1, n2, rv;

	memset(sd, 0, sizeof(*sd));
	sd->lock_fd = -1;
	n1 = snprintf(
	    sd->sessions, sizeof(sd->sessions), "%s/sessions", state_dir);
	n2 = snprintf(
	    sd->health, sizeof(sd->health), "%s/unhealthy", state_dir);
	if (n1 < 0 || (size_t)n1 >= sizeof(sd->sessions) || n2 < 0
	    || (size_t)n2 >= sizeof(sd->health))
		return HPCXL_ECONFIG;
	if ((rv = lock_state_dir(sd, state_dir)) != 0)
		return rv;
	if (mkdir(sd->sessions, 0750) != 0 && errno != EEXIST) {
		log_err("cannot create %s: %s", sd->sessions, strerror(errno));
		return HPCXL_ESYSTEM;
	}
	read_boot_id(sd->boot_id, sizeof(sd->boot_id));
	return 0;
}

void
state_close(struct state_dir *sd)
{
	if (sd->lock_fd >= 0)
		close(sd->lock_fd);
	sd->lock_fd = -1;
}

/* ---- atomic replace -------------------------------------------------- */

/*
 * Replaces path with text: a reader (or an agent that crashed and
 * started again) sees the old file or the new one, by rename(2).
 *
 * No fsync, of the file or of the directory: every record carries the
 * boot id and is dropped by the next boot (state.h), so what it must
 * survive is the agent's death, never the machine's, and the page cache
 * outlives a process. An fsync cost 0.5 to 1 ms per store on an idle
 * ext4 disk, and stores sit on the close's path (STOPPING is stored
 * before SIGTERM): 16 agents closing at once spent ~4 ms of a 28 ms close
 * queued on the journal.
 *
 * The new text goes into "<path>.tmp", which then trades names with path
 * (RENAME_EXCHANGE): the previous version stays behind as the next
 * store's ".tmp", so a store after the first neither allocates nor frees
 * an inode. On ext4 after many short sessions, finding a free inode
 * (find_inode_bit, recently_deleted) was most of a store's cost: the
 * same 16 closes took ~7 ms longer than with the state on tmpfs. Whoever
 * removes path removes "<path>.tmp" too.
 */
static int
swap_into_place(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0)
		return 0;
	/* The first store (no path yet: ENOENT), a file system without the
	 * exchange (EINVAL), a kernel or a seccomp filter without renameat2
	 * (ENOSYS, EPERM): rename() does it, or says what is wrong. */
	return rename(tmp, path);
}

/* The name of path's spare: "<path>.tmp". */
static void
spare_path(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s.tmp", path);
}

static int
replace_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	size_t len = strlen(text);
	int fd, rv = 0;

	spare_path(path, tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_err("cannot write %s: %s", tmp, strerror(errno));
		return HPCXL_ESYSTEM;
	}
	/* Written over, then cut to length: no O_TRUNC, since ext4 writes
	 * a file truncated to 0 out to disk when it is closed (auto_da_alloc,
	 * its guard for programs that rewrite a file in place). */
	if (util_write_all(fd, text, len) != 0
	    || ftruncate(fd, (off_t)len) != 0)
		rv = HPCXL_ESYSTEM;
	if (close(fd) != 0)
		rv = HPCXL_ESYSTEM;
	if (rv == 0 && swap_into_place(tmp, path) != 0)
		rv = HPCXL_ESYSTEM;
	if (rv != 0) {
		log_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rv;
}

/* Removes a file that may be missing; false (logged) when it stays. */
static bool
unlink_logged(const char *path)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return true;
	log_warn("cannot remove %s: %s", path, strerror(errno));
	return false;
}

/* Removes what replace_file() made, the record first (a spare left
 * behind is removed at the next start). Returns 0 or HPCXL_ESYSTEM. */
static int
remove_file(const char *path)
{
	char tmp[PATH_MAX + 8];
	bool gone = unlink_logged(path);

	spare_path(path, tmp, sizeof(tmp));
	gone &= unlink_logged(tmp);
	return gone ? 0 : HPCXL_ESYSTEM;
}

static int
dump_to_file(const char *path, json_t *root)
{
	char *text;
	int rv;

	if (root == NULL)
		return HPCXL_ENOMEM;
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		return HPCXL_ENOMEM;
	rv = replace_file(path, text);
	free(text);
	return rv;
}

/* ---- sessions ------------------------------------------------------------
 */

static int
record_path(const struct state_dir *sd, const char *id, const char *suffix,
    char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s.json%s", sd->sessions, id, suffix);

	return n < 0 || (size_t)n >= len ? HPCXL_ESYSTEM : 0;
}

static json_t *
worker_to_json(const struct worker *w, pid_t pgid)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:I}", "index",
	    (json_int_t)w->index, "pid", (json_int_t)w->pid, "start_ticks",
	    (json_int_t)w->start_ticks, "pgid", (json_int_t)pgid, "state",
	    proto_wstate_name(w->state), "exit_status",
	    (json_int_t)w->exit_status, "restarts", (json_int_t)w->restarts);
}

static json_t *
session_to_json(const struct state_dir *sd, const struct state_session *r)
{
	json_t *workers = json_array();

	for (uint32_t i = 0; workers != NULL && i < r->nworkers; i++) {
		if (json_array_append_new(
		        workers, worker_to_json(&r->workers[i], r->pgids[i]))
		    != 0) {
			json_decref(workers);
			return NULL;
		}
	}
	if (workers == NULL)
		return NULL;
	/* No "owner" key for a session without one, as older agents wrote. */
	return json_pack(
	    "{s:i, s:s, s:s, s:s, s:s*, s:s*, s:s, s:I, s:I, s:I, s:I, s:o}",
	    "format", STATE_FORMAT, "boot_id", sd->boot_id, "session", r->id,
	    "profile", r->profile, "owner",
	    r->owner[0] != '\0' ? r->owner : NULL, "workbook", r->workbook,
	    "phase", phase_names[r->phase], "lease_end_ms",
	    (json_int_t)r->lease_end_ms, "close_start_ms",
	    (json_int_t)r->close_start_ms, "grace_end_ms",
	    (json_int_t)r->grace_end_ms, "kill_start_ms",
	    (json_int_t)r->kill_start_ms, "workers", workers);
}

int
state_save(const struct state_dir *sd, const struct state_session *r)
{
	char path[PATH_MAX];
	int rv;

	if ((rv = record_path(sd, r->id, "", path, sizeof(path))) != 0)
		return rv;
	return dump_to_file(path, session_to_json(sd, r));
}

void
state_forget(const struct state_dir *sd, const char *id)
{
	char path[PATH_MAX];

	if (record_path(sd, id, "", path, sizeof(path)) == 0)
		(void)remove_file(path); /* logged */
}

/* ---- loading ------------------------------------------------------------
 */

static bool
in_range(json_int_t v, json_int_t min, json_int_t max)
{
	return v >= min && v <= max;
}

static int
worker_from_json(json_t *j, uint32_t index, struct worker *w, pid_t *group)
{
	json_int_t idx, pid, ticks, pgid, status, restarts;
	const char *st;
	int wstate;

	if (json_unpack(j, "{s:I, s:I, s:I, s:I, s:s, s:I, s:I !}", "index",
	        &idx, "pid", &pid, "start_ticks", &ticks, "pgid", &pgid,
	        "state", &st, "exit_status", &status, "restarts", &restarts)
	    != 0)
		return HPCXL_EPROTO;
	wstate = wstate_from_name(st);
	if (idx != (json_int_t)index || !in_range(pid, 0, INT32_MAX)
	    || !in_range(pgid, 0, INT32_MAX) || ticks < 0 || wstate < 0
	    || !in_range(status, -1, INT32_MAX)
	    || !in_range(restarts, 0, UINT32_MAX))
		return HPCXL_EPROTO;
	*w = (struct worker) { .index = index,
		.pid = (pid_t)pid,
		.pidfd = -1,
		.state = (enum proto_wstate)wstate,
		.exit_status = (int)status,
		.restarts = (uint32_t)restarts,
		.start_ticks = (uint64_t)ticks };
	*group = (pid_t)pgid;
	return 0;
}

static int
workers_from_json(json_t *arr, struct state_session *r)
{
	size_t n = json_array_size(arr);

	if (!json_is_array(arr) || n > PROTO_MAX_WORKERS)
		return HPCXL_EPROTO;
	r->workers = calloc(n + 1, sizeof(*r->workers));
	r->pgids = calloc(n + 1, sizeof(*r->pgids));
	if (r->workers == NULL || r->pgids == NULL)
		return HPCXL_ENOMEM;
	r->nworkers = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		if (worker_from_json(json_array_get(arr, i), (uint32_t)i,
		        &r->workers[i], &r->pgids[i])
		    != 0)
			return HPCXL_EPROTO;
	}
	return 0;
}

/* Fills r from root; on failure r may own memory (free it). */
static int
session_from_json(json_t *root, const char *boot_id, struct state_session *r)
{
	const char *boot, *id, *profile, *owner = NULL, *workbook = NULL,
	                                 *phase;
	json_int_t format, lease, start, grace, kill;
	json_t *workers;
	int ph;

	/* Another boot's record is dropped whatever its format. */
	if (json_unpack(root, "{s:s}", "boot_id", &boot) == 0
	    && strcmp(boot, boot_id) != 0)
		return HPCXL_ENOTFOUND;
	if (json_unpack(root,
	        "{s:I, s:s, s:s, s:s, s?s, s?s, s:s, s:I, s:I, s:I, s:I, s:o "
	        "!}",
	        "format", &format, "boot_id", &boot, "session", &id, "profile",
	        &profile, "owner", &owner, "workbook", &workbook, "phase",
	        &phase, "lease_end_ms", &lease, "close_start_ms", &start,
	        "grace_end_ms", &grace, "kill_start_ms", &kill, "workers",
	        &workers)
	    != 0)
		return HPCXL_EPROTO;
	if (strcmp(boot, boot_id) != 0)
		return HPCXL_ENOTFOUND; /* an earlier boot: nothing is left */
	ph = name_index(
	    phase_names, sizeof(phase_names) / sizeof(phase_names[0]), phase);
	if (format != STATE_FORMAT || ph < 0 || !util_valid_id(id)
	    || !util_valid_id(profile)
	    || (owner != NULL && !util_valid_identity(owner)) || lease < 0
	    || start < 0 || grace < 0 || kill < 0)
		return HPCXL_EPROTO;
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->profile, sizeof(r->profile), "%s", profile);
	snprintf(r->owner, sizeof(r->owner), "%s", owner != NULL ? owner : "");
	r->phase = (enum state_phase)ph;
	r->lease_end_ms = lease;
	r->close_start_ms = start;
	r->grace_end_ms = grace;
	r->kill_start_ms = kill;
	if (workbook != NULL && (r->workbook = strdup(workbook)) == NULL)
		return HPCXL_ENOMEM;
	return workers_from_json(workers, r);
}

static int
load_one(const struct state_dir *sd, const char *path, const char *id,
    struct state_session *r)
{
	json_error_t jerr;
	json_t *root;
	int rv;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return HPCXL_EPROTO;
	memset(r, 0, sizeof(*r));
	rv = session_from_json(root, sd->boot_id, r);
	json_decref(root);
	if (rv == 0 && strcmp(r->id, id) != 0)
		rv = HPCXL_EPROTO; /* the name must say whose record it is */
	if (rv != 0) {
		free(r->workbook);
		free(r->workers);
		free(r->pgids);
	}
	return rv;
}

static bool
file_too_big(const char *path)
{
	struct stat st;

	return stat(path, &st) != 0 || !S_ISREG(st.st_mode)
	    || st.st_size > STATE_MAX_FILE;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The session id of a file name "<id>.json", or false. */
static bool
record_name(const char *name, char *id, size_t len)
{
	size_t n = strlen(name);

	if (n <= 5 || strcmp(name + n - 5, ".json") != 0 || n - 5 >= len)
		return false;
	memcpy(id, name, n - 5);
	id[n - 5] = '\0';
	return util_valid_id(id);
}

static void
set_aside(const char *path, const char *why)
{
	char bad[PATH_MAX + 8];
	int n = snprintf(bad, sizeof(bad), "%s.bad", path);

	if (n < 0 || (size_t)n >= sizeof(bad)) {
		log_err("state record %s %s; left in place (name too long)",
		    path, why);
		return;
	}
	log_err("state record %s %s; kept as %s", path, why, bad);
	rename(path, bad);
}

size_t
state_load_all(const struct state_dir *sd,
    void (*take)(void *arg, struct state_session *r), void *arg)
{
	char path[PATH_MAX + 256], id[HPCXL_ID_MAX + 1];
	struct state_session r;
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int rv;

	if ((d = opendir(sd->sessions)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		snprintf(
		    path, sizeof(path), "%s/%s", sd->sessions, de->d_name);
		if (ends_with(de->d_name, ".json.tmp"))
			unlink(path); /* a spare, or a write cut short */
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".json"))
			continue;
		if (!record_name(de->d_name, id, sizeof(id))) {
			set_aside(path, "is not named <session id>.json");
			continue;
		}
		if (file_too_big(path)) {
			set_aside(path, "is not a small regular file");
			continue;
		}
		rv = load_one(sd, path, id, &r);
		if (rv == HPCXL_ENOTFOUND) {
			log_info(
			    "dropping %s: written before the last boot", path);
			unlink(path);
		} else if (rv != 0)
			set_aside(path, "cannot be parsed");
		else {
			take(arg, &r);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* ---- health ---------------------------------------------------------------
 */

int
state_save_health(const struct state_dir *sd, const char *reason)
{
	if (reason == NULL)
		return remove_file(sd->health);
	return dump_to_file(sd->health,
	    json_pack("{s:s, s:s}", "boot_id", sd->boot_id, "reason", reason));
}

bool
state_load_health(const struct state_dir *sd, char *reason, size_t len)
{
	const char *boot, *text;
	json_error_t jerr;
	json_t *root;
	bool found = false;

	if (file_too_big(sd->health))
		return false;
	if ((root = json_load_file(sd->health, 0, &jerr)) == NULL)
		return false;
	if (json_unpack(root, "{s:s, s:s}", "boot_id", &boot, "reason", &text)
	        == 0
	    && strcmp(boot, sd->boot_id) == 0) {
		snprintf(reason, len, "%s", text);
		found = true;
	}
	json_decref(root);
	return found;
}
