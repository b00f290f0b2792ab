"""Registration against the Kamailio test registrar (tests/kamailio)."""

from __future__ import annotations

import threading
from typing import List, Tuple

import pytest

import sipreg
from conftest import PATIENCE, wait_until

S = sipreg.RegistererState


def _ua(user, **kw) -> sipreg.UserAgent:
    kw.setdefault("password", user.password)
    return sipreg.UserAgent(user.aor, **kw)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_with_digest(kamailio, user, closing, transport: str) -> None:
    ua = closing(_ua(user, transport=transport))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    states: List[S] = []
    r.state_change.add_listener(states.append)
    r.register()
    assert r.wait_for(S.REGISTERED, timeout=5.0), (r.state, r.last_response)
    assert states == [S.REGISTERED]
    assert r.state is S.REGISTERED
    assert r.last_response == (200, "OK")
    assert [c for c, _ in r.responses] == [401, 200]  # digest challenge answered
    assert r.failure_count == 0 and r.next_retry is None and r.retry_after is None
    assert len(r.contacts) == 1
    contact = r.contacts[0]
    assert contact.startswith(f"sip:{user.name}@127.0.0.1:")
    bindings = kamailio.lookup(user.name)
    assert [a for a, _ in bindings] == [contact]
    assert 100 < bindings[0][1] <= 120
    if transport == "tcp":
        assert "transport=tcp" in contact
    stats = ua.stats
    assert stats["sent"] >= 2 and stats["received"] >= 2 and stats["transport_errors"] == 0


def test_refresh_keeps_registration(kamailio, user, closing) -> None:
    ua = closing(_ua(user))
    # A 5 s grant is refreshed by itself (when: the core's rule, tested on the
    # simulated clock in tests/core_scenarios.rs), twice here: the second
    # refresh comes after the first grant would have run out.
    r = closing(sipreg.Registerer(ua, expires=5, refresh_frequency=90, registrar=kamailio.registrar))
    oks: List[int] = []
    third = threading.Event()
    states: List[S] = []

    def on_response(code: int, reason: str) -> None:
        if code == 200:
            oks.append(code)
            if len(oks) >= 3:
                third.set()

    r.response_event.add_listener(on_response)
    r.state_change.add_listener(states.append)
    r.register()
    assert r.wait_for(S.REGISTERED)
    assert third.wait(PATIENCE), f"no two refreshes: {r.responses}"
    assert r.state is S.REGISTERED
    assert states == [S.REGISTERED]  # the refresh is not a transition
    assert [a for a, _ in kamailio.lookup(user.name)] == r.contacts


def test_unregister_removes_binding(kamailio, user, closing) -> None:
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    r.register()
    assert r.wait_for(S.REGISTERED)
    assert len(kamailio.lookup(user.name)) == 1
    r.unregister()
    assert r.wait_for(S.UNREGISTERED)
    assert r.last_response == (200, "OK")
    assert kamailio.lookup(user.name) == []
    # Registering again works, dispose then unregisters again.
    r.register()
    assert r.wait_for(S.REGISTERED)
    assert len(kamailio.lookup(user.name)) == 1
    r.dispose()
    assert r.state is S.TERMINATED
    assert kamailio.lookup(user.name) == []


def test_unregister_all_removes_every_binding(kamailio, user, closing) -> None:
    ua1 = closing(_ua(user))
    ua2 = closing(_ua(user))
    r1 = closing(sipreg.Registerer(ua1, expires=120, registrar=kamailio.registrar))
    r2 = closing(sipreg.Registerer(ua2, expires=120, registrar=kamailio.registrar))
    r1.register()
    r2.register()
    assert r1.wait_for(S.REGISTERED) and r2.wait_for(S.REGISTERED)
    assert r1.contacts != r2.contacts or len(r1.contacts) == 2  # two sockets, two contacts
    bindings = kamailio.wait_bindings(user.name, 2)
    assert len(bindings) == 2, bindings
    r1.unregister(all=True)
    assert r1.wait_for(S.UNREGISTERED)
    assert kamailio.lookup(user.name) == []


