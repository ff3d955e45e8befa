/*
 * The client's configuration: the URL template that turns a host of a host
 * list into an agent URL. This file is the one place that knows where it
 * comes from, first found wins:
 *
 *   1. $HPCXL_URL_TEMPLATE
 *   2. url_template in the [client] section of the client config file:
 *      $HPCXL_CLIENT_CONFIG (which must be readable), else
 *      /etc/hpcxl/client.conf when it exists
 *   3. tcp://%h:7420
 *
 * The config file is read whenever there is one, even when the environment
 * overrides all it says, so that a broken file is noticed at once and not
 * the day the variable is unset.
 */
#include "cli.h"

#include "hpcxl/common/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A client config file is a few lines: anything larger is not one. */
#define CONF_FILE_MAX 65536
/* Debian's inih cuts lines at INI_MAX_LINE (200) bytes and reads the rest
 * as a new line: longer lines are refused before it sees them. */
#define CONF_LINE_MAX 198

/* A config file being parsed. */
struct conf_parse {
	struct clientconf *cc;
	const char *next; /* the text not read yet */
	int lineno; /* of the line inih is working on */
	int bad_line; /* of the first error found here, or 0 */
	char why[CLIENTCONF_TEMPLATE_MAX + 128]; /* what is wrong with it */
	bool have_template;
};

/* Checks t as a URL template; says why it is not one in why. */
static int
template_check(const char *t, char *why, size_t len)
{
	bool has_host = false;
	const char *p;

	if (strlen(t) > CLIENTCONF_TEMPLATE_MAX) {
		snprintf(
		    why, len, "longer than %d bytes", CLIENTCONF_TEMPLATE_MAX);
		return -1;
	}
	for (p = t; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] != 'h' && p[1] != '%') {
			snprintf(why, len,
			    "'%%' must be followed by h (the host) or %% (a "
			    "'%%')");
			return -1;
		}
		p++;
		if (*p == 'h')
			has_host = true;
	}
	if (!has_host) {
		snprintf(why, len, "no %%h where the host name goes");
		return -1;
	}
	return 0;
}

static int
template_set(struct clientconf *cc, const char *t, char *why, size_t len)
{
	if (template_check(t, why, len) != 0)
		return -1;
	memcpy(cc->url_template, t, strlen(t) + 1);
	return 0;
}

