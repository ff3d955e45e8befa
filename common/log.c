#include "hpcxl/common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static const char *log_prog = "hpcxl";
static int log_max = LOG_INFO;
static bool log_journal;

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
log_write(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > log_max || level < 0 || level > LOG_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent writers do not interleave. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", level, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, level_names[level],
		    line);
}
