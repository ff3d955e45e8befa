# shellcheck shell=bash
# Helpers of the ops tests (tests/ops/test_*.sh): real hpcxl-agent
# processes on loopback addresses, started as tests/integration/harness.c
# starts them (a private directory, --ready-file, --close-on-exit,
# --default-user the user running the tests), waits on conditions with
# deadlines, and a clean-up at exit, pass or fail: agents stopped, session
# processes killed, the agents' cgroups and the temp directory removed.
# Sourced by the tests; HPCXL_BIN_DIR (set by CTest) is where the built
# programs are.
set -euo pipefail

: "${HPCXL_BIN_DIR:?HPCXL_BIN_DIR must name the bin directory of the build}"
# shellcheck disable=SC2034 # for the tests: the source tree
ops_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ops_tmp=$(mktemp -d /tmp/hpcxl-ops-test.XXXXXX)
chmod 0755 "$ops_tmp" # workers may run as another user
ops_failures=0
ops_checks=0
declare -a ops_agent_pids=() ops_agent_nodes=() ops_sessions=()
declare -A ops_agent_argv=() ops_pid=()

# ---- checks ---------------------------------------------------------------

ops_pass() {
	ops_checks=$((ops_checks + 1))
	echo "ok: $*"
}

ops_fail() {
	ops_checks=$((ops_checks + 1))
	ops_failures=$((ops_failures + 1))
	echo "FAIL: $*" >&2
}

# ops_check TEXT CMD...: runs CMD; passes when it succeeds.
ops_check() {
	local what=$1
	shift
	if "$@"; then ops_pass "$what"; else ops_fail "$what"; fi
}

# ops_expect_rc RC TEXT CMD...: runs CMD (its output to $ops_tmp/out and
# err); passes when it exits RC.
ops_expect_rc() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$ops_tmp/out" 2>"$ops_tmp/err" || rc=$?
	if [ "$rc" -eq "$want" ]; then
		ops_pass "$what (exit $rc)"
	else
		ops_fail "$what: exit $rc, expected $want"
		sed 's/^/    stdout: /' "$ops_tmp/out" >&2
		sed 's/^/    stderr: /' "$ops_tmp/err" >&2
	fi
}

# ops_grep TEXT PATTERN FILE: passes when FILE has a line matching PATTERN.
ops_grep() {
	if grep -qE -- "$2" "$3"; then
		ops_pass "$1"
	else
		ops_fail "$1: no /$2/ in $3:"
		sed 's/^/    /' "$3" >&2
	fi
}

# ops_wait_until MS CMD...: polls CMD until it succeeds or MS passed.
# (Polling a condition with a deadline, as the C harness does: never a
# fixed sleep standing in for an event.)
ops_wait_until() {
	local ms=$1 start
	shift
	start=$(date +%s%3N)
	until "$@"; do
		if [ $(($(date +%s%3N) - start)) -ge "$ms" ]; then
			return 1
		fi
		sleep 0.02
	done
}

# ops_done: the test's last line; exit status 0 only if every check passed.
ops_done() {
	echo "$((ops_checks - ops_failures)) passed, $ops_failures failed"
	[ "$ops_failures" -eq 0 ]
}

# ---- agents ---------------------------------------------------------------

# ops_agent_start NAME URL [ARGS...]: starts an agent named NAME (made
# unique: ops-PID-NAME) listening on URL, with the xlsim profiles of the
# C harness (xl, xl-ignore, xl-children) and ARGS; waits up to 20 s for its
# ready file. Sets ops_url (the bound URL) and ops_node. Returns 1 (its log
# on stderr) when it did not start.
ops_agent_start() {
	local name=$1 listen=$2 node dir xl=$HPCXL_BIN_DIR/xlsim
	shift 2
	node=ops-$$-$name
	dir=$ops_tmp/agent-$name
	mkdir -p "$dir"
	ops_agent_argv[$name]=$(printf '%q ' "$HPCXL_BIN_DIR/hpcxl-agent" \
		--node "$node" --listen "$listen" --ready-file "$dir/ready" \
		--state-dir "$dir/state" --stop-grace 1000 --close-on-exit \
		--default-user "$(id -un)" \
		--profile "xl=$xl" --profile "xl-ignore=$xl --on-term ignore" \
		--profile "xl-children=$xl --children 2" "$@")
	ops_agent_spawn "$name"
}

