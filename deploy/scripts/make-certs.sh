#!/usr/bin/env bash
# make-certs.sh: a test certificate authority and the certificates hpcxl's
# mutual TLS needs (agents' and clients'), made with openssl.
#
# usage: make-certs.sh [--days N] [--ip ADDR]... [--agent HOST]...
#                      [--client ID]... [--expired-client ID]... DIR
#
#   DIR                  where everything goes (made if missing, mode 0700)
#   --agent HOST         agent-HOST.pem and agent-HOST.key: an agent
#                        certificate for HOST (CN = HOST, DNS SAN HOST, plus
#                        an IP SAN for each --ip), usable as a TLS server only
#   --ip ADDR            an IP SAN of every --agent certificate made by this
#                        run (e.g. --ip 127.0.0.1); nng 1.5.2 with mbedTLS 2.28
#                        matches DNS names only, so hpcxl URLs name agents by
#                        host name (tls+tcp://n01:7420): the IP SAN serves
#                        other clients
#   --client ID          client-ID.pem and client-ID.key: a client certificate
#                        (CN = ID), usable as a TLS client only
#   --expired-client ID  the same, but valid only during the two days before
#                        yesterday: a certificate an agent must refuse (tests)
#   --days N             validity of the certificates made (default 825)
#
# The CA is DIR/ca.pem (certificate: what agents and clients get as
# --tls-ca) and DIR/ca.key (its key: keep it off the nodes). It is made on the
# first run and reused by later runs on the same DIR, so certificates for new
# hosts or people can be added at any time. Keys are ECDSA P-256, written
# unencrypted with mode 0600 (the agent and the client read them at start).
#
# Examples:
#   make-certs.sh --agent n01 --agent n02 --client alice /root/hpcxl-pki
#   make-certs.sh --ip 127.0.0.1 --agent localhost --client ci /tmp/pki
#
# Then on node n01: /etc/hpcxl/tls/ca.pem (ca.pem), agent.pem (agent-n01.pem)
# and agent.key (agent-n01.key), as deploy/config/agent.ini names them; and for
# alice: tls_cert, tls_key and tls_ca in ~/.config/hpcxl/client.conf.
#
# This is a test and small-site CA: no revocation list, no intermediate CA.
set -euo pipefail

die() {
	echo "make-certs.sh: $*" >&2
	exit 2
}

# The header comment above is the usage.
usage() {
	sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}

days=825
ips=()
agents=()
clients=()
expired=()
dir=

while [ $# -gt 0 ]; do
	case $1 in
	--days) [ $# -ge 2 ] || usage; days=$2; shift 2 ;;
	--ip) [ $# -ge 2 ] || usage; ips+=("$2"); shift 2 ;;
	--agent) [ $# -ge 2 ] || usage; agents+=("$2"); shift 2 ;;
	--client) [ $# -ge 2 ] || usage; clients+=("$2"); shift 2 ;;
	--expired-client) [ $# -ge 2 ] || usage; expired+=("$2"); shift 2 ;;
	-h | --help) usage ;;
	-*) die "unknown option '$1'" ;;
	*) [ -z "$dir" ] || die "one DIR only ('$dir', then '$1')"; dir=$1; shift ;;
	esac
done
[ -n "$dir" ] || usage
[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || die "--days: '$days' is not 1 to 99999"

# Names end up in file names and in a certificate subject: keep them plain.
check_name() {
	[[ $2 =~ ^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$ ]] ||
		die "$1 '$2': use 1 to 63 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
}
for h in "${agents[@]}"; do check_name --agent "$h"; done
for c in "${clients[@]}" "${expired[@]}"; do check_name --client "$c"; done
for ip in "${ips[@]}"; do
	[[ $ip =~ ^[0-9a-fA-F:.]+$ ]] || die "--ip '$ip' is not an IP address"
done

umask 077
mkdir -p "$dir"
# openssl ca keeps its database here: every certificate it signed.
db=$dir/ca-db
mkdir -p "$db"
[ -f "$db/index.txt" ] || : >"$db/index.txt"
[ -f "$db/serial" ] || openssl rand -hex 16 >"$db/serial"

# The minimal configuration openssl ca needs; the extensions come per
# certificate (-extfile).
cat >"$db/ca.cnf" <<EOF
[ca]
default_ca = hpcxl_ca
[hpcxl_ca]
dir = $db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = hpcxl_policy
unique_subject = no
copy_extensions = none
[hpcxl_policy]
commonName = supplied
EOF

new_key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1" 2>/dev/null
}

make_ca() {
	[ -f "$dir/ca.pem" ] && [ -f "$dir/ca.key" ] && return 0
	new_key "$dir/ca.key"
	openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
		-subj "/CN=hpcxl test CA $(date -u +%Y%m%dT%H%M%SZ)" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$dir/ca.pem"
	echo "made $dir/ca.pem (CA certificate) and $dir/ca.key (CA key)"
}

# sign NAME CN EXTFILE [openssl ca validity options...]
sign() {
	local name=$1 cn=$2 ext=$3
	shift 3
	new_key "$dir/$name.key"
	openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" \
		-out "$db/$name.csr"
	openssl ca -batch -config "$db/ca.cnf" -notext -extfile "$ext" \
		-in "$db/$name.csr" -out "$dir/$name.pem" "$@" 2>/dev/null ||
		die "openssl ca could not sign $name"
	rm -f "$db/$name.csr"
	chmod 0644 "$dir/$name.pem"
	echo "made $dir/$name.pem and $dir/$name.key"
}

make_agent() {
	local host=$1 san="DNS:$1" ext=$db/agent.ext
	for ip in "${ips[@]}"; do san+=",IP:$ip"; done
	cat >"$ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = $san
EOF
	sign "agent-$host" "$host" "$ext" -days "$days"
}

client_ext() {
	cat >"$db/client.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = clientAuth
EOF
}

# openssl ca takes YYMMDDHHMMSSZ dates: from three days ago to yesterday.
make_expired_client() {
	local start end
	start=$(date -u -d '3 days ago' +%y%m%d%H%M%SZ)
	end=$(date -u -d '1 day ago' +%y%m%d%H%M%SZ)
	sign "client-$1" "$1" "$db/client.ext" -startdate "$start" -enddate "$end"
}

command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"
make_ca
chmod 0644 "$dir/ca.pem"
client_ext
for h in "${agents[@]}"; do make_agent "$h"; done
for c in "${clients[@]}"; do sign "client-$c" "$c" "$db/client.ext" -days "$days"; done
for c in "${expired[@]}"; do make_expired_client "$c"; done
