#!/usr/bin/env bash
# Instructions per answered OPTIONS ping in the endpoint (callgrind, the
# simulated network of tests/ping_cost.rs): repeatable to the instruction
# for one build, so it compares builds on a noisy machine where the CPU
# figure of examples/run-bench.sh --pings-only varies from run to run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
bin=$(cargo test --release --test ping_cost --no-run --message-format=json 2>/dev/null |
	python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "ping_cost":
        print(m["executable"])')
out=$(mktemp /tmp/ping-cost.XXXXXX)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --toggle-collect='*Endpoint>::datagram' --callgrind-out-file="$out" \
	"$bin" --ignored --test-threads 1 >/dev/null 2>&1
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "instructions per answered ping in Endpoint::datagram: $((total / 10000))"
