"""sipreg.aio against Kamailio on loopback (issue 19): callbacks on the loop's
thread in order, awaiting outcomes, nothing blocking the loop (counted in
ticks of another task, not timed), many accounts at once, a clean exit, and
mypy --strict on the package and the asyncio example."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Coroutine, List, Tuple

import pytest

import sipreg
from sipreg import aio
from conftest import PATIENCE, Kamailio, User

REG = sipreg.RegistererState
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python" / "asyncio_register.py"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Ticker:
    """Another task of the loop, counting its turns: a call that blocks the
    loop lets it count at most once while it lasts."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: "asyncio.Task[None]"

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def __enter__(self) -> "Ticker":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._task.cancel()


def test_states_in_order_on_the_loop_thread(kamailio: Kamailio, user: User) -> None:
    async def main() -> Tuple[List[REG], List[str], List[str], List[str]]:
        loop_thread = threading.current_thread().name
        listener_threads: List[str] = []
        traced: List[str] = []
        got: List[REG] = []
        async with aio.UserAgent(user.aor, password=user.password) as ua:
            ua.trace.add_listener(lambda rec: traced.append(threading.current_thread().name))
            r = aio.Registerer(ua, registrar=kamailio.registrar, expires=60)
            r.state_change.add_listener(
                lambda s: listener_threads.append(threading.current_thread().name)
            )
            states = r.states()

            async def collect() -> None:
                async for s in states:
                    got.append(s)

            collector = asyncio.create_task(collect())
            await r.register()
            assert r.state is REG.REGISTERED and r.failure is None
            assert len(kamailio.lookup(user.name)) == 1
            await r.unregister()
            assert r.state is REG.UNREGISTERED
            await r.dispose()
            assert r.state is REG.TERMINATED
            await collector
        return got, listener_threads, traced, [loop_thread]

    got, threads, traced, (loop_thread,) = run(main())
    assert got == [REG.REGISTERED, REG.UNREGISTERED, REG.TERMINATED]
    assert threads and set(threads) == {loop_thread}, threads
    assert traced and set(traced) == {loop_thread}, "trace listeners on the loop thread too"


def test_register_raises_for_a_wrong_password(kamailio: Kamailio, user: User) -> None:
    async def main() -> sipreg.RegistrationError:
        async with aio.UserAgent(user.aor, password="not-it") as ua:
            r = aio.Registerer(ua, registrar=kamailio.registrar, expires=60)
            with pytest.raises(sipreg.AuthenticationError) as e:
                await r.register()
            assert r.state is REG.UNREGISTERED
            assert r.failure == e.value.failure
            return e.value

    err = run(main())
    assert err.failure.kind is sipreg.FailureKind.AUTH_REJECTED
    assert err.failure.status == 401


def test_dispose_against_a_silent_registrar_does_not_block_the_loop(user: User) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]

    async def main() -> Tuple[int, int, REG]:
        ua = aio.UserAgent(user.aor, password="pw", shutdown_timeout=1.0)
        r = aio.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", expires=60)
        r.sync.register()  # in flight: the registrar never answers (Timer F is 32 s)
        with Ticker() as t:
            await asyncio.sleep(0)
            before = t.ticks
            await r.dispose()  # waits for the REGISTER in flight, bounded by 1 s
            during_dispose = t.ticks - before
            state = r.state
            before = t.ticks
            await ua.close()
            during_close = t.ticks - before
        return during_dispose, during_close, state

    try:
        during_dispose, during_close, state = run(main())
    finally:
        silent.close()
    assert state is REG.TERMINATED
    # A blocking wait would let the ticker count once at most.
    assert during_dispose > 10, during_dispose
    assert during_close >= 0


def test_close_with_a_request_in_flight_does_not_block_the_loop(user: User) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]

    async def main() -> Tuple[int, REG]:
        ua = aio.UserAgent(user.aor, password="pw", shutdown_timeout=1.0)
        r = aio.Registerer(ua, registrar=f"sip:127.0.0.1:{port}", expires=60)
        r.sync.register()
        with Ticker() as t:
            await asyncio.sleep(0)
            before = t.ticks
            await ua.close()
            ticks = t.ticks - before
        return ticks, r.state

    try:
        ticks, state = run(main())
    finally:
        silent.close()
    assert state is REG.TERMINATED
    assert ticks > 10, ticks


