#!/usr/bin/env bash
# Side-by-side registration benchmark against one local Kamailio (bench mode:
# 8 children, usrloc hash for 10 000+ contacts, quiet log):
#   for N in BENCH_SIZES (default 1 1000 10000) and each of BENCH_TRANSPORTS
#   (default udp tcp; tls and wss too, against a second, secure Kamailio;
#   BENCH_PRIVATE=1 adds a row with a connection per account, i.e. one
#   handshake per registration, for each stream transport, for at most
#   BENCH_PRIVATE_N=100 accounts): sipreg (examples/bench.rs, counted from the first
#   sipreg_user_agent_new to the last Registered), then SIPp registering the same
#   users with digest auth at the rate sipreg achieved. The largest UDP run also
#   measures BENCH_IDLE seconds (default 60) of idle CPU with all registered.
# Before/after: BENCH_BASELINE (default 4106f5f, the code before the sans-IO
# endpoint; "none" skips it) is built from git into a temporary directory and
# its bench runs on the same registrar right before sipreg's, as the
# "sipreg-before" row, so one table compares the two builds in one run.
#   Then the contact answers: BENCH_PING_N (default: the largest size) accounts
#   registered over UDP to a third Kamailio whose nathelper pings every contact
#   with OPTIONS every 10 s, the library answering them; the CPU per ping over
#   BENCH_PINGS seconds (default 30; 0: no such row), all CPU of the period
#   counted (Kamailio and sipreg on separate cores when there are two).
# Options: --transport T (repeatable: udp tcp tls wss; same as BENCH_TRANSPORTS),
# --sizes "N ..." (same as BENCH_SIZES) and --pings-only (only the ping row).
# Before sipreg's row, for udp and tcp up to BENCH_FLOOR_MAX (10 000) accounts,
# two "floor" rows: examples/floor.rs sends the same messages with no SIP logic
# (the least a client pays here for them), unspaced and spaced 500 µs as the
# library's worker spaces its turns.
# Prints one table. Long: not part of CI (tests/run-all.sh runs BENCH_SIZES=10).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${BENCH_SIZES:-1 1000 10000}
pings_only=
transports=${BENCH_TRANSPORTS:-udp tcp}
chosen=""
while [ $# -gt 0 ]; do
	case "$1" in
	--transport) [ $# -ge 2 ] || { echo "--transport needs udp, tcp, tls or wss" >&2; exit 2; }
		case "$2" in udp | tcp | tls | wss) chosen="$chosen $2" ;;
		*) echo "--transport $2: use udp, tcp, tls or wss" >&2; exit 2 ;; esac
		shift 2 ;;
	--sizes) [ $# -ge 2 ] || { echo "--sizes needs a list of counts" >&2; exit 2; }
		sizes=$2; shift 2 ;;
	--pings-only) pings_only=1; shift ;;
	*) echo "unknown option $1 (--transport T, --sizes \"N ...\", --pings-only)" >&2; exit 2 ;;
	esac
done
[ -z "$chosen" ] || transports=${chosen# }
[ -n "${BENCH_NO_SETUP:-}" ] || bash tests/setup-machine.sh >/dev/null
cargo build --release --quiet --example bench --example floor
idle=${BENCH_IDLE:-60}
baseline=${BENCH_BASELINE:-4106f5f}
if [ -n "$pings_only" ]; then
	baseline=none
	BENCH_STORM_N=0
fi
largest=$(printf '%s\n' $sizes | sort -n | tail -1)

work="$(mktemp -d /tmp/sipreg-bench.XXXXXX)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tests/kamailio/kamctl.sh start "$work/kamailio" "$port" bench >&2
trap 'tests/kamailio/kamctl.sh stop "$work/kamailio" >/dev/null 2>&1 || true' EXIT

# tls and wss rows need a registrar that speaks them (and its CA).
case " $transports " in
*" tls "* | *" wss "*)
	read -r -a sp < <(python3 -c 'import random; print(*random.sample(range(20000, 32000), 6))')
	tests/kamailio/kamctl.sh start "$work/kamailio-secure" "${sp[0]}" bench,secure "${sp[@]:1:5}" >&2
	trap 'tests/kamailio/kamctl.sh stop "$work/kamailio" >/dev/null 2>&1 || true
		tests/kamailio/kamctl.sh stop "$work/kamailio-secure" >/dev/null 2>&1 || true' EXIT
	# shellcheck disable=SC1091
	source "$work/kamailio-secure/ports"
	;;
