/*
 * The agent's TLS engine for nng: TLS 1.2 over mbedTLS 2.28, as nng's own
 * engine, plus the one thing nng 1.5.2 cannot tell the agent: the subject
 * CN of the client certificate a connection was verified with, which is
 * the caller's identity (caller.h).
 *
 * nng 1.5.2 has no pipe option for the peer's certificate
 * (NNG_OPT_TLS_PEER_CN came in a later release), but its TLS layer is
 * pluggable (<nng/supplemental/tls/engine.h>): a process may register an
 * engine of its own, and every TLS configuration made after that uses it.
 * This one behaves as nng's mbedTLS engine does (TLS 1.2 only, mbedTLS's
 * default preset, the auth mode, CA chain, own certificate and server name
 * of the configuration) and keeps, once the handshake is done, the peer
 * certificate's CN in its connection.
 *
 * How that CN reaches the agent: the only query of one connection that
 * nng 1.5.2 hands to its engine is NNG_OPT_TLS_VERIFIED, and it does so
 * synchronously, on the thread that asked (nng_pipe_get_bool() -> the TLS
 * stream -> the engine's "verified" op, under the connection's lock).
 * tls_engine_peer_cn() asks it for a pipe with a request placed in a
 * thread-local variable; the engine's "verified" op, seeing that request on
 * its thread, answers it with its connection's CN. Anyone else asking for
 * NNG_OPT_TLS_VERIFIED gets the plain answer and nothing else happens.
 */
#ifndef HPCXL_AGENT_TLS_ENGINE_H
#define HPCXL_AGENT_TLS_ENGINE_H

#include <nng/nng.h>
#include <stddef.h>

/*
 * Makes this engine nng's TLS engine for the whole process. Call it before
 * the first TLS configuration is made (configurations keep the engine they
 * were made with). Returns 0, or HPCXL_ESYSTEM with the reason logged.
 */
int tls_engine_register(void);

/*
 * The subject CN of the verified client certificate of pipe (a tls+tcp://
 * connection of this engine) into cn[0..len), NUL-terminated. Returns 0;
 * HPCXL_ENOTFOUND when pipe is not such a connection, is not verified, or
 * its certificate has no single CN of at most len - 1 bytes without a NUL
 * (then *why, when why is not NULL, says which, in static storage).
 * Safe on any thread; meant for nng's pipe callbacks.
 */
int tls_engine_peer_cn(nng_pipe pipe, char *cn, size_t len, const char **why);

#endif
