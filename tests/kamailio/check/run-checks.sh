#!/usr/bin/env bash
# Start fresh registrars (MD5 on $PORT, SHA-256 on $SHA_PORT), run the SIPp
# check scenarios against them, stop them. Exit status non-zero on any failure.
#   usage: run-checks.sh [port] [sha256-port]      (defaults 5070, 5072)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAMCTL="$HERE/../kamctl.sh"
PORT="${1:-5070}"
SHA_PORT="${2:-5072}"
SIPP="$(command -v sipp || echo /usr/bin/sipp)"

WORK="$(mktemp -d /tmp/sipreg-kam-check.XXXXXX)"
RUN="$WORK/run"
RUN_SHA="$WORK/run-sha256"
FAILS=0
CPORT=5180   # SIPp client ports: 5180, 5181, ...

cleanup() {
	"$KAMCTL" stop "$RUN" >/dev/null 2>&1 || true
	"$KAMCTL" stop "$RUN_SHA" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ok()   { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; FAILS=$((FAILS + 1)); }

# sipp_run <name> <port> <scenario> [sipp args...]; message trace in $WORK/<name>.msg
sipp_run() {
	local name="$1" port="$2" sf="$3"; shift 3
	CPORT=$((CPORT + 1))
	(cd "$WORK" && "$SIPP" "127.0.0.1:$port" -sf "$HERE/$sf" -i 127.0.0.1 -p "$CPORT" \
		-m 1 -nostdin -timeout 10s -trace_msg -message_file "$WORK/$name.msg" \
		-trace_err -error_file "$WORK/$name.err" "$@" >"$WORK/$name.out" 2>&1)
}

# check <description> <name> <port> <scenario> [sipp args...]
check() {
	local desc="$1"; shift
	if sipp_run "$@"; then ok "$desc"; else fail "$desc (see $WORK/$1.msg, $WORK/$1.err)"; fi
}

# expect_in <description> <name> <fixed string>  (searched in the SIPp message trace)
expect_in() {
	if grep -qF -- "$3" "$WORK/$2.msg" 2>/dev/null; then ok "$1"; else fail "$1: '$3' not in $WORK/$2.msg"; fi
}

"$KAMCTL" start "$RUN" "$PORT"
"$KAMCTL" start "$RUN_SHA" "$SHA_PORT" sha256

# --- MD5 instance -----------------------------------------------------------
# alice over UDP; contact port fixed so the un-REGISTER hits the same binding
APORT=5170
check "alice REGISTER (401 qop=auth, then 200)" alice-reg "$PORT" register.xml \
	-s alice -au alice -ap alicepw -key expires 60 -p "$APORT"
expect_in "401 carries qop=\"auth\"" alice-reg 'qop="auth"'
expect_in "200 echoes Contact;expires=60" alice-reg "Contact: <sip:alice@127.0.0.1:$APORT;transport=UDP>;expires=60"
if out="$("$KAMCTL" lookup "$RUN" alice@127.0.0.1)" &&
	grep -qE "^[[:space:]]*Address: sip:alice@127.0.0.1:$APORT;transport=UDP\$" <<<"$out" &&
	grep -qE '^[[:space:]]*Expires: [0-9]+$' <<<"$out"; then
	ok "kamctl.sh lookup shows alice's binding"
else
	fail "kamctl.sh lookup alice after REGISTER: ${out:-<nothing>}"
fi

check "alice un-REGISTER (expires=0) -> 200" alice-unreg "$PORT" unregister.xml \
	-s alice -au alice -ap alicepw -key expires 0 -p "$APORT"
if "$KAMCTL" lookup "$RUN" alice@127.0.0.1 >/dev/null 2>&1; then
	fail "binding still present after un-REGISTER"
else
	ok "kamctl.sh lookup: alice gone after un-REGISTER (exit 1)"
fi

check "wrong password -> 401/403, no 200" wrongpw "$PORT" wrong-password.xml \
	-s alice -au alice -ap not-alicepw -key expires 60
if "$KAMCTL" lookup "$RUN" alice@127.0.0.1 >/dev/null 2>&1; then
	fail "binding created despite wrong password"
else
	ok "no binding after wrong password"
fi

check "expires=1 -> 423" brief "$PORT" interval-too-brief.xml \
	-s bob -au bob -ap bobpw -key expires 1
expect_in "423 carries Min-Expires: 2" brief "Min-Expires: 2"

check "bob over TCP -> 200" bob-tcp "$PORT" register.xml \
	-t t1 -s bob -au bob -ap bobpw -key expires 120
expect_in "TCP 200 echoes Contact;expires=120" bob-tcp ";transport=TCP>;expires=120"
if out="$("$KAMCTL" lookup "$RUN" bob@127.0.0.1)" && grep -q 'transport=TCP' <<<"$out"; then
	ok "kamctl.sh lookup shows bob's TCP binding"
else
	fail "lookup bob after TCP REGISTER: ${out:-<nothing>}"
fi

check "user42/pw-user42 -> 200" user42 "$PORT" register.xml \
	-s user42 -au user42 -ap pw-user42 -key expires 300
if "$KAMCTL" lookup "$RUN" user42@127.0.0.1 >/dev/null; then ok "user42 bound"; else fail "user42 not bound"; fi

check "unknown user mallory -> 403" mallory "$PORT" forbidden.xml \
	-s mallory -au mallory -ap whatever -key expires 60
check "auth user alice for To bob -> 403" mismatch "$PORT" forbidden.xml \
	-s bob -au alice -ap alicepw -key expires 60
check "OPTIONS -> 405 with Allow: REGISTER" options "$PORT" options-405.xml -s alice

if "$KAMCTL" dump "$RUN" | grep -q 'AoR: user42'; then ok "kamctl.sh dump lists user42"; else fail "dump lacks user42"; fi

# --- SHA-256 instance -------------------------------------------------------
check "SHA-256 instance challenges with algorithm=SHA-256" sha256 "$SHA_PORT" sha256-challenge.xml \
	-s alice -key expires 60
expect_in "challenge text has algorithm=SHA-256" sha256 "algorithm=SHA-256"

"$KAMCTL" stop "$RUN"
"$KAMCTL" stop "$RUN_SHA"
if [ -f "$RUN/kamailio.pid" ] || [ -f "$RUN_SHA/kamailio.pid" ]; then fail "pid file left after stop"; fi

echo
if [ "$FAILS" -ne 0 ]; then
	echo "$FAILS check(s) failed; traces and kamailio logs in $WORK"
	exit 1
fi
echo "all checks passed"
rm -rf "$WORK"
