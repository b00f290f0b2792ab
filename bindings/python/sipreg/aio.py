"""asyncio for sipreg: the same classes, awaitable, on the event loop's thread.

Example::

    import asyncio
    from sipreg import aio

    async def main() -> None:
        async with aio.UserAgent("sip:alice@example.com", password="pw") as ua:
            r = aio.Registerer(ua, registrar="sip:example.com", expires=600)
            await r.register()           # Registered, or raises RegistrationError
            async for state in r.states():
                print(state.label)       # every state change, until TERMINATED

    asyncio.run(main())

Each event loop gets one :class:`sipreg.Dispatcher`, watched with
``loop.add_reader``: the library's callbacks are queued for the loop and run
on its thread, in order, so listeners (``state_change``, ``response_event``,
``retry_event``, ``failure_event``, ``trace``, ``requests``) run on the loop's
thread and may touch loop objects directly; ``request.respond()`` and
``ua.send()`` never wait. Nothing here blocks the loop or hands work
to other threads: every wait is an await on events the loop delivers.

:class:`UserAgent` and :class:`Registerer` take the same arguments as
:class:`sipreg.UserAgent` and :class:`sipreg.Registerer`; what does not wait
(properties, listeners, ``network_changed()``, ``set_password()``) is the
synchronous object's, reached through the wrapper.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, AsyncIterator, Callable, List, Optional

from . import _core, _lib
from ._core import (
    WAIT_MARGIN,
    RegistererState,
    _Event,
    _Outcome,
    _register_outcome,
    _RegState,
    _unregister_outcome,
)
from ._dispatch import Dispatcher
from ._errors import TerminatedError
from ._failure import Failure, error_for_failure

__all__ = ["UserAgent", "Registerer", "loop_dispatcher"]

#: Callbacks run per wake-up of the loop, so a burst of events (10 000
#: accounts failing together) does not hold the loop: the fd stays readable
#: and the loop comes back after its other ready work.
RUN_BATCH = 256


class _LoopDispatcher:
    """The dispatcher of one event loop, with its reader installed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dispatcher = Dispatcher()
        self.fd = self.dispatcher.fileno()
        loop.add_reader(self.fd, self._ready)

    def _ready(self) -> None:
        try:
            self.dispatcher.try_run(RUN_BATCH)
        except Exception:  # noqa: BLE001 - a reader must not kill the loop
            _lib.logger.exception("sipreg: running the dispatcher failed")

    def drain(self) -> None:
        """Delivers what is already queued (not from inside a callback)."""
        self.dispatcher.try_run(0)


_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDispatcher]" = (
    weakref.WeakKeyDictionary()
)


def _running_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "sipreg.aio objects are made inside a coroutine (with a running event loop)"
        ) from None


def _for_loop(loop: asyncio.AbstractEventLoop) -> _LoopDispatcher:
    ld = _per_loop.get(loop)
    if ld is None or ld.dispatcher.closed:
        ld = _LoopDispatcher(loop)
        _per_loop[loop] = ld
    return ld


def loop_dispatcher() -> Dispatcher:
    """The :class:`sipreg.Dispatcher` of the running event loop (created on first use)."""
    return _for_loop(_running_loop()).dispatcher


async def _await_events(
    ld: _LoopDispatcher,
    st: _RegState,
    send: Callable[[], None],
    judge: Callable[[_Event], _Outcome],
    timeout: Optional[float] = None,
) -> Optional[Failure]:
    """Sends, then waits (on the loop) until ``judge`` decides; returns the
    failure of a failed attempt, None for a success; raises TerminatedError."""
    # Events of earlier requests still queued go to their listeners first,
    # so the watcher sees only this request's.
    ld.drain()
    fut: "asyncio.Future[_Outcome]" = ld.loop.create_future()

    def watch(ev: _Event) -> bool:
        out = judge(ev)
        if out is None:
            return False
        if not fut.done():
            fut.set_result(out)
        return True

    st.add_watch(watch)
    try:
        send()
        out = await asyncio.wait_for(fut, timeout) if timeout is not None else await fut
    finally:
        st.remove_watch(watch)
    assert out is not None
    status, failure = out
    if status == "terminated":
        raise TerminatedError("the registerer was disposed")
    return failure


