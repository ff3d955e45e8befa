/* The roster: node URLs from --nodes, --nodes-file or $HPCXL_NODES. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
roster_oom(void)
{
	fputs("hpcxl: out of memory\n", stderr);
	return CLI_EXIT_FAIL;
}

/* Appends the len bytes at url (trimmed of blanks; nothing if empty). */
static int
roster_add(struct roster *r, const char *url, size_t len)
{
	char **urls;

	while (len > 0 && isspace((unsigned char)*url)) {
		url++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)url[len - 1]))
		len--;
	if (len == 0)
		return 0;
	if ((urls = realloc(r->urls, (r->n + 1) * sizeof(*urls))) == NULL)
		return roster_oom();
	r->urls = urls;
	if ((r->urls[r->n] = strndup(url, len)) == NULL)
		return roster_oom();
	r->n++;
	return 0;
}

int
roster_add_list(struct roster *r, const char *list)
{
	const char *comma;
	int rv;

	while ((comma = strchr(list, ',')) != NULL) {
		if ((rv = roster_add(r, list, (size_t)(comma - list))) != 0)
			return rv;
		list = comma + 1;
	}
	return roster_add(r, list, strlen(list));
}

/* A line is a URL, a blank line or a '#' comment. */
static int
roster_add_line(struct roster *r, const char *line)
{
	size_t len = strcspn(line, "#\r\n");

	return roster_add(r, line, len);
}

int
roster_add_file(struct roster *r, const char *path)
{
	size_t cap = 0;
	char *line = NULL;
	FILE *f;
	int rv = 0;

	if ((f = fopen(path, "re")) == NULL)
		return cli_usage_error(
		    "cannot read nodes file '%s': %s", path, strerror(errno));
	errno = 0;
	while (rv == 0 && getline(&line, &cap, f) >= 0)
		rv = roster_add_line(r, line);
	if (rv == 0 && ferror(f))
		rv = cli_usage_error(
		    "cannot read nodes file '%s': %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rv;
}

int
roster_check(const struct roster *r)
{
	size_t i, j;

	if (r->n == 0)
		return cli_usage_error(
		    "no nodes: use --nodes, --nodes-file or "
		    "set HPCXL_NODES");
	for (i = 1; i < r->n; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(r->urls[i], r->urls[j]) == 0)
				return cli_usage_error("node '%s' is listed "
				                       "twice",
				    r->urls[i]);
		}
	}
	return 0;
}

void
roster_free(struct roster *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->urls[i]);
	free(r->urls);
	r->urls = NULL;
	r->n = 0;
}
