/*
 * The controller's side of the codec: the body of a reply message, decoded
 * as controller/survey.c does it, with the controller's limit
 * (PROTO_MAX_REPLY). A reply is then deep-copied with proto_reply_copy():
 * the copy must equal the original and still be whole once the original
 * is freed (ASan reports any pointer the two share).
 */
#include "fuzz.h"

/* Copies m's reply, frees m, then checks and frees the copy. */
static void
copy_and_free(struct proto_msg *m)
{
	struct proto_msg copy = { .type = PROTO_REPLY };

	fuzz_require(proto_reply_copy(&m->u.reply, &copy.u.reply) == 0,
	    "proto_reply_copy failed");
	fuzz_require(fuzz_reply_equal(&m->u.reply, &copy.u.reply),
	    "proto_reply_copy made a different reply");
	fuzz_msg_free(m);
	/* Reads all of the copy: ASan sees anything it shares with m. */
	fuzz_require_encodes(&copy);
	fuzz_msg_free(&copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m;

	if (fuzz_decode(data, size, PROTO_MAX_REPLY, &m) != 0)
		return 0;
	/* The controller ignores any other type (survey_reply_ours()). */
	if (m.type == PROTO_REPLY)
		copy_and_free(&m);
	else
		fuzz_msg_free(&m);
	return 0;
}
