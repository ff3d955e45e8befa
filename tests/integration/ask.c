#include "ask.h"

#include "harness.h"
#include "hpcxl/common/util.h"

#include <criterion/criterion.h>

struct proto_reply
ask(const char *url, struct proto_msg *req, struct proto_msg *holder)
{
	if (req->op == 0)
		req->op = util_random_u64();
	cr_assert_eq(harness_request(url, req, ASK_TIMEOUT_MS, holder), 0,
	    "no reply to %s from %s", proto_type_name(req->type), url);
	cr_assert_eq(holder->type, PROTO_REPLY);
	cr_assert_eq(holder->op, req->op, "reply carries another op");
	return holder->u.reply;
}

struct proto_reply
ask_open(const char *url, const char *session, const char *profile, uint32_t n,
    uint64_t lease_ms, struct proto_msg *holder)
{
	struct proto_msg req = { .type = PROTO_OPEN };

	req.u.open.session = (char *)session;
	req.u.open.profile = (char *)profile;
	req.u.open.workers = n;
	req.u.open.workbook = "/data/book.xlsx";
	req.u.open.lease_ms = lease_ms;
	return ask(url, &req, holder);
}

struct proto_reply
ask_close(const char *url, const char *session, uint64_t op,
    uint64_t deadline_ms, struct proto_msg *holder)
{
	struct proto_msg req = { .type = PROTO_CLOSE, .op = op };

	req.u.close.session = (char *)session;
	req.u.close.deadline_ms = deadline_ms;
	return ask(url, &req, holder);
}

struct proto_reply
ask_status(const char *url, const char *session, struct proto_msg *holder)
{
	struct proto_msg req = { .type = PROTO_STATUS };

	req.u.status.session = (char *)session;
	return ask(url, &req, holder);
}

struct proto_reply
ask_renew(const char *url, const char *session, uint64_t lease_ms,
    struct proto_msg *holder)
{
	struct proto_msg req = { .type = PROTO_RENEW };

	req.u.renew.session = (char *)session;
	req.u.renew.lease_ms = lease_ms;
	return ask(url, &req, holder);
}

struct proto_reply
ask_type(const char *url, enum proto_type type, struct proto_msg *holder)
{
	struct proto_msg req = { .type = type };

	return ask(url, &req, holder);
}