def test_wrong_password_ends_unregistered_without_retry(kamailio, user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password="definitely-wrong"))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    retries: list = []
    r.retry_event.add_listener(retries.append)
    r.register()
    assert r.wait_for(S.UNREGISTERED, timeout=PATIENCE), (r.state, r.responses)
    code, _reason = r.last_response
    assert code in (401, 403)
    assert ua.stats["sent"] <= 3, ua.stats
    assert r.next_retry is None
    assert retries == []
    assert r.failure_count >= 1
    assert kamailio.lookup(user.name) == []


def test_second_register_while_in_flight_raises(kamailio, user, closing) -> None:
    """A REGISTER in flight makes register/unregister fail, never queue.

    Loopback answers within a millisecond, so the test holds the worker thread
    in a listener of the 401 (the authenticated REGISTER is then in flight)
    to make the window deterministic.
    """
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    entered = threading.Event()
    release = threading.Event()

    def hold_on_challenge(code: int, reason: str) -> None:
        if code == 401 and not entered.is_set():
            entered.set()
            release.wait(PATIENCE)

    r.response_event.add_listener(hold_on_challenge)
    r.register()
    try:
        assert entered.wait(PATIENCE)
        with pytest.raises(sipreg.RequestPendingError) as ei:
            r.register()
        assert ei.value.code == 3 and ei.value.detail
        with pytest.raises(sipreg.RequestPendingError):
            r.unregister()
    finally:
        release.set()
    assert r.wait_for(S.REGISTERED)
    # Once the transaction finished, a new request is accepted (a refresh:
    # the nonce is reused, so no new challenge).
    refreshed = threading.Event()
    r.response_event.add_listener(lambda code, reason: refreshed.set(), once=True)
    r.register()
    assert refreshed.wait(PATIENCE)
    assert r.state is S.REGISTERED
    assert [c for c, _ in r.responses] == [401, 200, 200]


