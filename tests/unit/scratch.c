#include "scratch.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
scratch_dir_make(char *dir, size_t len, const char *name)
{
	const char *base = getenv("TMPDIR");

	snprintf(dir, len, "%s/hpcxl-test-%s-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp", name);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s failed", dir);
}

void
scratch_dir_remove(const char *dir)
{
	char path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0
		    || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}
