/*
 * One worker process: spawn it from a prepared spec, signal it through its
 * pidfd, record how it ended.
 */
#ifndef HPCXL_AGENT_WORKER_H
#define HPCXL_AGENT_WORKER_H

#include "hpcxl/common/config.h"
#include "hpcxl/common/proto.h"
#include "proctrack.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct worker {
	uint32_t index;
	pid_t pid; /* 0 when never started */
	int pidfd; /* -1 once reaped */
	enum proto_wstate state;
	int exit_status; /* waitpid status once ended, else -1 */
	uint32_t restarts;
	int64_t restart_at_ms; /* a restart is due then; 0 = none planned */
	/* Started by an earlier agent and re-adopted: not our child, so its
	 * end shows on its pidfd (POLLIN) and its wait status is unknown. */
	bool adopted;
	uint64_t start_ticks; /* /proc/PID/stat starttime: guards pid reuse */
};

/* Everything the child needs, built before fork (the child may not allocate).
 */
struct worker_spec {
	const char *path; /* resolved executable */
	char *const *argv;
	char *const *envp;
	const struct config_profile *profile; /* user, group, env, limits */
	const char *workdir;
	const char *log_path; /* stdout and stderr go here (appended) */
	const struct proctrack_set *set;
};

/*
 * Builds the environment for worker index of a session: the agent's
 * environment plus HPCXL_SESSION, HPCXL_NODE, HPCXL_WORKER, HPCXL_WORKBOOK.
 * The profile's env entries are not in it: worker_spawn merges them in.
 * Returns a malloc'd NULL-terminated vector (free with worker_env_free) or
 * NULL on allocation failure.
 */
char **worker_env_build(const char *session, const char *node, uint32_t index,
    const char *workbook);
void worker_env_free(char **envp);

/*
 * Finds prog in PATH unless it holds a '/'; checks it is an executable
 * regular file. Returns 0 and a malloc'd path, or HPCXL_EEXEC with why.
 */
int worker_resolve(const char *prog, char **path, char *why, size_t whylen);

/*
 * Forks and execs the worker. Before fork, from spec->profile (may be
 * NULL): resolves user and group (passwd/group lookups happen here, at
 * every spawn, never in the child), the supplementary groups of the user,
 * the rlimits, and the environment: spec->envp with the profile's env
 * added (a profile NAME replaces the agent's; HPCXL_* are spec->envp's).
 * The child leads its own process group, joins spec->set, opens the log,
 * sets the limits, drops to the profile's groups, gid and uid, changes to
 * spec->workdir as that user, and reports any failure through a CLOEXEC
 * pipe, so a 0 return means the program really is running. On failure
 * returns HPCXL_EEXEC (unknown user or group, or a step of the child
 * failed: why names it) or HPCXL_ESYSTEM/HPCXL_ENOMEM, with a reason in
 * why; a child that failed is reaped before return. spec and everything
 * it points to stay the caller's; nothing is kept after return.
 */
int worker_spawn(struct worker *w, const struct worker_spec *spec, char *why,
    size_t whylen);

/* Sends sig through the pidfd; a no-op once the worker was reaped. */
void worker_signal(const struct worker *w, int sig);

/* The wait status of a worker that was not our child (re-adopted): its
 * parent, not the agent, could wait for it. */
#define WORKER_STATUS_UNKNOWN (-1)

/*
 * Records the wait status (or WORKER_STATUS_UNKNOWN) and closes the pidfd;
 * killed says whether our SIGKILL phase ran, which for an unknown status
 * is taken as the cause.
 */
void worker_ended(struct worker *w, int status, bool killed);

bool worker_alive(const struct worker *w);

#endif
