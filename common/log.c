#include "hpcxl/common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static const char *log_prog = "hpcxl";
static int log_max = LOG_INFO;
static bool log_journal;

/* The sink (log.h). The lock serialises its calls and lets log_set_sink()
 * promise that the old one is done; sink_on keeps the lock off the path
 * of a program that never sets a sink. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static log_sink_fn *sink_fn;
static void *sink_arg;
static atomic_bool sink_on;

static const char *const level_names[] = {
	"emerg",
	"alert",
	"crit",
	"error",
	"warning",
	"notice",
	"info",
	"debug",
};

void
log_init(const char *prog, int max_level)
{
	log_prog = prog;
	log_max = max_level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(int max_level)
{
	log_max = max_level;
}

int
log_level(void)
{
	return log_max;
}

void
log_set_sink(log_sink_fn *fn, void *arg)
{
	pthread_mutex_lock(&sink_lock);
	sink_fn = fn;
	sink_arg = arg;
	atomic_store(&sink_on, fn != NULL);
	pthread_mutex_unlock(&sink_lock);
}

/* True if a sink took the line. */
static bool
log_to_sink(int level, const char *line)
{
	bool taken = false;

	if (!atomic_load(&sink_on))
		return false;
	pthread_mutex_lock(&sink_lock);
	if (sink_fn != NULL) {
		sink_fn(level, line, sink_arg);
		taken = true;
	}
	pthread_mutex_unlock(&sink_lock);
	return taken;
}

void
log_write(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > log_max || level < 0 || level > LOG_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_to_sink(level, line))
		return;
	/* One fprintf per line so concurrent writers do not interleave. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", level, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, level_names[level],
		    line);
}

bool
log_limit_allow(struct log_limit *l, int64_t now_ms, unsigned long *held)
{
	int64_t earned;

	if (l->refill_ms == 0)
		l->refill_ms = now_ms;
	earned = (now_ms - l->refill_ms) / l->interval_ms;
	if (earned > 0) {
		l->tokens = earned >= l->burst - l->tokens
		    ? l->burst
		    : l->tokens + (int)earned;
		l->refill_ms += earned * l->interval_ms;
	}
	if (l->tokens == 0) {
		l->held++;
		return false;
	}
	l->tokens--;
	if (held != NULL)
		*held = l->held;
	l->held = 0;
	return true;
}
