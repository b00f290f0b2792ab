"""Build of the sipreg binding; the wheel carries ``libsipreg.so`` when one is found.

The package is pure Python (ctypes); it needs the shared library at run time.
The library put into the wheel is, in order:

1. ``sipreg/libsipreg.so`` already in the package source (``build-wheel.sh``,
   ``make wheel`` stage it there in a temporary copy);
2. ``$SIPREG_LIBRARY``, when set;
3. the cargo build of the checkout the package sits in: the newest of
   ``target/release`` and ``target/debug`` (and of ``$CARGO_TARGET_DIR``), so
   ``pip install bindings/python`` after ``cargo build --release`` just works.
   It is copied without debug info (``strip --strip-debug``) into the build
   directory, never into the source tree.

A wheel with the library is tagged ``py3-none-manylinux_2_<N>_<arch>`` (any
Python 3, no CPython ABI) with N the newest glibc symbol version the library
needs. Without any of them the build stops and says what to run, unless
the system already has an installed libsipreg (``make install``), which the
pure package then loads. An editable install (``pip install -e``) bundles
nothing: the package finds the cargo build of its checkout at import time.
The version comes from Cargo.toml.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LIB_NAME = "libsipreg.so"
LIB = HERE / "sipreg" / LIB_NAME


def cargo_builds() -> List[Path]:
    """``libsipreg.so`` of the checkout's cargo target dirs, the newest first."""
    targets = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    if (ROOT / "Cargo.toml").is_file():
        targets.append(ROOT / "target")
    found = [t / p / LIB_NAME for t in targets for p in ("release", "debug")]
    return sorted((f for f in found if f.is_file()), key=lambda f: f.stat().st_mtime, reverse=True)


def library_to_bundle() -> Optional[Path]:
    """The library the wheel will carry (see the module docstring), or None."""
    if LIB.is_file():
        return LIB
    env = os.environ.get("SIPREG_LIBRARY")
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_file():
            raise SystemExit(f"sipreg: SIPREG_LIBRARY={env} is not a file")
        return path
    builds = cargo_builds()
    return builds[0] if builds else None


def no_library_message() -> str:
    """What to run when there is nothing to bundle."""
    where = ROOT if (ROOT / "Cargo.toml").is_file() else "the sipreg repository root"
    return (
        f"sipreg: no {LIB_NAME} to put into the package, and none is installed on this system.\n"
        f"Build it first, then install again:\n"
        f"    cd {where} && cargo build --release\n"
        f"    pip install {HERE}\n"
        f"(or set SIPREG_LIBRARY=/path/to/{LIB_NAME}, or install the C library with "
        f"`make && sudo make install`)."
    )


BUNDLED = library_to_bundle()


def cargo_version() -> str:
    """The crate version: $SIPREG_VERSION (set by build-wheel.sh) or ../../Cargo.toml."""
    env = os.environ.get("SIPREG_VERSION")
    if env:
        return env
    cargo = ROOT / "Cargo.toml"
    m = re.search(r'^version\s*=\s*"([^"]+)"', cargo.read_text(), re.M)
    if not m:
        raise SystemExit(f"no version in {cargo}")
    return m.group(1)


def glibc_platform(lib: Path) -> str:
    """``manylinux_2_<N>_<arch>`` for the newest GLIBC_2.N the library references."""
    needed = [int(n) for n in re.findall(rb"GLIBC_2\.([0-9]+)", lib.read_bytes())]
    minor = max(needed, default=17)
    arch = platform.machine()
    return f"manylinux_2_{max(minor, 17)}_{arch}"


class BinaryDistribution(Distribution):
    """Marks the wheel as platform-specific when it carries a shared library."""

    def has_ext_modules(self) -> bool:
        return BUNDLED is not None


class BuildPyWithLibrary(build_py):
    """Copies the cargo-built library into the build directory's package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or BUNDLED == LIB:
            return  # in the source tree already, or found from the checkout at import
        dest = Path(self.build_lib) / "sipreg" / LIB_NAME
        dest.unlink(missing_ok=True)  # a library an earlier build left in build/
        if BUNDLED is None:
            if ctypes.util.find_library("sipreg") is None:
                raise SystemExit(no_library_message())
            print("sipreg: no cargo build found; the package will load the installed libsipreg")
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        print(f"sipreg: bundling {BUNDLED}")
        strip = shutil.which("strip")
        if strip:
            subprocess.run([strip, "--strip-debug", "-o", str(dest), str(BUNDLED)], check=True)
        else:
            shutil.copyfile(BUNDLED, dest)
        dest.chmod(0o755)


class PlatformWheel(bdist_wheel):  # type: ignore[misc, valid-type]
    """Tags the wheel ``py3-none-manylinux_2_N_<arch>`` when the library is inside."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if BUNDLED is not None:
            self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        if BUNDLED is None:
            return super().get_tag()  # type: ignore[no-any-return]
        return "py3", "none", glibc_platform(BUNDLED)


setup(
    version=cargo_version(),
    distclass=BinaryDistribution,
    cmdclass={"bdist_wheel": PlatformWheel, "build_py": BuildPyWithLibrary},
)
