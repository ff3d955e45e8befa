/*
 * Agent configuration: an INI file (parsed by inih) plus command-line
 * additions. See deploy/config/agent.ini for every key.
 *
 *   [agent]
 *   node = n01                 ; default: the host name
 *   listen = tls+tcp://n01:7420 ; may repeat
 *   tls_cert = /etc/hpcxl/tls/agent.pem ; tls+tcp:// needs all three
 *   tls_key = /etc/hpcxl/tls/agent.key
 *   tls_ca = /etc/hpcxl/tls/ca.pem ; clients must show a certificate of it
 *   allow_insecure = false     ; true: plain tcp:// off loopback too
 *   ipc_group = hpcxl          ; group of ipc:// socket files (mode 0660)
 *   metrics_listen = http://127.0.0.1:9742 ; Prometheus /metrics (loopback
 *                              ; unless allow_insecure)
 *   default_user = excel       ; user of profiles that name none
 *   admins = alice, ops-team   ; identities that may act on every session
 *   max_sessions = 0           ; per identity on this node; 0 = no limit
 *   max_workers = 0            ; per identity on this node; 0 = no limit
 *   state_dir = /var/lib/hpcxl
 *   backend = auto             ; auto | cgroup2 | pgroup
 *   cgroup_root = auto         ; or a directory on a cgroup2 mount
 *   log_max_bytes = 10485760   ; cap of each worker log; 0 = no cap
 *   log_retention = 7d         ; a closed session's logs are removed then;
 *                              ; seconds, or N with s, m, h or d; 0 = keep
 *   close_on_exit = false      ; true: SIGTERM closes every session
 *   unkillable_limit_ms = 60000 ; then survivors of a kill mark the node
 *                              ; unhealthy
 *
 *   [profile.excel]
 *   command = /opt/xl/bin/excel-worker --quiet
 *   stop_grace_ms = 10000
 *   workdir = /tmp
 *   restart = on-failure       ; never | on-failure | always
 *   max_restarts = 5
 *   user = excel               ; name or number; default: the agent's
 *   group = excel              ; default: the user's primary group
 *   env = LANG=C.UTF-8         ; may repeat; a later NAME wins
 *   limit_nofile = 4096        ; integer, -1 (inherit) or infinity
 *
 * A profile's command is split into words with wordexp(3) under
 * WRDE_NOCMD | WRDE_UNDEF: shell quoting and $VARS work, command
 * substitution does not.
 *
 * A root agent runs a profile's workers as root only when the profile says
 * user = root, or default_user says root: config_settle_users() refuses a
 * profile that names no user otherwise. A profile of the command line
 * (--profile) names none, so it takes default_user (--default-user).
 *
 * user and group are only checked for form here (a name, or a decimal id)
 * and resolved by the agent each time it starts a worker, so an account
 * created (or an LDAP/sssd source that comes up) after the agent started
 * works without a restart.
 */
#ifndef HPCXL_COMMON_CONFIG_H
#define HPCXL_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_GRACE_MS 10000
#define CONFIG_DEFAULT_UNKILLABLE_MS 60000
#define CONFIG_DEFAULT_LOG_RETENTION_S (7 * 86400)
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/hpcxl"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_PROFILES 256
/* Names in the admins list (config and --admin together). */
#define CONFIG_MAX_ADMINS 64
/* Distinct NAMEs one profile's env may set. */
#define CONFIG_MAX_ENV 64
/* 10 MiB per worker log file. */
#define CONFIG_DEFAULT_LOG_MAX_BYTES 10485760

/* When a worker that ended on its own is started again (not while closing). */
enum config_restart {
	CONFIG_RESTART_NEVER,
	CONFIG_RESTART_ON_FAILURE, /* non-zero exit or killed by a signal */
	CONFIG_RESTART_ALWAYS,
};

#define CONFIG_DEFAULT_MAX_RESTARTS 5

/*
 * Resource limits a profile may set, each applied as soft and hard limit
 * with setrlimit(2) in the worker before exec. Units are the kernel's:
 * bytes for CORE, AS and FSIZE, seconds for CPU, counts for the others.
 */
enum config_limit {
	CONFIG_LIMIT_NOFILE, /* limit_nofile: RLIMIT_NOFILE */
	CONFIG_LIMIT_NPROC, /* limit_nproc: RLIMIT_NPROC (per user) */
	CONFIG_LIMIT_CORE, /* limit_core: RLIMIT_CORE */
	CONFIG_LIMIT_AS, /* limit_as: RLIMIT_AS */
	CONFIG_LIMIT_CPU, /* limit_cpu: RLIMIT_CPU */
	CONFIG_LIMIT_FSIZE, /* limit_fsize: RLIMIT_FSIZE */
	CONFIG_NLIMITS,
};

