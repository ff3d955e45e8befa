/*
 * SIGHUP reloads the profiles: one added to the config file becomes
 * usable, the command line's stay, a session that runs across the reload
 * keeps running and closes as usual, and a config that does not load
 * leaves the profiles in use as they were. Real agent, real xlsim workers.
 */
#include "ask.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

static struct harness_agent agent;
static char cfg_dir[PATH_MAX];
static char cfg_path[PATH_MAX + 32];
static char sessions[4][64];

static void
write_config(const char *text)
{
	FILE *f = fopen(cfg_path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void
set_up(void)
{
	snprintf(cfg_dir, sizeof(cfg_dir), "/tmp/hpcxl-reload-XXXXXX");
	cr_assert_not_null(mkdtemp(cfg_dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/extra.ini", cfg_dir);
	write_config("[agent]\n");
}

static void
clean_up(void)
{
	harness_agent_stop(&agent, 15000);
	for (size_t i = 0; i < 4; i++)
		if (sessions[i][0] != '\0')
			harness_session_kill(sessions[i]);
	harness_remove_tree(cfg_dir);
}

TestSuite(reload, .init = set_up, .fini = clean_up, .timeout = 90);

/* SIGHUP, then wait for the agent to log what it did with it. */
static void
hup_until_logged(const char *word)
{
	const char *const words[] = { word, NULL };

	cr_assert_eq(kill(agent.pid, SIGHUP), 0);
	for (int waited = 0; waited < WAIT_MS; waited += 20) {
		if (harness_agent_logged(&agent, words))
			return;
		harness_nap_ms(20);
	}
	cr_assert_fail("the agent never logged '%s'", word);
}

static enum proto_code
open_code(size_t i, const char *profile)
{
	struct proto_msg h;
	enum proto_code code;

	harness_unique("reload", sessions[i], sizeof(sessions[i]));
	code = ask_open(agent.url, sessions[i], profile, 1, 0, &h).code;
	proto_msg_free(&h);
	return code;
}

static void
close_ok(size_t i)
{
	struct proto_msg h;

	cr_assert_eq(ask_close(agent.url, sessions[i], 0, 8000, &h).code,
	    PROTO_CODE_OK, "close %s", sessions[i]);
	proto_msg_free(&h);
	cr_assert(harness_wait_procs(sessions[i], 0, WAIT_MS));
}

Test(reload, added_profile_usable_running_session_untouched_bad_config_kept)
{
	const char *const args[] = { "--config", cfg_path, NULL };
	char text[PATH_MAX + 64];

	cr_assert_eq(harness_agent_start(&agent, "reload", args), 0);
	cr_assert_eq(open_code(0, "xl"), PROTO_CODE_OK);
	cr_assert(harness_wait_ready(&agent, sessions[0], 1, WAIT_MS));
	cr_assert_neq(open_code(1, "extra"), PROTO_CODE_OK);

	snprintf(text, sizeof(text), "[profile.extra]\ncommand = %s\n",
	    harness_bin("xlsim"));
	write_config(text);
	hup_until_logged("reloaded");
	cr_assert_eq(open_code(1, "extra"), PROTO_CODE_OK);
	cr_assert_eq(open_code(2, "xl"), PROTO_CODE_OK, "--profile lost");

	write_config("[profile.broken]\nno_such_key = 1\n");
	hup_until_logged("reload refused");
	cr_assert_eq(open_code(3, "extra"), PROTO_CODE_OK, "old one dropped");

	/* The session of before both reloads ran on through them. */
	cr_assert_eq(harness_session_procs(sessions[0]), 1);
	for (size_t i = 0; i < 4; i++)
		close_ok(i);
}
