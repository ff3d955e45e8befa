/*
 * What the CLI does while a call runs: a progress line on a terminal, and
 * SIGINT turned into "stop waiting, print the report so far".
 */
#ifndef HPCXL_CLI_WATCH_H
#define HPCXL_CLI_WATCH_H

#include "cli.h"

/*
 * Before the client is made: from now on SIGINT (the first one; a second
 * one kills as usual) interrupts the call, also one made later.
 */
void watch_start(const struct cli_args *a);

/*
 * Once the client is made: a SIGINT that came already interrupts it now,
 * and, when stderr is a terminal and the output is not JSON, a call still
 * waiting after a second shows one progress line on stderr.
 */
void watch_attach(struct hpcxl_client *c, const struct cli_args *a);

/* After the call: erases the progress line and restores SIGINT. */
void watch_stop(void);

#endif
