/*
 * Mutual TLS end to end, and the agent's safe defaults: real agents on
 * tls+tcp4://localhost, certificates made by deploy/scripts/make-certs.sh
 * into a temporary directory (removed when the test ends), libhpcxl and the
 * hpcxl CLI as clients. Loopback only: 0.0.0.0 appears only in an agent
 * start that must be refused, which never listens.
 */
#include "harness.h"

#include "hpcxl/hpcxl.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PING_MS 5000
/* A refused client never gets a reply: its ping waits this long. */
#define REFUSED_MS 1500
/* What hpcxl may take beyond its --timeout (start, TLS handshakes, its
 * close) on a busy machine before the test calls it hung. */
#define CLI_MARGIN_MS 10000
/* make-certs.sh, openssl and an agent that refuses to start. */
#define TOOL_MS 60000
#define SESSION_WORKERS 2

/* The CA everything trusts (a/), and one nobody trusts (b/). */
static char pki[PATH_MAX];
static char trusted_dir[PATH_MAX + 8], foreign_dir[PATH_MAX + 8];

/* The agents: one whose certificate names "localhost", one whose names
 * "other.example" (both of the trusted CA). */
static struct harness_agent agent, misnamed;
static char agent_url[256], misnamed_url[256];
static char session[64];

/* ---- files ------------------------------------------------------------- */

/* pki/<dir>/<name>, in one of eight rotating buffers. */
static const char *
pki_file(const char *dir, const char *name)
{
	static char paths[8][2 * PATH_MAX];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 2 * PATH_MAX, "%s/%s/%s", pki, dir, name);
	return p;
}

static const char *
trusted(const char *name)
{
	return pki_file("a", name);
}

/*
 * Runs argv with stdout and stderr into *out; returns the exit status.
 * A program still running after timeout_ms fails the test, with what it
 * said, rather than the test hanging until Criterion's timeout.
 */
static int
run_capturing(const char *const *argv, int timeout_ms, char **out)
{
	const char *sh[32] = { "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1" };
	struct harness_run_result r;
	size_t n = 3;

	for (size_t i = 0; argv[i] != NULL && n < 31; i++)
		sh[n++] = argv[i];
	sh[n] = NULL;
	cr_assert_eq(harness_run_bounded(sh, timeout_ms, &r), 0,
	    "cannot run %s", argv[0]);
	cr_assert_not(r.timed_out,
	    "%s did not exit within %d ms (killed after %lld ms); it said: "
	    "%s",
	    argv[0], timeout_ms, (long long)r.elapsed_ms, r.out);
	*out = r.out;
	return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

static void
make_certs(void)
{
	const char *script = HPCXL_MAKE_CERTS;
	const char *a[] = { script, "--ip", "127.0.0.1", "--agent",
		"localhost", "--agent", "other.example", "--client", "good",
		"--expired-client", "old", trusted_dir, NULL };
	const char *b[]
	    = { script, "--client", "stranger", foreign_dir, NULL };
	char *out;

	snprintf(trusted_dir, sizeof(trusted_dir), "%s/a", pki);
	snprintf(foreign_dir, sizeof(foreign_dir), "%s/b", pki);
	cr_assert_eq(
	    run_capturing(a, TOOL_MS, &out), 0, "make-certs.sh: %s", out);
	free(out);
	cr_assert_eq(
	    run_capturing(b, TOOL_MS, &out), 0, "make-certs.sh: %s", out);
	free(out);
}

/* ---- agents ------------------------------------------------------------ */

/* The line of a's ready file with its tls+tcp:// URL (the harness's own
 * tcp:// loopback listener is the first). */
static void
tls_url_of(const struct harness_agent *a, char *out, size_t len)
{
	char path[PATH_MAX + 16], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ready", a->dir);
	cr_assert_not_null(f = fopen(path, "r"));
	out[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "tls+tcp", 7) == 0)
			snprintf(out, len, "%s", line);
	}
	fclose(f);
	cr_assert_neq(out[0], '\0', "no tls+tcp:// line in %s", path);
}

