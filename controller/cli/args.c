/*
 * Command-line parsing. One getopt_long pass takes every option wherever it
 * stands (before or after the command), so "hpcxl ping --json" and
 * "hpcxl --json ping" both work; then the options are checked against what
 * the command accepts, and converted.
 */
#include "cli.h"

#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Long-only options get values above any character. */
enum cli_opt {
	OPT_NODES = 256,
	OPT_NODES_FILE,
	OPT_JSON,
	OPT_PROFILE,
	OPT_WORKERS,
	OPT_PER_CORE,
	OPT_WORKBOOK,
	OPT_SESSION,
	OPT_TIMEOUT,
	OPT_LEASE,
	OPT_MIN_NODES,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_VERSION,
	OPT_END,
};

#define OPT_BIT(o) (1u << ((o)-OPT_NODES))
#define OPT_GLOBAL                                                            \
	(OPT_BIT(OPT_NODES) | OPT_BIT(OPT_NODES_FILE) | OPT_BIT(OPT_JSON)     \
	    | OPT_BIT(OPT_TLS_CERT) | OPT_BIT(OPT_TLS_KEY)                    \
	    | OPT_BIT(OPT_TLS_CA))

static const struct option cli_options[] = {
	{ "nodes", required_argument, NULL, OPT_NODES },
	{ "nodes-file", required_argument, NULL, OPT_NODES_FILE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "per-core", no_argument, NULL, OPT_PER_CORE },
	{ "workbook", required_argument, NULL, OPT_WORKBOOK },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "lease", required_argument, NULL, OPT_LEASE },
	{ "min-nodes", required_argument, NULL, OPT_MIN_NODES },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	const char *name;
	unsigned options; /* OPT_BITs it accepts besides the global ones */
	size_t max_operands;
} cli_cmds[] = {
	[CLI_OPEN] = { "open-session",
	    OPT_BIT(OPT_PROFILE) | OPT_BIT(OPT_WORKERS) | OPT_BIT(OPT_PER_CORE)
	        | OPT_BIT(OPT_WORKBOOK) | OPT_BIT(OPT_SESSION)
	        | OPT_BIT(OPT_TIMEOUT) | OPT_BIT(OPT_LEASE)
	        | OPT_BIT(OPT_MIN_NODES),
	    0 },
	[CLI_CLOSE] = { "close-session", OPT_BIT(OPT_TIMEOUT), 1 },
	[CLI_STATUS] = { "status", OPT_BIT(OPT_TIMEOUT), 1 },
	[CLI_PING] = { "ping", OPT_BIT(OPT_TIMEOUT), 0 },
	[CLI_RENEW]
	= { "renew-session", OPT_BIT(OPT_LEASE) | OPT_BIT(OPT_TIMEOUT), 1 },
	[CLI_CLEAR] = { "clear-unhealthy", OPT_BIT(OPT_TIMEOUT), 0 },
};

#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

/* Option values as typed, before the command is known. */
struct cli_raw {
	unsigned seen; /* OPT_BITs */
	const char *value[OPT_END - OPT_NODES];
	/* --nodes and --nodes-file in command-line order (they repeat):
	 * read once the command line is known to be good. */
	struct cli_roster_arg {
		int opt;
		const char *value;
	} * roster;
	size_t nroster;
};

const char *
cli_cmd_name(enum cli_cmd cmd)
{
	return cli_cmds[cmd].name;
}

/* What each command does, for both the global help and the command's own
 * (hpcxl COMMAND --help): one text, so the two cannot disagree. */
static const struct {
	const char *synopsis; /* after "hpcxl " */
	const char *text; /* indented by 6 */
} cli_cmd_help[] = {
	[CLI_OPEN]
	= { "open-session --profile NAME [--workers N | --per-core]\n"
	    "               [--workbook PATH] [--session ID] "
	    "[--timeout MS] [--lease MS]\n"
	    "               [--min-nodes K]",
	    "      start N workers (default 1) of profile NAME on every "
	    "node; without\n"
	    "      --session a new id is made and printed "
	    "(default timeout 120000);\n"
	    "      with --min-nodes it succeeds when K nodes open (else "
	    "it closes the\n"
	    "      session again everywhere); default: every node\n" },
	[CLI_CLOSE] = { "close-session SESSION [--timeout MS]",
	    "      end every process of SESSION on every node "
	    "(default timeout 120000)\n" },
	[CLI_STATUS] = { "status [SESSION] [--timeout MS]",
	    "      list the sessions and workers of every node "
	    "(default timeout 5000)\n" },
	[CLI_PING] = { "ping [--timeout MS]",
	    "      ask every node for its name, version, backend and "
	    "health (default\n"
	    "      timeout 5000)\n" },
	[CLI_RENEW] = { "renew-session SESSION --lease MS [--timeout MS]",
	    "      agents close SESSION unless renewed within MS "
	    "(0 removes the lease;\n"
	    "      default timeout 5000)\n" },
	[CLI_CLEAR] = { "clear-unhealthy [--timeout MS]",
	    "      clear the unhealthy mark of every node, once its cause "
	    "is dealt with, so\n"
	    "      that it accepts sessions again (default timeout 5000)\n" },
};