def test_second_register_immediately_raises(user, closing) -> None:
    """Right after register() returns, the handle is claimed (registrar silent)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        ua = closing(sipreg.UserAgent(user.aor, password=user.password, shutdown_timeout=0.5))
        r = closing(sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{s.getsockname()[1]}"))
        r.register()
        with pytest.raises(sipreg.RequestPendingError):
            r.register()
        with pytest.raises(sipreg.RequestPendingError):
            r.unregister(all=True)
        assert r.state is S.INITIAL
    finally:
        s.close()


def test_listener_sees_states_in_order(kamailio, user, closing) -> None:
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    states: List[S] = []
    threads: List[str] = []

    def listener(s: S) -> None:
        states.append(s)
        threads.append(threading.current_thread().name)

    r.state_change.add_listener(listener)
    r.register()
    assert r.wait_for(S.REGISTERED)
    r.dispose()
    # dispose() returned only after TERMINATED reached the listeners.
    assert states == [S.REGISTERED, S.UNREGISTERED, S.TERMINATED]
    assert threading.current_thread().name not in threads  # delivered on the worker
    r.dispose()  # a second dispose is a no-op
    with pytest.raises(sipreg.TerminatedError):
        r.register()
    with pytest.raises(sipreg.TerminatedError):
        r.unregister()
    assert r.wait_for(S.TERMINATED, timeout=0)
    # Terminated is final: waiting for another state (with no limit) returns
    # False at once instead of blocking.
    result: List[bool] = []
    waiter = threading.Thread(target=lambda: result.append(r.wait_for(S.REGISTERED, timeout=None)))
    waiter.start()
    waiter.join(PATIENCE)
    assert result == [False]


def test_dispose_from_inside_listener(kamailio, user, closing) -> None:
    # A long shutdown timeout: had dispose() waited for Terminated on the
    # worker thread (which cannot deliver it while this listener runs), it
    # would hold the worker for 60 s and Terminated would come only then.
    ua = closing(_ua(user, shutdown_timeout=60.0))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    returned = threading.Event()
    states: List[S] = []

    def listener(s: S) -> None:
        states.append(s)
        if s is S.REGISTERED:
            r.dispose()  # on the worker thread: must return at once
            returned.set()

    r.state_change.add_listener(listener)
    r.register()
    assert r.wait_for(S.TERMINATED, timeout=PATIENCE), states
    assert returned.is_set()
    assert states == [S.REGISTERED, S.UNREGISTERED, S.TERMINATED]
    assert kamailio.lookup(user.name) == []


def test_listener_exception_is_logged_and_registerer_keeps_working(
    kamailio, user, closing, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.ERROR, logger="sipreg")
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    later: List[S] = []

    def bad(s: S) -> None:
        raise RuntimeError(f"boom on {s.name}")

    r.state_change.add_listener(bad)
    r.state_change.add_listener(later.append)  # still called after the failing one
    r.register()
    assert r.wait_for(S.REGISTERED)
    r.unregister()
    assert r.wait_for(S.UNREGISTERED)
    assert later == [S.REGISTERED, S.UNREGISTERED]
    errors = [rec for rec in caplog.records if rec.name == "sipreg" and rec.exc_info]
    assert len(errors) >= 2, caplog.records
    assert "boom on REGISTERED" in str(errors[0].exc_info[1])
    r.register()
    assert r.wait_for(S.REGISTERED)


def test_listener_may_register_and_unregister(kamailio, user, closing) -> None:
    """Listeners may drive the registerer: re-register once after unregistering."""
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    states: List[S] = []
    errors: list = []

    def listener(s: S) -> None:
        states.append(s)
        try:
            if s is S.REGISTERED and states.count(S.REGISTERED) == 1:
                r.unregister()
            elif s is S.UNREGISTERED and states.count(S.UNREGISTERED) == 1:
                r.register()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    r.state_change.add_listener(listener)
    r.register()
    wait_until(lambda: states.count(S.REGISTERED) >= 2)
    assert states == [S.REGISTERED, S.UNREGISTERED, S.REGISTERED], (states, errors)
    assert errors == []


def test_many_registerers_on_one_user_agent(kamailio, user, closing) -> None:
    """200 registerers of one user agent (one AOR, one socket) all reach REGISTERED."""
    n = 200
    ua = closing(_ua(user, shutdown_timeout=4.0))
    regs = [
        sipreg.Registerer(ua, expires=300, registrar=kamailio.registrar) for _ in range(n)
    ]
    registered = threading.Semaphore(0)
    for r in regs:
        r.state_change.add_listener(
            lambda s: registered.release() if s is S.REGISTERED else None
        )
    for r in regs:
        r.register()
    for r in regs:
        assert r.wait_for(S.REGISTERED, timeout=PATIENCE), (
            r.state,
            r.responses,
        )
    # Same AOR, same socket: every registerer sends the same Contact URI, so the
    # registrar holds a single binding that all 200 refresh.
    contacts = {tuple(r.contacts) for r in regs}
    assert len(contacts) == 1, contacts
    assert len(kamailio.lookup(user.name)) == 1
    ua.close()
    assert all(r.state is S.TERMINATED for r in regs)
    assert kamailio.lookup(user.name) == []


def test_registerers_sharing_a_socket(kamailio, user, closing) -> None:
    """Registerers of one user agent share its socket, hence the Contact URI.

    ``extra_contact_params`` are Contact header parameters, so they do not
    make the bindings distinct (one binding at the registrar); distinct
    ``instance_id`` + ``reg_id`` (RFC 5626) do, and then disposing one
    registerer leaves the others' bindings alone.
    """
    import uuid

    ua = closing(_ua(user))
    plain = [
        closing(sipreg.Registerer(ua, registrar=kamailio.registrar, extra_contact_params=(f"line={i}",)))
        for i in range(2)
    ]
    for r in plain:
        r.register()
        assert r.wait_for(S.REGISTERED)
    assert plain[0].contacts == plain[1].contacts
    assert len(kamailio.lookup(user.name)) == 1
    plain[0].unregister(all=True)
    assert plain[0].wait_for(S.UNREGISTERED)

    n = 10
    outbound = [
        closing(
            sipreg.Registerer(
                ua, registrar=kamailio.registrar, instance_id=str(uuid.uuid4()), reg_id=1
            )
        )
        for _ in range(n)
    ]
    for r in outbound:
        r.register()
    for r in outbound:
        assert r.wait_for(S.REGISTERED)
    assert len(kamailio.wait_bindings(user.name, n)) == n
    outbound[0].dispose()
    assert len(kamailio.wait_bindings(user.name, n - 1)) == n - 1
    assert all(r.state is S.REGISTERED for r in outbound[1:])


def test_network_changed_reregisters(kamailio, user, closing) -> None:
    ua = closing(_ua(user))
    r = closing(sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar))
    r.register()
    assert r.wait_for(S.REGISTERED)
    before = r.contacts
    n = len(r.responses)
    ua.network_changed()
    assert wait_until(lambda: any(c == 200 for c, _ in r.responses[n:])), r.responses
    assert r.state is S.REGISTERED
    after = kamailio.wait_bindings(user.name, 1)
    assert [a for a, _ in after] == r.contacts
    assert r.contacts != before  # a new socket, a new port


def test_context_managers(kamailio, user) -> None:
    with _ua(user) as ua:
        with sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar) as r:
            r.register()
            assert r.wait_for(S.REGISTERED)
            assert len(kamailio.lookup(user.name)) == 1
        assert r.state is S.TERMINATED
        assert kamailio.lookup(user.name) == []
        r2 = sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar)
        r2.register()
        assert r2.wait_for(S.REGISTERED)
    assert ua.closed
    assert r2.state is S.TERMINATED
    assert kamailio.lookup(user.name) == []


def test_registrar_not_answering_times_out(user, closing) -> None:
    """Nothing answers: timer F (64*T1 = 1.28 s) ends the transaction with a synthesised 408."""
    ua = closing(sipreg.UserAgent(user.aor, password=user.password, t1=0.02, t2=0.1))
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # a port that swallows datagrams
    port = s.getsockname()[1]
    try:
        r = closing(
            sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", retry=False, expires=60)
        )
        responses: List[Tuple[int, str]] = []
        r.response_event.add_listener(lambda c, m: responses.append((c, m)))
        r.register()
        assert r.wait_for(S.UNREGISTERED, timeout=6.0), (r.state, r.responses)
        assert r.last_response is not None and r.last_response[0] == 408
        assert responses and responses[-1][0] == 408
        assert r.retransmissions >= 1
        assert r.next_retry is None  # retry=False
    finally:
        s.close()


def test_retry_scheduled_after_transient_failure(user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password, t1=0.02, t2=0.1))
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        r = closing(
            sipreg.Registerer(
                ua, registrar=f"sip:127.0.0.1:{port}", retry=True, retry_base=30, expires=60
            )
        )
        events: List[sipreg.RetryEvent] = []
        got = threading.Event()

        def on_retry(e: sipreg.RetryEvent) -> None:
            events.append(e)
            got.set()

        r.retry_event.add_listener(on_retry)
        r.register()
        assert got.wait(6.0), r.responses
        assert events[0].kind is sipreg.EventKind.RETRY_SCHEDULED
        assert events[0].failure_count == 1
        assert 0 < events[0].delay <= 60  # RFC 5626: 50..100 % of base * 2^failures
        nr = r.next_retry
        assert nr is not None and 0 < nr <= 60
        assert r.failure_count == 1
    finally:
        s.close()