static void conf_fail(struct conf_parse *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Remembers the first error and the line it is on. */
static void
conf_fail(struct conf_parse *x, const char *fmt, ...)
{
	va_list ap;

	if (x->bad_line != 0)
		return;
	x->bad_line = x->lineno;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
}

/* inih's reader (like fgets): hands over one line of the text, checked,
 * and counts lines so that the key handler knows where it is. */
static char *
conf_read_line(char *str, int num, void *stream)
{
	struct conf_parse *x = stream;
	const char *nl = strchr(x->next, '\n');
	size_t len = nl != NULL ? (size_t)(nl - x->next) + 1 : strlen(x->next);

	if (len == 0 || x->bad_line != 0)
		return NULL;
	x->lineno++;
	if (len - (nl != NULL) > CONF_LINE_MAX || len >= (size_t)num) {
		conf_fail(x, "line longer than %d bytes", CONF_LINE_MAX);
		return NULL;
	}
	if (config_line_continues(x->next)) {
		conf_fail(x,
		    "indented line: continuation lines are not "
		    "supported");
		return NULL;
	}
	memcpy(str, x->next, len);
	str[len] = '\0';
	x->next += len;
	return str;
}

static int
conf_on_key(
    void *user, const char *section, const char *key, const char *value)
{
	struct conf_parse *x = user;
	char why[128];

	if (strcmp(section, "client") != 0 || strcmp(key, "url_template") != 0)
		conf_fail(x, "unknown key '%s' in %s%s%s", key,
		    section[0] != '\0' ? "[" : "no section", section,
		    section[0] != '\0' ? "]" : "");
	else if (x->have_template)
		conf_fail(x, "url_template is set twice");
	else if (template_set(x->cc, value, why, sizeof(why)) != 0)
		conf_fail(x, "url_template '%.*s': %s",
		    CLIENTCONF_TEMPLATE_MAX, value, why);
	else
		x->have_template = true;
	return x->bad_line == 0;
}

/* Parses the NUL-terminated text of path. */
static int
conf_parse_text(struct clientconf *cc, const char *path, const char *text)
{
	struct conf_parse x = { .cc = cc, .next = text };
	int line = ini_parse_stream(conf_read_line, &x, conf_on_key, &x);

	/* inih's own (syntax) errors call no handler: the first error is
	 * whichever line comes first. */
	if (line > 0 && (x.bad_line == 0 || line < x.bad_line))
		return cli_usage_error("%s:%d: syntax error (expected "
		                       "[section] or key = value)",
		    path, line);
	if (x.bad_line != 0)
		return cli_usage_error("%s:%d: %s", path, x.bad_line, x.why);
	if (line < 0) {
		fputs("hpcxl: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static int
conf_unreadable(const char *path, int err)
{
	return cli_usage_error(
	    "cannot read client config '%s': %s", path, strerror(err));
}

/* Reads and parses path; a missing file is fine unless required. */
static int
conf_load_file(struct clientconf *cc, const char *path, bool required)
{
	char *text = NULL;
	size_t len;
	FILE *f;
	int rv;

	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT && !required
		    ? 0
		    : conf_unreadable(path, errno);
	/* One byte more than allowed tells a file that is too long. */
	if ((text = malloc(CONF_FILE_MAX + 2)) == NULL) {
		fputs("hpcxl: out of memory\n", stderr);
		rv = CLI_EXIT_FAIL;
		goto out;
	}
	len = fread(text, 1, CONF_FILE_MAX + 1, f);
	if (ferror(f))
		rv = conf_unreadable(path, errno);
	else if (len > CONF_FILE_MAX)
		rv = cli_usage_error("client config '%s' is larger than %d "
		                     "bytes",
		    path, CONF_FILE_MAX);
	else if (memchr(text, '\0', len) != NULL)
		rv = cli_usage_error(
		    "client config '%s' contains a NUL byte", path);
	else {
		text[len] = '\0';
		rv = conf_parse_text(cc, path, text);
	}
out:
	free(text);
	fclose(f);
	return rv;
}

int
clientconf_load(struct clientconf *cc)
{
	const char *path = getenv("HPCXL_CLIENT_CONFIG");
	const char *env_template = getenv("HPCXL_URL_TEMPLATE");
	char why[128];
	int rv;

	memcpy(cc->url_template, CLIENTCONF_DEFAULT_TEMPLATE,
	    sizeof(CLIENTCONF_DEFAULT_TEMPLATE));
	if (path != NULL)
		rv = conf_load_file(cc, path, true);
	else
		rv = conf_load_file(cc, CLIENTCONF_DEFAULT_PATH, false);
	if (rv != 0 || env_template == NULL)
		return rv;
	if (template_set(cc, env_template, why, sizeof(why)) != 0)
		return cli_usage_error("HPCXL_URL_TEMPLATE '%.*s': %s",
		    CLIENTCONF_TEMPLATE_MAX, env_template, why);
	return 0;
}

int
clientconf_url(
    const struct clientconf *cc, const char *host, char *out, size_t len)
{
	size_t k = 0, n;
	const char *p, *piece;

	for (p = cc->url_template; *p != '\0'; p++) {
		piece = p;
		n = 1;
		if (*p == '%' && *++p == 'h') {
			piece = host;
			n = strlen(host);
		}
		/* else "%%": the '%' at piece */
		if (k + n >= len)
			return -1;
		memcpy(out + k, piece, n);
		k += n;
	}
	out[k] = '\0';
	return 0;
}
