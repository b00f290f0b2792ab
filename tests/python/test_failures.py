"""Why a registration failed, from Python (issue 19): Registerer.failure,
failure_event, register(wait=...) and the RegistrationError family, each
failure reached for real (Kamailio, refused and silent ports, a wrong CA);
exact pacing stats after many registrations."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

import sipreg
from conftest import Kamailio, SecureKamailio, User

REG = sipreg.RegistererState
SIPP_DIR = Path(__file__).resolve().parents[1] / "sipp"


class Sipp:
    """SIPp playing a registrar scenario of tests/sipp on a loopback UDP port,
    optionally with its status line replaced (SIPp needs a literal status)."""

    def __init__(self, tmp: Path, scenario: str, status_line: Optional[str] = None) -> None:
        text = (SIPP_DIR / f"{scenario}.xml").read_text()
        if status_line is not None:
            text = text.replace("SIP/2.0 403 Forbidden", status_line)
        path = tmp / f"{scenario}.xml"
        path.write_text(text)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.port = int(s.getsockname()[1])
        s.close()
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(self.port), "-t", "u1",
             "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # Bound once /proc lists the port.
        want = f":{self.port:04X}"
        for _ in range(500):
            if any(want in line.split()[1] for line in Path("/proc/net/udp").read_text().splitlines()[1:]):
                break
            threading.Event().wait(0.01)

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def finish(self) -> int:
        return self.proc.wait(timeout=30)


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (tests/setup-machine.sh installs it)")
    started: List[Sipp] = []

    def start(scenario: str, status_line: Optional[str] = None) -> Sipp:
        started.append(Sipp(tmp_path, scenario, status_line))
        return started[-1]

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def _closed_port(kind: int) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_wrong_password_raises_authentication_error(kamailio: Kamailio, user: User) -> None:
    with sipreg.UserAgent(user.aor, password="not-it") as ua:
        r = sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60)
        seen: List[sipreg.Failure] = []
        r.failure_event.add_listener(seen.append)
        with pytest.raises(sipreg.AuthenticationError) as e:
            r.register(wait=10.0)
        f = e.value.failure
        assert f.kind is sipreg.FailureKind.AUTH_REJECTED
        assert (f.status, f.reason) == (401, "Unauthorized")
        assert f.detail == 'credentials for realm "127.0.0.1" were rejected'
        assert e.value.next_retry is None, "an authentication failure is not retried"
        assert isinstance(e.value, sipreg.RegistrationError)
        assert isinstance(e.value, sipreg.SipregError)
        assert r.failure == f, "the accessor keeps it"
        assert seen == [f], "failure_event told it once"
        assert r.state is REG.UNREGISTERED


def test_no_password_is_no_credentials(kamailio: Kamailio, user: User) -> None:
    with sipreg.UserAgent(user.aor) as ua:
        r = sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60)
        with pytest.raises(sipreg.AuthenticationError) as e:
            r.register(wait=10.0)
        assert e.value.failure.kind is sipreg.FailureKind.NO_CREDENTIALS
        assert "no password" in e.value.failure.detail


def test_success_returns_and_clears_the_failure(kamailio: Kamailio, user: User) -> None:
    with sipreg.UserAgent(user.aor, password="wrong") as ua:
        r = sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60)
        with pytest.raises(sipreg.AuthenticationError):
            r.register(wait=10.0)
        ua.set_password(user.password)
        assert r.register(wait=10.0) is None
        assert r.state is REG.REGISTERED
        assert r.failure is None
        # Registered already: the next register(wait) returns on its 2xx.
        r.register(wait=10.0)
        assert r.state is REG.REGISTERED
        r.dispose()


def test_refused_tcp_port_raises_unreachable_with_the_retry_time(user: User) -> None:
    port = _closed_port(socket.SOCK_STREAM)
    with sipreg.UserAgent(user.aor, password="pw", transport="tcp") as ua:
        r = sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", retry_base=30.0)
        with pytest.raises(sipreg.RegistrarUnreachableError) as e:
            r.register(wait=10.0)
        f = e.value.failure
        assert f.kind is sipreg.FailureKind.TRANSPORT
        assert (f.status, f.reason) == (503, "Service Unavailable")
        assert "refused" in f.detail and str(port) in f.detail, f.detail
        # An automatic retry was scheduled: the error says when (it goes on).
        assert e.value.next_retry is not None and e.value.next_retry > 0
        assert "retrying in" in str(e.value)


def test_silent_udp_port_raises_timeout_failure(user: User) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        with sipreg.UserAgent(user.aor, password="pw", t1=0.01, t2=0.04, t4=0.05) as ua:
            r = sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", retry=False)
            with pytest.raises(sipreg.RegistrarUnreachableError) as e:
                r.register(wait=10.0)
            f = e.value.failure
            assert f.kind is sipreg.FailureKind.TIMEOUT
            assert (f.status, f.reason) == (408, "Request Timeout")
            assert f.detail == f"no final response from 127.0.0.1:{port} within 0.6 s (Timer F)"
    finally:
        silent.close()


def test_wait_that_runs_out_raises_timeout_error(user: User) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        with sipreg.UserAgent(user.aor, password="pw", shutdown_timeout=0.2) as ua:
            r = sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{port}")
            # Timer F is 32 s: the wait ends first, the request stays in flight.
            with pytest.raises(TimeoutError):
                r.register(wait=0.3)
            assert r.failure is None
            with pytest.raises(sipreg.RequestPendingError):
                r.register(wait=0.3)
    finally:
        silent.close()


def test_wrong_ca_raises_tls_error(secure_kamailio: SecureKamailio, user: User) -> None:
    k = secure_kamailio
    with sipreg.UserAgent(
        user.aor, password=user.password, transport="tls", tls_ca_file=k.cert("other-ca.pem")
    ) as ua:
        r = sipreg.Registerer(ua, registrar=f"sips:127.0.0.1:{k.tls_port}", retry=False)
        with pytest.raises(sipreg.TlsError) as e:
            r.register(wait=10.0)
        f = e.value.failure
        assert f.kind is sipreg.FailureKind.TLS
        assert f.status == 503
        assert "not signed by a trusted CA" in f.detail, f.detail
        assert f"127.0.0.1:{k.tls_port}" in f.detail, f.detail


def test_wait_inside_a_listener_is_refused(kamailio: Kamailio, user: User) -> None:
    errors: List[BaseException] = []
    done = threading.Event()
    with sipreg.UserAgent(user.aor, password=user.password) as ua:
        r = sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60)

        def on_state(state: sipreg.RegistererState) -> None:
            if state is REG.REGISTERED:
                try:
                    r.register(wait=1.0)
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)
                done.set()

        r.state_change.add_listener(on_state)
        r.register(wait=10.0)
        assert done.wait(5.0)
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
        r.dispose()


def test_failure_kind_names_match_the_library() -> None:
    lib = sipreg._lib.lib
    for kind in sipreg.FailureKind:
        assert lib.sipreg_failure_str(kind.value).decode() == kind.label
    assert lib.sipreg_failure_str(0).decode() == "none"
    for state in sipreg.RegistererState:
        assert lib.sipreg_state_str(state.value).decode() == state.label


def test_stats_are_exact_after_all_accounts_registered(kamailio: Kamailio, new_user) -> None:
    users = [new_user() for _ in range(50)]
    uas = [sipreg.UserAgent(u.aor, password=u.password) for u in users]
    try:
        regs = [sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60) for ua in uas]
        for r in regs:
            r.register()
        for r in regs:
            assert r.wait_for(REG.REGISTERED, 15.0), r.last_response
        # Every transaction ended before its Registered was told: nothing in
        # flight or queued for the registrar, whichever account is asked.
        for ua in uas:
            st = ua.stats
            assert (st["in_flight"], st["queued"]) == (0, 0), st
            assert st["window"] >= 32, st
    finally:
        for ua in uas:
            ua.close()


@pytest.mark.parametrize("status,reason", [(403, "Forbidden"), (404, "Not Found")])
def test_registrar_refusal_raises_rejected(
    sipp: Callable[..., Sipp], user: User, status: int, reason: str
) -> None:
    peer = sipp("permanent_failure", f"SIP/2.0 {status} {reason}")
    with sipreg.UserAgent(user.aor, password="pw") as ua:
        r = sipreg.Registerer(ua, registrar=peer.registrar, expires=60)
        with pytest.raises(sipreg.RegistrationRejectedError) as e:
            r.register(wait=10.0)
        f = e.value.failure
        assert f.kind is sipreg.FailureKind.REJECTED
        assert (f.status, f.reason) == (status, reason)
        assert f.detail == f"the registrar answered {status} {reason}"
        assert e.value.next_retry is None, f"{status} is permanent"
    assert peer.finish() == 0


def test_interval_too_brief_raises_rejected(sipp: Callable[..., Sipp], user: User) -> None:
    peer = sipp("min_expires_missing")
    with sipreg.UserAgent(user.aor, password="pw") as ua:
        r = sipreg.Registerer(ua, registrar=peer.registrar, expires=1)
        with pytest.raises(sipreg.RegistrationRejectedError) as e:
            r.register(wait=10.0)
        assert e.value.failure.kind is sipreg.FailureKind.INTERVAL_TOO_BRIEF
        assert e.value.failure.status == 423
    assert peer.finish() == 0
