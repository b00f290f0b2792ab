"""UserAgent, Registerer and friends: the Pythonic layer over the C API.

Lifetime model
--------------
* A :class:`UserAgent` owns a ``sipreg_user_agent`` handle; a :class:`Registerer`
  owns a ``sipreg_registerer`` handle and keeps its user agent alive.
* Handles are freed by ``close()`` (or the ``with`` block), else by a
  ``weakref.finalize`` when the object is collected, else by the atexit hook.
* All registerers share one module-level event trampoline; the ``user_data``
  the library gets is a small integer token that maps (weakly) to the
  registerer's Python-side state, so a callback can never reach a dead object
  and no ctypes closure is freed while the library may still call it.
* At interpreter exit the hook first removes every event callback, then frees
  every user agent (un-REGISTERing, bounded by the shutdown timeout) and every
  registerer, and finally clears the log callback: no ctypes callback runs
  during interpreter finalization.
"""

from __future__ import annotations

import atexit
import collections
import enum
import itertools
import logging
import threading
import time
import weakref
from ctypes import byref, c_bool, c_double, c_int, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from . import _lib
from ._credentials import Credential, add_credential
from ._errors import InvalidArgumentError, TerminatedError
from ._dispatch import Dispatcher
from ._failure import Failure, FailureKind, error_for_failure
from ._incoming import IncomingRequest
from ._lib import (
    SIPREG_ERR_TERMINATED,
    SIPREG_OK,
    check,
    encode,
    encode_list,
    encode_opt,
    in_callback,
    lib,
)

logger = logging.getLogger("sipreg")

__all__ = [
    "Credential",
    "IncomingRequest",
    "RegistererState",
    "EventKind",
    "RetryEvent",
    "TraceRecord",
    "Emitter",
    "UserAgent",
    "Registerer",
    "version",
    "set_log_level",
]

#: Extra time ``dispose``/``close`` wait beyond the user agent's shutdown timeout.
WAIT_MARGIN = 1.0


def version() -> str:
    """The C library's version string (``sipreg_version()``)."""
    return _lib.version()


def set_log_level(level: Optional[int]) -> None:
    """Sets the most verbose library messages forwarded to the ``sipreg`` logger.

    ``level`` is a :mod:`logging` level (``logging.DEBUG`` … ``logging.ERROR``),
    or ``None`` to forward nothing. At import it is ``logging.DEBUG`` and the
    logging configuration filters; a higher level here saves the worker thread
    the trip into Python for messages nobody keeps.
    """
    if level is None:
        max_level = _lib.SIPREG_LOG_OFF
    elif level <= logging.DEBUG:
        max_level = _lib.SIPREG_LOG_DEBUG
    elif level <= logging.INFO:
        max_level = _lib.SIPREG_LOG_INFO
    elif level <= logging.WARNING:
        max_level = _lib.SIPREG_LOG_WARN
    else:
        max_level = _lib.SIPREG_LOG_ERROR
    if max_level == _lib.SIPREG_LOG_OFF:
        _lib.remove_log_callback()
    else:
        _lib.install_log_callback(max_level)


class RegistererState(enum.IntEnum):
    """Registerer state (SIP.js ``RegistererState``); values match ``sipreg_state``."""

    INITIAL = 0
    REGISTERED = 1
    UNREGISTERED = 2
    TERMINATED = 3

    @property
    def label(self) -> str:
        """The state's name as SIP.js and the C example print it, e.g. ``"Registered"``."""
        return self.name.capitalize()


class EventKind(enum.IntEnum):
    """Kind of a library event (``sipreg_event_kind``)."""

    STATE_CHANGED = 0
    RESPONSE = 1
    RETRY_SCHEDULED = 2
    RETRY_STARTED = 3
    FAILED = 4


@dataclass(frozen=True)
class RetryEvent:
    """An automatic-recovery event: a retry was scheduled, or is starting.

    Attributes:
        kind: ``EventKind.RETRY_SCHEDULED`` or ``EventKind.RETRY_STARTED``.
        delay: seconds until the retry (``RETRY_SCHEDULED``), else 0.
        failure_count: consecutive failures so far.
    """

    kind: EventKind
    delay: float
    failure_count: int


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Emitter(Generic[F]):
    """A list of listeners (SIP.js ``Emitter``): ``add_listener`` / ``remove_listener``.

    Listeners are called on the library's worker thread, in order of
    registration. An exception raised by a listener is logged on the
    ``sipreg`` logger and does not stop the other listeners or the library.
    Listeners may call any method of the registerer (``register``,
    ``unregister``, ``dispose``…); they must not block for long.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._listeners: List[Tuple[F, bool]] = []

    def add_listener(self, listener: F, *, once: bool = False) -> None:
        """Adds ``listener``; with ``once`` it is removed after its first call."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        with self._lock:
            self._listeners.append((listener, once))

    def remove_listener(self, listener: F) -> None:
        """Removes the first registration of ``listener`` (no error if absent)."""
        with self._lock:
            for i, (fn, _once) in enumerate(self._listeners):
                if fn == listener:
                    del self._listeners[i]
                    return

    def remove_all_listeners(self) -> None:
        """Removes every listener."""
        with self._lock:
            self._listeners.clear()

    @property
    def listeners(self) -> List[F]:
        """A copy of the current listeners."""
        with self._lock:
            return [fn for fn, _ in self._listeners]

    def emit(self, *args: Any) -> None:
        """Calls every listener with ``args``; exceptions are logged, never raised."""
        with self._lock:
            current = list(self._listeners)
            if any(once for _, once in current):
                self._listeners = [(fn, once) for fn, once in self._listeners if not once]
        for fn, _once in current:
            try:
                fn(*args)
            except BaseException:  # noqa: BLE001 - must not escape into the worker thread
                try:
                    logger.exception("%s listener %r raised", self._name, fn)
                except BaseException:  # noqa: BLE001
                    pass

    def __len__(self) -> int:
        with self._lock:
            return len(self._listeners)

    def __repr__(self) -> str:
        return f"<Emitter {self._name} listeners={len(self)}>"


# Callback token -> the registerer's state / the user agent's trace or request emitter (weakly).
_tokens = itertools.count(1)
_states: Dict[int, "weakref.ReferenceType[_RegState]"] = {}
_trace_targets: Dict[int, "weakref.ReferenceType[_TraceEmitter]"] = {}
_request_targets: Dict[int, "weakref.ReferenceType[_RequestEmitter]"] = {}


@dataclass(frozen=True)
class TraceRecord:
    """One SIP message as it went over the wire (see :attr:`UserAgent.trace`).

    ``message`` is the full text with Authorization and Proxy-Authorization
    values replaced by ``Digest <redacted>``: the digest response never appears.
    """

    #: ``"sent"`` or ``"received"``.
    direction: str
    #: ``"udp"``, ``"tcp"``, ``"tls"``…
    transport: str
    #: The library's end, ``"IP:port"`` (``""`` when unknown).
    local: str
    #: The peer's end, ``"IP:port"``.
    remote: str
    #: Wall-clock time, seconds since the Unix epoch (microsecond resolution).
    timestamp: float
    #: The message text, credentials redacted.
    message: str

    def __str__(self) -> str:
        arrow = "->" if self.direction == "sent" else "<-"
        when = time.strftime("%H:%M:%S", time.gmtime(self.timestamp))
        micros = int(round((self.timestamp % 1) * 1e6)) % 1000000
        head = (
            f"--- {when}.{micros:06d} UTC {self.direction} {self.transport} "
            f"{self.local or '?'} {arrow} {self.remote} ({len(self.message.encode())} bytes)"
        )
        text = self.message.replace("\r\n", "\n").rstrip("\n")
        body = "\n".join("    " + line for line in text.split("\n"))
        return head + "\n" + body


