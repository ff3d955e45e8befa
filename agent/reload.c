/* The config's profiles read again on SIGHUP (reload.h). */
#include "reload.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <stdio.h>
#include <string.h>

/* The value of option name ("--profile") at argv[i], as "--profile V" or
 * "--profile=V"; NULL when argv[i] is another. getopt_long() permuted
 * argv, but an option and its value stay side by side. */
static const char *
option_value(int argc, char *const *argv, int i, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(argv[i], name) == 0)
		return i + 1 < argc ? argv[i + 1] : NULL;
	if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
		return argv[i] + n + 1;
	return NULL;
}

/* What parse_args() did for profiles: files, then options over them. */
static int
load_profiles(
    struct config *c, int argc, char *const *argv, char *err, size_t errlen)
{
	const char *v;
	int rv = 0;

	for (int i = 1; rv == 0 && i < argc; i++)
		if ((v = option_value(argc, argv, i, "--config")) != NULL)
			rv = config_load_file(c, v, err, errlen);
	for (int i = 1; rv == 0 && i < argc; i++) {
		if ((v = option_value(argc, argv, i, "--profile")) != NULL)
			rv = config_add_profile_spec(c, v, err, errlen);
		else if ((v = option_value(argc, argv, i, "--default-user"))
		    != NULL)
			rv = config_set_str(&c->default_user, v);
	}
	return rv;
}

int
reload_profiles(
    struct config *live, int argc, char *const *argv, bool agent_is_root)
{
	char err[1024] = "";
	struct config fresh;
	int rv;

	if ((rv = config_init(&fresh)) == 0
	    && (rv = load_profiles(&fresh, argc, argv, err, sizeof(err))) == 0
	    && (rv = config_validate_profiles(&fresh, err, sizeof(err))) == 0)
		rv = config_settle_users(
		    &fresh, agent_is_root, err, sizeof(err));
	if (rv == 0) {
		config_take_profiles(live, &fresh);
		log_notice("reloaded: %zu profile(s); running sessions go on",
		    live->nprofiles);
	} else {
		log_err(
		    "reload refused, keeping the %zu profile(s) in use: %s",
		    live->nprofiles,
		    err[0] != '\0' ? err : hpcxl_strerror(rv));
		rv = HPCXL_ECONFIG;
	}
	config_free(&fresh);
	return rv;
}
