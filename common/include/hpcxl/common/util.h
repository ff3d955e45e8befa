/* Small helpers shared by the agent and the controller. */
#ifndef HPCXL_COMMON_UTIL_H
#define HPCXL_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest session, profile or node name, in bytes. */
#define HPCXL_ID_MAX 64

/* Longest caller identity (a client certificate's CN, an account name). */
#define HPCXL_IDENTITY_MAX 128

/* Milliseconds on CLOCK_MONOTONIC: only for measuring and deadlines. */
int64_t util_now_ms(void);

/*
 * True when s is a valid session, profile or node name: 1..HPCXL_ID_MAX bytes
 * of [A-Za-z0-9._-], not starting with '.' or '-'. Names become file and
 * cgroup names, so nothing else is accepted.
 */
bool util_valid_id(const char *s);

/*
 * True when s may be a caller's identity (who sent a request: the CN of a
 * client certificate, the account of an ipc peer, "anonymous"):
 * 1..HPCXL_IDENTITY_MAX bytes of printable ASCII (space to '~') but the
 * comma, not starting or ending with a space. Commas separate the names of
 * the agent's admins list; the rest keeps identities plain in log lines,
 * session records and replies.
 */
bool util_valid_identity(const char *s);

/*
 * Parses a whole decimal string into [min, max]. Returns 0 and sets *out, or
 * HPCXL_EINVAL (out untouched) on junk, sign errors or range errors.
 */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Writes all of buf to fd, retrying short writes and EINTR. Returns 0, or
 * -1 with errno set. */
int util_write_all(int fd, const void *buf, size_t len);

/* A random 64-bit value from getrandom(2); never 0. */
uint64_t util_random_u64(void);

/* printf into err[0..errlen), the message of a failure; err may be NULL. */
void util_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
