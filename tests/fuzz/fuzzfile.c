/*
 * The input as a file, for loaders that take a path. A memfd rather than a
 * temporary file: it needs no directory, and a crash (libFuzzer leaves
 * through _exit or abort, skipping atexit) leaves nothing on disk.
 */
#include "fuzz.h"

#include "hpcxl/common/util.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static int file_fd = -1;
static char file_path[64];

const char *
fuzz_file_path(void)
{
	if (file_fd >= 0)
		return file_path;
	file_fd = memfd_create("hpcxl-fuzz-input", MFD_CLOEXEC);
	fuzz_require(file_fd >= 0, "memfd_create failed");
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	/* Opening the path opens the memfd anew, at offset 0: needs /proc. */
	fuzz_require(access(file_path, R_OK) == 0,
	    "cannot open /proc/self/fd/N (is /proc mounted?)");
	return file_path;
}

void
fuzz_file_set(const uint8_t *data, size_t size)
{
	fuzz_file_path();
	/* write() goes on at the fd's offset: back to 0 with the truncate,
	 * or the last input's length would be a hole of NUL bytes. */
	fuzz_require(ftruncate(file_fd, 0) == 0
	        && lseek(file_fd, 0, SEEK_SET) == 0
	        && util_write_all(file_fd, data, size) == 0,
	    "cannot write the input to the memfd");
}
