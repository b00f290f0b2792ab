"""Wheel build of the sipreg binding with ``libsipreg.so`` inside the package.

The package is pure Python (ctypes), but a wheel that carries the shared
library is platform-specific: it is tagged ``py3-none-<platform>`` (any
Python 3, no CPython ABI), where the platform is ``manylinux_2_<N>_<arch>``
with N the newest glibc symbol version the library needs, read from the
library itself. Use ``build-wheel.sh`` (or ``make wheel`` in the repository
root), which stages the library; the version comes from Cargo.toml.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from setuptools import setup
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
LIB = HERE / "sipreg" / "libsipreg.so"


def cargo_version() -> str:
    """The crate version: $SIPREG_VERSION (set by build-wheel.sh) or ../../Cargo.toml."""
    env = os.environ.get("SIPREG_VERSION")
    if env:
        return env
    cargo = HERE.parent.parent / "Cargo.toml"
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
    """Marks the wheel as platform-specific (it carries a shared library)."""

    def has_ext_modules(self) -> bool:
        return LIB.is_file()


class PlatformWheel(bdist_wheel):  # type: ignore[misc, valid-type]
    """Tags the wheel ``py3-none-manylinux_2_N_<arch>`` when the library is inside."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if LIB.is_file():
            self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        if not LIB.is_file():
            return super().get_tag()  # type: ignore[no-any-return]
        return "py3", "none", glibc_platform(LIB)


setup(
    version=cargo_version(),
    distclass=BinaryDistribution,
    cmdclass={"bdist_wheel": PlatformWheel},
)
