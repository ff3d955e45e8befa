# shellcheck shell=bash
# What the Slurm hooks (prolog.sh, epilog.sh, healthcheck.sh) share: the
# settings file, the job's request, where the hook runs and the calls to
# hpcxl. Sourced, never run; every name it defines starts with hx_.
#
# Slurm starts its hooks with an empty environment apart from its SLURM_*
# variables (no PATH: "for security reasons", prolog_epilog.html) and reads
# nothing they print (PrologSlurmctld's output goes nowhere), so the hooks
# set a PATH of their own and log to syslog as well as to stderr.

export PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}

# The settings and their defaults (deploy/slurm/hpcxl-slurm.conf says what
# each one means). Order: the settings file over these; for the job's
# request (profile, workers, workbook, min_nodes) the job's comment over
# $HPCXL_SLURM_* in the hook's environment over the file.
declare -gA hx_conf=(
	[request]=comment
	[profile]=excel
	[allowed_profiles]=""
	[workers]=1
	[max_workers]=256
	[workbook]=""
	[workbook_dirs]=""
	[min_nodes]=all
	[session_prefix]=slurm-
	[open_timeout_ms]=60000
	[close_timeout_ms]=120000
	[ping_timeout_ms]=10000
	[hpcxl]=hpcxl
	[client_config]=""
	[url_template]=""
	[local_node]=""
	[slurm_node]=""
	[scontrol]=scontrol
	[drain_on_close_failure]=yes
	[mode]=auto
	[syslog]=yes
)
hx_conf_file=${HPCXL_SLURM_CONFIG:-/etc/hpcxl/slurm-hooks.conf}
hx_tag=hpcxl-slurm

hx_log() {
	echo "$hx_tag: $*" >&2
	if [ "${hx_conf[syslog]}" = yes ] && command -v logger >/dev/null; then
		logger -t "$hx_tag" -- "$*" 2>/dev/null || true
	fi
}

# hx_trim TEXT: TEXT without leading and trailing blanks, into hx_trimmed.
hx_trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	hx_trimmed=${s%"${s##*[![:space:]]}"}
}

# hx_conf_load: reads the settings file when it exists ("key = value"
# lines; '#' starts a comment at the start of a line or after a blank). An
# unknown key or a key set twice is an error that names file:line: a
# misspelt setting silently ignored would open the wrong sessions.
hx_conf_load() {
	local line key n=0
	local -A seen=()
	# $HPCXL_SLURM_CONFIG must exist when given; the default file may not.
	if [ ! -e "$hx_conf_file" ] && [ -z "${HPCXL_SLURM_CONFIG:-}" ]; then
		return 0
	fi
	if [ ! -r "$hx_conf_file" ]; then
		hx_log "cannot read $hx_conf_file"
		return 1
	fi
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%$'\r'}
		line=${line%%[[:space:]]#*}
		[[ $line == \#* ]] && continue
		hx_trim "$line"
		line=$hx_trimmed
		[ -z "$line" ] && continue
		if [[ $line != *=* ]]; then
			hx_log "$hx_conf_file:$n: not a 'key = value' line"
			return 1
		fi
		hx_trim "${line%%=*}"
		key=$hx_trimmed
		if [ -z "${hx_conf[$key]+set}" ]; then
			hx_log "$hx_conf_file:$n: unknown setting '$key'"
			return 1
		fi
		if [ -n "${seen[$key]:-}" ]; then
			hx_log "$hx_conf_file:$n: '$key' set twice"
			return 1
		fi
		seen[$key]=1
		hx_trim "${line#*=}"
		hx_conf[$key]=$hx_trimmed
	done <"$hx_conf_file"
	# The client's settings go to hpcxl through its own variables.
	if [ -n "${hx_conf[client_config]}" ]; then
		export HPCXL_CLIENT_CONFIG=${hx_conf[client_config]}
	fi
	if [ -n "${hx_conf[url_template]}" ]; then
		export HPCXL_URL_TEMPLATE=${hx_conf[url_template]}
	fi
	return 0
}

# hx_mode: "ctld" (PrologSlurmctld/EpilogSlurmctld: once per job, on the
# controller, for every node of the job) or "node" (Prolog/Epilog: on each
# node of the job, for that node), into hx_mode. SLURM_SCRIPT_CONTEXT says
# it on Slurm >= 20.11; before that, only slurmd sets SLURMD_NODENAME.
hx_mode_detect() {
	case ${hx_conf[mode]} in
	ctld | node) hx_mode=${hx_conf[mode]} ;;
	auto)
		case ${SLURM_SCRIPT_CONTEXT:-} in
		*_slurmctld) hx_mode=ctld ;;
		*_slurmd) hx_mode=node ;;
		*)
			if [ -n "${SLURMD_NODENAME:-}" ]; then
				hx_mode=node
			else
				hx_mode=ctld
			fi
			;;
		esac
		;;
	*)
		hx_log "mode must be auto, ctld or node, not '${hx_conf[mode]}'"
		return 1
		;;
	esac
}

