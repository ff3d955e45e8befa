/*
 * systemd's readiness protocol without systemd: the test binds the unix
 * datagram socket that NOTIFY_SOCKET names, as the service manager would,
 * and reads what a real agent says there: READY=1 only once the ready file
 * is written, STATUS= with the session count as it changes, STOPPING=1 on
 * SIGTERM. Real agent, real xlsim worker.
 */
#include "ask.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define WAIT_MS 10000

static struct harness_agent agent;
static char sock_path[108];
static int sock_fd = -1;
static char node[64];
static pthread_t reader;
static bool reader_running;

/* What the agent said, datagrams joined by '|', under lock. */
static pthread_mutex_t said_lock = PTHREAD_MUTEX_INITIALIZER;
static char said[8192];
static int ready_file_then = -1; /* did the ready file exist at READY=1? */

/* The harness names the agent's directory after the node it makes unique
 * from ours: the ready file is the one glob finds. */
static bool
ready_file_exists(void)
{
	char pattern[256];
	glob_t g;
	bool found;

	snprintf(pattern, sizeof(pattern), "/tmp/hpcxl-test-%s*/ready", node);
	found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
	globfree(&g);
	return found;
}

/* Reads datagrams until the socket is shut down by the test's clean-up. */
static void *
read_notifications(void *arg)
{
	char buf[1024];
	ssize_t n;

	(void)arg;
	while ((n = recv(sock_fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		pthread_mutex_lock(&said_lock);
		/* Checked the moment READY=1 arrives, not later. */
		if (strstr(buf, "READY=1") != NULL && ready_file_then < 0)
			ready_file_then = ready_file_exists();
		strncat(said, buf, sizeof(said) - strlen(said) - 2);
		strcat(said, "|");
		pthread_mutex_unlock(&said_lock);
	}
	return NULL;
}

static void
set_up(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	harness_unique("sdn", node, sizeof(node));
	snprintf(sock_path, sizeof(sock_path), "/tmp/hpcxl-%s.sock", node);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(sock_fd >= 0);
	cr_assert(bind(sock_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(
	    pthread_create(&reader, NULL, read_notifications, NULL) == 0);
	reader_running = true;
}

static void
clean_up(void)
{
	harness_agent_stop(&agent, 15000);
	if (reader_running) {
		shutdown(sock_fd, SHUT_RDWR); /* recv() returns 0 */
		pthread_join(reader, NULL);
	}
	if (sock_fd >= 0)
		close(sock_fd);
	unlink(sock_path);
}

TestSuite(sdnotify, .init = set_up, .fini = clean_up, .timeout = 90);

/* Where in what was said `what` first appears after offset `from`, or -1
 * once WAIT_MS passed without it. */
static long
wait_said(const char *what, long from)
{
	for (int waited = 0; waited < WAIT_MS; waited += 20) {
		const char *at;
		long pos = -1;

		pthread_mutex_lock(&said_lock);
		at = strstr(said + from, what);
		if (at != NULL)
			pos = at - said;
		pthread_mutex_unlock(&said_lock);
		if (pos >= 0)
			return pos;
		harness_nap_ms(20);
	}
	cr_log_error("never said '%s'; said: %s", what, said);
	return -1;
}

Test(sdnotify, ready_after_the_ready_file_then_status_and_stopping)
{
	struct proto_msg h;
	long at;
	char session[64];

	setenv("NOTIFY_SOCKET", sock_path, 1);
	cr_assert(harness_agent_start(&agent, node, NULL) == 0);
	unsetenv("NOTIFY_SOCKET");

	at = wait_said("READY=1", 0);
	cr_assert(at >= 0);
	cr_expect(ready_file_then == 1, "READY=1 came before the ready file");
	cr_expect(wait_said("STATUS=serving 0 session(s)", 0) >= 0);

	harness_unique("sdn-s", session, sizeof(session));
	cr_assert(ask_open(agent.url, session, "xl", 1, 0, &h).code
	    == PROTO_CODE_OK);
	proto_msg_free(&h);
	at = wait_said("STATUS=serving 1 session(s)", at);
	cr_assert(at >= 0);
	cr_assert(
	    ask_close(agent.url, session, 0, 8000, &h).code == PROTO_CODE_OK);
	proto_msg_free(&h);
	at = wait_said("STATUS=serving 0 session(s)", at);
	cr_assert(at >= 0);

	cr_assert(harness_agent_stop(&agent, 15000) == 0);
	cr_expect(wait_said("STOPPING=1", at) >= 0);
}
