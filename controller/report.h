/* Turning survey results into the public per-node report. */
#ifndef HPCXL_CONTROLLER_REPORT_H
#define HPCXL_CONTROLLER_REPORT_H

#include "hpcxl/hpcxl.h"
#include "survey.h"

/*
 * Builds a report with one row per node (names[i], urls[i]) from results[i]
 * of a survey of type op (PROTO_OPEN, ...). Strings of the results' replies
 * are moved into the report (the results stay valid to free). session (may be
 * NULL) is copied. On 0 *out owns everything (hpcxl_report_free()); on
 * HPCXL_ENOMEM it is untouched.
 */
int report_build(const char *const *names, const char *const *urls,
    struct survey_result *results, size_t n, enum proto_type op,
    const char *session, int64_t elapsed_ms, struct hpcxl_report **out);

/* Swaps row i of a and b, with what runs parallel to it (its sessions'
 * owners): both reports stay whole. */
void report_swap_rows(
    struct hpcxl_report *a, struct hpcxl_report *b, size_t i);

/* closed, already_closed and ok count as success. */
bool report_state_ok(enum hpcxl_node_state s);

#endif
