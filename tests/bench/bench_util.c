#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void
bench_nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long
bench_arg(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "bad %s '%s' (%ld..%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void
bench_result(const char *name, double *v, size_t n)
{
	double med;

	if (n == 0) {
		printf("RESULT %s n=0\n", name);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	printf("RESULT %s median=%.1f min=%.1f max=%.1f n=%zu\n", name, med,
	    v[0], v[n - 1], n);
	fflush(stdout);
}

size_t
bench_read_urls(const char *path, size_t max, char ***urls)
{
	char line[512];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	*urls = calloc(max, sizeof(**urls));
	if (f == NULL || *urls == NULL) {
		fprintf(stderr, "cannot read roster '%s'\n", path);
		exit(2);
	}
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0' && ((*urls)[n] = strdup(line)) != NULL)
			n++;
	}
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "roster '%s' is empty\n", path);
		exit(2);
	}
	return n;
}
