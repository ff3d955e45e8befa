#!/usr/bin/env bash
# The Slurm hooks (deploy/slurm/) against real agents, with a fake Slurm:
# the hooks run as Slurm runs them (an empty environment but for SLURM_*
# variables, no PATH), the job's nodes are a Slurm host list of two loopback
# addresses that the URL template turns into the agents' URLs, and scontrol
# is a script that writes down what it was asked.
#
#   prolog/epilog as PrologSlurmctld/EpilogSlurmctld: the session opens on
#   both nodes with the comment's profile and workers, and is gone (no
#   process left) after the epilog; a job that asks for nothing gets
#   nothing; invalid requests fail the job; an open that fails on one node
#   leaves nothing on the others; a close that fails on a node drains it;
#   request = all with the defaults and $HPCXL_SLURM_WORKERS; a requeued
#   job's stale session is replaced.
#   as Prolog/Epilog (node level): this node only; an invalid request does
#   not fail (that would drain the node), an unreachable agent does.
#   healthcheck.sh: healthy, unhealthy (the mark in the agent's state),
#   unreachable, and a broken configuration that drains nothing.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

slurm=$ops_src/deploy/slurm
ops_pair_start a b || {
	echo "FAIL: agents did not start"
	exit 1
}
url_a=tcp://$ops_host1:$ops_port
url_b=tcp://$ops_host2:$ops_port
# The job's nodes, as Slurm writes them: a.b.c.[11-12].
net=${ops_host1%.*}
nodelist="$net.[11-12]"
dead=$net.13 # nothing listens there: connection refused

cat >"$ops_tmp/scontrol" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$ops_tmp/scontrol.log"
EOF
chmod +x "$ops_tmp/scontrol"
: >"$ops_tmp/scontrol.log"

# write_conf FILE [LINE...]: hook settings for these agents, plus LINEs.
write_conf() {
	local f=$1
	shift
	{
		echo "hpcxl = $HPCXL_BIN_DIR/hpcxl"
		echo "scontrol = $ops_tmp/scontrol"
		echo "url_template = tcp://%h:$ops_port # the nodes' URLs"
		echo "profile = xl"
		echo "allowed_profiles = xl, xl-children"
		echo "open_timeout_ms = 5000"
		echo "close_timeout_ms = 4000"
		echo "ping_timeout_ms = 2000"
		echo "syslog = no"
		printf '%s\n' "$@"
	} >"$f"
}
conf=$ops_tmp/hooks.conf
write_conf "$conf"

# hook SCRIPT CONTEXT JOB [VAR=VALUE...]: runs a hook as Slurm would.
hook() {
	local script=$1 ctx=$2 job=$3
	shift 3
	env -i HPCXL_SLURM_CONFIG="${HOOK_CONF:-$conf}" \
		SLURM_SCRIPT_CONTEXT="$ctx" SLURM_JOB_ID="$job" "$@" \
		"$slurm/$script"
}

# Job ids of this run (the sessions' processes are found machine-wide).
jobbase=$((($$ % 100000) * 100))
job() { echo $((jobbase + $1)); }
session() { echo "slurm-$(job "$1")"; }

no_session_on() { [ "$(ops_workers_of "$1" "$2")" -eq 0 ]; }
scontrol_calls() { wc -l <"$ops_tmp/scontrol.log"; }

# ---- A: PrologSlurmctld + EpilogSlurmctld, the comment's request ------------
j=$(job 1)
s=$(session 1)
ops_track "$s"
ops_expect_rc 0 "A: ctld prolog opens $s" hook prolog.sh prolog_slurmctld "$j" \
	SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT="nightly run hpcxl:profile=xl-children,workers=2"
ops_check "A: node a runs 2 workers of $s" \
	[ "$(ops_workers_of "$url_a" "$s")" -eq 2 ]
ops_check "A: node b runs 2 workers of $s" \
	[ "$(ops_workers_of "$url_b" "$s")" -eq 2 ]