/* The options only some commands take, for a command's own help. */
static const struct {
	int opt;
	const char *text;
} cli_opt_help[] = {
	{ OPT_PROFILE,
	    "  --profile NAME        the agents' profile to start "
	    "(required)\n" },
	{ OPT_WORKERS,
	    "  --workers N           workers per node, 1 to 4096 "
	    "(default 1)\n" },
	{ OPT_PER_CORE,
	    "  --per-core            one worker per online CPU "
	    "of each node\n" },
	{ OPT_WORKBOOK, "  --workbook PATH       passed to every worker\n" },
	{ OPT_SESSION,
	    "  --session ID          the session's id (default: "
	    "a new s-XXXXXXXXXXXX)\n" },
	{ OPT_TIMEOUT,
	    "  --timeout MS          how long to wait for the "
	    "nodes' replies\n" },
	{ OPT_LEASE,
	    "  --lease MS            agents close the session "
	    "unless renewed within MS\n"
	    "                        (0: no lease)\n" },
	{ OPT_MIN_NODES,
	    "  --min-nodes K         succeed when K nodes open "
	    "(default: every node)\n" },
};

static void
cli_usage_commands(FILE *f)
{
	size_t i;

	fputs("commands:\n", f);
	for (i = 0; i < sizeof(cli_cmd_help) / sizeof(*cli_cmd_help); i++)
		fprintf(f, "  %s\n%s", cli_cmd_help[i].synopsis,
		    cli_cmd_help[i].text);
}

void
cli_usage_cmd(FILE *f, enum cli_cmd cmd)
{
	size_t i;

	fprintf(f, "usage: hpcxl [GLOBAL OPTIONS] %s\n\n%s\noptions:\n",
	    cli_cmd_help[cmd].synopsis, cli_cmd_help[cmd].text);
	for (i = 0; i < sizeof(cli_opt_help) / sizeof(*cli_opt_help); i++) {
		if (cli_cmds[cmd].options & OPT_BIT(cli_opt_help[i].opt))
			fputs(cli_opt_help[i].text, f);
	}
	fputs("  -h, --help            print this help and exit\n"
	      "\n"
	      "global options (--nodes, --nodes-file, --tls-*, --json, -v): "
	      "see 'hpcxl --help'.\n",
	    f);
}

