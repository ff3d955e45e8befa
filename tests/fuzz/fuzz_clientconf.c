/*
 * The CLI's client config loader (controller/cli/clientconf.c, compiled in):
 * the input is the file $HPCXL_CLIENT_CONFIG names, read by
 * clientconf_load() as the hpcxl command does before it opens a client,
 * so no network is involved. A template that loads must then expand a
 * host name with clientconf_url().
 */
#include "fuzz.h"

#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The CLI's own cli_usage_error() lives in args.c with the whole command
 * line parser: this one formats the message the same way (so ASan checks
 * its arguments) but keeps it off stderr, which would slow every run.
 */
int
cli_usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* The environment would override the file: only the file counts. */
	unsetenv("HPCXL_URL_TEMPLATE");
	fuzz_require(setenv("HPCXL_CLIENT_CONFIG", fuzz_file_path(), 1) == 0,
	    "setenv failed");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char host[] = "n01";
	struct clientconf cc;
	char url[CLI_URL_MAX];
	int rv;

	fuzz_file_set(data, size);
	rv = clientconf_load(&cc);
	if (rv != CLI_EXIT_OK) {
		fuzz_require(rv == CLI_EXIT_USAGE || rv == CLI_EXIT_FAIL,
		    "clientconf_load: an exit status cli.h does not name");
		return 0;
	}
	/* A template is at most CLIENTCONF_TEMPLATE_MAX bytes with a %h in
	 * it: with a short host it fits a URL buffer and holds the host. */
	fuzz_require(strnlen(cc.url_template, sizeof(cc.url_template))
	        <= CLIENTCONF_TEMPLATE_MAX,
	    "clientconf: template longer than its limit");
	fuzz_require(clientconf_url(&cc, host, url, sizeof(url)) == 0
	        && strstr(url, host) != NULL,
	    "clientconf_url: a loaded template does not place the host");
	return 0;
}
