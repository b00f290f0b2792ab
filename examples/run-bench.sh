#!/usr/bin/env bash
# Runs the registration benchmark for N=1, 100, 1000 against a local Kamailio.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
cargo build --release --quiet --example bench
source tests/kamailio/ensure.sh
for n in ${BENCH_SIZES:-1 100 1000}; do
	for t in ${BENCH_TRANSPORTS:-udp tcp}; do
		./target/release/examples/bench --n "$n" --transport "$t" \
			--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --first-user $((200000 + n * 10 + ${#t}))
		echo
	done
done
