/*
 * The client's configuration: the URL template that turns a host of a host
 * list into an agent URL, and the files of mutual TLS (tls_cert, tls_key,
 * tls_ca). This file is the one place that knows where they come from; for
 * each setting the first found wins:
 *
 *   1. the command line (--tls-cert, --tls-key, --tls-ca; args.c)
 *   2. the environment: $HPCXL_URL_TEMPLATE, $HPCXL_TLS_CERT,
 *      $HPCXL_TLS_KEY, $HPCXL_TLS_CA
 *   3. the [client] section of the client config files: $HPCXL_CLIENT_CONFIG
 *      alone when it is set (it must be readable); else the user's file,
 *      $XDG_CONFIG_HOME/hpcxl/client.conf (default ~/.config/...), over the
 *      system's, /etc/hpcxl/client.conf, key by key; each when it exists
 *   4. the defaults: tls+tcp://%h:7420, no TLS files
 *
 * A relative file name in a config file is taken from that file's
 * directory; from the environment or the command line, from the current
 * one. Config files are read whenever there are some, even when the
 * environment overrides all they say, so that a broken file is noticed at
 * once and not the day the variable is unset.
 */
#include "cli.h"

#include "hpcxl/common/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A client config file is a few lines: anything larger is not one. */
#define CONF_FILE_MAX 65536
/* Debian's inih cuts lines at INI_MAX_LINE (200) bytes and reads the rest
 * as a new line: longer lines are refused before it sees them. */
#define CONF_LINE_MAX 198

/* The settings that name a file, with their variables. */
static const struct conf_file_key {
	const char *key; /* in [client] */
	const char *env;
	size_t offset; /* of its slot in struct clientconf */
} conf_file_keys[] = {
	{ "tls_cert", "HPCXL_TLS_CERT",
	    offsetof(struct clientconf, tls_cert) },
	{ "tls_key", "HPCXL_TLS_KEY", offsetof(struct clientconf, tls_key) },
	{ "tls_ca", "HPCXL_TLS_CA", offsetof(struct clientconf, tls_ca) },
};

#define CONF_NFILE_KEYS (sizeof(conf_file_keys) / sizeof(conf_file_keys[0]))
/* Bits of conf_parse.seen: one per file key, then the template's. */
#define CONF_SEEN_TEMPLATE (1u << CONF_NFILE_KEYS)

/* A config file being parsed. */
struct conf_parse {
	struct clientconf *cc;
	const char *path;
	const char *next; /* the text not read yet */
	int lineno; /* of the line inih is working on */
	int bad_line; /* of the first error found here, or 0 */
	char why[CLIENTCONF_PATH_MAX + 128]; /* what is wrong with it */
	unsigned seen; /* keys set in this file */
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

static char *
conf_slot(struct clientconf *cc, const struct conf_file_key *k)
{
	return (char *)cc + k->offset;
}

/* The file key named key, or NULL. */
static const struct conf_file_key *
conf_file_key_find(const char *key)
{
	for (size_t i = 0; i < CONF_NFILE_KEYS; i++) {
		if (strcmp(conf_file_keys[i].key, key) == 0)
			return &conf_file_keys[i];
	}
	return NULL;
}

/* A file named in the config file x is reading: relative to its folder. */
static void
conf_take_file(
    struct conf_parse *x, const struct conf_file_key *k, const char *value)
{
	const char *slash = strrchr(x->path, '/');
	int dir_len = value[0] != '/' && slash != NULL
	    ? (int)(slash - x->path + 1)
	    : 0;
	int len;

