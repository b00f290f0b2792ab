#!/bin/sh
# The last step of `make install` / `make uninstall` without DESTDIR (a staged
# tree is the package manager's business):
#   packaging/ldconfig-step.sh install|uninstall LIBDIR
# When LIBDIR is one of the directories the dynamic loader searches (its
# ld.so.conf and built-in list), runs ldconfig so that the loader's cache
# knows libsipreg.so.<major> (or forgets it). Otherwise says how programs will
# find the library at run time (docs/install.md).
# Environment: LDCONFIG, the ldconfig command (default: ldconfig);
# LOADER_DIRS, the searched directories (default: what `ldconfig -v -N -X` lists).
set -eu
action=$1
libdir=$2
ldconfig=${LDCONFIG:-ldconfig}
if [ -z "${LOADER_DIRS+set}" ]; then
	# -N -X: read the configuration, write nothing. Directory lines end in ':'.
	LOADER_DIRS=$($ldconfig -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p') || LOADER_DIRS=
fi
want=$(realpath -m "$libdir")
for dir in $LOADER_DIRS; do
	[ "$(realpath -m "$dir")" = "$want" ] || continue
	echo "ldconfig: $libdir is on the loader's search path; updating its cache"
	if ! $ldconfig; then
		echo "warning: '$ldconfig' failed: run it as root so that programs find libsipreg.so" >&2
	fi
	exit 0
done
[ "$action" = install ] || exit 0
cat <<EOF
note: $libdir is not on the dynamic loader's search path, so a program linked
  with -lsipreg will not find libsipreg.so at run time unless you either
  link it with -Wl,-rpath,$libdir (CMake: CMAKE_INSTALL_RPATH / BUILD_RPATH),
  add $libdir to /etc/ld.so.conf.d/ and run ldconfig (as root), or
  set LD_LIBRARY_PATH=$libdir when running it. See docs/install.md.
EOF
