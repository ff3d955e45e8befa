/*
 * hpcxl-agent: one per node. Parses arguments and config, then runs a
 * single-threaded poll loop over a signalfd, the respondent socket and the
 * cgroup.events files of closing sessions. nng's own threads never touch
 * agent state: they only queue messages for the loop.
 */
#include "hpcxl/common/config.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"
#include "listen.h"
#include "metrics.h"
#include "proctrack.h"
#include "reload.h"
#include "sdnotify.h"
#include "server.h"
#include "session.h"
#include "spawn_clone.h"
#include "state.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* Agent shutdown closes sessions with this much time beyond their grace. */
#define SHUTDOWN_SLACK_MS 5000
#define REQUESTS_PER_PASS 64

struct agent {
	struct config cfg;
	const char *ready_file;
	bool listen_given; /* a --listen was applied */
	bool check_only; /* --check-config */
	int sig_fd;
	struct proctrack pt;
	struct server *srv;
	struct metrics *metrics; /* NULL: no --metrics-listen */
	struct state_dir state; /* locked: one agent per state directory */
	struct session_table sessions;
	int stop_signals; /* SIGTERM/SIGINT received so far */
	struct pollfd *fds; /* the loop's poll set, grown as needed */
	size_t fds_cap;
	int argc; /* main()'s, read again by a reload (SIGHUP) */
	char **argv;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hpcxl-agent [--config FILE] [--listen URL]... [--node "
	    "NAME]\n"
	    "                   [--profile 'NAME=COMMAND [ARGS...]']...\n"
	    "                   [--ready-file FILE] [--state-dir DIR]\n"
	    "                   [--backend auto|cgroup2|pgroup]\n"
	    "                   [--cgroup-root DIR] [--stop-grace MS]\n"
	    "                   [--close-on-exit] [--unkillable-limit MS] "
	    "[-v]\n"
	    "                   [--tls-cert FILE --tls-key FILE --tls-ca "
	    "FILE]\n"
	    "                   [--insecure] [--ipc-group GROUP] "
	    "[--default-user USER]\n"
	    "                   [--admin NAME]... [--max-sessions N] "
	    "[--max-workers N]\n"
	    "                   [--metrics-listen http://HOST:PORT] "
	    "[--check-config]\n"
	    "\n"
	    "Runs worker sessions of this node for hpcxl controllers.\n"
	    "  --listen URL      tls+tcp://HOST:PORT, ipc:///PATH or\n"
	    "                    tcp://HOST:PORT (loopback only)\n"
	    "                    (repeatable; port 0 binds a free port)\n"
	    "  --tls-cert FILE   the agent's certificate (PEM), tls+tcp://\n"
	    "  --tls-key FILE    its private key (PEM, unencrypted)\n"
	    "  --tls-ca FILE     CA whose certificate every client must show\n"
	    "  --insecure        allow plain tcp:// off loopback (warned)\n"
	    "  --ipc-group GROUP group of ipc:// socket files (mode 0660)\n"
	    "  --metrics-listen URL  Prometheus metrics at URL/metrics\n"
	    "                    (http://, loopback unless --insecure)\n"
	    "  --default-user USER  user of profiles that name none (a root\n"
	    "                    agent refuses such profiles without it)\n"
	    "  --admin NAME      an identity that may close, renew and see\n"
	    "                    every session and clear the unhealthy mark\n"
	    "                    (repeatable; others act on their own only)\n"
	    "  --max-sessions N  sessions one identity may hold (0: no "
	    "limit)\n"
	    "  --max-workers N   workers one identity may hold (0: no limit)\n"
	    "  --ready-file FILE written with the bound URLs once serving\n"
	    "  --state-dir DIR   sessions are stored here and re-adopted by\n"
	    "                    the next agent (default /var/lib/hpcxl)\n"
	    "  --profile SPEC    a worker profile (repeatable)\n"
	    "  --stop-grace MS   default SIGTERM grace of profiles\n"
	    "  --close-on-exit   SIGTERM closes every session before exiting\n"
	    "                    (default: running sessions are left "
	    "running)\n"
	    "  --unkillable-limit MS  processes surviving the kill this long\n"
	    "                    mark the node unhealthy (default 60000)\n"
	    "  --check-config    check the configuration (options, config\n"
	    "                    file, TLS files, listen URLs) and exit: 0\n"
	    "                    when it is good, 2 with the reason (what\n"
	    "                    systemctl reload runs before the reload)\n"
	    "  -v                more logging (repeatable)\n");
}