void
cli_usage(FILE *f)
{
	fputs("usage: hpcxl [--nodes LIST] [--nodes-file FILE] [--json] [-v] "
	      "COMMAND ...\n"
	      "       hpcxl COMMAND --help | --help | --version\n"
	      "\n",
	    f);
	cli_usage_commands(f);
	fputs("\n"
	      "options:\n"
	      "  --nodes LIST          agents to talk to, comma-separated "
	      "(repeatable): URLs\n"
	      "                        (tcp://node1:7420) and host lists "
	      "(n[001-128],\n"
	      "                        gpu[1-4,7], r[1-2]n[1-3]); a host "
	      "becomes a node\n"
	      "                        named by the host, at the URL "
	      "template\n"
	      "  --nodes-file FILE     one node per line: 'NAME URL', or "
	      "'URL' (named by\n"
	      "                        itself); '#' comments and blank "
	      "lines allowed\n"
	      "                        (default roster: $HPCXL_NODES, as "
	      "--nodes)\n"
	      "  --tls-cert FILE       this client's certificate (PEM) for "
	      "tls+tcp:// nodes\n"
	      "  --tls-key FILE        its private key (PEM, unencrypted)\n"
	      "  --tls-ca FILE         the CA agents' certificates must "
	      "chain to; each must\n"
	      "                        name the host of its URL\n"
	      "  --json                print one JSON object instead of a "
	      "table\n"
	      "  -v, --verbose         log each step to stderr\n"
	      "  -h, --help            print this help (after a COMMAND: "
	      "its help) and exit\n"
	      "  --version             print the version of hpcxl and exit\n"
	      "\n"
	      "node names: 1 to 64 of A-Z a-z 0-9 . _ -; names and URLs "
	      "are unique; at most\n"
	      "65536 nodes.\n"
	      "URL template of hosts (%h is the host, %% a '%') and TLS "
	      "files, the first\n"
	      "found of:\n"
	      "  1. --tls-cert, --tls-key, --tls-ca\n"
	      "  2. $HPCXL_URL_TEMPLATE, $HPCXL_TLS_CERT, $HPCXL_TLS_KEY, "
	      "$HPCXL_TLS_CA\n"
	      "  3. url_template, tls_cert, tls_key, tls_ca in the [client] "
	      "section of\n"
	      "     $HPCXL_CLIENT_CONFIG; else of the user's file "
	      "(~/.config/hpcxl/client.conf,\n"
	      "     or under $XDG_CONFIG_HOME), then of "
	      "/etc/hpcxl/client.conf\n"
	      "  4. tls+tcp://%h:7420, no TLS files\n"
	      "\n"
	      "exit status: 0 every node succeeded, 1 some node failed, was "
	      "partial or\n"
	      "unreachable, or reported itself unhealthy (it refuses new "
	      "sessions until\n"
	      "clear-unhealthy), 2 usage or configuration error.\n",
	    f);
}

int
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hpcxl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'hpcxl --help'.\n", stderr);
	return CLI_EXIT_USAGE;
}

static const char *
cli_opt_name(int opt)
{
	size_t i;

	for (i = 0; cli_options[i].name != NULL; i++) {
		if (cli_options[i].val == opt)
			return cli_options[i].name;
	}
	return "?";
}

/* Reports the option getopt stopped at (optopt is 0 for unknown long
 * ones, and the option's value for a long one given a value it takes
 * none of). */
static int
cli_bad_option(int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return cli_usage_error("option '%s' needs a value", arg);
	if (optopt > 0 && optopt < OPT_NODES)
		return cli_usage_error("unknown option '-%c'", optopt);
	if (optopt >= OPT_NODES)
		return cli_usage_error("option '%s' takes no value", arg);
	return cli_usage_error("unknown option '%s'", arg);
}

static void
cli_take_option(int c, struct cli_args *a, struct cli_raw *raw)
{
	if (c == 'v') {
		a->verbose = true;
		return;
	}
	raw->seen |= OPT_BIT(c);
	if (c == OPT_JSON)
		a->json = true;
	else if (c == OPT_NODES || c == OPT_NODES_FILE)
		raw->roster[raw->nroster++]
		    = (struct cli_roster_arg) { c, optarg };
	else
		raw->value[c - OPT_NODES] = optarg;
}

static int
cli_find_cmd(const char *name, enum cli_cmd *cmd)
{
	size_t i;

	for (i = 0; i < CLI_NCMDS; i++) {
		if (strcmp(name, cli_cmds[i].name) == 0) {
			*cmd = (enum cli_cmd)i;
			return 0;
		}
	}
	return cli_usage_error("unknown command '%s'", name);
}

static int
cli_check_options(enum cli_cmd cmd, unsigned seen)
{
	unsigned extra = seen & ~(OPT_GLOBAL | cli_cmds[cmd].options);
	int o;

	for (o = OPT_NODES; o < OPT_END; o++) {
		if (extra & OPT_BIT(o))
			return cli_usage_error("option '--%s' is not valid "
			                       "for %s",
			    cli_opt_name(o), cli_cmds[cmd].name);
	}
	return 0;
}

static int
cli_number(
    const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (util_parse_i64(s, min, max, out) != 0)
		return cli_usage_error("--%s: '%s' is not a whole number "
		                       "from %lld to %lld",
		    opt, s, (long long)min, (long long)max);
	return 0;
}

static int
cli_id(const char *what, const char *s)
{
	if (!util_valid_id(s))
		return cli_usage_error("invalid %s '%s': use 1 to %d of "
		                       "A-Z a-z 0-9 . _ -, not starting "
		                       "with '.' or '-'",
		    what, s, HPCXL_ID_MAX);
	return 0;
}

static void
cli_new_session(struct cli_args *a)
{
	uint64_t v = util_random_u64() & UINT64_C(0xffffffffffff);

	snprintf(a->session_buf, sizeof(a->session_buf), "s-%012llx",
	    (unsigned long long)v);
	a->session = a->session_buf;
	a->session_generated = true;
}

