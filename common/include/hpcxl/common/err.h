/*
 * hpcxl error codes.
 *
 * One X-macro table makes both the enum and hpcxl_strerror(), so the two can
 * never disagree. Values are append-only: they cross process boundaries in
 * exit statuses and logs.
 *
 * Installed with libhpcxl (<hpcxl/hpcxl.h> includes it): it must stay
 * plain C that a C++ compiler also takes.
 */
#ifndef HPCXL_COMMON_ERR_H
#define HPCXL_COMMON_ERR_H

#define HPCXL_ERRORS(X)                                                       \
	X(OK, 0, "success")                                                   \
	X(EINVAL, 1, "invalid argument")                                      \
	X(ENOMEM, 2, "out of memory")                                         \
	X(EPROTO, 3, "malformed message")                                     \
	X(ETOOBIG, 4, "message or field too large")                           \
	X(ENOTFOUND, 5, "not found")                                          \
	X(EEXIST, 6, "already exists")                                        \
	X(ETIMEDOUT, 7, "timed out")                                          \
	X(ETRANSPORT, 8, "transport error")                                   \
	X(ESYSTEM, 9, "system call failed")                                   \
	X(ECONFIG, 10, "configuration error")                                 \
	X(EEXEC, 11, "worker program cannot be executed")                     \
	X(EPARTIAL, 12, "not every node succeeded")                           \
	X(EREFUSED, 13, "request refused")

#ifdef __cplusplus
extern "C" {
#endif

enum hpcxl_err {
#define HPCXL_ERR_ENUM(name, value, text) HPCXL_##name = value,
	HPCXL_ERRORS(HPCXL_ERR_ENUM)
#undef HPCXL_ERR_ENUM
};

/* Returns a static, human-readable text for err; never NULL. */
const char *hpcxl_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