class _CallbackEmitter(Emitter[F]):
    """An emitter of one user agent whose C callback is installed while it
    has listeners; the trampoline finds it from its token (weakly, in
    ``targets``)."""

    #: The C setter, named in errors.
    _setter = ""

    def __init__(self, name: str, handle: "_Handle", targets: Dict[int, "weakref.ReferenceType[Any]"]) -> None:
        super().__init__(name)
        self._handle = handle
        self._targets = targets
        self._token = next(_tokens)
        self._installed = False
        token = self._token

        def forget(_ref: "weakref.ReferenceType[Any]") -> None:
            targets.pop(token, None)

        targets[token] = weakref.ref(self, forget)

    def _install(self, h: int, on: bool) -> int:
        """Installs (``on``) or removes the C callback; the result code."""
        raise NotImplementedError

    def _sync(self) -> None:
        h = self._handle.value
        want = len(self) > 0 and h is not None
        if h is None or want == self._installed:
            return
        check(self._install(h, want), self._setter)
        self._installed = want

    def add_listener(self, listener: F, *, once: bool = False) -> None:
        """Adds ``listener``; the first one installs the library's callback for this user agent."""
        super().add_listener(listener, once=once)
        self._sync()

    def remove_listener(self, listener: F) -> None:
        """Removes ``listener``; without listeners the callback is removed."""
        super().remove_listener(listener)
        self._sync()

    def remove_all_listeners(self) -> None:
        """Removes every listener and the callback."""
        super().remove_all_listeners()
        self._sync()

    def forget(self) -> None:
        """The user agent is gone: drop the token."""
        self._targets.pop(self._token, None)


class _TraceEmitter(_CallbackEmitter[Callable[[TraceRecord], None]]):
    """The trace emitter of one user agent: the library traces it while it
    has listeners (no cost without)."""

    _setter = "sipreg_user_agent_set_trace_callback"

    def __init__(self, handle: "_Handle") -> None:
        super().__init__("trace", handle, _trace_targets)

    def _install(self, h: int, on: bool) -> int:
        if on:
            return int(lib.sipreg_user_agent_set_trace_callback(h, TRACE_TRAMPOLINE, self._token))
        return int(lib.sipreg_user_agent_set_trace_callback(h, _lib.NULL_TRACE_CALLBACK, None))


def _on_trace(user_data: Optional[int], ua: Optional[int], record: Any) -> None:
    """The trace trampoline (worker thread). Never raises into C."""
    try:
        with _lib.callback_scope():
            ref = _trace_targets.get(user_data or 0)
            em = ref() if ref is not None else None
            if em is None or not record:
                return
            r = record.contents

            def text(b: Optional[bytes]) -> str:
                return b.decode("utf-8", "replace") if b else ""

            em.emit(
                TraceRecord(
                    direction="sent" if r.direction == _lib.SIPREG_TRACE_SENT else "received",
                    transport=text(r.transport),
                    local=text(r.local),
                    remote=text(r.remote),
                    timestamp=int(r.timestamp_us) / 1e6,
                    message=text(r.message),
                )
            )
    except BaseException:  # noqa: BLE001 - never let anything escape into the worker
        try:
            logger.exception("sipreg trace callback failed")
        except BaseException:  # noqa: BLE001
            pass


#: The one trace trampoline shared by every user agent (module-global: outlives every handle).
TRACE_TRAMPOLINE = _lib.sipreg_trace_callback(_on_trace)


class _RequestEmitter(_CallbackEmitter[Callable[[IncomingRequest], None]]):
    """The request emitter of one user agent: the C callback is installed while it has listeners.

    Without listeners the library answers requests itself (405 with Allow;
    OPTIONS 200; CANCEL 481). A request reaches every listener; any of them (or code
    they hand it to) answers it with :meth:`IncomingRequest.respond`.
    """

    _setter = "sipreg_user_agent_set_request_callback"

    def __init__(self, handle: "_Handle") -> None:
        super().__init__("requests", handle, _request_targets)

    def _install(self, h: int, on: bool) -> int:
        if on:
            return int(lib.sipreg_user_agent_set_request_callback(h, REQUEST_TRAMPOLINE, self._token))
        return int(lib.sipreg_user_agent_set_request_callback(h, _lib.NULL_REQUEST_CALLBACK, None))

    def handle_box(self) -> "_Handle":
        return self._handle


def _on_request(user_data: Optional[int], ua: Optional[int], request: Any) -> None:
    """The request trampoline (worker thread). Never raises into C."""
    try:
        with _lib.callback_scope():
            ref = _request_targets.get(user_data or 0)
            em = ref() if ref is not None else None
            if em is None or not request:
                return
            r = request.contents

            def text(b: Optional[bytes]) -> str:
                return b.decode("utf-8", "replace") if b else ""

            em.emit(
                IncomingRequest(
                    em.handle_box(),
                    _lib.incoming_bytes(r),
                    text(r.method),
                    text(r.flow),
                    int(r.flow_id),
                )
            )
    except BaseException:  # noqa: BLE001 - never let anything escape into the worker
        try:
            logger.exception("sipreg request callback failed")
        except BaseException:  # noqa: BLE001
            pass


#: The one request trampoline shared by every user agent (module-global: outlives every handle).
REQUEST_TRAMPOLINE = _lib.sipreg_request_callback(_on_request)


class _Handle:
    """A C handle value that is freed exactly once, whoever gets there first."""

    __slots__ = ("_value", "_lock", "__weakref__")

    def __init__(self, value: int) -> None:
        self._value: Optional[int] = value
        self._lock = threading.Lock()

    @property
    def value(self) -> Optional[int]:
        """The handle, or ``None`` once taken for freeing."""
        return self._value

    def take(self) -> Optional[int]:
        """Returns the handle and marks it gone (``None`` if already taken)."""
        with self._lock:
            v, self._value = self._value, None
            return v


# Live handles, for the atexit hook (small boxes only: no path back to user objects).
_live_user_agents: Set[_Handle] = set()
_live_registerers: Set[_Handle] = set()
_live_lock = threading.RLock()  # finalizers may run (GC) while this thread holds it
_exiting = False



