/*
 * The agent's front (agent/front.h): it serves tls+tcp:// and ipc://
 * itself and relays to a loopback tcp:// listener of nng's. What it must
 * hold against clients that misbehave, with a real agent and real
 * sockets (loopback and a Unix socket in a temporary directory only):
 *
 *   - connections that hang up at once, before or in the middle of the
 *     TLS handshake or the SP handshake, leave both listeners serving
 *     (nng 1.5.2's own ipc listener stopped accepting for good after one
 *     such client: nng #1518) and no descriptor behind;
 *   - a client that hangs up before it has sent SP's handshake header,
 *     or sends a bad one, never reaches nng's loopback listener (which
 *     would stop accepting for 100 ms, keeping every other caller
 *     waiting);
 *   - an ipc client that breaks SP's ipc framing is closed, and the
 *     others are served;
 *   - a local program that reaches the loopback listener directly is no
 *     relay of the front's: it is closed and gets no answer.
 */
#include "harness.h"
#include "sp_tls.h"

#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_MS 5000
/* A client the agent must not answer waits this long. */
#define REFUSED_MS 1500
#define HANGUPS 50
/* Descriptors the agent may hold beyond its count before the hang-ups
 * (nng's and the front's own come and go). */
#define FD_SLACK 8

static struct harness_agent agent;
/* Short: the ipc socket's path (under it) must fit sun_path. */
static char pki[80];
static char tls_url[256], ipc_url[256 + 16];
static struct sockaddr_in tls_addr;
static struct sockaddr_un ipc_addr = { .sun_family = AF_UNIX };

static const char *
pki_file(const char *name)
{
	return harness_pki_file(pki, name);
}

/* tls+tcp4://localhost:PORT -> 127.0.0.1:PORT, for raw connections. */
static void
tls_addr_from_url(void)
{
	const char *colon = strrchr(tls_url, ':');

	cr_assert_not_null(colon);
	tls_addr = (struct sockaddr_in) { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)atoi(colon + 1)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
}

static void
set_up(void)
{
	/* --verbose: the front's debug lines tell which clients it relayed. */
	const char *extra[] = { "--listen", ipc_url, "--verbose", NULL };
	char why[4096];

	harness_unique("/tmp/hpcxl-front-", pki, sizeof(pki));
	cr_assert_eq(
	    harness_make_pki(HPCXL_MAKE_CERTS, pki, "front", why, sizeof(why)),
	    0, "make-certs.sh: %s", why);
	snprintf(ipc_addr.sun_path, sizeof(ipc_addr.sun_path), "%s/sock", pki);
	snprintf(ipc_url, sizeof(ipc_url), "ipc://%s", ipc_addr.sun_path);
	cr_assert_eq(harness_tls_agent_start(&agent, "front", pki, false,
	                 extra, tls_url, sizeof(tls_url)),
	    0, "the agent did not start on tls+tcp://");
	tls_addr_from_url();
	harness_tls_client(pki_file("client-front.pem"),
	    pki_file("client-front.key"), pki_file("ca.pem"), "localhost");
}

static void
tear_down(void)
{
	harness_agent_stop(&agent, 15000);
	harness_remove_tree(pki);
}

TestSuite(front, .init = set_up, .fini = tear_down, .timeout = 180);

/* ---- helpers ----------------------------------------------------------- */

/* Connects to addr, sends bytes (may be none), and hangs up. */
static void
connect_send_close(
    const struct sockaddr *addr, socklen_t len, const void *bytes, size_t n)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, addr, len), 0, "cannot connect: %m");
	if (n > 0)
		cr_assert_eq(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
	close(fd);
}

static void
expect_served(const char *url, const char *what)
{
	struct proto_msg ping = { .type = PROTO_PING }, h;

	ping.op = util_random_u64();
	cr_assert_eq(harness_request(url, &ping, REPLY_MS, &h), 0,
	    "no reply over %s %s", url, what);
	cr_assert_eq(h.u.reply.code, PROTO_CODE_OK);
	proto_msg_free(&h);
}

