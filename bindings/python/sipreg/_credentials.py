"""Credentials as deployments hold them: a password or an HA1, for one realm
or for any realm (``sipreg_user_agent_add_credential``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ._errors import InvalidArgumentError
from ._lib import check, encode, encode_opt, lib

#: ``sipreg_secret`` values.
_PASSWORD = 0
_HA1_KINDS = {"MD5": 1, "SHA-256": 2, "SHA-512-256": 3}


@dataclass(frozen=True)
class Credential:
    """One credential: a password or an HA1 for ``realm`` (``None``: any realm).

    For a challenge, a credential of its realm wins over an any-realm one,
    which wins over the user agent's ``password``. An HA1 is the hex digest
    of ``username:realm:password`` for ``ha1_algorithm`` (``"MD5"``,
    ``"SHA-256"`` or ``"SHA-512-256"``) and answers only challenges of that
    algorithm (and its ``-sess`` variant); a password answers any.

    Args:
        realm: the realm it answers (``None``: any realm).
        username: the digest username (``None``: the user agent's
            ``auth_username``, else the AOR's user).
        password: the plain password; exactly one of ``password`` and ``ha1``.
        ha1: the HA1, hex.
        ha1_algorithm: the algorithm the HA1 was computed with.

    Raises:
        InvalidArgumentError: neither or both of ``password`` and ``ha1``, or
            an unknown ``ha1_algorithm`` (the library checks the rest when the
            credential is given to a :class:`UserAgent`).

    The secrets are left out of ``repr()``.
    """

    realm: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    ha1: Optional[str] = field(default=None, repr=False)
    ha1_algorithm: str = "MD5"

    def __post_init__(self) -> None:
        if (self.password is None) == (self.ha1 is None):
            raise InvalidArgumentError("a Credential needs exactly one of password and ha1")
        if self.ha1 is not None and self._ha1_kind() is None:
            raise InvalidArgumentError(
                f"ha1_algorithm must be one of {', '.join(_HA1_KINDS)}, not {self.ha1_algorithm!r}"
            )

    def _ha1_kind(self) -> Optional[int]:
        if not isinstance(self.ha1_algorithm, str):
            return None
        return _HA1_KINDS.get(self.ha1_algorithm.upper())


def add_credential(handle: int, credential: Credential) -> None:
    """Gives ``credential`` to the user agent ``handle`` (replacing the one
    with the same realm, username and kind)."""
    if not isinstance(credential, Credential):
        raise TypeError(f"credentials must be sipreg.Credential, not {type(credential).__name__}")
    if credential.ha1 is not None:
        secret = encode(credential.ha1, "ha1")
        kind = credential._ha1_kind()
        assert kind is not None  # checked at construction
    else:
        assert credential.password is not None
        secret = encode(credential.password, "password")
        kind = _PASSWORD
    check(
        lib.sipreg_user_agent_add_credential(
            handle,
            encode_opt(credential.realm, "realm"),
            encode_opt(credential.username, "username"),
            secret,
            kind,
        ),
        "sipreg_user_agent_add_credential",
    )
