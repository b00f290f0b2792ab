#!/usr/bin/env bash
# Builds the Python wheel (libsipreg.so inside, tag py3-none-manylinux_2_N_<arch>),
# checks its platform tag with auditwheel, installs it into a clean venv (no Rust toolchain or SIPREG_LIBRARY involved)
# and runs tests/python against the installed package and the suite's Kamailio.
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
echo "wheel check passed"