/* A limit's value: keep the agent's own limit, or RLIM_INFINITY. */
#define CONFIG_LIMIT_INHERIT (-1)
#define CONFIG_LIMIT_INFINITY INT64_MAX

struct config_profile {
	char *name;
	char **argv; /* NULL-terminated; argv[0] is the program */
	int64_t stop_grace_ms;
	char *workdir; /* NULL = the agent's working directory */
	enum config_restart restart;
	int64_t max_restarts; /* per worker, over the session's life */
	char *user; /* NULL = the agent's user; a name or a decimal uid */
	char *group; /* NULL = the user's primary group (or the agent's) */
	/* "NAME=VALUE" entries in the order of their first line; a later
	 * line with the same NAME replaced the value in place. Never an
	 * HPCXL_* name: those are the agent's. */
	char **env;
	size_t nenv;
	int64_t limits[CONFIG_NLIMITS]; /* CONFIG_LIMIT_INHERIT when unset */
};

struct config {
	char *node;
	char *listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	char *state_dir;
	char *backend; /* "auto", "cgroup2" or "pgroup" */
	char *cgroup_root; /* "auto" or a directory */
	int64_t default_grace_ms;
	int64_t log_max_bytes; /* cap of each worker log file; 0 = none */
	/* A closed session's log folder is removed this long after the
	 * close; 0 = kept forever. */
	int64_t log_retention_s;
	/* SIGTERM closes every session first (else they are left running
	 * for the next agent to re-adopt). */
	bool close_on_exit;
	/* Processes that survive the kill this long mark the node
	 * unhealthy. */
	int64_t unkillable_limit_ms;
	/* PEM files of tls+tcp:// listeners (NULL: not given). */
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	/* Plain tcp:// may listen on addresses other than loopback. */
	bool allow_insecure;
	/* Group of ipc:// socket files; NULL: the agent's own. */
	char *ipc_group;
	/* http://HOST:PORT of the Prometheus metrics; NULL: not served. */
	char *metrics_listen;
	/* The user of profiles that name none (config_settle_users()). */
	char *default_user;
	/* Identities that may close, renew and see every session and clear
	 * the node's unhealthy mark (others only act on their own). */
	char *admins[CONFIG_MAX_ADMINS];
	size_t nadmins;
	/* What one identity may hold on this node at once; 0 = no limit. */
	int64_t max_sessions;
	int64_t max_workers;
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

/*
 * Adds the identities of list, comma-separated ("alice, ops-team"; spaces
 * around a name are dropped) to the admins. HPCXL_ECONFIG with why in err
 * for an empty or invalid name (util_valid_identity()) or too many names.
 */
int config_add_admins(
    struct config *c, const char *list, char *err, size_t errlen);

/* True when identity is in the admins list. */
bool config_is_admin(const struct config *c, const char *identity);

/* Replaces a string setting with a copy of val. */
int config_set_str(char **slot, const char *val);

/* Checks cross-field rules (a node name, at least one listen URL...). */
int config_validate(const struct config *c, char *err, size_t errlen);

/* The profiles' part of config_validate() (a reload checks only that). */
int config_validate_profiles(const struct config *c, char *err, size_t errlen);

/*
 * Gives every profile that names no user the default_user. Without one, a
 * profile that names no user is refused when agent_is_root (its workers
 * would run as root without anyone having said so): HPCXL_ECONFIG with a
 * message naming the profile. A non-root agent runs it as itself.
 */
int config_settle_users(
    struct config *c, bool agent_is_root, char *err, size_t errlen);

/* The config key of a limit ("limit_nofile"...); static storage. */
const char *config_limit_key(enum config_limit lim);

const struct config_profile *config_find_profile(
    const struct config *c, const char *name);

/* A deep copy of src (free with config_profile_free): what outlives a
 * reload of the config (a plan, a plan's lookup thread) holds one. */
int config_profile_dup(
    struct config_profile *dst, const struct config_profile *src);
void config_profile_free(struct config_profile *p);

/* Replaces c's profiles with those of from, which is left with none (a
 * reload: the rest of c stays as it is). */
void config_take_profiles(struct config *c, struct config *from);

void config_free(struct config *c);

/*
 * True when inih would read line (NUL-terminated, its newline included or
 * not) as the continuation of the value above it: it starts with white
 * space (space, \t, \v, \f or \r) and has text after that. Both config
 * readers (the agent's and the CLI's) refuse such lines rather than let a
 * value be silently replaced.
 */
bool config_line_continues(const char *line);

#endif
