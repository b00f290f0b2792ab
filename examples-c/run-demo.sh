#!/usr/bin/env bash
# The main job: build the library and the C CLI, start a local Kamailio
# registrar on loopback, register alice with digest auth, hold 3 s, dispose.
# Needs cargo (rustup); installs only what else the demo needs and is missing
# (make, a C compiler, Kamailio, python3) with apt-get, which needs root.
# The whole test-machine setup is tests/setup-machine.sh, not needed here.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || {
	echo "run-demo: cargo is required: install Rust with rustup (https://rustup.rs), then run again" >&2
	exit 1
}
need=()
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "run-demo: missing ${need[*]}: run 'sudo apt-get install ${need[*]}' (or run this script as root)" >&2
		exit 1
	fi
	echo "run-demo: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --quiet
make -s -C examples-c PROFILE=release
source tests/kamailio/ensure.sh
set -x
./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60 --hold 3
