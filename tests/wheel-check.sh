#!/usr/bin/env bash
# Builds the Python wheel (libsipreg.so inside, tag py3-none-manylinux_2_N_<arch>),
# checks its platform tag with auditwheel, installs it into a clean venv (no Rust toolchain or SIPREG_LIBRARY involved)
# and runs tests/python against the installed package and the suite's Kamailio.
# Then installs the package from the checkout (pip install bindings/python) into
# another venv: it must carry the cargo build and register from outside the tree;
# from a checkout without a build, the install must stop and say what to run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tests/kamailio/ensure.sh

tmp="$(mktemp -d /tmp/sipreg-wheel-check.XXXXXX)"
_wheel_cleanup() { rm -rf "$tmp"; if declare -F _sipreg_stop_kamailio >/dev/null; then _sipreg_stop_kamailio; fi; }
trap _wheel_cleanup EXIT

cargo build --release --lib --quiet
whl="$(bash bindings/python/build-wheel.sh target/release/libsipreg.so "$tmp/dist" | tail -n1)"
case "$(basename "$whl")" in
sipreg-*-py3-none-manylinux_2_*_"$(uname -m)".whl) ;;
*) echo "wheel-check: unexpected wheel name $whl" >&2; exit 1 ;;
esac
listing="$(python3 -m zipfile -l "$whl")"
grep -q 'sipreg/libsipreg.so' <<<"$listing" || { echo "wheel-check: no library in $whl" >&2; exit 1; }
# What the library links must be in the manylinux policy's list (libc, libgcc_s, ...).
needed="$(readelf -d target/release/libsipreg.so | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')"
for so in $needed; do
	case "$so" in
	libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | libgcc_s.so.1 | ld-linux-*.so.*) ;;
	*) echo "wheel-check: libsipreg.so needs $so, outside the manylinux policy" >&2; exit 1 ;;
	esac
done
echo "wheel: $(basename "$whl") ($(du -k "$whl" | cut -f1) KiB)"

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$whl"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check pytest auditwheel
# auditwheel, PyPA's checker, must find the wheel consistent with the tag it carries.
tag="$(basename "$whl" .whl)"
tag="${tag##*-}"
audit="$("$tmp/venv/bin/auditwheel" show "$whl" 2>&1)" || { echo "$audit" >&2; exit 1; }
grep -q "consistent with the following platform tag: \"$tag\"" <<<"$(tr '\n' ' ' <<<"$audit")" || {
	echo "wheel-check: auditwheel does not confirm $tag:" >&2
	echo "$audit" >&2
	exit 1
}
echo "auditwheel: consistent with $tag"
# From outside the tree, without SIPREG_LIBRARY: the package must find its own library.
(cd "$tmp" && env -u SIPREG_LIBRARY -u PYTHONPATH SIPREG_TEST_INSTALLED=1 \
	"$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/python")

# `pip install bindings/python` from the checkout (docs/python.md): the package
# carries the cargo build, so it loads and registers from outside the tree.
python3 -m venv "$tmp/venv-src"
(cd "$tmp" && env -u SIPREG_LIBRARY -u CARGO_TARGET_DIR \
	"$tmp/venv-src/bin/python" -m pip install -q --disable-pip-version-check "$ROOT/bindings/python")
loaded="$(cd "$tmp" && env -u SIPREG_LIBRARY -u PYTHONPATH "$tmp/venv-src/bin/python" -c 'import sipreg; print(sipreg.library_path)')"
case "$loaded" in
"$tmp/venv-src/"*/site-packages/sipreg/libsipreg.so) ;;
*) echo "wheel-check: pip install bindings/python loads '$loaded', not the library inside the package" >&2; exit 1 ;;
esac
out="$(cd "$tmp" && env -u SIPREG_LIBRARY -u PYTHONPATH "$tmp/venv-src/bin/python" "$ROOT/examples/python/register.py" \
	--aor sip:user555000002@127.0.0.1 --password pw-user555000002 --registrar "sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}" \
	--expires 5 --hold 1)" || { echo "$out" >&2; echo "wheel-check: register.py with the checkout install failed" >&2; exit 1; }
grep -qx 'state Registered' <<<"$out" && grep -qx 'state Terminated' <<<"$out" ||
	{ echo "$out" >&2; echo "wheel-check: register.py did not register and terminate" >&2; exit 1; }
echo "pip install bindings/python: loads $loaded; examples/python/register.py registered and terminated"

# A checkout with no cargo build: the install stops and says what to run
# (unless this system has an installed libsipreg, which the package would load).
if python3 -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("sipreg") is None)'; then
	echo "unbuilt checkout: skipped (a libsipreg is installed system-wide)"
else
	mkdir -p "$tmp/unbuilt/bindings"
	cp Cargo.toml "$tmp/unbuilt/"
	cp -r bindings/python "$tmp/unbuilt/bindings/"
	rm -rf "$tmp/unbuilt/bindings/python/build" "$tmp/unbuilt/bindings/python/"*.egg-info "$tmp/unbuilt/bindings/python/sipreg/"libsipreg*
	if (cd "$tmp" && env -u SIPREG_LIBRARY -u CARGO_TARGET_DIR "$tmp/venv-src/bin/python" -m pip install \
		--disable-pip-version-check "$tmp/unbuilt/bindings/python") >"$tmp/unbuilt.log" 2>&1; then
		echo "wheel-check: pip install of a checkout without a cargo build succeeded" >&2
		exit 1
	fi
	grep -q "cd $tmp/unbuilt && cargo build --release" "$tmp/unbuilt.log" ||
		{ cat "$tmp/unbuilt.log" >&2; echo "wheel-check: the failed install does not say what to run" >&2; exit 1; }
	echo "unbuilt checkout: pip install stops with 'cd <checkout> && cargo build --release'"
fi
echo "wheel check passed"
