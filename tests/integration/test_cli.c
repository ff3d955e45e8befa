/*
 * The controller end to end: the hpcxl CLI and libhpcxl against three real
 * hpcxl-agent processes running real xlsim workers. Each test starts its
 * own agents (unique node names) and uses unique session ids.
 *
 * Each test also has a private scratch directory: its agents listen there
 * too, on ipc://SCRATCH/h0 ... h2, so that the host list "h[0-2]" with the
 * URL template ipc://SCRATCH/%h reaches them; and it holds the test's client
 * config file, so that no config of the machine's is read.
 */
#include "harness.h"

#include "hpcxl/common/util.h"
#include "hpcxl/hpcxl.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAGENTS 3
#define WORKERS 4
#define READY_TIMEOUT_MS 10000
/* A close with one agent down: short, so the test is too. */
#define DOWN_TIMEOUT_MS 3000
/* What a call may take beyond its timeout (process start, socket close,
 * a loaded CI machine): a property of the API, not a speed measurement. */
#define OVERSHOOT_MS 1500
#define MAX_ARGS 32

static struct harness_agent agents[NAGENTS];
static char roster[NAGENTS * 260];
static char session[64];
/* Short: it holds ipc sockets, whose paths are limited to 107 bytes. */
static char scratch[] = "/tmp/hpcxl-cli-XXXXXX";
static char client_conf[sizeof(scratch) + 16];

/* Every file a test may leave in scratch. */
static const char *const scratch_files[]
    = { "h0", "h1", "h2", "client.conf", "other.conf", "nodes" };

/* ---- fixtures ---------------------------------------------------------- */