/* --lease MS, for open-session and renew-session. */
static int
cli_lease(struct cli_args *a, const char *value)
{
	int64_t n;
	int rv;

	rv = cli_number("lease", value, 0, UINT32_MAX * INT64_C(1000), &n);
	if (rv == 0)
		a->open.lease_ms = (uint64_t)n;
	return rv;
}

static int
cli_open_args(struct cli_args *a, const struct cli_raw *raw)
{
	const char *const *v = raw->value;
	int64_t n;
	int rv;

	if (v[OPT_PROFILE - OPT_NODES] == NULL)
		return cli_usage_error("open-session needs --profile NAME");
	if ((rv = cli_id("profile", v[OPT_PROFILE - OPT_NODES])) != 0)
		return rv;
	a->open.profile = v[OPT_PROFILE - OPT_NODES];
	a->open.per_core = (raw->seen & OPT_BIT(OPT_PER_CORE)) != 0;
	if (a->open.per_core && v[OPT_WORKERS - OPT_NODES] != NULL)
		return cli_usage_error("use either --workers or --per-core");
	a->open.workers = 1;
	if (v[OPT_WORKERS - OPT_NODES] != NULL) {
		if ((rv = cli_number("workers", v[OPT_WORKERS - OPT_NODES], 1,
		         PROTO_MAX_WORKERS, &n))
		    != 0)
			return rv;
		a->open.workers = (unsigned)n;
	}
	if (v[OPT_LEASE - OPT_NODES] != NULL
	    && (rv = cli_lease(a, v[OPT_LEASE - OPT_NODES])) != 0)
		return rv;
	/* Checked against the roster once it is read (cli_min_nodes()). */
	if (v[OPT_MIN_NODES - OPT_NODES] != NULL) {
		if ((rv = cli_number("min-nodes", v[OPT_MIN_NODES - OPT_NODES],
		         1, CLI_ROSTER_MAX, &n))
		    != 0)
			return rv;
		a->open.min_nodes = (size_t)n;
	}
	a->open.workbook = v[OPT_WORKBOOK - OPT_NODES];
	if (a->open.workbook != NULL
	    && strlen(a->open.workbook) > PROTO_MAX_TEXT)
		return cli_usage_error(
		    "--workbook: longer than %d bytes", PROTO_MAX_TEXT);
	a->session = v[OPT_SESSION - OPT_NODES];
	if (a->session == NULL)
		cli_new_session(a);
	a->open.session = a->session;
	return cli_id("session id", a->session);
}

/* Operands after the command: SESSION for close-session, renew-session and
 * status. */
static int
cli_operands(struct cli_args *a, char **operands, size_t n)
{
	if (n > cli_cmds[a->cmd].max_operands)
		return cli_usage_error("unexpected argument '%s' for %s",
		    operands[cli_cmds[a->cmd].max_operands],
		    cli_cmds[a->cmd].name);
	if ((a->cmd == CLI_CLOSE || a->cmd == CLI_RENEW) && n == 0)
		return cli_usage_error(
		    "%s needs a SESSION", cli_cmds[a->cmd].name);
	if (n == 0)
		return 0;
	a->session = operands[0];
	return cli_id("session id", a->session);
}

static int
cli_command_args(
    struct cli_args *a, const struct cli_raw *raw, char **operands, size_t n)
{
	const char *timeout = raw->value[OPT_TIMEOUT - OPT_NODES];
	int64_t ms;
	int rv;

	if ((rv = cli_check_options(a->cmd, raw->seen)) != 0
	    || (rv = cli_operands(a, operands, n)) != 0)
		return rv;
	if (a->cmd == CLI_OPEN && (rv = cli_open_args(a, raw)) != 0)
		return rv;
	if (a->cmd == CLI_RENEW) {
		if (raw->value[OPT_LEASE - OPT_NODES] == NULL)
			return cli_usage_error(
			    "renew-session needs --lease MS");
		if ((rv = cli_lease(a, raw->value[OPT_LEASE - OPT_NODES]))
		    != 0)
			return rv;
	}
	a->timeout_ms = a->cmd == CLI_OPEN || a->cmd == CLI_CLOSE
	    ? HPCXL_DEFAULT_TIMEOUT_MS
	    : CLI_QUERY_TIMEOUT_MS;
	if (timeout != NULL) {
		if ((rv = cli_number("timeout", timeout, 0, INT_MAX, &ms))
		    != 0)
			return rv;
		a->timeout_ms = (int)ms;
	}
	return 0;
}