# hx_local_node: what `hpcxl --nodes` names this node by (a host through
# the URL template, or a URL such as ipc:///var/lib/hpcxl/agent.sock).
hx_local_node() {
	local n=${hx_conf[local_node]}
	[ -n "$n" ] || n=${SLURMD_NODENAME:-}
	[ -n "$n" ] || n=$(hostname -s)
	echo "$n"
}

# hx_slurm_node: Slurm's name of this node (for scontrol).
hx_slurm_node() {
	local n=${hx_conf[slurm_node]}
	[ -n "$n" ] || n=${SLURMD_NODENAME:-}
	[ -n "$n" ] || n=$(hostname -s)
	echo "$n"
}

# hx_job_nodes: the roster of this hook, into hx_nodes: the job's nodes on
# the controller (SLURM_JOB_NODELIST is a Slurm host list, which --nodes
# takes as it is), this node on a node.
hx_job_nodes() {
	if [ "$hx_mode" = node ]; then
		hx_nodes=$(hx_local_node)
		return 0
	fi
	hx_nodes=${SLURM_JOB_NODELIST:-}
	if [ -z "$hx_nodes" ]; then
		hx_log "job ${SLURM_JOB_ID:-?}: SLURM_JOB_NODELIST is not set"
		return 1
	fi
}

# hx_session: the job's session id (hpcxl ids: 1 to 64 of A-Z a-z 0-9 . _ -).
hx_session_id() {
	local id=${SLURM_JOB_ID:-}
	if [[ ! $id =~ ^[0-9]+$ ]]; then
		hx_log "SLURM_JOB_ID is not a job id: '$id'"
		return 1
	fi
	hx_session=${hx_conf[session_prefix]}$id
	if [[ ! $hx_session =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$ ]]; then
		hx_log "session id '$hx_session' is not an hpcxl id (session_prefix?)"
		return 1
	fi
}

# hx_words TEXT: the words of TEXT, separated by blanks or commas, into the
# array hx_w (read -a: no word is taken for a file name pattern).
hx_words() {
	IFS=$' \t\n,' read -rd '' -a hx_w <<<"$1" || true
}

# hx_in_list WORD LIST: LIST is words separated by blanks or commas.
hx_in_list() {
	local w
	hx_words "$2"
	for w in "${hx_w[@]}"; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

# hx_request_parse: what the job asks for, into hx_req_* and hx_requested
# (0: nothing, 1: a session). Returns 1, with the reason logged, for a
# request that is not valid. The comment is the user's (sbatch --comment),
# so every value is checked here before it reaches a command line: a token
# "hpcxl" (the defaults) or "hpcxl:KEY=VALUE,KEY=VALUE" among the
# comment's words, KEY one of profile, workers, workbook, min_nodes.
hx_request_parse() {
	local comment=${SLURM_JOB_COMMENT:-} word token="" found=0 kv key value
	local -a words
	hx_req_profile=${HPCXL_SLURM_PROFILE:-${hx_conf[profile]}}
	hx_req_workers=${HPCXL_SLURM_WORKERS:-${hx_conf[workers]}}
	hx_req_workbook=${HPCXL_SLURM_WORKBOOK:-${hx_conf[workbook]}}
	hx_req_min_nodes=${HPCXL_SLURM_MIN_NODES:-${hx_conf[min_nodes]}}
	# Words of the comment: split at blanks only (the token has commas).
	IFS=$' \t\n' read -rd '' -a words <<<"$comment" || true
	for word in "${words[@]}"; do
		case $word in
		hpcxl | hpcxl:*)
			found=$((found + 1))
			token=$word
			;;
		esac
	done
	case ${hx_conf[request]} in
	comment) hx_requested=$((found > 0 ? 1 : 0)) ;;
	all) hx_requested=1 ;;
	*)
		hx_log "request must be comment or all, not '${hx_conf[request]}'"
		return 1
		;;
	esac
	if [ "$found" -gt 1 ]; then
		hx_log "job ${SLURM_JOB_ID:-?}: more than one hpcxl token in the comment"
		return 1
	fi
	if [[ $token == hpcxl:* ]]; then
		IFS=, read -ra kv <<<"${token#hpcxl:}"
		for word in "${kv[@]}"; do
			key=${word%%=*}
			value=${word#*=}
			if [[ $word != *=* ]] || [ -z "$value" ]; then
				hx_log "job ${SLURM_JOB_ID:-?}: '$word' in the comment is not KEY=VALUE"
				return 1
			fi
			case $key in
			profile) hx_req_profile=$value ;;
			workers) hx_req_workers=$value ;;
			workbook) hx_req_workbook=$value ;;
			min_nodes) hx_req_min_nodes=$value ;;
			*)
				hx_log "job ${SLURM_JOB_ID:-?}: unknown key '$key' in the comment (profile, workers, workbook, min_nodes)"
				return 1
				;;
			esac
		done
	fi
	[ "$hx_requested" -eq 1 ] || return 0
	hx_request_check
}

