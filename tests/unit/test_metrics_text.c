/*
 * The agent's metrics text (agent/metrics.c) without a server: the
 * histogram's cumulative buckets and their bounds, replies counted by
 * outcome, label values escaped. Criterion runs each test in its own
 * process, so the counters start at 0 in each.
 */
#include "metrics.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const struct metrics_gauges quiet
    = { .version = "0.1.0", .backend = "pgroup" };

static char *
text_of(const struct metrics_gauges *g)
{
	size_t len;
	char *t = metrics_render(g, &len);

	cr_assert_not_null(t);
	cr_assert_eq(strlen(t), len);
	return t;
}

/* True when text has the line exactly. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p += n) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	}
	return false;
}

Test(metrics_text, histogram_buckets_are_cumulative_and_inclusive)
{
	char *t;

	metrics_observe_close(10); /* on the bound: in le="0.01" */
	metrics_observe_close(11);
	metrics_observe_close(120000);
	metrics_observe_close(200000); /* past every bound: +Inf only */
	t = text_of(&quiet);
	cr_expect(
	    has_line(t, "hpcxl_close_duration_seconds_bucket{le=\"0.01\"} 1"),
	    "%s", t);
	cr_expect(
	    has_line(t, "hpcxl_close_duration_seconds_bucket{le=\"0.05\"} 2"));
	cr_expect(
	    has_line(t, "hpcxl_close_duration_seconds_bucket{le=\"60\"} 2"));
	cr_expect(
	    has_line(t, "hpcxl_close_duration_seconds_bucket{le=\"120\"} 3"));
	cr_expect(
	    has_line(t, "hpcxl_close_duration_seconds_bucket{le=\"+Inf\"} 4"));
	cr_expect(has_line(t, "hpcxl_close_duration_seconds_count 4"));
	cr_expect(has_line(t, "hpcxl_close_duration_seconds_sum 320.021"));
	free(t);
}

Test(metrics_text, replies_by_outcome)
{
	char *t;

	metrics_count_reply(PROTO_OPEN, PROTO_CODE_OK);
	metrics_count_reply(PROTO_OPEN, PROTO_CODE_BAD_REQUEST);
	metrics_count_reply(PROTO_OPEN, PROTO_CODE_ERROR);
	metrics_count_reply(PROTO_OPEN, PROTO_CODE_REFUSED);
	metrics_count_reply(PROTO_CLOSE, PROTO_CODE_PARTIAL);
	metrics_count_reply(PROTO_CLOSE, PROTO_CODE_NOT_FOUND);
	metrics_count_reply(PROTO_PING, PROTO_CODE_OK); /* not counted */
	metrics_count_kill();
	metrics_count_kill();
	metrics_count_restart();
	t = text_of(&quiet);
	cr_expect(has_line(t, "hpcxl_opens_total{outcome=\"ok\"} 1"), "%s", t);
	cr_expect(has_line(t, "hpcxl_opens_total{outcome=\"error\"} 2"));
	cr_expect(has_line(t, "hpcxl_opens_total{outcome=\"refused\"} 1"));
	cr_expect(has_line(t, "hpcxl_closes_total{outcome=\"ok\"} 0"));
	cr_expect(has_line(t, "hpcxl_closes_total{outcome=\"partial\"} 1"));
	cr_expect(has_line(t, "hpcxl_closes_total{outcome=\"not_found\"} 1"));
	cr_expect(has_line(t, "hpcxl_kills_total 2"));
	cr_expect(has_line(t, "hpcxl_restarts_total 1"));
	free(t);
}

Test(metrics_text, gauges_and_escaped_labels)
{
	struct metrics_gauges g = {
		.version = "1\"2\\3", .backend = "cgroup2", .unhealthy = true
	};
	char *t;

	g.sessions[CLOSEFSM_KILLING] = 2;
	g.workers[PROTO_W_KILLED] = 7;
	t = text_of(&g);
	cr_expect(has_line(t, "hpcxl_sessions{state=\"killing\"} 2"), "%s", t);
	cr_expect(has_line(t, "hpcxl_workers{state=\"killed\"} 7"));
	cr_expect(has_line(t, "hpcxl_unhealthy 1"));
	cr_expect(has_line(t,
	    "hpcxl_build_info{version=\"1\\\"2\\\\3\",backend=\"cgroup2\"} "
	    "1"));
	free(t);
}
