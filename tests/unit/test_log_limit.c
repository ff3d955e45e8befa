/*
 * Unit tests of the rate limit of repeated warnings (log_limit_allow(),
 * common/log.c), which the agent's refusals, full tables and replies at
 * risk go through: a burst, then one per interval, and a count of what was
 * held back, told with the next warning allowed.
 */
#include "hpcxl/common/log.h"

#include <criterion/criterion.h>

Test(log_limit, a_burst_then_one_per_interval)
{
	struct log_limit l = LOG_LIMIT_INIT(3, 1000);
	unsigned long held = 99;
	int allowed = 0;

	for (int i = 0; i < 10; i++)
		allowed += log_limit_allow(&l, 5000, &held);
	cr_assert_eq(
	    allowed, 3, "%d of 10 at once allowed, want the burst", allowed);
	cr_assert_not(log_limit_allow(&l, 5999, &held), "before the interval");
	cr_assert(log_limit_allow(&l, 6000, &held), "after one interval");
	cr_assert_eq(held, 8, "held back before it: %lu, want 8", held);
	cr_assert_not(log_limit_allow(&l, 6001, &held));
}

Test(log_limit, a_quiet_spell_earns_the_burst_back_and_no_more)
{
	struct log_limit l = LOG_LIMIT_INIT(2, 100);
	int allowed = 0;

	cr_assert(log_limit_allow(&l, 1, NULL));
	cr_assert(log_limit_allow(&l, 1, NULL));
	cr_assert_not(log_limit_allow(&l, 1, NULL));
	for (int i = 0; i < 5; i++)
		allowed += log_limit_allow(&l, 100000, NULL);
	cr_assert_eq(
	    allowed, 2, "%d allowed after a long quiet, want 2", allowed);
}

Test(log_limit, one_per_interval_without_a_burst)
{
	struct log_limit l = LOG_LIMIT_INIT(1, 10000);
	unsigned long held = 0;

	cr_assert(log_limit_allow(&l, 50, &held));
	cr_assert_eq(held, 0);
	for (int i = 0; i < 4; i++)
		cr_assert_not(log_limit_allow(&l, 60 + i, &held));
	cr_assert_not(log_limit_allow(&l, 10049, &held));
	cr_assert(log_limit_allow(&l, 10050, &held));
	cr_assert_eq(held, 5);
}
