#!/usr/bin/env bash
# The man pages format without a warning from man (groff's), and name every
# option of hpcxl and hpcxl-agent and every key of the agent's config, as
# the sources spell them, so a new option cannot go undocumented; and the
# gzip-compressed copies that are installed hold the same pages.
set -euo pipefail
if ! command -v man >/dev/null; then
	echo "SKIP: man is not installed (apt install man-db groff-base)"
	exit 77
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
man_dir=${HPCXL_MAN_DIR:?the configured pages: <build>/deploy/man}
failed=0

fail()
{
	echo "FAIL: $*"
	failed=$((failed + 1))
}

for page in hpcxl.1 hpcxl-agent.8 hpcxl-agent.conf.5; do
	warnings=$(man --warnings -l "$man_dir/$page" 2>&1 >/dev/null) ||
		fail "$page: man exited $?"
	[[ -z $warnings ]] || fail "$page: $warnings"
	grep -q '@PROJECT_VERSION@' "$man_dir/$page" &&
		fail "$page: not configured"
	# What is installed is $page.gz (deploy/CMakeLists.txt): this page.
	gzip -dc "$man_dir/$page.gz" 2>/dev/null | cmp -s - "$man_dir/$page" ||
		fail "$page.gz is not $page compressed"
done

# The long options of a getopt table: lines like { "name", ..., OPT_X }.
options_of()
{
	sed -n 's/^[[:space:]]*{ "\([a-z-]*\)",.*/\1/p' "$1"
}

# Each word must appear in the page as roff writes it (\- for -).
check_words()
{
	local page=$1 prefix=$2 word text
	shift 2
	text=$(cat "$man_dir/$page")
	for word in "$@"; do
		grep -qF -- "$prefix${word//-/\\-}" <<<"$text" ||
			fail "$page lacks $prefix$word"
	done
}

mapfile -t cli < <(options_of "$root/controller/cli/args.c")
mapfile -t agent < <(options_of "$root/agent/main.c")
mapfile -t keys < <(sed -n 's/.*strcmp(key, "\([a-z_]*\)").*/\1/p; s/.*\] = "\(limit_[a-z]*\)",.*/\1/p' \
	"$root/common/config.c")
((${#cli[@]} > 10 && ${#agent[@]} > 10 && ${#keys[@]} > 20)) ||
	fail "cannot read the options and keys from the sources"
check_words hpcxl.1 '\-\-' "${cli[@]}"
check_words hpcxl-agent.8 '\-\-' "${agent[@]}"
check_words hpcxl-agent.conf.5 '' "${keys[@]}"

if ((failed > 0)); then
	echo "$failed failed"
	exit 1
fi
echo "3 pages, ${#cli[@]} + ${#agent[@]} options, ${#keys[@]} keys: passed"
