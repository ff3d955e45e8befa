#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/
# and runs each for a bounded time, as many at once as there are CPUs.
# Fails when a target finds a crash, a sanitizer report, a leak, a timeout
# or an out-of-memory. Skips, saying why, where clang cannot build them.
#
#   bash deploy/scripts/fuzz.sh [SECONDS]   # per target; default 30, or
#                                           # $HPCXL_FUZZ_SECONDS
#
# All it writes stays in build-fuzz/tests/fuzz/: corpus/NAME (grown by each
# run, kept for the next), artifacts/NAME-crash-... (the input of a
# failure), logs/NAME.log.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/deps.sh"

seconds=${1:-${HPCXL_FUZZ_SECONDS:-30}}
dir=$hpcxl_root/build-fuzz
out=$dir/tests/fuzz

skip() {
	echo "== fuzz: skipped: $*"
	exit 0
}

# libFuzzer comes with clang's compiler-rt (Debian: clang and
# libclang-rt-14-dev, about 40 MB to download and 250 MB installed: too
# much to install on every test run, so it is not in deps.sh).
probe_clang() {
	local probe=$dir/fuzz-probe

	command -v clang >/dev/null ||
		skip "clang is not installed (apt-get install clang)"
	mkdir -p "$dir"
	printf '%s\n' '#include <stddef.h>' \
		'int LLVMFuzzerTestOneInput(const char *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const char *d, size_t n)' \
		'{ return 0; }' >"$probe.c"
	if ! clang -fsanitize=fuzzer,address,undefined "$probe.c" \
		-o "$probe" 2>/dev/null; then
		rm -f "$probe.c" "$probe"
		skip "clang cannot link libFuzzer (apt-get install libclang-rt-dev)"
	fi
	rm -f "$probe.c" "$probe"
}

# run_one NAME EXE SEEDDIR...: one bounded run; its status is libFuzzer's.
run_one() {
	local name=$1 exe=$2
	shift 2
	mkdir -p "$out/corpus/$name"
	# Marks the start: report names only the artifacts of this run.
	touch "$out/logs/$name.start"
	# From $out: whatever a target writes to its working directory
	# stays in the build tree.
	cd "$out"
	"$exe" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
		"$out/corpus/$name" "$@" >"$out/logs/$name.log" 2>&1 </dev/null
}

# report NAME STATUS: one line from the final stats, or the failure.
report() {
	local name=$1 rc=$2 log=$out/logs/$1.log runs rate
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	if [ "$rc" -eq 0 ]; then
		echo "== fuzz $name: ok, ${runs:-?} runs, ${rate:-?} exec/s"
		return 0
	fi
	echo "== fuzz $name: FAILED (status $rc), log $log"
	tail -n 40 "$log"
	find "$out/artifacts" -name "$name-*" -newer "$out/logs/$name.start"
	return 1
}

hpcxl_install_deps
probe_clang
echo "== build build-fuzz (clang, libFuzzer + ASan/UBSan)"
cmake -S "$hpcxl_root" -B "$dir" -DCMAKE_C_COMPILER=clang -DHPCXL_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" --target fuzz -j "$(nproc)"
mkdir -p "$out/artifacts" "$out/logs"

# The sanitizers' own settings (test.sh sets others for its ASan build):
# libFuzzer reports and saves the input of any error.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== fuzz: ${seconds}s per target, $(nproc) at once"
declare -A running=() # pid -> target name
failed=0

# Waits for any one run to end and reports it.
reap_one() {
	local pid rc=0
	wait -n -p pid || rc=$?
	report "${running[$pid]}" "$rc" || failed=1
	unset "running[$pid]"
}

# targets.txt: "NAME EXECUTABLE SEEDDIR..." per target (CMakeLists.txt).
while read -r name exe seeds; do
	[ "${#running[@]}" -lt "$(nproc)" ] || reap_one
	# shellcheck disable=SC2086 # the seed directories, one word each
	run_one "$name" "$exe" $seeds &
	running[$!]=$name
done <"$out/targets.txt"
while [ "${#running[@]}" -gt 0 ]; do
	reap_one
done
[ "$failed" -eq 0 ] || {
	echo "== fuzz: FAILED; reproduce with: build-fuzz/bin/NAME ARTIFACT"
	exit 1
}
echo "== fuzz: no crash"
