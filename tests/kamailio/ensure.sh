#!/usr/bin/env bash
# Sourced by the test and demo scripts: makes sure a Kamailio registrar runs on
# loopback and exports SIPREG_KAMAILIO_PORT / SIPREG_KAMAILIO_RUNDIR. Starts one
# (and stops it on exit) only when none was exported by the caller.
if [ -z "${SIPREG_KAMAILIO_PORT:-}" ]; then
	_kdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	SIPREG_KAMAILIO_RUNDIR="$(mktemp -d /tmp/sipreg-kamailio.XXXXXX)"
	SIPREG_KAMAILIO_PORT=5060
	# 5060 may be taken (a system registrar, another run): pick a free port then.
	if ! python3 - "$SIPREG_KAMAILIO_PORT" <<'PY'
import socket, sys
p = int(sys.argv[1])
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", p))
    s.close()
PY
	then
		SIPREG_KAMAILIO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	fi
	"$_kdir/kamctl.sh" start "$SIPREG_KAMAILIO_RUNDIR" "$SIPREG_KAMAILIO_PORT" >&2
	export SIPREG_KAMAILIO_PORT SIPREG_KAMAILIO_RUNDIR
	_sipreg_stop_kamailio() { "$_kdir/kamctl.sh" stop "$SIPREG_KAMAILIO_RUNDIR" >/dev/null 2>&1 || true; }
	trap _sipreg_stop_kamailio EXIT
fi
