#!/usr/bin/env bash
# deploy/completion/hpcxl loads in bash and completes commands and the
# options of the command typed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/completion/hpcxl
source "$root/deploy/completion/hpcxl"

# The words completion offers for the command line "$@" (the last word is
# the one under the cursor).
complete_words()
{
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_hpcxl
	echo "${COMPREPLY[*]}"
}

spec=$(complete -p hpcxl)
[[ $spec == "complete -F _hpcxl hpcxl" ]] || {
	echo "FAIL: complete -p hpcxl: $spec"
	exit 1
}
got=$(complete_words hpcxl clo)
[[ $got == close-session ]] || {
	echo "FAIL: 'hpcxl clo': $got"
	exit 1
}
got=$(complete_words hpcxl open-session --per)
[[ $got == --per-core ]] || {
	echo "FAIL: 'hpcxl open-session --per': $got"
	exit 1
}
got=$(complete_words hpcxl close-session --l)
[[ -z $got ]] || {
	echo "FAIL: close-session takes no --lease: $got"
	exit 1
}
echo "3 passed, 0 failed"
