#!/usr/bin/env bash
# The whole test suite: lint, header check, Rust unit/scenario/integration
# tests, C example and C API tests (AddressSanitizer + valgrind), Python tests
# and mypy (package and examples), the C++ example, the installed library
# (pkg-config, CMake, nm -D, ldconfig, the CLI), the wheel and a checkout install
# in clean venvs, the generated API reference and the docs' code snippets.
# Installs what is missing (unless the caller already did: .ci/run exports
# SIPREG_MACHINE_READY=1) and starts Kamailio on loopback unless one was
# already exported (see tests/kamailio/ensure.sh).
#
# Where the time goes on two cores is compiling (clippy, the debug build and
# its tests, the release build): the release build (soak, install, wheel)
# runs in the background from the start, filling the gaps of the debug
# builds (one crate or one link at a time) and of the tests that mostly wait
# for their peers, and the Rust test binaries run all at once. No test
# asserts a duration, so sharing the cores changes no outcome. Each step
# prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

_step_name=""
_step_start=$SECONDS
step() {
	[ -z "$_step_name" ] || printf '    (%s: %d s)\n' "$_step_name" $((SECONDS - _step_start))
	_step_name="$*"
	_step_start=$SECONDS
	printf '\n==> %s\n' "$*"
}

[ "${SIPREG_MACHINE_READY:-0}" = 1 ] || bash tests/setup-machine.sh
source tests/kamailio/ensure.sh
source tests/kamailio/ensure-secure.sh

step "format"
cargo fmt --check

# The release build for the soak, the install and the wheel, then the soak
# itself, in the background until the install step waits for them.
release_log="$(mktemp /tmp/sipreg-release.XXXXXX)"
(
	cargo build --release --lib --quiet &&
		cargo test --release --quiet --test core_props soak_ten_thousand -- --ignored
) >"$release_log" 2>&1 &
release_pid=$!
_stop_release() { pkill -P "$release_pid" 2>/dev/null || true; kill "$release_pid" 2>/dev/null || true; }
_prev_exit_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
trap "_stop_release; ${_prev_exit_trap:-:}" EXIT

step "lint"
cargo clippy --all-targets --quiet -- -D warnings

step "build (regenerates include/sipreg.h)"
cargo build --quiet
if [ -d .git ] && ! git diff --exit-code --stat -- include/sipreg.h; then
	echo "include/sipreg.h differs from what build.rs generates: commit the regenerated header" >&2
	exit 1
fi

step "Rust tests (unit, simulated-clock scenarios, Kamailio, SIPp), all binaries at once"
bash tests/run-rust-tests.sh

step "Benchmark smoke: 10 accounts through the bench binary (figures: examples/run-bench.sh)"
cargo build --quiet --example bench
./target/debug/examples/bench --n 10 --registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" \
	--first-user 990000 | grep -E '^(register|pacing|RESULT)'
cargo build --quiet --example floor
for t in udp tcp; do
	./target/debug/examples/floor --n 10 --transport "$t" --spacing-us 500 \
		--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --first-user 990100 | grep '^RESULT'
done

step "C example under AddressSanitizer"
make -s -C examples-c clean
make -s -C examples-c SANITIZE=1
out=$(./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 5 --hold 6)
echo "$out"
grep -qx 'state Registered' <<<"$out"
grep -qx 'state Terminated' <<<"$out"
out=$(SIPREG_LOG=debug ./examples-c/sipreg-register --aor sip:bob@127.0.0.1 --password bobpw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60 --keepalive 1 --hold 3.5 2>&1)
grep -qx 'state Registered' <<<"$out"
[ "$(grep -c 'keep-alive (2 bytes)' <<<"$out")" -ge 2 ] || { echo "--keepalive 1 sent no CRLF keep-alives" >&2; exit 1; }
if ./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password wrong \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" >/dev/null; then
	echo "a wrong password must not exit 0" >&2
	exit 1