def _check_uint(value: Any, what: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidArgumentError(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def _check_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{what} must be a number, not {type(value).__name__}")
    return float(value)


@dataclass(frozen=True)
class _Event:
    """One library event as the watchers of a registerer see it."""

    kind: int
    #: The state when it happened (the new one for a state change).
    state: RegistererState
    status: int
    reason: str
    #: The failure of the last attempt as of this event (for FAILED: the one it announces).
    failure: Optional[FailureKind]
    detail: str

    def announced(self) -> Failure:
        """The failure a FAILED event announces."""
        kind = self.failure or FailureKind.REJECTED
        return Failure(kind, self.status or None, self.reason, self.detail)


#: What an attempt came to, for register(wait=...) and aio: ``None`` while
#: undecided, else ``("ok", None)``, ``("failed", Failure)`` or ``("terminated", None)``.
_Outcome = Optional[Tuple[str, Optional[Failure]]]


def _register_outcome(ev: _Event) -> _Outcome:
    """Whether ``ev`` ends a register(): Registered, a failed attempt, or Terminated."""
    if ev.kind == EventKind.FAILED:
        return ("failed", ev.announced())
    if ev.kind == EventKind.STATE_CHANGED:
        if ev.state == RegistererState.REGISTERED:
            return ("ok", None)
        if ev.state == RegistererState.TERMINATED:
            return ("terminated", None)
    # A 2xx that keeps us registered (no state change): a success unless
    # the same step failed (then its FAILED event follows).
    if (
        ev.kind == EventKind.RESPONSE
        and 200 <= ev.status < 300
        and ev.state == RegistererState.REGISTERED
        and ev.failure is None
    ):
        return ("ok", None)
    return None


def _unregister_outcome(ev: _Event) -> _Outcome:
    """Whether ``ev`` ends an unregister(): its 2xx, a failed attempt, or Terminated."""
    if ev.kind == EventKind.FAILED:
        return ("failed", ev.announced())
    if ev.kind == EventKind.STATE_CHANGED:
        if ev.state == RegistererState.UNREGISTERED:
            return ("ok", None)
        if ev.state == RegistererState.TERMINATED:
            return ("terminated", None)
    # Already Unregistered: its 2xx changes no state.
    if (
        ev.kind == EventKind.RESPONSE
        and 200 <= ev.status < 300
        and ev.state == RegistererState.UNREGISTERED
        and ev.failure is None
    ):
        return ("ok", None)
    return None


class _RegState:
    """Python-side state of one registerer, reached from the event trampoline.

    Holds no reference to the :class:`Registerer` itself, so the registerer can
    be collected while the library still knows the handle.
    """

    def __init__(self, handle: _Handle, token: int, shutdown_timeout: float) -> None:
        self.handle = handle
        self.token = token
        self.shutdown_timeout = shutdown_timeout
        self.cond = threading.Condition()
        self.delivered = RegistererState.INITIAL
        self.seq = 0
        self.seen: Dict[RegistererState, int] = {}
        self.terminated_delivered = False
        self.responses: Deque[Tuple[int, str]] = collections.deque(maxlen=Registerer.RESPONSES_KEPT)
        self.state_change: Emitter[Callable[[RegistererState], None]] = Emitter("state_change")
        self.response_event: Emitter[Callable[[int, str], None]] = Emitter("response_event")
        self.retry_event: Emitter[Callable[[RetryEvent], None]] = Emitter("retry_event")
        self.failure_event: Emitter[Callable[[Failure], None]] = Emitter("failure_event")
        #: Internal observers of every event (register(wait=...), sipreg.aio);
        #: one returning True is removed.
        self.watchers: List[Callable[[_Event], bool]] = []
        self.watch_lock = threading.Lock()
        #: The dispatcher its callbacks go to (its user agent's when it was created).
        self.dispatcher: Optional[Dispatcher] = None
        #: Last values read before the handle was freed.
        self.cache: Dict[str, Any] = {}

    # -- events (worker thread) ------------------------------------------

    def add_watch(self, fn: Callable[[_Event], bool]) -> None:
        with self.watch_lock:
            self.watchers.append(fn)

    def remove_watch(self, fn: Callable[[_Event], bool]) -> None:
        with self.watch_lock:
            if fn in self.watchers:
                self.watchers.remove(fn)

    def dispatch(
        self,
        kind: int,
        state: int,
        status: int,
        reason: str,
        delay: float,
        failures: int,
        failure: int = 0,
        detail: str = "",
    ) -> None:
        ev = _Event(
            kind, RegistererState(state), status, reason, FailureKind.from_c(failure), detail
        )
        self.emit(kind, state, status, reason, delay, failures, ev)
        with self.watch_lock:
            current = list(self.watchers)
        for fn in current:
            try:
                done = fn(ev)
            except BaseException:  # noqa: BLE001 - must not escape into the library
                logger.exception("sipreg event watcher failed")
                done = True
            if done:
                self.remove_watch(fn)

    def emit(
        self,
        kind: int,
        state: int,
        status: int,
        reason: str,
        delay: float,
        failures: int,
        ev: _Event,
    ) -> None:
        if kind == EventKind.FAILED:
            self.failure_event.emit(ev.announced())
        elif kind == EventKind.STATE_CHANGED:
            new = RegistererState(state)
            self.state_change.emit(new)
            with self.cond:
                self.delivered = new
                self.seq += 1
                self.seen[new] = self.seq
                if new == RegistererState.TERMINATED:
                    self.terminated_delivered = True
                self.cond.notify_all()
        elif kind == EventKind.RESPONSE:
            with self.cond:
                self.responses.append((status, reason))
                self.cond.notify_all()
            self.response_event.emit(status, reason)
        elif kind in (EventKind.RETRY_SCHEDULED, EventKind.RETRY_STARTED):
            self.retry_event.emit(RetryEvent(EventKind(kind), delay, failures))

    # -- waiting ----------------------------------------------------------

    def wait_state(self, state: RegistererState, timeout: Optional[float]) -> bool:
        with self.cond:
            start = self.seq

            def reached() -> bool:
                return self.delivered == state or self.seen.get(state, 0) > start

            self.cond.wait_for(
                lambda: reached() or self.delivered == RegistererState.TERMINATED, timeout
            )
            return reached()

    def must_not_wait(self) -> bool:
        """Whether waiting for an event here could never end: inside a
        callback, or on the thread that runs this registerer's dispatcher."""
        return in_callback() or (self.dispatcher is not None and self.dispatcher.is_home())

    def wait_terminated(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.terminated_delivered, timeout)

    # -- releasing ----------------------------------------------------------

    def snapshot(self, h: int) -> None:
        """Copies the readable values before the handle goes away."""
        for name, fn in (
            ("contacts", _read_contacts),
            ("retry_after", _read_retry_after),
            ("last_response", _read_last_response),
            ("failure_count", _read_failure_count),
            ("retransmissions", _read_retransmissions),
            ("service_route", _read_service_route),
            ("path", _read_path),
            ("pub_gruu", _read_pub_gruu),
            ("temp_gruu", _read_temp_gruu),
            ("public_address", _read_public_address),
            ("flow", _read_flow),
            ("failure", _read_failure),
            ("flow_id", _read_flow_id),
        ):
            try:
                self.cache[name] = fn(h)
            except Exception:  # noqa: BLE001 - best effort
                pass

    def release(self) -> None:
        """Frees the C handle (no callback runs for it afterwards, unless called from one)."""
        h = self.handle.value
        if h is None:
            return
        self.snapshot(h)  # before the handle disappears for readers on other threads
        h = self.handle.take()
        if h is None:
            return
        with _live_lock:
            _live_registerers.discard(self.handle)
        lib.sipreg_registerer_free(h)
        _states.pop(self.token, None)


def _on_event(user_data: Optional[int], registerer: Optional[int], event: Any) -> None:
    """The event trampoline (worker thread). Never raises into C."""
    try:
        with _lib.callback_scope():
            ref = _states.get(user_data or 0)
            st = ref() if ref is not None else None
            if st is None or not event:
                return
            ev = event.contents
            reason = ev.reason.decode("utf-8", "replace") if ev.reason else ""
            detail = ev.failure_detail.decode("utf-8", "replace") if ev.failure_detail else ""
            st.dispatch(
                int(ev.kind),
                int(ev.state),
                int(ev.status_code),
                reason,
                float(ev.retry_delay),
                int(ev.failure_count),
                int(ev.failure),
                detail,
            )
    except BaseException:  # noqa: BLE001 - never let anything escape into the worker
        try:
            logger.exception("sipreg event callback failed")
        except BaseException:  # noqa: BLE001
            pass


#: The one event trampoline shared by every registerer; module-global, so it
#: outlives every handle (each Registerer also keeps a reference to it).
EVENT_TRAMPOLINE = _lib.sipreg_event_callback(_on_event)


# -- accessors on a raw handle (shared by properties and snapshots) -------------


def _read_state(h: int) -> RegistererState:
    out = c_int(0)
    check(lib.sipreg_registerer_state(h, byref(out)), "sipreg_registerer_state")
    return RegistererState(out.value)


def _read_contacts(h: int) -> List[str]:
    for _attempt in range(3):
        n = c_size_t(0)
        check(lib.sipreg_registerer_contact_count(h, byref(n)), "sipreg_registerer_contact_count")
        out: List[str] = []
        try:
            for i in range(n.value):

                def call(buf: Any, size: int, needed: Any, i: int = i) -> int:
                    return int(lib.sipreg_registerer_contact(h, i, buf, size, needed))

                out.append(_lib.read_string(call, "sipreg_registerer_contact"))
        except InvalidArgumentError:
            continue  # the list shrank between the calls (a new 2xx): read again
        return out
    return []


def _read_flow_id(h: int) -> Optional[int]:
    out = c_uint64(0)
    check(lib.sipreg_registerer_flow_id(h, byref(out)), "sipreg_registerer_flow_id")
    return int(out.value) or None


def _read_flow(h: int) -> Optional[str]:
    flow = _lib.read_string(
        lambda buf, size, needed: lib.sipreg_registerer_flow(h, buf, size, needed),
        "sipreg_registerer_flow",
        initial=128,
    )
    return flow or None


def _read_list(h: int, name: str) -> List[str]:
    """Reads a ``sipreg_registerer_<name>_count`` / ``sipreg_registerer_<name>`` list."""
    count_fn = getattr(lib, f"sipreg_registerer_{name}_count")
    item_fn = getattr(lib, f"sipreg_registerer_{name}")
    for _attempt in range(3):
        n = c_size_t(0)
        check(count_fn(h, byref(n)), f"sipreg_registerer_{name}_count")
        out: List[str] = []
        try:
            for i in range(n.value):

                def call(buf: Any, size: int, needed: Any, i: int = i) -> int:
                    return int(item_fn(h, i, buf, size, needed))

                out.append(_lib.read_string(call, f"sipreg_registerer_{name}"))
        except InvalidArgumentError:
            continue  # the list shrank between the calls (a new 2xx): read again
        return out
    return []


def _read_service_route(h: int) -> List[str]:
    return _read_list(h, "service_route")


def _read_path(h: int) -> List[str]:
    return _read_list(h, "path")


def _read_optional(h: int, name: str) -> Optional[str]:
    fn = getattr(lib, f"sipreg_registerer_{name}")
    value = _lib.read_string(
        lambda buf, size, needed: fn(h, buf, size, needed), f"sipreg_registerer_{name}"
    )
    return value or None


def _read_pub_gruu(h: int) -> Optional[str]:
    return _read_optional(h, "pub_gruu")


def _read_temp_gruu(h: int) -> Optional[str]:
    return _read_optional(h, "temp_gruu")


def _read_public_address(h: int) -> Optional[str]:
    return _read_optional(h, "public_address")


def _read_retry_after(h: int) -> Optional[int]:
    seconds = c_uint32(0)
    present = c_bool(False)
    check(
        lib.sipreg_registerer_retry_after(h, byref(seconds), byref(present)),
        "sipreg_registerer_retry_after",
    )
    return int(seconds.value) if present.value else None


def _read_last_response(h: int) -> Optional[Tuple[int, str]]:
    code = c_uint16(0)
    reason = _lib.read_string(
        lambda buf, size, needed: lib.sipreg_registerer_last_response(
            h, byref(code), buf, size, needed
        ),
        "sipreg_registerer_last_response",
        initial=128,
    )
    return (int(code.value), reason) if code.value else None


def _read_next_retry(h: int) -> Optional[float]:
    out = c_double(-1.0)
    check(lib.sipreg_registerer_next_retry(h, byref(out)), "sipreg_registerer_next_retry")
    return None if out.value < 0 else float(out.value)


def _read_failure(h: int) -> Optional[Failure]:
    kind = c_int(0)
    detail = _lib.read_string(
        lambda buf, size, needed: lib.sipreg_registerer_failure(h, byref(kind), buf, size, needed),
        "sipreg_registerer_failure",
    )
    fk = FailureKind.from_c(kind.value)
    if fk is None:
        return None
    status = c_uint16(0)
    reason = _lib.read_string(
        lambda buf, size, needed: lib.sipreg_registerer_failure_response(
            h, byref(status), buf, size, needed
        ),
        "sipreg_registerer_failure_response",
        initial=64,
    )
    return Failure(fk, int(status.value) or None, reason, detail)


def _read_failure_count(h: int) -> int:
    out = c_uint32(0)
    check(lib.sipreg_registerer_failure_count(h, byref(out)), "sipreg_registerer_failure_count")
    return int(out.value)


def _read_retransmissions(h: int) -> int:
    out = c_uint64(0)
    check(
        lib.sipreg_registerer_retransmissions(h, byref(out)), "sipreg_registerer_retransmissions"
    )
    return int(out.value)


# -- finalizers ---------------------------------------------------------------


def _finalize_registerer(handle: _Handle, token: int) -> None:
    """Frees a collected registerer's handle (a registered one is disposed in the background)."""
    try:
        h = handle.take()
        if h is None:
            return
        with _live_lock:
            _live_registerers.discard(handle)
        lib.sipreg_registerer_free(h)
        _states.pop(token, None)
    except BaseException:  # noqa: BLE001 - finalizers must not raise
        pass


def _free_user_agent_handle(h: int) -> None:
    try:
        lib.sipreg_user_agent_free(h)
    except BaseException:  # noqa: BLE001
        pass


def _finalize_user_agent(handle: _Handle) -> None:
    """Frees a collected user agent's handle, disposing its registerers.

    ``sipreg_user_agent_free`` blocks (bounded by the shutdown timeout) while
    un-REGISTERs are pending; so that garbage collection never blocks the
    thread it happens on, the free runs on a short-lived non-daemon thread
    (joined by the interpreter before exit). On the worker thread the free
    does not wait, so it runs inline.
    """
    try:
        h = handle.take()
        if h is None:
            return
        with _live_lock:
            _live_user_agents.discard(handle)
        if in_callback() or _exiting:
            lib.sipreg_user_agent_free(h)
            return
        try:
            threading.Thread(
                target=_free_user_agent_handle, args=(h,), name="sipreg-ua-free"
            ).start()
        except RuntimeError:  # no new threads (interpreter shutting down)
            lib.sipreg_user_agent_free(h)
    except BaseException:  # noqa: BLE001
        pass


def _at_exit() -> None:
    """Releases everything still alive at interpreter exit, callbacks first."""
    global _exiting
    _exiting = True
    try:
        with _live_lock:
            regs = list(_live_registerers)
            uas = list(_live_user_agents)
        # 1. No event or trace callback may run from here on.
        for box in uas:
            h = box.value
            if h is not None:
                lib.sipreg_user_agent_set_trace_callback(h, _lib.NULL_TRACE_CALLBACK, None)
                lib.sipreg_user_agent_set_request_callback(h, _lib.NULL_REQUEST_CALLBACK, None)
        for box in regs:
            h = box.value
            if h is not None:
                lib.sipreg_registerer_set_event_callback(h, _lib.NULL_EVENT_CALLBACK, None)
        # 2. Start every dispose at once (non-blocking), so the bounded waits
        #    of the user agents' frees below overlap instead of adding up.
        for box in regs:
            h = box.value
            if h is not None:
                lib.sipreg_dispose(h)
        # 3. Free the user agents: waits (bounded) until their registerers are Terminated.
        for box in uas:
            h = box.take()
            if h is not None:
                lib.sipreg_user_agent_free(h)
        # 4. Free the registerer handles.
        for box in regs:
            h = box.take()
            if h is not None:
                lib.sipreg_registerer_free(h)
        with _live_lock:
            _live_registerers.clear()
            _live_user_agents.clear()
        _states.clear()
        _trace_targets.clear()
        _request_targets.clear()
    finally:
        # 5. And no log callback either.
        try:
            _lib.remove_log_callback()
        except BaseException:  # noqa: BLE001
            pass


atexit.register(_at_exit)


# -- public classes -------------------------------------------------------------


class UserAgent:
    """Identity and transport shared by registerers (SIP.js ``UserAgent``).

    Args:
        aor: address of record, e.g. ``"sip:alice@127.0.0.1"``.
        password: digest password (``None``: no credentials).
        auth_username: digest username (``None``: the AOR's user part).
        transport: ``"udp"``, ``"tcp"``, ``"tls"``, ``"ws"`` or ``"wss"``; a
            ``transport=`` parameter on the registrar or proxy URI overrides
            it, and a ``sips:`` URI implies ``"tls"``. ``None`` leaves the
            choice to a host-name registrar's NAPTR records (RFC 3263; UDP
            when there are none).
        outbound_proxy: URI requests are sent to (with a Route header).
        user_agent: User-Agent header value (``None``: the library's default).
        t1, t2, t4: RFC 3261 timers in seconds (timer F = 64*T1).
        local_address: ``"IP"`` or ``"IP:port"`` to bind sockets to (keyword-only).
        shutdown_timeout: bound in seconds on dispose's un-REGISTER and on
            :meth:`close` (keyword-only, default 4).
        tls_ca_file: PEM file of the CAs a TLS/WSS server must chain to
            (keyword-only; ``None``: the system's trust store). Read and
            checked here: a bad file raises :class:`InvalidArgumentError`.
        tls_server_name: name sent as SNI and required in the server's
            certificate (keyword-only; ``None``: the registrar's host).
        tls_verify: check certificates and host names (keyword-only, default
            ``True``; ``False`` is for labs only and logs a warning).
        ws_path: request path of the WebSocket upgrade (keyword-only, default ``"/"``).
        private_socket: give this user agent sockets of its own (keyword-only;
            default ``False``: user agents with the same transport, family and
            local address share the process-wide sockets and connections).
        keepalive: keep-alive interval in seconds when the registrar sends no
            Flow-Timer (``None`` or 0: off); without RFC 5626 outbound this is
            a plain CRLF NAT keep-alive (keyword-only).
        contact_rewrite: rewrite the Contact to the address the registrar saw
            (Via received/rport), never while outbound is in use (keyword-only).
        credentials: more credentials besides ``password``, each a
            :class:`Credential` (a password or an HA1, for one realm or for
            any realm; keyword-only).
        digest_downgrade: answer a challenge offering only a weaker digest
            algorithm than its realm offered before (keyword-only; default
            ``False``: refused, the attempt fails with ``AUTH_DOWNGRADE``).
        allow: the methods the contact accepts, listed in the REGISTER's Allow
            and in the library's OPTIONS answers and 405s (keyword-only;
            default ``("OPTIONS",)``, what the library answers itself).
        answer_options: the library answers OPTIONS (200 with Allow and
            Supported, keeping registrar pings answered); ``False`` hands them
            to :attr:`requests` listeners (keyword-only, default ``True``).
        contact_user: the user part of the Contact (SIP.js ``contactName``;
            keyword-only; ``None``: the AOR's user).
        ws_origin: the ``Origin`` of WebSocket upgrades (keyword-only;
            ``None``: ``http://``/``https://`` and the registrar's host).

    Raises:
        InvalidArgumentError: a bad AOR, URI, transport or timer value.

    Use as a context manager, or call :meth:`close`; a user agent that is
    garbage-collected or still alive at interpreter exit is freed automatically.
    """

    def __init__(
        self,
        aor: str,
        password: Optional[str] = None,
        auth_username: Optional[str] = None,
        transport: Optional[str] = "udp",
        outbound_proxy: Optional[str] = None,
        user_agent: Optional[str] = None,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        *,
        local_address: Optional[str] = None,
        shutdown_timeout: float = 4.0,
        tls_ca_file: Optional[str] = None,
        tls_server_name: Optional[str] = None,
        tls_verify: bool = True,
        ws_path: str = "/",
        private_socket: bool = False,
        keepalive: Optional[int] = None,
        contact_rewrite: bool = True,
        credentials: Iterable[Credential] = (),
        digest_downgrade: bool = False,
        allow: Iterable[str] = ("OPTIONS",),
        answer_options: bool = True,
        contact_user: Optional[str] = None,
        ws_origin: Optional[str] = None,
    ) -> None:
        if _exiting:
            raise TerminatedError("the interpreter is shutting down")
        credentials = list(credentials)
        if isinstance(allow, (str, bytes)):
            raise InvalidArgumentError("allow must be a sequence of method names, not one string")
        allow = [encode(m, "allow").decode("utf-8") for m in allow]
        if not allow:
            raise InvalidArgumentError("allow must name at least one method")
        if not isinstance(answer_options, bool):
            raise InvalidArgumentError("answer_options must be True or False")
        out = c_void_p()
        check(lib.sipreg_user_agent_new(encode(aor, "aor"), byref(out)), "sipreg_user_agent_new")
        h = out.value
        assert h is not None
        try:
            if password is not None:
                check(
                    lib.sipreg_user_agent_set_password(h, encode(password, "password")),
                    "sipreg_user_agent_set_password",
                )
            if auth_username is not None:
                check(
                    lib.sipreg_user_agent_set_auth_username(
                        h, encode(auth_username, "auth_username")
                    ),
                    "sipreg_user_agent_set_auth_username",
                )
            if transport is not None:
                check(
                    lib.sipreg_user_agent_set_transport(h, encode(transport, "transport")),
                    "sipreg_user_agent_set_transport",
                )
            if outbound_proxy is not None:
                check(
                    lib.sipreg_user_agent_set_outbound_proxy(
                        h, encode(outbound_proxy, "outbound_proxy")
                    ),
                    "sipreg_user_agent_set_outbound_proxy",
                )
            if local_address is not None:
                check(
                    lib.sipreg_user_agent_set_local_address(
                        h, encode(local_address, "local_address")
                    ),
                    "sipreg_user_agent_set_local_address",
                )
            if tls_ca_file is not None:
                check(
                    lib.sipreg_user_agent_set_tls_ca_file(h, encode(tls_ca_file, "tls_ca_file")),
                    "sipreg_user_agent_set_tls_ca_file",
                )
            if tls_server_name is not None:
                check(
                    lib.sipreg_user_agent_set_tls_server_name(
                        h, encode(tls_server_name, "tls_server_name")
                    ),
                    "sipreg_user_agent_set_tls_server_name",
                )
            if not isinstance(tls_verify, bool):
                raise InvalidArgumentError("tls_verify must be True or False")
            check(
                lib.sipreg_user_agent_set_tls_verify(h, tls_verify),
                "sipreg_user_agent_set_tls_verify",
            )
            check(
                lib.sipreg_user_agent_set_ws_path(h, encode(ws_path, "ws_path")),
                "sipreg_user_agent_set_ws_path",
            )
            if private_socket:
                check(
                    lib.sipreg_user_agent_set_private_socket(h, True),
                    "sipreg_user_agent_set_private_socket",
                )
            if user_agent is not None:
                check(
                    lib.sipreg_user_agent_set_user_agent(h, encode(user_agent, "user_agent")),
                    "sipreg_user_agent_set_user_agent",
                )
            check(
                lib.sipreg_user_agent_set_timers(
                    h, _check_float(t1, "t1"), _check_float(t2, "t2"), _check_float(t4, "t4")
                ),
                "sipreg_user_agent_set_timers",
            )
            check(
                lib.sipreg_user_agent_set_shutdown_timeout(
                    h, _check_float(shutdown_timeout, "shutdown_timeout")
                ),
                "sipreg_user_agent_set_shutdown_timeout",
            )
            if keepalive is not None:
                check(
                    lib.sipreg_user_agent_set_keepalive(h, _check_uint(keepalive, "keepalive")),
                    "sipreg_user_agent_set_keepalive",
                )
            check(
                lib.sipreg_user_agent_set_contact_rewrite(h, bool(contact_rewrite)),
                "sipreg_user_agent_set_contact_rewrite",
            )
            for credential in credentials:
                add_credential(h, credential)
            if digest_downgrade:
                check(
                    lib.sipreg_user_agent_set_digest_downgrade(h, True),
                    "sipreg_user_agent_set_digest_downgrade",
                )
            if any("," in m for m in allow):
                raise InvalidArgumentError("allow: one method name per item")
            check(
                lib.sipreg_user_agent_set_allow(h, encode(", ".join(allow), "allow")),
                "sipreg_user_agent_set_allow",
            )
            if not answer_options:
                check(
                    lib.sipreg_user_agent_set_answer_options(h, False),
                    "sipreg_user_agent_set_answer_options",
                )
            if contact_user is not None:
                check(
                    lib.sipreg_user_agent_set_contact_user(
                        h, encode(contact_user, "contact_user")
                    ),
                    "sipreg_user_agent_set_contact_user",
                )
            if ws_origin is not None:
                check(
                    lib.sipreg_user_agent_set_ws_origin(h, encode(ws_origin, "ws_origin")),
                    "sipreg_user_agent_set_ws_origin",
                )
        except BaseException:
            lib.sipreg_user_agent_free(h)
            raise
        self._aor = aor
        self._transport = transport
        self._shutdown_timeout = float(shutdown_timeout)
        self._handle = _Handle(h)
        self._trace = _TraceEmitter(self._handle)
        self._dispatcher: Optional[Dispatcher] = None
        self._requests = _RequestEmitter(self._handle)
        self._registerers: "weakref.WeakSet[_RegState]" = weakref.WeakSet()
        with _live_lock:
            _live_user_agents.add(self._handle)
        self._finalizer = weakref.finalize(self, _finalize_user_agent, self._handle)
        self._finalizer.atexit = False  # the module's atexit hook orders the teardown

    # -- properties -------------------------------------------------------

    @property
    def aor(self) -> str:
        """The address of record."""
        return self._aor

    @property
    def transport(self) -> Optional[str]:
        """The transport given at construction."""
        return self._transport

    @property
    def shutdown_timeout(self) -> float:
        """Bound in seconds on dispose's un-REGISTER and on :meth:`close`."""
        return self._shutdown_timeout

    @property
    def trace(self) -> Emitter[Callable[[TraceRecord], None]]:
        """Every SIP message this user agent sends or receives, as a :class:`TraceRecord`.

        Like sngrep or pjsip's ``msg_logging``: ``ua.trace.add_listener(print)``
        prints each message readably. Listeners run on the library's worker
        thread, in wire order, and may call into the library; credentials are
        redacted. The trace costs nothing while it has no listener; none is
        called after :meth:`close` returns.
        """
        return self._trace

    @property
    def requests(self) -> Emitter[Callable[[IncomingRequest], None]]:
        """Requests reaching the contact over the registered flow: calls,
        messages, notifications routed to the AOR, as :class:`IncomingRequest`.

        ``ua.requests.add_listener(fn)``: ``fn(request)`` runs on the library's
        worker thread for each request the library does not answer itself
        (every one but OPTIONS, unless ``answer_options=False``); answer with
        ``request.respond(200)`` there or later. Retransmissions are not
        handed up again (an INVITE gets 100 Trying from the library at once).
        Without a listener the library answers 405 with Allow (an ACK gets
        nothing, a CANCEL 481); none is called after :meth:`close`
        returns. Responses to requests sent with :meth:`send` arrive here too
        (``request.status`` is set).
        """
        return self._requests

    def send(self, flow_id: int, message: Union[bytes, str]) -> None:
        """Sends the application's own SIP message (an INVITE, a MESSAGE, a
        response it wrote) as it is over flow ``flow_id`` (a
        :attr:`Registerer.flow_id`, or an :attr:`IncomingRequest.flow_id`):
        a request goes to the registrar or proxy the registerer on that flow
        uses (RFC 5626: the registered flow), a response to its top Via.

        Raises:
            InvalidArgumentError: not a SIP request or response, too large, no flow id.
            TransportError: the flow is closed.
            TerminatedError: the user agent is closed.
        """
        if isinstance(flow_id, bool) or not isinstance(flow_id, int) or flow_id <= 0:
            raise InvalidArgumentError(f"flow_id must be a positive int, not {flow_id!r}")
        if isinstance(message, str):
            message = message.encode("utf-8")
        if not isinstance(message, bytes):
            raise InvalidArgumentError(f"message must be bytes or str, not {type(message).__name__}")
        check(
            lib.sipreg_user_agent_send(self._require(), flow_id, message, len(message)),
            "sipreg_user_agent_send",
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (or the handle was otherwise freed)."""
        return self._handle.value is None

    @property
    def stats(self) -> Dict[str, int]:
        """Message counters: ``received``, ``dropped``, ``sent``, ``transport_errors``,
        the pacing window of the registrar target last used: ``window``,
        ``in_flight``, ``queued``, and the contact's ``requests`` and ``answered``."""
        st = _lib.sipreg_stats()
        check(lib.sipreg_user_agent_stats(self._require(), byref(st)), "sipreg_user_agent_stats")
        return {
            "received": int(st.received),
            "dropped": int(st.dropped),
            "sent": int(st.sent),
            "transport_errors": int(st.transport_errors),
            "window": int(st.window),
            "in_flight": int(st.in_flight),
            "queued": int(st.queued),
            "requests": int(st.requests),
            "answered": int(st.answered),
        }

    def _require(self) -> int:
        h = self._handle.value
        if h is None:
            raise TerminatedError("the user agent is closed")
        return h

    # -- methods ----------------------------------------------------------

    def set_password(self, password: Optional[str]) -> None:
        """Replaces the digest password of every registerer at once (``None`` removes it)."""
        check(
            lib.sipreg_user_agent_set_password(self._require(), encode_opt(password, "password")),
            "sipreg_user_agent_set_password",
        )

    def set_auth_username(self, auth_username: Optional[str]) -> None:
        """Replaces the digest username at once (``None``: the AOR's user)."""
        check(
            lib.sipreg_user_agent_set_auth_username(
                self._require(), encode_opt(auth_username, "auth_username")
            ),
            "sipreg_user_agent_set_auth_username",
        )

    def add_credential(self, credential: Credential) -> None:
        """Adds a credential for every registerer at once, replacing the one
        with the same realm, username and kind (see :class:`Credential`)."""
        add_credential(self._require(), credential)

    def set_digest_downgrade(self, allow: bool) -> None:
        """Whether a challenge may offer only a weaker digest algorithm than
        its realm offered before (applies at once)."""
        check(
            lib.sipreg_user_agent_set_digest_downgrade(self._require(), bool(allow)),
            "sipreg_user_agent_set_digest_downgrade",
        )

    def set_dispatcher(self, dispatcher: Optional[Dispatcher]) -> None:
        """Sends this user agent's callbacks (listeners of its registerers
        created from now on, and :attr:`trace`) to ``dispatcher``, to run on
        the thread that calls :meth:`Dispatcher.run`; ``None``: back to the
        library's worker thread. Call it before creating registerers (a
        registerer's listeners stay where they ran when it was created).
        :mod:`sipreg.aio` does this for you."""
        d = dispatcher._require() if dispatcher is not None else None
        check(
            lib.sipreg_user_agent_set_dispatcher(self._require(), d),
            "sipreg_user_agent_set_dispatcher",
        )
        self._dispatcher = dispatcher

    @property
    def dispatcher(self) -> Optional[Dispatcher]:
        """The dispatcher set by :meth:`set_dispatcher`, if any."""
        return self._dispatcher

    def network_changed(self) -> None:
        """The network changed: re-bind sockets, re-read the DNS settings
        (``/etc/resolv.conf``, process-wide) and re-register every registered registerer."""
        check(
            lib.sipreg_user_agent_network_changed(self._require()),
            "sipreg_user_agent_network_changed",
        )

    def close(self) -> None:
        """Disposes every registerer (un-REGISTERing those registered) and frees the user agent.

        Blocks until all registerers are Terminated or the shutdown timeout
        passed; then frees their handles, so no listener runs after this
        returns. Called from inside a listener it does not wait (the
        registerers terminate in the background). A second call does nothing.
        """
        h = self._handle.take()
        if h is None:
            return
        with _live_lock:
            _live_user_agents.discard(self._handle)
        self._finalizer.detach()
        states = list(self._registerers)
        rc = lib.sipreg_user_agent_free(h)  # also removes the trace and request callbacks
        self._trace.forget()
        self._requests.forget()
        err = _lib.make_error(rc, "sipreg_user_agent_free") if rc != SIPREG_OK else None
        if not in_callback():
            # On the dispatcher's own thread nothing more is delivered while
            # we wait: the library did not wait either (see sipreg_user_agent_free).
            if not (self._dispatcher is not None and self._dispatcher.is_home()):
                deadline = time.monotonic() + WAIT_MARGIN
                for st in states:
                    st.wait_terminated(max(0.0, deadline - time.monotonic()))
            for st in states:
                st.release()
        if err is not None and rc != SIPREG_ERR_TERMINATED:
            raise err

    def __enter__(self) -> "UserAgent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sipreg.UserAgent {self._aor!r} {self._transport}{' closed' if self.closed else ''}>"


class Registerer:
    """Registers one contact for the user agent's AOR (SIP.js ``Registerer``).

    Args:
        ua: the :class:`UserAgent` (kept alive by the registerer).
        expires: requested expiry in seconds (SIP.js default 600).
        refresh_frequency: refresh point in percent of the granted expiry, 50..99;
            always at least min(grant/2, 5 s) before expiry, then up to 10 %
            earlier by a stable per-registerer offset (from the Call-ID).
        registrar: Request-URI, e.g. ``"sip:127.0.0.1:5060"`` (``None``: the AOR's domain).
        extra_headers: ``"Name: value"`` headers added to every REGISTER.
        extra_contact_params: ``"name"`` or ``"name=value"`` parameters of our Contact.
        instance_id: ``+sip.instance`` UUID.
        reg_id: RFC 5626 reg-id (needs ``instance_id``).
        retry: automatic recovery after transient failures (``False``: pure SIP.js).
        retry_base, retry_max: RFC 5626 backoff base and cap in seconds.
        retry_after_max: cap on a server's Retry-After in seconds.
        call_id, from_display_name, to_display_name, to_uri, from_tag, cseq:
            request parameters (keyword-only; ``None``: the library's defaults).
        path_gruu: send ``Supported: path, gruu`` (keyword-only, default off).

    Raises:
        InvalidArgumentError: an invalid option (checked here, never on the wire).
        TransportError: e.g. ``transport="tls"`` in a build without TLS. A
            registrar host name is resolved later (RFC 3263, on the library's
            resolver thread): a name that does not resolve ends the first
            REGISTER with UNREGISTERED and a 503, retried by the backoff.
        TerminatedError: the user agent is closed.

    Events arrive on the library's worker thread through :attr:`state_change`,
    :attr:`response_event` and :attr:`retry_event`.
    """

    #: How many final responses :attr:`responses` keeps.
    RESPONSES_KEPT = 100

    def __init__(
        self,
        ua: UserAgent,
        expires: int = 600,
        refresh_frequency: int = 99,
        registrar: Optional[str] = None,
        extra_headers: Iterable[str] = (),
        extra_contact_params: Iterable[str] = (),
        instance_id: Optional[str] = None,
        reg_id: Optional[int] = None,
        retry: bool = True,
        retry_base: float = 30.0,
        retry_max: float = 1800.0,
        retry_after_max: float = 3600.0,
        *,
        call_id: Optional[str] = None,
        from_display_name: Optional[str] = None,
        to_display_name: Optional[str] = None,
        to_uri: Optional[str] = None,
        from_tag: Optional[str] = None,
        cseq: Optional[int] = None,
        path_gruu: bool = False,
    ) -> None:
        if not isinstance(ua, UserAgent):
            raise TypeError(f"ua must be a sipreg.UserAgent, not {type(ua).__name__}")
        if _exiting:
            raise TerminatedError("the interpreter is shutting down")
        if isinstance(extra_headers, str) or isinstance(extra_contact_params, str):
            raise InvalidArgumentError(
                "extra_headers and extra_contact_params are sequences of strings, not one string"
            )
        ua_h = ua._require()
        opts = c_void_p()
        check(lib.sipreg_registerer_options_new(byref(opts)), "sipreg_registerer_options_new")
        o = opts.value
        out = c_void_p()
        try:

            def setopt(name: str, *args: Any) -> None:
                fn = "sipreg_registerer_options_" + name
                assert fn in _lib.PROTOTYPES, fn
                check(getattr(lib, fn)(o, *args), fn)

            setopt("set_expires", _check_uint(expires, "expires", 1))
            setopt("set_refresh_frequency", _check_uint(refresh_frequency, "refresh_frequency"))
            if registrar is not None:
                setopt("set_registrar", encode(registrar, "registrar"))
            for header in extra_headers:
                setopt("add_extra_header", encode(header, "extra header"))
            for param in extra_contact_params:
                setopt("add_extra_contact_param", encode(param, "extra contact param"))
            if instance_id is not None:
                setopt("set_instance_id", encode(instance_id, "instance_id"))
            if reg_id is not None:
                setopt("set_reg_id", _check_uint(reg_id, "reg_id"))
            setopt("set_retry", bool(retry))
            setopt("set_retry_base", _check_float(retry_base, "retry_base"))
            setopt("set_retry_max", _check_float(retry_max, "retry_max"))
            setopt("set_retry_after_max", _check_float(retry_after_max, "retry_after_max"))
            if call_id is not None:
                setopt("set_call_id", encode(call_id, "call_id"))
            if from_display_name is not None:
                setopt("set_from_display_name", encode(from_display_name, "from_display_name"))
            if to_display_name is not None:
                setopt("set_to_display_name", encode(to_display_name, "to_display_name"))
            if to_uri is not None:
                setopt("set_to_uri", encode(to_uri, "to_uri"))
            if from_tag is not None:
                setopt("set_from_tag", encode(from_tag, "from_tag"))
            if cseq is not None:
                setopt("set_cseq", _check_uint(cseq, "cseq"))
            if path_gruu:
                setopt("set_path_gruu", True)
            check(
                lib.sipreg_registerer_new(ua_h, o, _lib.NULL_STATE_CALLBACK, None, byref(out)),
                "sipreg_registerer_new",
            )
        finally:
            lib.sipreg_registerer_options_free(o)
        h = out.value
        assert h is not None
        token = next(_tokens)
        handle = _Handle(h)
        st = _RegState(handle, token, ua.shutdown_timeout)
        st.dispatcher = ua._dispatcher
        def forget(_ref: "weakref.ReferenceType[_RegState]", t: int = token) -> None:
            _states.pop(t, None)

        _states[token] = weakref.ref(st, forget)
        rc = lib.sipreg_registerer_set_event_callback(h, EVENT_TRAMPOLINE, token)
        if rc != SIPREG_OK:
            err = _lib.make_error(rc, "sipreg_registerer_set_event_callback")
            handle.take()
            lib.sipreg_registerer_free(h)
            _states.pop(token, None)
            raise err
        self._ua = ua
        self._st = st
        #: Keeps the trampoline referenced for the handle's life (it is module-global anyway).
        self._trampoline = EVENT_TRAMPOLINE
        self._expires = expires
        with _live_lock:
            _live_registerers.add(handle)
        ua._registerers.add(st)
        self._finalizer = weakref.finalize(self, _finalize_registerer, handle, token)
        self._finalizer.atexit = False  # the module's atexit hook orders the teardown

    # -- emitters ---------------------------------------------------------

    @property
    def state_change(self) -> Emitter[Callable[[RegistererState], None]]:
        """Emits the new :class:`RegistererState` once per transition, in order."""
        return self._st.state_change

    @property
    def response_event(self) -> Emitter[Callable[[int, str], None]]:
        """Emits ``(status_code, reason)`` per final response (408/503 are
        synthesised for timeouts and transport errors)."""
        return self._st.response_event

    @property
    def retry_event(self) -> Emitter[Callable[[RetryEvent], None]]:
        """Emits a :class:`RetryEvent` when an automatic retry is scheduled or starts."""
        return self._st.retry_event

    @property
    def failure_event(self) -> Emitter[Callable[[Failure], None]]:
        """Emits the :class:`Failure` of every failed attempt (after its
        response event, before the state change and retry it leads to)."""
        return self._st.failure_event

    # -- properties -------------------------------------------------------

    @property
    def user_agent(self) -> UserAgent:
        """The user agent this registerer belongs to."""
        return self._ua

    @property
    def expires(self) -> int:
        """The requested expiry in seconds."""
        return self._expires

    def _read(self, name: str, reader: Callable[[int], T], gone: T) -> T:
        h = self._st.handle.value
        if h is not None:
            try:
                return reader(h)
            except TerminatedError:
                if self._st.handle.value is not None:
                    raise
        return cast(T, self._st.cache.get(name, gone))

    @property
    def state(self) -> RegistererState:
        """The current state (``TERMINATED`` once the handle was released)."""
        return self._read("state", _read_state, RegistererState.TERMINATED)

    @property
    def contacts(self) -> List[str]:
        """The contact URIs the registrar listed in the last 2xx."""
        return list(self._read("contacts", _read_contacts, cast(List[str], [])))

    @property
    def flow(self) -> Optional[str]:
        """The flow requests go out on, ``"proto:local -> remote"`` (e.g.
        ``"tls:127.0.0.1:40312 -> 127.0.0.1:5061"``), or ``None`` before the first."""
        return self._read("flow", _read_flow, cast(Optional[str], None))

    @property
    def flow_id(self) -> Optional[int]:
        """The id of the flow the registration uses (for :meth:`UserAgent.send`
        and to recognise requests that came over it), or ``None`` before it has one."""
        return self._read("flow_id", _read_flow_id, cast(Optional[int], None))

    @property
    def retry_after(self) -> Optional[int]:
        """Seconds from the last rejection's Retry-After header, else ``None``."""
        return self._read("retry_after", _read_retry_after, cast(Optional[int], None))

    @property
    def last_response(self) -> Optional[Tuple[int, str]]:
        """``(status_code, reason)`` of the last final response, or ``None``."""
        return self._read(
            "last_response", _read_last_response, cast(Optional[Tuple[int, str]], None)
        )

    @property
    def next_retry(self) -> Optional[float]:
        """Seconds until the scheduled automatic retry, or ``None``."""
        return self._read("next_retry", _read_next_retry, cast(Optional[float], None))

    @property
    def failure(self) -> Optional[Failure]:
        """Why the last attempt failed, or ``None`` (before any attempt ended,
        and after a success)."""
        return self._read("failure", _read_failure, cast(Optional[Failure], None))

    @property
    def failure_count(self) -> int:
        """Consecutive failed registration attempts (0 after a success)."""
        return int(self._read("failure_count", _read_failure_count, 0))

    @property
    def retransmissions(self) -> int:
        """Timer E retransmissions sent so far (UDP)."""
        return int(self._read("retransmissions", _read_retransmissions, 0))

    @property
    def service_route(self) -> List[str]:
        """Service-Route URIs (RFC 3608) of the last 2xx; empty when not registered."""
        return list(self._read("service_route", _read_service_route, cast(List[str], [])))

    @property
    def path(self) -> List[str]:
        """Path URIs (RFC 3327) of the last 2xx; empty when not registered."""
        return list(self._read("path", _read_path, cast(List[str], [])))

    @property
    def pub_gruu(self) -> Optional[str]:
        """The public GRUU (RFC 5627) of our contact, or ``None``."""
        return self._read("pub_gruu", _read_pub_gruu, cast(Optional[str], None))

    @property
    def temp_gruu(self) -> Optional[str]:
        """The temporary GRUU (RFC 5627) of our contact, or ``None``."""
        return self._read("temp_gruu", _read_temp_gruu, cast(Optional[str], None))

    @property
    def public_address(self) -> Optional[str]:
        """``"IP:port"`` the registrar saw us at (Via received/rport), or ``None``."""
        return self._read("public_address", _read_public_address, cast(Optional[str], None))

    @property
    def responses(self) -> List[Tuple[int, str]]:
        """The final responses received so far, oldest first (the last
        :attr:`RESPONSES_KEPT`), as ``(status_code, reason)``."""
        with self._st.cond:
            return list(self._st.responses)

    @property
    def disposed(self) -> bool:
        """Whether ``TERMINATED`` was delivered or the handle was released."""
        return self._st.terminated_delivered or self._st.handle.value is None

    # -- actions ----------------------------------------------------------

    def _require(self) -> int:
        h = self._st.handle.value
        if h is None:
            raise TerminatedError("the registerer was closed")
        return h

    def register(
        self, *, extra_headers: Iterable[str] = (), wait: Optional[float] = None
    ) -> None:
        """Sends a REGISTER.

        Without ``wait`` it returns at once and the outcome arrives through
        the listeners. With ``wait`` (seconds) it returns once the registerer
        is Registered, and raises at the first failed attempt, even when the
        library scheduled an automatic retry (the error's ``next_retry`` says
        when; the retry goes on in the background).

        ``extra_headers`` (``"Name: value"``) go on this REGISTER and its
        resend after a challenge only, never on refreshes (SIP.js
        ``requestOptions.extraHeaders``); they are checked as the
        registerer's ``extra_headers`` are.

        Raises:
            RequestPendingError: a REGISTER is already in flight.
            TerminatedError: after :meth:`dispose` (also when disposed while waiting).
            InvalidArgumentError: a bad header (nothing is sent).
            AuthenticationError, RegistrarUnreachableError, TlsError,
                RegistrationRejectedError: with ``wait``, the attempt failed
                (all :class:`RegistrationError`, with the :class:`Failure`).
            TimeoutError: with ``wait``, neither happened in time.
            RuntimeError: ``wait`` inside a listener (the outcome could
                never arrive while it blocks).
        """
        headers, n = encode_list(extra_headers, "extra header")
        h = self._require()

        def send() -> None:
            if n:
                check(lib.sipreg_register_with_headers(h, headers, n), "sipreg_register_with_headers")
            else:
                check(lib.sipreg_register(h), "sipreg_register")

        if wait is None:
            send()
            return
        timeout = _check_float(wait, "wait")
        if self._st.must_not_wait():
            raise RuntimeError(
                "register(wait=...) cannot wait inside a listener or on the thread "
                "running the dispatcher: use register() and the listeners (or sipreg.aio)"
            )
        self._wait_outcome(send, _register_outcome, timeout, "Registered")

    def _wait_outcome(
        self,
        send: Callable[[], None],
        judge: Callable[[_Event], _Outcome],
        timeout: float,
        what: str,
    ) -> None:
        """Sends, then blocks until ``judge`` decides from the events."""
        st = self._st
        box: List[Tuple[str, Optional[Failure]]] = []

        def watch(ev: _Event) -> bool:
            out = judge(ev)
            if out is None:
                return False
            with st.cond:
                box.append(out)
                st.cond.notify_all()
            return True

        st.add_watch(watch)
        try:
            send()
            with st.cond:
                if not st.cond.wait_for(lambda: bool(box), timeout):
                    raise TimeoutError(f"not {what} within {timeout:g} s")
        finally:
            st.remove_watch(watch)
        self._raise_for(box[0])

    def _raise_for(self, outcome: Tuple[str, Optional[Failure]]) -> None:
        """Raises the error an outcome calls for (nothing for a success)."""
        status, failure = outcome
        if status == "terminated":
            raise TerminatedError("the registerer was disposed")
        if failure is not None:
            raise error_for_failure(failure, self.next_retry)

    def unregister(  # noqa: A002 - name fixed by the API
        self, all: bool = False, *, extra_headers: Iterable[str] = ()
    ) -> None:
        """Sends an un-REGISTER for our contact, or with ``all`` for every binding
        of the AOR (``Contact: *``). Returns at once. ``extra_headers`` go on
        this request and its resend after a challenge only (as in :meth:`register`).

        Raises:
            RequestPendingError: a REGISTER is already in flight.
            TerminatedError: after :meth:`dispose`.
            InvalidArgumentError: a bad header (nothing is sent).
        """
        headers, n = encode_list(extra_headers, "extra header")
        h = self._require()
        if n:
            check(
                lib.sipreg_unregister_with_headers(h, bool(all), headers, n),
                "sipreg_unregister_with_headers",
            )
        else:
            check(lib.sipreg_unregister(h, bool(all)), "sipreg_unregister")

    def wait_for(self, state: Union[RegistererState, int], timeout: Optional[float] = 5.0) -> bool:
        """Waits until ``state`` has been delivered to the listeners.

        Returns ``True`` if the registerer is in ``state`` now or reaches it
        before ``timeout`` seconds (``None``: no limit) pass, ``False``
        otherwise (also as soon as it is Terminated, when waiting for another
        state). Inside a listener (where no further event can arrive), and on
        the thread that runs the user agent's dispatcher, it does not wait and
        tells whether the state is current.
        """
        target = RegistererState(state)
        if self._st.must_not_wait():
            return self.state == target
        return self._st.wait_state(target, timeout)

    def dispose(self) -> None:
        """SIP.js ``dispose()``: unregisters if registered, then ``TERMINATED``.

        Waits (bounded by the user agent's shutdown timeout plus a margin) until
        ``TERMINATED`` has been delivered to the listeners. Called from inside a
        listener it returns at once. A second call is a no-op.
        """
        h = self._st.handle.value
        if h is None:
            return
        rc = lib.sipreg_dispose(h)
        if rc not in (SIPREG_OK, SIPREG_ERR_TERMINATED):
            raise _lib.make_error(rc, "sipreg_dispose")
        if self._st.must_not_wait():
            return
        self._st.wait_terminated(self._st.shutdown_timeout + WAIT_MARGIN)

    def close(self) -> None:
        """Disposes (waiting as :meth:`dispose` does), then frees the C handle.

        Afterwards no listener is called, :attr:`state` is ``TERMINATED`` and the
        other properties keep their last values. A second call does nothing.
        """
        if self._st.handle.value is None:
            return
        self.dispose()
        self._st.release()
        self._finalizer.detach()

    def __enter__(self) -> "Registerer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            state = self.state.name
        except Exception:  # noqa: BLE001
            state = "?"
        return f"<sipreg.Registerer {self._ua.aor!r} {state}>"

