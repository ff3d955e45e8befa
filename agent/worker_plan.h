/*
 * What every worker of one open shares, resolved once before the first
 * spawn and only read by the children: the executable, the profile's user
 * and group (NSS lookups: they may allocate, lock or open sockets, which a
 * child must not), the supplementary groups, the rlimits and the account's
 * environment. An open of 256 workers makes one set of lookups, not 256.
 */
#ifndef HPCXL_AGENT_WORKER_PLAN_H
#define HPCXL_AGENT_WORKER_PLAN_H

#include "hpcxl/common/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct worker_plan {
	/* A copy: a reload (SIGHUP) may free the config's profiles while an
	 * open still starts workers from its plan. */
	struct config_profile profile;
	char *path; /* the resolved executable (malloc'd) */
	/* HOME, USER, LOGNAME of the profile's user (malloc'd), as login(1)
	 * and systemd's User= set them; NULL when no user is named. */
	char *account[4];
	bool set_groups, set_gid, set_uid; /* only what must change */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* malloc'd; supplementary groups, gid included */
	int ngroups;
	bool limit_set[CONFIG_NLIMITS];
	struct rlimit limit[CONFIG_NLIMITS];
};

/*
 * Resolves p's executable (PATH unless it holds a '/'), user, group and
 * limits now, not at config load: accounts created after the agent
 * started work. Returns 0, or HPCXL_EEXEC (no such program, unknown user
 * or group) / HPCXL_ENOMEM with the reason in why; nothing to free then.
 */
int worker_plan_build(struct worker_plan *pl, const struct config_profile *p,
    char *why, size_t whylen);
void worker_plan_free(struct worker_plan *pl);

/*
 * The environment of one worker, later layers winning: base (the agent's
 * plus HPCXL_*, from worker_env_build), then the account's, then the
 * profile's env. Returns a malloc'd vector whose strings still belong to
 * base and pl (free only the vector), or NULL.
 */
char **worker_plan_env(const struct worker_plan *pl, char *const *base);

/* The setrlimit resource of a config limit. */
int worker_plan_resource(enum config_limit l);

/*
 * Builds the base environment of worker index of a session: the agent's
 * environment plus HPCXL_SESSION, HPCXL_NODE, HPCXL_WORKER, HPCXL_WORKBOOK.
 * The profile's env entries are not in it: worker_plan_env merges them in.
 * Returns a malloc'd NULL-terminated vector (free with worker_env_free) or
 * NULL on allocation failure.
 */
char **worker_env_build(const char *session, const char *node, uint32_t index,
    const char *workbook);
void worker_env_free(char **envp);

#endif
