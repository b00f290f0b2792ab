#!/usr/bin/env bash
# RFC 3263 (NAPTR/SRV/A) resolution and failover tests against real peers.
# Creates a network namespace of its own (unique name per run, own loopback,
# /etc/netns/<name>/resolv.conf -> 127.0.0.1), runs tests/dns/test_dns.py in it
# with `ip netns exec` (that module starts dnsmasq, Kamailio and SIPp inside),
# then kills what is left in the namespace by PID and deletes it.
# Without the right to create namespaces it says so and skips (exit 0), unless
# SIPREG_REQUIRE_NETNS=1, which makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIB="${SIPREG_LIBRARY:-$ROOT/target/debug/libsipreg.so}"
[ -f "$LIB" ] || cargo build --quiet

NS="sipreg-dns-$$-$RANDOM"
if ! err=$(ip netns add "$NS" 2>&1); then
	echo "SKIP tests/dns: cannot create a network namespace ($err): the RFC 3263 tests did NOT run" >&2
	[ "${SIPREG_REQUIRE_NETNS:-0}" = 1 ] && exit 1
	exit 0
fi
cleanup() {
	local pid
	for pid in $(ip netns pids "$NS" 2>/dev/null); do
		kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.3
	for pid in $(ip netns pids "$NS" 2>/dev/null); do
		echo "tests/dns: pid $pid still in $NS, killing" >&2
		kill -KILL "$pid" 2>/dev/null || true
	done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "/etc/netns/$NS"
}
trap cleanup EXIT

ip netns exec "$NS" ip link set lo up
# glibc's AI_ADDRCONFIG ignores 127.0.0.1 when deciding whether IPv4 is
# configured; a second loopback address keeps tools like getent working.
ip netns exec "$NS" ip addr add 127.0.0.2/32 dev lo
mkdir -p "/etc/netns/$NS"
echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"

ip netns exec "$NS" env SIPREG_IN_NETNS=1 SIPREG_LIBRARY="$LIB" \
	python3 -m pytest -q -s -p no:cacheprovider tests/dns "$@"
