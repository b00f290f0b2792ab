"""Object lifetime: garbage collection without close(), interpreter exit with
live registerers, threads."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from typing import List

import sipreg
from conftest import PATIENCE
from sipreg import _core

S = sipreg.RegistererState


def test_collected_registerer_is_freed_and_unregistered(kamailio, user, closing) -> None:
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    calls: List[S] = []
    r = sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar)
    r.state_change.add_listener(calls.append)
    # A listener that references the registerer makes a reference cycle.
    r.state_change.add_listener(lambda s, r=r: None)
    r.register()
    assert r.wait_for(S.REGISTERED)
    assert len(kamailio.lookup(user.name)) == 1
    handle = r._st.handle
    token = r._st.token
    ref = weakref.ref(r)
    del r
    gc.collect()
    assert ref() is None, "the registerer was not collected"
    assert handle.value is None, "the finalizer did not free the handle"
    assert token not in _core._states
    # sipreg_registerer_free disposes a registered registerer in the background.
    assert kamailio.wait_bindings(user.name, 0) == []
    # No callback reached the collected object after the free (the background
    # dispose, un-REGISTER answered above, would have sent them).
    assert calls == [S.REGISTERED]


def test_collected_user_agent_and_registerers(kamailio, user) -> None:
    def make() -> weakref.ref:
        ua = sipreg.UserAgent(user.aor, password=user.password)
        regs = [sipreg.Registerer(ua, expires=120, registrar=kamailio.registrar) for _ in range(3)]
        for r in regs:
            r.register()
        for r in regs:
            assert r.wait_for(S.REGISTERED)
        return weakref.ref(ua)

    ref = make()
    gc.collect()
    assert ref() is None
    assert kamailio.wait_bindings(user.name, 0) == []


def _run_script(script: str, env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_interpreter_exit_with_live_registerers(kamailio, user, new_user, sipreg_env) -> None:
    """Exiting without close() (registerers registered, listeners attached,
    logging on, one registerer collected, one still in flight) exits cleanly."""
    other = new_user()
    script = f"""
        import logging, sys, threading
        import sipreg
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
        S = sipreg.RegistererState
        ua = sipreg.UserAgent({user.aor!r}, password={user.password!r})
        keep = []
        for i in range(5):
            r = sipreg.Registerer(ua, expires=120, registrar={kamailio.registrar!r})
            r.state_change.add_listener(lambda s, r=r: print("state", s.label, flush=True))
            r.register()
            keep.append(r)
        for r in keep:
            assert r.wait_for(S.REGISTERED), r.last_response
        # A second user agent with a registerer still in flight at exit.
        ua2 = sipreg.UserAgent({other.aor!r}, password={other.password!r})
        r2 = sipreg.Registerer(ua2, expires=120, registrar={kamailio.registrar!r})
        r2.register()
        # A registerer that is only garbage at exit.
        sipreg.Registerer(ua, registrar={kamailio.registrar!r}).register()
        print("EXITING", flush=True)
    """
    p = _run_script(script, sipreg_env)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "EXITING" in p.stdout
    assert "Traceback" not in out and "Fatal" not in out and "Exception ignored" not in out, out
    # The atexit hook disposed everything: the bindings are gone.
    assert kamailio.wait_bindings(user.name, 0) == []
    assert kamailio.wait_bindings(other.name, 0) == []


def test_interpreter_exit_while_callbacks_fire(kamailio, new_user, sipreg_env) -> None:
    """Exit while the worker is busy delivering events to Python listeners."""
    users = [new_user() for _ in range(4)]
    script = f"""
        import sipreg, time
        uas = []
        for aor, pw in {[(u.aor, u.password) for u in users]!r}:
            ua = sipreg.UserAgent(aor, password=pw)
            uas.append(ua)
            for i in range(25):
                r = sipreg.Registerer(ua, expires=120, registrar={kamailio.registrar!r})
                r.state_change.add_listener(lambda s: time.sleep(0.001))
                r.response_event.add_listener(lambda c, m: None)
                r.register()
        time.sleep(0.05)
    """
    p = _run_script(script, sipreg_env)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "Traceback" not in out and "Fatal" not in out, out
    for u in users:
        assert kamailio.wait_bindings(u.name, 0) == []


def test_dispose_returns_when_the_registrar_is_silent(user) -> None:
    """Disposing a registerer whose registrar is silent ends: dispose() and
    close() return and the registerer is Terminated (that the un-REGISTER is
    given up after the shutdown timeout is the core's rule:
    core_scenarios::dispose_is_bounded_when_the_unregister_gets_no_answer)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        ua = sipreg.UserAgent(user.aor, password=user.password, t1=0.02, shutdown_timeout=0.5)
        r = sipreg.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", retry=False)
        r.register()  # in flight, never answered
        r.dispose()
        assert r.wait_for(S.TERMINATED, timeout=PATIENCE)
        ua.close()
        assert r.state is S.TERMINATED
    finally:
        s.close()


def test_calls_from_many_threads(kamailio, new_user) -> None:
    """Registerers driven from several Python threads at once."""
    errors: list = []

    def worker() -> None:
        u = new_user()
        try:
            with sipreg.UserAgent(u.aor, password=u.password) as ua:
                with sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar) as r:
                    for _ in range(2):
                        r.register()
                        assert r.wait_for(S.REGISTERED)
                        r.unregister()
                        assert r.wait_for(S.UNREGISTERED)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(PATIENCE)
    assert not [t for t in threads if t.is_alive()], "a worker thread hung"
    assert errors == []


def test_close_from_inside_listener(kamailio, user) -> None:
    """ua.close() inside a listener does not deadlock; the registerer terminates."""
    ua = sipreg.UserAgent(user.aor, password=user.password)
    r = sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar)
    states: List[S] = []

    def listener(s: S) -> None:
        states.append(s)
        if s is S.REGISTERED:
            ua.close()

    r.state_change.add_listener(listener)
    r.register()
    assert r.wait_for(S.TERMINATED, timeout=PATIENCE), states
    assert states == [S.REGISTERED, S.UNREGISTERED, S.TERMINATED]
    assert ua.closed
    r.close()
    assert kamailio.wait_bindings(user.name, 0) == []


def test_garbage_collected_on_the_worker_thread(kamailio, user, closing) -> None:
    """Finalizers that run inside a listener (gc on the worker thread) free the
    handles without waiting on the worker itself."""
    ua = closing(sipreg.UserAgent(user.aor, password=user.password))
    handles = []
    for _ in range(10):
        r = sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar)
        r.cycle = r  # type: ignore[attr-defined]  # only the cyclic gc frees it
        handles.append(r._st.handle)
    del r
    collected_in_listener: List[bool] = []

    def listener(s: S) -> None:
        if s is S.REGISTERED:
            gc.collect()
            collected_in_listener.append(all(h.value is None for h in handles))

    live = closing(sipreg.Registerer(ua, expires=60, registrar=kamailio.registrar))
    live.state_change.add_listener(listener)
    gc.disable()  # make sure the collection happens in the listener
    try:
        live.register()
        assert live.wait_for(S.REGISTERED)
    finally:
        gc.enable()
    assert collected_in_listener == [True]
    live.unregister()
    assert live.wait_for(S.UNREGISTERED)