ops_check "A: the profile is the comment's (xl-children)" \
	[ "$(ops_status "$url_a" "$s" | jq -r '.nodes[0].sessions[0].profile')" = xl-children ]
# xl-children: each worker forks two helpers, 3 processes a worker.
ops_check "A: 12 processes of $s run" ops_wait_until 10000 ops_procs_are "$s" 12
ops_expect_rc 0 "A: ctld epilog closes $s" hook epilog.sh epilog_slurmctld "$j" \
	SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT="nightly run hpcxl:profile=xl-children,workers=2"
ops_check "A: no process of $s is left" ops_wait_until 5000 ops_procs_are "$s" 0
ops_check "A: node a no longer has $s" no_session_on "$url_a" "$s"
ops_check "A: node b no longer has $s" no_session_on "$url_b" "$s"
ops_check "A: nothing was drained" [ "$(scontrol_calls)" -eq 0 ]

# ---- B: a job that asks for nothing ---------------------------------------
j=$(job 2)
s=$(session 2)
ops_expect_rc 0 "B: prolog of a job without hpcxl in its comment" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT="hpcxlnot a request"
ops_check "B: nothing opened on a" no_session_on "$url_a" "$s"
ops_check "B: nothing opened on b" no_session_on "$url_b" "$s"
ops_expect_rc 0 "B: its epilog" hook epilog.sh epilog_slurmctld "$j" \
	SLURM_JOB_NODELIST="$nodelist"

# ---- C: invalid requests ----------------------------------------------------
j=$(job 3)
s=$(session 3)
for bad in "hpcxl:profile=secret" "hpcxl:workers=0" "hpcxl:workers=two" \
	"hpcxl:color=red" "hpcxl:workbook=relative.xlsx" "hpcxl:workers" \
	"hpcxl hpcxl:workers=2" "hpcxl:profile=../x"; do
	ops_expect_rc 1 "C: ctld prolog refuses '$bad'" hook prolog.sh \
		prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
		SLURM_JOB_COMMENT="$bad"
done
# The last one's reason: profile=../x.
ops_grep "C: the reason is said" "profile '../x' is not allowed" "$ops_tmp/err"
ops_expect_rc 0 "C: node prolog does not fail (drain) for a bad request" \
	hook prolog.sh prolog_slurmd "$j" SLURMD_NODENAME="$ops_host1" \
	SLURM_JOB_COMMENT="hpcxl:profile=secret"
ops_grep "C: ... but says why" "runs without a session" "$ops_tmp/err"
ops_check "C: nothing opened on a" no_session_on "$url_a" "$s"
ops_check "C: nothing opened on b" no_session_on "$url_b" "$s"
write_conf "$ops_tmp/dirs.conf" "workbook_dirs = $ops_tmp/books"
mkdir -p "$ops_tmp/books"
HOOK_CONF=$ops_tmp/dirs.conf ops_expect_rc 1 \
	"C: a workbook outside workbook_dirs (../) is refused" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT="hpcxl:workbook=$ops_tmp/books/../secret.xlsx"
write_conf "$ops_tmp/typo.conf" "workers_max = 3"
HOOK_CONF=$ops_tmp/typo.conf ops_expect_rc 1 \
	"C: an unknown setting fails the ctld prolog" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT=hpcxl
ops_grep "C: ... naming file:line" "typo.conf:10: unknown setting 'workers_max'" \
	"$ops_tmp/err"

# ---- D: an open that fails on one node leaves nothing on the others ---------
j=$(job 4)
s=$(session 4)
ops_track "$s"
ops_expect_rc 1 "D: ctld prolog fails when a node is unreachable" \
	hook prolog.sh prolog_slurmctld "$j" \
	SLURM_JOB_NODELIST="$net.[11-13]" SLURM_JOB_COMMENT=hpcxl
