/*
 * Unit tests of the agent's listen rules (agent/listen.c): which URLs are
 * TLS, loopback plain tcp, plain tcp anywhere else, ipc, or not supported.
 * No name is resolved and nothing listens.
 */
#include "listen.h"

#include <criterion/criterion.h>

struct kind_case {
	const char *url;
	enum listen_kind kind;
};

static const struct kind_case kind_cases[] = {
	{ "tls+tcp://n01:7420", LISTEN_TLS },
	{ "tls+tcp4://localhost:0", LISTEN_TLS },
	{ "tls+tcp6://[::1]:7420", LISTEN_TLS },
	{ "tls+tcp://0.0.0.0:7420", LISTEN_TLS },
	{ "tcp://127.0.0.1:7420", LISTEN_TCP_LOOPBACK },
	{ "tcp://127.3.2.1:0", LISTEN_TCP_LOOPBACK },
	{ "tcp4://127.0.0.1:0", LISTEN_TCP_LOOPBACK },
	{ "tcp://[::1]:7420", LISTEN_TCP_LOOPBACK },
	{ "tcp6://[::1]:0", LISTEN_TCP_LOOPBACK },
	{ "tcp://localhost:7420", LISTEN_TCP_LOOPBACK },
	{ "tcp://LocalHost:7420", LISTEN_TCP_LOOPBACK },
	{ "tcp://0.0.0.0:7420", LISTEN_TCP_OPEN },
	{ "tcp://:7420", LISTEN_TCP_OPEN },
	{ "tcp://*:7420", LISTEN_TCP_OPEN },
	{ "tcp://[::]:7420", LISTEN_TCP_OPEN },
	{ "tcp://10.0.0.5:7420", LISTEN_TCP_OPEN },
	{ "tcp://128.0.0.1:7420", LISTEN_TCP_OPEN },
	{ "tcp://n01:7420", LISTEN_TCP_OPEN },
	/* A name is not resolved: only "localhost" itself is loopback. */
	{ "tcp://localhost.example:7420", LISTEN_TCP_OPEN },
	{ "tcp://127.0.0.1.example:7420", LISTEN_TCP_OPEN },
	{ "tcp://[::ffff:127.0.0.1]:7420", LISTEN_TCP_OPEN },
	{ "ipc:///run/hpcxl/agent.sock", LISTEN_IPC },
	{ "ws://127.0.0.1:7420", LISTEN_UNSUPPORTED },
	{ "wss://n01:7420", LISTEN_UNSUPPORTED },
	{ "inproc://agent", LISTEN_UNSUPPORTED },
	{ "abstract://agent", LISTEN_UNSUPPORTED },
	{ "127.0.0.1:7420", LISTEN_UNSUPPORTED },
	{ "", LISTEN_UNSUPPORTED },
};

Test(listen, url_kinds)
{
	for (size_t i = 0; i < sizeof(kind_cases) / sizeof(kind_cases[0]); i++)
		cr_expect_eq(listen_url_kind(kind_cases[i].url),
		    kind_cases[i].kind, "%s: kind %d, want %d",
		    kind_cases[i].url, listen_url_kind(kind_cases[i].url),
		    kind_cases[i].kind);
}
