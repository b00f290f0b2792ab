#!/usr/bin/env bash
# Installs libsipreg into a temporary prefix with `make install` and builds
# against the installed files only (the sources are copied out of the tree, no
# -I or -L into it): the C example with `pkg-config --cflags --libs sipreg`, a
# CMake project with find_package(sipreg) (shared and static targets), and the
# C++ example with the installed sipreg.hpp. The C, CMake and C++ programs and
# the installed sipreg-register CLI register against the Kamailio of the suite
# (SIPREG_KAMAILIO_PORT). Checks that `make install` needs no cargo once `make`
# has built (sudo's PATH has none) and stops with what to run when nothing is
# built; that the installed library is stripped (<= 10 MiB) with its debug info
# in the .gnu_debuglink file of `make install-debug`; the soname, the symlinks,
# that `nm -D` shows only sipreg_* symbols; the ldconfig step (ldconfig -n on
# the prefix; when install runs ldconfig and when not; a real `ldconfig -r` into
# a temporary root); a DESTDIR-staged install; and `make uninstall`. Prints the
# installed tree and sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tests/kamailio/ensure.sh

tmp="$(mktemp -d /tmp/sipreg-install.XXXXXX)"
_install_cleanup() { rm -rf "$tmp"; if declare -F _sipreg_stop_kamailio >/dev/null; then _sipreg_stop_kamailio; fi; }
trap _install_cleanup EXIT
prefix="$tmp/prefix"
fail() { echo "install-check: $*" >&2; exit 1; }

version="$(make -s version)"
major="${version%%.*}"
lib="$prefix/lib"

# `make` builds (cargo) and prepares the stripped files; `make install` then
# only copies: it must work with a PATH that has no cargo, as under sudo.
make -s >/dev/null
nocargo_path="$(tr ':' '\n' <<<"$PATH" | while read -r d; do [ -x "$d/cargo" ] || printf '%s:' "$d"; done)"
nocargo_path="${nocargo_path%:}"
if PATH="$nocargo_path" command -v cargo >/dev/null; then fail "could not make a PATH without cargo"; fi
PATH="$nocargo_path" make -s install install-debug PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install with no cargo on PATH"; }
# A prefix off the loader's path: no ldconfig, a note on how programs find the library.
grep -q "is not on the dynamic loader's search path" "$tmp/install.log" ||
	{ cat "$tmp/install.log"; fail "no run-time search path note for a private prefix"; }
# Without a build, install stops and says what to run (it never builds).
if make -s install PREFIX="$tmp/unbuilt" TARGET_DIR="$tmp/no-target" >"$tmp/unbuilt.log" 2>&1; then
	fail "make install succeeded without a build"
fi
grep -q "run 'make' first" "$tmp/unbuilt.log" || { cat "$tmp/unbuilt.log"; fail "make install without a build does not say what to run"; }
[ ! -e "$tmp/unbuilt" ] || fail "make install without a build installed something"

echo "installed tree ($prefix):"
(cd "$prefix" && find . -mindepth 1 | sort | while read -r f; do
	if [ -L "$f" ]; then echo "  $f -> $(readlink "$f")"; elif [ -f "$f" ]; then echo "  $f"; fi
done)

# Stripped like a system library; the debug info is in the .debug file gdb finds.
so_bytes="$(stat -c %s "$lib/libsipreg.so.$version")"
a_bytes="$(stat -c %s "$lib/libsipreg.a")"
debug="$lib/.debug/libsipreg.so.$version.debug"
echo "sizes: libsipreg.so.$version $so_bytes bytes, libsipreg.a $a_bytes bytes, $(basename "$debug") $(stat -c %s "$debug") bytes"
[ "$so_bytes" -le $((10 * 1024 * 1024)) ] || fail "the installed shared library is $so_bytes bytes (> 10 MiB): not stripped?"
if readelf -S "$lib/libsipreg.so.$version" | grep -q '\.debug_info'; then fail "the installed library has debug info"; fi
if readelf -S "$lib/libsipreg.a" | grep -q '\.debug_info'; then fail "the installed static library has debug info"; fi
readelf -S "$debug" | grep -q '\.debug_info' || fail "$debug has no debug info"
link="$(readelf --string-dump=.gnu_debuglink "$lib/libsipreg.so.$version" | sed -n 's/^ *\[ *0\] *//p')"
[ "$link" = "$(basename "$debug")" ] || fail "the .gnu_debuglink names '$link', want $(basename "$debug")"
[ -f "$prefix/include/sipreg/sipreg.hpp" ] || fail "sipreg.hpp is not installed next to sipreg.h"
help="$("$prefix/bin/sipreg-register" --help)" || fail "the installed sipreg-register --help did not exit 0"
grep -q '^usage: sipreg-register' <<<"$help" || fail "sipreg-register --help printed no usage: $help"

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
cp examples-c/sipreg-register.c examples-cpp/sipreg-register-cpp.cpp \
	tests/install/CMakeLists.txt tests/install/version.c "$src/"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig" PKG_CONFIG_PATH=""
