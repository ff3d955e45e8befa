/*
 * Helpers shared by the benchmark programs (floor_spawn, floor_survey,
 * bench_hpcxl): a clock, argument parsing, roster files and the one output
 * format run.sh reads. Every result is a line
 *
 *   RESULT <name> key=value key=value ...
 *
 * on stdout; anything else a program prints is for humans.
 */
#ifndef HPCXL_BENCH_UTIL_H
#define HPCXL_BENCH_UTIL_H

#include <stddef.h>

/* Milliseconds on CLOCK_MONOTONIC, with microsecond resolution. */
double bench_now_ms(void);

/* Sleeps ms milliseconds. */
void bench_nap_ms(int ms);

/* Parses argv-style decimal s into [min, max]; exits 2 with a message on
 * junk (what names the argument). */
long bench_arg(const char *s, long min, long max, const char *what);

/*
 * Prints "RESULT name median=M min=A max=B n=N" for v[0..n) (sorted in
 * place; nothing but n=0 when n is 0). Times are in ms, one decimal.
 */
void bench_result(const char *name, double *v, size_t n);

/*
 * Reads a roster: one URL per line, blank lines skipped, at most max.
 * Returns the count (> 0) and sets *urls (malloc'd strings, never freed:
 * the programs are short-lived); exits 2 on an unreadable or empty file.
 */
size_t bench_read_urls(const char *path, size_t max, char ***urls);

#endif