/* The SP handshake header of a surveyor (protocol 0x62). */
static const unsigned char surveyor_header[8]
    = { 0, 'S', 'P', 0, 0, 0x62, 0, 0 };

/* ---- tests ---------------------------------------------------------------
 */

Test(front, hangups_at_every_step_leave_both_listeners_serving)
{
	/* A TLS ClientHello's first bytes: a handshake record, TLS 1.0. */
	static const unsigned char hello_start[]
	    = { 0x16, 0x03, 0x01, 0x00, 0x80, 0x01 };
	int fds_before;

	expect_served(ipc_url, "before the hang-ups");
	expect_served(tls_url, "before the hang-ups");
	fds_before = harness_count_fds(agent.pid);
	cr_assert_gt(fds_before, 0);
	for (int i = 0; i < HANGUPS; i++) {
		connect_send_close((const struct sockaddr *)&ipc_addr,
		    sizeof(ipc_addr), NULL, 0);
		connect_send_close((const struct sockaddr *)&ipc_addr,
		    sizeof(ipc_addr), surveyor_header, 4);
		connect_send_close((const struct sockaddr *)&tls_addr,
		    sizeof(tls_addr), NULL, 0);
		connect_send_close((const struct sockaddr *)&tls_addr,
		    sizeof(tls_addr), hello_start, sizeof(hello_start));
	}
	expect_served(ipc_url, "after 100 ipc hang-ups");
	expect_served(tls_url, "after 100 TLS hang-ups");
	cr_assert(harness_fds_settled(agent.pid, fds_before + FD_SLACK, 10000),
	    "descriptors grew from %d to %d", fds_before,
	    harness_count_fds(agent.pid));
}

Test(front, a_client_without_a_valid_sp_header_never_reaches_nng)
{
	static const char relayed[] = "(relayed from 127.0.0.1:";
	static const char gone[] = "closed before its SP handshake";
	struct sp_tls_client c
	    = { pki_file("client-front.pem"), pki_file("client-front.key"),
		      pki_file("ca.pem"), "localhost", true };
	int relays_before, gone_before;
	bool all_seen;

	expect_served(ipc_url, "before the hang-ups");
	relays_before = harness_agent_log_count(&agent, relayed);
	gone_before = harness_agent_log_count(&agent, gone);
	cr_assert_gt(
	    relays_before, 0, "the log names no relay: no --verbose?");
	for (int i = 0; i < HANGUPS; i++) {
		connect_send_close((const struct sockaddr *)&ipc_addr,
		    sizeof(ipc_addr), NULL, 0);
		connect_send_close((const struct sockaddr *)&ipc_addr,
		    sizeof(ipc_addr), surveyor_header, 4);
		cr_assert_eq(
		    sp_tls_hangup_after_handshake(tls_url, &c, REPLY_MS), 0);
		/* A header nng would refuse pauses it as much. */
		connect_send_close((const struct sockaddr *)&ipc_addr,
		    sizeof(ipc_addr), "GET / HT", 8);
	}
	all_seen = harness_agent_wait_log(
	    &agent, gone, gone_before + 3 * HANGUPS, REPLY_MS);
	cr_assert_eq(harness_agent_log_count(&agent, relayed), relays_before,
	    "%d clients without a valid SP header were relayed to nng",
	    harness_agent_log_count(&agent, relayed) - relays_before);
	cr_assert(all_seen, "%d of %d hang-ups logged",
	    harness_agent_log_count(&agent, gone) - gone_before, 3 * HANGUPS);
	cr_assert_gt(
	    harness_agent_log_count(&agent, "not SP (a bad handshake header)"),
	    0);
	expect_served(ipc_url, "after the hang-ups");
	expect_served(tls_url, "after the hang-ups");
}

