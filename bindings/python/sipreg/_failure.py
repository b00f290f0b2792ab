"""Why a registration failed: :class:`FailureKind`, :class:`Failure` and the
:class:`RegistrationError` family raised by ``register(wait=...)`` and
``await aio.Registerer.register()``.

This module does not load the shared library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Optional, Type

from ._errors import SipregError

__all__ = [
    "FailureKind",
    "Failure",
    "RegistrationError",
    "AuthenticationError",
    "RegistrarUnreachableError",
    "TlsError",
    "RegistrationRejectedError",
    "error_for_failure",
]


class FailureKind(enum.Enum):
    """The class of a failed attempt (``sipreg_failure`` without the prefix;
    the values are the C values)."""

    #: Our credentials were refused (401/407, or 403, after we answered a challenge).
    AUTH_REJECTED = 1
    #: Challenged for a realm (or algorithm) we have no credentials for.
    NO_CREDENTIALS = 2
    #: Refused: the challenge offered only a weaker digest than this realm offered before.
    AUTH_DOWNGRADE = 3
    #: Any other final 3xx-6xx from the registrar (and a 2xx without our contact).
    REJECTED = 4
    #: A 423 loop, or a 423 without a usable Min-Expires.
    INTERVAL_TOO_BRIEF = 5
    #: Timer F: no final response.
    TIMEOUT = 6
    #: Connection refused or reset, ICMP unreachable, connection lost.
    TRANSPORT = 7
    #: TLS handshake failed, certificate untrusted, expired or for another name.
    TLS = 8
    #: Name resolution failed: NXDOMAIN, SERVFAIL, no usable records, timeout.
    DNS = 9
    #: The RFC 5626 keep-alive found the flow dead.
    FLOW = 10

    @property
    def label(self) -> str:
        """The C name in lower case (``sipreg_failure_str``), e.g. ``"auth_rejected"``."""
        return self.name.lower()

    @classmethod
    def from_c(cls, value: int) -> Optional["FailureKind"]:
        """The kind for a ``sipreg_failure`` value (``None`` for NONE or an unknown value)."""
        try:
            return cls(value)
        except ValueError:
            return None


@dataclass(frozen=True)
class Failure:
    """Why the last attempt failed.

    Attributes:
        kind: the class of failure.
        status: the final response's status when one said it (the synthesised
            408 and 503 of timeouts and transport, TLS and DNS failures
            included), else ``None`` (a flow failure).
        reason: that response's reason phrase (``""`` without a status).
        detail: one line for a person, e.g.
            ``credentials for realm "example.com" were rejected``.
    """

    kind: FailureKind
    status: Optional[int]
    reason: str
    detail: str

    def __str__(self) -> str:
        said = ""
        if self.status:
            said = " (" + f"{self.status} {self.reason}".strip() + ")"
        return f"{self.kind.label}{said}: {self.detail}"


class RegistrationError(SipregError):
    """A registration attempt failed.

    Attributes:
        failure: the :class:`Failure`.
        next_retry: seconds until the automatic retry the library scheduled
            (it goes on retrying in the background), or ``None``.
    """

    def __init__(self, failure: Failure, next_retry: Optional[float] = None) -> None:
        self.failure: Failure = failure
        self.next_retry: Optional[float] = next_retry
        text = str(failure)
        if next_retry is not None:
            text += f" (retrying in {next_retry:.1f} s)"
        super().__init__(text)


class AuthenticationError(RegistrationError):
    """Credentials refused or missing (AUTH_REJECTED, NO_CREDENTIALS, AUTH_DOWNGRADE)."""


class RegistrarUnreachableError(RegistrationError):
    """The registrar could not be reached (TIMEOUT, TRANSPORT, DNS, FLOW)."""


class TlsError(RegistrationError):
    """The TLS handshake or the certificate check failed (TLS)."""


class RegistrationRejectedError(RegistrationError):
    """The registrar refused the registration (REJECTED, INTERVAL_TOO_BRIEF)."""


_BY_KIND: Dict[FailureKind, Type[RegistrationError]] = {
    FailureKind.AUTH_REJECTED: AuthenticationError,
    FailureKind.NO_CREDENTIALS: AuthenticationError,
    FailureKind.AUTH_DOWNGRADE: AuthenticationError,
    FailureKind.REJECTED: RegistrationRejectedError,
    FailureKind.INTERVAL_TOO_BRIEF: RegistrationRejectedError,
    FailureKind.TIMEOUT: RegistrarUnreachableError,
    FailureKind.TRANSPORT: RegistrarUnreachableError,
    FailureKind.DNS: RegistrarUnreachableError,
    FailureKind.FLOW: RegistrarUnreachableError,
    FailureKind.TLS: TlsError,
}


def error_for_failure(failure: Failure, next_retry: Optional[float] = None) -> RegistrationError:
    """The :class:`RegistrationError` subclass instance for ``failure``."""
    return _BY_KIND.get(failure.kind, RegistrationError)(failure, next_retry)