/* Writes the formatted text to scratch/name; its path goes to path. */
static void write_scratch(char *path, size_t len, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
write_scratch(char *path, size_t len, const char *name, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	snprintf(path, len, "%s/%s", scratch, name);
	cr_assert_not_null(f = fopen(path, "w"), "cannot write %s", path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	cr_assert_eq(fclose(f), 0);
}

static void
start_agents(void)
{
	char ipc[sizeof(scratch) + 16];
	const char *listen[] = { "--listen", ipc, NULL };
	size_t len = 0;
	int i;

	/* The roster must come from the command line only, and the URL
	 * template from the test's own (empty) client config. */
	unsetenv("HPCXL_NODES");
	unsetenv("HPCXL_URL_TEMPLATE");
	snprintf(scratch, sizeof(scratch), "/tmp/hpcxl-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(scratch), "mkdtemp failed");
	write_scratch(
	    client_conf, sizeof(client_conf), "client.conf", "[client]\n");
	setenv("HPCXL_CLIENT_CONFIG", client_conf, 1);
	harness_unique("cli", session, sizeof(session));
	for (i = 0; i < NAGENTS; i++) {
		snprintf(ipc, sizeof(ipc), "ipc://%s/h%d", scratch, i);
		cr_assert_eq(harness_agent_start(&agents[i], "tc", listen), 0,
		    "agent %d did not start", i);
		len += (size_t)snprintf(roster + len, sizeof(roster) - len,
		    "%s%s", i > 0 ? "," : "", agents[i].url);
	}
}

/* Kills what a failed test may have left of its session. */
static void
kill_session_procs(const char *s)
{
	char value[128];
	struct dirent *de;
	DIR *d;

	if (s[0] == '\0' || (d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid > 0
		    && harness_proc_env(
		           pid, "HPCXL_SESSION", value, sizeof(value))
		        == 0
		    && strcmp(value, s) == 0)
			kill(pid, SIGKILL);
	}
	closedir(d);
}

static void
stop_agents(void)
{
	char path[sizeof(scratch) + 16];
	size_t i;

	for (i = 0; i < NAGENTS; i++) {
		kill(agents[i].pid, SIGCONT); /* a test may have frozen it */
		harness_agent_stop(&agents[i], 15000);
	}
	kill_session_procs(session);
	for (i = 0; i < sizeof(scratch_files) / sizeof(scratch_files[0]);
	     i++) {
		snprintf(
		    path, sizeof(path), "%s/%s", scratch, scratch_files[i]);
		unlink(path);
	}
	rmdir(scratch);
}

TestSuite(cli, .init = start_agents, .fini = stop_agents, .timeout = 120);

/* ---- running the CLI --------------------------------------------------- */

/* Runs hpcxl with args (NULL-terminated); returns its exit status. */
static int
run_cli(const char *const *args, char **out, int64_t *elapsed_ms)
{
	const char *argv[MAX_ARGS];
	int n = 0, status;

	argv[n++] = harness_bin("hpcxl");
	for (; *args != NULL && n < MAX_ARGS - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_eq(harness_run(argv, out, &status, elapsed_ms), 0,
	    "cannot run hpcxl");
	cr_assert(WIFEXITED(status), "hpcxl died (status %#x)", status);
	return WEXITSTATUS(status);
}

/* Runs hpcxl with args; returns its exit status and, in *err, what it
 * wrote on stderr (its stdout goes to /dev/null). */
static int
run_cli_stderr(const char *const *args, char **err)
{
	const char *argv[MAX_ARGS] = { "/bin/sh", "-c",
		"exec \"$0\" \"$@\" 2>&1 >/dev/null", harness_bin("hpcxl") };
	int n = 4, status;

	for (; *args != NULL && n < MAX_ARGS - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_eq(
	    harness_run(argv, err, &status, NULL), 0, "cannot run hpcxl");
	cr_assert(WIFEXITED(status), "hpcxl died (status %#x)", status);
	return WEXITSTATUS(status);
}

/* Runs hpcxl with args (which ask for --json), checks the exit status and
 * returns the parsed JSON object (json_decref it). */
static json_t *
run_json_args(const char *const *args, int want_exit, int64_t *elapsed_ms)
{
	json_error_t jerr;
	json_t *root;
	char *out = NULL;
	int rv;

	rv = run_cli(args, &out, elapsed_ms);
	cr_assert_not_null(out);
	cr_assert_eq(rv, want_exit, "hpcxl exited %d, want %d; output:\n%s",
	    rv, want_exit, out);
	root = json_loads(out, 0, &jerr);
	cr_assert_not_null(root, "not JSON (%s):\n%s", jerr.text, out);
	cr_assert(json_is_object(root));
	free(out);
	return root;
}

/* Runs "hpcxl --nodes NODES --json" + args: see run_json_args(). */
static json_t *
run_json_on(const char *nodes, const char *const *args, int want_exit,
    int64_t *elapsed_ms)
{
	const char *full[MAX_ARGS] = { "--nodes", nodes, "--json" };
	int n = 3;

	for (; *args != NULL && n < MAX_ARGS - 1; args++)
		full[n++] = *args;
	full[n] = NULL;
	return run_json_args(full, want_exit, elapsed_ms);
}

/* run_json_on() with the suite's roster. */
static json_t *
run_json(const char *const *args, int want_exit, int64_t *elapsed_ms)
{
	return run_json_on(roster, args, want_exit, elapsed_ms);
}

/* Row i of a report on a roster of n nodes. */
static json_t *
node_of(json_t *root, size_t i, size_t n)
{
	json_t *nodes = json_object_get(root, "nodes");

	cr_assert(json_is_array(nodes));
	cr_assert_eq(json_array_size(nodes), n);
	return json_array_get(nodes, i);
}

static json_t *
node_at(json_t *root, size_t i)
{
	return node_of(root, i, NAGENTS);
}

static const char *
str_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_string(v), "\"%s\" is not a string", key);
	return json_string_value(v);
}

static json_int_t
int_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "\"%s\" is not an integer", key);
	return json_integer_value(v);
}

/* Every row is for its roster URL, in roster order, and named by it. */
static void
assert_rows_in_roster_order(json_t *root)
{
	int i;

	for (i = 0; i < NAGENTS; i++) {
		cr_assert_str_eq(
		    str_of(node_at(root, i), "url"), agents[i].url);
		cr_assert_str_eq(
		    str_of(node_at(root, i), "name"), agents[i].url);
	}
}

static void
open_session_cli(void)
{
	char workers[16];
	const char *args[] = { "open-session", "--profile", "xl", "--workers",
		workers, "--session", session, NULL };
	json_t *root;
	int i;

	snprintf(workers, sizeof(workers), "%d", WORKERS);
	root = run_json(args, 0, NULL);
	cr_assert(json_is_true(json_object_get(root, "ok")));
	cr_assert_str_eq(str_of(root, "session"), session);
	for (i = 0; i < NAGENTS; i++) {
		json_t *node = node_at(root, i);

		cr_assert_str_eq(str_of(node, "state"), "ok");
		cr_assert_str_eq(str_of(node, "node"), agents[i].node);
		cr_assert_eq(int_of(node, "workers"), WORKERS);
	}
	json_decref(root);
	for (i = 0; i < NAGENTS; i++)
		cr_assert(harness_wait_ready(
		    &agents[i], session, WORKERS, READY_TIMEOUT_MS));
	cr_assert_eq(harness_session_procs(session), NAGENTS * WORKERS);
}

/* ---- tests ------------------------------------------------------------- */

static void
assert_status_lists_session(json_t *node)
{
	json_t *sessions = json_object_get(node, "sessions"), *s = NULL;
	json_t *workers, *w;
	size_t i;

	cr_assert(json_is_array(sessions));
	json_array_foreach(sessions, i, s)
	{
		if (strcmp(str_of(s, "session"), session) == 0)
			break;
	}
	cr_assert_lt(i, json_array_size(sessions), "session not listed");
	cr_assert_str_eq(str_of(s, "profile"), "xl");
	workers = json_object_get(s, "workers");
	cr_assert(json_is_array(workers));
	cr_assert_eq(json_array_size(workers), WORKERS);
	json_array_foreach(workers, i, w)
	{
		cr_assert_gt(int_of(w, "pid"), 0);
		cr_assert_str_eq(str_of(w, "state"), "running");
		cr_assert_eq(int_of(w, "restarts"), 0);
		(void)int_of(w, "index");
		(void)int_of(w, "exit_status");
	}
}

Test(cli, open_status_close)
{
	const char *status_args[] = { "status", NULL };
	const char *close_args[] = { "close-session", session, NULL };
	json_t *root;
	int i;

	open_session_cli();

	root = run_json(status_args, 0, NULL);
	assert_rows_in_roster_order(root);
	for (i = 0; i < NAGENTS; i++) {
		cr_assert_str_eq(str_of(node_at(root, i), "state"), "ok");
		(void)str_of(node_at(root, i), "backend");
		assert_status_lists_session(node_at(root, i));
	}
	json_decref(root);

	root = run_json(close_args, 0, NULL);
	cr_assert(json_is_true(json_object_get(root, "ok")));
	cr_assert_str_eq(str_of(root, "session"), session);
	assert_rows_in_roster_order(root);
	for (i = 0; i < NAGENTS; i++) {
		json_t *node = node_at(root, i);

		cr_assert_str_eq(str_of(node, "state"), "closed");
		cr_assert_str_eq(str_of(node, "node"), agents[i].node);
		cr_assert_eq(int_of(node, "workers"), WORKERS);
		cr_assert_eq(int_of(node, "remaining"), 0);
		cr_assert_eq(
		    int_of(node, "exited") + int_of(node, "killed"), WORKERS);
	}
	json_decref(root);
	/* "closed" promises that nothing of the session is left. */
	cr_assert_eq(harness_session_procs(session), 0);
}

/* Live (non-zombie) processes of session whose agent is node. */
static int
node_procs(const char *node)
{
	char value[128], path[64], stat[256];
	struct dirent *de;
	int count = 0;
	FILE *f;
	DIR *d;

	cr_assert_not_null(d = opendir("/proc"));
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0
		    || harness_proc_env(
		           pid, "HPCXL_SESSION", value, sizeof(value))
		        != 0
		    || strcmp(value, session) != 0
		    || harness_proc_env(
		           pid, "HPCXL_NODE", value, sizeof(value))
		        != 0
		    || strcmp(value, node) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		/* The state follows the ")" that ends the command name. */
		if (fgets(stat, sizeof(stat), f) != NULL
		    && strrchr(stat, ')') != NULL
		    && strrchr(stat, ')')[2] != 'Z')
			count++;
		fclose(f);
	}
	closedir(d);
	return count;
}

Test(cli, close_with_one_agent_down)
{
	char timeout[16];
	const char *args[]
	    = { "close-session", session, "--timeout", timeout, NULL };
	const int down = NAGENTS - 1;
	int64_t elapsed_ms;
	json_t *root, *node;
	int i;

	open_session_cli();
	cr_assert_neq(harness_agent_stop(&agents[down], 15000), -1);

	snprintf(timeout, sizeof(timeout), "%d", DOWN_TIMEOUT_MS);
	root = run_json(args, 1, &elapsed_ms);
	cr_assert_lt(elapsed_ms, DOWN_TIMEOUT_MS + OVERSHOOT_MS,
	    "close took %lld ms with a %d ms timeout", (long long)elapsed_ms,
	    DOWN_TIMEOUT_MS);
	cr_assert(json_is_false(json_object_get(root, "ok")));
	assert_rows_in_roster_order(root);
	for (i = 0; i < down; i++) {
		node = node_at(root, i);
		cr_assert_str_eq(str_of(node, "state"), "closed");
		cr_assert_eq(int_of(node, "workers"), WORKERS);
		cr_assert_eq(node_procs(agents[i].node), 0);
	}
	node = node_at(root, down);
	cr_assert_str_eq(str_of(node, "state"), "unreachable");
	cr_assert(json_is_null(json_object_get(node, "node")));
	cr_assert_neq(strlen(str_of(node, "msg")), 0);
	json_decref(root);
}

