"""Issue 10 from Python: keepalive / contact_rewrite arguments, and the routing
facts of a SIPp 200 (Service-Route, Path, GRUUs) and the public address the
registrar saw, exposed as Registerer properties and cleared on unregister."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import sipreg
from conftest import PATIENCE, _free_port
from sipp import Sipp

SCENARIOS = Path(__file__).resolve().parents[1] / "sipp"


def _sipp(scenario: str) -> Sipp:
    return Sipp(SCENARIOS / f"{scenario}.xml", _free_port())


@pytest.fixture
def ua() -> Iterator[sipreg.UserAgent]:
    with sipreg.UserAgent("sip:alice@127.0.0.1", t1=0.05, t2=0.4, t4=0.5,
                          shutdown_timeout=1.0, keepalive=15,
                          contact_rewrite=True) as u:
        yield u


def test_routing_facts_from_a_sipp_200(ua: sipreg.UserAgent) -> None:
    sipp = _sipp("routing_facts")
    r = sipreg.Registerer(ua, expires=60, registrar=sipp.registrar, retry=False,
                          instance_id="00000000-0000-4000-8000-000000000010",
                          path_gruu=True)
    assert r.service_route == [] and r.path == []
    assert r.pub_gruu is None and r.temp_gruu is None and r.public_address is None
    r.register()
    assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=PATIENCE)
    assert r.service_route == [
        "sip:orig@scscf.example.test;lr",
        "sip:mmtel.example.test;lr",
        "sip:third.example.test;lr",
    ]
    assert r.path == ["sip:pcscf.example.test;lr;ob"]
    assert r.pub_gruu == "sip:alice@example.test;gr=urn:uuid:00000000-0000-4000-8000-000000000010"
    assert r.temp_gruu == "sip:tgruu.7deacf@example.test;gr"
    r.unregister()
    assert r.wait_for(sipreg.RegistererState.UNREGISTERED, timeout=PATIENCE)
    assert r.service_route == [] and r.path == []
    assert r.pub_gruu is None and r.temp_gruu is None
    sipp.passed()
    r.dispose()


def test_public_address_and_rewrite_loop_guard(ua: sipreg.UserAgent) -> None:
    sipp = _sipp("rewrite_loop")
    r = sipreg.Registerer(ua, expires=60, registrar=sipp.registrar, retry=False)
    r.register()
    assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=PATIENCE)
    sipp.passed()
    assert r.public_address == "127.0.0.1:40002"
    assert r.state is sipreg.RegistererState.REGISTERED
    r.dispose()


def test_keepalive_argument_is_checked() -> None:
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent("sip:alice@127.0.0.1", keepalive=3601)
    with sipreg.UserAgent("sip:alice@127.0.0.1", keepalive=0, contact_rewrite=False):
        pass