enum {
	OPT_CONFIG = 1,
	OPT_LISTEN,
	OPT_NODE,
	OPT_PROFILE,
	OPT_READY,
	OPT_STATE,
	OPT_BACKEND,
	OPT_CGROOT,
	OPT_GRACE,
	OPT_CLOSE_ON_EXIT,
	OPT_UNKILLABLE,
	OPT_VERSION,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_INSECURE,
	OPT_IPC_GROUP,
	OPT_DEFAULT_USER,
	OPT_ADMIN,
	OPT_MAX_SESSIONS,
	OPT_MAX_WORKERS,
	OPT_METRICS_LISTEN,
	OPT_CHECK_CONFIG,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "ready-file", required_argument, NULL, OPT_READY },
	{ "state-dir", required_argument, NULL, OPT_STATE },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "cgroup-root", required_argument, NULL, OPT_CGROOT },
	{ "stop-grace", required_argument, NULL, OPT_GRACE },
	{ "close-on-exit", no_argument, NULL, OPT_CLOSE_ON_EXIT },
	{ "unkillable-limit", required_argument, NULL, OPT_UNKILLABLE },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "ipc-group", required_argument, NULL, OPT_IPC_GROUP },
	{ "default-user", required_argument, NULL, OPT_DEFAULT_USER },
	{ "admin", required_argument, NULL, OPT_ADMIN },
	{ "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
	{ "max-workers", required_argument, NULL, OPT_MAX_WORKERS },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

/* --max-sessions, --max-workers: a count, 0 for no limit. */
static int
parse_limit_option(
    const char *name, const char *arg, int64_t *out, char *err, size_t errlen)
{
	if (util_parse_i64(arg, 0, INT32_MAX, out) == 0)
		return 0;
	snprintf(
	    err, errlen, "bad %s '%s' (a count, 0 = no limit)", name, arg);
	return HPCXL_ECONFIG;
}

/* Applies one command-line option; the config file was loaded before. */
static int
apply_option(
    struct agent *a, int opt, const char *arg, char *err, size_t errlen)
{
	int64_t v;

	switch (opt) {
	case OPT_CHECK_CONFIG:
		a->check_only = true;
		return 0;
	case OPT_LISTEN:
		/* Options win over the file: the first --listen replaces the
		 * file's listen list rather than adding to it, so an agent
		 * told where to listen listens nowhere else. */
		if (!a->listen_given) {
			for (size_t i = 0; i < a->cfg.nlisten; i++)
				free(a->cfg.listen[i]);
			a->cfg.nlisten = 0;
			a->listen_given = true;
		}
		return config_add_listen(&a->cfg, arg, err, errlen);
	case OPT_PROFILE:
		return config_add_profile_spec(&a->cfg, arg, err, errlen);
	case OPT_NODE:
		return config_set_str(&a->cfg.node, arg);
	case OPT_READY:
		a->ready_file = arg;
		return 0;
	case OPT_STATE:
		return config_set_str(&a->cfg.state_dir, arg);
	case OPT_BACKEND:
		if (strcmp(arg, "auto") && strcmp(arg, "cgroup2")
		    && strcmp(arg, "pgroup")) {
			snprintf(err, errlen, "unknown backend '%s'", arg);
			return HPCXL_ECONFIG;
		}
		return config_set_str(&a->cfg.backend, arg);
	case OPT_CGROOT:
		return config_set_str(&a->cfg.cgroup_root, arg);
	case OPT_GRACE:
		if (util_parse_i64(arg, 0, 86400000, &v) != 0) {
			snprintf(err, errlen, "bad --stop-grace '%s'", arg);
			return HPCXL_ECONFIG;
		}
		a->cfg.default_grace_ms = v;
		return 0;
	case OPT_CLOSE_ON_EXIT:
		a->cfg.close_on_exit = true;
		return 0;
	case OPT_UNKILLABLE:
		if (util_parse_i64(arg, 0, 86400000, &v) != 0) {
			snprintf(
			    err, errlen, "bad --unkillable-limit '%s'", arg);
			return HPCXL_ECONFIG;
		}
		a->cfg.unkillable_limit_ms = v;
		return 0;
	case OPT_TLS_CERT:
		return config_set_str(&a->cfg.tls_cert, arg);
	case OPT_TLS_KEY:
		return config_set_str(&a->cfg.tls_key, arg);
	case OPT_TLS_CA:
		return config_set_str(&a->cfg.tls_ca, arg);
	case OPT_INSECURE:
		a->cfg.allow_insecure = true;
		return 0;
	case OPT_IPC_GROUP:
		return config_set_str(&a->cfg.ipc_group, arg);
	case OPT_METRICS_LISTEN:
		return config_set_str(&a->cfg.metrics_listen, arg);
	case OPT_DEFAULT_USER:
		return config_set_str(&a->cfg.default_user, arg);
	case OPT_ADMIN:
		return config_add_admins(&a->cfg, arg, err, errlen);
	case OPT_MAX_SESSIONS:
		return parse_limit_option(
		    "--max-sessions", arg, &a->cfg.max_sessions, err, errlen);
	case OPT_MAX_WORKERS:
		return parse_limit_option(
		    "--max-workers", arg, &a->cfg.max_workers, err, errlen);
	case 'v':
		log_set_level(
		    log_level() < LOG_DEBUG ? log_level() + 1 : LOG_DEBUG);
		return 0;
	}
	return 0;
}

/* The FILE of "--config FILE" or "--config=FILE" at argv[i], else NULL. */
static const char *
config_arg(int argc, char **argv, int i)
{
	if (strcmp(argv[i], "--config") == 0)
		return i + 1 < argc ? argv[i + 1] : NULL;
	if (strncmp(argv[i], "--config=", 9) == 0)
		return argv[i] + 9;
	return NULL;
}

/* Returns -1 to continue, or an exit status. */
static int
parse_args(struct agent *a, int argc, char **argv)
{
	char err[1024] = "";
	int opt, i;

	/* The config file first, so command-line options override it. */
	for (i = 1; i < argc; i++) {
		const char *file = config_arg(argc, argv, i);

		if (file != NULL
		    && config_load_file(&a->cfg, file, err, sizeof(err)) != 0)
			goto bad;
	}
	while ((opt = getopt_long(argc, argv, "hv", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == OPT_VERSION) {
			printf("hpcxl-agent %s\n", HPCXL_VERSION);
			return 0;
		}
		if (opt == '?' || opt == ':') {
			usage(stderr);
			return 2;
		}
		if (apply_option(a, opt, optarg, err, sizeof(err)) != 0)
			goto bad;
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument '%s'",
		    argv[optind]);
		goto bad;
	}
	if (config_validate(&a->cfg, err, sizeof(err)) == 0
	    && config_settle_users(&a->cfg, geteuid() == 0, err, sizeof(err))
	        == 0)
		return -1;
bad:
	log_err("%s", err[0] != '\0' ? err : "invalid configuration");
	return 2;
}

/* Before any nng call, so nng's threads inherit the blocked mask. */
static int
signals_setup(struct agent *a)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return HPCXL_ESYSTEM;
	a->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return a->sig_fd < 0 ? HPCXL_ESYSTEM : 0;
}