/* Each line: arguments after "hpcxl" that must be refused with exit 2. */
Test(cli, renew_session_shortens_a_lease_until_it_lapses)
{
	char id[64];
	const char *open_args[]
	    = { "open-session", "--profile", "xl", "--workers", "2",
		      "--session", id, "--lease", "3600000", NULL };
	const char *renew_args[]
	    = { "renew-session", id, "--lease", "300", NULL };
	json_t *root;

	harness_unique("lease", id, sizeof(id));
	root = run_json(open_args, 0, NULL);
	json_decref(root);
	cr_assert(harness_wait_procs(id, 2 * NAGENTS, 10000));
	root = run_json(renew_args, 0, NULL);
	cr_assert(json_is_true(json_object_get(root, "ok")));
	for (size_t i = 0; i < NAGENTS; i++)
		cr_assert_str_eq(str_of(node_at(root, i), "state"), "ok");
	json_decref(root);
	/* Nobody closes the session: the lapsed lease ends it everywhere. */
	cr_assert(harness_wait_procs(id, 0, 300 + 1000 + 10000));
	root = run_json(renew_args, 1, NULL);
	cr_assert_str_eq(str_of(node_at(root, 0), "state"), "error");
	json_decref(root);
}

static const char *const usage_errors[][8] = {
	{ NULL },
	{ "frobnicate", NULL },
	{ "ping", "--bogus", NULL },
	{ "ping", "--timeout", NULL },
	{ "ping", "--timeout", "soon", NULL },
	{ "ping", "--timeout", "-5", NULL },
	{ "ping", "extra", NULL },
	{ "status", "--profile", "xl", NULL },
	{ "close-session", NULL },
	{ "close-session", "bad/id", NULL },
	{ "open-session", NULL },
	{ "open-session", "--profile", "xl", "--workers", "2", "--per-core",
	    NULL },
	{ "open-session", "--profile", "xl", "--workers", "0", NULL },
	{ "open-session", "--profile", "xl", "--lease", "-1", NULL },
	{ "open-session", "--profile", "xl", "--session", ".hidden", NULL },
	{ "renew-session", "--lease", "1000", NULL },
	{ "renew-session", "s1", NULL },
	{ "renew-session", "s1", "--lease", "soon", NULL },
	{ "renew-session", "s1", "--lease", "1000", "--workers", "2", NULL },
	{ "clear-unhealthy", "extra", NULL },
	{ "clear-unhealthy", "--lease", "1000", NULL },
	{ "clear-unhealthy", "--timeout", "soon", NULL },
};

Test(cli, usage_errors_exit_2)
{
	const char *args[12];
	size_t i, k;
	char *out;

	for (i = 0; i < sizeof(usage_errors) / sizeof(usage_errors[0]); i++) {
		args[0] = "--nodes";
		args[1] = roster;
		for (k = 0; usage_errors[i][k] != NULL; k++)
			args[k + 2] = usage_errors[i][k];
		args[k + 2] = NULL;
		cr_assert_eq(run_cli(args, &out, NULL), 2, "case %zu", i);
		cr_assert_str_eq(out, "", "case %zu printed a report", i);
		free(out);
	}
}

Test(cli, roster_errors_exit_2)
{
	const char *no_roster[] = { "ping", NULL };
	const char *empty[] = { "--nodes", " , ", "ping", NULL };
	const char *no_file[]
	    = { "--nodes-file", "/nonexistent/nodes", "ping", NULL };
	const char *bad_url[]
	    = { "--nodes", "nosuchscheme://x", "ping", NULL };
	const char *twice[] = { "--nodes", agents[0].url, "--nodes",
		agents[0].url, "ping", NULL };
	const char *help[] = { "--help", NULL };
	char *out;

	cr_assert_eq(run_cli(no_roster, NULL, NULL), 2);
	cr_assert_eq(run_cli(empty, NULL, NULL), 2);
	cr_assert_eq(run_cli(no_file, NULL, NULL), 2);
	cr_assert_eq(run_cli(bad_url, NULL, NULL), 2);
	cr_assert_eq(run_cli(twice, NULL, NULL), 2);
	cr_assert_eq(run_cli(help, &out, NULL), 0);
	cr_assert_not_null(strstr(out, "close-session"));
	cr_assert_not_null(strstr(out, "clear-unhealthy"));
	cr_assert_not_null(strstr(out, "--min-nodes"));
	cr_assert_not_null(strstr(out, "HPCXL_URL_TEMPLATE"));
	cr_assert_not_null(strstr(out, "HPCXL_CLIENT_CONFIG"));
	free(out);
}

Test(cli, roster_from_file_and_environment)
{
	char path[] = "/tmp/hpcxl-test-nodes-XXXXXX";
	const char *from_file[]
	    = { "--nodes-file", path, "--json", "ping", NULL };
	const char *from_env[] = { "ping", "--json", NULL };
	FILE *f;
	char *out;
	int fd, i;

	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	fprintf(f, "# the test's agents\n\n");
	for (i = 0; i < NAGENTS; i++)
		fprintf(f, "  %s  # agent %d\n", agents[i].url, i);
	fclose(f);
	cr_assert_eq(run_cli(from_file, &out, NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, agents[NAGENTS - 1].url));
	free(out);
	unlink(path);

	setenv("HPCXL_NODES", roster, 1);
	cr_assert_eq(run_cli(from_env, &out, NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, agents[NAGENTS - 1].url));
	free(out);
	unsetenv("HPCXL_NODES");
}

/* ---- named rosters, host lists, URL templates -------------------------- */

/* A loopback TCP port nobody listens on: bound by the kernel's choice, read,
 * then closed again. */
static int
unused_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static const char *const agent_names[NAGENTS] = { "alpha", "beta", "gamma" };

/* A nodes file of the agents as agent_names, then "ghost" at ghost_url. */
static void
write_named_roster(char *path, size_t len, const char *ghost_url)
{
	write_scratch(path, len, "nodes",
	    "# named roster\n%s %s\n\t%s\t%s   # the second\n\n%s %s\n"
	    "ghost %s\n",
	    agent_names[0], agents[0].url, agent_names[1], agents[1].url,
	    agent_names[2], agents[2].url, ghost_url);
}

/* The line of the table whose first cell is name. */
static const char *
table_row(const char *out, const char *name)
{
	size_t len = strlen(name);
	const char *line;

	for (line = out; line != NULL && *line != '\0'; line
	     = strchr(line, '\n') != NULL ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, name, len) == 0 && line[len] == ' ')
			return line;
	}
	cr_assert_fail("no row named %s in:\n%s", name, out);
	return NULL;
}

