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
	pid_t pgid; /* the worker's process group; 0 once seen empty */
	enum proto_wstate state;
	int exit_status; /* waitpid status once ended, else -1 */
	uint32_t restarts;
	int64_t restart_at_ms; /* a restart is due then; 0 = none planned */
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
 * Forks and execs the worker. The child joins spec->set, leads its own
 * process group, and reports an exec failure through a CLOEXEC pipe, so a
 * 0 return means the program really is running. On failure returns
 * HPCXL_EEXEC or HPCXL_ESYSTEM with a reason in why; a child that failed is
 * reaped before return.
 */
int worker_spawn(struct worker *w, const struct worker_spec *spec, char *why,
    size_t whylen);

/* Sends sig through the pidfd; a no-op once the worker was reaped. */
void worker_signal(const struct worker *w, int sig);

/* Records the wait status; killed says whether our SIGKILL phase ran. */
void worker_ended(struct worker *w, int status, bool killed);

bool worker_alive(const struct worker *w);

#endif
