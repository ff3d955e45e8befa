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

struct roster {
	char **urls; /* owned */
	size_t n;
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
};

/*
 * Parses argv into *a (zero it first; release with cli_args_free()).
 * Returns CLI_EXIT_OK to go on, or the exit status to leave with: usage
 * errors are reported on stderr, --help prints the usage on stdout and
 * returns -1.
 */
int cli_parse(int argc, char **argv, struct cli_args *a);
void cli_args_free(struct cli_args *a);
void cli_usage(FILE *f);
/* Prints "hpcxl: <message>" on stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* The command's name as typed, e.g. "close-session". */
const char *cli_cmd_name(enum cli_cmd cmd);

/*
 * Roster building. Each returns 0, or prints what is wrong on stderr and
 * returns CLI_EXIT_USAGE (CLI_EXIT_FAIL when out of memory).
 */
/* Appends the comma-separated URLs of list (empty items are skipped). */
int roster_add_list(struct roster *r, const char *list);
/* Appends one URL per line of path; '#' comments and blank lines are
 * allowed. */
int roster_add_file(struct roster *r, const char *path);
/* Refuses an empty roster and duplicates. */
int roster_check(const struct roster *r);
void roster_free(struct roster *r);

/* Rows whose node reported an unhealthy mark. */
size_t output_unhealthy_count(const struct hpcxl_report *r);
/* Prints the report as one JSON object (--json). Returns 0 or -1. */
int output_json(const struct cli_args *a, const struct hpcxl_report *r);
/* Prints the report as aligned tables. Returns 0 or -1. */
int output_table(const struct cli_args *a, const struct hpcxl_report *r);

#endif