Test(cli, named_roster_names_every_row_even_unreachable)
{
	char path[PATH_MAX], ghost[64], timeout[16];
	const char *json_args[] = { "--nodes-file", path, "--json", "ping",
		"--timeout", timeout, NULL };
	const char *table_args[]
	    = { "--nodes-file", path, "ping", "--timeout", timeout, NULL };
	json_t *root, *node;
	char *out;
	int i;

	snprintf(ghost, sizeof(ghost), "tcp://127.0.0.1:%d", unused_port());
	snprintf(timeout, sizeof(timeout), "%d", DOWN_TIMEOUT_MS);
	write_named_roster(path, sizeof(path), ghost);

	root = run_json_args(json_args, 1, NULL);
	for (i = 0; i < NAGENTS; i++) {
		node = node_of(root, (size_t)i, NAGENTS + 1);
		cr_assert_str_eq(str_of(node, "name"), agent_names[i]);
		cr_assert_str_eq(str_of(node, "url"), agents[i].url);
		cr_assert_str_eq(str_of(node, "node"), agents[i].node);
		cr_assert_str_eq(str_of(node, "state"), "ok");
	}
	node = node_of(root, NAGENTS, NAGENTS + 1);
	cr_assert_str_eq(str_of(node, "name"), "ghost");
	cr_assert_str_eq(str_of(node, "url"), ghost);
	cr_assert_str_eq(str_of(node, "state"), "unreachable");
	cr_assert(json_is_null(json_object_get(node, "node")));
	json_decref(root);

	/* The table names rows by the roster, and shows the URLs as they
	 * differ from the names. */
	cr_assert_eq(run_cli(table_args, &out, NULL), 1, "%s", out);
	cr_assert_eq(strncmp(out, "NAME ", 5), 0, "%s", out);
	cr_assert_not_null(strstr(table_row(out, "NAME"), " URL "), "%s", out);
	cr_assert_not_null(
	    strstr(table_row(out, "ghost"), " unreachable "), "%s", out);
	cr_assert_not_null(strstr(table_row(out, "ghost"), ghost), "%s", out);
	cr_assert_not_null(
	    strstr(table_row(out, "beta"), agents[1].node), "%s", out);
	free(out);
}

/* A report of the host list h[0-2] at template url_fmt (%s is scratch,
 * %d the agent) reached every agent. */
static void
assert_rows_are_hosts(json_t *root, const char *url_fmt)
{
	char name[16], url[PATH_MAX];
	json_t *node;
	int i;

	for (i = 0; i < NAGENTS; i++) {
		node = node_at(root, (size_t)i);
		snprintf(name, sizeof(name), "h%d", i);
		snprintf(url, sizeof(url), url_fmt, scratch, i);
		cr_assert_str_eq(str_of(node, "name"), name);
		cr_assert_str_eq(str_of(node, "url"), url);
		cr_assert_str_eq(str_of(node, "state"), "ok");
		cr_assert_str_eq(str_of(node, "node"), agents[i].node);
	}
}

Test(cli, host_list_reaches_agents_through_the_url_template)
{
	char template[PATH_MAX];
	const char *with_option[]
	    = { "--nodes", "h[0-2]", "--json", "ping", NULL };
	const char *from_env[] = { "--json", "ping", NULL };
	json_t *root;

	snprintf(template, sizeof(template), "ipc://%s/%%h", scratch);
	setenv("HPCXL_URL_TEMPLATE", template, 1);
	root = run_json_args(with_option, 0, NULL);
	assert_rows_are_hosts(root, "ipc://%s/h%d");
	json_decref(root);

	/* "h0,h[1-2]": a comma inside or outside brackets, and
	 * $HPCXL_NODES reads as --nodes does. */
	setenv("HPCXL_NODES", "h0,h[1-2]", 1);
	root = run_json_args(from_env, 0, NULL);
	assert_rows_are_hosts(root, "ipc://%s/h%d");
	json_decref(root);
	unsetenv("HPCXL_NODES");
	unsetenv("HPCXL_URL_TEMPLATE");
}

Test(cli, url_template_environment_over_config_over_default)
{
	char conf[PATH_MAX], template[PATH_MAX];
	const char *hosts[] = { "--nodes", "h[0-2]", "--json", "ping", NULL };
	const char *loopback[] = { "--nodes", "127.0.0.1", "--json", "ping",
		"--timeout", "0", NULL };
	json_t *root;
	char *err;

	/* The config file's template, with "%%" for a '%' that is not the
	 * host's: the agents listen at ipc://SCRATCH/h<i>. */
	write_scratch(conf, sizeof(conf), "other.conf",
	    "# the test's agents\n[client]\nurl_template = ipc://%s/%%h\n",
	    scratch);
	setenv("HPCXL_CLIENT_CONFIG", conf, 1);
	root = run_json_args(hosts, 0, NULL);
	assert_rows_are_hosts(root, "ipc://%s/h%d");
	json_decref(root);

	/* The environment wins over a config file that points nowhere. */
	write_scratch(conf, sizeof(conf), "other.conf",
	    "[client]\nurl_template = ipc://%s/nobody-%%h\n", scratch);
	snprintf(template, sizeof(template), "ipc://%s/%%h", scratch);
	setenv("HPCXL_URL_TEMPLATE", template, 1);
	root = run_json_args(hosts, 0, NULL);
	assert_rows_are_hosts(root, "ipc://%s/h%d");
	json_decref(root);
	unsetenv("HPCXL_URL_TEMPLATE");

	/* Neither: the default, mutual TLS on port 7420, which needs a CA
	 * to check agents against: the CLI says so before asking anyone. */
	setenv("HPCXL_CLIENT_CONFIG", client_conf, 1);
	cr_assert_eq(run_cli_stderr(loopback, &err), 2, "%s", err);
	cr_assert_not_null(strstr(err,
	                       "node '127.0.0.1' (tls+tcp://127.0.0.1:7420): "
	                       "a tls+tcp:// node needs a CA (tls_ca)"),
	    "%s", err);
	free(err);
}

Test(cli, open_with_min_nodes_keeps_the_nodes_that_opened)
{
	char nodes[sizeof(roster) + 64], ghost[64], timeout[16];
	const char *args[] = { "open-session", "--profile", "xl", "--session",
		session, "--min-nodes", "3", "--timeout", timeout, NULL };
	json_t *root, *node;
	int i;

	snprintf(ghost, sizeof(ghost), "tcp://127.0.0.1:%d", unused_port());
	snprintf(nodes, sizeof(nodes), "%s,%s", roster, ghost);
	snprintf(timeout, sizeof(timeout), "%d", DOWN_TIMEOUT_MS);
	/* Three of four open: enough, so the session is not closed again
	 * and the call succeeds; the fourth row still says why it failed. */
	root = run_json_on(nodes, args, 0, NULL);
	for (i = 0; i < NAGENTS; i++) {
		node = node_of(root, (size_t)i, NAGENTS + 1);
		cr_assert_str_eq(str_of(node, "state"), "ok", "node %d: %s", i,
		    str_of(node, "msg"));
	}
	node = node_of(root, NAGENTS, NAGENTS + 1);
	cr_assert_str_eq(str_of(node, "state"), "unreachable");
	cr_assert_str_eq(str_of(node, "name"), ghost);
	json_decref(root);
	cr_assert(harness_wait_procs(session, NAGENTS, 10000));
}

