/*
 * Worker log folders (<state_dir>/logs/<session>) outlive their session
 * for a while, so an operator can read why a worker failed, then go. A
 * folder's mtime is the time it was last of use: set to the close time
 * when the session is done (logsweep_mark_closed()), so one rule covers
 * the folders of sessions this agent closed and those an earlier agent
 * left behind: a folder of no known session is removed once its mtime is
 * older than the retention.
 */
#ifndef HPCXL_AGENT_LOGSWEEP_H
#define HPCXL_AGENT_LOGSWEEP_H

#include <stdbool.h>
#include <stdint.h>

/* Records now as the close time of session id's log folder. */
void logsweep_mark_closed(const char *log_root, const char *id);

/* Is the folder of this session still of use (a session the agent holds)? */
typedef bool (*logsweep_in_use_fn)(void *arg, const char *id);

/*
 * Removes the folders under log_root that in_use() does not claim and
 * whose mtime is retention_s or more in the past. Returns how many went.
 */
int logsweep_run(const char *log_root, int64_t retention_s,
    logsweep_in_use_fn in_use, void *arg);

/* How often to sweep for a retention: often enough that a folder outlives
 * it by at most about half of it, at most every 10 minutes. */
int64_t logsweep_period_ms(int64_t retention_s);

#endif