static void
reap_children(struct agent *a)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		session_table_reaped(&a->sessions, pid, status);
	session_table_prune(&a->sessions);
}

static void
begin_shutdown(struct agent *a, int sig)
{
	a->stop_signals++;
	if (a->stop_signals == 1)
		sdnotify_stopping();
	if (a->stop_signals == 1 && a->cfg.close_on_exit) {
		log_notice(
		    "signal %d: closing every session, then exiting", sig);
		session_table_close_all(
		    &a->sessions, a->cfg.default_grace_ms + SHUTDOWN_SLACK_MS);
	} else if (a->stop_signals == 1) {
		/* A restart or upgrade of the agent must not end the users'
		 * work: the next agent re-adopts these from the state dir. */
		log_notice("signal %d: leaving running sessions to the next "
		           "agent; finishing closes under way, then exiting",
		    sig);
		session_table_release_running(&a->sessions);
	} else {
		log_notice("signal %d again: killing every session now", sig);
		session_table_kill_all(&a->sessions);
	}
}

static void
handle_signals(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue; /* reaped below, all at once */
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			begin_shutdown(a, (int)si.ssi_signo);
		else if (si.ssi_signo == SIGHUP)
			reload_profiles(
			    &a->cfg, a->argc, a->argv, geteuid() == 0);
		else
			log_info("signal %u ignored", si.ssi_signo);
	}
	reap_children(a);
}