/* A command line, with its environment and files, that must be refused
 * with exit status 2 and a message that says why. */
struct usage_case {
	const char *url_template; /* $HPCXL_URL_TEMPLATE, or NULL */
	const char *config_path; /* $HPCXL_CLIENT_CONFIG, else... */
	const char *config_text; /* ...a file of this, else the empty one */
	const char *nodes_file; /* text of a --nodes-file, or NULL */
	const char *args[8];
	const char *message;
};

static const struct usage_case roster_usage_cases[] = {
	{ .args = { "--nodes", "n[3-1]", "ping" },
	    .message = "--nodes: host list 'n[3-1]': range '3-1' is "
	               "reversed" },
	{ .args = { "--nodes", "n[1-2", "ping" },
	    .message = "host list 'n[1-2': '[' without ']'" },
	{ .args = { "--nodes", "n[]", "ping" }, .message = "empty range" },
	{ .args = { "--nodes", "n[1-2-3]", "ping" },
	    .message = "'1-2-3' is not a number N or a range N-M" },
	{ .args = { "--nodes", "n[12345678901]", "ping" },
	    .message = "more than 10 digits" },
	{ .args = { "--nodes", "node:7420", "ping" },
	    .message = "invalid character ':'" },
	{ .args = { "--nodes", "a,n[1-65536]", "ping" },
	    .message = "host list 'n[1-65536]' makes more than 65536 nodes" },
	{ .args = { "--nodes", "a,b,a", "ping" },
	    .message = "node 'a' is listed twice" },
	{ .url_template = "tcp://node:7420",
	    .args = { "--nodes", "n1", "ping" },
	    .message = "HPCXL_URL_TEMPLATE 'tcp://node:7420': no %h" },
	{ .url_template = "tcp://%s:7420",
	    .args = { "--nodes", "n1", "ping" },
	    .message = "'%' must be followed by h" },
	{ .config_text = "[client]\ncolour = blue\n",
	    .args = { "--nodes", "n1", "ping" },
	    .message = "other.conf:2: unknown key 'colour' in [client]" },
	{ .config_text = "[client]\nurl_template = tcp://%h:1\n\f:2\n",
	    .args = { "--nodes", "n1", "ping" },
	    .message = "other.conf:3: indented line" },
	{ .config_text = "[client]\nurl_template = tcp://node\n",
	    .args = { "--nodes", "n1", "ping" },
	    .message = "other.conf:2: url_template 'tcp://node': no %h" },
	{ .config_path = "/nonexistent/client.conf",
	    .args = { "--nodes", "tcp://127.0.0.1:1", "ping" },
	    .message
	    = "cannot read client config '/nonexistent/client.conf'" },
	{ .nodes_file = "a tcp://127.0.0.1:1\na tcp://127.0.0.1:2\n",
	    .args = { "ping" },
	    .message = "node 'a' is listed twice" },
	{ .nodes_file = "a tcp://127.0.0.1:1\nb tcp://127.0.0.1:1\n",
	    .args = { "ping" },
	    .message = "nodes 'a' and 'b' have the same URL "
	               "'tcp://127.0.0.1:1'" },
	{ .nodes_file = "a tcp://127.0.0.1:1\nb/c tcp://127.0.0.1:2\n",
	    .args = { "ping" },
	    .message = "nodes:2: invalid node name 'b/c'" },
	{ .nodes_file = "a tcp://127.0.0.1:1 tcp://127.0.0.1:2\n",
	    .args = { "ping" },
	    .message = "nodes:1: expected 'NAME URL' or 'URL'" },
	{ .args = { "--nodes", "a,b,c", "open-session", "--profile", "xl",
	      "--min-nodes", "4" },
	    .message = "--min-nodes: 4 is more than the 3 nodes" },
	{ .args = { "--nodes", "a", "open-session", "--profile", "xl",
	      "--min-nodes", "0" },
	    .message = "--min-nodes: '0' is not a whole number" },
	{ .args = { "--nodes", "a", "open-session", "--profile", "xl",
	      "--min-nodes", "most" },
	    .message = "--min-nodes: 'most'" },
	{ .args = { "--nodes", "a", "ping", "--min-nodes", "1" },
	    .message = "option '--min-nodes' is not valid for ping" },
};

static void
assert_usage_case(const struct usage_case *c, size_t i)
{
	char conf[PATH_MAX], nodes[PATH_MAX], *err;
	const char *args[MAX_ARGS];
	size_t n = 0, k;

	setenv("HPCXL_CLIENT_CONFIG", client_conf, 1);
	if (c->config_path != NULL)
		setenv("HPCXL_CLIENT_CONFIG", c->config_path, 1);
	if (c->config_text != NULL) {
		write_scratch(
		    conf, sizeof(conf), "other.conf", "%s", c->config_text);
		setenv("HPCXL_CLIENT_CONFIG", conf, 1);
	}
	if (c->url_template != NULL)
		setenv("HPCXL_URL_TEMPLATE", c->url_template, 1);
	else
		unsetenv("HPCXL_URL_TEMPLATE");
	if (c->nodes_file != NULL) {
		write_scratch(
		    nodes, sizeof(nodes), "nodes", "%s", c->nodes_file);
		args[n++] = "--nodes-file";
		args[n++] = nodes;
	}
	for (k = 0; c->args[k] != NULL; k++)
		args[n++] = c->args[k];
	args[n] = NULL;
	cr_assert_eq(run_cli_stderr(args, &err), 2, "case %zu: %s", i, err);
	cr_assert_not_null(strstr(err, c->message),
	    "case %zu: message '%s' lacks '%s'", i, err, c->message);
	free(err);
}

Test(cli, roster_usage_errors_exit_2_with_a_message)
{
	size_t i;

	for (i = 0;
	     i < sizeof(roster_usage_cases) / sizeof(*roster_usage_cases); i++)
		assert_usage_case(&roster_usage_cases[i], i);
	unsetenv("HPCXL_URL_TEMPLATE");
	setenv("HPCXL_CLIENT_CONFIG", client_conf, 1);
}

/* ---- node health ------------------------------------------------------- */

/* The row says its node answered and carries no unhealthy mark. */
static void
assert_healthy(json_t *node)
{
	cr_assert(json_is_true(json_object_get(node, "healthy")),
	    "node %s is not healthy", str_of(node, "url"));
	cr_assert(json_is_null(json_object_get(node, "unhealthy")));
}