	if (value[0] == '\0') {
		conf_fail(x, "%s: no file given", k->key);
		return;
	}
	len = snprintf(conf_slot(x->cc, k), CLIENTCONF_PATH_MAX, "%.*s%s",
	    dir_len, x->path, value);
	if (len < 0 || len >= CLIENTCONF_PATH_MAX)
		conf_fail(x, "%s: file name longer than %d bytes", k->key,
		    CLIENTCONF_PATH_MAX - 1);
}

static void
conf_take_template(struct conf_parse *x, const char *value)
{
	char why[128];

	if (template_set(x->cc, value, why, sizeof(why)) != 0)
		conf_fail(x, "url_template '%.*s': %s",
		    CLIENTCONF_TEMPLATE_MAX, value, why);
}

static int
conf_on_key(
    void *user, const char *section, const char *key, const char *value)
{
	struct conf_parse *x = user;
	const struct conf_file_key *k = conf_file_key_find(key);
	unsigned bit
	    = k != NULL ? 1u << (k - conf_file_keys) : CONF_SEEN_TEMPLATE;

	if (strcmp(section, "client") != 0
	    || (k == NULL && strcmp(key, "url_template") != 0))
		conf_fail(x, "unknown key '%s' in %s%s%s", key,
		    section[0] != '\0' ? "[" : "no section", section,
		    section[0] != '\0' ? "]" : "");
	else if (x->seen & bit)
		conf_fail(x, "%s is set twice", key);
	else if (k != NULL)
		conf_take_file(x, k, value);
	else
		conf_take_template(x, value);
	x->seen |= bit;
	return x->bad_line == 0;
}

/* Parses the NUL-terminated text of path. */
static int
conf_parse_text(struct clientconf *cc, const char *path, const char *text)
{
	struct conf_parse x = { .cc = cc, .path = path, .next = text };
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

/* The user's config file: $XDG_CONFIG_HOME/hpcxl/client.conf, else
 * ~/.config/hpcxl/client.conf; -1 when there is no home to look in. */
static int
conf_user_path(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	/* The XDG rule: a relative $XDG_CONFIG_HOME is ignored. */
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(out, len, "%s/hpcxl/client.conf", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(out, len, "%s/.config/hpcxl/client.conf", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* $HPCXL_CLIENT_CONFIG alone, else the system's file, then the user's. */
static int
conf_load_files(struct clientconf *cc)
{
	const char *path = getenv("HPCXL_CLIENT_CONFIG");
	char user[CLIENTCONF_PATH_MAX];
	int rv;

	if (path != NULL)
		return conf_load_file(cc, path, true);
	rv = conf_load_file(cc, CLIENTCONF_SYSTEM_PATH, false);
	if (rv == 0 && conf_user_path(user, sizeof(user)) == 0)
		rv = conf_load_file(cc, user, false);
	return rv;
}

static int
conf_take_env(struct clientconf *cc)
{
	const char *env_template = getenv("HPCXL_URL_TEMPLATE");
	const char *v;
	char why[128];
	int rv = 0;

	if (env_template != NULL
	    && template_set(cc, env_template, why, sizeof(why)) != 0)
		return cli_usage_error("HPCXL_URL_TEMPLATE '%.*s': %s",
		    CLIENTCONF_TEMPLATE_MAX, env_template, why);
	for (size_t i = 0; i < CONF_NFILE_KEYS && rv == 0; i++) {
		if ((v = getenv(conf_file_keys[i].env)) != NULL)
			rv = clientconf_set_file(
			    conf_slot(cc, &conf_file_keys[i]),
			    conf_file_keys[i].env, v);
	}
	return rv;
}

int
clientconf_load(struct clientconf *cc)
{
	int rv;

	memset(cc, 0, sizeof(*cc));
	memcpy(cc->url_template, CLIENTCONF_DEFAULT_TEMPLATE,
	    sizeof(CLIENTCONF_DEFAULT_TEMPLATE));
	if ((rv = conf_load_files(cc)) != 0)
		return rv;
	return conf_take_env(cc);
}

int
clientconf_set_file(char *slot, const char *origin, const char *value)
{
	if (value[0] == '\0')
		return cli_usage_error("%s: no file given", origin);
	if (strlen(value) >= CLIENTCONF_PATH_MAX)
		return cli_usage_error("%s: file name longer than %d bytes",
		    origin, CLIENTCONF_PATH_MAX - 1);
	memcpy(slot, value, strlen(value) + 1);
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
