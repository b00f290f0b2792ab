#!/usr/bin/env bash
# Sourced by the test and demo scripts: makes sure a Kamailio registrar runs on
# loopback and exports SIPREG_KAMAILIO_PORT / SIPREG_KAMAILIO_RUNDIR. Starts one
# (and stops it on exit) only when none was exported by the caller.
if [ -z "${SIPREG_KAMAILIO_PORT:-}" ]; then
	_kdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	SIPREG_KAMAILIO_RUNDIR="$(mktemp -d /tmp/sipreg-kamailio.XXXXXX)"
	SIPREG_KAMAILIO_PORT=5060
	# 5060 may be taken (a system registrar, another run): pick a free port then.
	if ! python3 - "$SIPREG_KAMAILIO_PORT" 2>/dev/null <<'PY'
import socket, sys
p = int(sys.argv[1])
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", p))
    s.close()
PY
	then
		# A port free for TCP and UDP, below the ephemeral range (client sockets never take it).
		SIPREG_KAMAILIO_PORT=$(python3 "$_kdir/free-ports.py" 1)
	fi
	"$_kdir/kamctl.sh" start "$SIPREG_KAMAILIO_RUNDIR" "$SIPREG_KAMAILIO_PORT" >&2
	export SIPREG_KAMAILIO_PORT SIPREG_KAMAILIO_RUNDIR
	_sipreg_stop_kamailio() { "$_kdir/kamctl.sh" stop "$SIPREG_KAMAILIO_RUNDIR" >/dev/null 2>&1 || true; }
	trap _sipreg_stop_kamailio EXIT
fi
