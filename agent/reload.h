/*
 * SIGHUP: the profiles are read again, from the same config files and
 * command-line --profile and --default-user options as at start, in the
 * same order (files first). Only the profiles change: listeners, node,
 * state directory, backend and the rest need a restart. Running sessions
 * are not touched: they refer to their profile by name, and what outlives
 * one loop pass (an open's plan, its lookup thread) holds a copy of the
 * profile (worker_plan.h), so the old profiles are freed at once. A worker
 * restarted later starts from the profile of that name as it is then.
 */
#ifndef HPCXL_AGENT_RELOAD_H
#define HPCXL_AGENT_RELOAD_H

#include "hpcxl/common/config.h"

#include <stdbool.h>

/*
 * Reloads live's profiles from argv (the agent's own, as main() got it).
 * A config that does not load, or whose profiles are refused, leaves live
 * as it was and logs why; returns 0 or HPCXL_ECONFIG.
 */
int reload_profiles(
    struct config *live, int argc, char *const *argv, bool agent_is_root);

#endif
