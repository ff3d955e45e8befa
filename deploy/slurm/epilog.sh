#!/usr/bin/env bash
# hpcxl Slurm epilog: closes the job's Excel session (slurm-$SLURM_JOB_ID)
# on the job's nodes: every process of it ends (SIGTERM, grace, then the
# kill of the session's cgroup) before the nodes take their next job.
#
#   slurm.conf:  EpilogSlurmctld=/usr/local/lib/hpcxl/slurm/epilog.sh
#   or:          Epilog=/usr/local/lib/hpcxl/slurm/epilog.sh
#
# It closes the session of every job that asked for one (the same reading
# of the comment and settings as prolog.sh; an invalid request counts as
# asked: closing a session that was never opened is harmless,
# "already_closed"). A job that asked for none costs nothing.
#
# Exit status, per Slurm's rules (prolog_epilog.html, "Failure Handling"):
#
# As EpilogSlurmctld, Slurm only logs a non-zero exit. So this script
# drains, itself, each node where the session may still run
# (drain_on_close_failure = yes, the default): the node's next job would
# otherwise share it with the leftovers of this one.
#   0  the session is closed (or was never there) on every node of the job.
#   1  some node did not close it: partial (processes survived the kill),
#      failed, unreachable (then it may still run there); those nodes
#      were drained when drain_on_close_failure = yes.
#
# As Epilog (on a node), a non-zero exit DRAINS that node, which is what a
# node with leftovers needs:
#   0  the session is closed (or was never there) on this node.
#   1  it is not: the agent left processes, failed, or did not answer (so
#      nothing says the workers are gone). Slurm drains the node.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=hpcxl-slurm-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/hpcxl-slurm-lib.sh"
hx_job_hook hpcxl-epilog

# An invalid request still closes: its prolog may have run with other
# settings; closing what is not there is cheap and harmless.
hx_request_parse || hx_requested=1
[ "$hx_requested" -eq 1 ] || exit 0
hx_job_nodes || hx_fail "no nodes"

hx_hpcxl --nodes "$hx_nodes" close-session "$hx_session" \
	--timeout "${hx_conf[close_timeout_ms]}"
if [ "$hx_rc" -eq 0 ]; then
	hx_log "$hx_job: session $hx_session closed on $hx_nodes"
	exit 0
fi
if [ "$hx_rc" -eq 2 ]; then
	# hpcxl did not run: no node was asked, so none is known to be dirty.
	hx_fail "hpcxl could not close $hx_session (see above): nothing was asked"
fi
drained=0
while IFS=$'\t' read -r name state msg; do
	hx_log "$hx_job: $name: $state: $msg"
	if [ "$hx_mode" = ctld ] && [ "${hx_conf[drain_on_close_failure]}" = yes ]; then
		hx_drain "$name" "hpcxl: $hx_session not closed: $state: $msg" ||
			true
		drained=$((drained + 1))
	fi
done < <(hx_rows '.state != "closed" and .state != "already_closed"')
hx_fail "session $hx_session not closed everywhere (hpcxl exit $hx_rc; $drained node(s) drained)"