class UserAgent:
    """:class:`sipreg.UserAgent` for asyncio: same arguments; ``await close()``,
    ``async with``. Made inside a coroutine: its callbacks run on that loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = _running_loop()
        self._ld = _for_loop(self._loop)
        self._ua = _core.UserAgent(*args, **kwargs)
        try:
            self._ua.set_dispatcher(self._ld.dispatcher)
        except BaseException:
            self._ua.close()
            raise
        self._registerers: "weakref.WeakSet[Registerer]" = weakref.WeakSet()

    @property
    def sync(self) -> _core.UserAgent:
        """The underlying :class:`sipreg.UserAgent` (its callbacks run on the loop)."""
        return self._ua

    def __getattr__(self, name: str) -> Any:
        # Properties and methods that never wait: aor, stats, trace,
        # network_changed(), set_password(), ...
        return getattr(self._ua, name)

    async def close(self) -> None:
        """Disposes every registerer (un-REGISTERing those registered), waits
        on the loop until all are Terminated or the shutdown timeout passed,
        then frees the user agent. A second call does nothing."""
        if self._ua.closed:
            return
        states: List[_RegState] = list(self._ua._registerers)
        waits = []
        for st in states:
            h = st.handle.value
            if h is None or st.terminated_delivered:
                continue
            fut: "asyncio.Future[None]" = self._loop.create_future()

            def watch(ev: _Event, fut: "asyncio.Future[None]" = fut) -> bool:
                if ev.kind == _core.EventKind.STATE_CHANGED and ev.state == RegistererState.TERMINATED:
                    if not fut.done():
                        fut.set_result(None)
                    return True
                return False

            st.add_watch(watch)
            rc = _lib.lib.sipreg_dispose(h)
            if rc not in (_lib.SIPREG_OK, _lib.SIPREG_ERR_TERMINATED):
                st.remove_watch(watch)
                raise _lib.make_error(rc, "sipreg_dispose")
            waits.append((st, watch, fut))
        if waits:
            bound = self._ua.shutdown_timeout + WAIT_MARGIN
            await asyncio.wait([w[2] for w in waits], timeout=bound)
            for st, watch, _fut in waits:
                st.remove_watch(watch)
        # On the loop's own thread the library does not block here.
        self._ua.close()

    async def __aenter__(self) -> "UserAgent":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<sipreg.aio.UserAgent {self._ua.aor!r}{' closed' if self._ua.closed else ''}>"


class _States:
    """``async for state in r.states()``: every state change from now on, ending after TERMINATED."""

    def __init__(self, st: _RegState, loop: asyncio.AbstractEventLoop) -> None:
        self._st = st
        self._queue: "asyncio.Queue[RegistererState]" = asyncio.Queue()
        self._ended = st.terminated_delivered or st.handle.value is None
        if not self._ended:
            st.add_watch(self._watch)

    def _watch(self, ev: _Event) -> bool:
        if ev.kind != _core.EventKind.STATE_CHANGED:
            return False
        self._queue.put_nowait(ev.state)
        return ev.state == RegistererState.TERMINATED

    def __aiter__(self) -> "_States":
        return self

    async def __anext__(self) -> RegistererState:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        state = await self._queue.get()
        if state == RegistererState.TERMINATED:
            self._ended = True
        return state

    async def aclose(self) -> None:
        """Stops listening (what is queued is dropped)."""
        self._ended = True
        self._st.remove_watch(self._watch)


class Registerer:
    """:class:`sipreg.Registerer` for asyncio: same arguments after the
    :class:`UserAgent`; ``await register()``, ``await unregister()``,
    ``await dispose()``, ``async with``, ``async for state in states()``."""

    def __init__(self, ua: UserAgent, *args: Any, **kwargs: Any) -> None:
        if not isinstance(ua, UserAgent):
            raise TypeError(f"ua must be a sipreg.aio.UserAgent, not {type(ua).__name__}")
        self._aua = ua
        self._ld = ua._ld
        self._r = _core.Registerer(ua._ua, *args, **kwargs)
        self._st: _RegState = self._r._st
        ua._registerers.add(self)

    @property
    def sync(self) -> _core.Registerer:
        """The underlying :class:`sipreg.Registerer` (its listeners run on the loop)."""
        return self._r

    @property
    def user_agent(self) -> UserAgent:
        """The :class:`UserAgent` this registerer belongs to."""
        return self._aua

    def __getattr__(self, name: str) -> Any:
        # state, contacts, failure, last_response, next_retry, the emitters, ...
        return getattr(self._r, name)

    async def register(self, **kwargs: Any) -> None:
        """Sends a REGISTER and returns once Registered.

        Raises:
            RegistrationError: the first attempt failed (a subclass by kind:
                AuthenticationError, RegistrarUnreachableError, TlsError,
                RegistrationRejectedError); an automatic retry may be
                scheduled (``next_retry``) and goes on in the background.
            RequestPendingError: a REGISTER is already in flight.
            TerminatedError: disposed (before or while waiting).
        """
        failure = await _await_events(
            self._ld, self._st, lambda: self._r.register(**kwargs), _register_outcome
        )
        if failure is not None:
            raise error_for_failure(failure, self._r.next_retry)

    async def unregister(self, all: bool = False, **kwargs: Any) -> None:  # noqa: A002
        """Sends an un-REGISTER (``all``: ``Contact: *``) and returns once the
        registrar accepted it.

        Raises:
            RegistrationError: the un-REGISTER failed.
            RequestPendingError, TerminatedError: as :meth:`sipreg.Registerer.unregister`.
        """
        failure = await _await_events(
            self._ld,
            self._st,
            lambda: self._r.unregister(all, **kwargs),
            _unregister_outcome,
        )
        if failure is not None:
            raise error_for_failure(failure)

    async def dispose(self) -> None:
        """SIP.js ``dispose()``: un-REGISTERs if registered, then Terminated;
        returns once Terminated was delivered (bounded by the shutdown timeout
        plus a margin). A second call does nothing."""
        st = self._st
        h = st.handle.value
        if h is None or st.terminated_delivered:
            return

        def send() -> None:
            rc = _lib.lib.sipreg_dispose(h)
            if rc not in (_lib.SIPREG_OK, _lib.SIPREG_ERR_TERMINATED):
                raise _lib.make_error(rc, "sipreg_dispose")

        def judge(ev: _Event) -> _Outcome:
            if ev.kind == _core.EventKind.STATE_CHANGED and ev.state == RegistererState.TERMINATED:
                return ("ok", None)
            return None

        try:
            await _await_events(
                self._ld, st, send, judge, timeout=st.shutdown_timeout + WAIT_MARGIN
            )
        except asyncio.TimeoutError:
            pass  # the library's bound passed: Terminated in the background

    def states(self) -> AsyncIterator[RegistererState]:
        """Every state change from now on, in order; the iteration ends after
        TERMINATED (at once if already Terminated)."""
        return _States(self._st, self._ld.loop)

    async def close(self) -> None:
        """Disposes (awaiting as :meth:`dispose` does), then frees the handle."""
        await self.dispose()
        self._r.close()

    async def __aenter__(self) -> "Registerer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<sipreg.aio.Registerer {self._aua.sync.aor!r} {self._r.state.name}>"

