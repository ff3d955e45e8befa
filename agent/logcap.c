#include "logcap.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes copied per read/write round: the only memory a rotation takes. */
#define LOGCAP_CHUNK (64 * 1024)

/*
 * Copies src from offset 0 to its end into dst, following what the worker
 * appends meanwhile, but at most limit bytes: a worker that writes as fast
 * as we copy must not keep the agent's loop here.
 */
static int
copy_fd(int src, int dst, off_t limit)
{
	char *buf = malloc(LOGCAP_CHUNK);
	off_t off = 0;
	ssize_t n;
	int rv = HPCXL_ENOMEM;

	if (buf == NULL)
		return rv;
	rv = HPCXL_ESYSTEM;
	while (off < limit) {
		n = pread(src, buf,
		    limit - off < LOGCAP_CHUNK ? (size_t)(limit - off)
		                               : LOGCAP_CHUNK,
		    off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (util_write_all(dst, buf, (size_t)n) != 0)
			goto out;
		off += n;
	}
	rv = 0;
out:
	free(buf);
	return rv;
}

/*
 * Writes the content of src (whose fstat is st) into a new
 * "<rotated>.XXXXXX" with src's mode and renames it over rotated.
 */
static int
copy_aside(int src, const struct stat *st, const char *rotated)
{
	char tmp[PATH_MAX];
	int fd, rv, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", rotated)
	    >= (int)sizeof(tmp))
		return HPCXL_EINVAL;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return HPCXL_ESYSTEM;
	rv = copy_fd(src, fd, st->st_size * 2);
	/* mkostemp made it 0600: the copy is as readable as the log. */
	if (rv == 0 && fchmod(fd, st->st_mode & 07777) != 0)
		rv = HPCXL_ESYSTEM;
	if (close(fd) != 0 && rv == 0)
		rv = HPCXL_ESYSTEM;
	if (rv == 0 && rename(tmp, rotated) != 0)
		rv = HPCXL_ESYSTEM;
	if (rv != 0) {
		saved = errno; /* the caller's errno is the failure's */
		unlink(tmp);
		errno = saved;
	}
	return rv;
}

int
logcap_enforce(const char *path, int64_t max_bytes)
{
	char rotated[PATH_MAX];
	struct stat st;
	int fd, rv;

	if (max_bytes <= 0)
		return 0;
	if (snprintf(rotated, sizeof(rotated), "%s.1", path)
	    >= (int)sizeof(rotated))
		return HPCXL_EINVAL;
	/* O_NOFOLLOW: the log directory is ours, a symlink in it is not. */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : HPCXL_ESYSTEM;
	if (fstat(fd, &st) != 0) {
		rv = HPCXL_ESYSTEM;
		goto out;
	}
	rv = 0;
	if (!S_ISREG(st.st_mode) || st.st_size <= max_bytes)
		goto out;
	/* The window of lost lines is from the end of this copy to the
	 * truncation just after it. */
	if ((rv = copy_aside(fd, &st, rotated)) == 0 && ftruncate(fd, 0) != 0)
		rv = HPCXL_ESYSTEM;
out:
	close(fd);
	return rv;
}
