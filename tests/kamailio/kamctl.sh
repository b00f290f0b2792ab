#!/usr/bin/env bash
# Control a test Kamailio registrar (see README.md).
#   kamctl.sh start <rundir> <port> [sha256|secure|secure,sha256|bench] [TLS WRONG WS WSS EXPIRED]
#     bench: sized for the benchmark (10 000+ contacts and connections)
#     natping: nathelper pings every registered contact with OPTIONS every 10 s
#     secure: also tls on TLS (127.0.0.1 and ::1), tls 1.2 only with a wrongly
#     named certificate on WRONG, ws on WS, wss on WSS and tls with an expired
#     certificate on EXPIRED; certificates are made in
#     <rundir>/certs (ca.pem is the trust anchor) and the ports are written to
#     <rundir>/ports (shell assignments)
#   kamctl.sh stop <rundir>
#   kamctl.sh lookup <rundir> <aor-without-scheme>
#   kamctl.sh dump <rundir>
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CFG="$SCRIPT_DIR/kamailio.cfg"

find_bin() {
	local name="$1" fallback="$2"
	if command -v "$name" >/dev/null 2>&1; then
		command -v "$name"
	elif [ -x "$fallback" ]; then
		echo "$fallback"
	else
		echo "kamctl.sh: $name not found (PATH or $fallback)" >&2
		exit 127
	fi
}

usage() {
	sed -n '2,6p' "$0" >&2
	exit 2
}

abspath() {
	mkdir -p "$1"
	(cd "$1" && pwd)
}

kamcmd_() {
	local rundir="$1"; shift
	"$(find_bin kamcmd /usr/sbin/kamcmd)" -s "unix:$rundir/kamailio_ctl" "$@"
}

cmd_start() {
	[ $# -ge 2 ] || usage
	local rundir port mode="${3:-}"
	rundir="$(abspath "$1")"
	port="$2"
	[[ "$port" =~ ^[0-9]+$ ]] || { echo "kamctl.sh: bad port '$port'" >&2; exit 2; }
	local kam
	kam="$(find_bin kamailio /usr/sbin/kamailio)"

	local -a defs=(-A "SIP_PORT=$port" -A "CTL_SOCK=\"unix:$rundir/kamailio_ctl\"")
	local m shm=64
	for m in ${mode//,/ }; do
		case "$m" in
			sha256|SHA256|SHA-256) defs+=(-A WITH_SHA256) ;;
			bench) defs+=(-A WITH_BENCH); shm=512 ;;
			natping) defs+=(-A WITH_NATPING) ;;
			secure)
				[ $# -ge 8 ] || { echo "kamctl.sh: secure needs TLS WRONG WS WSS EXPIRED ports" >&2; exit 2; }
				local tls="$4" wrong="$5" ws="$6" wss="$7" expired="$8"
				"$SCRIPT_DIR/mkcerts.sh" "$rundir/certs"
				cat >"$rundir/tls.cfg" <<-EOF
					[server:127.0.0.1:$wrong]
					method = TLSv1.2
					verify_certificate = no
					require_certificate = no
					certificate = $rundir/certs/wronghost.pem
					private_key = $rundir/certs/wronghost.key

					[server:127.0.0.1:$expired]
					method = TLSv1.2+
					verify_certificate = no
					require_certificate = no
					certificate = $rundir/certs/expired.pem
					private_key = $rundir/certs/expired.key

					[server:default]
					method = TLSv1.2+
					verify_certificate = no
					require_certificate = no
					certificate = $rundir/certs/server.pem
					private_key = $rundir/certs/server.key
				EOF
				printf 'SIP_PORT=%s\nTLS_PORT=%s\nTLS_WRONG_PORT=%s\nWS_PORT=%s\nWSS_PORT=%s\nTLS_EXPIRED_PORT=%s\n' \
					"$port" "$tls" "$wrong" "$ws" "$wss" "$expired" >"$rundir/ports"
				defs+=(-A WITH_SECURE -A "TLS_PORT=$tls" -A "TLS_WRONG_PORT=$wrong" -A "WS_PORT=$ws"
					-A "WSS_PORT=$wss" -A "TLS_EXPIRED_PORT=$expired" -A "TLS_CFG=\"$rundir/tls.cfg\"")
				;;
			*) echo "kamctl.sh: unknown mode '$m' (expected sha256, secure, bench, natping)" >&2; exit 2 ;;
		esac
	done

	if [ -f "$rundir/kamailio.pid" ] && kill -0 "$(cat "$rundir/kamailio.pid")" 2>/dev/null; then
		echo "kamctl.sh: already running in $rundir (pid $(cat "$rundir/kamailio.pid"))" >&2
		exit 1
	fi
	rm -f "$rundir/kamailio.pid" "$rundir/kamailio_ctl"

	# -DD -E: no daemonizing, log to stderr. Running as root is fine for loopback.
	"$kam" -f "$CFG" -DD -E -m "$shm" -M 8 -Y "$rundir" -P "$rundir/kamailio.pid" \
		"${defs[@]}" </dev/null >"$rundir/kamailio.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$rundir/kamailio.launcher.pid"

	local i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "kamctl.sh: kamailio exited during startup; log tail:" >&2
			tail -n 30 "$rundir/kamailio.log" >&2 || true
			exit 1
		fi
		if [ -S "$rundir/kamailio_ctl" ] && kamcmd_ "$rundir" core.uptime >/dev/null 2>&1; then
			echo "kamailio up on 127.0.0.1:$port udp+tcp${mode:+ ($mode)} pid $pid rundir $rundir"
			return 0
		fi
		sleep 0.1
	done
	echo "kamctl.sh: kamailio did not answer core.uptime within 10 s; log tail:" >&2
	tail -n 30 "$rundir/kamailio.log" >&2 || true
	kill "$pid" 2>/dev/null || true
	exit 1
}

