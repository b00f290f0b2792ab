"""Fixtures for the sipreg Python binding tests.

The tests need the Kamailio test registrar (tests/kamailio). If
SIPREG_KAMAILIO_PORT / SIPREG_KAMAILIO_RUNDIR are exported (tests/run-all.sh,
tests/kamailio/ensure.sh) that one is used; otherwise one is started on a free
loopback port for the session and stopped at the end.

The binding is imported from bindings/python of this checkout; the library
from $SIPREG_LIBRARY, else the cargo target dir. With SIPREG_TEST_INSTALLED=1
the installed package is tested instead (tests/wheel-check.sh).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDINGS = ROOT / "bindings" / "python"
KAMCTL = ROOT / "tests" / "kamailio" / "kamctl.sh"
HEADER = ROOT / "include" / "sipreg.h"

#: SIPREG_TEST_INSTALLED=1: test the installed package (the wheel in a venv,
#: with the library inside it) instead of this checkout's bindings/python.
INSTALLED = os.environ.get("SIPREG_TEST_INSTALLED") == "1"

if not INSTALLED and str(BINDINGS) not in sys.path:
    sys.path.insert(0, str(BINDINGS))
# The helpers the Python tests share with tests/dns (wait, sipp).
if str(ROOT / "tests" / "support") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "support"))

from wait import PATIENCE, wait_until  # noqa: E402


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (and TCP on ::1), below the
    kernel's ephemeral range so no client socket bound to port 0 takes it
    before the peer binds it."""
    while True:
        port = random.randint(20000, 31999)
        if port in _handed_out:
            continue
        try:
            t6 = socket.socket(socket.AF_INET6)
            t6.bind(("::1", port))
            t6.close()
        except OSError:
            continue
        if _port_free(port):
            _handed_out.add(port)
            return port


_handed_out: Set[int] = set()


@dataclass
class Kamailio:
    """A running test registrar."""

    port: int
    rundir: str

    @property
    def registrar(self) -> str:
        """Request-URI of the registrar (UDP unless the UA says otherwise)."""
        return f"sip:127.0.0.1:{self.port}"

    def lookup(self, user: str) -> List[Tuple[str, int]]:
        """Kamailio's bindings of ``user``: ``[(address, expires_left)]`` ([] if none)."""
        p = subprocess.run(
            [str(KAMCTL), "lookup", self.rundir, f"{user}@127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if p.returncode != 0:
            return []
        addrs = re.findall(r"^\s*Address:\s*(\S+)", p.stdout, re.M)
        expires = [int(x) for x in re.findall(r"^\s*Expires:\s*(-?\d+)", p.stdout, re.M)]
        return list(zip(addrs, expires + [0] * (len(addrs) - len(expires))))

    def wait_bindings(
        self, user: str, count: int, timeout: float = PATIENCE
    ) -> List[Tuple[str, int]]:
        """Polls until ``user`` has exactly ``count`` bindings (returns the last lookup)."""
        last: List[Tuple[str, int]] = []

        def have() -> bool:
            nonlocal last
            last = self.lookup(user)
            return len(last) == count

        wait_until(have, timeout, step=0.1)
        return last


@pytest.fixture(scope="session")
def kamailio() -> Iterator[Kamailio]:
    port = os.environ.get("SIPREG_KAMAILIO_PORT")
    rundir = os.environ.get("SIPREG_KAMAILIO_RUNDIR")
    if port and rundir:
        yield Kamailio(int(port), rundir)
        return
    rundir = tempfile.mkdtemp(prefix="sipreg-pytest-kam.")
    port_n = _free_port()
    subprocess.run([str(KAMCTL), "start", rundir, str(port_n)], check=True, timeout=30)
    try:
        yield Kamailio(port_n, rundir)
    finally:
        subprocess.run([str(KAMCTL), "stop", rundir], timeout=30)
        shutil.rmtree(rundir, ignore_errors=True)


@dataclass
class SecureKamailio(Kamailio):
    """A registrar that also serves TLS, WS and WSS (kamctl.sh "secure")."""

    tls_port: int = 0
    wrong_port: int = 0
    ws_port: int = 0
    wss_port: int = 0
    expired_port: int = 0

    def cert(self, name: str) -> str:
        """A file of the throwaway PKI: ``ca.pem``, ``other-ca.pem``, ..."""
        return os.path.join(self.rundir, "certs", name)


@pytest.fixture(scope="session")
def secure_kamailio() -> Iterator[SecureKamailio]:
    rundir = tempfile.mkdtemp(prefix="sipreg-pytest-kams.")
    ports: List[int] = []
    while len(ports) < 6:
        p = _free_port()
        if p not in ports:
            ports.append(p)
    subprocess.run(
        [str(KAMCTL), "start", rundir, str(ports[0]), "secure"] + [str(p) for p in ports[1:]],
        check=True,
        timeout=60,
    )
    try:
        yield SecureKamailio(ports[0], rundir, *ports[1:])
    finally:
        subprocess.run([str(KAMCTL), "stop", rundir], timeout=30)
        shutil.rmtree(rundir, ignore_errors=True)


_used_users: Set[int] = set()


@dataclass
class User:
    """A test user ``user<N>`` / ``pw-user<N>`` of the registrar."""

    name: str
    password: str

    @property
    def aor(self) -> str:
        return f"sip:{self.name}@127.0.0.1"


def _new_user() -> User:
    while True:
        n = random.randint(700000, 999999)
        if n not in _used_users:
            _used_users.add(n)
            return User(f"user{n}", f"pw-user{n}")


@pytest.fixture
def user() -> User:
    """A fresh user nobody else in this run registers."""
    return _new_user()


@pytest.fixture
def new_user() -> Callable[[], User]:
    """A factory of fresh users."""
    return _new_user


@pytest.fixture
def sipreg_env() -> dict:
    """The environment for subprocesses: the binding importable, the library found."""
    env = dict(os.environ)
    if INSTALLED:
        return env  # sys.executable is the venv's Python: the installed package
    env["PYTHONPATH"] = os.pathsep.join(
        [str(BINDINGS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


@pytest.fixture
def closing() -> Iterator[Callable]:
    """Registers objects to close at the end of the test (even when it fails)."""
    objs: list = []

    def add(obj):
        objs.append(obj)
        return obj

    yield add
    for obj in reversed(objs):
        try:
            obj.close()
        except Exception:  # noqa: BLE001
            pass

