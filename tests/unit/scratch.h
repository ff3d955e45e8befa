/*
 * Private scratch directories for unit tests: made with mkdtemp under
 * $TMPDIR (or /tmp), removed with every file in them afterwards.
 */
#ifndef HPCXL_TESTS_SCRATCH_H
#define HPCXL_TESTS_SCRATCH_H

#include <stddef.h>

/* Makes <tmp>/hpcxl-test-<name>-XXXXXX into dir (asserts it worked). */
void scratch_dir_make(char *dir, size_t len, const char *name);

/* Removes dir and the files in it (not subdirectories); best effort. */
void scratch_dir_remove(const char *dir);

#endif
