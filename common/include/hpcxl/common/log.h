/*
 * Logging to stderr with syslog levels.
 *
 * When stderr is the journal (JOURNAL_STREAM is set) each line starts with
 * the "<N>" priority prefix journald understands; otherwise it reads
 * "prog: level: text". Never call these from a signal handler.
 */
#ifndef HPCXL_COMMON_LOG_H
#define HPCXL_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* prog is kept by pointer: pass a string that lives as long as the process. */
void log_init(const char *prog, int max_level);
void log_set_level(int max_level);
int log_level(void);
void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A sink takes every line log_write() keeps, instead of stderr: libhpcxl's
 * log callback (hpcxl_set_log_callback()). Its calls are serialised; once
 * log_set_sink() returns, the previous sink is not running and is not
 * called again. NULL: stderr again. A program that never sets one (the
 * agent, the CLI) logs exactly as before, without taking a lock.
 */
typedef void log_sink_fn(int level, const char *line, void *arg);
void log_set_sink(log_sink_fn *fn, void *arg);

/*
 * One kind of warning that a flood must not turn into a flood of lines: a
 * burst of them, then one per interval_ms; those held back are counted,
 * so the next one allowed can say how many. Not locked: its owner's lock,
 * or its owner's thread.
 */
struct log_limit {
	int burst;
	int64_t interval_ms;
	int tokens; /* warnings allowed now */
	int64_t refill_ms; /* when tokens were last topped up; 0: never */
	unsigned long held; /* held back since the last one allowed */
};

#define LOG_LIMIT_INIT(burst_, interval_ms_)                                  \
	{                                                                     \
		.burst = (burst_), .interval_ms = (interval_ms_),             \
		.tokens = (burst_)                                            \
	}

/* True when one more warning may be logged at now_ms; then *held (when not
 * NULL) gets how many were held back before it. */
bool log_limit_allow(struct log_limit *l, int64_t now_ms, unsigned long *held);

#define log_err(...) log_write(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_write(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
