/*
 * The agent's side of systemd's readiness protocol (Type=notify): READY=1
 * once serving, STOPPING=1 on the stop signal, STATUS= with the session
 * count. Every call is a no-op when NOTIFY_SOCKET is unset (not started by
 * systemd, or a test that does not ask for it).
 */
#ifndef HPCXL_AGENT_SDNOTIFY_H
#define HPCXL_AGENT_SDNOTIFY_H

#include <stddef.h>

/* The ready file is written and earlier sessions re-adopted. */
void sdnotify_ready(size_t nsessions);

/* The stop signal came: systemd shows the unit as deactivating. */
void sdnotify_stopping(void);

/* Says the session count when it differs from the last one said. */
void sdnotify_sessions(size_t nsessions);

#endif
