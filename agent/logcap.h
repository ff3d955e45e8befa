/*
 * Size cap of a worker log file, logrotate's "copytruncate" way: the worker
 * holds its log open with O_APPEND and is never told to reopen it, so the
 * file is copied aside and truncated in place, and the worker's next write
 * lands at the new end (offset 0).
 */
#ifndef HPCXL_AGENT_LOGCAP_H
#define HPCXL_AGENT_LOGCAP_H

#include <stdint.h>

/*
 * When the file at path is larger than max_bytes, copies it to "path.1"
 * (through a temporary file renamed over an older "path.1", so a reader
 * never sees half a copy) and truncates path to 0 bytes. One generation is
 * kept: the newest max_bytes or more are in path.1, what comes later in
 * path.
 *
 * Lines the worker writes after the copy reached the end and before the
 * truncation are lost: the window of logrotate's copytruncate, a few
 * system calls wide; use it only for logs where that is acceptable. The
 * copy follows what the worker appends while it runs, but stops at twice
 * the size the file had when the call began, so a worker writing as fast
 * as the copy cannot hold the caller; the rest of such a burst is lost.
 *
 * max_bytes <= 0 means no cap. A missing file is not an error. Memory use
 * is one fixed-size buffer whatever the file size. path is only read.
 * Returns 0, HPCXL_EINVAL (path too long), HPCXL_ENOMEM or HPCXL_ESYSTEM
 * (errno says more; path is then untouched, or copied but not truncated).
 */
int logcap_enforce(const char *path, int64_t max_bytes);

#endif
