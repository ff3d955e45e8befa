#!/usr/bin/env bash
# drain-node.sh [--timeout MS] NODE: closes every session of one node, for
# maintenance: reads the node's sessions (hpcxl status), closes each of them
# on that node only, all at once, each within MS (default 120000), prints a
# line per session and checks with a last status that none is left.
#
#   deploy/scripts/drain-node.sh tls+tcp://n017:7420
#   deploy/scripts/drain-node.sh --timeout 30000 n017     # via the URL template
#
# NODE is what `hpcxl --nodes` takes for one node: a URL, or a host name
# through the URL template. The client's settings (TLS files, template) are
# hpcxl's usual ones: options are not passed, so use $HPCXL_TLS_* or
# $HPCXL_CLIENT_CONFIG. $HPCXL_CLI names the hpcxl program (default: hpcxl
# on PATH). Needs jq.
#
# Other nodes of those sessions are not touched: a session that also runs
# elsewhere keeps running there (close it with hpcxl close-session). The
# node still accepts new sessions meanwhile: drain it in the scheduler
# first (scontrol update nodename=n017 state=drain reason=...), or a
# session opened during the drain is reported as left.
#
# Exit status: 0 the node has no session left; 1 some session is left, a
# close failed, or the node did not answer; 2 usage.
set -euo pipefail

usage() {
	echo "usage: drain-node.sh [--timeout MS] NODE" >&2
	exit 2
}

timeout=120000
while [ $# -gt 0 ]; do
	case $1 in
	--timeout)
		[ $# -ge 2 ] || usage
		timeout=$2
		shift 2
		;;
	-h | --help) usage ;;
	--) shift && break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
node=$1
[[ $timeout =~ ^[1-9][0-9]{0,9}$ ]] || usage
hpcxl=${HPCXL_CLI:-hpcxl}
command -v jq >/dev/null || {
	echo "drain-node: jq is not installed (apt install jq)" >&2
	exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/drain-node.XXXXXX")
trap 'rm -rf "$work"' EXIT

# answered FILE: the status report in FILE has exactly one node, and that
# node answered. (Not jq -e: jq 1.6 exits 0 on an empty input.)
answered() {
	[ "$(jq -r '(.nodes | length) == 1 and .nodes[0].state == "ok"' \
		"$1" 2>/dev/null)" = true ]
}

# sessions_of FILE: the session ids in an answered status report, one a line.
sessions_of() {
	jq -r '.nodes[0].sessions[]?.session' "$1"
}

# status OUT: a status of the node into OUT; 1 when it did not answer.
status() {
	local rc=0
	"$hpcxl" --nodes "$node" --json status --timeout 10000 >"$1" || rc=$?
	case $rc in
	2) exit 2 ;; # hpcxl said why (roster, TLS files) on stderr
	126 | 127)
		echo "drain-node: cannot run hpcxl ('$hpcxl'): set HPCXL_CLI" >&2
		exit 2
		;;
	esac
	if ! answered "$1"; then
		echo "drain-node: $node did not answer: $(jq -r '.nodes[0].msg // "no report"' "$1" 2>/dev/null)" >&2
		return 1
	fi
}

status "$work/before.json" || exit 1
mapfile -t sessions < <(sessions_of "$work/before.json")
if [ "${#sessions[@]}" -eq 0 ]; then
	echo "$node: no sessions"
	exit 0
fi
echo "$node: closing ${#sessions[@]} session(s) within $timeout ms: ${sessions[*]}"

# All at once: each close waits out its profile's grace, so one after the
# other would take up to sessions x grace. Reports go to files by index
# (ids may hold dots, never slashes; the index is simpler still).
pids=()
for i in "${!sessions[@]}"; do
	"$hpcxl" --nodes "$node" --json close-session "${sessions[$i]}" \
		--timeout "$timeout" >"$work/close-$i.json" 2>"$work/close-$i.err" &
	pids+=($!)
done
failed=0
printf '%-32s %-15s %7s %7s %7s %9s  %s\n' SESSION RESULT WORKERS EXITED \
	KILLED REMAINING MESSAGE
for i in "${!sessions[@]}"; do
	wait "${pids[$i]}" || true
	row=$(jq -r '.nodes[0] | [.state, .workers, .exited, .killed,
		.remaining, .msg] | @tsv' "$work/close-$i.json" 2>/dev/null ||
		printf 'error\t-\t-\t-\t-\t%s' "$(tr '\n' ' ' <"$work/close-$i.err")")
	IFS=$'\t' read -r state workers exited killed remaining msg <<<"$row"
	printf '%-32s %-15s %7s %7s %7s %9s  %s\n' "${sessions[$i]}" "$state" \
		"$workers" "$exited" "$killed" "$remaining" "$msg"
	case $state in
	closed | already_closed) ;;
	*) failed=$((failed + 1)) ;;
	esac
done

# What is left, whatever the closes said: a session opened meanwhile, or
# one a close reported closed and that is back, would be missed otherwise.
status "$work/after.json" || exit 1
mapfile -t left < <(sessions_of "$work/after.json")
if [ "${#left[@]}" -gt 0 ]; then
	echo "$node: ${#left[@]} session(s) left: ${left[*]}" >&2
	exit 1
fi
if [ "$failed" -gt 0 ]; then
	echo "$node: no session left, but $failed close(s) did not succeed" >&2
	exit 1
fi
echo "$node: drained, no session left"
