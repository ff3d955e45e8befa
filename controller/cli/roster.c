/*
 * The roster: named nodes from --nodes, --nodes-file or $HPCXL_NODES. Every
 * node has a name (its report row carries it) and a URL; both must be
 * unique, and there are at most CLI_ROSTER_MAX nodes.
 */
#include "cli.h"
#include "hostlist.h"

#include "hpcxl/common/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Longest line of a nodes file: a name, a URL and a comment fit. */
#define ROSTER_LINE_MAX 4096
#define BLANKS " \t\r\n\v\f"

/* Expanding a host list into r. */
struct host_ctx {
	struct roster *r;
	const struct clientconf *cc;
	const char *origin;
	int status; /* the exit status that stopped the expansion */
};

static int
roster_oom(void)
{
	fputs("hpcxl: out of memory\n", stderr);
	return CLI_EXIT_FAIL;
}

static int
roster_too_many(const char *where)
{
	return cli_usage_error(
	    "%s: more than %d nodes in the roster", where, CLI_ROSTER_MAX);
}

static int
roster_grow(struct roster *r)
{
	size_t cap = r->cap == 0 ? 16 : r->cap * 2;
	struct hpcxl_node *nodes;
	char **text;

	if ((nodes = realloc(r->nodes, cap * sizeof(*nodes))) == NULL)
		return -1;
	r->nodes = nodes;
	if ((text = realloc(r->text, cap * sizeof(*text))) == NULL)
		return -1;
	r->text = text;
	r->cap = cap;
	return 0;
}

/* Appends the node name at url; where (e.g. "nodes.txt:3") is for
 * messages. */
static int
roster_add(
    struct roster *r, const char *name, const char *url, const char *where)
{
	size_t name_len = strlen(name), url_len = strlen(url);
	char *text;

	if (r->n == CLI_ROSTER_MAX)
		return roster_too_many(where);
	if (url_len > CLI_URL_MAX)
		return cli_usage_error("%s: URL '%.64s...' is longer than %d "
		                       "bytes",
		    where, url, CLI_URL_MAX);
	if (r->n == r->cap && roster_grow(r) != 0)
		return roster_oom();
	if ((text = malloc(name_len + url_len + 2)) == NULL)
		return roster_oom();
	memcpy(text, name, name_len + 1);
	memcpy(text + name_len + 1, url, url_len + 1);
	r->text[r->n] = text;
	r->nodes[r->n].name = text;
	r->nodes[r->n].url = text + name_len + 1;
	r->n++;
	return 0;
}

/* ---- lists: --nodes, $HPCXL_NODES -------------------------------------- */

/* hostlist_expand()'s callback: one host becomes one node. */
static int
roster_add_host(const char *host, void *arg)
{
	struct host_ctx *x = arg;
	char url[CLI_URL_MAX + 1];

	if (clientconf_url(x->cc, host, url, sizeof(url)) != 0)
		x->status = cli_usage_error("%s: the URL of host '%s' is "
		                            "longer than %d bytes",
		    x->origin, host, CLI_URL_MAX);
	else
		x->status = roster_add(x->r, host, url, x->origin);
	/* Not a status: hostlist_expand() returns it, and its own errors
	 * are HPCXL_* values that overlap the exit statuses. */
	return x->status != 0 ? -1 : 0;
}

/* Trims the blanks around s in place. */
static char *
trim(char *s)
{
	size_t len;

	s += strspn(s, BLANKS);
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* One item of a list: a URL, or a host list. */
static int
roster_add_item(struct host_ctx *x, char *item)
{
	char err[HOSTLIST_ERR_MAX];
	int rv;

	item = trim(item);
	if (item[0] == '\0')
		return 0;
	if (strstr(item, "://") != NULL)
		return roster_add(x->r, item, item, x->origin);
	rv = hostlist_expand(item, CLI_ROSTER_MAX - x->r->n, roster_add_host,
	    x, err, sizeof(err));
	if (rv == HPCXL_ETOOBIG)
		return cli_usage_error(
		    "%s: host list '%.80s%s' makes more than "
		    "%d nodes in the roster",
		    x->origin, item, strlen(item) > 80 ? "..." : "",
		    CLI_ROSTER_MAX);
	if (rv == -1)
		return x->status;
	return rv != 0 ? cli_usage_error("%s: %s", x->origin, err) : 0;
}

int
roster_add_list(struct roster *r, const char *list, const char *origin,
    const struct clientconf *cc)
{
	struct host_ctx x = { .r = r, .cc = cc, .origin = origin };
	size_t len;
	char *item;
	int rv = 0;

	while (rv == 0 && *list != '\0') {
		/* Commas in brackets belong to a host list's ranges. */
		len = hostlist_item_len(list);
		if ((item = strndup(list, len)) == NULL)
			return roster_oom();
		rv = roster_add_item(&x, item);
		free(item);
		list += list[len] == ',' ? len + 1 : len;
	}
	return rv;
}

/* ---- nodes files ------------------------------------------------------- */

/* 1 to HPCXL_ID_MAX of [A-Za-z0-9._-], as a host of a host list: names
 * end up in the messages and JSON that scripts read, where blanks and
 * quotes are trouble. */
static bool
roster_valid_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= HPCXL_ID_MAX
	    && strspn(s,
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	           "0123456789._-")
	    == len;
}

