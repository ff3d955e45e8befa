/*
 * Requests for integration tests: each sends one request to the agent at
 * url, asserts (Criterion) that a reply carrying the same op came within
 * ASK_TIMEOUT_MS, and returns it. The reply's strings belong to holder:
 * free it with proto_msg_free().
 */
#ifndef HPCXL_TESTS_ASK_H
#define HPCXL_TESTS_ASK_H

#include "hpcxl/common/proto.h"

#include <stdint.h>

#define ASK_TIMEOUT_MS 10000

/* Sends req as it is; an op of 0 is replaced by a random one. */
struct proto_reply ask(
    const char *url, struct proto_msg *req, struct proto_msg *holder);

/* open with workbook "/data/book.xlsx"; lease_ms 0 = no lease. */
struct proto_reply ask_open(const char *url, const char *session,
    const char *profile, uint32_t n, uint64_t lease_ms,
    struct proto_msg *holder);

/* close with op (0 = a new one) and deadline_ms. */
struct proto_reply ask_close(const char *url, const char *session, uint64_t op,
    uint64_t deadline_ms, struct proto_msg *holder);

/* status of session (NULL = every session). */
struct proto_reply ask_status(
    const char *url, const char *session, struct proto_msg *holder);

struct proto_reply ask_renew(const char *url, const char *session,
    uint64_t lease_ms, struct proto_msg *holder);

/* A request with an empty body: ping or clear. */
struct proto_reply ask_type(
    const char *url, enum proto_type type, struct proto_msg *holder);

#endif
