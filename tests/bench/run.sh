#!/bin/bash
# hpcxl benchmark: hpcxl against two floors measured in the same run, printed
# as one Markdown table (see tests/bench/README.md for what each row means).
#
# usage: bash tests/bench/run.sh [--quick] [--agents N] [--timeout MS]
#   --quick       fewer runs and calls (same agent count)
#   --agents N    live agents for the survey rows (default 1000, >= 128)
#   --timeout MS  timeout of each ping / empty close (default 5000)
#
# It builds a Release build in build-bench/ (HPCXL_BENCH_BUILD overrides)
# and runs as whoever starts it (root lets the agents use cgroup2). Every
# agent it starts is stopped and reaped, and its temp dir removed, on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${HPCXL_BENCH_BUILD:-$ROOT/build-bench}
BIN=$BUILD/bin
QUICK=0 AGENTS=1000 TIMEOUT_MS=5000
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--agents) AGENTS=$2; shift ;;
	--timeout) TIMEOUT_MS=$2; shift ;;
	*) echo "usage: $0 [--quick] [--agents N] [--timeout MS]" >&2; exit 2 ;;
	esac
	shift
done
((AGENTS >= 128 && AGENTS <= 4096)) || { echo "--agents: 128..4096" >&2; exit 2; }
# Runs of each timed step; warm calls include the first (not counted).
if ((QUICK)); then RUNS=2 COLD=2 WARM=5 OVER=2; else RUNS=5 COLD=5 WARM=20 OVER=5; fi
SETTLE_MS=1000      # between open and close, so every worker is up
OVER_TIMEOUT_MS=2000
ROSTER_BIG=4096     # the controller-RSS roster: live agents + dead ports
BATCH=50            # agents started at once
READY_S=60          # deadline for one batch's ready files
STEP_S=600          # deadline for one benchmark program
TLS_STEP_S=180      # the same for one over TLS (see a) TLS)
T_START=$SECONDS

# ---- build ----------------------------------------------------------------
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" --target bench >/dev/null

# ---- agents and clean-up --------------------------------------------------
WORK=$(mktemp -d /tmp/hpcxl-bench.XXXXXX)
PREFIX=bench$$ # node names: cgroups left by a killed agent are found by it
WORKER_USER=$(id -un) # a root agent runs workers as root only when told to
APIDS=()       # pids of the running agents, index = agent number