# ops_agent_spawn NAME: (re)starts agent NAME with its saved arguments.
ops_agent_spawn() {
	local name=$1 dir=$ops_tmp/agent-$1 pid
	local -a argv
	eval "argv=(${ops_agent_argv[$name]})"
	rm -f "$dir/ready"
	"${argv[@]}" 2>>"$dir/agent.log" &
	pid=$!
	ops_agent_pids+=("$pid")
	ops_agent_nodes+=("ops-$$-$name")
	ops_pid[$name]=$pid
	ops_wait_until 20000 ops_agent_ready "$dir" "$pid" || true
	if [ ! -s "$dir/ready" ]; then
		echo "agent $name did not start:" >&2
		sed 's/^/    /' "$dir/agent.log" >&2
		return 1
	fi
	ops_url=$(head -n1 "$dir/ready")
	# shellcheck disable=SC2034 # for the tests
	ops_node=ops-$$-$name
}

# Ready file written, or the agent gone (then stop waiting).
ops_agent_ready() {
	[ -s "$1/ready" ] && return 0
	if ! kill -0 "$2" 2>/dev/null; then
		return 0
	fi
	return 1
}

# ops_agent_stop NAME: SIGTERM, and waits for it (10 s, then SIGKILL).
ops_agent_stop() {
	local pid=${ops_pid[$1]:-}
	[ -n "$pid" ] || return 0
	ops_stop_pid "$pid"
	ops_pid[$1]=
}

ops_stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! ops_wait_until 10000 ops_gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# A child that exited is a zombie until waited for: gone means no longer
# running.
ops_gone() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$state" = Z ] || [ "$state" = X ]
}

# ---- sessions -------------------------------------------------------------

# ops_session_pids SESSION: the live processes with HPCXL_SESSION=SESSION in
# their environment (the agent sets it in every worker; children inherit
# it). One grep for all of /proc; a zombie's environ reads empty, so the
# dead do not count.
ops_session_pids() {
	local f
	while IFS= read -r f; do
		f=${f#/proc/}
		echo "${f%/environ}"
	done < <(grep -lsFx -z "HPCXL_SESSION=$1" /proc/[0-9]*/environ)
}

ops_session_count() {
	ops_session_pids "$1" | wc -l
}

# ops_procs_are SESSION N: exactly N live processes of SESSION.
ops_procs_are() {
	[ "$(ops_session_count "$1")" -eq "$2" ]
}

# ops_track SESSION: kill what is left of SESSION at exit (a failed test).
ops_track() {
	ops_sessions+=("$1")
}

# ops_status URL [SESSION]: `hpcxl status` of one node as JSON on stdout.
ops_status() {
	"$HPCXL_BIN_DIR/hpcxl" --nodes "$1" --json status ${2:+"$2"} \
		--timeout 10000 || true
}

# ops_workers_of URL SESSION: the number of workers the node reports for
# SESSION (0 when it has no such session).
ops_workers_of() {
	ops_status "$1" "$2" | jq -r --arg s "$2" \
		'[.nodes[0].sessions[]? | select(.session == $s) | .workers[]] | length'
}

# ---- clean-up -------------------------------------------------------------

# rmdir of a cgroup fails (EBUSY) while its last processes still exit.
ops_rmdir_cgroups() {
	local dir
	for hub in /sys/fs/cgroup/hpcxl /sys/fs/cgroup/unified/hpcxl; do
		[ -d "$hub/$1" ] || continue
		while IFS= read -r dir; do
			ops_wait_until 3000 rmdir "$dir" 2>/dev/null || true
		done < <(find "$hub/$1" -depth -type d)
	done
}

ops_cleanup() {
	local pid s n
	set +e
	for pid in "${ops_agent_pids[@]}"; do
		ops_stop_pid "$pid"
	done
	for s in "${ops_sessions[@]}"; do
		for pid in $(ops_session_pids "$s"); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	for n in "${ops_agent_nodes[@]}"; do
		ops_rmdir_cgroups "$n"
	done
	if [ -n "${HPCXL_TEST_KEEP:-}" ]; then
		echo "kept $ops_tmp" >&2
	else
		rm -rf "$ops_tmp"
	fi
}
trap ops_cleanup EXIT

# ops_pair_start NAME1 NAME2 [ARGS...]: two agents on two loopback addresses
# with the same port, so that one URL template (tcp://%h:PORT) reaches both
# by address: the hosts of a Slurm host list. Sets ops_port, ops_host1,
# ops_host2. The addresses are drawn from 127.0.0.0/8 at random, away from
# 127.0.0.1 where the other tests' agents are; a port taken on the second
# address (rare) makes it try again.
ops_pair_start() {
	local a=$1 b=$2 try base
	shift 2
	for try in 1 2 3 4 5; do
		base=$((RANDOM % 200 + 20))
		ops_host1=127.0.$base.11
		ops_host2=127.0.$base.12
		ops_agent_start "$a" "tcp://$ops_host1:0" "$@" || return 1
		ops_port=${ops_url##*:}
		if ops_agent_start "$b" "tcp://$ops_host2:$ops_port" "$@"; then
			return 0
		fi
		echo "port $ops_port taken on $ops_host2 (try $try)" >&2
		ops_agent_stop "$a"
	done
	return 1
}
