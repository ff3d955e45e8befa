#!/usr/bin/env bash
# LibreOffice Calc workers (deploy/profiles/) on two real agents: the
# profile snippet loaded by the agents, a session of 2 workers per agent
# opened with --workbook, four soffice.bin waited for (one per worker: each
# has a profile of its own, else LibreOffice hands every start to the
# first instance and exits), each the child of its worker (the wrapper
# exec'd soffice, which exec'd oosplash), in the session's cgroup, with the
# workbook; then the close, and no process of the session left.
#
# soffice: $HPCXL_TEST_SOFFICE, else soffice on PATH; neither: skipped
# (exit 77) with the reason. CTest runs it twice: ops_lo_calc with the real
# one when installed, and ops_lo_calc_fake on a stand-in for its process
# tree (fake-soffice/), so that this script runs everywhere.
set -euo pipefail

soffice=${HPCXL_TEST_SOFFICE:-$(command -v soffice || true)}
if [ -z "$soffice" ]; then
	echo "SKIP: soffice not found: LibreOffice is not installed here" \
		"(apt install libreoffice-calc-nogui), or set HPCXL_TEST_SOFFICE=PATH"
	exit 77
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "soffice: $soffice"

# The snippet as shipped, but for the wrapper's path and options and the
# user (the tests' own: a root agent runs workers as root only when told).
lo=$ops_tmp/lo
sed -e "s|^command = .*|command = $ops_src/deploy/profiles/soffice-worker.sh --soffice $soffice --profile-dir $lo|" \
	-e "s|^user = .*|user = $(id -un)|" \
	"$ops_src/deploy/profiles/libreoffice.ini" >"$ops_tmp/agent.ini"

# A workbook Calc opens without an import dialog: flat ODF (one XML file).
book=$ops_tmp/book.fods
cat >"$book" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:body><office:spreadsheet><table:table table:name="Sheet1">
  <table:table-row><table:table-cell office:value-type="float" office:value="42">
   <text:p>42</text:p></table:table-cell></table:table-row>
 </table:table></office:spreadsheet></office:body>
</office:document>
EOF

ops_agent_start a tcp://127.0.0.1:0 --config "$ops_tmp/agent.ini" || exit 1
url_a=$ops_url node_a=$ops_node
ops_agent_start b tcp://127.0.0.1:0 --config "$ops_tmp/agent.ini" || exit 1
url_b=$ops_url node_b=$ops_node
backend=$("$HPCXL_BIN_DIR/hpcxl" --nodes "$url_a" --json ping |
	jq -r '.nodes[0].backend')
s=lo-$$
ops_track "$s"

# bins SESSION: pids of the soffice.bin processes of SESSION.
bins() {
	local pid
	for pid in $(ops_session_pids "$1"); do
		[ "$(comm_of "$pid")" = soffice.bin ] && echo "$pid"
	done
	return 0
}
bins_are() { [ "$(bins "$1" | wc -l)" -eq "$2" ]; }
# arg_of PID PREFIX: the argument of PID that starts with PREFIX. These
# read /proc of a process that may be gone (a soffice.bin that oosplash
# restarts): empty then, and the checks using them fail, rather than the
# script ending on set -e.
arg_of() {
	{ tr '\0' '\n' <"/proc/$1/cmdline" | grep -m1 -F -- "$2"; } 2>/dev/null ||
		true
}
env_of() {
	{ tr '\0' '\n' <"/proc/$1/environ" | sed -n "s/^$2=//p"; } 2>/dev/null ||
		true
}
ppid_of() {
	awk '{print $4}' "/proc/$1/stat" 2>/dev/null || true
}
comm_of() {
	cat "/proc/$1/comm" 2>/dev/null || true
}
worker_logs() {
	local f
	for f in "$ops_tmp"/agent-*/state/logs/"$s"/worker-*.log; do
		[ -e "$f" ] || continue
		echo "--- $f" >&2
		tail -n 20 "$f" >&2
	done
}