/* A line is "NAME URL", "URL", blank or a '#' comment; a comment may also
 * end a line. */
static int
roster_add_line(struct roster *r, char *line, const char *where)
{
	char *field[3], *tok, *save = NULL;
	size_t n = 0;

	line[strcspn(line, "#")] = '\0';
	for (tok = strtok_r(line, BLANKS, &save); tok != NULL && n < 3;
	     tok = strtok_r(NULL, BLANKS, &save))
		field[n++] = tok;
	if (n == 0)
		return 0;
	if (n == 1)
		return roster_add(r, field[0], field[0], where);
	if (n == 3)
		return cli_usage_error(
		    "%s: expected 'NAME URL' or 'URL', found more", where);
	if (!roster_valid_name(field[0]))
		return cli_usage_error("%s: invalid node name '%.*s': use 1 "
		                       "to %d of A-Z a-z 0-9 . _ -",
		    where, 2 * HPCXL_ID_MAX, field[0], HPCXL_ID_MAX);
	return roster_add(r, field[0], field[1], where);
}

int
roster_add_file(struct roster *r, const char *path)
{
	char where[PATH_MAX + 32];
	size_t cap = 0, lineno = 0;
	char *line = NULL;
	ssize_t len;
	FILE *f;
	int rv = 0;

	if ((f = fopen(path, "re")) == NULL)
		return cli_usage_error(
		    "cannot read nodes file '%s': %s", path, strerror(errno));
	errno = 0;
	while (rv == 0 && (len = getline(&line, &cap, f)) >= 0) {
		snprintf(where, sizeof(where), "%s:%zu", path, ++lineno);
		if (len > ROSTER_LINE_MAX)
			rv = cli_usage_error("%s: line longer than %d bytes",
			    where, ROSTER_LINE_MAX);
		else if (strlen(line) != (size_t)len)
			rv = cli_usage_error("%s: NUL byte in line", where);
		else
			rv = roster_add_line(r, line, where);
	}
	if (rv == 0 && ferror(f))
		rv = cli_usage_error(
		    "cannot read nodes file '%s': %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rv;
}

/* ---- checks ------------------------------------------------------------ */

static int
by_name(const void *a, const void *b)
{
	const struct hpcxl_node *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int
by_url(const void *a, const void *b)
{
	const struct hpcxl_node *const *x = a, *const *y = b;

	return strcmp((*x)->url, (*y)->url);
}

/*
 * Finds two nodes that cmp finds equal, in roster order, by sorting
 * pointers to the nodes into sorted (r->n of them): a roster of 65,536
 * nodes cannot afford comparing every pair. Returns false when there are
 * none.
 */
static bool
roster_find_twins(const struct roster *r, const struct hpcxl_node **sorted,
    int (*cmp)(const void *, const void *), const struct hpcxl_node **first,
    const struct hpcxl_node **second)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		sorted[i] = &r->nodes[i];
	qsort(sorted, r->n, sizeof(*sorted), cmp);
	for (i = 1; i < r->n; i++) {
		if (cmp(&sorted[i - 1], &sorted[i]) == 0) {
			*first = sorted[i - 1] < sorted[i] ? sorted[i - 1]
			                                   : sorted[i];
			*second = sorted[i - 1] < sorted[i] ? sorted[i]
			                                    : sorted[i - 1];
			return true;
		}
	}
	return false;
}

int
roster_check(const struct roster *r)
{
	const struct hpcxl_node **sorted, *a, *b;
	int rv = 0;

	if (r->n == 0)
		return cli_usage_error(
		    "no nodes: use --nodes, --nodes-file or "
		    "set HPCXL_NODES");
	if ((sorted = malloc(r->n * sizeof(*sorted))) == NULL)
		return roster_oom();
	if (roster_find_twins(r, sorted, by_name, &a, &b))
		rv = cli_usage_error("node '%s' is listed twice", a->name);
	else if (roster_find_twins(r, sorted, by_url, &a, &b))
		rv = cli_usage_error("nodes '%s' and '%s' have the same URL "
		                     "'%s'",
		    a->name, b->name, a->url);
	free(sorted);
	return rv;
}

void
roster_free(struct roster *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->text[i]);
	free(r->text);
	free(r->nodes);
	memset(r, 0, sizeof(*r));
}