static void
answer_ping(struct agent *a, struct server_req *req)
{
	struct proto_reply r = { .code = PROTO_CODE_OK, .msg = "pong" };

	r.version = HPCXL_VERSION;
	r.backend = (char *)proctrack_backend_name(&a->pt);
	r.unhealthy = (char *)session_table_unhealthy(&a->sessions);
	server_reply(a->srv, req, &r);
}

static void
dispatch(struct agent *a, struct server_req *req)
{
	switch (req->m.type) {
	case PROTO_OPEN:
		if (a->stop_signals > 0)
			server_reply_code(a->srv, req, PROTO_CODE_REFUSED,
			    "agent is shutting down");
		else
			session_open(&a->sessions, req);
		break;
	case PROTO_CLOSE:
		session_close(&a->sessions, req);
		break;
	case PROTO_STATUS:
		session_status(&a->sessions, req);
		break;
	case PROTO_PING:
		answer_ping(a, req);
		break;
	case PROTO_RENEW:
		session_renew(&a->sessions, req);
		break;
	case PROTO_CLEAR:
		session_clear_health(&a->sessions, req);
		break;
	case PROTO_REPLY: /* server_next() never returns one */
		server_req_free(req);
		break;
	}
}

static void
handle_requests(struct agent *a)
{
	struct server_req *req;
	int n = 0;

	/* Bounded, so a flood of requests cannot starve signals and the
	 * deadlines of closes in progress; poll() comes straight back. */
	while (n++ < REQUESTS_PER_PASS && server_next(a->srv, &req) == 0)
		dispatch(a, req);
}

static int
poll_timeout(const struct agent *a)
{
	int64_t next = session_table_next_wakeup(&a->sessions);
	int64_t wait;

	if (next < 0)
		return -1;
	wait = next - util_now_ms();
	return wait < 0 ? 0 : (int)(wait > 60000 ? 60000 : wait);
}

/* The loop's own descriptors at the head of a->fds: signals, requests,
 * metrics scrapes (-1, ignored by poll(), without --metrics-listen). */
#define FIXED_FDS 3

static void
serve_metrics(struct agent *a)
{
	struct metrics_gauges g = { .version = HPCXL_VERSION };

	g.backend = proctrack_backend_name(&a->pt);
	session_table_gauges(&a->sessions, &g);
	metrics_serve(a->metrics, &g);
}

/* Fills a->fds; returns how many are in use (FIXED_FDS + what sessions
 * need). */
static size_t
build_pollfds(struct agent *a)
{
	size_t need;

	for (;;) {
		need = FIXED_FDS
		    + session_table_pollfds(&a->sessions, a->fds + FIXED_FDS,
		        a->fds_cap - FIXED_FDS);
		if (need <= a->fds_cap)
			break;
		struct pollfd *bigger
		    = realloc(a->fds, need * 2 * sizeof(*a->fds));

		if (bigger == NULL) {
			/* What did not fit is still stepped on timers and
			 * signals: slower to notice, still correct. */
			need = a->fds_cap;
			break;
		}
		a->fds = bigger;
		a->fds_cap = need * 2;
	}
	a->fds[0] = (struct pollfd) { .fd = a->sig_fd, .events = POLLIN };
	a->fds[1]
	    = (struct pollfd) { .fd = server_fd(a->srv), .events = POLLIN };
	a->fds[2] = (struct pollfd) { .fd = metrics_fd(a->metrics),
		.events = POLLIN };
	return need;
}