def test_many_accounts_at_once(kamailio: Kamailio, new_user: Callable[[], User]) -> None:
    users = [new_user() for _ in range(40)]

    async def main() -> List[REG]:
        uas = [aio.UserAgent(u.aor, password=u.password) for u in users]
        regs = [aio.Registerer(ua, registrar=kamailio.registrar, expires=60) for ua in uas]
        await asyncio.gather(*(r.register() for r in regs))
        states = [r.state for r in regs]
        for ua in uas:
            assert (ua.stats["in_flight"], ua.stats["queued"]) == (0, 0)
        await asyncio.gather(*(ua.close() for ua in uas))
        return states

    assert run(main()) == [REG.REGISTERED] * len(users)
    for u in users:
        assert kamailio.lookup(u.name) == [], u.name


def test_register_while_in_flight_raises_and_errors_propagate(user: User) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    port = silent.getsockname()[1]

    async def sent() -> None:
        """Until the silent registrar holds the first REGISTER (it never answers)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while loop.time() < deadline:
            try:
                silent.recv(1, socket.MSG_PEEK)
                return
            except BlockingIOError:
                await asyncio.sleep(0.01)
        raise AssertionError("the first REGISTER never went out")

    async def main() -> None:
        async with aio.UserAgent(user.aor, password="pw", shutdown_timeout=0.5) as ua:
            r = aio.Registerer(ua, registrar=f"sip:127.0.0.1:{port}")
            first = asyncio.create_task(r.register())
            await sent()  # the first register() is in flight now
            with pytest.raises(sipreg.RequestPendingError):
                await r.register()
            await r.dispose()
            with pytest.raises(sipreg.TerminatedError):
                await first

    try:
        run(main())
    finally:
        silent.close()


def test_objects_need_a_running_loop(user: User) -> None:
    with pytest.raises(RuntimeError):
        aio.UserAgent(user.aor)


def test_registerer_context_manager_and_loop_dispatcher(kamailio: Kamailio, user: User) -> None:
    async def main() -> None:
        d = aio.loop_dispatcher()
        assert d is aio.loop_dispatcher(), "one dispatcher per loop"
        async with aio.UserAgent(user.aor, password=user.password) as ua:
            assert ua.sync.dispatcher is d
            async with aio.Registerer(ua, registrar=kamailio.registrar, expires=60) as r:
                await r.register()
                assert len(kamailio.lookup(user.name)) == 1
            assert r.state is REG.TERMINATED
        assert d.stats["waiting"] == 0

    run(main())
    assert kamailio.lookup(user.name) == []


def test_example_registers_and_unregisters_on_ctrl_c(
    kamailio: Kamailio, new_user: Callable[[], User], sipreg_env: dict
) -> None:
    users = [new_user() for _ in range(3)]
    args: List[str] = []
    for u in users:
        args += [u.aor, u.password]
    p = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--registrar", kamailio.registrar, "--expires", "60", *args],
        env=sipreg_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    lines: List[str] = []
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("registered "):
            break
    assert lines[-1] == "registered 3/3; Ctrl-C to unregister", lines
    for u in users:
        assert len(kamailio.lookup(u.name)) == 1
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    lines += out.splitlines()
    assert p.returncode == 0, lines + [err]
    for u in users:
        mine = [x.split(" state ")[1] for x in lines if x.startswith(f"{u.aor} state ")]
        assert mine == ["Registered", "Unregistered", "Terminated"], lines
        assert kamailio.lookup(u.name) == []
    # A clean exit: no traceback, no un-awaited coroutine or destroyed task.
    for bad in ("Traceback", "never awaited", "Task was destroyed", "Unclosed", "Exception"):
        assert bad not in err, err


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_strict_on_the_package_and_the_example() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         str(ROOT / "bindings" / "python" / "sipreg"), str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
