#!/usr/bin/env bash
# hpcxl Slurm prolog: opens the job's Excel session (slurm-$SLURM_JOB_ID)
# on the job's nodes, when the job asks for one.
#
#   slurm.conf:  PrologSlurmctld=/usr/local/lib/hpcxl/slurm/prolog.sh
#                (recommended: once per job, for all its nodes)
#   or:          Prolog=/usr/local/lib/hpcxl/slurm/prolog.sh
#                PrologFlags=Alloc (on each node, for that node)
#
# The request: the job's comment (sbatch --comment 'hpcxl:profile=excel,
# workers=4,workbook=/shared/book.xlsx'), else $HPCXL_SLURM_* in this
# script's environment, else /etc/hpcxl/slurm-hooks.conf
# ($HPCXL_SLURM_CONFIG), else the defaults; see README.md beside this file.
#
# Exit status, chosen per Slurm's rules (prolog_epilog.html, "Failure
# Handling"):
#
# As PrologSlurmctld, a non-zero exit requeues the job (a batch job) or
# cancels it (salloc/srun); no node is drained. So:
#   0  the session is open on the job's nodes (at least min_nodes), or the
#      job asked for none: the job starts.
#   1  the job asked for a session it cannot have: an invalid request, an
#      open that failed (hpcxl closed what it had opened again, so nothing
#      is left running), or hpcxl could not run. The job does not start
#      without the workers it asked for. A node whose agent is broken is
#      drained by healthcheck.sh, not here: one job's failure is no proof
#      against a node.
#
# As Prolog (on a node), a non-zero exit DRAINS that node and requeues the
# job held. So the node-level prolog fails only for what is the node's
# fault:
#   0  the session is open on this node, or the job asked for none, or the
#      job's request is invalid (a user's typo must not drain a node: it is
#      logged, and the job runs without workers; `hpcxl status
#      slurm-$SLURM_JOB_ID` in the job shows it).
#   1  the open failed on this node although the request was valid: its
#      agent is unreachable, unhealthy, or cannot start the profile's
#      workers (a missing program or user is the node's configuration), or
#      hpcxl cannot run here. Draining is then what this node needs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=hpcxl-slurm-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/hpcxl-slurm-lib.sh"
# A failure (hx_fail) exits 1, its meaning depending on where we run (above).
hx_job_hook hpcxl-prolog

if ! hx_request_parse; then
	# An invalid request: the job's fault, never the node's.
	[ "$hx_mode" = ctld ] && hx_fail "invalid hpcxl request: not started"
	hx_log "$hx_job: invalid hpcxl request: the job runs without a session"
	exit 0
fi
if [ "$hx_requested" -eq 0 ]; then
	exit 0
fi
hx_job_nodes || hx_fail "no nodes"

args=(--nodes "$hx_nodes" open-session --profile "$hx_req_profile"
	--session "$hx_session" --timeout "${hx_conf[open_timeout_ms]}")
if [ "$hx_req_workers" = per_core ]; then
	args+=(--per-core)
else
	args+=(--workers "$hx_req_workers")
fi
[ -n "$hx_req_workbook" ] && args+=(--workbook "$hx_req_workbook")
# On a node the roster is that node: a minimum of several makes no sense.
if [ "$hx_mode" = ctld ] && [ "$hx_req_min_nodes" != all ]; then
	args+=(--min-nodes "$hx_req_min_nodes")
fi

# A requeued job keeps its id: a session left by its last run (an epilog
# that could not close it) would make this open fail with "exists".
if [ "${SLURM_JOB_RESTART_COUNT:-0}" != 0 ]; then
	hx_hpcxl --nodes "$hx_nodes" close-session "$hx_session" \
		--timeout "${hx_conf[close_timeout_ms]}"
fi

hx_hpcxl "${args[@]}"
if [ "$hx_rc" -eq 0 ]; then
	hx_log "$hx_job: session $hx_session open: profile $hx_req_profile, workers $hx_req_workers, nodes $hx_nodes"
	exit 0
fi
while IFS=$'\t' read -r name state msg; do
	hx_log "$hx_job: $name: $state: $msg"
done < <(hx_rows '.state != "ok"')
hx_fail "cannot open session $hx_session on $hx_nodes (hpcxl exit $hx_rc)"