Test(front, an_ipc_client_breaking_the_framing_is_closed)
{
	unsigned char frame[8 + 1 + 8 + 4];
	char reply[64];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = REPLY_MS / 1000 };
	ssize_t n;

	memcpy(frame, surveyor_header, 8);
	frame[8] = 2; /* the message type: SP over ipc has only 1 */
	memset(frame + 9, 0, 8);
	frame[16] = 4;
	memcpy(frame + 17, "\x80\0\0\1", 4);
	cr_assert_geq(fd, 0);
	cr_assert_eq(
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	cr_assert_eq(
	    connect(fd, (const struct sockaddr *)&ipc_addr, sizeof(ipc_addr)),
	    0);
	cr_assert_eq(send(fd, frame, sizeof(frame), MSG_NOSIGNAL),
	    (ssize_t)sizeof(frame));
	/* The agent's header may come first; then the end. */
	while ((n = recv(fd, reply, sizeof(reply), 0)) > 0)
		;
	cr_assert(n == 0 || (n < 0 && errno == ECONNRESET),
	    "the connection was not closed: %m");
	close(fd);
	cr_assert(harness_agent_logged(&agent,
	              (const char *const[]) { "not SP over ipc", NULL }),
	    "the agent did not say why it closed the connection");
	expect_served(ipc_url, "after a bad client");
}

/* The port of "the front relays to tcp://127.0.0.1:PORT" in the log. */
static int
loopback_port(void)
{
	char path[PATH_MAX + 16], line[512];
	const char *key = "the front relays to tcp://127.0.0.1:";
	int port = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.log", agent.dir);
	cr_assert_not_null(f = fopen(path, "re"));
	while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *at = strstr(line, key);

		if (at != NULL)
			port = atoi(at + strlen(key));
	}
	fclose(f);
	cr_assert_gt(port, 0, "the agent did not log its loopback listener");
	return port;
}

Test(front, a_program_on_the_loopback_listener_is_no_relay)
{
	struct proto_msg ping = { .type = PROTO_PING }, h;
	char url[64];

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", loopback_port());
	ping.op = util_random_u64();
	cr_assert_neq(harness_request(url, &ping, REFUSED_MS, &h), 0,
	    "the loopback listener answered a program that is no relay");
	cr_assert(harness_agent_logged(&agent,
	              (const char *const[]) {
	                  "not a connection of the agent's front", NULL }),
	    "the agent did not say why it closed the connection");
	expect_served(tls_url, "after a stranger on the loopback listener");
}

/* True when this machine can reach [::1] (IPv6 on, loopback configured). */
static bool
ipv6_loopback(void)
{
	struct sockaddr_in6 a
	    = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static bool
tcp_connects(int family, const void *addr, uint16_t port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr, sizeof(in->sin_addr));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, addr, sizeof(in6->sin6_addr));
	}
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&ss, sizeof(ss)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* tls+tcp://:PORT is every address, IPv6 and IPv4 (Debian's /etc/hosts
 * says ::1 localhost, and a client dials the first address only). */
Test(front, an_empty_host_listens_on_ipv6_and_ipv4)
{
	const char *args[] = { "--listen", "tls+tcp://:0", "--tls-cert",
		pki_file("agent-localhost.pem"), "--tls-key",
		pki_file("agent-localhost.key"), "--tls-ca",
		pki_file("ca.pem"), NULL };
	struct in_addr v4 = { .s_addr = htonl(INADDR_LOOPBACK) };
	struct in6_addr v6 = IN6ADDR_LOOPBACK_INIT;
	struct harness_agent both;
	char url[256];
	uint16_t port;

	cr_assert_eq(harness_agent_start(&both, "front-any", args), 0);
	cr_assert(harness_ready_url(&both, "tls+tcp://:", url, sizeof(url)),
	    "the agent bound no tls+tcp://: URL");
	port = (uint16_t)atoi(strrchr(url, ':') + 1);
	cr_assert(tcp_connects(AF_INET, &v4, port),
	    "%s takes no connection on 127.0.0.1", url);
	if (ipv6_loopback())
		cr_assert(tcp_connects(AF_INET6, &v6, port),
		    "%s takes no connection on ::1", url);
	else
		cr_log_warn("no IPv6 loopback here: ::1 not tried");
	harness_agent_stop(&both, 15000);
}
