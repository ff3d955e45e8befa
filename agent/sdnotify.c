/*
 * sd_notify() through libsystemd rather than a hand-written datagram:
 * libsystemd knows the abstract-namespace and vsock forms of NOTIFY_SOCKET
 * and returns 0 without doing anything when it is unset.
 */
#include "sdnotify.h"

#include "hpcxl/common/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static size_t said_sessions;
static bool said_any;

/* A lost notification costs systemd's view, never the agent's work: a
 * failure is logged at debug level and otherwise ignored. */
static void
say(const char *what)
{
	int rv = sd_notify(0, what);

	if (rv < 0)
		log_debug("sd_notify(%s): error %d", what, -rv);
}

static void
say_status(size_t n)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "STATUS=serving %zu session(s)", n);
	say(msg);
	said_sessions = n;
	said_any = true;
}

void
sdnotify_ready(size_t nsessions)
{
	/* STATUS first: `systemctl status` shows the count from the moment
	 * the unit is active. */
	say_status(nsessions);
	say("READY=1");
}

void
sdnotify_stopping(void)
{
	say("STOPPING=1");
}

void
sdnotify_sessions(size_t nsessions)
{
	if (said_any && nsessions != said_sessions)
		say_status(nsessions);
}
