/* The hpcxl command line: what the modules of cli/ share. */
#ifndef HPCXL_CLI_H
#define HPCXL_CLI_H

#include "hpcxl/hpcxl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses. */
enum {
	CLI_EXIT_OK = 0, /* every node succeeded */
	CLI_EXIT_FAIL = 1, /* some node did not succeed or is unhealthy, or
	                      the call failed */
	CLI_EXIT_USAGE = 2, /* usage or configuration error */
};

enum cli_cmd {
	CLI_OPEN,
	CLI_CLOSE,
	CLI_STATUS,
	CLI_PING,
	CLI_RENEW,
	CLI_CLEAR,
};

/* Default --timeout of status, ping, renew-session and clear-unhealthy:
 * they do not wait for processes. */
#define CLI_QUERY_TIMEOUT_MS 5000
/* "s-" and 12 hex digits: 48 random bits. */
#define CLI_SESSION_LEN (2 + 12)

/* Most nodes in a roster. */
#define CLI_ROSTER_MAX 65536
/* Longest node URL, in bytes. */
#define CLI_URL_MAX 1024

/* The nodes to talk to, in the order given. */
struct roster {
	struct hpcxl_node *nodes; /* name and url of nodes[i] point into
	                             text[i] */
	char **text; /* owned: "NAME\0URL\0" of each node */
	size_t n;
	size_t cap;
};

/* The client configuration (clientconf.c). */
#define CLIENTCONF_SYSTEM_PATH "/etc/hpcxl/client.conf"
/* Agents listen on TLS off loopback (tcp:// needs their --insecure). */
#define CLIENTCONF_DEFAULT_TEMPLATE "tls+tcp://%h:7420"
#define CLIENTCONF_TEMPLATE_MAX 256
#define CLIENTCONF_PATH_MAX 4096

struct clientconf {
	/* How a host of a host list becomes an agent URL: %h stands for the
	 * host, %% for a '%'. */
	char url_template[CLIENTCONF_TEMPLATE_MAX + 1];
	/* Mutual TLS for tls+tcp:// nodes (hpcxl_client_opts): PEM files,
	 * "" when not given. */
	char tls_cert[CLIENTCONF_PATH_MAX];
	char tls_key[CLIENTCONF_PATH_MAX];
	char tls_ca[CLIENTCONF_PATH_MAX];
};

/* A parsed command line. Strings point into argv unless said otherwise. */
struct cli_args {
	enum cli_cmd cmd;
	bool json;
	bool verbose;
	struct roster roster;
	const char *session; /* NULL: none (status of all, ping) */
	bool session_generated;
	char session_buf[CLI_SESSION_LEN + 1]; /* a generated session */
	struct hpcxl_open_params open;
	int timeout_ms;
	struct clientconf conf; /* the command line's TLS files included */
};

/*
 * Parses argv into *a (zero it first; release with cli_args_free()).
 * Returns CLI_EXIT_OK to go on, or the exit status to leave with: usage
 * errors are reported on stderr, --help prints the usage on stdout (a
 * command's own after that command) and --version the version; both
 * return -1.
 */
int cli_parse(int argc, char **argv, struct cli_args *a);
void cli_args_free(struct cli_args *a);
void cli_usage(FILE *f);
/* The help of one command: its synopsis, what it does, its options. */
void cli_usage_cmd(FILE *f, enum cli_cmd cmd);
/* Prints "hpcxl: <message>" on stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* The command's name as typed, e.g. "close-session". */
const char *cli_cmd_name(enum cli_cmd cmd);

/*
 * The client configuration and the roster. Each returns 0, or prints what
 * is wrong on stderr and returns CLI_EXIT_USAGE (CLI_EXIT_FAIL when out of
 * memory).
 */
/* Fills *cc from the environment, the client config files and defaults,
 * in that order of precedence (see clientconf.c). */
int clientconf_load(struct clientconf *cc);
/* Sets a file setting (slot: one of cc's tls_* arrays) from origin (e.g.
 * "--tls-ca", for messages), which wins over what cc held. */
int clientconf_set_file(char *slot, const char *origin, const char *value);
/* Writes cc's URL template with host in place of %h into out (len bytes);
 * returns -1 when it does not fit. */
int clientconf_url(
    const struct clientconf *cc, const char *host, char *out, size_t len);

/*
 * Appends the nodes of a comma-separated list that came from origin (e.g.
 * "--nodes", for messages): URLs (items with "://"), each named by itself,
 * and host lists (hostlist.h), whose hosts become nodes named by the host
 * with cc's URL template as their URL. Empty items are skipped.
 */
int roster_add_list(struct roster *r, const char *list, const char *origin,
    const struct clientconf *cc);
/* Appends one node per line of path: "NAME URL", or "URL" named by itself;
 * '#' comments and blank lines are allowed. */
int roster_add_file(struct roster *r, const char *path);
/* Refuses an empty roster, and names or URLs listed twice. */
int roster_check(const struct roster *r);
void roster_free(struct roster *r);

/* Rows whose node reported an unhealthy mark. */
size_t output_unhealthy_count(const struct hpcxl_report *r);
/* Prints the report as one JSON object (--json). Returns 0 or -1. */
int output_json(const struct cli_args *a, const struct hpcxl_report *r);
/* Prints the report as aligned tables. Returns 0 or -1. */
int output_table(const struct cli_args *a, const struct hpcxl_report *r);

#endif