esac
# Where transport $1 registers, and the options it needs.
target() {
	case "$1" in
	tls) echo "--registrar sips:127.0.0.1:$TLS_PORT --ca-file $work/kamailio-secure/certs/ca.pem" ;;
	wss) echo "--registrar sip:127.0.0.1:$WSS_PORT;transport=wss --ca-file $work/kamailio-secure/certs/ca.pem" ;;
	*) echo "--registrar sip:127.0.0.1:$port" ;;
	esac
}

results="$work/results.txt"
: >"$results"
before=""
if [ "$baseline" != none ]; then
	echo "== building the baseline $baseline (release) for the before/after rows" >&2
	mkdir -p "$work/baseline"
	git archive "$baseline" | tar -x -C "$work/baseline"
	(cd "$work/baseline" && CARGO_TARGET_DIR="$work/baseline/target" cargo build --release --quiet --example bench)
	before="$work/baseline/target/release/examples/bench"
fi
# SIPp's own footprint with one call, subtracted from its peak RSS below.
python3 examples/bench/sipp_run.py "$port" udp 1 700000 10 "$(mktemp -d "$work/sipp.XXXX")" |
	sed 's/^RESULT impl=sipp/RESULT impl=sipp-base/' >>"$results"
first=100000
[ -z "$pings_only" ] || sizes=""
for n in $sizes; do
	for t in $transports; do
		first=$((first + n + 10))
		extra=()
		if [ "$n" = "$largest" ] && [ "$t" = udp ] && [ "$idle" -gt 0 ]; then
			extra=(--idle "$idle")
		fi
		if [ -n "$before" ]; then
			echo "== sipreg-before ($baseline) n=$n $t" >&2
			# shellcheck disable=SC2046
			"$before" --n "$n" --transport "$t" $(target "$t") --first-user "$first" |
				tee /dev/stderr | grep '^RESULT' | sed 's/^RESULT impl=sipreg /RESULT impl=sipreg-before /' >>"$results" || true
			first=$((first + n + 10))
		fi
		if { [ "$t" = udp ] || [ "$t" = tcp ]; } && [ "$n" -le "${BENCH_FLOOR_MAX:-10000}" ]; then
			# The wire floor: the same messages with no SIP logic, unspaced and
			# spaced as the library's worker spaces its turns (examples/floor.rs).
			# Up to BENCH_FLOOR_MAX (10 000) accounts: each row leaves its
			# contacts registered, and four more rows of 100 000 exhaust the
			# registrar's shared memory for the rows after them.
			for spacing in 0 500; do
				first=$((first + n + 10))
				echo "== floor n=$n $t spacing ${spacing} us" >&2
				./target/release/examples/floor --n "$n" --transport "$t" --registrar "sip:127.0.0.1:$port" \
					--first-user "$first" --spacing-us "$spacing" | tee /dev/stderr |
					sed "s/^RESULT impl=floor /RESULT impl=floor-$spacing /" | grep '^RESULT' >>"$results" || true
			done
			first=$((first + n + 10))
		fi
		echo "== sipreg n=$n $t" >&2
		# shellcheck disable=SC2046
		./target/release/examples/bench --n "$n" --transport "$t" $(target "$t") \
			--first-user "$first" "${extra[@]}" |
			tee /dev/stderr | grep '^RESULT' >>"$results" || true
		if [ -n "${BENCH_PRIVATE:-}" ] && [ "$t" != udp ]; then
			# One connection, so one TCP/TLS/WebSocket handshake, per account. At most
			# BENCH_PRIVATE_N (100) accounts: Kamailio 5.6.3's tls module crashes
			# (double free in its OpenSSL allocator) under hundreds of new TLS
			# connections at once, which would measure the peer, not us.
			pn=$((n < ${BENCH_PRIVATE_N:-100} ? n : ${BENCH_PRIVATE_N:-100}))
			first=$((first + n + 10))
			echo "== sipreg n=$pn $t, a connection per account" >&2
			# shellcheck disable=SC2046
			./target/release/examples/bench --n "$pn" --transport "$t" $(target "$t") --private \
				--first-user "$first" | tee /dev/stderr | grep '^RESULT' >>"$results" || true
		fi
		if [ "$t" = tls ] || [ "$t" = wss ]; then
			echo "== no SIPp row for $t (Debian's sipp is built without TLS and WebSocket)" >&2
			continue
		fi
		rate=$(grep "impl=sipreg transport=$t n=$n " "$results" | tail -1 | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
		echo "== sipp n=$n $t at ${rate:-1000}/s" >&2
		python3 examples/bench/sipp_run.py "$port" "$t" "$n" "$first" "${rate:-1000}" \
			"$(mktemp -d "$work/sipp.XXXX")" | tee /dev/stderr >>"$results" || true
	done
done
# The storm row: BENCH_STORM_N (default 1 000; 0 skips) registerers over TCP
# against a server that answers every REGISTER with a 200 and closes the
# connection; the server counts what reaches it in BENCH_STORM_S (60) seconds.
storm_n=${BENCH_STORM_N:-1000}
if [ "$storm_n" -gt 0 ]; then
	storm_s=${BENCH_STORM_S:-60}
	sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	echo "== storm: $storm_n registerers against a server closing after every 200, ${storm_s} s" >&2
	python3 examples/bench/closing_registrar.py "$sport" "$storm_s" >"$work/storm.txt" &
	storm_pid=$!
	sleep 0.5
	./target/release/examples/bench --n "$storm_n" --transport tcp \
		--registrar "sip:127.0.0.1:$sport;transport=tcp" --first-user 900000 --idle "$storm_s" >/dev/null 2>&1 || true
	wait "$storm_pid" || true
	grep '^RESULT' "$work/storm.txt" | sed "s/\$/ n=$storm_n/" >>"$results" || true
fi
pings=${BENCH_PINGS:-30}
if [ "$pings" -gt 0 ]; then
	ping_n=${BENCH_PING_N:-$largest}
	ping_port=$(python3 tests/kamailio/free-ports.py 1)
	# On loopback the sender pays for delivering into the receiver's socket and
	# waking it: with two cores or more, Kamailio and sipreg get one each, so
	# the registrar's wake-ups do not preempt (and bill) the measured process.
	pin_peer=() pin_us=()
	if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
		pin_peer=(taskset -c 1) pin_us=(taskset -c 0)
	fi
	"${pin_peer[@]}" tests/kamailio/kamctl.sh start "$work/kamailio-ping" "$ping_port" bench,natping >&2
	trap 'for d in kamailio kamailio-secure kamailio-ping; do tests/kamailio/kamctl.sh stop "$work/$d" >/dev/null 2>&1 || true; done' EXIT
	echo "== sipreg n=$ping_n udp, OPTIONS pings from the registrar for ${pings}s" >&2
	"${pin_us[@]}" ./target/release/examples/bench --n "$ping_n" --registrar "sip:127.0.0.1:$ping_port" \
		--first-user 500000 --expires 3600 --pings "$pings" |
		tee /dev/stderr | grep -E '^(RESULT|PING)' | grep '^PING' >>"$results" || true
fi
python3 examples/bench/table.py "$results"
echo "raw results: $results" >&2