fi
# --ha1: the HA1 of alice:127.0.0.1:alicepw registers without the password; another one does not.
ha1=$(printf 'alice:127.0.0.1:alicepw' | md5sum | cut -d' ' -f1)
out=$(./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --ha1 "$ha1" \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60)
grep -qx 'state Registered' <<<"$out"
if ./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --ha1 "$(printf 'alice:127.0.0.1:wrong' | md5sum | cut -d' ' -f1)" \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" >/dev/null; then
	echo "a wrong HA1 must not exit 0" >&2
	exit 1
fi
# Several accounts on one thread, callbacks from its poll() loop (a dispatcher).
out=$(./examples-c/sipreg-poll --registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60 --hold 1 \
	sip:alice@127.0.0.1 alicepw sip:bob@127.0.0.1 bobpw)
echo "$out"
grep -qx 'registered 2/2, terminated 2/2' <<<"$out"
if out=$(./examples-c/sipreg-poll --registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --hold 0 \
	sip:alice@127.0.0.1 wrong); then
	echo "sipreg-poll with a wrong password must not exit 0" >&2
	exit 1
fi
grep -q '^sip:alice@127.0.0.1 failed auth_rejected (401 Unauthorized): credentials for realm' <<<"$out"

step "C example answering MESSAGEs over its registered flow (--answer-messages)"
out_file=$(mktemp)
./examples-c/sipreg-register --aor sip:user424242@127.0.0.1 --password pw-user424242 \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 60 --hold 4 --answer-messages >"$out_file" &
cli=$!
for _ in $(seq 100); do grep -qx 'state Registered' "$out_file" && break; sleep 0.1; done
contact=$(tests/kamailio/kamctl.sh lookup "$SIPREG_KAMAILIO_RUNDIR" user424242@127.0.0.1 |
	sed -n 's/^[[:space:]]*Address: //p' | head -1)
python3 tests/send-message.py "$contact" "hello over the flow"
wait "$cli"
cat "$out_file"
grep -q '^message from <sip:tester@127.0.0.1>;tag=[0-9a-f]*: hello over the flow$' "$out_file"
grep -qx 'state Terminated' "$out_file"
rm -f "$out_file"

step "C example over tls, ws and wss under AddressSanitizer"
CA="$SIPREG_SECURE_RUNDIR/certs/ca.pem"
for t in "tls sips:127.0.0.1:$SIPREG_TLS_PORT" "tls sips:[::1]:$SIPREG_TLS_PORT" \
	"ws sip:127.0.0.1:$SIPREG_WS_PORT;transport=ws" "wss sip:127.0.0.1:$SIPREG_WSS_PORT;transport=wss"; do
	read -r transport registrar <<<"$t"
	out=$(./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw \
		--transport "$transport" --ca-file "$CA" --registrar "$registrar" --expires 60 --hold 1)
	echo "$transport $registrar: $(tr '\n' ' ' <<<"$out")"
	grep -qx 'state Registered' <<<"$out"
	grep -qx 'state Terminated' <<<"$out"
done
# The wrong CA must fail (and exit non-zero); --insecure reaches the wrongly named server.
if ./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw --transport tls \
	--ca-file "$SIPREG_SECURE_RUNDIR/certs/other-ca.pem" --registrar "sips:127.0.0.1:$SIPREG_TLS_PORT" >/dev/null; then
	echo "a wrong CA must not exit 0" >&2
	exit 1
fi
out=$(./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw --transport tls --insecure \
	--registrar "sips:127.0.0.1:$SIPREG_TLS_WRONG_PORT" --expires 60)
grep -qx 'state Registered' <<<"$out"

if [ -d tests/c ]; then
	step "C API tests under AddressSanitizer"
	make -s -C tests/c clean
	make -s -C tests/c SANITIZE=1 run JOBS=2
fi

