"""The installed wheel (SIPREG_TEST_INSTALLED=1, tests/wheel-check.sh): the
package and its library come from the venv, not from this checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import INSTALLED, ROOT

pytestmark = pytest.mark.skipif(not INSTALLED, reason="only for the installed wheel")


def test_package_and_library_come_from_the_install() -> None:
    import sipreg

    pkg = Path(sipreg.__file__).resolve().parent
    assert ROOT not in pkg.parents, pkg
    assert "SIPREG_LIBRARY" not in os.environ
    assert Path(sipreg.library_path).resolve() == pkg / "libsipreg.so"
    assert (pkg / "py.typed").is_file()


def test_version_is_the_crate_version() -> None:
    import re

    import sipreg

    cargo = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', cargo, re.M)
    assert m is not None
    assert sipreg.__version__ == sipreg.version() == m.group(1)
    from importlib.metadata import version

    assert version("sipreg") == m.group(1)
