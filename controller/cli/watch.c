/*
 * Progress line and SIGINT for the CLI (watch.h).
 *
 * The progress line is redrawn in place ("\r" and erase to end of line)
 * once a second by libhpcxl's progress callback, which runs on the calling
 * thread: no thread of our own, nothing written from a signal handler.
 */
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WATCH_INTERVAL_MS 1000

/* Sequentially consistent atomics: the handler's "store the flag, load the
 * client" and watch_attach()'s "store the client, load the flag" cannot both
 * miss each other. Lock-free, so safe in a signal handler. */
static _Atomic(struct hpcxl_client *) watch_client;
static atomic_int watch_interrupted; /* a SIGINT came */
static struct sigaction watch_old_sigint;
static bool watch_shown; /* a progress line is on the screen */

/* Async-signal-safe: hpcxl_client_interrupt() only stores and writes. */
static void
watch_sigint(int sig)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	struct hpcxl_client *c;
	int saved = errno;

	(void)sig;
	atomic_store(&watch_interrupted, 1);
	if ((c = atomic_load(&watch_client)) != NULL)
		hpcxl_client_interrupt(c);
	sigaction(SIGINT, &dfl, NULL); /* a second ^C kills */
	errno = saved;
}

static const char *
watch_verb(enum cli_cmd cmd)
{
	switch (cmd) {
	case CLI_OPEN:
		return "opening";
	case CLI_CLOSE:
		return "closing";
	case CLI_STATUS:
		return "asking status";
	case CLI_PING:
		return "pinging";
	case CLI_RENEW:
		return "renewing";
	case CLI_CLEAR:
		return "clearing";
	}
	return "waiting";
}

/* "closing book-42: 998/1000 nodes, waiting for n017 n503, 112 s left" */
static void
watch_progress(const struct hpcxl_progress *p, void *arg)
{
	const struct cli_args *a = arg;
	size_t i, more = p->total - p->answered - p->nwaiting;

	fprintf(stderr, "\r\033[K%s%s%s: %zu/%zu nodes", watch_verb(a->cmd),
	    a->session != NULL ? " " : "",
	    a->session != NULL ? a->session : "", p->answered, p->total);
	if (p->nwaiting > 0)
		fputs(", waiting for", stderr);
	for (i = 0; i < p->nwaiting; i++)
		fprintf(stderr, " %s", p->waiting[i]);
	if (more > 0)
		fprintf(stderr, " and %zu more", more);
	fprintf(
	    stderr, ", %lld s left", (long long)((p->left_ms + 999) / 1000));
	fflush(stderr);
	watch_shown = true;
}

/*
 * SIGINT is blocked while the client is made, so the threads nng starts
 * then inherit the block and the handler only ever runs on this thread,
 * the one that makes the calls.
 */
void
watch_start(const struct cli_args *a)
{
	struct sigaction sa = { .sa_handler = watch_sigint };
	sigset_t intr;

	(void)a;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &watch_old_sigint);
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	pthread_sigmask(SIG_BLOCK, &intr, NULL);
}

void
watch_attach(struct hpcxl_client *c, const struct cli_args *a)
{
	sigset_t intr;

	atomic_store(&watch_client, c);
	if (atomic_load(&watch_interrupted))
		hpcxl_client_interrupt(c);
	if (!a->json && isatty(STDERR_FILENO))
		hpcxl_client_set_progress(
		    c, watch_progress, (void *)a, WATCH_INTERVAL_MS);
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &intr, NULL); /* a pending one runs */
}

void
watch_stop(void)
{
	sigset_t intr;

	/* Blocked first: no handler runs while the client goes away. */
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	pthread_sigmask(SIG_BLOCK, &intr, NULL);
	atomic_store(&watch_client, NULL);
	sigaction(SIGINT, &watch_old_sigint, NULL);
	pthread_sigmask(SIG_UNBLOCK, &intr, NULL);
	if (watch_shown)
		fputs("\r\033[K", stderr);
	watch_shown = false;
}
