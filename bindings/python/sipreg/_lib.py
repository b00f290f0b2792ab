"""Low-level access to the sipreg shared library: finding and loading it, the
ctypes prototypes of every C function, result checking and the log bridge.

Nothing here is public API; use the classes exported by :mod:`sipreg`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import warnings
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._errors import LibraryNotFoundError, SipregError, error_for_code

logger = logging.getLogger("sipreg")

# --------------------------------------------------------------------------
# C enums (mirrors of include/sipreg.h)

SIPREG_OK = 0
SIPREG_ERR_NULL_ARGUMENT = 1
SIPREG_ERR_INVALID_ARGUMENT = 2
SIPREG_ERR_REQUEST_PENDING = 3
SIPREG_ERR_TERMINATED = 4
SIPREG_ERR_TRANSPORT = 5
SIPREG_ERR_BUFFER_TOO_SMALL = 6
SIPREG_ERR_INTERNAL = 7

SIPREG_LOG_OFF = 0
SIPREG_LOG_ERROR = 1
SIPREG_LOG_WARN = 2
SIPREG_LOG_INFO = 3
SIPREG_LOG_DEBUG = 4

SIPREG_EVENT_STATE_CHANGED = 0
SIPREG_EVENT_RESPONSE = 1
SIPREG_EVENT_RETRY_SCHEDULED = 2
SIPREG_EVENT_RETRY_STARTED = 3
SIPREG_EVENT_FAILED = 4

#: sipreg_log_level -> logging level.
LOG_LEVELS: Dict[int, int] = {
    SIPREG_LOG_ERROR: logging.ERROR,
    SIPREG_LOG_WARN: logging.WARNING,
    SIPREG_LOG_INFO: logging.INFO,
    SIPREG_LOG_DEBUG: logging.DEBUG,
}

# --------------------------------------------------------------------------
# C structs and callback types. The class names are the C names, so the
# prototype test can match them against the header.


class sipreg_event(Structure):
    """``struct sipreg_event``: one registerer event, valid only during the callback."""

    _fields_ = [
        ("kind", c_int),  # enum sipreg_event_kind
        ("state", c_int),  # enum sipreg_state
        ("status_code", c_uint16),
        ("reason", c_char_p),
        ("retry_delay", c_double),
        ("failure_count", c_uint32),
        ("failure", c_int),  # enum sipreg_failure
        ("failure_detail", c_char_p),
    ]


class sipreg_stats(Structure):
    """``struct sipreg_stats``: message counters of one user agent."""

    _fields_ = [
        ("received", c_uint64),
        ("dropped", c_uint64),
        ("sent", c_uint64),
        ("transport_errors", c_uint64),
        ("window", c_uint64),
        ("in_flight", c_uint64),
        ("queued", c_uint64),
        ("requests", c_uint64),
        ("answered", c_uint64),
    ]


class sipreg_dispatcher_stats(Structure):
    """``struct sipreg_dispatcher_stats``: counters of one dispatcher."""

    _fields_ = [
        ("waiting", c_uint64),
        ("dropped", c_uint64),
        ("coalesced", c_uint64),
    ]


SIPREG_TRACE_SENT = 0
SIPREG_TRACE_RECEIVED = 1


class sipreg_trace_record(Structure):
    """``struct sipreg_trace_record``: one traced SIP message, valid only during the callback."""

    _fields_ = [
        ("direction", c_int),  # enum sipreg_trace_direction
        ("transport", c_char_p),
        ("local", c_char_p),
        ("remote", c_char_p),
        ("timestamp_us", c_int64),
        ("message", c_char_p),
        ("message_len", c_size_t),
    ]


class sipreg_incoming(Structure):
    """``struct sipreg_incoming``: a request for the contact, valid only during the callback."""

    _fields_ = [
        # `length` bytes, which may hold NULs: read through its address, not as a C string.
        ("message", c_char_p),
        ("length", c_size_t),
        ("method", c_char_p),
        ("flow_id", c_uint64),
        ("flow", c_char_p),
    ]


#: typedef void (*sipreg_log_callback)(void *user_data, enum sipreg_log_level level, const char *message);
sipreg_log_callback = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
#: typedef void (*sipreg_state_callback)(void *user_data, struct sipreg_registerer *registerer, enum sipreg_state new_state);
sipreg_state_callback = CFUNCTYPE(None, c_void_p, c_void_p, c_int)
#: typedef void (*sipreg_event_callback)(void *user_data, struct sipreg_registerer *registerer, const struct sipreg_event *event);
sipreg_event_callback = CFUNCTYPE(None, c_void_p, c_void_p, POINTER(sipreg_event))
#: typedef void (*sipreg_trace_callback)(void *user_data, struct sipreg_user_agent *ua, const struct sipreg_trace_record *record);
sipreg_trace_callback = CFUNCTYPE(None, c_void_p, c_void_p, POINTER(sipreg_trace_record))
#: typedef void (*sipreg_request_callback)(void *user_data, struct sipreg_user_agent *ua, const struct sipreg_incoming *request);
sipreg_request_callback = CFUNCTYPE(None, c_void_p, c_void_p, POINTER(sipreg_incoming))

#: Callback typedefs by C name (used by the prototype test).
CALLBACK_TYPES: Dict[str, Any] = {
    "sipreg_log_callback": sipreg_log_callback,
    "sipreg_state_callback": sipreg_state_callback,
    "sipreg_event_callback": sipreg_event_callback,
    "sipreg_trace_callback": sipreg_trace_callback,
    "sipreg_request_callback": sipreg_request_callback,
}
#: Structs by C name (used by the prototype test).
STRUCT_TYPES: Dict[str, Any] = {
    "sipreg_event": sipreg_event,
    "sipreg_stats": sipreg_stats,
    "sipreg_trace_record": sipreg_trace_record,
    "sipreg_dispatcher_stats": sipreg_dispatcher_stats,
    "sipreg_incoming": sipreg_incoming,
}

#: NULL function pointers of each callback type.
NULL_LOG_CALLBACK = sipreg_log_callback()
NULL_STATE_CALLBACK = sipreg_state_callback()
NULL_EVENT_CALLBACK = sipreg_event_callback()
NULL_TRACE_CALLBACK = sipreg_trace_callback()
NULL_REQUEST_CALLBACK = sipreg_request_callback()

# Opaque handles (sipreg_user_agent *, sipreg_registerer *, sipreg_registerer_options *)
# are ids, not addresses; they travel as c_void_p.
_H = c_void_p
_RES = c_int  # enum sipreg_result

#: Every function of include/sipreg.h: name -> (restype, argtypes).
PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    # global
    "sipreg_version": (c_char_p, []),
    "sipreg_last_error": (c_char_p, []),
    "sipreg_result_str": (c_char_p, [c_int]),
    "sipreg_set_log_callback": (_RES, [sipreg_log_callback, c_void_p, c_int]),
    # options
    "sipreg_registerer_options_new": (_RES, [POINTER(_H)]),
    "sipreg_registerer_options_free": (_RES, [_H]),
    "sipreg_registerer_options_set_expires": (_RES, [_H, c_uint32]),
    "sipreg_registerer_options_set_refresh_frequency": (_RES, [_H, c_uint32]),
    "sipreg_registerer_options_set_registrar": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_instance_id": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_call_id": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_from_display_name": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_to_display_name": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_to_uri": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_from_tag": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_add_extra_header": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_add_extra_contact_param": (_RES, [_H, c_char_p]),
    "sipreg_registerer_options_set_reg_id": (_RES, [_H, c_uint32]),
    "sipreg_registerer_options_set_cseq": (_RES, [_H, c_uint32]),
    "sipreg_registerer_options_set_path_gruu": (_RES, [_H, c_bool]),
    "sipreg_registerer_options_set_retry": (_RES, [_H, c_bool]),
    "sipreg_registerer_options_set_retry_base": (_RES, [_H, c_double]),
    "sipreg_registerer_options_set_retry_max": (_RES, [_H, c_double]),
    "sipreg_registerer_options_set_retry_after_max": (_RES, [_H, c_double]),
    "sipreg_registerer_options_get_expires": (_RES, [_H, POINTER(c_uint32)]),
    # registerer
    "sipreg_registerer_new": (
        _RES,
        [_H, _H, sipreg_state_callback, c_void_p, POINTER(_H)],
    ),
    "sipreg_registerer_set_state_callback": (_RES, [_H, sipreg_state_callback, c_void_p]),
    "sipreg_registerer_set_event_callback": (_RES, [_H, sipreg_event_callback, c_void_p]),
    "sipreg_register": (_RES, [_H]),
    "sipreg_unregister": (_RES, [_H, c_bool]),
    "sipreg_register_with_headers": (_RES, [_H, POINTER(c_char_p), c_size_t]),
    "sipreg_unregister_with_headers": (_RES, [_H, c_bool, POINTER(c_char_p), c_size_t]),
    "sipreg_dispose": (_RES, [_H]),
    "sipreg_registerer_free": (None, [_H]),
    "sipreg_registerer_state": (_RES, [_H, POINTER(c_int)]),
    "sipreg_registerer_contact_count": (_RES, [_H, POINTER(c_size_t)]),
    "sipreg_registerer_contact": (
        _RES,
        [_H, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "sipreg_registerer_retry_after": (_RES, [_H, POINTER(c_uint32), POINTER(c_bool)]),
    "sipreg_registerer_last_response": (
        _RES,
        [_H, POINTER(c_uint16), POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "sipreg_registerer_next_retry": (_RES, [_H, POINTER(c_double)]),
    "sipreg_registerer_failure_count": (_RES, [_H, POINTER(c_uint32)]),
    "sipreg_registerer_retransmissions": (_RES, [_H, POINTER(c_uint64)]),
    "sipreg_registerer_flow": (_RES, [_H, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "sipreg_registerer_service_route_count": (_RES, [_H, POINTER(c_size_t)]),
    "sipreg_registerer_service_route": (
        _RES,
        [_H, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "sipreg_registerer_path_count": (_RES, [_H, POINTER(c_size_t)]),
    "sipreg_registerer_path": (_RES, [_H, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "sipreg_registerer_pub_gruu": (_RES, [_H, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "sipreg_registerer_temp_gruu": (_RES, [_H, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "sipreg_registerer_public_address": (
        _RES,
        [_H, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    # failures
    "sipreg_failure_str": (c_char_p, [c_int]),
    "sipreg_state_str": (c_char_p, [c_int]),
    "sipreg_registerer_failure": (
        _RES,
        [_H, POINTER(c_int), POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "sipreg_registerer_failure_response": (
        _RES,
        [_H, POINTER(c_uint16), POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    # dispatcher
    "sipreg_dispatcher_new": (_RES, [POINTER(_H)]),
    "sipreg_dispatcher_fd": (c_int, [_H]),
    "sipreg_dispatcher_run": (_RES, [_H, c_uint32, POINTER(c_uint32)]),
    "sipreg_dispatcher_get_stats": (_RES, [_H, POINTER(sipreg_dispatcher_stats)]),
    "sipreg_dispatcher_free": (_RES, [_H]),
    "sipreg_user_agent_set_dispatcher": (_RES, [_H, _H]),
    # user agent
    "sipreg_user_agent_new": (_RES, [c_char_p, POINTER(_H)]),
    "sipreg_user_agent_set_password": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_auth_username": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_add_credential": (_RES, [_H, c_char_p, c_char_p, c_char_p, c_int]),
    "sipreg_user_agent_set_digest_downgrade": (_RES, [_H, c_bool]),
    "sipreg_user_agent_set_transport": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_outbound_proxy": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_local_address": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_tls_ca_file": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_tls_server_name": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_tls_verify": (_RES, [_H, c_bool]),
    "sipreg_user_agent_set_private_socket": (_RES, [_H, c_bool]),
    "sipreg_user_agent_set_ws_path": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_user_agent": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_timers": (_RES, [_H, c_double, c_double, c_double]),
    "sipreg_user_agent_set_shutdown_timeout": (_RES, [_H, c_double]),
    "sipreg_user_agent_set_keepalive": (_RES, [_H, c_uint32]),
    "sipreg_user_agent_set_contact_rewrite": (_RES, [_H, c_bool]),
    "sipreg_user_agent_network_changed": (_RES, [_H]),
    "sipreg_user_agent_stats": (_RES, [_H, POINTER(sipreg_stats)]),
    "sipreg_user_agent_free": (_RES, [_H]),
    "sipreg_user_agent_set_trace_callback": (_RES, [_H, sipreg_trace_callback, c_void_p]),
    # the contact answers
    "sipreg_user_agent_set_request_callback": (_RES, [_H, sipreg_request_callback, c_void_p]),
    "sipreg_user_agent_set_allow": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_answer_options": (_RES, [_H, c_bool]),
    "sipreg_user_agent_set_contact_user": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_set_ws_origin": (_RES, [_H, c_char_p]),
    "sipreg_user_agent_respond": (
        _RES,
        [_H, c_uint64, c_char_p, c_size_t, c_uint16, c_char_p, c_char_p, c_char_p, c_size_t],
    ),
    "sipreg_user_agent_send": (_RES, [_H, c_uint64, c_char_p, c_size_t]),
    "sipreg_registerer_flow_id": (_RES, [_H, POINTER(c_uint64)]),
    "sipreg_message_header_count": (_RES, [c_char_p, c_size_t, c_char_p, POINTER(c_size_t)]),
    "sipreg_message_header": (
        _RES,
        [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    "sipreg_message_body": (_RES, [c_char_p, c_size_t, POINTER(c_size_t), POINTER(c_size_t)]),
}

# --------------------------------------------------------------------------
# Finding the library

ENV_VAR = "SIPREG_LIBRARY"


def _library_file_name() -> str:
    """The platform's file name of the cdylib cargo builds."""
    if sys.platform == "darwin":
        return "libsipreg.dylib"
    if sys.platform.startswith("win"):
        return "sipreg.dll"
    return "libsipreg.so"