ops_grep "D: the unreachable node is named" "$dead: unreachable" "$ops_tmp/err"
ops_check "D: no session left on a" no_session_on "$url_a" "$s"
ops_check "D: no session left on b" no_session_on "$url_b" "$s"
ops_check "D: no process of $s left" ops_wait_until 10000 ops_procs_are "$s" 0
ops_check "D: the prolog drained nothing" [ "$(scontrol_calls)" -eq 0 ]

# ---- E: Prolog/Epilog on a node: that node only -----------------------------
j=$(job 5)
s=$(session 5)
ops_track "$s"
ops_expect_rc 0 "E: node prolog opens $s on its node" hook prolog.sh \
	prolog_slurmd "$j" SLURMD_NODENAME="$ops_host1" SLURM_JOB_COMMENT=hpcxl
ops_check "E: a runs 1 worker" [ "$(ops_workers_of "$url_a" "$s")" -eq 1 ]
ops_check "E: b runs none" no_session_on "$url_b" "$s"
ops_expect_rc 0 "E: node epilog closes it" hook epilog.sh epilog_slurmd "$j" \
	SLURMD_NODENAME="$ops_host1" SLURM_JOB_COMMENT=hpcxl
ops_check "E: no process of $s left" ops_wait_until 5000 ops_procs_are "$s" 0
ops_expect_rc 1 "E: node prolog fails (drains) when its agent is unreachable" \
	hook prolog.sh prolog_slurmd "$j" SLURMD_NODENAME="$dead" \
	SLURM_JOB_COMMENT=hpcxl
ops_expect_rc 1 "E: so does the node epilog" hook epilog.sh epilog_slurmd \
	"$j" SLURMD_NODENAME="$dead" SLURM_JOB_COMMENT=hpcxl
ops_check "E: node hooks leave draining to Slurm" [ "$(scontrol_calls)" -eq 0 ]

# ---- F: EpilogSlurmctld drains the node that did not close -------------------
j=$(job 6)
s=$(session 6)
ops_track "$s"
ops_expect_rc 0 "F: ctld prolog opens $s on a and b" hook prolog.sh \
	prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" SLURM_JOB_COMMENT=hpcxl
ops_expect_rc 1 "F: ctld epilog on a, b and an unreachable node" \
	hook epilog.sh epilog_slurmctld "$j" SLURM_JOB_NODELIST="$net.[11-13]" \
	SLURM_JOB_COMMENT=hpcxl
ops_check "F: closed on a and b all the same" ops_wait_until 5000 ops_procs_are "$s" 0
ops_check "F: one node drained" [ "$(scontrol_calls)" -eq 1 ]
ops_grep "F: ... the unreachable one, with the reason" \
	"^update nodename=$dead state=drain reason=hpcxl: $s not closed: unreachable: " \
	"$ops_tmp/scontrol.log"
write_conf "$ops_tmp/nodrain.conf" "drain_on_close_failure = no"
HOOK_CONF=$ops_tmp/nodrain.conf ops_expect_rc 1 \
	"F: drain_on_close_failure = no: the epilog only fails" \
	hook epilog.sh epilog_slurmctld "$j" SLURM_JOB_NODELIST="$dead" \
	SLURM_JOB_COMMENT=hpcxl
ops_check "F: ... and drains nothing" [ "$(scontrol_calls)" -eq 1 ]

# ---- G: request = all, the defaults, $HPCXL_SLURM_WORKERS --------------------
j=$(job 7)
s=$(session 7)
ops_track "$s"
write_conf "$ops_tmp/all.conf" "request = all" "workers = 1"
HOOK_CONF=$ops_tmp/all.conf ops_expect_rc 0 \
	"G: request = all opens for a job without a comment" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	HPCXL_SLURM_WORKERS=3
ops_check "G: \$HPCXL_SLURM_WORKERS over the file: 3 workers on a" \
	[ "$(ops_workers_of "$url_a" "$s")" -eq 3 ]
