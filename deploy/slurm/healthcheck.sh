#!/usr/bin/env bash
# hpcxl Slurm health check: pings this node's agent (`hpcxl ping`) and
# drains the node in Slurm, with the reason, when the agent does not answer
# or reports itself unhealthy (processes of a closed session survived every
# kill: it refuses new sessions until `hpcxl clear-unhealthy`).
#
#   slurm.conf:  HealthCheckProgram=/usr/local/lib/hpcxl/slurm/healthcheck.sh
#                HealthCheckInterval=60
#
# slurmd runs it as root on every node. Which agent: local_node in
# /etc/hpcxl/slurm-hooks.conf, default this host's short name through the
# client's URL template (which needs a client certificate on the node), or
# the agent's local socket, e.g. ipc:///var/lib/hpcxl/agent.sock (no
# certificate: root may open it; add that listen line to agent.ini).
# Slurm's name of the node: slurm_node, default $SLURMD_NODENAME, else
# `hostname -s`.
#
# It never resumes a node: whoever clears the cause (`hpcxl
# clear-unhealthy`, the agent restarted) resumes it: `scontrol update
# nodename=NODE state=resume`.
#
# Exit status (slurmd does not act on it; it is for people and tests):
#   0  the agent answered and is healthy;
#   1  it is not, or did not answer: the node was drained (or scontrol
#      failed, said on stderr and in syslog);
#   2  the check could not run (settings, hpcxl's own configuration such as
#      a missing certificate, jq missing): nothing is drained, since a
#      broken check says nothing about the node.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=hpcxl-slurm-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/hpcxl-slurm-lib.sh"
hx_tag=hpcxl-healthcheck

hx_setup || exit 2
target=$(hx_local_node)
node=$(hx_slurm_node)

hx_hpcxl --nodes "$target" ping --timeout "${hx_conf[ping_timeout_ms]}"
if [ "$hx_rc" -eq 2 ]; then
	hx_log "cannot ping $target: hpcxl's settings (see above); not draining $node"
	exit 2
fi
# Reads the report, not only the exit status: exit 1 also covers a node
# that answered but is unhealthy, and the reason differs. A row is fine
# when the agent answered ("ok") and carries no unhealthy mark.
reasons=()
while IFS=$'\t' read -r _ state msg; do
	if [ "$state" = ok ]; then
		reasons+=("hpcxl agent unhealthy: $msg")
	else
		reasons+=("hpcxl agent $state: $msg")
	fi
done < <(hx_rows '.state != "ok" or .healthy != true')
if [ "${#reasons[@]}" -eq 0 ] && [ "$hx_rc" -ne 0 ]; then
	# A report that could not be read: say so rather than pass.
	reasons+=("hpcxl ping failed (exit $hx_rc) with no report")
fi
[ "${#reasons[@]}" -eq 0 ] && exit 0
reason=$(printf '%s; ' "${reasons[@]}")
hx_drain "$node" "${reason%; }" || true
exit 1