[ "$(pkg-config --modversion sipreg)" = "$version" ] || fail "pkg-config version is not $version"
cflags="$(pkg-config --cflags sipreg)"
libs="$(pkg-config --libs sipreg)"
case "$cflags $libs" in *"$ROOT"*) fail "pkg-config points into the source tree: $cflags $libs" ;; esac
cc -O1 -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L $cflags -o "$tmp/c-register" \
	"$src/sipreg-register.c" $libs -Wl,-rpath,"$lib" -lpthread
# The C++ example with the installed sipreg.hpp (found through pkg-config's -I).
c++ -O1 -Wall -Wextra -Werror -std=c++17 $cflags -o "$tmp/cpp-register" \
	"$src/sipreg-register-cpp.cpp" $libs -Wl,-rpath,"$lib" -lpthread
"$tmp/cpp-register" --help | grep -q '^usage: sipreg-register-cpp' || fail "sipreg-register-cpp --help"
# A static link with pkg-config --static (Libs.private).
cc -std=c11 $cflags -o "$tmp/c-version-static" "$src/version.c" \
	-Wl,-Bstatic $(pkg-config --libs-only-L sipreg) -lsipreg -Wl,-Bdynamic $(pkg-config --static --libs-only-l sipreg | sed 's/-lsipreg//')
[ "$("$tmp/c-version-static")" = "$version" ] || fail "static pkg-config build"
deps="$(ldd "$tmp/c-version-static")"
if grep -q libsipreg <<<"$deps"; then fail "the static build links libsipreg.so"; fi
echo "static hello-world: $(stat -c %s "$tmp/c-version-static") bytes"

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
# The installed CLI finds the library through its RUNPATH ($ORIGIN/../lib).
for prog in "$tmp/c-register" "$tmp/cmake-build/sipreg-cmake-register" "$tmp/cpp-register" \
	"$prefix/bin/sipreg-register"; do
	loaded="$(ldd "$prog" | sed -n "s|^[[:space:]]*libsipreg.so.$major => \(/[^ ]*\) .*|\1|p")"
	[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$lib/libsipreg.so.$major")" ] ||
		fail "$prog does not load the installed library (ldd: ${loaded:-not found})"
	out="$("$prog" --aor sip:user555000001@127.0.0.1 --password pw-user555000001 --registrar "$registrar" --expires 5 --hold 1 --trace)"
	grep -qx 'state Registered' <<<"$out" || { echo "$out"; fail "$prog did not register"; }
	grep -qx 'state Terminated' <<<"$out" || { echo "$out"; fail "$prog did not terminate"; }
	grep -q 'Authorization: Digest <redacted>' <<<"$out" || grep -q '^trace sent' <<<"$out" ||
		{ echo "$out"; fail "$prog --trace printed no messages"; }
	if grep -q 'response=' <<<"$out"; then fail "$prog --trace printed a digest response"; fi
	echo "registered and terminated: $(basename "$prog") (installed library, Kamailio $registrar)"
done

# ldconfig accepts the installed library: -n (this directory only, no cache)
# recreates the run-time link from the soname.
ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
rm "$lib/libsipreg.so.$major"
"$ldconfig" -n "$lib"
[ "$(readlink "$lib/libsipreg.so.$major")" = "libsipreg.so.$version" ] || fail "ldconfig -n did not recreate libsipreg.so.$major"

