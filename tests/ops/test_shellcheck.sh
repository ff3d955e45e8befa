#!/usr/bin/env bash
# The ops scripts and their tests, shellcheck-clean (every warning and
# note): deploy/slurm, deploy/profiles, drain-node.sh, tests/ops. Skipped
# (exit 77) where shellcheck is not installed (apt install shellcheck).
set -euo pipefail
if ! command -v shellcheck >/dev/null; then
	echo "SKIP: shellcheck is not installed (apt install shellcheck)"
	exit 77
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
files=(deploy/slurm/*.sh deploy/profiles/*.sh deploy/scripts/drain-node.sh
	deploy/completion/hpcxl
	tests/ops/*.sh tests/ops/fake-soffice/soffice
	tests/ops/fake-soffice/oosplash tests/ops/fake-soffice/soffice.bin)
# -x follows the files they source (source-path directives name them).
if shellcheck -x "${files[@]}"; then
	echo "${#files[@]} passed, 0 failed"
else
	echo "0 passed, 1 failed"
	exit 1
fi
