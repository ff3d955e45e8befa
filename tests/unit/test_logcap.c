/*
 * Unit tests of the worker log cap (agent/logcap.c): copytruncate of a file
 * over the cap into "<file>.1", files under the cap left alone, a missing
 * file, and a writer holding the log open with O_APPEND (as a worker does)
 * that goes on writing at the new end.
 *
 * Every test has a private mkdtemp directory, removed afterwards.
 */
#include "logcap.h"

#include "hpcxl/common/err.h"

#include "scratch.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fixture ------------------------------------------------------------ */

static char tmpdir[PATH_MAX];
static char log_path[PATH_MAX + 32];
static char old_path[sizeof(log_path) + 2]; /* log_path + ".1" */

static void
setup(void)
{
	scratch_dir_make(tmpdir, sizeof(tmpdir), "logcap");
	snprintf(log_path, sizeof(log_path), "%s/worker-0.log", tmpdir);
	snprintf(old_path, sizeof(old_path), "%s.1", log_path);
}

static void
teardown(void)
{
	scratch_dir_remove(tmpdir);
}

TestSuite(logcap, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers ------------------------------------------------------------ */

/* Writes len bytes of a position-dependent pattern, so a copy that
 * reorders, drops or repeats a chunk does not match. */
static void
fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (i * 7 + seed + i / 4096) % 26);
}

static void
write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert_geq(fd, 0, "cannot create %s", path);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	cr_assert_eq(close(fd), 0);
}

/* Reads the whole file; *len gets its size. Caller frees. */
static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "cannot open %s", path);
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s missing", path);
	return st.st_size;
}

static void
assert_content(const char *path, const char *want, size_t len)
{
	size_t got_len;
	char *got = read_file(path, &got_len);

	cr_assert_eq(
	    got_len, len, "%s: %zu bytes, want %zu", path, got_len, len);
	cr_assert(memcmp(got, want, len) == 0, "%s: content differs", path);
	free(got);
}

/* Number of entries in tmpdir: a temporary file left behind shows. */
static int
dir_entries(void)
{
	struct dirent *de;
	DIR *d = opendir(tmpdir);
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- tests -------------------------------------------------------------- */

Test(logcap, over_cap_is_copied_to_dot1_and_truncated)
{
	/* Several copy chunks and a partial last one. */
	size_t len = 3 * 64 * 1024 + 123;
	char *data = malloc(len);

	cr_assert_not_null(data);
	fill(data, len, 1);
	write_file(log_path, data, len, 0640);
	cr_assert_eq(logcap_enforce(log_path, 1000), 0);
	cr_assert_eq(file_size(log_path), 0);
	assert_content(old_path, data, len);
	free(data);
}

Test(logcap, rotated_copy_keeps_the_mode)
{
	struct stat st;

	write_file(log_path, "0123456789\n", 11, 0640);
	cr_assert_eq(logcap_enforce(log_path, 10), 0);
	cr_assert_eq(stat(old_path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	/* No temporary file is left: the log and its copy only. */
	cr_assert_eq(dir_entries(), 2);
}

Test(logcap, older_copy_is_replaced)
{
	write_file(old_path, "old generation\n", 15, 0640);
	write_file(log_path, "new generation, longer\n", 23, 0640);
	cr_assert_eq(logcap_enforce(log_path, 16), 0);
	assert_content(old_path, "new generation, longer\n", 23);
	cr_assert_eq(file_size(log_path), 0);
	cr_assert_eq(dir_entries(), 2);
}

Test(logcap, under_cap_is_untouched)
{
	write_file(log_path, "hello\n", 6, 0640);
	cr_assert_eq(logcap_enforce(log_path, 100), 0);
	assert_content(log_path, "hello\n", 6);
	cr_assert_eq(access(old_path, F_OK), -1, "%s was created", old_path);
}

Test(logcap, exactly_at_cap_is_untouched)
{
	write_file(log_path, "0123456789", 10, 0640);
	cr_assert_eq(logcap_enforce(log_path, 10), 0);
	assert_content(log_path, "0123456789", 10);
	cr_assert_eq(access(old_path, F_OK), -1);
}

Test(logcap, zero_cap_means_no_cap)
{
	write_file(log_path, "0123456789", 10, 0640);
	cr_assert_eq(logcap_enforce(log_path, 0), 0);
	cr_assert_eq(logcap_enforce(log_path, -1), 0);
	assert_content(log_path, "0123456789", 10);
	cr_assert_eq(access(old_path, F_OK), -1);
}

Test(logcap, missing_file_is_fine)
{
	cr_assert_eq(logcap_enforce(log_path, 10), 0);
	cr_assert_eq(access(log_path, F_OK), -1, "the log was created");
	cr_assert_eq(access(old_path, F_OK), -1);
}

Test(logcap, symlink_is_refused)
{
	char target[PATH_MAX + 32];

	snprintf(target, sizeof(target), "%s/elsewhere", tmpdir);
	write_file(target, "0123456789", 10, 0640);
	cr_assert_eq(symlink(target, log_path), 0);
	cr_assert_eq(logcap_enforce(log_path, 5), HPCXL_ESYSTEM);
	assert_content(target, "0123456789", 10);
	cr_assert_eq(access(old_path, F_OK), -1);
}

/*
 * The worker's side: stdout is an O_APPEND descriptor opened before the
 * rotation. After the truncation its writes start at offset 0 again, with
 * no hole of zeros where the old content was.
 */
Test(logcap, append_writer_goes_on_at_the_new_end)
{
	char first[4096], *got;
	size_t len;
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);

	cr_assert_geq(fd, 0);
	fill(first, sizeof(first), 2);
	cr_assert_eq(write(fd, first, sizeof(first)), (ssize_t)sizeof(first));
	cr_assert_eq(logcap_enforce(log_path, 1024), 0);
	cr_assert_eq(write(fd, "after\n", 6), 6);
	cr_assert_eq(write(fd, "more\n", 5), 5);
	assert_content(log_path, "after\nmore\n", 11);
	assert_content(old_path, first, sizeof(first));
	/* And the cap applies again once the new file grows past it. */
	cr_assert_eq(logcap_enforce(log_path, 8), 0);
	got = read_file(old_path, &len);
	cr_assert_eq(len, 11);
	cr_assert_str_eq(got, "after\nmore\n");
	free(got);
	cr_assert_eq(write(fd, "x\n", 2), 2);
	assert_content(log_path, "x\n", 2);
	close(fd);
}

Test(logcap, repeated_calls_under_cap_do_nothing)
{
	write_file(log_path, "abc", 3, 0640);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(logcap_enforce(log_path, 3), 0);
	assert_content(log_path, "abc", 3);
	cr_assert_eq(dir_entries(), 1);
}

Test(logcap, too_long_path_is_einval)
{
	char path[PATH_MAX + 8];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(logcap_enforce(path, 1), HPCXL_EINVAL);
}
