#!/usr/bin/env bash
# Installs libsipreg into a temporary prefix with `make install` and builds
# against the installed files only (the sources are copied out of the tree, no
# -I or -L into it): the C example with `pkg-config --cflags --libs sipreg`, a
# CMake project with find_package(sipreg) (shared and static targets), and the
# C++ wrapper example. The C, CMake and C++ programs register against the
# Kamailio of the suite (SIPREG_KAMAILIO_PORT). Checks the soname, the symlinks,
# that `nm -D` shows only sipreg_* symbols, a DESTDIR-staged install, and
# `make uninstall`; prints the installed tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tests/kamailio/ensure.sh

tmp="$(mktemp -d /tmp/sipreg-install.XXXXXX)"
_install_cleanup() { rm -rf "$tmp"; if declare -F _sipreg_stop_kamailio >/dev/null; then _sipreg_stop_kamailio; fi; }
trap _install_cleanup EXIT
prefix="$tmp/prefix"
fail() { echo "install-check: $*" >&2; exit 1; }

make -s install PREFIX="$prefix" >/dev/null
version="$(make -s version)"
major="${version%%.*}"
lib="$prefix/lib"

echo "installed tree ($prefix):"
(cd "$prefix" && find . -mindepth 1 | sort | while read -r f; do
	if [ -L "$f" ]; then echo "  $f -> $(readlink "$f")"; elif [ -f "$f" ]; then echo "  $f"; fi
done)

[ "$(readlink "$lib/libsipreg.so")" = "libsipreg.so.$major" ] || fail "libsipreg.so does not point at libsipreg.so.$major"
[ "$(readlink "$lib/libsipreg.so.$major")" = "libsipreg.so.$version" ] || fail "libsipreg.so.$major does not point at libsipreg.so.$version"
soname="$(readelf -d "$lib/libsipreg.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ "$soname" = "libsipreg.so.$major" ] || fail "soname is '$soname', want libsipreg.so.$major"
exported="$(nm -D --defined-only "$lib/libsipreg.so.$version" | awk '{print $3}')"
others="$(grep -v '^sipreg_' <<<"$exported" || true)"
[ -z "$others" ] || fail "symbols outside sipreg_* are exported: $(head -5 <<<"$others" | tr '\n' ' ')"
echo "nm -D: $(wc -l <<<"$exported") symbols, all sipreg_*; soname $soname"
header_fns="$(grep -oE '^[a-z][a-z_ *]* \**sipreg_[a-z_0-9]+\(' "$prefix/include/sipreg/sipreg.h" | grep -oE 'sipreg_[a-z_0-9]+\($' | tr -d '(' | sort -u)"
missing="$(comm -23 <(echo "$header_fns") <(sort -u <<<"$exported"))"
[ -z "$missing" ] || fail "header functions not exported: $missing"

# Sources copied out of the tree: only the installed files are visible.
src="$tmp/src"
mkdir -p "$src"
cp examples-c/sipreg-register.c examples-cpp/sipreg.hpp examples-cpp/sipreg-register-cpp.cpp \
	tests/install/CMakeLists.txt tests/install/version.c "$src/"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig" PKG_CONFIG_PATH=""
[ "$(pkg-config --modversion sipreg)" = "$version" ] || fail "pkg-config version is not $version"
cflags="$(pkg-config --cflags sipreg)"
libs="$(pkg-config --libs sipreg)"
case "$cflags $libs" in *"$ROOT"*) fail "pkg-config points into the source tree: $cflags $libs" ;; esac
cc -O1 -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L $cflags -o "$tmp/c-register" \
	"$src/sipreg-register.c" $libs -Wl,-rpath,"$lib" -lpthread
c++ -O1 -Wall -Wextra -Werror -std=c++17 $cflags -I"$src" -o "$tmp/cpp-register" \
	"$src/sipreg-register-cpp.cpp" $libs -Wl,-rpath,"$lib" -lpthread
# A static link with pkg-config --static (Libs.private).
cc -std=c11 $cflags -o "$tmp/c-version-static" "$src/version.c" \
	-Wl,-Bstatic $(pkg-config --libs-only-L sipreg) -lsipreg -Wl,-Bdynamic $(pkg-config --static --libs-only-l sipreg | sed 's/-lsipreg//')
[ "$("$tmp/c-version-static")" = "$version" ] || fail "static pkg-config build"
deps="$(ldd "$tmp/c-version-static")"
if grep -q libsipreg <<<"$deps"; then fail "the static build links libsipreg.so"; fi

cmake -S "$src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DSIPREG_EXAMPLE_SOURCE="$src/sipreg-register.c" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_BUILD_RPATH="$lib" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake configure"; }
cmake --build "$tmp/cmake-build" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake build"; }
[ "$("$tmp/cmake-build/sipreg-cmake-version-static")" = "$version" ] || fail "static CMake build"
# find_package refuses an incompatible version.
mkdir -p "$tmp/cmake-v9"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(sipreg 9.0 REQUIRED)\n' >"$tmp/cmake-v9/CMakeLists.txt"
if cmake -S "$tmp/cmake-v9" -B "$tmp/cmake-v9/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
	fail "find_package(sipreg 9.0) accepted version $version"
fi

registrar="sip:127.0.0.1:${SIPREG_KAMAILIO_PORT}"
for prog in "$tmp/c-register" "$tmp/cmake-build/sipreg-cmake-register" "$tmp/cpp-register"; do
	deps="$(ldd "$prog")"
	grep -q "$lib/libsipreg.so.$major" <<<"$deps" || fail "$prog does not load the installed library"
	out="$("$prog" --aor sip:user555000001@127.0.0.1 --password pw-user555000001 --registrar "$registrar" --expires 5 --hold 1 --trace)"
	grep -qx 'state Registered' <<<"$out" || { echo "$out"; fail "$prog did not register"; }
	grep -qx 'state Terminated' <<<"$out" || { echo "$out"; fail "$prog did not terminate"; }
	grep -q 'Authorization: Digest <redacted>' <<<"$out" || grep -q '^trace sent' <<<"$out" ||
		{ echo "$out"; fail "$prog --trace printed no messages"; }
	if grep -q 'response=' <<<"$out"; then fail "$prog --trace printed a digest response"; fi
	echo "registered and terminated: $(basename "$prog") (installed library, Kamailio $registrar)"
done

# A staged install (packaging): files under DESTDIR, paths without it.
make -s install PREFIX=/usr/local DESTDIR="$tmp/stage" >/dev/null
[ -f "$tmp/stage/usr/local/lib/libsipreg.so.$version" ] || fail "DESTDIR install"
grep -qx 'prefix=/usr/local' "$tmp/stage/usr/local/lib/pkgconfig/sipreg.pc" || fail "DESTDIR leaked into sipreg.pc"
make -s uninstall PREFIX="$prefix" >/dev/null
left="$(find "$prefix" -type f -o -type l)"
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install check passed (version $version)"
