#!/usr/bin/env bash
# deploy/scripts/drain-node.sh against real agents: every session of the
# node is closed (one that ignores SIGTERM too, killed at the end of its
# grace), no process of them is left, the other node's session is not
# touched; a node without sessions; a node that does not answer; a session
# that stays (an hpcxl whose close of it does nothing) makes it fail and
# is named.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

drain=$ops_src/deploy/scripts/drain-node.sh
hpcxl=$HPCXL_BIN_DIR/hpcxl
export HPCXL_CLI=$hpcxl
ops_agent_start a tcp://127.0.0.1:0 || exit 1
url_a=$ops_url
ops_agent_start b tcp://127.0.0.1:0 || exit 1
url_b=$ops_url

s1=drain-$$-1 s2=drain-$$-2 s3=drain-$$-3 other=drain-$$-other
for s in "$s1" "$s2" "$s3" "$other"; do ops_track "$s"; done
open() { # open URL SESSION PROFILE WORKERS
	"$hpcxl" --nodes "$1" open-session --session "$2" --profile "$3" \
		--workers "$4" --timeout 10000 >/dev/null
}
ops_check "open $s1 on a" open "$url_a" "$s1" xl 2
ops_check "open $s2 on a" open "$url_a" "$s2" xl-children 1
ops_check "open $s3 on a" open "$url_a" "$s3" xl-ignore 1
# s1 also runs on b: draining a must leave b's part alone.
ops_check "open $other on b" open "$url_b" "$other" xl 1
ops_check "open $s1 on b too" open "$url_b" "$s1" xl 1

ops_expect_rc 0 "drain-node.sh closes every session of a" \
	"$drain" --timeout 10000 "$url_a"
ops_grep "it names them" "closing 3 session\\(s\\)" "$ops_tmp/out"
for s in "$s1" "$s2" "$s3"; do
	ops_grep "$s: closed" "^$s +closed " "$ops_tmp/out"
done
ops_grep "the one ignoring SIGTERM was killed" "^$s3 +closed +1 +0 +1 " \
	"$ops_tmp/out"
ops_grep "the last line says so" "drained, no session left" "$ops_tmp/out"
ops_check "no process of $s2 (xl-children) left" \
	ops_wait_until 5000 ops_procs_are "$s2" 0
ops_check "no process of $s3 left" ops_procs_are "$s3" 0
ops_check "b still runs $s1" [ "$(ops_workers_of "$url_b" "$s1")" -eq 1 ]
ops_check "b still runs $other" [ "$(ops_workers_of "$url_b" "$other")" -eq 1 ]

ops_expect_rc 0 "a node without sessions" "$drain" "$url_a"
ops_grep "... says so" "no sessions" "$ops_tmp/out"

ops_expect_rc 1 "a node that does not answer" "$drain" tcp://127.0.0.1:1
ops_grep "... says so" "did not answer" "$ops_tmp/err"

ops_expect_rc 2 "usage: no node" "$drain"
ops_expect_rc 2 "usage: a bad timeout" "$drain" --timeout soon "$url_b"
HPCXL_CLI=$ops_tmp/none ops_expect_rc 2 "no hpcxl to run" "$drain" "$url_b"
ops_grep "... says so" "cannot run hpcxl" "$ops_tmp/err"

# An hpcxl whose close of one session does nothing (as an agent that cannot
# end it would look from here): that session is left, and said to be.
cat >"$ops_tmp/stubborn-hpcxl" <<EOF
#!/bin/sh
case " \$* " in
*" close-session $other "*)
	echo '{"ok": false, "nodes": [{"name": "x", "state": "partial",
	 "workers": 1, "exited": 0, "killed": 0, "remaining": 1,
	 "msg": "1 process left"}]}'
	exit 1 ;;
esac
exec "$hpcxl" "\$@"
EOF
chmod +x "$ops_tmp/stubborn-hpcxl"
HPCXL_CLI=$ops_tmp/stubborn-hpcxl ops_expect_rc 1 \
	"a session that stays makes drain-node.sh fail" "$drain" --timeout 5000 "$url_b"
ops_grep "... its row says partial" "^$other +partial " "$ops_tmp/out"
ops_grep "... and it is named as left" "1 session\\(s\\) left: $other" "$ops_tmp/err"
ops_check "... the other session of b was closed" \
	ops_wait_until 5000 ops_procs_are "$s1" 0

ops_done
