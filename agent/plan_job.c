#include "plan_job.h"

#include "hpcxl/common/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * Two owners, the thread and the loop; whichever lets go last frees the
 * job. The thread writes plan, rv and why, then sets done (release); the
 * loop reads them only after it has seen done (acquire). The eventfd is
 * only what wakes the loop's poll.
 */
struct plan_job {
	/* A copy: the loop may reload the config (SIGHUP) while the thread
	 * reads it, or abandon the job and go on. */
	struct config_profile profile;
	struct worker_plan plan;
	int rv;
	char why[512];
	int fd; /* eventfd: readable once done */
	atomic_bool done;
	atomic_int owners;
};

bool
plan_job_needed(const struct config_profile *p)
{
	return p->user != NULL || p->group != NULL;
}

static void
job_free(struct plan_job *j)
{
	worker_plan_free(&j->plan);
	config_profile_free(&j->profile);
	close(j->fd);
	free(j);
}

static void
job_release(struct plan_job *j)
{
	if (atomic_fetch_sub(&j->owners, 1) == 1)
		job_free(j);
}

static void *
job_run(void *arg)
{
	struct plan_job *j = arg;
	uint64_t one = 1;

	j->rv
	    = worker_plan_build(&j->plan, &j->profile, j->why, sizeof(j->why));
	atomic_store_explicit(&j->done, true, memory_order_release);
	/* An eventfd write of 1 cannot fail short of overflow. */
	(void)!write(j->fd, &one, sizeof(one));
	job_release(j);
	return NULL;
}

struct plan_job *
plan_job_start(const struct config_profile *p)
{
	struct plan_job *j = calloc(1, sizeof(*j));
	pthread_attr_t at;
	pthread_t th;
	int rv;

	if (j == NULL)
		return NULL;
	atomic_init(&j->owners, 2);
	atomic_init(&j->done, false);
	if (config_profile_dup(&j->profile, p) != 0) {
		free(j);
		return NULL;
	}
	if ((j->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		config_profile_free(&j->profile);
		free(j);
		return NULL;
	}
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rv = pthread_create(&th, &at, job_run, j);
	pthread_attr_destroy(&at);
	if (rv != 0) {
		job_free(j);
		return NULL;
	}
	return j;
}

int
plan_job_fd(const struct plan_job *j)
{
	return j->fd;
}

bool
plan_job_done(struct plan_job *j)
{
	return atomic_load_explicit(&j->done, memory_order_acquire);
}

int
plan_job_finish(
    struct plan_job *j, struct worker_plan *pl, char *why, size_t whylen)
{
	int rv = j->rv;

	if (rv == 0) {
		*pl = j->plan;
		memset(&j->plan, 0, sizeof(j->plan));
	} else {
		snprintf(why, whylen, "%s", j->why);
	}
	job_release(j);
	return rv;
}

void
plan_job_abandon(struct plan_job *j)
{
	if (j != NULL)
		job_release(j);
}