LIBRARY_FILE = _library_file_name()


def _cargo_candidates(package_dir: Path) -> List[Path]:
    """``target/{release,debug}/<lib>`` of the cargo workspaces above ``package_dir``.

    Walks up from the package directory; each directory holding a ``Cargo.toml``
    contributes its ``target`` dir (``CARGO_TARGET_DIR`` first when set). Within
    one target dir, the more recently built of release/debug comes first, so a
    stale release build does not shadow a fresh debug build.
    """
    out: List[Path] = []
    env_target = os.environ.get("CARGO_TARGET_DIR")
    targets: List[Path] = []
    if env_target:
        targets.append(Path(env_target))
    for parent in [package_dir, *package_dir.parents]:
        if (parent / "Cargo.toml").is_file():
            targets.append(parent / "target")
    for target in targets:
        pair = [target / "release" / LIBRARY_FILE, target / "debug" / LIBRARY_FILE]
        existing = [p for p in pair if p.is_file()]
        if len(existing) == 2:
            existing.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            pair = existing
        for p in pair:
            if p not in out:
                out.append(p)
    return out


def candidate_paths(
    package_dir: Optional[Path] = None, *, system: bool = True
) -> List[Tuple[str, str]]:
    """The locations tried, in order, as ``(kind, path)`` pairs.

    1. ``$SIPREG_LIBRARY``; 2. next to the package (``sipreg/<lib>``); 3. the
    cargo target dirs of the repository the package sits in; 4. with
    ``system``, the system's library search path (``""`` when it has none).
    """
    package_dir = package_dir or Path(__file__).resolve().parent
    out: List[Tuple[str, str]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append((ENV_VAR, os.path.abspath(os.path.expanduser(env))))
    out.append(("package", str(package_dir / LIBRARY_FILE)))
    for p in _cargo_candidates(package_dir):
        out.append(("cargo", str(p)))
    if system:
        out.append(("system", ctypes.util.find_library("sipreg") or ""))
    return out


def _try_load(path: str) -> Tuple[Optional[ctypes.CDLL], str]:
    try:
        lib = ctypes.CDLL(path)
        getattr(lib, "sipreg_version")
    except (OSError, AttributeError) as e:
        return None, f"cannot load: {e}"
    return lib, ""


def load_library(package_dir: Optional[Path] = None) -> Tuple[ctypes.CDLL, str]:
    """Loads the first candidate that works; raises :class:`LibraryNotFoundError` listing all tried.

    If ``$SIPREG_LIBRARY`` is set but unusable and a later candidate loads, a
    ``RuntimeWarning`` says so.
    """
    tried: List[Tuple[str, str]] = []
    env_failed: Optional[str] = None
    for kind, path in candidate_paths(package_dir, system=False):
        if not os.path.isfile(path):
            tried.append((path, "no such file"))
        else:
            lib, why = _try_load(path)
            if lib is not None:
                if env_failed is not None:
                    warnings.warn(
                        f"{ENV_VAR}={env_failed!r} could not be loaded; using {path}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                return lib, path
            tried.append((path, why))
        if kind == ENV_VAR:
            env_failed = path
    # Last resort: the dynamic linker's search path (an installed library).
    system = ctypes.util.find_library("sipreg")
    where = f"system library search path ({LIBRARY_FILE})"
    if system:
        lib, why = _try_load(system)
        if lib is not None:
            return lib, system
        tried.append((f"{where}: {system}", why))
    else:
        tried.append((where, "not found"))
    raise LibraryNotFoundError(tried, hint=not_found_hint(package_dir))


def not_found_hint(package_dir: Optional[Path] = None) -> str:
    """What to run when no library loads: build it in the checkout the package
    sits in, or (an installed package) rebuild and reinstall so that the
    package bundles it."""
    package_dir = package_dir or Path(__file__).resolve().parent
    checkout = next((p for p in package_dir.parents if (p / "Cargo.toml").is_file()), None)
    if checkout is not None:
        return (
            f"Build it: cd {checkout} && cargo build --release "
            f"(or set {ENV_VAR} to the path of a {LIBRARY_FILE})."
        )
    return (
        f"In the sipreg checkout, build the library and reinstall the package, which then "
        f"carries it: cargo build --release && pip install bindings/python "
        f"(or set {ENV_VAR} to the path of a {LIBRARY_FILE}, or install the C library "
        f"system-wide with make && sudo make install)."
    )


def apply_prototypes(lib: ctypes.CDLL) -> None:
    """Sets ``argtypes`` and ``restype`` of every function in :data:`PROTOTYPES`."""
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)


lib, library_path = load_library()
apply_prototypes(lib)

# --------------------------------------------------------------------------
# Results

#: Nesting depth of sipreg callbacks on the current thread (non-zero only on the
#: library's worker thread, or on a thread inside a log callback).
_tls = threading.local()


def in_callback() -> bool:
    """Whether the current thread is running inside a sipreg callback."""
    return getattr(_tls, "depth", 0) > 0


class callback_scope:
    """Marks the current thread as inside a sipreg callback for the ``with`` body."""

    __slots__ = ()

    def __enter__(self) -> None:
        _tls.depth = getattr(_tls, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _tls.depth = getattr(_tls, "depth", 1) - 1


def last_error() -> str:
    """``sipreg_last_error()`` of the calling thread."""
    raw = lib.sipreg_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def make_error(code: int, function: str) -> SipregError:
    """The exception for a failed call (reads the thread's last-error text)."""
    cls = error_for_code(code)
    return cls(last_error(), code=code, function=function)


def check(code: int, function: str) -> None:
    """Raises the mapped :class:`SipregError` unless ``code`` is ``SIPREG_OK``."""
    if code != SIPREG_OK:
        raise make_error(code, function)


def result_name(code: int) -> str:
    """``sipreg_result_str(code)``."""
    raw = lib.sipreg_result_str(code)
    return raw.decode("ascii", "replace") if raw else str(code)


def encode(value: str, what: str) -> bytes:
    """UTF-8 for a C string argument; rejects non-strings and embedded NULs."""
    from ._errors import InvalidArgumentError

    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return value.encode("utf-8")


def encode_opt(value: Optional[str], what: str) -> Optional[bytes]:
    """Like :func:`encode`, with ``None`` passed through as NULL."""
    return None if value is None else encode(value, what)


def encode_list(values: Any, what: str) -> Tuple[Any, int]:
    """A C array of UTF-8 strings and its length, for ``const char *const *``
    arguments; one ``str`` is refused (it would be taken letter by letter)."""
    from ._errors import InvalidArgumentError

    if isinstance(values, (str, bytes)):
        raise InvalidArgumentError(f"{what} must be a sequence of strings, not one string")
    items = [encode(v, what) for v in values]
    array = (c_char_p * max(len(items), 1))(*items)
    return array, len(items)


def read_string(
    call: Callable[[Any, int, Any], int], function: str, initial: int = 256
) -> str:
    """Reads a string through a ``(buf, len, needed)`` out-buffer call, growing the buffer."""
    size = initial
    needed = c_size_t(0)
    for _ in range(8):
        buf = ctypes.create_string_buffer(size)
        rc = call(buf, size, ctypes.byref(needed))
        if rc == SIPREG_ERR_BUFFER_TOO_SMALL:
            size = max(int(needed.value), size * 2)
            continue
        check(rc, function)
        return buf.value.decode("utf-8", "replace")
    check(SIPREG_ERR_BUFFER_TOO_SMALL, function)
    return ""  # unreachable


def version() -> str:
    """The library version string (``sipreg_version()``), e.g. ``"0.1.0"``."""
    raw = lib.sipreg_version()
    return raw.decode("ascii", "replace") if raw else ""


# --------------------------------------------------------------------------
# Log bridge: library log lines -> logging.getLogger("sipreg")


def _on_log(user_data: Optional[int], level: int, message: Optional[bytes]) -> None:
    # Runs on the worker thread or a thread calling into the library. Never raises.
    try:
        with callback_scope():
            pylevel = LOG_LEVELS.get(level, logging.DEBUG)
            if logger.isEnabledFor(pylevel):
                text = message.decode("utf-8", "replace") if message else ""
                logger.log(pylevel, "%s", text)
    except BaseException:  # noqa: BLE001 - a log callback must never raise into C
        pass


#: The log trampoline; module-global so it outlives every call the library makes.
LOG_TRAMPOLINE = sipreg_log_callback(_on_log)
_log_installed = False


def install_log_callback(max_level: int = SIPREG_LOG_DEBUG) -> None:
    """Routes library log lines up to ``max_level`` into the ``sipreg`` logger."""
    global _log_installed
    check(
        lib.sipreg_set_log_callback(LOG_TRAMPOLINE, None, max_level),
        "sipreg_set_log_callback",
    )
    _log_installed = max_level != SIPREG_LOG_OFF


def remove_log_callback() -> None:
    """Stops log delivery; when this returns no log callback is running."""
    global _log_installed
    lib.sipreg_set_log_callback(NULL_LOG_CALLBACK, None, SIPREG_LOG_OFF)
    _log_installed = False


def incoming_bytes(record: Any) -> bytes:
    """The whole ``message`` of a ``sipreg_incoming`` (NUL bytes included)."""
    address = ctypes.addressof(record) + sipreg_incoming.message.offset
    pointer = c_void_p.from_address(address).value
    return ctypes.string_at(pointer, int(record.length)) if pointer else b""


def prototype_names() -> Sequence[str]:
    """Names of every bound C function."""
    return tuple(PROTOTYPES)
