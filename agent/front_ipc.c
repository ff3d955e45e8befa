/* The front's ipc connections (front.h, front_impl.h): a Unix socket file
 * of mode 0660, the caller's identity from the peer's uid (SO_PEERCRED). */
#include "caller.h"
#include "front_impl.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Who may connect: the socket's owner (the agent) and its group. */
#define IPC_MODE 0660
#define IPC_PREFIX "ipc://"
/* Most getpwuid_r() buffer tried for one account (LDAP entries can be big). */
#define PASSWD_BUF_MAX (1024 * 1024)

/* ---- identities -------------------------------------------------------- */

/* The account name of uid into out, when it has one that is an identity
 * (an NSS lookup: may wait on a directory service). */
static bool
account_name(uid_t uid, char *out)
{
	struct passwd pw, *found = NULL;
	size_t len = 1024;
	char *buf = NULL;
	bool named;
	int rv;

	do {
		char *bigger = realloc(buf, len *= 2);

		if (bigger == NULL)
			break;
		buf = bigger;
		rv = getpwuid_r(uid, &pw, buf, len, &found);
	} while (found == NULL && rv == ERANGE && len < PASSWD_BUF_MAX);
	named = found != NULL && util_valid_identity(pw.pw_name)
	    && !caller_identity_reserved(pw.pw_name);
	if (named)
		snprintf(out, HPCXL_IDENTITY_MAX + 1, "%s", pw.pw_name);
	free(buf);
	return named;
}

static bool
peer_cred(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

/* ---- the operations ---------------------------------------------------- */

static int
ipc_init(struct front *f, struct relay *r)
{
	struct ucred cred;

	(void)f;
	spframe_init(&r->up_frame, false);
	spframe_init(&r->down_frame, true);
	if (!peer_cred(r->outer, &cred))
		snprintf(
		    r->peer, sizeof(r->peer), "ipc peer (no credentials)");
	else
		snprintf(r->peer, sizeof(r->peer), "ipc peer uid %u pid %d",
		    (unsigned)cred.uid, (int)cred.pid);
	return 0;
}

/* The peer's account, else "uid:N" (caller.h). */
static int
ipc_start(struct relay *r, char *why, size_t whylen)
{
	struct ucred cred;

	if (!peer_cred(r->outer, &cred)) {
		snprintf(why, whylen, "cannot read the peer's uid: %s",
		    strerror(errno));
		return FRONT_BROKEN;
	}
	if (!account_name(cred.uid, r->identity))
		snprintf(r->identity, sizeof(r->identity),
		    CALLER_UID_PREFIX "%u", (unsigned)cred.uid);
	return 0;
}

static int
ipc_result(ssize_t n, int would_block)
{
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return would_block;
	return FRONT_BROKEN;
}

static int
ipc_read(struct relay *r, unsigned char *buf, size_t len)
{
	return ipc_result(recv(r->outer, buf, len, 0), FRONT_WAIT_IN);
}

static int
ipc_write(struct relay *r, const unsigned char *buf, size_t len)
{
	int n = ipc_result(
	    send(r->outer, buf, len, MSG_NOSIGNAL), FRONT_WAIT_OUT);

	return n == 0 ? FRONT_BROKEN : n;
}

static void
ipc_nothing(struct relay *r)
{
	(void)r;
}

const struct front_ops front_ipc_ops = {
	.name = "ipc",
	.ipc_framing = true,
	.init = ipc_init,
	.start = ipc_start,
	.read = ipc_read,
	.write = ipc_write,
	.finish = ipc_nothing,
	.fini = ipc_nothing,
};

/* ---- listening --------------------------------------------------------- */

/* A socket file left by an agent that died is replaced; one a live program
 * answers on is not. 0, or an errno. */
static int
ipc_clear_stale(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rv = 0;

	if (fd < 0)
		return errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		rv = EADDRINUSE;
	else if (errno == ECONNREFUSED)
		rv = unlink(sa->sun_path) == 0 ? 0 : errno;
	else if (errno != ENOENT)
		rv = errno;
	close(fd);
	return rv;
}

/* Mode and group are set before listen(): no one can connect sooner. */
static int
ipc_bind(const struct sockaddr_un *sa, bool chown_gid, gid_t gid, int *out)
{
	int fd
	    = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return errno;
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		err = errno;
		close(fd);
		return err;
	}
	if (chmod(sa->sun_path, IPC_MODE) != 0
	    || (chown_gid && chown(sa->sun_path, (uid_t)-1, gid) != 0)
	    || listen(fd, SOMAXCONN) != 0) {
		err = errno;
		close(fd);
		unlink(sa->sun_path);
		return err;
	}
	*out = fd;
	return 0;
}

int
front_ipc_listen(struct front *f, const char *url, bool chown_gid, gid_t gid,
    char *bound, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = url + strlen(IPC_PREFIX);
	int fd = -1, rv;

	if (strncmp(url, IPC_PREFIX, strlen(IPC_PREFIX)) != 0 || path[0] != '/'
	    || strlen(path) >= sizeof(sa.sun_path)) {
		log_err("cannot listen on %s: not ipc:///PATH (at most %zu "
		        "bytes)",
		    url, sizeof(sa.sun_path) - 1);
		return HPCXL_ECONFIG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((rv = ipc_clear_stale(&sa)) != 0
	    || (rv = ipc_bind(&sa, chown_gid, gid, &fd)) != 0) {
		log_err("cannot listen on %s: %s%s", url, strerror(rv),
		    rv == EPERM && chown_gid ? " (ipc_group)" : "");
		return HPCXL_ETRANSPORT;
	}
	if ((rv = front_add_listener(f, fd, &front_ipc_ops, path)) != 0) {
		close(fd);
		unlink(path);
		log_err("cannot listen on %s: %s", url, hpcxl_strerror(rv));
		return rv;
	}
	snprintf(bound, len, "%s", url);
	return 0;
}