static void
run_loop(struct agent *a)
{
	size_t n;

	while (a->stop_signals == 0 || !session_table_empty(&a->sessions)) {
		n = build_pollfds(a);
		if (poll(a->fds, n, poll_timeout(a)) < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (a->fds[0].revents != 0)
			handle_signals(a);
		if (a->fds[1].revents != 0)
			handle_requests(a);
		session_table_step(&a->sessions, util_now_ms());
		sdnotify_sessions(session_table_count(&a->sessions));
		if (a->fds[2].revents != 0)
			serve_metrics(a);
	}
}

/* A pidfd per worker and two fds per session: the soft limit of 1024 that
 * systemd gives would cap a node at about a thousand workers. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * What can refuse comes before anything is created: a second agent started
 * by mistake (its address in use, its state directory locked) must leave
 * the running agent's cgroup root, state and ready file alone. Listening
 * first means such an agent never creates even a state directory. Refusal
 * exits 2, as for a bad option: starting it again as it is cannot help.
 */
static int
agent_claim(struct agent *a)
{
	if (server_open(&a->cfg, &a->srv) != 0
	    || (a->cfg.metrics_listen != NULL
	        && metrics_open(a->cfg.metrics_listen, a->cfg.allow_insecure,
	               &a->metrics)
	            != 0)
	    || state_open(&a->state, a->cfg.state_dir) != 0)
		return HPCXL_ECONFIG;
	return 0;
}

/* The ready file comes last: whoever waits for it takes the agent as
 * serving (lock held, listening, earlier sessions re-adopted). Without it,
 * the re-adopted sessions are left running for the next agent. */
static int
agent_start(struct agent *a)
{
	int rv;

	raise_fd_limit();
	spawn_clone_seal_inherited_fds();
	if ((rv = signals_setup(a)) != 0 || (rv = agent_claim(a)) != 0)
		return rv;
	if ((rv = proctrack_init(
	         &a->pt, a->cfg.backend, a->cfg.cgroup_root, a->cfg.node))
	    != 0)
		return rv;
	a->fds_cap = 64;
	if ((a->fds = calloc(a->fds_cap, sizeof(*a->fds))) == NULL)
		return HPCXL_ENOMEM;
	if ((rv = session_table_init(
	         &a->sessions, &a->cfg, &a->pt, a->srv, &a->state))
	    != 0)
		return rv;
	if (a->ready_file != NULL
	    && (rv = server_write_ready(a->srv, a->ready_file)) != 0) {
		session_table_release_running(&a->sessions);
		return rv;
	}
	/* Where the ready file says so, systemd hears it too. */
	sdnotify_ready(session_table_count(&a->sessions));
	return 0;
}

/* Undoes only what this process did, in reverse: the lock is released
 * after the cgroup root is removed, so a next agent on this state directory
 * never sees its root vanish. */
static void
agent_stop(struct agent *a)
{
	session_table_fini(&a->sessions);
	proctrack_fini(&a->pt);
	state_close(&a->state);
	metrics_close(a->metrics);
	server_close(a->srv);
	if (a->sig_fd >= 0)
		close(a->sig_fd);
	free(a->fds);
	config_free(&a->cfg);
}

/* Who acts on whose sessions: said once at start, for the operator. */
static void
log_who_may_do_what(const struct config *c)
{
	char admins[1024] = "";
	size_t used = 0;

	for (size_t i = 0; i < c->nadmins && used < sizeof(admins); i++)
		used += (size_t)snprintf(admins + used, sizeof(admins) - used,
		    "%s%s", i > 0 ? ", " : "", c->admins[i]);
	log_info("admins: %s; per identity: max_sessions %lld, max_workers "
	         "%lld (0: no limit)",
	    c->nadmins > 0 ? admins
	                   : "none (callers act on their own "
	                     "sessions only; nobody may clear the "
	                     "unhealthy mark)",
	    (long long)c->max_sessions, (long long)c->max_workers);
}

/*
 * --check-config, once the options and the file have been read and
 * checked: what start would also refuse before it listens (listen URLs,
 * TLS files, ipc_group), without listening, locking or creating anything.
 * 0 or 2.
 */
static int
check_config(const struct config *c)
{
	struct listen_setup *ls;

	if (listen_setup_new(c, &ls) != 0)
		return 2;
	listen_setup_free(ls);
	log_notice("configuration OK: %zu profile(s), %zu listen URL(s)",
	    c->nprofiles, c->nlisten);
	return 0;
}

int
main(int argc, char **argv)
{
	struct agent a = { .sig_fd = -1, .state = { .lock_fd = -1 } };
	int rv;

	a.argc = argc;
	a.argv = argv;
	log_init("hpcxl-agent", LOG_INFO);
	if (config_init(&a.cfg) != 0)
		return 1;
	if ((rv = parse_args(&a, argc, argv)) >= 0 || a.check_only) {
		if (rv < 0)
			rv = check_config(&a.cfg);
		config_free(&a.cfg);
		return rv;
	}
	rv = agent_start(&a);
	if (rv == 0) {
		log_info("node %s ready (%s backend, %zu profile(s))",
		    a.cfg.node, proctrack_backend_name(&a.pt),
		    a.cfg.nprofiles);
		log_who_may_do_what(&a.cfg);
		run_loop(&a);
		log_info("exiting");
	}
	agent_stop(&a);
	return rv == 0 ? 0 : (rv == HPCXL_ECONFIG ? 2 : 1);
}
