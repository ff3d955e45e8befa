/*
 * hpcxl: open, close and inspect sessions from the shell.
 *
 * usage: hpcxl [--nodes LIST] [--nodes-file FILE] [--json] [-v]
 *              COMMAND ...          (see cli_usage() or hpcxl --help)
 *
 * Exit status: 0 every node succeeded, 1 some node failed, was partial or
 * unreachable, or reported itself unhealthy (or the call itself failed, or
 * was interrupted by SIGINT: the report so far is printed), 2 usage or
 * configuration error.
 */
#include "cli.h"
#include "watch.h"

#include "hpcxl/common/log.h"

#include <stdlib.h>

/* Names the node whose URL nng cannot dial (hpcxl_client_open_nodes only
 * says EINVAL; names and duplicates are checked already). Nothing is
 * dialled. */
static int
main_bad_url(const struct roster *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct hpcxl_node *node = &r->nodes[i];

		if (hpcxl_url_check(node->url) == HPCXL_EINVAL)
			return cli_usage_error("node '%s': invalid URL '%s' "
			                       "(e.g. tcp://host:port)",
			    node->name, node->url);
	}
	return cli_usage_error("invalid node list");
}

/* A file setting of the client config, or NULL when it names none. */
static const char *
main_file(const char *setting)
{
	return setting[0] != '\0' ? setting : NULL;
}

static int
main_client(const struct cli_args *a, struct hpcxl_client **c)
{
	struct hpcxl_client_opts o = HPCXL_CLIENT_OPTS_INIT;
	char why[CLIENTCONF_PATH_MAX + 256] = "";
	int rv;

	o.tls_cert = main_file(a->conf.tls_cert);
	o.tls_key = main_file(a->conf.tls_key);
	o.tls_ca = main_file(a->conf.tls_ca);
	o.errbuf = why;
	o.errbuf_len = sizeof(why);
	rv = hpcxl_client_open_opts(a->roster.nodes, a->roster.n, &o, c);
	/* A TLS file or setting: the message names it. */
	if (rv == HPCXL_ECONFIG) {
		fprintf(stderr, "hpcxl: %s\n", why);
		return CLI_EXIT_USAGE;
	}
	if (rv == HPCXL_EINVAL)
		return main_bad_url(&a->roster);
	if (rv != 0) {
		fprintf(stderr, "hpcxl: %s\n", hpcxl_strerror(rv));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static int
main_call(
    struct hpcxl_client *c, const struct cli_args *a, struct hpcxl_report **r)
{
	switch (a->cmd) {
	case CLI_OPEN:
		return hpcxl_open_session(c, &a->open, a->timeout_ms, r);
	case CLI_CLOSE:
		return hpcxl_close_session(c, a->session, a->timeout_ms, r);
	case CLI_STATUS:
		return hpcxl_status(c, a->session, a->timeout_ms, r);
	case CLI_PING:
		return hpcxl_ping(c, a->timeout_ms, r);
	case CLI_RENEW:
		return hpcxl_renew_session(
		    c, a->session, a->open.lease_ms, a->timeout_ms, r);
	case CLI_CLEAR:
		return hpcxl_clear_unhealthy(c, a->timeout_ms, r);
	}
	return HPCXL_EINVAL;
}

/*
 * The client is not closed: the process ends right after, and the kernel
 * closes its connections then. Closing it would only wait for nng to take
 * each connection down on its one reaper thread — about 0.1 ms a node, and
 * for ever when nng 1.5.2's TLS transport has wedged that thread (a send
 * re-posted after its pipe closed, as an agent that stops mid-request can
 * cause: ARCHITECTURE.md, "The front"); a script must not hang on it. The
 * pointer is kept so that LeakSanitizer sees the client as in use.
 */
static struct hpcxl_client *kept_client;

static void
main_leave_client(struct hpcxl_client *c)
{
	kept_client = c;
}

static int
main_run(const struct cli_args *a)
{
	struct hpcxl_client *c = NULL;
	struct hpcxl_report *r = NULL;
	int rv, out;

	watch_start(a);
	if ((rv = main_client(a, &c)) != 0) {
		watch_stop();
		return rv;
	}
	watch_attach(c, a);
	rv = main_call(c, a, &r);
	watch_stop();
	if (rv != 0 && rv != HPCXL_EPARTIAL) {
		fprintf(stderr, "hpcxl: %s failed: %s\n", cli_cmd_name(a->cmd),
		    hpcxl_strerror(rv));
		goto out;
	}
	out = a->json ? output_json(a, r) : output_table(a, r);
	/* Out now, whole: a reader of a pipe gets the report before the
	 * process ends (main_leave_client()). */
	if (fflush(stdout) != 0)
		out = -1;
	if (out != 0) {
		fputs("hpcxl: cannot write the report\n", stderr);
		rv = HPCXL_ENOMEM;
	}
	/* An unhealthy node answers, but refuses new sessions: a health
	 * check run by a script must see that in the exit status. */
	if (rv == 0 && output_unhealthy_count(r) > 0)
		rv = HPCXL_EPARTIAL;
out:
	hpcxl_report_free(r);
	main_leave_client(c);
	return rv == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int
main(int argc, char **argv)
{
	struct cli_args a = { .cmd = CLI_PING };
	int rv;

	log_init("hpcxl", LOG_INFO);
	rv = cli_parse(argc, argv, &a);
	if (rv == 0) {
		if (a.verbose) {
			log_set_level(LOG_DEBUG);
			hpcxl_set_log_level(LOG_DEBUG);
		}
		rv = main_run(&a);
	} else if (rv < 0) {
		rv = CLI_EXIT_OK; /* --help */
	}
	cli_args_free(&a);
	return rv;
}
