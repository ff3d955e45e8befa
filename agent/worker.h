/*
 * One worker process: spawn it from a prepared spec, signal it through its
 * pidfd, record how it ended.
 */
#ifndef HPCXL_AGENT_WORKER_H
#define HPCXL_AGENT_WORKER_H

#include "hpcxl/common/config.h"
#include "hpcxl/common/proto.h"
#include "proctrack.h"
#include "worker_plan.h"

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

/* What differs from worker to worker of one open; the rest is the plan. */
struct worker_spec {
	char *const *envp; /* base environment (worker_env_build) */
	const char *log_path; /* stdout and stderr go here (appended) */
	const struct proctrack_set *set;
};

/*
 * Starts the worker with vfork semantics (spawn_clone.h): the agent's
 * thread waits only until the child has exec'd or failed. The child leads
 * its own process group, is born in (or joins) spec->set, opens the log,
 * sets the plan's limits, drops to its groups, gid and uid, changes to the
 * profile's workdir as that user, and execs with the plan's environment
 * merged into spec->envp. Returns 0 when the program really is running,
 * HPCXL_EEXEC when a step of the child failed (why names it; the child is
 * reaped), or HPCXL_ESYSTEM/HPCXL_ENOMEM with a reason in why. Nothing is
 * kept of spec or plan after return.
 */
int worker_spawn(struct worker *w, const struct worker_plan *plan,
    const struct worker_spec *spec, char *why, size_t whylen);

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
