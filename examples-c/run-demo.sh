#!/usr/bin/env bash
# The main job: build the library and the C CLI, start a local Kamailio
# registrar on loopback, register alice with digest auth, hold 3 s, dispose.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
cargo build --release --quiet
make -s -C examples-c PROFILE=release
source tests/kamailio/ensure.sh
set -x
./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60 --hold 3
