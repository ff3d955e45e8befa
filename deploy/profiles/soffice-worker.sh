#!/usr/bin/env bash
# soffice-worker.sh: an hpcxl worker that is headless LibreOffice Calc.
# The command of a profile (deploy/profiles/libreoffice.ini):
#
#   command = /usr/local/lib/hpcxl/soffice-worker.sh [OPTIONS] [-- SOFFICE-ARGS]
#
#   --soffice PATH      the soffice to run (default: soffice on PATH,
#                       /usr/bin/soffice from Debian's libreoffice-calc)
#   --profile-dir DIR   where the workers' LibreOffice profiles go, each
#                       in DIR/NODE/ (default: $XDG_CACHE_HOME/hpcxl-lo,
#                       else $HOME/.cache/hpcxl-lo; created mode 0700)
#   --keep-days N       remove profiles of other sessions unused for N days
#                       (default 2; 0 keeps them all)
#   --view              open the workbook read-only (viewer mode: the UNO
#                       API cannot change its cells then)
#   --no-accept         no UNO pipe (see below)
#
# What it reads from the agent: HPCXL_SESSION, HPCXL_NODE, HPCXL_WORKER (this
# worker's index) and HPCXL_WORKBOOK (empty without --workbook), from its
# environment. Not from the profile's command line: the agent splits a
# command with wordexp(3) when it loads its config, where $HPCXL_WORKER is
# not set, and refuses it (WRDE_UNDEF): the value exists only per worker.
#
# What it starts, one LibreOffice per worker:
#
#   soffice -env:UserInstallation=file://DIR/NODE/lo-profile-SESSION-WORKER
#       --headless --norestore --nologo --nodefault
#       --accept=pipe,name=hpcxl-SESSION-NODE-WORKER;urp;StarOffice.ComponentContext
#       [--view] WORKBOOK
#
# * A profile of its own per worker: LibreOffice allows one instance per
#   user profile. A second soffice on the same profile finds the first
#   one's pipe (its name is a hash of the profile's path), hands it its
#   arguments and exits at once: every worker after the first would end as
#   soon as it started, and the first one would hold all the documents.
#   The node is part of the path: with a home shared by the nodes (NFS),
#   worker 0 of every node would otherwise share one profile, which
#   LibreOffice locks against instances on other hosts.
# * --headless: no display, no dialogs; it implies --invisible (LibreOffice
#   sets both for --headless), so --invisible is not passed. --norestore:
#   no crash-recovery step after a worker was killed (the next start of
#   that profile would otherwise wait on a recovery dialog nobody sees).
#   --nologo: no splash (oosplash). --nodefault: no empty document when no
#   workbook is given. Not --nolockcheck (a check for other hosts using a
#   shared installation, harmless here) nor --nofirststartwizard (ignored
#   since LibreOffice 4).
# * --accept: the worker's UNO connection (pipe hpcxl-SESSION-NODE-WORKER,
#   of this user, on this node: a socket /tmp/OSL_PIPE_<uid>_<name>),
#   through which a program drives the workbook (Python UNO, Java, C++); it
#   also keeps a worker without a workbook running. The node is in the name
#   for hosts that run several agents; a name longer than 60 characters
#   (long session and node ids) becomes hpcxl-<hash>-WORKER, to keep the
#   socket's path within its 108 bytes. The worker's log (the agent's
#   logs/SESSION/worker-N.log) says the name. --no-accept leaves it out.
# * A fresh profile is given registrymodifications.xcu with LibreOffice's
#   document lock files off (UseDocumentOOoLockFile, UseDocumentSystem-
#   FileLocking): every worker opens the same workbook, and the second would
#   find the first one's .~lock file and open it read-only, or ask.
#
# Process tree and the session: the agent starts each worker in the
# session's cgroup (cgroup v2; it joins before exec). This script `exec`s
# soffice, so the worker process (the pid the agent signals and shows in
# `hpcxl status`) IS soffice: no shell stays behind to swallow SIGTERM.
# soffice is itself a shell script that `exec`s oosplash (same pid), which
# forks soffice.bin and waits for it (restarting it when it asks, exit 79
# or 81, e.g. after a first start). A child is born in its parent's cgroup
# and an unprivileged process cannot move itself out of it (that needs
# write access to another cgroup's cgroup.procs), so oosplash, soffice.bin
# and whatever soffice.bin forks are all in the session's cgroup whatever
# they do (setsid, double fork). On close, the agent's SIGTERM reaches
# oosplash, which forwards it to soffice.bin as SIGKILL and exits (its
# SIGTERM handler); anything left when the grace ends goes with the
# session's cgroup.kill. On the pgroup backend (no cgroup v2) the tree
# shares the worker's process group, which the agent kills the same way;
# only a descendant that calls setsid() would leave it.
set -euo pipefail

me="soffice-worker"
die() {
	echo "$me: $2" >&2
	exit "$1"
}

