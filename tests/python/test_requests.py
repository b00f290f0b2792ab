"""The contact answers from Python: ``ua.requests`` listeners get the
requests a Kamailio proxy (tests/kamailio/contact.cfg) routes to the
registered contact, ``IncomingRequest.respond`` answers them (inside the
listener or after it), OPTIONS are answered by the library unless
``answer_options=False``, ``allow`` and ``contact_user`` shape the REGISTER
and the answers, ``ua.send`` puts the application's own MESSAGE on the
registered flow and its answer comes back, and bad arguments raise."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import pytest

import sipreg
from conftest import User, _free_port
from sipp import Sipp

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / "tests" / "kamailio" / "contact.cfg"
SCENARIOS = ROOT / "tests" / "sipp"


@dataclass
class Proxy:
    """A Kamailio running contact.cfg: registrar and proxy to registered contacts."""

    port: int
    rundir: str

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def log(self) -> str:
        return Path(self.rundir, "kamailio.log").read_text(errors="replace")

    def bindings(self, user: str) -> List[str]:
        p = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.rundir}/ctl", "ul.lookup", "location", f"{user}@127.0.0.1"],
            capture_output=True, text=True, timeout=10,
        )
        return [l.split("Address:", 1)[1].strip() for l in p.stdout.splitlines() if "Address:" in l]


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    rundir = tempfile.mkdtemp(prefix="sipreg-py-contact.")
    port = _free_port()
    ws = _free_port()
    log = open(os.path.join(rundir, "kamailio.log"), "w")
    proc = subprocess.Popen(
        ["kamailio", "-f", str(CFG), "-DD", "-E", "-m", "32", "-M", "8", "-Y", rundir,
         "-P", os.path.join(rundir, "kamailio.pid"),
         "-A", f"SIP_PORT={port}", "-A", f"WS_PORT={ws}",
         "-A", f'CTL_SOCK="unix:{rundir}/ctl"'],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    end = time.monotonic() + 10
    while subprocess.run(["kamcmd", "-s", f"unix:{rundir}/ctl", "core.uptime"],
                         capture_output=True).returncode != 0:
        assert proc.poll() is None, Path(rundir, "kamailio.log").read_text()
        assert time.monotonic() < end, "kamailio did not start"
        time.sleep(0.05)
    try:
        yield Proxy(port, rundir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(rundir, ignore_errors=True)


def register(proxy: Proxy, user: User, closing, **ua_kwargs) -> "tuple[sipreg.UserAgent, sipreg.Registerer]":
    ua = closing(sipreg.UserAgent(user.aor, password=user.password, t1=0.1, t2=0.8, t4=1.0, **ua_kwargs))
    r = closing(sipreg.Registerer(ua, registrar=proxy.registrar, expires=300, retry=False))
    r.register()
    assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=10.0), r.last_response
    return ua, r


def sipp_client(scenario: str, proxy: Proxy, service: str) -> Sipp:
    """SIPp sending ``scenario``'s requests to ``service`` through ``proxy``."""
    return Sipp(SCENARIOS / f"{scenario}.xml", _free_port(), (f"127.0.0.1:{proxy.port}", "-s", service))


def test_messages_reach_the_listener_and_its_answer_reaches_the_sender(proxy: Proxy, user: User, closing) -> None:
    ua, r = register(proxy, user, closing)
    got: List[sipreg.IncomingRequest] = []
    threads: List[bool] = []

    def on_request(req: sipreg.IncomingRequest) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        got.append(req)
        req.respond(200, headers=["X-Answered-By: sipreg-test"])

    ua.requests.add_listener(on_request)
    sipp_client("contact_message_info", proxy, user.name).passed()
    assert [g.method for g in got] == ["MESSAGE", "INFO"]
    msg = got[0]
    assert msg.uri.startswith(f"sip:{user.name}@127.0.0.1:")
    assert msg.body == f"hello {user.name}, this is sipp\r\n".encode()
    assert msg.header("content-type") == ["text/plain"]
    assert msg.header("c") == ["text/plain"], "compact names too"
    assert msg.header("X-Nothing") == []
    assert len(msg.header("Via")) >= 1
    assert msg.status is None
    assert msg.flow_id == r.flow_id and r.flow_id is not None
    assert msg.flow.startswith("udp:") and msg.flow.endswith(f"-> 127.0.0.1:{proxy.port}")
    assert "MESSAGE " in msg.message and repr(msg).startswith("<sipreg.IncomingRequest MESSAGE")
    assert got[1].body == b"Signal=5\r\nDuration=160\r\n"
    assert threads == [False, False], "listeners run on the library's worker thread"
    st = ua.stats
    assert st["requests"] >= 2 and st["answered"] >= 2


def test_an_answer_after_the_listener_returned(proxy: Proxy, user: User, closing) -> None:
    ua, _r = register(proxy, user, closing)
    pending: "list[sipreg.IncomingRequest]" = []
    arrived = threading.Event()

    def on_request(req: sipreg.IncomingRequest) -> None:
        pending.append(req)
        arrived.set()

    ua.requests.add_listener(on_request)
    sipp = sipp_client("contact_message_info", proxy, user.name)
    for _ in range(2):
        assert arrived.wait(15), "a request arrived"
        arrived.clear()
        time.sleep(0.3)
        pending.pop(0).respond(200, "Later", headers=("X-Answered-By: sipreg-test",), body="")
    sipp.passed()


