/* Log folder retention (logsweep.h says the rule). */
#include "logsweep.h"

#include "hpcxl/common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MAX_PERIOD_MS (600 * 1000)
#define SWEEP_MIN_PERIOD_MS 200

void
logsweep_mark_closed(const char *log_root, const char *id)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", log_root, id);
	/* NULL times: now. A folder that was never made is no error. */
	if (utimensat(AT_FDCWD, dir, NULL, 0) != 0 && errno != ENOENT)
		log_warn("cannot mark %s closed: %s", dir, strerror(errno));
}

int64_t
logsweep_period_ms(int64_t retention_s)
{
	int64_t half = retention_s * 500;

	if (half > SWEEP_MAX_PERIOD_MS)
		return SWEEP_MAX_PERIOD_MS;
	return half < SWEEP_MIN_PERIOD_MS ? SWEEP_MIN_PERIOD_MS : half;
}

/* nftw() callback, deepest first; FTW_PHYS: a link is removed, never
 * followed (a worker may have left one pointing anywhere). */
static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0)
		log_warn("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

static bool
expired(const char *dir, time_t now, int64_t retention_s)
{
	struct stat st;

	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)
	    && (int64_t)(now - st.st_mtime) >= retention_s;
}

int
logsweep_run(const char *log_root, int64_t retention_s,
    logsweep_in_use_fn in_use, void *arg)
{
	char dir[PATH_MAX];
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (retention_s <= 0 || (d = opendir(log_root)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || in_use(arg, de->d_name))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", log_root, de->d_name);
		if (!expired(dir, now, retention_s))
			continue;
		nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
		log_info("removed the logs of session %s (closed over %lld s "
		         "ago)",
		    de->d_name, (long long)retention_s);
		n++;
	}
	closedir(d);
	return n;
}