# The checks of hx_request_parse, on the merged values.
hx_request_check() {
	local job="job ${SLURM_JOB_ID:-?}" allowed=${hx_conf[allowed_profiles]}
	local real dir ok
	[ -n "$allowed" ] || allowed=${hx_conf[profile]}
	if [[ ! $hx_req_profile =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$ ]] ||
		! hx_in_list "$hx_req_profile" "$allowed"; then
		hx_log "$job: profile '$hx_req_profile' is not allowed (allowed_profiles: $allowed)"
		return 1
	fi
	if [ "$hx_req_workers" != per_core ]; then
		if [[ ! $hx_req_workers =~ ^[1-9][0-9]{0,5}$ ]] ||
			[ "$hx_req_workers" -gt "${hx_conf[max_workers]}" ]; then
			hx_log "$job: workers must be 1 to ${hx_conf[max_workers]} or per_core, not '$hx_req_workers'"
			return 1
		fi
	fi
	if [ "$hx_req_min_nodes" != all ] &&
		[[ ! $hx_req_min_nodes =~ ^[1-9][0-9]{0,5}$ ]]; then
		hx_log "$job: min_nodes must be a number of nodes or all, not '$hx_req_min_nodes'"
		return 1
	fi
	if [ -n "$hx_req_workbook" ]; then
		if [[ $hx_req_workbook != /* ]] || [ ${#hx_req_workbook} -gt 4096 ]; then
			hx_log "$job: workbook must be an absolute path: '$hx_req_workbook'"
			return 1
		fi
		# The workers open it as the profile's user: workbook_dirs keeps
		# a job from pointing them at any file that user may read. The
		# path is resolved first, so /books/../etc/x is not under /books.
		if [ -n "${hx_conf[workbook_dirs]}" ]; then
			real=$(realpath -m -- "$hx_req_workbook")
			ok=0
			hx_words "${hx_conf[workbook_dirs]}"
			for dir in "${hx_w[@]}"; do
				dir=${dir%/}
				[[ $real == "$dir"/* ]] && ok=1
			done
			if [ $ok -eq 0 ]; then
				hx_log "$job: workbook $hx_req_workbook is not under workbook_dirs (${hx_conf[workbook_dirs]})"
				return 1
			fi
		fi
	fi
	return 0
}

# hx_hpcxl ARGS...: runs hpcxl --json with ARGS, its report into hx_out and
# its exit status into hx_rc (0 every node succeeded, 1 some did not, 2
# usage or configuration); its stderr goes to the log.
hx_hpcxl() {
	local err line
	err=$(mktemp "${TMPDIR:-/tmp}/hpcxl-slurm.XXXXXX")
	hx_rc=0
	hx_out=$("${hx_conf[hpcxl]}" --json "$@" 2>"$err") || hx_rc=$?
	if [ -s "$err" ]; then
		while IFS= read -r line; do hx_log "hpcxl: $line"; done <"$err"
	fi
	rm -f "$err"
	if [ "$hx_rc" -eq 127 ] || [ "$hx_rc" -eq 126 ]; then
		hx_log "cannot run hpcxl ('${hx_conf[hpcxl]}')"
		hx_rc=2
	fi
}

# hx_rows FILTER: one line per node of the report in hx_out whose row
# matches the jq FILTER: "NAME<TAB>STATE<TAB>MESSAGE".
hx_rows() {
	jq -r ".nodes[]? | select($1) | [.name, .state,
		(.unhealthy // .msg // \"\" | gsub(\"[\\t\\n]\"; \" \"))] | @tsv" \
		<<<"$hx_out" 2>/dev/null || true
}

# hx_drain NODE REASON: drains NODE in Slurm with REASON (one line, cut
# short: Slurm shows reasons in sinfo -R; long ones help nobody there).
hx_drain() {
	local node=$1 reason=${2//[$'\t\n']/ }
	reason=${reason:0:200}
	hx_log "draining $node: $reason"
	if ! "${hx_conf[scontrol]}" update "nodename=$node" state=drain \
		"reason=$reason"; then
		hx_log "scontrol update nodename=$node state=drain failed"
		return 1
	fi
}

# hx_fail TEXT: logs "job N: TEXT" and exits 1 (what 1 means to Slurm
# depends on the hook and where it runs: each hook's header says).
hx_fail() {
	hx_log "job ${SLURM_JOB_ID:-?}: $*"
	exit 1
}

# hx_job_hook TAG: how prolog.sh and epilog.sh start: settings, where they
# run, the job's session id, into hx_session and hx_job.
hx_job_hook() {
	hx_tag=$1
	hx_setup || hx_fail "settings: see the messages above"
	hx_session_id || hx_fail "no session id"
	# shellcheck disable=SC2034 # for the hooks
	hx_job="job $SLURM_JOB_ID"
}

# hx_setup: settings, mode and the command checks every hook needs first.
hx_setup() {
	hx_conf_load || return 1
	hx_mode_detect || return 1
	if ! command -v jq >/dev/null; then
		hx_log "jq is not installed (apt install jq): cannot read hpcxl's reports"
		return 1
	fi
}
