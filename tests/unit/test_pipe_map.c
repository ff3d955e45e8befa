/*
 * Unit tests of the agent's identities by pipe id (agent/pipe_map.c): the
 * open-addressing table every request's caller is read from. Its removal
 * moves entries back; a mistake there would lose a connection's identity
 * (its requests refused) or give it another's, so it is checked against a
 * plain array through long random sequences, with ids that collide.
 */
#include "pipe_map.h"

#include "hpcxl/common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX 512

/* What the map must hold: model_id[i] has identity "who-<model_id[i]>". */
static uint32_t model_id[MODEL_MAX];
static size_t nmodel;

static void
identity_of(uint32_t pipe, char *out, size_t len)
{
	snprintf(out, len, "who-%u", pipe);
}

static size_t
model_find(uint32_t pipe)
{
	for (size_t i = 0; i < nmodel; i++) {
		if (model_id[i] == pipe)
			return i;
	}
	return nmodel;
}

/* Every pipe of the model is found with its identity; n others are not. */
static void
check_against_model(const struct pipe_map *m, uint32_t id_space)
{
	char want[64];

	cr_assert_eq(m->npipes, nmodel);
	for (size_t i = 0; i < nmodel; i++) {
		const char *got = pipe_map_get(m, model_id[i]);

		identity_of(model_id[i], want, sizeof(want));
		cr_assert_not_null(got, "pipe %u lost", model_id[i]);
		cr_assert_str_eq(got, want, "pipe %u", model_id[i]);
	}
	for (uint32_t id = 1; id <= id_space; id++) {
		if (model_find(id) == nmodel)
			cr_assert_null(
			    pipe_map_get(m, id), "pipe %u found", id);
	}
}

static void
put(struct pipe_map *m, uint32_t pipe)
{
	char who[64];

	identity_of(pipe, who, sizeof(who));
	cr_assert_eq(pipe_map_put(m, pipe, who), 0);
	if (model_find(pipe) == nmodel)
		model_id[nmodel++] = pipe;
}

static void
drop(struct pipe_map *m, uint32_t pipe)
{
	size_t i = model_find(pipe);

	pipe_map_remove(m, pipe);
	if (i < nmodel)
		model_id[i] = model_id[--nmodel];
}

Test(pipe_map, empty_map_knows_nothing)
{
	struct pipe_map m;

	cr_assert_eq(pipe_map_init(&m, 8), 0);
	cr_assert_null(pipe_map_get(&m, 1));
	cr_assert_null(pipe_map_get(&m, 0));
	pipe_map_remove(&m, 5); /* not there: nothing */
	cr_assert_eq(m.npipes, 0);
	pipe_map_fini(&m);
}

Test(pipe_map, put_replaces_and_cuts_long_identities)
{
	char longer[HPCXL_IDENTITY_MAX + 20];
	struct pipe_map m;

	cr_assert_eq(pipe_map_init(&m, 8), 0);
	cr_assert_eq(pipe_map_put(&m, 7, "alice"), 0);
	cr_assert_eq(pipe_map_put(&m, 7, "bob"), 0);
	cr_assert_str_eq(pipe_map_get(&m, 7), "bob");
	cr_assert_eq(m.npipes, 1);
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	cr_assert_eq(pipe_map_put(&m, 8, longer), 0);
	cr_assert_eq(strlen(pipe_map_get(&m, 8)), HPCXL_IDENTITY_MAX);
	cr_assert_eq(pipe_map_put(&m, 0, "nobody"), HPCXL_EINVAL);
	pipe_map_fini(&m);
}

Test(pipe_map, refuses_past_its_bound_until_one_goes)
{
	struct pipe_map m;

	nmodel = 0;
	cr_assert_eq(pipe_map_init(&m, 100), 0);
	for (uint32_t id = 1; id <= 100; id++)
		put(&m, id * 7919);
	cr_assert_eq(pipe_map_put(&m, 1, "one-more"), HPCXL_ETOOBIG);
	cr_assert_eq(pipe_map_put(&m, 7919, "again"), 0, "a known pipe");
	drop(&m, 7919 * 3);
	cr_assert_eq(pipe_map_put(&m, 1, "one-more"), 0);
	cr_assert_str_eq(pipe_map_get(&m, 1), "one-more");
	pipe_map_fini(&m);
}

/* Ids from a small space collide in every run of the table, grow it and
 * shrink it again: the removals must keep every other pipe findable. */
Test(pipe_map, random_puts_and_removals_match_a_plain_list)
{
	const uint32_t id_space = 2000;
	struct pipe_map m;

	srand(42);
	nmodel = 0;
	cr_assert_eq(pipe_map_init(&m, MODEL_MAX), 0);
	for (int step = 0; step < 20000; step++) {
		uint32_t id = (uint32_t)(rand() % id_space) + 1;

		if (nmodel < MODEL_MAX && rand() % 3 != 0)
			put(&m, id);
		else if (nmodel > 0)
			drop(&m, model_id[(size_t)rand() % nmodel]);
		if (step % 1000 == 0)
			check_against_model(&m, id_space);
	}
	check_against_model(&m, id_space);
	while (nmodel > 0)
		drop(&m, model_id[0]);
	check_against_model(&m, id_space);
	pipe_map_fini(&m);
}

/* Ids at the top of nng's range (31 bits) and in sequence, as nng gives
 * them from a random start. */
Test(pipe_map, sequential_ids_near_the_top_of_the_range)
{
	struct pipe_map m;

	nmodel = 0;
	cr_assert_eq(pipe_map_init(&m, MODEL_MAX), 0);
	for (uint32_t id = 0x7ffffe00u; id < 0x7ffffe00u + 400; id++)
		put(&m, id);
	for (uint32_t id = 0x7ffffe00u; id < 0x7ffffe00u + 400; id += 2)
		drop(&m, id);
	for (size_t i = 0; i < nmodel; i++)
		cr_assert_not_null(pipe_map_get(&m, model_id[i]));
	cr_assert_eq(m.npipes, 200);
	pipe_map_fini(&m);
}