def test_without_listener_405_and_options_answered_by_the_library(proxy: Proxy, user: User, closing) -> None:
    ua, r = register(proxy, user, closing, allow=("INVITE", "ACK", "BYE", "OPTIONS", "MESSAGE"))
    sipp_client("contact_expect_405", proxy, user.name).passed()
    # An OPTIONS straight to the contact gets 200 with our Allow.
    contact = r.contacts[0]
    host, port = contact.split("@", 1)[1].split(";")[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    me = "%s:%d" % s.getsockname()
    ping = (
        f"OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:tester@127.0.0.1>;tag=t1\r\nTo: <{contact}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    s.sendto(ping.encode(), (host, int(port)))
    answer = s.recv(4096).decode()
    assert answer.startswith("SIP/2.0 200 OK\r\n"), answer
    assert "\r\nAllow: INVITE, ACK, BYE, OPTIONS, MESSAGE\r\n" in answer
    # Nothing went to a listener: there was none.
    assert ua.stats["requests"] >= 2
    s.close()


def test_answer_options_off_hands_options_to_the_listener(proxy: Proxy, user: User, closing) -> None:
    ua, r = register(proxy, user, closing, answer_options=False, contact_user="desk-7")
    contact = r.contacts[0]
    assert contact.startswith("sip:desk-7@"), contact
    assert any(b.startswith("sip:desk-7@") for b in proxy.bindings(user.name))
    got: List[sipreg.IncomingRequest] = []
    ua.requests.add_listener(lambda req: (got.append(req), req.respond(200, headers=["X-App: yes"])))
    host, port = contact.split("@", 1)[1].split(";")[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    me = "%s:%d" % s.getsockname()
    ping = (
        f"OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:tester@127.0.0.1>;tag=t1\r\nTo: <{contact}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    s.sendto(ping.encode(), (host, int(port)))
    answer = s.recv(4096).decode()
    assert "\r\nX-App: yes\r\n" in answer, answer
    assert [g.method for g in got] == ["OPTIONS"]
    s.close()


def test_send_over_the_registered_flow_and_hear_the_answer(proxy: Proxy, user: User, closing) -> None:
    ua, r = register(proxy, user, closing)
    answers: List[sipreg.IncomingRequest] = []
    heard = threading.Event()
    ua.requests.add_listener(lambda req: (answers.append(req), heard.set()))
    # The far end: a socket that answers 200 to what the proxy forwards.
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.settimeout(5)
    far_port = far.getsockname()[1]
    local = r.flow.split(":", 1)[1].split(" -> ")[0]
    body = "sent over the flow"
    msg = (
        f"MESSAGE sip:far@127.0.0.1:{far_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{user.aor}>;tag=py1\r\nTo: <sip:far@127.0.0.1:{far_port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    assert r.flow_id is not None
    ua.send(r.flow_id, msg)
    data, src = far.recvfrom(65535)
    text = data.decode()
    assert text.startswith(f"MESSAGE sip:far@127.0.0.1:{far_port}") and text.endswith(body)
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [l for l in head[1:] if l.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(
        l + ";tag=far1" if l.lower().startswith("to:") else l for l in keep
    ) + "\r\nContent-Length: 0\r\n\r\n"
    far.sendto(reply.encode(), src)
    assert heard.wait(10), "the 200 reached the listener"
    assert answers[0].status == 200 and answers[0].method == "MESSAGE"
    assert answers[0].uri == ""
    with pytest.raises(sipreg.InvalidArgumentError):
        answers[0].respond(200)
    far.close()


def test_bad_arguments_raise(proxy: Proxy, user: User, closing) -> None:
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, allow="INVITE, OPTIONS")
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, allow=("IN VITE",))
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, allow=())
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, contact_user="a@b")
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, ws_origin="not an origin")
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent(user.aor, answer_options="yes")  # type: ignore[arg-type]
    ua, r = register(proxy, user, closing)
    flow = r.flow_id
    assert flow is not None
    for bad in (0, -1, True, "1"):
        with pytest.raises(sipreg.InvalidArgumentError):
            ua.send(bad, "OPTIONS sip:x SIP/2.0\r\n\r\n")  # type: ignore[arg-type]
    with pytest.raises(sipreg.InvalidArgumentError):
        ua.send(flow, b"not SIP at all")
    with pytest.raises(sipreg.InvalidArgumentError):
        ua.send(flow, b"x" * 70000)
    with pytest.raises(sipreg.InvalidArgumentError):
        ua.send(10**12, "OPTIONS sip:x@y SIP/2.0\r\nContent-Length: 0\r\n\r\n")
    raw = (
        f"MESSAGE sip:{user.name}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
        "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    req = sipreg.IncomingRequest(ua._handle, raw, "MESSAGE", "udp:?", flow)
    for status in (99, 700, True, 200.0):
        with pytest.raises(sipreg.InvalidArgumentError):
            req.respond(status)  # type: ignore[arg-type]
    with pytest.raises(sipreg.InvalidArgumentError):
        req.respond(200, headers="X-A: 1")  # type: ignore[arg-type]
    for h in (["Via: SIP/2.0/UDP x"], ["CSeq: 1 X"], ["X-A: 1\r\nX-B: 2"], ["no colon"]):
        with pytest.raises(sipreg.InvalidArgumentError):
            req.respond(200, headers=h)
    with pytest.raises(sipreg.InvalidArgumentError):
        req.respond(200, reason="bad\r\nreason")
    with pytest.raises(sipreg.InvalidArgumentError):
        req.respond(200, body=12)  # type: ignore[arg-type]
    bad_req = sipreg.IncomingRequest(ua._handle, b"garbage", "MESSAGE", "udp:?", flow)
    with pytest.raises(sipreg.InvalidArgumentError):
        bad_req.respond(200)
    stale = sipreg.IncomingRequest(ua._handle, raw, "MESSAGE", "udp:?", 10**12)
    with pytest.raises(sipreg.InvalidArgumentError):
        stale.respond(200)
    req.respond(486)  # a request of ours that came over nothing: answered on the flow anyway
    ua.close()
    with pytest.raises(sipreg.TerminatedError):
        req.respond(200)
    with pytest.raises(sipreg.TerminatedError):
        ua.send(flow, raw)


def test_no_listener_runs_after_close(proxy: Proxy, user: User, closing) -> None:
    ua, r = register(proxy, user, closing)
    calls: List[str] = []
    inside = threading.Event()
    release = threading.Event()

    def slow(req: sipreg.IncomingRequest) -> None:
        calls.append(req.method)
        inside.set()
        release.wait(5)

    ua.requests.add_listener(slow)
    contact = r.contacts[0]
    host, port = contact.split("@", 1)[1].split(";")[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    me = "%s:%d" % s.getsockname()

    def message(n: int) -> bytes:
        return (
            f"MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc{n}\r\n"
            f"From: <sip:t@127.0.0.1>;tag=t\r\nTo: <{contact}>\r\nCall-ID: close{n}\r\n"
            "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    s.sendto(message(1), (host, int(port)))
    assert inside.wait(5)
    # Close while the listener runs and more requests arrive.
    closer = threading.Thread(target=ua.close)
    closer.start()
    for n in range(2, 20):
        s.sendto(message(n), (host, int(port)))
    time.sleep(0.2)
    release.set()
    closer.join(15)
    assert not closer.is_alive()
    n = len(calls)
    for k in range(20, 30):
        s.sendto(message(k), (host, int(port)))
    time.sleep(0.5)
    assert len(calls) == n, "no listener call after close returned"
    s.close()


def test_the_reachable_example_prints_and_answers_messages(kamailio, user: User, sipreg_env) -> None:
    import sys as _sys

    proc = subprocess.Popen(
        [_sys.executable, str(ROOT / "examples" / "python" / "reachable.py"), "--aor", user.aor,
         "--password", user.password, "--registrar", kamailio.registrar, "--expires", "60", "--hold", "3"],
        env=sipreg_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == "state Registered\n", first + (proc.stderr.read() if proc.stderr else "")
    contact = kamailio.lookup(user.name)[0][0]
    sent = subprocess.run(
        [_sys.executable, str(ROOT / "tests" / "send-message.py"), contact, "hello\r\nfrom python"],
        capture_output=True, text=True, timeout=20,
    )
    assert sent.returncode == 0 and sent.stdout.startswith("SIP/2.0 200 OK"), sent.stdout + sent.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    lines = out.splitlines()
    assert any(
        l.startswith("message from <sip:tester@127.0.0.1>;tag=") and l.endswith(": hello  from python")
        for l in lines
    ), out
    assert lines[-1] == "state Terminated", out
    assert "Traceback" not in err


def test_asyncio_listeners_run_on_the_loop_thread(proxy: Proxy, user: User) -> None:
    import asyncio

    from sipreg import aio

    async def main() -> "tuple[list, Sipp]":
        loop_thread = threading.current_thread()
        got: list = []
        heard = asyncio.Event()
        async with aio.UserAgent(user.aor, password=user.password, t1=0.1, t2=0.8, t4=1.0) as ua:

            def on_request(req: sipreg.IncomingRequest) -> None:
                got.append((req.method, threading.current_thread() is loop_thread))
                req.respond(200, headers=["X-Answered-By: sipreg-test"])
                if req.method == "INFO":
                    heard.set()

            ua.requests.add_listener(on_request)
            r = aio.Registerer(ua, registrar=proxy.registrar, expires=60, retry=False)
            await r.register()
            sipp = sipp_client("contact_message_info", proxy, user.name)
            await asyncio.wait_for(heard.wait(), 30)
            await r.dispose()
        return got, sipp

    got, sipp = asyncio.run(main())
    sipp.passed()
    assert got == [("MESSAGE", True), ("INFO", True)]
