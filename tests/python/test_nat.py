"""Issue 10 from Python: keepalive / contact_rewrite arguments, and the routing
facts of a SIPp 200 (Service-Route, Path, GRUUs) and the public address the
registrar saw, exposed as Registerer properties and cleared on unregister."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

import sipreg

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "sipp"


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


class Sipp:
    def __init__(self, scenario: str) -> None:
        if shutil.which("sipp") is None:
            pytest.fail("sipp not found (tests/setup-machine.sh installs sip-tester)")
        self.port = _free_udp_port()
        self.dir = tempfile.mkdtemp(prefix="sipreg-py-sipp-")
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1",
             "-p", str(self.port), "-t", "u1", "-m", "1", "-nostdin", "-timeout", "30s",
             "-timeout_error", "-trace_err", "-error_file", f"{self.dir}/errors.log"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        want = f":{self.port:04X} "
        end = time.monotonic() + 5
        while want not in Path("/proc/net/udp").read_text():
            assert time.monotonic() < end, "sipp did not bind"
            time.sleep(0.01)

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def passed(self, timeout: float) -> None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        errors = Path(self.dir, "errors.log")
        detail = errors.read_text() if errors.exists() else ""
        assert code == 0, f"sipp exit {code}: {detail}"
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def ua() -> Iterator[sipreg.UserAgent]:
    with sipreg.UserAgent("sip:alice@127.0.0.1", t1=0.05, t2=0.4, t4=0.5,
                          shutdown_timeout=1.0, keepalive=15,
                          contact_rewrite=True) as u:
        yield u


def test_routing_facts_from_a_sipp_200(ua: sipreg.UserAgent) -> None:
    sipp = Sipp("routing_facts")
    r = sipreg.Registerer(ua, expires=60, registrar=sipp.registrar, retry=False,
                          instance_id="00000000-0000-4000-8000-000000000010",
                          path_gruu=True)
    assert r.service_route == [] and r.path == []
    assert r.pub_gruu is None and r.temp_gruu is None and r.public_address is None
    r.register()
    assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=3)
    assert r.service_route == [
        "sip:orig@scscf.example.test;lr",
        "sip:mmtel.example.test;lr",
        "sip:third.example.test;lr",
    ]
    assert r.path == ["sip:pcscf.example.test;lr;ob"]
    assert r.pub_gruu == "sip:alice@example.test;gr=urn:uuid:00000000-0000-4000-8000-000000000010"
    assert r.temp_gruu == "sip:tgruu.7deacf@example.test;gr"
    r.unregister()
    assert r.wait_for(sipreg.RegistererState.UNREGISTERED, timeout=3)
    assert r.service_route == [] and r.path == []
    assert r.pub_gruu is None and r.temp_gruu is None
    sipp.passed(5)
    r.dispose()


def test_public_address_and_rewrite_loop_guard(ua: sipreg.UserAgent) -> None:
    sipp = Sipp("rewrite_loop")
    r = sipreg.Registerer(ua, expires=60, registrar=sipp.registrar, retry=False)
    r.register()
    assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=3)
    sipp.passed(8)
    assert r.public_address == "127.0.0.1:40002"
    assert r.state is sipreg.RegistererState.REGISTERED
    r.dispose()


def test_keepalive_argument_is_checked() -> None:
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent("sip:alice@127.0.0.1", keepalive=3601)
    with sipreg.UserAgent("sip:alice@127.0.0.1", keepalive=0, contact_rewrite=False):
        pass
