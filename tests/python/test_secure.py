"""TLS, WS and WSS through the Python binding against Kamailio on loopback."""
from __future__ import annotations

import os
import tempfile

import pytest

import sipreg
from conftest import SecureKamailio, User


def _register(ua: sipreg.UserAgent, registrar: str) -> sipreg.Registerer:
    r = sipreg.Registerer(ua, registrar=registrar, expires=60, retry=False)
    r.register()
    return r


@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
def test_register_and_dispose_over_each_secure_transport(
    secure_kamailio: SecureKamailio, user: User, transport: str
) -> None:
    k = secure_kamailio
    registrar = {
        "tls": f"sips:127.0.0.1:{k.tls_port}",
        "ws": f"sip:127.0.0.1:{k.ws_port};transport=ws",
        "wss": f"sip:127.0.0.1:{k.wss_port};transport=wss",
    }[transport]
    with sipreg.UserAgent(
        user.aor, password=user.password, transport=transport, tls_ca_file=k.cert("ca.pem")
    ) as ua:
        r = _register(ua, registrar)
        assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=10), r.last_response
        assert r.flow is not None and r.flow.startswith(f"{transport}:127.0.0.1:")
        assert len(k.lookup(user.name)) == 1
        r.dispose()
        assert r.state is sipreg.RegistererState.TERMINATED
        assert k.wait_bindings(user.name, 0) == []


def test_wrong_ca_ends_unregistered_with_503(secure_kamailio: SecureKamailio, user: User) -> None:
    k = secure_kamailio
    with sipreg.UserAgent(
        user.aor, password=user.password, transport="tls", tls_ca_file=k.cert("other-ca.pem")
    ) as ua:
        r = _register(ua, f"sips:127.0.0.1:{k.tls_port}")
        assert r.wait_for(sipreg.RegistererState.UNREGISTERED, timeout=10)
        assert r.last_response == (503, "Service Unavailable")


def test_insecure_mode_accepts_a_wrongly_named_certificate(
    secure_kamailio: SecureKamailio, user: User
) -> None:
    k = secure_kamailio
    registrar = f"sips:127.0.0.1:{k.wrong_port}"
    with sipreg.UserAgent(
        user.aor, password=user.password, transport="tls", tls_ca_file=k.cert("ca.pem")
    ) as ua:
        r = _register(ua, registrar)
        assert r.wait_for(sipreg.RegistererState.UNREGISTERED, timeout=10)
    with sipreg.UserAgent(
        user.aor, password=user.password, transport="tls", tls_verify=False
    ) as ua:
        r = _register(ua, registrar)
        assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=10), r.last_response
        r.dispose()


def test_server_name_keyword(secure_kamailio: SecureKamailio, user: User) -> None:
    k = secure_kamailio
    with sipreg.UserAgent(
        user.aor,
        password=user.password,
        transport="tls",
        tls_ca_file=k.cert("ca.pem"),
        tls_server_name="localhost",
    ) as ua:
        r = _register(ua, f"sips:127.0.0.1:{k.tls_port}")
        assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=10), r.last_response
        r.dispose()


def test_bad_tls_arguments_raise_clear_errors(secure_kamailio: SecureKamailio) -> None:
    with pytest.raises(sipreg.InvalidArgumentError, match="cannot read CA file"):
        sipreg.UserAgent("sip:a@127.0.0.1", tls_ca_file="/nonexistent/ca.pem")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
    try:
        with pytest.raises(sipreg.InvalidArgumentError, match="not valid PEM"):
            sipreg.UserAgent("sip:a@127.0.0.1", tls_ca_file=f.name)
        os.chmod(f.name, 0)
        if os.geteuid() != 0:  # root reads anything
            with pytest.raises(sipreg.InvalidArgumentError, match="cannot read"):
                sipreg.UserAgent("sip:a@127.0.0.1", tls_ca_file=f.name)
    finally:
        os.unlink(f.name)
    with pytest.raises(sipreg.InvalidArgumentError, match="no PEM certificate"):
        sipreg.UserAgent("sip:a@127.0.0.1", tls_ca_file=__file__)
    with pytest.raises(sipreg.InvalidArgumentError, match="ws path"):
        sipreg.UserAgent("sip:a@127.0.0.1", transport="ws", ws_path="no-slash")
    with pytest.raises(sipreg.InvalidArgumentError, match="server name"):
        sipreg.UserAgent("sip:a@127.0.0.1", tls_server_name="bad name!")
    with pytest.raises(sipreg.InvalidArgumentError, match="transport"):
        sipreg.UserAgent("sip:a@127.0.0.1", transport="sctp")
    with pytest.raises(sipreg.InvalidArgumentError, match="tls_verify"):
        sipreg.UserAgent("sip:a@127.0.0.1", tls_verify="no")  # type: ignore[arg-type]
    # a sips: registrar over a clear-text transport is refused at construction
    with sipreg.UserAgent("sip:a@127.0.0.1", transport="ws") as ua:
        with pytest.raises(sipreg.InvalidArgumentError, match="sips"):
            sipreg.Registerer(ua, registrar="sips:127.0.0.1;transport=ws")


def test_user_agents_share_a_socket_unless_private(kamailio, new_user, closing) -> None:  # type: ignore[no-untyped-def]
    flows = []
    for private in (False, False, True):
        u = new_user()
        # A local address nobody else in this process uses: the only user agents
        # that can share these sockets are this test's.
        ua = closing(
            sipreg.UserAgent(
                u.aor, password=u.password, private_socket=private, local_address="127.0.0.9"
            )
        )
        # Kept until the end: a collected registerer disposes, and the last
        # registerer leaving a shared socket closes it before the next user
        # agent could pick it up.
        r = closing(sipreg.Registerer(ua, registrar=kamailio.registrar, expires=60, retry=False))
        r.register()
        assert r.wait_for(sipreg.RegistererState.REGISTERED, timeout=10)
        flows.append(r.flow)
    assert flows[0] == flows[1], flows
    assert flows[2] != flows[0], flows
