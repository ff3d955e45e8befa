/*
 * One survey: sends one request to the nodes of a fleet that it targets and
 * collects one valid reply per node until a deadline. It serves every
 * operation; only the close request is adjusted per send (its deadline_ms
 * shrinks with the time left).
 */
#ifndef HPCXL_CONTROLLER_SURVEY_H
#define HPCXL_CONTROLLER_SURVEY_H

#include "fleet.h"

#include "hpcxl/common/proto.h"
#include "hpcxl/hpcxl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a "why" text of an unanswered node. */
#define SURVEY_WHY_MAX 192

/* What the engine learned about one roster node. */
struct survey_result {
	bool answered;
	bool interrupted; /* silent when the fleet was interrupted */
	/* The first valid reply with our op; owned, valid when answered. */
	struct proto_reply reply;
	/* From the start of the survey to the reply, or to the end. */
	int64_t reply_ms;
	/* When not answered: why, e.g. "no reply within 3000 ms (...)". */
	char why[SURVEY_WHY_MAX];
};

/* How a survey names nodes and reports its progress. */
struct survey_opts {
	const char *const *names; /* the roster's names, by row */
	/* hpcxl_client_set_progress(); NULL: no reports */
	void (*progress)(const struct hpcxl_progress *p, void *arg);
	void *arg;
	int interval_ms;
};

/*
 * Sends req (type, op and body set; it is not changed) to every node row
 * with targets[row] set (targets NULL: every node) until each answered once,
 * timeout_ms (>= 0) passed or the fleet was interrupted. Even with no time
 * left, the nodes connected at the start are sent the request once. Returns
 * within a few ms of the deadline, plus the time to explain silent nodes
 * from nng's statistics (about 15 ms per 1,000 nodes that never connected).
 * results must hold fleet_size(f) zeroed elements; rows not targeted stay
 * zeroed. On 0, results[i] describes row i and owns its reply (release with
 * survey_results_free()). On HPCXL_ETRANSPORT, HPCXL_ENOMEM or HPCXL_EINVAL
 * (req cannot be encoded), results hold nothing to free.
 */
int survey_run(struct fleet *f, const struct proto_msg *req, int timeout_ms,
    const bool *targets, const struct survey_opts *opts,
    struct survey_result *results);

/* Frees the replies results[0..n) own and zeroes them; not the array. */
void survey_results_free(struct survey_result *results, size_t n);

#endif
