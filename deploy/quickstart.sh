#!/usr/bin/env bash
# The hpcxl demo: a local "cluster" of three agents on loopback, each with a
# profile of xlsim (the stand-in for Excel; each worker forks a helper and
# leaves a setsid() grandchild behind, as badly behaved add-ins do), run as
# the user nobody. Agents and client talk mutual TLS with certificates of a
# throw-away CA (deploy/scripts/make-certs.sh). Opens a session of four
# workers per node, shows its status, closes it and prints the per-node
# report, then stops the agents and checks that no process of the session
# is left behind.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/deps.sh"

hpcxl_install_deps
hpcxl_build "$hpcxl_root/build" >/dev/null
bin=$hpcxl_root/build/bin
work=$(mktemp -d /tmp/hpcxl-demo.XXXXXX)
agents=()

# The workers run as nobody, which must be able to run xlsim wherever this
# checkout is (/root is closed to it): a copy goes where nobody can read it.
chmod 0755 "$work"
install -d -m 0755 "$work/bin"
install -m 0755 "$bin/xlsim" "$work/bin/xlsim"

# A CA, a certificate for the agents (they are all "localhost") and one for
# the client; the client finds its files in a client config file, whose
# relative names are read from its own folder.
bash "$hpcxl_root/deploy/scripts/make-certs.sh" --agent localhost \
	--client demo "$work/tls" >/dev/null
tls=$work/tls
printf '[client]\ntls_cert = tls/client-demo.pem\ntls_key = tls/client-demo.key\ntls_ca = tls/ca.pem\n' \
	>"$work/client.conf"
export HPCXL_CLIENT_CONFIG=$work/client.conf

stop_agents() {
	for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${agents[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_agents EXIT

# wait_for FILE: an agent writes its ready file once it listens.
wait_for() {
	for _ in $(seq 1 200); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	echo "hpcxl demo: agent did not start; see $work/*.log" >&2
	return 1
}

# The demo leaves nothing behind, even when it fails half-way: its agents
# close their sessions when stopped (--close-on-exit). The roster is a
# nodes file of "NAME URL" lines, so every row of a report is named. The
# agents listen on tls+tcp4://localhost:0: a free port, IPv4 whatever
# "localhost" resolves to first, and the name their certificate carries.
roster=$work/nodes
for n in 1 2 3; do
	node="demo-node$n"
	"$bin/hpcxl-agent" --node "$node" --listen tls+tcp4://localhost:0 \
		--tls-cert "$tls/agent-localhost.pem" \
		--tls-key "$tls/agent-localhost.key" --tls-ca "$tls/ca.pem" \
		--ready-file "$work/$node.url" --state-dir "$work/$node" \
		--stop-grace 5000 --close-on-exit --default-user nobody \
		--profile "excel=$work/bin/xlsim --children 1 --detach" \
		2>"$work/$node.log" &
	agents+=($!)
	wait_for "$work/$node.url"
	echo "$node $(head -n1 "$work/$node.url")" >>"$roster"
done
hpcxl() { "$bin/hpcxl" --nodes-file "$roster" "$@"; }
session="demo-$$"
echo "== agents (hpcxl --nodes-file $roster):"
cat "$roster"

echo "== hpcxl open-session --profile excel --workers 4 --session $session"
hpcxl open-session --profile excel --workers 4 --session "$session"
echo
echo "== hpcxl status $session"
hpcxl status "$session"
echo
echo "== hpcxl close-session $session --timeout 30000"
rc=0
hpcxl close-session "$session" --timeout 30000 || rc=$?
echo
echo "== closing again is safe: hpcxl --json close-session (every node: already_closed)"
hpcxl --json close-session "$session" --timeout 5000 || true
echo

stop_agents
trap - EXIT
left=$( (grep -lsz "HPCXL_SESSION=$session" /proc/[0-9]*/environ || true) | wc -l)
echo "== processes of $session left: $left"
rm -rf "$work"
[ "$left" -eq 0 ] && exit $rc
exit 1