step "C example and C API tests under valgrind"
make -s -C examples-c clean
make -s -C examples-c
# ring's AES-GCM assembly is opaque to memcheck: see tests/valgrind-ring.supp.
VG=(valgrind -q --error-exitcode=99 --suppressions="$ROOT/tests/valgrind-ring.supp" --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite)
# Each its own account (they run at once, two cores for three valgrinds).
"${VG[@]}" ./examples-c/sipreg-register --aor sip:bob@127.0.0.1 --password bobpw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT};transport=tcp" --expires 60 --hold 1 >/dev/null &
vg_tcp=$!
"${VG[@]}" ./examples-c/sipreg-register --aor sip:alice@127.0.0.1 --password alicepw --transport tls \
	--ca-file "$CA" --registrar "sips:127.0.0.1:$SIPREG_TLS_PORT" --expires 60 --hold 1 >/dev/null &
vg_tls=$!
"${VG[@]}" ./examples-c/sipreg-register --aor sip:user555000002@127.0.0.1 --password pw-user555000002 \
	--transport wss --ca-file "$CA" --registrar "sip:127.0.0.1:$SIPREG_WSS_PORT;transport=wss" \
	--expires 60 --hold 1 >/dev/null
wait "$vg_tcp"
wait "$vg_tls"
"${VG[@]}" ./examples-c/sipreg-poll --registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT};transport=tcp" --hold 1 \
	sip:alice@127.0.0.1 alicepw sip:bob@127.0.0.1 bobpw >/dev/null
if [ -d tests/c ]; then
	make -s -C tests/c clean
	make -s -C tests/c
	make -s -C tests/c run RUNNER="${VG[*]}" JOBS=2
fi

# The DNS tests live in a network namespace of their own (own loopback, own
# registrars): they run meanwhile and are reported after the Python steps.
dns_log="$(mktemp /tmp/sipreg-dns.XXXXXX)"
SIPREG_LIBRARY="$ROOT/target/debug/libsipreg.so" bash tests/dns/run.sh >"$dns_log" 2>&1 &
dns_pid=$!

if [ -d tests/python ]; then
	step "Python binding tests"
	SIPREG_LIBRARY="$ROOT/target/debug/libsipreg.so" python3 -m pytest -q tests/python
	step "Python type hints (mypy --strict)"
	python3 -m mypy --strict --no-incremental bindings/python/sipreg
	step "Python examples type-check (mypy --strict)"
	MYPYPATH="$ROOT/bindings/python" python3 -m mypy --strict --no-incremental examples/python/*.py
fi

step "RFC 3263 DNS tests (netns + dnsmasq + two Kamailio + SIPp), run since the Python tests"
dns_ok=1
wait "$dns_pid" || dns_ok=0
cat "$dns_log"
rm -f "$dns_log"
[ "$dns_ok" = 1 ] || { echo "the RFC 3263 DNS tests failed" >&2; exit 1; }

step "C++ wrapper example against Kamailio"
make -s -C examples-cpp clean
make -s -C examples-cpp
out=$(./examples-cpp/sipreg-register-cpp --aor sip:alice@127.0.0.1 --password alicepw \
	--registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" --expires 5 --hold 1 --trace)
echo "$out" | grep -v '^trace '
grep -qx 'state Registered' <<<"$out"
grep -qx 'state Terminated' <<<"$out"
grep -q '^trace sent udp 127.0.0.1:[0-9]* -> 127.0.0.1:' <<<"$out"

step "Simulated soak: 10 000 registerers through 24 simulated hours (release build, in the background since the start)"
if ! wait "$release_pid"; then
	cat "$release_log"
	echo "the release build or the soak failed" >&2
	exit 1
fi
cat "$release_log"
rm -f "$release_log"

step "Install into a temporary prefix; pkg-config, CMake and C++ builds against it"
bash tests/install-check.sh

step "Python wheel in a clean venv"
bash tests/wheel-check.sh

step "Docs: the API reference is current"
python3 docs/gen-api.py --check

step "Docs: the code snippets of the guide and READMEs compile / type-check"
python3 tests/doc-snippets.py

step "all tests passed"
