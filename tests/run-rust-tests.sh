#!/usr/bin/env bash
# Builds every Rust test binary (debug) and runs them all at once, then the
# doc tests. The peer tests (Kamailio, SIPp, relays) spend most of their time
# waiting for their peers and assert outcomes, never durations, so they share
# the cores with the CPU-bound simulated-clock and property tests instead of
# queueing behind them as `cargo test` would. Each binary's output is kept in
# a file and printed whole when it failed; its "test result" line otherwise.
# Extra arguments go to every test binary (e.g. a name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

logs="$(mktemp -d /tmp/sipreg-rust-tests.XXXXXX)"
trap 'rm -rf "$logs"' EXIT

# name<TAB>executable of each test binary, from cargo's build messages.
list="$(cargo test --no-run --quiet --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["kind"][0] + ":" + m["target"]["name"] + "\t" + m["executable"])
')"

names=()
pids=()
while IFS=$'\t' read -r name exe; do
	[ -n "$name" ] || continue
	"$exe" --test-threads=4 "$@" >"$logs/$name.log" 2>&1 &
	names+=("$name")
	pids+=($!)
done <<<"$list"

failed=()
for i in "${!pids[@]}"; do
	name="${names[$i]}"
	if wait "${pids[$i]}"; then
		echo "$name: $(grep -h '^test result' "$logs/$name.log" | tail -n1)"
	else
		echo "---- $name FAILED:"
		cat "$logs/$name.log"
		failed+=("$name")
	fi
done
cargo test --doc --quiet -- "$@"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "Rust test binaries failed: ${failed[*]}" >&2
	exit 1
fi