# Direct children of a process, from /proc (no procps needed).
child_pids() {
	grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3 || true
}

# A process that is still running (a zombie holds no sockets: it counts as gone,
# whether or not anything reaps it).
is_alive() {
	local state
	state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Waits up to N tenths of a second until none of the pids is alive.
wait_gone() {
	local n="$1" i p any
	shift
	for ((i = 0; i < n; i++)); do
		any=0
		for p in "$@"; do is_alive "$p" && any=1; done
		[ "$any" -eq 0 ] && return 0
		sleep 0.1
	done
}

cmd_stop() {
	[ $# -ge 1 ] || usage
	local rundir="$1" pid=""
	if [ -s "$rundir/kamailio.pid" ]; then
		pid="$(cat "$rundir/kamailio.pid")"
	elif [ -s "$rundir/kamailio.launcher.pid" ]; then
		pid="$(cat "$rundir/kamailio.launcher.pid")"
	fi
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$rundir/kamailio.pid" "$rundir/kamailio.launcher.pid"
		echo "kamctl.sh: not running ($rundir)" >&2
		return 0
	fi
	# The workers hold the listening sockets: a worker outliving the main
	# process keeps a dead registrar's UDP port bound (no ICMP, no failover),
	# so the stop waits for every one of them, not only the main process.
	local workers p
	mapfile -t workers < <(child_pids "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	wait_gone 100 "$pid"
	kill -TERM "${workers[@]}" 2>/dev/null || true
	wait_gone 50 "$pid" "${workers[@]}"
	local alive=()
	for p in "$pid" "${workers[@]}"; do is_alive "$p" && alive+=("$p"); done
	if [ ${#alive[@]} -ne 0 ]; then
		echo "kamctl.sh: pids ${alive[*]} still alive, sending KILL" >&2
		kill -KILL "${alive[@]}" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$rundir/kamailio.pid" "$rundir/kamailio.launcher.pid" "$rundir/kamailio_ctl"
}

cmd_lookup() {
	[ $# -ge 2 ] || usage
	local out
	if ! out="$(kamcmd_ "$1" ul.lookup location "$2" 2>&1)"; then
		return 1
	fi
	# kamcmd prints errors like "error: 500 - AOR not found in location table" with exit status 0 in some versions
	if [ -z "$out" ] || [[ "${out,,}" == error:* ]]; then
		return 1
	fi
	printf '%s\n' "$out"
}

cmd_dump() {
	[ $# -ge 1 ] || usage
	kamcmd_ "$1" ul.dump
}

[ $# -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	lookup) cmd_lookup "$@" ;;
	dump) cmd_dump "$@" ;;
	*) usage ;;
esac
