#!/usr/bin/env bash
# Sourced by the test scripts: makes sure a Kamailio that also serves TLS, WS
# and WSS runs on loopback (kamctl.sh "secure") and exports its ports and
# rundir (certificates in $SIPREG_SECURE_RUNDIR/certs). Starts one (and stops
# it on exit) only when none was exported by the caller.
if [ -z "${SIPREG_SECURE_RUNDIR:-}" ]; then
	_sdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	SIPREG_SECURE_RUNDIR="$(mktemp -d /tmp/sipreg-kamailio-secure.XXXXXX)"
	read -r -a _sports < <(python3 "$_sdir/free-ports.py" 6)
	"$_sdir/kamctl.sh" start "$SIPREG_SECURE_RUNDIR" "${_sports[@]:0:1}" secure "${_sports[@]:1:5}" >&2
	# shellcheck disable=SC1091
	source "$SIPREG_SECURE_RUNDIR/ports"
	SIPREG_SECURE_PORT=$SIP_PORT SIPREG_TLS_PORT=$TLS_PORT SIPREG_TLS_WRONG_PORT=$TLS_WRONG_PORT
	SIPREG_WS_PORT=$WS_PORT SIPREG_WSS_PORT=$WSS_PORT
	export SIPREG_SECURE_RUNDIR SIPREG_SECURE_PORT SIPREG_TLS_PORT SIPREG_TLS_WRONG_PORT SIPREG_WS_PORT SIPREG_WSS_PORT
	_sipreg_stop_secure() { "$_sdir/kamctl.sh" stop "$SIPREG_SECURE_RUNDIR" >/dev/null 2>&1 || true; }
	# Chain with an EXIT trap already set (ensure.sh's), so both instances stop.
	_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
	trap "_sipreg_stop_secure; ${_prev_trap:-:}" EXIT
fi
