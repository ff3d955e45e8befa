#!/usr/bin/env bash
# Installs the Debian 12 packages hpcxl builds with, when any is missing.
# Sourced by the quick-start and test scripts; needs root to install.
# file: cpack reads with it which files are binaries (package.sh). jq: the
# Slurm hooks and ops scripts of deploy/ read hpcxl's JSON with it (their
# tests, tests/ops/, run them). libsystemd-dev: the agent's sd_notify()
# (its package's Depends gets libsystemd0 from dpkg-shlibdeps).
hpcxl_packages=(build-essential cmake pkg-config libnng-dev libmbedtls-dev
	libmsgpack-dev libcriterion-dev libinih-dev libjansson-dev iproute2
	openssl file jq libsystemd-dev)

hpcxl_install_deps() {
	local missing=()
	for p in "${hpcxl_packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "hpcxl: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "hpcxl: run as root to install packages" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# hpcxl_build DIR [cmake args...]: configures and builds into DIR.
hpcxl_build() {
	local dir=$1
	shift
	cmake -S "$hpcxl_root" -B "$dir" "$@" >/dev/null &&
		cmake --build "$dir" -j "$(nproc)"
}

hpcxl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
