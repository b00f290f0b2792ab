#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine (idempotent:
# a machine that has everything is left alone). Needs root for apt-get.
set -euo pipefail

need=()
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# TLS, WebSocket (and RFC 5626 outbound) support of the test registrar.
KMOD=/usr/lib/x86_64-linux-gnu/kamailio/modules
[ -f "$KMOD/tls.so" ] || need+=(kamailio-tls-modules)
[ -f "$KMOD/websocket.so" ] || need+=(kamailio-websocket-modules)
# RFC 3263 tests (tests/dns): a DNS server, dig, and ip netns.
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
	echo "setup: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Services must not start from package scripts (we run our own instances).
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

pip_need=()
python3 -c 'import pytest' >/dev/null 2>&1 || pip_need+=(pytest)
python3 -c 'import build' >/dev/null 2>&1 || pip_need+=(build)
python3 -c 'import mypy' >/dev/null 2>&1 || pip_need+=(mypy)
if [ "${#pip_need[@]}" -gt 0 ]; then
	echo "setup: installing ${pip_need[*]} (pip)"
	python3 -m pip install -q --disable-pip-version-check "${pip_need[@]}"
fi

if command -v rustup >/dev/null 2>&1; then
	for c in rustfmt clippy; do
		rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 || true
	done
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is required (install Rust with rustup)" >&2; exit 1; }