ops_expect_rc 0 "open $s: 2 workers on each of 2 agents, with --workbook" \
	"$HPCXL_BIN_DIR/hpcxl" --nodes "$url_a,$url_b" --json open-session \
	--profile calc --workers 2 --workbook "$book" --session "$s" \
	--timeout 60000
# A first start of LibreOffice on a new profile takes seconds (more on a
# loaded machine); it may also restart soffice.bin once (exit 81).
if ops_wait_until 180000 bins_are "$s" 4; then
	ops_pass "four soffice.bin run"
else
	ops_fail "four soffice.bin run: $(bins "$s" | wc -l) after 180 s"
	worker_logs
fi

declare -A profiles=()
for pid in $(bins "$s"); do
	node=$(env_of "$pid" HPCXL_NODE)
	worker=$(env_of "$pid" HPCXL_WORKER)
	parent=$(ppid_of "$pid")
	inst=$(arg_of "$pid" -env:UserInstallation=)
	want=-env:UserInstallation=file://$lo/$node/lo-profile-$s-$worker
	ops_check "soffice.bin $pid ($node worker $worker): its own profile" \
		[ "$inst" = "$want" ]
	profiles[$inst]=1
	ops_check "soffice.bin $pid: child of oosplash, the worker itself" \
		[ "$(comm_of "$parent")" = oosplash ]
	ops_check "soffice.bin $pid: the workbook is among its arguments" \
		grep -qFx -z -- "$book" "/proc/$pid/cmdline"
	ops_check "soffice.bin $pid: UNO pipe hpcxl-$s-$node-$worker" \
		[ "$(arg_of "$pid" --accept=)" = "--accept=pipe,name=hpcxl-$s-$node-$worker;urp;StarOffice.ComponentContext" ]
	if [ "$backend" = cgroup2 ]; then
		cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null || true)
		ops_check "soffice.bin $pid: in the session's cgroup ($cg)" \
			[ "${cg%/"$node"/"$s"}" != "$cg" ]
	fi
done
ops_check "four profiles, one per worker" [ "${#profiles[@]}" -eq 4 ]
# The worker processes the agent reports are oosplash (the wrapper exec'd
# soffice, which exec'd oosplash): what a close signals is LibreOffice.
for url in "$url_a" "$url_b"; do
	for pid in $(ops_status "$url" "$s" | jq -r '.nodes[0].sessions[0].workers[].pid'); do
		ops_check "worker $pid is oosplash" \
			[ "$(comm_of "$pid")" = oosplash ]
	done
done
ops_check "the profiles were seeded with lock files off" \
	grep -q '"UseDocumentOOoLockFile" oor:op="fuse"><value>false' \
	"$lo/$node_a/lo-profile-$s-0/user/registrymodifications.xcu"
ops_check "no lock file beside the workbook" \
	[ ! -e "$ops_tmp/.~lock.book.fods#" ]

ops_expect_rc 0 "close $s" "$HPCXL_BIN_DIR/hpcxl" --nodes "$url_a,$url_b" \
	--json close-session "$s" --timeout 30000
ops_check "both nodes report closed" [ "$(jq -r '[.nodes[].state] | unique | join(",")' "$ops_tmp/out")" = closed ]
ops_check "no soffice.bin of $s left" bins_are "$s" 0
ops_check "no process of $s left" ops_wait_until 5000 ops_procs_are "$s" 0
# And none that lost the session's environment: by its profile's path. (The
# glob is expanded before grep starts: its own command line is not read.)
no_profile_in_use() { ! grep -qsF -z -- "$lo/" /proc/[0-9]*/cmdline; }
ops_check "no process runs with one of its profiles" no_profile_in_use
ops_check "$node_b forgot $s" [ "$(ops_workers_of "$url_b" "$s")" -eq 0 ]

ops_done