# When install runs ldconfig: for a directory the loader searches, never for
# another. A stand-in ldconfig answers the configuration query with the real
# one (this machine's ld.so.conf) and records any other call instead of
# rewriting the machine's cache.
printf '#!/bin/sh\n[ "$*" = "-v -N -X" ] && exec "%s" -v -N -X\necho "ldconfig $*" >>"%s"\n' \
	"$ldconfig" "$tmp/ldconfig-calls" >"$tmp/fake-ldconfig"
chmod +x "$tmp/fake-ldconfig"
loader_dir="$("$ldconfig" -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p' | head -n1)"
[ -n "$loader_dir" ] || fail "ldconfig -v -N -X lists no directory"
LDCONFIG="$tmp/fake-ldconfig" sh packaging/ldconfig-step.sh install "$loader_dir" >/dev/null
[ "$(cat "$tmp/ldconfig-calls" 2>/dev/null)" = "ldconfig " ] || fail "no ldconfig for $loader_dir (on the loader's path)"
rm -f "$tmp/ldconfig-calls"
LDCONFIG="$tmp/fake-ldconfig" sh packaging/ldconfig-step.sh install "$lib" >/dev/null
[ ! -e "$tmp/ldconfig-calls" ] || fail "ldconfig ran for $lib (not on the loader's path)"

# A staged install (packaging): files under DESTDIR, paths without it, and no
# ldconfig even where the target directory is one the loader searches.
make -s install PREFIX=/usr/local DESTDIR="$tmp/stage" LDCONFIG="$tmp/fake-ldconfig" \
	LOADER_DIRS=/usr/local/lib >"$tmp/stage.log" 2>&1 || { cat "$tmp/stage.log"; fail "DESTDIR install"; }
[ -f "$tmp/stage/usr/local/lib/libsipreg.so.$version" ] || fail "DESTDIR install"
[ -x "$tmp/stage/usr/local/bin/sipreg-register" ] || fail "DESTDIR install of the CLI"
grep -qx 'prefix=/usr/local' "$tmp/stage/usr/local/lib/pkgconfig/sipreg.pc" || fail "DESTDIR leaked into sipreg.pc"
[ ! -e "$tmp/ldconfig-calls" ] || fail "ldconfig ran for a DESTDIR install"
if grep -q "ldconfig\|note:" "$tmp/stage.log"; then cat "$tmp/stage.log"; fail "a DESTDIR install talked about ldconfig"; fi

# A real ldconfig run by make install into a temporary root (no DESTDIR;
# ldconfig -r chroots, so root only): the root's loader cache then has
# libsipreg.so.$major, and after make uninstall it has not.
if [ "$(id -u)" -eq 0 ]; then
	troot="$tmp/root"
	mkdir -p "$troot/etc"
	echo /usr/local/lib >"$troot/etc/ld.so.conf"
	make -s install PREFIX="$troot/usr/local" LDCONFIG="$ldconfig -r $troot" LOADER_DIRS="$troot/usr/local/lib" \
		>"$tmp/root.log" 2>&1 || { cat "$tmp/root.log"; fail "make install into a temporary root"; }
	grep -q "updating its cache" "$tmp/root.log" || { cat "$tmp/root.log"; fail "make install did not run ldconfig"; }
	cache="$("$ldconfig" -r "$troot" -p)"
	grep -q "libsipreg.so.$major .*=> /usr/local/lib/libsipreg.so.$major" <<<"$cache" ||
		{ echo "$cache"; fail "ldconfig -r did not put libsipreg.so.$major into the root's cache"; }
	make -s uninstall PREFIX="$troot/usr/local" LDCONFIG="$ldconfig -r $troot" LOADER_DIRS="$troot/usr/local/lib" >/dev/null
	if "$ldconfig" -r "$troot" -p | grep -q libsipreg; then fail "the root's loader cache lists libsipreg after uninstall"; fi
	echo "ldconfig -r: make install put libsipreg.so.$major into a temporary root's loader cache; uninstall took it out"
else
	echo "ldconfig -r skipped: it chroots into the temporary root, which needs root (ldconfig -n and the decision were checked)"
fi

make -s uninstall PREFIX="$prefix" >/dev/null
left="$(find "$prefix" -type f -o -type l)"
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install check passed (version $version)"