soffice=soffice
profile_dir=
keep_days=2
view=0
accept=1
while [ $# -gt 0 ]; do
	case $1 in
	--soffice) soffice=${2:?--soffice needs a path} && shift 2 ;;
	--profile-dir) profile_dir=${2:?--profile-dir needs a dir} && shift 2 ;;
	--keep-days) keep_days=${2:?--keep-days needs a number} && shift 2 ;;
	--view) view=1 && shift ;;
	--no-accept) accept=0 && shift ;;
	--) shift && break ;;
	*) die 2 "unknown option '$1' (soffice's own arguments go after --)" ;;
	esac
done
[[ $keep_days =~ ^[0-9]+$ ]] || die 2 "--keep-days takes a number of days"

# The agent's variables. They become a path, a URL and a pipe name: the
# agent's ids are [A-Za-z0-9._-] and the index a number, which is checked
# rather than trusted (the script may be run by hand).
session=${HPCXL_SESSION:-}
node=${HPCXL_NODE:-}
worker=${HPCXL_WORKER:-}
workbook=${HPCXL_WORKBOOK:-}
id_re='^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$'
[[ $session =~ $id_re ]] ||
	die 2 "HPCXL_SESSION is not a session id ('$session'): run me from an hpcxl-agent profile"
[[ $node =~ $id_re ]] ||
	die 2 "HPCXL_NODE is not a node name ('$node'): run me from an hpcxl-agent profile"
[[ $worker =~ ^[0-9]+$ ]] ||
	die 2 "HPCXL_WORKER is not a worker index ('$worker'): run me from an hpcxl-agent profile"

if [ -z "$profile_dir" ]; then
	base=${XDG_CACHE_HOME:-${HOME:-}/.cache}
	[[ $base == /* ]] || die 2 "no HOME to keep profiles in: pass --profile-dir"
	profile_dir=$base/hpcxl-lo
fi
# 0700: a profile holds the documents' recent list, macros, settings. The
# workers of a session start together: another one may have just made it.
mkdir -p -- "$(dirname -- "$profile_dir")"
for dir in "$profile_dir" "$profile_dir/$node"; do
	mkdir -m 0700 -- "$dir" 2>/dev/null || [ -d "$dir" ] ||
		die 1 "cannot create $dir"
done
profile_dir=$profile_dir/$node
profile=$profile_dir/lo-profile-$session-$worker

# Profiles are not removed when their session closes (the worker IS
# soffice: nothing of this script runs after it). Those of other sessions
# that no process uses and that are older than --keep-days go here; "in
# use" is read from the -env:UserInstallation argument every process of the
# tree carries (soffice passes its arguments on to soffice.bin).
prune_profiles() {
	local dir url
	while IFS= read -r -d '' dir; do
		[ "$dir" = "$profile" ] && continue
		url=file://$(urlencode "$dir")
		if grep -qsFx -z -- "-env:UserInstallation=$url" /proc/[0-9]*/cmdline; then
			continue
		fi
		rm -rf -- "$dir"
	done < <(find "$profile_dir" -mindepth 1 -maxdepth 1 -type d \
		-name 'lo-profile-*' -mtime "+$((keep_days - 1))" -print0)
}

# urlencode PATH: PATH as the path of a file:// URL (LibreOffice reads
# UserInstallation as a URL: a space or a % must be escaped).
urlencode() {
	local LC_ALL=C # bytes: a UTF-8 character becomes %XX per byte
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# seed_profile: a new profile starts with lock files off (see the top).
seed_profile() {
	[ -e "$profile" ] && return 0
	mkdir -m 0700 -- "$profile" "$profile/user"
	cat >"$profile/user/registrymodifications.xcu" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="UseDocumentOOoLockFile" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="UseDocumentSystemFileLocking" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
EOF
}

program=$(command -v -- "$soffice") ||
	die 127 "'$soffice' not found: install LibreOffice Calc (apt install libreoffice-calc-nogui) or pass --soffice PATH"

if [ "$keep_days" -gt 0 ]; then
	prune_profiles
fi
seed_profile

args=("-env:UserInstallation=file://$(urlencode "$profile")"
	--headless --norestore --nologo --nodefault)
pipe=-
if [ $accept -eq 1 ]; then
	pipe=hpcxl-$session-$node-$worker
	if [ ${#pipe} -gt 60 ]; then
		pipe=hpcxl-$(printf '%s' "$session-$node" | md5sum | cut -c1-16)-$worker
	fi
	args+=("--accept=pipe,name=$pipe;urp;StarOffice.ComponentContext")
fi
if [ -n "$workbook" ]; then
	# A path is checked here, where the error reaches the worker's log;
	# LibreOffice would only say nothing and keep running without it. A
	# URL (scheme://) is LibreOffice's to open.
	if [[ ! $workbook =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; then
		[ -r "$workbook" ] || die 66 "cannot read workbook '$workbook'"
		# Not taken for an option (a name starting with '-').
		[[ $workbook == /* ]] || workbook=./$workbook
	fi
	[ $view -eq 1 ] && args+=(--view)
	args+=("$workbook")
fi

echo "$me: session $session node $node worker $worker: $program," \
	"profile $profile, UNO pipe $pipe, workbook ${workbook:--}" >&2
exec "$program" "${args[@]}" "$@"