static void
start_tls_agent(struct harness_agent *a, const char *node, const char *host,
    char *url, size_t len)
{
	char cert[64], key[64];
	const char *args[]
	    = { "--listen", "tls+tcp4://localhost:0", "--tls-cert", NULL,
		      "--tls-key", NULL, "--tls-ca", trusted("ca.pem"), NULL };

	snprintf(cert, sizeof(cert), "agent-%s.pem", host);
	snprintf(key, sizeof(key), "agent-%s.key", host);
	args[3] = trusted(cert);
	args[5] = trusted(key);
	cr_assert_eq(harness_agent_start(a, node, args), 0);
	tls_url_of(a, url, len);
}

static void
set_up(void)
{
	snprintf(pki, sizeof(pki), "/tmp/hpcxl-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(pki));
	make_certs();
	start_tls_agent(
	    &agent, "tls", "localhost", agent_url, sizeof(agent_url));
	start_tls_agent(&misnamed, "tlsname", "other.example", misnamed_url,
	    sizeof(misnamed_url));
	harness_unique("tls", session, sizeof(session));
}

static void
tear_down(void)
{
	harness_agent_stop(&agent, 15000);
	harness_agent_stop(&misnamed, 15000);
	harness_session_kill(session);
	harness_remove_tree(pki);
}

TestSuite(tls, .init = set_up, .fini = tear_down, .timeout = 120);

/* ---- clients ----------------------------------------------------------- */

struct tls_files {
	const char *cert, *key, *ca;
};

static const struct tls_files no_files = { NULL, NULL, NULL };

/* The good client's files (pki is only known once set_up ran). */
static struct tls_files
good(void)
{
	struct tls_files f = { trusted("client-good.pem"),
		trusted("client-good.key"), trusted("ca.pem") };

	return f;
}

/* A client of one node; fails the test when it cannot be opened. */
static struct hpcxl_client *
client_of(const char *url, struct tls_files f)
{
	struct hpcxl_client_opts o = HPCXL_CLIENT_OPTS_INIT;
	struct hpcxl_node node = { .url = url };
	struct hpcxl_client *c = NULL;
	char why[1024] = "";

	o.tls_cert = f.cert;
	o.tls_key = f.key;
	o.tls_ca = f.ca;
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	cr_assert_eq(hpcxl_client_open_opts(&node, 1, &o, &c), 0,
	    "open %s: %s", url, why);
	return c;
}

/* One ping of c's node: its state, and its message into msg. */
static enum hpcxl_node_state
ping_state(struct hpcxl_client *c, int timeout_ms, char *msg, size_t len)
{
	struct hpcxl_report *r = NULL;
	enum hpcxl_node_state st;
	int rv = hpcxl_ping(c, timeout_ms, &r);

	cr_assert(
	    rv == 0 || rv == HPCXL_EPARTIAL, "ping: %s", hpcxl_strerror(rv));
	st = r->nodes[0].state;
	if (msg != NULL)
		snprintf(msg, len, "%s", r->nodes[0].msg);
	hpcxl_report_free(r);
	return st;
}

Test(tls, good_client_opens_and_closes_a_session)
{
	struct hpcxl_open_params p = {
		.session = session, .profile = "xl", .workers = SESSION_WORKERS
	};
	struct hpcxl_client *c = client_of(agent_url, good());
	struct hpcxl_report *r = NULL;

	cr_assert_eq(ping_state(c, PING_MS, NULL, 0), HPCXL_NODE_OK);
	cr_assert_eq(hpcxl_open_session(c, &p, PING_MS, &r), 0);
	cr_assert_eq(r->nodes[0].workers, SESSION_WORKERS);
	cr_assert_str_eq(r->nodes[0].node, agent.node);
	hpcxl_report_free(r);
	cr_assert(harness_wait_procs(session, SESSION_WORKERS, PING_MS));
	cr_assert_eq(hpcxl_close_session(c, session, PING_MS, &r), 0);
	cr_assert_eq(r->nodes[0].state, HPCXL_NODE_CLOSED);
	hpcxl_report_free(r);
	cr_assert(harness_wait_procs(session, 0, PING_MS));
	hpcxl_client_close(c);
}

/* ---- refusals ---------------------------------------------------------- */

/* A client that must not get through, and what its row should say. */
struct refusal {
	const char *what;
	const char *url; /* NULL: the good agent's */
	struct tls_files files;
	const char *reason; /* in the row's message, or NULL */
};

/* tcp:// on the port of the agent's TLS listener. */
static void
plain_url_of(const char *tls, char *out, size_t len)
{
	const char *port = strrchr(tls, ':');

	cr_assert_not_null(port);
	snprintf(out, len, "tcp://127.0.0.1%s", port);
}

/* Tries r while good, a client of the same agent, keeps its connection;
 * returns true when r was refused and good still got its answer. */
static bool
refused_while_served(const struct refusal *r, struct hpcxl_client *good_c)
{
	struct hpcxl_client *bad = client_of(r->url, r->files);
	enum hpcxl_node_state st;
	char msg[512];

	st = ping_state(bad, REFUSED_MS, msg, sizeof(msg));
	cr_log_info("%s: %s (%s)", r->what, hpcxl_node_state_name(st), msg);
	/* The refused client keeps redialling while the good one asks. */
	cr_assert_eq(ping_state(good_c, PING_MS, NULL, 0), HPCXL_NODE_OK,
	    "the good client was not served after: %s", r->what);
	hpcxl_client_close(bad);
	if (r->reason != NULL)
		cr_assert_not_null(strstr(msg, r->reason),
		    "%s: '%s' lacks '%s'", r->what, msg, r->reason);
	return st == HPCXL_NODE_UNREACHABLE;
}

Test(tls, every_bad_client_is_refused_and_the_good_one_served)
{
	char plain[256];
	const struct tls_files g = good();
	const struct refusal cases[] = {
		{ "no client certificate", agent_url, { NULL, NULL, g.ca },
		    NULL },
		{ "a client certificate of another CA", agent_url,
		    { pki_file("b", "client-stranger.pem"),
		        pki_file("b", "client-stranger.key"), g.ca },
		    "TLS authentication failed" },
		{ "an expired client certificate", agent_url,
		    { trusted("client-old.pem"), trusted("client-old.key"),
		        g.ca },
		    "TLS authentication failed" },
		{ "plain tcp:// to the TLS listener", plain, no_files, NULL },
		{ "an agent whose certificate names another host",
		    misnamed_url, g, "TLS authentication failed" },
		{ "an agent of a CA the client does not trust", agent_url,
		    { g.cert, g.key, pki_file("b", "ca.pem") },
		    "TLS authentication failed" },
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	struct hpcxl_client *good_c = client_of(agent_url, g);
	size_t refused = 0;

	plain_url_of(agent_url, plain, sizeof(plain));
	cr_assert_eq(ping_state(good_c, PING_MS, NULL, 0), HPCXL_NODE_OK);
	for (size_t i = 0; i < n; i++)
		refused += refused_while_served(&cases[i], good_c);
	cr_log_info("refused %zu of %zu bad clients", refused, n);
	cr_assert_eq(refused, n, "only %zu of %zu bad clients were refused",
	    refused, n);
	cr_assert_eq(kill(agent.pid, 0), 0, "the agent is gone");
	hpcxl_client_close(good_c);
}

/* ---- the CLI ----------------------------------------------------------- */

/* hpcxl ping of the good agent, with whatever TLS files come from where
 * the test put them; the exit status. */
static int
cli_ping(const char *const *tls_args)
{
	char timeout[16];
	const char *argv[16] = { harness_bin("hpcxl"), "--nodes", agent_url,
		"--timeout", timeout };
	size_t n = 5;
	char *out;
	int rc;

	snprintf(timeout, sizeof(timeout), "%d", PING_MS);
	for (size_t i = 0; tls_args != NULL && tls_args[i] != NULL; i++)
		argv[n++] = tls_args[i];
	argv[n++] = "ping";
	argv[n] = NULL;
	rc = run_capturing(argv, PING_MS + CLI_MARGIN_MS, &out);
	cr_log_info("hpcxl ping -> %d: %s", rc, out);
	free(out);
	return rc;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void
clear_client_env(void)
{
	unsetenv("HPCXL_TLS_CERT");
	unsetenv("HPCXL_TLS_KEY");
	unsetenv("HPCXL_TLS_CA");
	unsetenv("HPCXL_URL_TEMPLATE");
	unsetenv("XDG_CONFIG_HOME");
}

static void
set_client_env(struct tls_files f)
{
	setenv("HPCXL_TLS_CERT", f.cert, 1);
	setenv("HPCXL_TLS_KEY", f.key, 1);
	setenv("HPCXL_TLS_CA", f.ca, 1);
}

/* pki/<dir>/client.conf, naming the files of client relative to its
 * folder; returns its path. */
static const char *
write_client_conf(const char *dir, const char *client)
{
	const char *path = pki_file(dir, "client.conf");
	char text[512];

	snprintf(text, sizeof(text),
	    "[client]\ntls_cert = client-%s.pem\ntls_key = client-%s.key\n"
	    "tls_ca = ca.pem\n",
	    client, client);
	write_file(path, text);
	return path;
}

/* The user's config file, $HOME/.config/hpcxl/client.conf, with text. */
static void
write_user_conf(const char *text)
{
	char dir[PATH_MAX + 32], path[PATH_MAX + 64];

	snprintf(dir, sizeof(dir), "%s/home", pki);
	mkdir(dir, 0700);
	setenv("HOME", dir, 1);
	strcat(dir, "/.config");
	mkdir(dir, 0700);
	strcat(dir, "/hpcxl");
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/client.conf", dir);
	write_file(path, text);
}

Test(tls, cli_takes_option_over_environment_over_config_file)
{
	const struct tls_files g = good();
	const char *options[] = { "--tls-cert", g.cert, "--tls-key", g.key,
		"--tls-ca", g.ca, NULL };
	const struct tls_files foreign
	    = { pki_file("b", "client-stranger.pem"),
		      pki_file("b", "client-stranger.key"),
		      pki_file("b", "ca.pem") };
	char text[3 * PATH_MAX];

	clear_client_env();
	setenv("HPCXL_CLIENT_CONFIG", write_client_conf("a", "good"), 1);
	cr_assert_eq(cli_ping(NULL), 0, "config file alone");
	setenv("HPCXL_CLIENT_CONFIG", write_client_conf("b", "stranger"), 1);
	cr_assert_eq(cli_ping(NULL), 1, "the foreign files are refused");
	set_client_env(g);
	cr_assert_eq(cli_ping(NULL), 0, "environment over the config file");
	set_client_env(foreign);
	cr_assert_eq(cli_ping(options), 0, "options over the environment");
	clear_client_env();

	/* Without $HPCXL_CLIENT_CONFIG: the user's file. */
	unsetenv("HPCXL_CLIENT_CONFIG");
	snprintf(text, sizeof(text),
	    "[client]\ntls_cert = %s\ntls_key = %s\ntls_ca = %s\n", g.cert,
	    g.key, g.ca);
	write_user_conf(text);
	cr_assert_eq(cli_ping(NULL), 0, "the user's config file");
}

/* hpcxl ping with these arguments exits 2 and says message. */
static void
assert_cli_refuses(const char *const *args, const char *message)
{
	const char *argv[16] = { harness_bin("hpcxl"), "--nodes", agent_url };
	size_t n = 3;
	char *out;
	int rc;

	for (size_t i = 0; args[i] != NULL; i++)
		argv[n++] = args[i];
	argv[n++] = "ping";
	argv[n] = NULL;
	/* Refused before it dials: its timeout (the default) never runs. */
	rc = run_capturing(argv, CLI_MARGIN_MS, &out);
	cr_assert_eq(rc, 2, "exit %d, want 2: %s", rc, out);
	cr_assert_not_null(
	    strstr(out, message), "'%s' lacks '%s'", out, message);
	free(out);
}

/* An encrypted copy of the good client's key. */
static const char *
encrypted_key(void)
{
	static char path[PATH_MAX + 32];
	const char *argv[] = { "/usr/bin/openssl", "pkey", "-in",
		trusted("client-good.key"), "-aes256", "-passout",
		"pass:secret", "-out", path, NULL };
	char *out;

	snprintf(path, sizeof(path), "%s/encrypted.key", pki);
	cr_assert_eq(
	    run_capturing(argv, TOOL_MS, &out), 0, "openssl: %s", out);
	free(out);
	return path;
}

Test(tls, cli_names_the_file_or_setting_that_is_wrong)
{
	char missing[PATH_MAX + 16], message[PATH_MAX + 128];
	const struct tls_files g = good();
	const char *stranger_key = pki_file("b", "client-stranger.key");
	const char *enc = encrypted_key();

	clear_client_env();
	setenv("HPCXL_CLIENT_CONFIG", "/dev/null", 1);
	snprintf(missing, sizeof(missing), "%s/no-such.key", pki);
	snprintf(message, sizeof(message),
	    "%s: cannot read the file: No such file or directory", missing);
	assert_cli_refuses((const char *[]) { "--tls-cert", g.cert,
	                       "--tls-key", missing, "--tls-ca", g.ca, NULL },
	    message);
	snprintf(message, sizeof(message),
	    "%s: the key does not match the certificate in %s", stranger_key,
	    g.cert);
	assert_cli_refuses(
	    (const char *[]) { "--tls-cert", g.cert, "--tls-key", stranger_key,
	        "--tls-ca", g.ca, NULL },
	    message);
	snprintf(message, sizeof(message), "%s: no certificate in it", g.key);
	assert_cli_refuses((const char *[]) { "--tls-cert", g.cert,
	                       "--tls-key", g.key, "--tls-ca", g.key, NULL },
	    message);
	snprintf(message, sizeof(message), "%s: the key is encrypted", enc);
	assert_cli_refuses((const char *[]) { "--tls-cert", g.cert,
	                       "--tls-key", enc, "--tls-ca", g.ca, NULL },
	    message);
	assert_cli_refuses(
	    (const char *[]) { "--tls-cert", g.cert, "--tls-ca", g.ca, NULL },
	    "comes without its key (tls_key)");
	assert_cli_refuses((const char *[]) { NULL },
	    "a tls+tcp:// node needs a CA (tls_ca)");
}

/* ---- the agent's start ------------------------------------------------- */

/* hpcxl-agent with args exits 2, says message, and never listened. */
/* Runs the agent with args (and --check-config when check): its exit
 * status, with what it said in *out; it must have made nothing. */
static int
run_agent_once(const char *const *args, bool check, char **out)
{
	char state[PATH_MAX + 16], ready[PATH_MAX + 16];
	const char *argv[24] = { harness_bin("hpcxl-agent"), "--node",
		"tls-refused", "--state-dir", state, "--ready-file", ready };
	size_t n = 7;
	int rc;

	snprintf(state, sizeof(state), "%s/refused-state", pki);
	snprintf(ready, sizeof(ready), "%s/refused-ready", pki);
	for (size_t i = 0; args[i] != NULL && n < 22; i++)
		argv[n++] = args[i];
	if (check)
		argv[n++] = "--check-config";
	argv[n] = NULL;
	rc = run_capturing(argv, TOOL_MS, out);
	cr_assert_neq(access(ready, F_OK), 0,
	    "a refused or checking agent "
	    "was ready: %s",
	    *out);
	cr_assert_neq(access(state, F_OK), 0,
	    "a refused or checking agent "
	    "made state: %s",
	    *out);
	return rc;
}

/* The agent refuses to start with args, saying message, and
 * --check-config says the same. */
static void
assert_agent_refuses(const char *const *args, const char *message)
{
	for (int check = 0; check <= 1; check++) {
		char *out;
		int rc = run_agent_once(args, check, &out);

		cr_assert_eq(rc, 2, "exit %d, want 2%s: %s", rc,
		    check ? " (--check-config)" : "", out);
		cr_assert_not_null(
		    strstr(out, message), "'%s' lacks '%s'", out, message);
		free(out);
	}
}

Test(tls, agent_refuses_to_start_and_says_why)
{
	const struct tls_files g = good();
	const char *cert = trusted("agent-localhost.pem");
	const char *key = trusted("agent-localhost.key");
	char message[PATH_MAX + 128], none[PATH_MAX + 16];

	assert_agent_refuses(
	    (const char *[]) { "--listen", "tcp://0.0.0.0:0", NULL },
	    "listen URL 'tcp://0.0.0.0:0': plain tcp:// is not "
	    "authenticated or encrypted, so the agent uses it on loopback "
	    "only");
	assert_agent_refuses(
	    (const char *[]) { "--listen", "tls+tcp4://localhost:0",
	        "--tls-cert", cert, "--tls-key", key, NULL },
	    "tls_ca (--tls-ca) is not set");
	snprintf(message, sizeof(message),
	    "%s: the key does not match the certificate in %s", g.key, cert);
	assert_agent_refuses((const char *[]) { "--listen",
	                         "tls+tcp4://localhost:0", "--tls-cert", cert,
	                         "--tls-key", g.key, "--tls-ca", g.ca, NULL },
	    message);
	snprintf(none, sizeof(none), "%s/none.key", pki);
	snprintf(message, sizeof(message),
	    "%s: cannot read the file: No such file or directory", none);
	assert_agent_refuses((const char *[]) { "--listen",
	                         "tls+tcp4://localhost:0", "--tls-cert", cert,
	                         "--tls-key", none, "--tls-ca", g.ca, NULL },
	    message);
	snprintf(message, sizeof(message), "%s: no certificate in it", key);
	assert_agent_refuses(
	    (const char *[]) { "--listen", "tls+tcp4://localhost:0",
	        "--tls-cert", cert, "--tls-key", key, "--tls-ca", key, NULL },
	    message);
	assert_agent_refuses(
	    (const char *[]) { "--listen", "ws://127.0.0.1:0", NULL },
	    "the agent listens on tls+tcp://HOST:PORT, tcp://HOST:PORT "
	    "(loopback) or ipc:///PATH only");
}

Test(tls, check_config_passes_what_the_agent_would_start_with)
{
	const struct tls_files g = good();
	char *out;
	int rc = run_agent_once(
	    (const char *[]) { "--listen", "tls+tcp4://localhost:0",
	        "--tls-cert", trusted("agent-localhost.pem"), "--tls-key",
	        trusted("agent-localhost.key"), "--tls-ca", g.ca, NULL },
	    true, &out);

	cr_assert_eq(rc, 0, "exit %d, want 0: %s", rc, out);
	cr_assert_not_null(strstr(out, "configuration OK"), "%s", out);
	free(out);
}

Test(tls, root_agent_refuses_a_profile_without_user)
{
	if (geteuid() != 0)
		cr_skip_test("a non-root agent runs workers as itself");
	assert_agent_refuses(
	    (const char *[]) { "--listen", "tcp://127.0.0.1:0", "--profile",
	        "sheet=/bin/sleep 60", NULL },
	    "profile 'sheet' names no user, and a root agent runs workers "
	    "as root only when told to");
}

/* ---- ipc --------------------------------------------------------------- */

/* A group other than the test's own, or NULL. */
static const struct group *
other_group(void)
{
	static const char *const names[] = { "daemon", "nogroup", "users" };
	const struct group *gr;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((gr = getgrnam(names[i])) != NULL
		    && gr->gr_gid != getegid())
			return gr;
	}
	return NULL;
}

Test(tls, ipc_socket_is_0660_in_ipc_group)
{
	const struct group *gr = other_group();
	char url[PATH_MAX + 32], *path;
	const char *args[] = { "--listen", url, "--ipc-group", NULL, NULL };
	struct harness_agent ipc_agent;
	struct hpcxl_client *c;
	struct stat st;

	if (gr == NULL)
		cr_skip_test("no group to give the socket to");
	snprintf(url, sizeof(url), "ipc://%s/agent.sock", pki);
	args[3] = gr->gr_name;
	cr_assert_eq(harness_agent_start(&ipc_agent, "tlsipc", args), 0);
	path = url + strlen("ipc://");
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_gid, gr->gr_gid);
	c = client_of(url, no_files);
	cr_assert_eq(ping_state(c, PING_MS, NULL, 0), HPCXL_NODE_OK);
	hpcxl_client_close(c);
	harness_agent_stop(&ipc_agent, 15000);
}