Test(cli, clear_unhealthy_on_healthy_agents_reports_healthy)
{
	const char *clear_args[] = { "clear-unhealthy", NULL };
	const char *ping_args[] = { "ping", NULL };
	const char *status_args[] = { "status", NULL };
	const char *table_args[]
	    = { "--nodes", roster, "clear-unhealthy", NULL };
	json_t *root;
	char *out;
	int i;

	root = run_json(clear_args, 0, NULL);
	cr_assert(json_is_true(json_object_get(root, "ok")));
	cr_assert_null(json_object_get(root, "session"));
	assert_rows_in_roster_order(root);
	for (i = 0; i < NAGENTS; i++) {
		json_t *node = node_at(root, i);

		cr_assert_str_eq(str_of(node, "state"), "ok");
		cr_assert_str_eq(str_of(node, "node"), agents[i].node);
		/* Nothing to clear on a healthy node. */
		cr_assert_str_eq(str_of(node, "msg"), "healthy");
		assert_healthy(node);
	}
	json_decref(root);

	root = run_json(ping_args, 0, NULL);
	for (i = 0; i < NAGENTS; i++)
		assert_healthy(node_at(root, i));
	json_decref(root);
	root = run_json(status_args, 0, NULL);
	for (i = 0; i < NAGENTS; i++)
		assert_healthy(node_at(root, i));
	json_decref(root);

	cr_assert_eq(run_cli(table_args, &out, NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, "HEALTH"), "%s", out);
	cr_assert_null(strstr(out, "UNHEALTHY"), "%s", out);
	free(out);
}

/* ---- the library ------------------------------------------------------- */

static struct hpcxl_client *
client_open(void)
{
	const char *urls[NAGENTS];
	struct hpcxl_client *c = NULL;
	int i;

	for (i = 0; i < NAGENTS; i++)
		urls[i] = agents[i].url;
	cr_assert_eq(hpcxl_client_open(urls, NAGENTS, &c), 0);
	return c;
}

