#!/usr/bin/env bash
# Builds the sipreg wheel with the shared library inside the package:
#   bindings/python/build-wheel.sh [LIBSIPREG_SO] [OUTDIR]
# (defaults: target/release/libsipreg.so, dist/). The package sources are
# staged in a temporary copy, so the source tree never holds a library.
# The version comes from Cargo.toml. Needs `python3 -m build` (pip install build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib="${1:-$root/target/release/libsipreg.so}"
out="${2:-$root/dist}"
[ -f "$lib" ] || { echo "build-wheel: $lib not found (run: cargo build --release)" >&2; exit 1; }
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)"
stage="$(mktemp -d /tmp/sipreg-wheel.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
cp -r "$here/pyproject.toml" "$here/setup.py" "$here/README.md" "$stage/"
mkdir "$stage/sipreg"
cp "$here"/sipreg/*.py "$here/sipreg/py.typed" "$stage/sipreg/"
# The wheel ships the library without debug info (the build keeps it for gdb).
strip --strip-debug -o "$stage/sipreg/libsipreg.so" "$lib"
mkdir -p "$out"
SIPREG_VERSION="$version" python3 -m build --wheel --outdir "$out" "$stage" >"$stage.log" 2>&1 || {
	cat "$stage.log" >&2
	rm -f "$stage.log"
	exit 1
}
rm -f "$stage.log"
ls "$out"/sipreg-"$version"-py3-none-*.whl
