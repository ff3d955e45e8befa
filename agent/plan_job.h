/*
 * A worker plan built off the loop. The plan's user and group lookups go
 * through NSS, which for LDAP or SSSD accounts may wait on the network for
 * seconds; the loop must not. A profile that names a user or a group gets
 * its plan built on a thread of its own, which says it is done through a
 * descriptor the loop polls; one that names neither needs no lookup and is
 * built at once by the caller (worker_plan_build).
 */
#ifndef HPCXL_AGENT_PLAN_JOB_H
#define HPCXL_AGENT_PLAN_JOB_H

#include "worker_plan.h"

#include <stdbool.h>
#include <stddef.h>

struct plan_job;

/* Whether building p's plan may block (it names a user or a group). */
bool plan_job_needed(const struct config_profile *p);

/* Starts building p's plan on its own thread. p must outlive the job.
 * Returns NULL when no thread or memory could be had. */
struct plan_job *plan_job_start(const struct config_profile *p);

/* Polls readable (POLLIN) once the plan is built or has failed. */
int plan_job_fd(const struct plan_job *j);

/* True once the thread is done (never blocks). */
bool plan_job_done(struct plan_job *j);

/*
 * Once done: moves the plan into *pl and returns 0, or returns the error
 * with the reason in why. Frees the job either way.
 */
int plan_job_finish(
    struct plan_job *j, struct worker_plan *pl, char *why, size_t whylen);

/* The open ended before the plan was needed: the job is freed, now if it
 * is done, else by its thread when it is. */
void plan_job_abandon(struct plan_job *j);

#endif