/* The client config, with the command line's TLS files over it. */
static int
cli_conf(struct cli_args *a, const struct cli_raw *raw)
{
	static const struct {
		int opt;
		size_t offset;
	} files[] = {
		{ OPT_TLS_CERT, offsetof(struct clientconf, tls_cert) },
		{ OPT_TLS_KEY, offsetof(struct clientconf, tls_key) },
		{ OPT_TLS_CA, offsetof(struct clientconf, tls_ca) },
	};
	const char *value;
	char origin[32];
	int rv = clientconf_load(&a->conf);

	for (size_t i = 0; rv == 0 && i < sizeof(files) / sizeof(*files);
	     i++) {
		if ((value = raw->value[files[i].opt - OPT_NODES]) == NULL)
			continue;
		snprintf(origin, sizeof(origin), "--%s",
		    cli_opt_name(files[i].opt));
		rv = clientconf_set_file(
		    (char *)&a->conf + files[i].offset, origin, value);
	}
	return rv;
}

/* --nodes and --nodes-file in order, or else $HPCXL_NODES. */
static int
cli_roster(struct cli_args *a, const struct cli_raw *raw)
{
	const char *env = getenv("HPCXL_NODES");
	size_t i;
	int rv = 0;

	for (i = 0; rv == 0 && i < raw->nroster; i++) {
		if (raw->roster[i].opt == OPT_NODES)
			rv = roster_add_list(&a->roster, raw->roster[i].value,
			    "--nodes", &a->conf);
		else
			rv = roster_add_file(&a->roster, raw->roster[i].value);
	}
	if (rv == 0 && raw->nroster == 0 && env != NULL)
		rv = roster_add_list(&a->roster, env, "HPCXL_NODES", &a->conf);
	return rv != 0 ? rv : roster_check(&a->roster);
}

static int
cli_min_nodes(const struct cli_args *a)
{
	if (a->open.min_nodes > a->roster.n)
		return cli_usage_error("--min-nodes: %zu is more than the %zu "
		                       "node%s of the roster",
		    a->open.min_nodes, a->roster.n,
		    a->roster.n == 1 ? "" : "s");
	return 0;
}

/* --help after the options are read, since the command may come after
 * it ("hpcxl --help close-session"): a known command gets its own help,
 * anything else the global one. */
static int
cli_help(int argc, char **argv)
{
	size_t i;

	for (i = 0; optind < argc && i < CLI_NCMDS; i++) {
		if (strcmp(argv[optind], cli_cmds[i].name) == 0) {
			cli_usage_cmd(stdout, (enum cli_cmd)i);
			return -1;
		}
	}
	cli_usage(stdout);
	return -1;
}

static int
cli_options_pass(
    int argc, char **argv, struct cli_args *a, struct cli_raw *raw)
{
	bool help = false;
	int c;

	opterr = 0; /* our own messages, with the usage hint */
	optind = 1;
	while ((c = getopt_long(argc, argv, ":vh", cli_options, NULL)) != -1) {
		if (c == 'h') {
			help = true;
			continue;
		}
		if (c == OPT_VERSION) {
			printf("hpcxl %s\n", hpcxl_version());
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option(c, argv);
		cli_take_option(c, a, raw);
	}
	return help ? cli_help(argc, argv) : 0;
}

int
cli_parse(int argc, char **argv, struct cli_args *a)
{
	struct cli_raw raw;
	int rv;

	memset(&raw, 0, sizeof(raw));
	if ((raw.roster = calloc((size_t)argc, sizeof(*raw.roster))) == NULL) {
		fputs("hpcxl: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	if ((rv = cli_options_pass(argc, argv, a, &raw)) != 0)
		goto out;
	if (optind >= argc) {
		rv = cli_usage_error("no command given");
		goto out;
	}
	if ((rv = cli_find_cmd(argv[optind], &a->cmd)) != 0
	    || (rv = cli_command_args(
	            a, &raw, argv + optind + 1, (size_t)(argc - optind - 1)))
	        != 0)
		goto out;
	if ((rv = cli_conf(a, &raw)) == 0 && (rv = cli_roster(a, &raw)) == 0)
		rv = cli_min_nodes(a);
out:
	free(raw.roster);
	return rv;
}

void
cli_args_free(struct cli_args *a)
{
	roster_free(&a->roster);
}
