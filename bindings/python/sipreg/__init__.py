"""Python binding (ctypes) of sipreg, a SIP client-registration library.

Example::

    import sipreg

    with sipreg.UserAgent("sip:alice@127.0.0.1", password="alicepw") as ua:
        r = sipreg.Registerer(ua, expires=300, registrar="sip:127.0.0.1:5060")
        r.state_change.add_listener(lambda s: print("state", s.label))
        r.register()
        if r.wait_for(sipreg.RegistererState.REGISTERED, timeout=5.0):
            print(r.contacts)
        r.dispose()

The shared library is loaded at import from ``$SIPREG_LIBRARY``, else next to
this package (``sipreg/libsipreg.so``), else the cargo target dir of the
repository this package sits in, else the system's library path; if none
loads, :class:`LibraryNotFoundError` (an ``ImportError``) lists what was tried.

Library log lines go to the ``logging`` logger ``"sipreg"`` (ERROR, WARNING,
INFO, DEBUG); configure that logger to see them, and :func:`set_log_level` to
stop the library from sending what the logger would drop anyway.
"""

from __future__ import annotations

from ._errors import (
    BufferTooSmallError,
    InternalError,
    InvalidArgumentError,
    LibraryNotFoundError,
    NullArgumentError,
    RequestPendingError,
    SipregError,
    TerminatedError,
    TransportError,
)
from . import _lib
from ._dispatch import Dispatcher
from ._failure import (
    AuthenticationError,
    Failure,
    FailureKind,
    RegistrarUnreachableError,
    RegistrationError,
    RegistrationRejectedError,
    TlsError,
)
from ._core import (
    Credential,
    Emitter,
    EventKind,
    IncomingRequest,
    Registerer,
    RegistererState,
    RetryEvent,
    TraceRecord,
    UserAgent,
    set_log_level,
    version,
)

#: The library version (from Cargo.toml, through sipreg_version()).
__version__: str = version()

#: Path of the shared library that was loaded.
library_path: str = _lib.library_path

__all__ = [
    "UserAgent",
    "Credential",
    "Registerer",
    "RegistererState",
    "EventKind",
    "RetryEvent",
    "TraceRecord",
    "IncomingRequest",
    "Emitter",
    "Failure",
    "FailureKind",
    "Dispatcher",
    "version",
    "set_log_level",
    "library_path",
    "SipregError",
    "NullArgumentError",
    "InvalidArgumentError",
    "RequestPendingError",
    "TerminatedError",
    "TransportError",
    "BufferTooSmallError",
    "InternalError",
    "LibraryNotFoundError",
    "RegistrationError",
    "AuthenticationError",
    "RegistrarUnreachableError",
    "TlsError",
    "RegistrationRejectedError",
]

# Route library log lines into logging.getLogger("sipreg"); the logging
# configuration decides what is kept.
_lib.install_log_callback(_lib.SIPREG_LOG_DEBUG)
