"""Credentials (``credentials=[sipreg.Credential(...)]``) and per-request headers
(``register(extra_headers=...)``) against the Kamailio test registrar, whose
realm is the To domain, 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import List

import pytest

import sipreg

S = sipreg.RegistererState
REALM = "127.0.0.1"


def _ha1(user: str, password: str, algorithm: str = "md5") -> str:
    return hashlib.new(algorithm, f"{user}:{REALM}:{password}".encode()).hexdigest()


def test_an_md5_ha1_registers_without_the_password(kamailio, user, closing) -> None:
    cred = sipreg.Credential(ha1=_ha1(user.name, user.password).upper())
    ua = closing(sipreg.UserAgent(user.aor, credentials=[cred]))
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0), r.last_response
    assert len(kamailio.wait_bindings(user.name, 1)) == 1


def test_the_realms_own_credential_wins_over_a_wrong_password(kamailio, new_user, closing) -> None:
    good = new_user()
    ua = closing(
        sipreg.UserAgent(
            good.aor,
            password="wrong",
            credentials=[sipreg.Credential(realm=REALM, password=good.password)],
        )
    )
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar, retry=False))
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0), r.last_response

    # Another realm's right password does not apply.
    other = new_user()
    ua2 = closing(
        sipreg.UserAgent(
            other.aor,
            password="wrong",
            credentials=[sipreg.Credential(realm="another.realm", password=other.password)],
        )
    )
    r2 = closing(sipreg.Registerer(ua2, expires=60, registrar=kamailio.registrar, retry=False))
    r2.register()
    assert r2.wait_for(S.UNREGISTERED, timeout=5.0)
    assert not kamailio.lookup(other.name)

    # Added later, it is used by the next REGISTER.
    ua2.add_credential(sipreg.Credential(realm=REALM, password=other.password))
    r2.register()
    assert r2.wait_for(S.REGISTERED, timeout=5.0), r2.last_response


def test_credential_arguments_are_checked_and_secrets_kept_out_of_repr() -> None:
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.Credential(realm="r")
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.Credential(password="pw", ha1="00" * 16)
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.Credential(ha1="00" * 16, ha1_algorithm="SHA-1")
    c = sipreg.Credential(realm="r", username="u", password="s3cret")
    assert "s3cret" not in repr(c) and "'r'" in repr(c)
    h = sipreg.Credential(ha1="ab" * 32, ha1_algorithm="sha-256")
    assert "ab" * 32 not in repr(h)
    # The library checks the HA1 against its algorithm.
    for bad in (
        sipreg.Credential(ha1="ab" * 32),  # 64 digits for MD5
        sipreg.Credential(ha1="zz" * 16),
        sipreg.Credential(ha1="ab" * 16, ha1_algorithm="SHA-512-256"),
        sipreg.Credential(username="", password="pw"),
        sipreg.Credential(password="p\r\nw"),
    ):
        with pytest.raises(sipreg.InvalidArgumentError) as e:
            sipreg.UserAgent("sip:alice@127.0.0.1", credentials=[bad])
        secret = bad.password or bad.ha1 or ""
        if len(secret) >= 8:
            assert secret not in str(e.value), "the secret is never echoed"
    with pytest.raises(TypeError):
        sipreg.UserAgent("sip:alice@127.0.0.1", credentials=["pw"])  # type: ignore[list-item]
    with sipreg.UserAgent("sip:alice@127.0.0.1", digest_downgrade=True) as ua:
        ua.set_digest_downgrade(False)


def _call_id(message: str) -> str:
    m = re.search(r"^Call-ID: (\S+)", message, re.M)
    return m.group(1) if m else ""


def test_request_headers_go_on_the_register_and_its_retry_but_not_the_refresh(
    kamailio, user, closing
) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    sent: List[str] = []
    refreshed = threading.Event()
    lock = threading.Lock()

    def keep(rec: sipreg.TraceRecord) -> None:
        if rec.direction == "sent" and rec.message.startswith("REGISTER "):
            with lock:
                sent.append(rec.message)
                if len(sent) >= 3:
                    refreshed.set()

    ua.trace.add_listener(keep)
    # A 2 s grant: the refresh follows within about a second.
    r = closing(sipreg.Registerer(ua, expires=2, registrar=kamailio.registrar))
    r.register(extra_headers=["X-Once: 1", "  X-Trace: abc  "])
    assert r.wait_for(S.REGISTERED, timeout=5.0), r.last_response
    assert refreshed.wait(10.0), "the refresh was sent"
    with lock:
        first, retry, refresh = sent[:3]
    assert "\r\nAuthorization: " not in first and "\r\nAuthorization: " in retry
    for m in (first, retry):
        assert "\r\nX-Once: 1\r\n" in m and "\r\nX-Trace: abc\r\n" in m, m
    assert "X-Once" not in refresh and "X-Trace" not in refresh, refresh
    assert _call_id(refresh) == _call_id(first)


def test_unregister_with_request_headers(kamailio, user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    sent: List[str] = []
    ua.trace.add_listener(
        lambda rec: sent.append(rec.message)
        if rec.direction == "sent" and rec.message.startswith("REGISTER ")
        else None
    )
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0)
    n = len(sent)
    r.unregister(all=True, extra_headers=("X-Bye: now",))
    assert r.wait_for(S.UNREGISTERED, timeout=5.0)
    assert not kamailio.wait_bindings(user.name, 0)
    later = sent[n:]
    assert later and all("\r\nX-Bye: now\r\n" in m and "\r\nContact: *\r\n" in m for m in later)
    assert all("X-Bye" not in m for m in sent[:n])


def test_bad_request_headers_raise_and_send_nothing(kamailio, user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    r = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    for bad in (
        ["Contact: <sip:x@127.0.0.1>"],
        ["X-A: 1\r\nVia: evil"],
        ["no colon"],
        "X-A: 1",  # one string, not a sequence of them
        ["X-A: \0"],
    ):
        with pytest.raises(sipreg.InvalidArgumentError):
            r.register(extra_headers=bad)
        with pytest.raises(sipreg.InvalidArgumentError):
            r.unregister(extra_headers=bad)
    assert r.state == S.INITIAL
    r.register(extra_headers=[])
    assert r.wait_for(S.REGISTERED, timeout=5.0)
