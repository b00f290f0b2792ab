"""The message trace (``UserAgent.trace``) against the Kamailio test registrar."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import sipreg

S = sipreg.RegistererState


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_every_message_is_traced_and_credentials_redacted(
    kamailio, user, closing, transport: str
) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password, transport=transport))
    records: List[sipreg.TraceRecord] = []
    lock = threading.Lock()

    def keep(rec: sipreg.TraceRecord) -> None:
        with lock:
            records.append(rec)

    ua.trace.add_listener(keep)
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    before = time.time()
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0), (r.state, r.last_response)
    r.dispose()
    with lock:
        recs = list(records)
    sent = [x for x in recs if x.direction == "sent"]
    received = [x for x in recs if x.direction == "received"]
    # REGISTER, 401, REGISTER with credentials, 200, un-REGISTER, 200.
    assert [x.message.split(" ", 1)[0] for x in sent][:3] == ["REGISTER"] * 3
    assert [x.message.split("\r\n", 1)[0] for x in received][:3] == [
        "SIP/2.0 401 Unauthorized",
        "SIP/2.0 200 OK",
        "SIP/2.0 200 OK",
    ]
    remote = kamailio.registrar[len("sip:"):]
    for x in recs:
        assert x.transport == transport
        assert x.remote == remote
        assert x.local.startswith("127.0.0.1:") and x.local != remote
        assert before - 1 <= x.timestamp <= time.time() + 1
        assert user.password not in x.message
        assert "response=" not in x.message and "nonce=" not in x.message.split("WWW-Auth")[0]
    assert [x.timestamp for x in recs] == sorted(x.timestamp for x in recs)
    authed = [x for x in sent if "\r\nAuthorization: " in x.message]
    assert len(authed) >= 2
    assert all("\r\nAuthorization: Digest <redacted>\r\n" in x.message for x in authed)
    # The readable form names both ends and indents the message.
    text = str(sent[0])
    assert text.startswith("--- ") and f" sent {transport} " in text and f"-> {remote} " in text
    assert "\n    REGISTER sip:" in text
    # One listener fewer: no more records.
    ua.trace.remove_listener(keep)
    n = len(records)
    r2 = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    r2.register()
    assert r2.wait_for(S.REGISTERED, timeout=5.0)
    assert len(records) == n


def test_no_listener_call_after_close(kamailio, user) -> None:
    ua = sipreg.UserAgent(user.aor, password=user.password, shutdown_timeout=0.0)
    closed = threading.Event()
    late: List[sipreg.TraceRecord] = []
    seen: List[sipreg.TraceRecord] = []

    def listener(rec: sipreg.TraceRecord) -> None:
        (late if closed.is_set() else seen).append(rec)

    ua.trace.add_listener(listener)
    r = sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar)
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0)
    ua.close()  # the un-REGISTER may still be in flight
    closed.set()
    time.sleep(0.3)
    assert seen and not late
    r.close()


def test_listener_may_call_into_the_library(kamailio, user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    calls: List[str] = []
    errors: List[BaseException] = []

    def listener(rec: sipreg.TraceRecord) -> None:
        try:
            calls.append(rec.direction)
            assert ua.stats["sent"] >= 1
            assert r.state in (S.INITIAL, S.REGISTERED)
            ua.trace.remove_listener(listener)  # removes the C callback from the worker thread
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ua.trace.add_listener(listener)
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0)
    assert not errors
    assert calls == ["sent"]


@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
def test_trace_over_stream_transports_shows_the_sip_text(secure_kamailio, user, transport: str) -> None:
    k = secure_kamailio
    port = {"tls": k.tls_port, "ws": k.ws_port, "wss": k.wss_port}[transport]
    registrar = {
        "tls": f"sips:127.0.0.1:{port}",
        "ws": f"sip:127.0.0.1:{port};transport=ws",
        "wss": f"sip:127.0.0.1:{port};transport=wss",
    }[transport]
    records: List[sipreg.TraceRecord] = []
    with sipreg.UserAgent(
        user.aor, password=user.password, transport=transport, tls_ca_file=k.cert("ca.pem")
    ) as ua:
        ua.trace.add_listener(records.append)
        r = sipreg.Registerer(ua, registrar=registrar, expires=60, retry=False)
        r.register()
        assert r.wait_for(S.REGISTERED, timeout=10), r.last_response
        r.dispose()
    # Decrypted, unframed SIP text both ways, on the one connection the flow names.
    assert [x.direction for x in records][:4] == ["sent", "received", "sent", "received"]
    assert all(x.transport == transport and x.remote == f"127.0.0.1:{port}" for x in records)
    assert len({x.local for x in records}) == 1
    assert records[0].message.startswith("REGISTER sip")
    assert records[1].message.startswith("SIP/2.0 401 ")
    assert "\r\nAuthorization: Digest <redacted>\r\n" in records[2].message
    assert not any(user.password in x.message or "response=" in x.message for x in records)
