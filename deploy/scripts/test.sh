#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice:
# a normal build (build/) and an AddressSanitizer + UBSan build
# (build-asan/), then the fuzz targets for 30 s each (build-fuzz/, with
# clang; fuzz.sh says so when it skips them). After the normal build's
# tests, package.sh builds and checks the Debian packages (build-pkg/,
# about 20 s). --quick runs the normal build only.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/deps.sh"

quick=0
[ "${1:-}" = "--quick" ] && quick=1

hpcxl_install_deps

run_suite() {
	local dir=$1
	shift
	echo "== build $dir $*"
	hpcxl_build "$hpcxl_root/$dir" "$@"
	echo "== test $dir"
	ctest --test-dir "$hpcxl_root/$dir" --output-on-failure -j 2
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $quick -eq 0 ]; then
	bash "$hpcxl_root/deploy/scripts/package.sh"
	# halt_on_error: a sanitizer report fails the test, not just a log line.
	export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DHPCXL_SANITIZE=ON
	bash "$hpcxl_root/deploy/scripts/fuzz.sh"
fi
echo "== all tests passed"
