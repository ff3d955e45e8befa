/*
 * Agent configuration: an INI file (parsed by inih) plus command-line
 * additions. See deploy/config/agent.ini for every key.
 *
 *   [agent]
 *   node = n01                 ; default: the host name
 *   listen = tcp://0.0.0.0:7420 ; may repeat
 *   state_dir = /var/lib/hpcxl
 *   backend = auto             ; auto | cgroup2 | pgroup
 *   cgroup_root = auto         ; or a directory on a cgroup2 mount
 *
 *   [profile.excel]
 *   command = /opt/xl/bin/excel-worker --quiet
 *   stop_grace_ms = 10000
 *   workdir = /tmp
 *   restart = on-failure       ; never | on-failure | always
 *   max_restarts = 5
 *
 * A profile's command is split into words with wordexp(3) under
 * WRDE_NOCMD | WRDE_UNDEF: shell quoting and $VARS work, command
 * substitution does not.
 */
#ifndef HPCXL_COMMON_CONFIG_H
#define HPCXL_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_GRACE_MS 10000
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/hpcxl"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_PROFILES 256

/* When a worker that ended on its own is started again (not while closing). */
enum config_restart {
	CONFIG_RESTART_NEVER,
	CONFIG_RESTART_ON_FAILURE, /* non-zero exit or killed by a signal */
	CONFIG_RESTART_ALWAYS,
};

#define CONFIG_DEFAULT_MAX_RESTARTS 5

struct config_profile {
	char *name;
	char **argv; /* NULL-terminated; argv[0] is the program */
	int64_t stop_grace_ms;
	char *workdir; /* NULL = the agent's working directory */
	enum config_restart restart;
	int64_t max_restarts; /* per worker, over the session's life */
};

struct config {
	char *node;
	char *listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	char *state_dir;
	char *backend; /* "auto", "cgroup2" or "pgroup" */
	char *cgroup_root; /* "auto" or a directory */
	int64_t default_grace_ms;
	struct config_profile profiles[CONFIG_MAX_PROFILES];
	size_t nprofiles;
};

/* Sets defaults; nothing allocated yet except defaults (free with
 * config_free). */
int config_init(struct config *c);

/*
 * Reads an INI file into c (keys add to or override what c holds). On
 * failure returns HPCXL_ECONFIG with a message naming file, line and key in
 * err; c may hold part of the file and must still be freed.
 */
int config_load_file(
    struct config *c, const char *path, char *err, size_t errlen);

/* Adds a profile from "NAME=COMMAND [ARGS...]"; same errors as above. */
int config_add_profile_spec(
    struct config *c, const char *spec, char *err, size_t errlen);

/* Adds a listen URL (copied); HPCXL_ECONFIG when there are too many. */
int config_add_listen(
    struct config *c, const char *url, char *err, size_t errlen);

/* Replaces a string setting with a copy of val. */
int config_set_str(char **slot, const char *val);

/* Checks cross-field rules (a node name, at least one listen URL...). */
int config_validate(const struct config *c, char *err, size_t errlen);

const struct config_profile *config_find_profile(
    const struct config *c, const char *name);

void config_free(struct config *c);

#endif
