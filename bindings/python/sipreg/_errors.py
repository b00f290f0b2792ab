"""Exceptions raised by the sipreg binding.

Every failing library call raises a subclass of :class:`SipregError` chosen by
the ``sipreg_result`` code; the message carries the text of
``sipreg_last_error()`` (read on the calling thread right after the call).
This module does not load the shared library, so it can be imported even when
the library is missing.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Type

__all__ = [
    "SipregError",
    "NullArgumentError",
    "InvalidArgumentError",
    "RequestPendingError",
    "TerminatedError",
    "TransportError",
    "BufferTooSmallError",
    "InternalError",
    "LibraryNotFoundError",
    "RESULT_NAMES",
    "error_for_code",
]

#: ``sipreg_result`` values by name (mirrors include/sipreg.h).
RESULT_NAMES: Dict[int, str] = {
    0: "SIPREG_OK",
    1: "SIPREG_ERR_NULL_ARGUMENT",
    2: "SIPREG_ERR_INVALID_ARGUMENT",
    3: "SIPREG_ERR_REQUEST_PENDING",
    4: "SIPREG_ERR_TERMINATED",
    5: "SIPREG_ERR_TRANSPORT",
    6: "SIPREG_ERR_BUFFER_TOO_SMALL",
    7: "SIPREG_ERR_INTERNAL",
}


class SipregError(Exception):
    """Base class of every error the binding raises for a failed library call.

    Attributes:
        code: the ``sipreg_result`` value (``None`` for errors detected in Python).
        detail: the library's ``sipreg_last_error()`` text, or the Python-side reason.
        function: the C function that failed, if any.
    """

    #: The ``sipreg_result`` this class stands for (``None`` for the base class).
    result_code: Optional[int] = None

    def __init__(
        self,
        detail: str,
        *,
        code: Optional[int] = None,
        function: Optional[str] = None,
    ) -> None:
        self.code: Optional[int] = code if code is not None else self.result_code
        self.detail: str = detail
        self.function: Optional[str] = function
        parts = [detail or "(no detail)"]
        if function or self.code is not None:
            name = RESULT_NAMES.get(self.code, str(self.code)) if self.code is not None else None
            where = ", ".join(p for p in (name, function) if p)
            parts.append(f"[{where}]")
        super().__init__(" ".join(parts))


class NullArgumentError(SipregError):
    """A required pointer was NULL (``SIPREG_ERR_NULL_ARGUMENT``)."""

    result_code = 1


class InvalidArgumentError(SipregError, ValueError):
    """Bad URI, option value or UTF-8, or a foreign handle (``SIPREG_ERR_INVALID_ARGUMENT``)."""

    result_code = 2


class RequestPendingError(SipregError):
    """A REGISTER is already in flight (``SIPREG_ERR_REQUEST_PENDING``, SIP.js RequestPendingError)."""

    result_code = 3


class TerminatedError(SipregError):
    """The registerer was disposed, or the handle was freed (``SIPREG_ERR_TERMINATED``)."""

    result_code = 4


class TransportError(SipregError):
    """Socket, connection, name resolution or TLS failure (``SIPREG_ERR_TRANSPORT``)."""

    result_code = 5


class BufferTooSmallError(SipregError):
    """An output buffer was too small (``SIPREG_ERR_BUFFER_TOO_SMALL``); the binding retries these itself."""

    result_code = 6


class InternalError(SipregError):
    """A bug inside the library, caught and reported (``SIPREG_ERR_INTERNAL``)."""

    result_code = 7


_BY_CODE: Dict[int, Type[SipregError]] = {
    cls.result_code: cls
    for cls in (
        NullArgumentError,
        InvalidArgumentError,
        RequestPendingError,
        TerminatedError,
        TransportError,
        BufferTooSmallError,
        InternalError,
    )
}


def error_for_code(code: int) -> Type[SipregError]:
    """The exception class for a ``sipreg_result`` code (``SipregError`` for unknown codes)."""
    return _BY_CODE.get(code, SipregError)


class LibraryNotFoundError(SipregError, ImportError):
    """The shared library could not be loaded from any candidate location.

    ``tried`` lists ``(location, reason)`` pairs in the order they were tried.
    """

    def __init__(self, tried: Sequence[Tuple[str, str]], hint: str = "") -> None:
        self.tried: List[Tuple[str, str]] = list(tried)
        lines = ["cannot load the sipreg shared library; tried:"]
        lines += [f"  {where}: {why}" for where, why in self.tried]
        if hint:
            lines.append(hint)
        text = "\n".join(lines)
        Exception.__init__(self, text)
        self.code = None
        self.detail = text
        self.function = None
        self.msg = text  # ImportError's attribute
        self.name = "sipreg"
        self.path = None

    def __str__(self) -> str:
        return self.detail