# Every agent gets SIGCONT (one may be frozen), then SIGTERM; after 30 s
# the rest get SIGKILL. All are reaped. --close-on-exit ends their sessions.
stop_agents() {
	local p st deadline=$((SECONDS + 30)) left=1
	((${#APIDS[@]})) || return 0
	kill -CONT "${APIDS[@]}" 2>/dev/null || true
	kill -TERM "${APIDS[@]}" 2>/dev/null || true
	while ((left && SECONDS < deadline)); do
		left=0
		for p in "${APIDS[@]}"; do
			st=Z
			[[ -r /proc/$p/stat ]] && read -r _ _ st _ <"/proc/$p/stat" || true
			[[ $st == Z ]] || { left=1; break; }
		done
		((left)) && sleep 0.1
	done
	((left)) && kill -KILL "${APIDS[@]}" 2>/dev/null || true
	for p in "${APIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	APIDS=()
}

# Kills and removes any session cgroup our agents left (SIGKILLed agent).
clean_cgroups() {
	local d
	for d in /sys/fs/cgroup/hpcxl/"$PREFIX"-* /sys/fs/cgroup/unified/hpcxl/"$PREFIX"-*; do
		[[ -d $d ]] || continue
		find "$d" -mindepth 1 -maxdepth 1 -type d -exec sh -c \
			'echo 1 > "$1/cgroup.kill"; sleep 0.2; rmdir "$1"' _ {} \; 2>/dev/null || true
		rmdir "$d" 2>/dev/null || true
	done
}

cleanup() {
	trap - EXIT INT TERM
	set +e
	stop_agents
	clean_cgroups
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_agents PHASE N BACKEND [tls]: starts agents PHASE-0..N-1, BATCH at a
# time, each with its own dir under $WORK; waits for their ready files and
# writes their URLs, in order, to $WORK/PHASE.roster. tls: they listen on
# tls+tcp4://localhost:0 instead (by name: mbedTLS 2.28 matches DNS SANs
# only), with the certificates make_certs made.
start_agents() {
	local phase=$1 n=$2 backend=$3 i j dir deadline
	local listen=(--listen tcp://127.0.0.1:0)
	[[ ${4:-} == tls ]] && listen=(--listen tls+tcp4://localhost:0
		--tls-cert "$PKI/agent-localhost.pem" --tls-key "$PKI/agent-localhost.key"
		--tls-ca "$PKI/ca.pem")
	: >"$WORK/$phase.roster"
	for ((i = 0; i < n; i += BATCH)); do
		for ((j = i; j < n && j < i + BATCH; j++)); do
			dir=$WORK/$phase-$j
			mkdir -p "$dir"
			"$BIN/hpcxl-agent" "${listen[@]}" --ready-file "$dir/ready" \
				--state-dir "$dir/state" --node "$PREFIX-$phase-$j" --backend "$backend" \
				--close-on-exit --stop-grace 1000 --profile "xl=$BIN/xlsim" \
				--profile "tiny=sleep 3600" \
				--default-user "$WORKER_USER" \
				2>"$dir/log" &
			APIDS[j]=$!
		done
		deadline=$((SECONDS + READY_S))
		for ((j = i; j < n && j < i + BATCH; j++)); do
			until [[ -s $WORK/$phase-$j/ready ]]; do
				if ((SECONDS >= deadline)) || ! kill -0 "${APIDS[j]}" 2>/dev/null; then
					echo "agent $phase-$j did not start:" >&2
					cat "$WORK/$phase-$j/log" >&2
					exit 1
				fi
				sleep 0.02
			done
		done
	done
	for ((j = 0; j < n; j++)); do head -n1 "$WORK/$phase-$j/ready"; done >"$WORK/$phase.roster"
}

# The TLS rows: one CA, the agents' certificate (CN and DNS SAN localhost)
# and the controller's, made once per run by the script sites use; the
# controller takes them from HPCXL_TLS_* (bench_hpcxl.c), set for those
# rows only.
PKI=$WORK/pki
make_certs() {
	bash "$ROOT/deploy/scripts/make-certs.sh" --agent localhost --client bench \
		"$PKI" >/dev/null 2>"$WORK/make-certs.err" ||
		{ cat "$WORK/make-certs.err" >&2; exit 1; }
}
tls_env=(env HPCXL_TLS_CERT="$PKI/client-bench.pem" HPCXL_TLS_KEY="$PKI/client-bench.key"
	HPCXL_TLS_CA="$PKI/ca.pem")

# run NAME PROGRAM ARGS...: one benchmark program, bounded in time; its
# output is kept in $WORK/NAME.out for res(). --foreground: it stays in our
# process group, so a ^C reaches it and the clean-up runs at once.
run() {
	local name=$1
	shift
	echo "  $name" >&2
	timeout --foreground -k 5 "$STEP_S" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
		{ echo "  ($name exited $?; stderr follows)" >&2; tail -n 5 "$WORK/$name.err" >&2; }
}

# res NAME RESULT KEY: a value from a RESULT line of run NAME ("" if none).
res() {
	awk -v n="$2" -v k="$3" '$1 == "RESULT" && $2 == n {
		for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' \
		"$WORK/$1.out" 2>/dev/null | head -n1
}

# ---- the machine ----------------------------------------------------------
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# The bench programs hold a connection per agent, plus nng's own fds.
((NOFILE > 2 * ROSTER_BIG + 256)) || { echo "ulimit -n is $NOFILE: too low" >&2; exit 1; }
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NNG=$(dpkg-query -W -f='${Version}' libnng1 2>/dev/null || echo '?')
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg) # others' load skews every row
echo "benchmark: $( ((QUICK)) && echo quick || echo full ), work dir $WORK" >&2

# ---- a) kernel floor vs open/close ----------------------------------------
echo "a) open and close: 1 + 16 agents (cgroup2 if available)" >&2
start_agents a 17 auto
BACKEND_A=$(grep -o 'ready ([a-z0-9]* backend' "$WORK/a-0/log" | awk '{ print $2 }' | tr -d '(')
head -n1 "$WORK/a.roster" >"$WORK/a1.roster"
tail -n 16 "$WORK/a.roster" >"$WORK/a16.roster"
run floor_spawn "$BIN/floor_spawn" "$BIN/xlsim" 256 "$RUNS"
run oc1 "$BIN/bench_hpcxl" open-close "$WORK/a1.roster" 256 "$RUNS" "$SETTLE_MS"
run oc16 "$BIN/bench_hpcxl" open-close "$WORK/a16.roster" 16 "$RUNS" "$SETTLE_MS"
run op "$BIN/bench_hpcxl" open-ping "$WORK/a1.roster" 4096 "$WARM"
stop_agents

# The 1 × 256 close again on the pgroup backend (nodes without cgroup2),
# whose bookkeeping differs: it once cost O(workers²) /proc reads.
echo "a) open and close: 1 agent, pgroup backend" >&2
start_agents ap 1 pgroup
run oc1p "$BIN/bench_hpcxl" open-close "$WORK/ap.roster" 256 "$RUNS" "$SETTLE_MS"
stop_agents

# The same 16 × 16 open and close with the agents on TLS (its close row is
# compared with the plain TCP one above). nng 1.5.2's TLS client can hang at
# close (tests/integration/sp_tls.h): TLS steps get a shorter deadline.
echo "a) TLS: 16 agents on tls+tcp4://localhost" >&2
make_certs
start_agents at 16 auto tls
STEP_S=$TLS_STEP_S run oc16tls "${tls_env[@]}" "$BIN/bench_hpcxl" open-close \
	"$WORK/at.roster" 16 "$RUNS" "$SETTLE_MS"
stop_agents

# ---- b) survey floor vs ping / empty close --------------------------------
echo "b) surveys: starting $AGENTS agents (pgroup backend)" >&2
T0=$SECONDS
start_agents b "$AGENTS" pgroup
START_S=$((SECONDS - T0))
# Idle RSS of every agent, from /proc (kB): median and total.
for p in "${APIDS[@]}"; do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"; done |
	sort -n >"$WORK/rss.agents"
RSS_MED=$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$WORK/rss.agents")
RSS_SUM=$(awk '{ s += $1 } END { printf "%.0f", s / 1024 }' "$WORK/rss.agents")
head -n 128 "$WORK/b.roster" >"$WORK/b128.roster"
SIZES=$(printf '%s\n' 128 "$AGENTS" | sort -nu) # the survey rows' roster sizes
for n in $SIZES; do
	roster=$WORK/b$n.roster
	[[ $n == "$AGENTS" ]] && roster=$WORK/b.roster
	run "fs$n" "$BIN/floor_survey" "$roster" "$RUNS" "$TIMEOUT_MS"
	for op in ping close; do
		run "$op-cold-$n" "$BIN/bench_hpcxl" survey "$roster" $op cold "$COLD" "$TIMEOUT_MS"
		run "$op-warm-$n" "$BIN/bench_hpcxl" survey "$roster" $op warm "$WARM" "$TIMEOUT_MS"
	done
done

# Controller RSS: a roster of ROSTER_BIG URLs, the live agents first, then
# ports of 127.0.0.1 nothing listens on (connection refused).
cp "$WORK/b.roster" "$WORK/big.roster"
ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u >"$WORK/listening"
awk -v need=$((ROSTER_BIG - AGENTS)) 'NR == FNR { busy[$1] = 1; next }
	END { for (p = 10000; need > 0 && p < 32768; p++)
		if (!(p in busy)) { print "tcp://127.0.0.1:" p; need-- } }' \
	"$WORK/listening" /dev/null >>"$WORK/big.roster"
run rss "$BIN/bench_hpcxl" rss "$WORK/big.roster" 2000

# ---- c) overshoot with a frozen node --------------------------------------
echo "c) overshoot: 16 agents, one SIGSTOPped" >&2
head -n 16 "$WORK/b.roster" >"$WORK/c16.roster"
kill -STOP "${APIDS[15]}"
run over "$BIN/bench_hpcxl" overshoot "$WORK/c16.roster" "$OVER" "$OVER_TIMEOUT_MS"
kill -CONT "${APIDS[15]}"
stop_agents

# ---- d) ping / empty close over TLS ---------------------------------------
# 128 agents on TLS against the 128 plain TCP rows of b): every cold call
# pays 128 handshakes on each side, warm calls reuse the connections.
echo "d) TLS surveys: 128 agents on tls+tcp4://localhost (pgroup backend)" >&2
start_agents d 128 pgroup tls
for op in ping close; do
	STEP_S=$TLS_STEP_S run "$op-cold-tls" "${tls_env[@]}" "$BIN/bench_hpcxl" survey \
		"$WORK/d.roster" $op cold "$COLD" "$TIMEOUT_MS"
	STEP_S=$TLS_STEP_S run "$op-warm-tls" "${tls_env[@]}" "$BIN/bench_hpcxl" survey \
		"$WORK/d.roster" $op warm "$WARM" "$TIMEOUT_MS"
done
stop_agents

# ---- the table ------------------------------------------------------------
# t NAME RESULT: "median (min–max)" ms; ratio A B: A / B; row: one table row.
t() { [[ -n $(res "$1" "$2" median) ]] && echo "$(res "$1" "$2" median) ($(res "$1" "$2" min)–$(res "$1" "$2" max))" || echo failed; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b + 0 == 0) print "—"; else printf "%.1f×", a / b }'; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
unr() { echo "unreachable rows: $(res "$1" unreachable rows) in $(res "$1" unreachable of) calls ($(res "$1" unreachable calls) not ok)"; }
med() { res "$1" "$2" median; }

echo "## hpcxl benchmark ($( ((QUICK)) && echo quick || echo full ) run, $(date -u '+%Y-%m-%d %H:%M UTC'), rev $REV)"
echo
echo "Machine: $(nproc) CPUs, $CPU, Linux $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), nng $NNG; load average at start $LOAD."
echo "Times in ms: median (min–max) of $RUNS runs unless said; ratio = hpcxl / floor (medians); in the TLS rows, TLS / plain TCP."
echo
row measurement "hpcxl ms" floor "floor ms" ratio notes
row --- --- --- --- --- ---
for c in 1 16; do
	what="1 agent × 256 workers"
	((c == 16)) && what="16 agents × 16 workers"
	row "open, $what" "$(t oc$c open)" "spawn 256 (floor_spawn)" "$(t floor_spawn spawn)" \
		"$(ratio "$(med oc$c open)" "$(med floor_spawn spawn)")" \
		"backend $BACKEND_A; failed runs $(res oc$c failures count); floor's workers all ready after $(med floor_spawn ready)"
	row "close, $what" "$(t oc$c close)" "terminate 256 (floor_spawn)" "$(t floor_spawn terminate)" \
		"$(ratio "$(med oc$c close)" "$(med floor_spawn terminate)")" "close ${SETTLE_MS} ms after the open"
done
row "close, 1 agent × 256 workers, pgroup" "$(t oc1p close)" "terminate 256 (floor_spawn)" "$(t floor_spawn terminate)" \
	"$(ratio "$(med oc1p close)" "$(med floor_spawn terminate)")" \
	"backend pgroup; failed runs $(res oc1p failures count); open $(t oc1p open)"
row "ping during an open of 4,096 workers, 1 agent" "$(t op during)" "ping, idle agent" "$(t op idle)" \
	"$(ratio "$(med op during)" "$(med op idle)")" \
	"$(res op open pings) pings while the open ran ($(res op open ms) ms, ok $(res op open ok)); lost $(res op open lost); target: max ≤ 50"
for n in $SIZES; do
	for op in ping close; do
		name=$op && [[ $op == close ]] && name="empty close"
		row "$name, $n agents, cold" "$(t $op-cold-$n call)" \
			"attach $(med fs$n attach) + reply $(med fs$n reply) + close $(med fs$n close) (floor_survey $n)" "$(med fs$n total)" \
			"$(ratio "$(med $op-cold-$n call)" "$(med fs$n total)")" \
			"$COLD calls, a new client each; the client's close $(med $op-cold-$n close) of it; $(unr $op-cold-$n); floor got $(res fs$n replies min) of $n replies"
		row "$name, $n agents, warm" "$(t $op-warm-$n call)" "reply (floor_survey $n)" "$(t fs$n reply)" \
			"$(ratio "$(med $op-warm-$n call)" "$(med fs$n reply)")" \
			"calls 2..$WARM on one client (call 1: $(res $op-warm-$n first ms)); $(unr $op-warm-$n)"
	done
done
row "close, 16 agents × 16 workers, TLS" "$(t oc16tls close)" "the same over plain TCP" "$(t oc16 close)" \
	"$(ratio "$(med oc16tls close)" "$(med oc16 close)")" \
	"ratio TLS / TCP; failed runs $(res oc16tls failures count); open over TLS $(t oc16tls open)"
for op in ping close; do
	name=$op && [[ $op == close ]] && name="empty close"
	for temp in cold warm; do
		row "$name, 128 agents, $temp, TLS" "$(t $op-$temp-tls call)" \
			"the same over plain TCP" "$(t $op-$temp-128 call)" \
			"$(ratio "$(med $op-$temp-tls call)" "$(med $op-$temp-128 call)")" \
			"ratio TLS / TCP; $(unr $op-$temp-tls)"
	done
done
row "close overshoot, 16 agents, 1 SIGSTOPped, timeout $OVER_TIMEOUT_MS ms" "$(t over overshoot)" — — — \
	"ms past the timeout, $OVER runs; nodes answering: $(res over answered min) of 16"
row "agent idle RSS" "$RSS_MED kB" — — — "median of $AGENTS agents ($RSS_SUM MiB in all; started in $START_S s)"
row "controller RSS, $ROSTER_BIG-node roster" "VmHWM $(res rss rss hwm_kb) kB, VmRSS $(res rss rss rss_kb) kB" — — — \
	"one client, one 2000 ms ping: $AGENTS live agents + $((ROSTER_BIG - AGENTS)) dead ports; ok rows $(res rss rss ok)"
echo
echo "Whole run: $((SECONDS - T_START)) s."
