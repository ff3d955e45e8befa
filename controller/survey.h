/*
 * The survey engine: broadcasts one request to a roster of agents over an
 * nng surveyor socket and collects one reply per node until a deadline.
 * It serves every operation; only the close request is adjusted per send
 * (its deadline_ms shrinks with the time left).
 */
#ifndef HPCXL_CONTROLLER_SURVEY_H
#define HPCXL_CONTROLLER_SURVEY_H

#include "hpcxl/common/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a "why" text of an unanswered node. */
#define SURVEY_WHY_MAX 192

/* What the engine learned about one roster node. */
struct survey_result {
	bool answered;
	/* The first valid reply with our op; owned, valid when answered. */
	struct proto_reply reply;
	/* From the start of the survey to the reply, or to the end. */
	int64_t reply_ms;
	/* When not answered: why, e.g. "no reply within 3000 ms (...)". */
	char why[SURVEY_WHY_MAX];
};

/*
 * Sends req (type, op and body set; it is not changed) to every URL until
 * each node answered once or timeout_ms (>= 0) passed, and returns within a
 * few ms of that deadline (the socket is closed in the background). results
 * must hold n zeroed elements. On 0, results[i] describes urls[i] and owns its
 * reply (release with survey_results_free()). On HPCXL_ETRANSPORT (socket
 * setup failed) or HPCXL_ENOMEM, results hold nothing to free.
 */
int survey_run(const char *const *urls, size_t n, const struct proto_msg *req,
    int timeout_ms, struct survey_result *results);

/* Frees the replies results[0..n) own and zeroes them; not the array. */
void survey_results_free(struct survey_result *results, size_t n);

#endif