ops_check "G: ... and on b" [ "$(ops_workers_of "$url_b" "$s")" -eq 3 ]
HOOK_CONF=$ops_tmp/all.conf ops_expect_rc 0 "G: its epilog closes it" \
	hook epilog.sh epilog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist"
ops_check "G: no process of $s left" ops_wait_until 5000 ops_procs_are "$s" 0

# ---- H: a requeued job whose last run left its session -----------------------
j=$(job 8)
s=$(session 8)
ops_track "$s"
"$HPCXL_BIN_DIR/hpcxl" --nodes "$url_a,$url_b" open-session --profile xl \
	--workers 1 --session "$s" --timeout 5000 >/dev/null
ops_expect_rc 1 "H: a stale session makes the first run's prolog fail" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT=hpcxl:workers=2
ops_expect_rc 0 "H: the requeued run's prolog replaces it" \
	hook prolog.sh prolog_slurmctld "$j" SLURM_JOB_NODELIST="$nodelist" \
	SLURM_JOB_COMMENT=hpcxl:workers=2 SLURM_JOB_RESTART_COUNT=1
ops_check "H: the new session has the new run's 2 workers" \
	[ "$(ops_workers_of "$url_a" "$s")" -eq 2 ]
ops_expect_rc 0 "H: epilog" hook epilog.sh epilog_slurmctld "$j" \
	SLURM_JOB_NODELIST="$nodelist" SLURM_JOB_COMMENT=hpcxl:workers=2
ops_check "H: no process of $s left" ops_wait_until 5000 ops_procs_are "$s" 0

# ---- healthcheck.sh ---------------------------------------------------------
# The agent's local socket, as the README suggests for nodes.
sock=ipc://$ops_tmp/c.sock
ops_agent_start c "$sock" || {
	echo "FAIL: agent c did not start"
	exit 1
}
slurm_node=node-$$
write_conf "$ops_tmp/health.conf" "local_node = $sock" \
	"slurm_node = $slurm_node"
health() {
	HOOK_CONF=$ops_tmp/health.conf hook healthcheck.sh "" 0
}
: >"$ops_tmp/scontrol.log"
ops_expect_rc 0 "health: a healthy agent passes" health
ops_check "health: ... and nothing is drained" [ "$(scontrol_calls)" -eq 0 ]

# The unhealthy mark as the agent stores it (agent/state.c), for this boot;
# a restarted agent reads it back.
ops_agent_stop c
printf '{"boot_id": "%s", "reason": "2 processes of session x survived"}\n' \
	"$(cat /proc/sys/kernel/random/boot_id)" \
	>"$ops_tmp/agent-c/state/unhealthy"
ops_agent_spawn c || exit 1
ops_expect_rc 1 "health: an unhealthy agent fails" health
ops_grep "health: ... and drains the node with the agent's reason" \
	"^update nodename=$slurm_node state=drain reason=hpcxl agent unhealthy: 2 processes of session x survived$" \
	"$ops_tmp/scontrol.log"

ops_agent_stop c
: >"$ops_tmp/scontrol.log"
ops_expect_rc 1 "health: an agent that does not answer fails" health
ops_grep "health: ... and drains the node" \
	"^update nodename=$slurm_node state=drain reason=hpcxl agent unreachable: " \
	"$ops_tmp/scontrol.log"

: >"$ops_tmp/scontrol.log"
write_conf "$ops_tmp/badhealth.conf" "local_node = $sock" \
	"slurm_node = $slurm_node" "hpcxl = $ops_tmp/no-such-hpcxl"
HOOK_CONF=$ops_tmp/badhealth.conf ops_expect_rc 2 \
	"health: a check that cannot run exits 2" hook healthcheck.sh "" 0
ops_check "health: ... and drains nothing" [ "$(scontrol_calls)" -eq 0 ]

ops_done