Test(cli, library_close_unknown_session_is_already_closed)
{
	struct hpcxl_client *c = client_open();
	struct hpcxl_report *r = NULL;
	size_t i;

	/* A negative timeout is the 120 s default: replies come at once. */
	cr_assert_eq(hpcxl_close_session(c, session, -1, &r), 0);
	cr_assert_not_null(r);
	cr_assert(r->ok);
	cr_assert_str_eq(r->session, session);
	cr_assert_eq(r->nnodes, NAGENTS);
	for (i = 0; i < NAGENTS; i++) {
		const struct hpcxl_node_report *n = &r->nodes[i];

		cr_assert_eq(n->state, HPCXL_NODE_ALREADY_CLOSED,
		    "node %zu: %s", i, hpcxl_node_state_name(n->state));
		cr_assert_str_eq(n->url, agents[i].url);
		cr_assert_str_eq(n->node, agents[i].node);
		cr_assert_not_null(n->msg);
	}
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

Test(cli, library_rejects_bad_arguments)
{
	static struct hpcxl_report untouched_report;
	static char untouched_client;
	const char *bad_url[] = { "nosuchscheme://x" };
	struct hpcxl_client *c = client_open();
	struct hpcxl_report *r = &untouched_report;
	struct hpcxl_client *none = (struct hpcxl_client *)&untouched_client;
	struct hpcxl_open_params p
	    = { .session = "s1", .profile = "xl", .workers = 0 };

	/* Failures leave the out-parameters as they were. */
	cr_assert_eq(hpcxl_client_open(bad_url, 1, &none), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_client_open(bad_url, 0, &none), HPCXL_EINVAL);
	cr_assert_eq((void *)none, (void *)&untouched_client);
	cr_assert_eq(hpcxl_close_session(c, "no/slash", -1, &r), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_status(c, "", 1000, &r), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_open_session(c, &p, 1000, &r), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_clear_unhealthy(NULL, 1000, &r), HPCXL_EINVAL);
	cr_assert_eq(hpcxl_clear_unhealthy(c, 1000, NULL), HPCXL_EINVAL);
	cr_assert_eq(r, &untouched_report);
	cr_assert_str_neq(hpcxl_strerror(HPCXL_EPARTIAL), "unknown error");
	hpcxl_client_close(c);
}

Test(cli, library_ping_reports_every_node)
{
	struct hpcxl_client *c = client_open();
	struct hpcxl_report *r = NULL;
	size_t i;

	cr_assert_eq(hpcxl_ping(c, 5000, &r), 0);
	cr_assert_null(r->session);
	cr_assert_eq(r->nnodes, NAGENTS);
	for (i = 0; i < NAGENTS; i++) {
		cr_assert_eq(r->nodes[i].state, HPCXL_NODE_OK);
		cr_assert_not_null(r->nodes[i].version);
		cr_assert_not_null(r->nodes[i].backend);
		cr_assert_null(r->nodes[i].unhealthy);
	}
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

Test(cli, library_clear_unhealthy_reports_every_node)
{
	struct hpcxl_client *c = client_open();
	struct hpcxl_report *r = NULL;
	size_t i;

	cr_assert_eq(hpcxl_clear_unhealthy(c, 5000, &r), 0);
	cr_assert(r->ok);
	cr_assert_null(r->session);
	cr_assert_eq(r->nnodes, NAGENTS);
	for (i = 0; i < NAGENTS; i++) {
		const struct hpcxl_node_report *n = &r->nodes[i];

		cr_assert_eq(n->state, HPCXL_NODE_OK, "node %zu: %s (%s)", i,
		    hpcxl_node_state_name(n->state), n->msg);
		cr_assert_str_eq(n->node, agents[i].node);
		cr_assert_str_eq(n->msg, "healthy");
		cr_assert_null(n->unhealthy);
	}
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

/* ---- waiting: the progress line and SIGINT ----------------------------- */

/* How long a test waits for the CLI to finish once it should. */
#define CLI_EXIT_WAIT_MS 30000

/* Reads fd until EOF (or EIO: a pty whose child is gone) or timeout_ms;
 * returns what came, NUL-terminated (free it). */
static char *
read_all(int fd, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t k = 1;

	cr_assert_not_null(buf);
	while (k > 0 && util_now_ms() < deadline) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (len + 1024 > cap)
			cr_assert_not_null(buf = realloc(buf, cap *= 2));
		k = read(fd, buf + len, cap - len - 1);
		if (k > 0)
			len += (size_t)k;
	}
	buf[len] = '\0';
	return buf;
}

/* "hpcxl ARGS", stdout into a pipe (*out_fd), stderr inherited. */
static pid_t
spawn_cli(const char *const *args, int *out_fd)
{
	const char *argv[MAX_ARGS];
	int n = 0, p[2];
	pid_t pid;

	argv[n++] = harness_bin("hpcxl");
	for (; *args != NULL && n < MAX_ARGS - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_eq(pipe(p), 0);
	cr_assert_geq(pid = fork(), 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* "hpcxl ARGS" on a new pseudo-terminal: what a person sees. */
static char *
run_cli_on_tty(const char *const *args, int *status)
{
	const char *argv[MAX_ARGS];
	int n = 0, master;
	char *out;
	pid_t pid;

	argv[n++] = harness_bin("hpcxl");
	for (; *args != NULL && n < MAX_ARGS - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_geq(pid = forkpty(&master, NULL, NULL, NULL), 0);
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	out = read_all(master, CLI_EXIT_WAIT_MS);
	cr_assert_eq(waitpid(pid, status, 0), pid);
	close(master);
	return out;
}

Test(cli, progress_line_only_on_a_terminal_and_not_with_json)
{
	const char *args[] = { "--nodes", roster, "close-session", session,
		"--timeout", "2500", NULL };
	const char *json_args[] = { "--nodes", roster, "--json",
		"close-session", session, "--timeout", "2500", NULL };
	char want[512], *out, *err = NULL;
	int status;

	/* A frozen agent keeps the call waiting until its timeout. */
	cr_assert_eq(kill(agents[1].pid, SIGSTOP), 0);
	snprintf(want, sizeof(want), "closing %s: 2/3 nodes, waiting for %s,",
	    session, agents[1].url);
	out = run_cli_on_tty(args, &status);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	cr_assert(strstr(out, want) != NULL, "no progress line in:\n%s", out);
	cr_assert(strstr(out, "s left") != NULL);
	cr_assert(strstr(out, "\r\033[K") != NULL, "line never erased");
	free(out);
	out = run_cli_on_tty(json_args, &status);
	cr_assert(strstr(out, "waiting for") == NULL, "--json: %s", out);
	free(out);
	cr_assert_eq(run_cli_stderr(args, &err), 1);
	cr_assert(strstr(err, "waiting for") == NULL, "not a tty: %s", err);
	free(err);
	kill(agents[1].pid, SIGCONT);
}

Test(cli, sigint_prints_the_report_so_far_and_exits_1)
{
	const char *args[] = { "--nodes", roster, "--json", "close-session",
		session, "--timeout", "60000", NULL };
	int64_t start, deadline;
	unsigned ports[4];
	json_error_t jerr;
	json_t *root;
	int fd, status;
	size_t i;
	char *out;
	pid_t pid;

	cr_assert_eq(kill(agents[1].pid, SIGSTOP), 0);
	start = util_now_ms();
	pid = spawn_cli(args, &fd);
	/* hpcxl takes SIGINT over before it dials: once it is connected to
	 * a live agent, a SIGINT is its to handle. */
	deadline = start + 10000;
	while (harness_tcp_conns_to(agents[0].url, ports, 4) == 0
	    && util_now_ms() < deadline)
		harness_nap_ms(10);
	cr_assert_gt(harness_tcp_conns_to(agents[0].url, ports, 4), 0);
	cr_assert_eq(kill(pid, SIGINT), 0);
	out = read_all(fd, CLI_EXIT_WAIT_MS);
	close(fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	kill(agents[1].pid, SIGCONT);
	cr_assert_lt(util_now_ms() - start, CLI_EXIT_WAIT_MS);
	cr_assert(WIFEXITED(status), "hpcxl died (status %#x)", status);
	cr_assert_eq(WEXITSTATUS(status), 1);
	root = json_loads(out, 0, &jerr);
	cr_assert_not_null(root, "not JSON (%s):\n%s", jerr.text, out);
	cr_assert_str_eq(
	    str_of(node_of(root, 1, NAGENTS), "state"), "interrupted");
	/* The live agents answered, or not yet when the SIGINT came. */
	for (i = 0; i < NAGENTS; i += 2) {
		const char *state = str_of(node_of(root, i, NAGENTS), "state");

		cr_assert(strcmp(state, "already_closed") == 0
		        || strcmp(state, "interrupted") == 0,
		    "node %zu: %s", i, state);
	}
	json_decref(root);
	free(out);
}

/* ---- issue 10, item 4: version, help, tables, JSON codes -------------- */

Test(cli, version_prints_the_library_version)
{
	const char *args[] = { "--version", NULL };
	char want[64];
	char *out;

	snprintf(want, sizeof(want), "hpcxl %s\n", hpcxl_version());
	cr_assert_eq(run_cli(args, &out, NULL), 0);
	cr_assert_str_eq(out, want);
	cr_assert_str_eq(hpcxl_version(), HPCXL_VERSION);
	free(out);
}

/* "COMMAND --help" (or "--help COMMAND") prints that command's help, not
 * the global one, and exits 0 without reaching any node. */
Test(cli, command_help_is_the_command_s_own)
{
	static const char *const cmds[] = { "open-session", "close-session",
		"status", "renew-session", "ping", "clear-unhealthy" };
	const char *args[4];
	char want[64];
	char *out;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		args[0] = cmds[i];
		args[1] = "--help";
		args[2] = NULL;
		snprintf(want, sizeof(want),
		    "usage: hpcxl [GLOBAL OPTIONS] %s", cmds[i]);
		cr_assert_eq(run_cli(args, &out, NULL), 0, "%s", cmds[i]);
		cr_assert_eq(strncmp(out, want, strlen(want)), 0, "%s", out);
		cr_assert_null(strstr(out, "commands:"), "%s", out);
		cr_assert_not_null(strstr(out, "--timeout MS"), "%s", out);
		free(out);
	}
	/* The command after --help: still its own help, with only its
	 * options. */
	cr_assert_eq(
	    run_cli((const char *[]) { "--help", "close-session", NULL }, &out,
	        NULL),
	    0);
	cr_assert_null(strstr(out, "--profile"), "%s", out);
	cr_assert_null(strstr(out, "--lease"), "%s", out);
	free(out);
	cr_assert_eq(
	    run_cli((const char *[]) { "--help", NULL }, &out, NULL), 0);
	cr_assert_not_null(strstr(out, "commands:"), "%s", out);
	cr_assert_not_null(strstr(out, "--version"), "%s", out);
	free(out);
}

/* A table: the header line, then one row per agent (and lines indented
 * under them), then the summary naming the command. No header word
 * ("NAME", "STATE", "ELAPSED") shows up in a node row. */
static void
assert_table(const char *out, const char *cmd)
{
	const char *line = out, *end;
	size_t rows = 0;
	char first[256];

	cr_assert_eq(strncmp(out, "session ", 8) == 0
	        ? strncmp(strchr(out, '\n') + 1, "NAME ", 5)
	        : strncmp(out, "NAME ", 5),
	    0, "%s: %s", cmd, out);
	if (strncmp(out, "session ", 8) == 0)
		line = strchr(out, '\n') + 1;
	line = strchr(line, '\n') + 1; /* past the header */
	for (; (end = strchr(line, '\n')) != NULL; line = end + 1) {
		snprintf(
		    first, sizeof(first), "%.*s", (int)(end - line), line);
		if (first[0] == ' ')
			continue; /* a session or unhealthy line */
		if (strncmp(first, cmd, strlen(cmd)) == 0)
			break; /* the summary */
		cr_assert_null(strstr(first, "NAME"), "%s: %s", cmd, out);
		cr_assert_null(strstr(first, "STATE"), "%s: %s", cmd, out);
		cr_assert_null(strstr(first, "ELAPSED"), "%s: %s", cmd, out);
		cr_assert_not_null(
		    strstr(first, agents[rows < NAGENTS ? rows : 0].url),
		    "%s: row %zu: %s", cmd, rows, out);
		rows++;
	}
	cr_assert_eq(rows, NAGENTS, "%s: %s", cmd, out);
	cr_assert_not_null(end, "%s: no summary: %s", cmd, out);
}

Test(cli, every_command_prints_a_well_formed_table)
{
	char id[64];
	const char *const cases[][8] = {
		{ "ping", NULL },
		{ "open-session", "--profile", "xl", "--session", id,
		    "--lease", "3600000", NULL },
		{ "status", NULL },
		{ "status", id, NULL },
		{ "renew-session", id, "--lease", "3600000", NULL },
		{ "clear-unhealthy", NULL },
		{ "close-session", id, NULL },
	};
	const char *args[12];
	char *out;
	size_t i, k;

	harness_unique("table", id, sizeof(id));
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		args[0] = "--nodes";
		args[1] = roster;
		for (k = 0; cases[i][k] != NULL; k++)
			args[k + 2] = cases[i][k];
		args[k + 2] = NULL;
		cr_assert_eq(run_cli(args, &out, NULL), 0, "%s", out);
		assert_table(out, cases[i][0]);
		free(out);
	}
}

/* Every row's "code": the wire code of its reply, or why there is none;
 * and "schema" at the top. */
Test(cli, json_has_a_schema_and_a_code_per_row)
{
	char ghost[64], nodes[sizeof(roster) + 80];
	const char *ping[] = { "ping", "--timeout", "3000", NULL };
	const char *close_args[] = { "close-session", "never-opened", NULL };
	const char *renew_args[]
	    = { "renew-session", "never-opened", "--lease", "1000", NULL };
	json_t *root;
	size_t i;

	snprintf(ghost, sizeof(ghost), "tcp://127.0.0.1:%d", unused_port());
	snprintf(nodes, sizeof(nodes), "%s,%s", roster, ghost);
	root = run_json_on(nodes, ping, 1, NULL);
	cr_assert_eq(int_of(root, "schema"), 1);
	for (i = 0; i < NAGENTS; i++)
		cr_assert_str_eq(
		    str_of(node_of(root, i, NAGENTS + 1), "code"), "ok");
	cr_assert_str_eq(str_of(node_of(root, NAGENTS, NAGENTS + 1), "code"),
	    "unreachable");
	json_decref(root);

	/* A close of nothing succeeds (already_closed), but the agent said
	 * not_found; a renew of nothing fails with the same code. */
	root = run_json(close_args, 0, NULL);
	cr_assert_eq(int_of(root, "schema"), 1);
	for (i = 0; i < NAGENTS; i++) {
		cr_assert_str_eq(
		    str_of(node_at(root, i), "state"), "already_closed");
		cr_assert_str_eq(
		    str_of(node_at(root, i), "code"), "not_found");
	}
	json_decref(root);
	root = run_json(renew_args, 1, NULL);
	for (i = 0; i < NAGENTS; i++) {
		cr_assert_str_eq(str_of(node_at(root, i), "state"), "error");
		cr_assert_str_eq(
		    str_of(node_at(root, i), "code"), "not_found");
	}
	json_decref(root);
}

/* The first worker of the first session of the first row of a status
 * report. */
static json_t *
first_worker(json_t *root)
{
	json_t *sessions = json_object_get(node_at(root, 0), "sessions");
	json_t *w = json_array_get(
	    json_object_get(json_array_get(sessions, 0), "workers"), 0);

	cr_assert_not_null(w, "no worker listed");
	return w;
}

/* The first worker of session id on the first agent, from status --json,
 * once its state is not "running" (the agent has reaped it); NULL at the
 * deadline. */
static json_t *
ended_worker(const char *id, json_t **root)
{
	const char *args[] = { "status", id, NULL };
	int64_t deadline = util_now_ms() + 10000;
	json_t *w;

	do {
		*root = run_json(args, 0, NULL);
		w = first_worker(*root);
		if (strcmp(str_of(w, "state"), "running") != 0)
			return w;
		json_decref(*root);
	} while (util_now_ms() < deadline);
	*root = NULL;
	return NULL;
}

/* The EXIT column and "exit" say 3 or SIGKILL, not the wait status. */
Test(cli, exit_column_decodes_the_wait_status)
{
	char crash[64], killed[64];
	const char *open_crash[] = { "open-session", "--profile", "xl-crash",
		"--session", crash, NULL };
	const char *open_xl[]
	    = { "open-session", "--profile", "xl", "--session", killed, NULL };
	const char *table[]
	    = { "--nodes", agents[0].url, "status", crash, NULL };
	json_t *root, *w;
	char *out;

	harness_unique("exit3", crash, sizeof(crash));
	harness_unique("exit9", killed, sizeof(killed));
	json_decref(run_json(open_crash, 0, NULL));
	cr_assert_not_null(w = ended_worker(crash, &root));
	cr_assert_eq(int_of(w, "exit_status"), 3 << 8);
	cr_assert_str_eq(str_of(w, "exit"), "3");
	json_decref(root);
	cr_assert_eq(run_cli(table, &out, NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, " 3 "), "%s", out);
	cr_assert_null(strstr(out, "768"), "%s", out);
	free(out);

	json_decref(run_json(open_xl, 0, NULL));
	root = run_json((const char *[]) { "status", killed, NULL }, 0, NULL);
	cr_assert_eq(
	    kill((pid_t)int_of(first_worker(root), "pid"), SIGKILL), 0);
	json_decref(root);
	cr_assert_not_null(w = ended_worker(killed, &root));
	cr_assert_str_eq(str_of(w, "exit"), "SIGKILL");
	json_decref(root);
	table[3] = killed;
	cr_assert_eq(run_cli(table, &out, NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, " SIGKILL "), "%s", out);
	free(out);
	json_decref(run_json(
	    (const char *[]) { "close-session", crash, NULL }, 0, NULL));
	json_decref(run_json(
	    (const char *[]) { "close-session", killed, NULL }, 0, NULL));
}

/* Options win over the config file: a --listen replaces the file's
 * listen lines instead of adding to them. */
Test(cli, agent_listen_option_replaces_the_config_s)
{
	char conf[PATH_MAX], sock[sizeof(scratch) + 16], url[PATH_MAX];
	const char *extra[] = { "--config", conf, NULL };
	struct harness_agent a;

	snprintf(sock, sizeof(sock), "%s/conf-listen", scratch);
	write_scratch(conf, sizeof(conf), "other.conf",
	    "[agent]\nlisten = ipc://%s\n", sock);
	cr_assert_eq(harness_agent_start(&a, "lsn", extra), 0);
	cr_assert_not(harness_ready_url(&a, "ipc://", url, sizeof(url)),
	    "the agent also listens on %s", url);
	cr_assert(harness_ready_url(&a, "tcp://", url, sizeof(url)));
	cr_assert_neq(access(sock, F_OK), 0, "%s exists", sock);
	harness_agent_stop(&a, 10000);
}
