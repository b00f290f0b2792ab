"""IncomingRequest: a request that reached the user agent's contact, as the
listeners of :attr:`sipreg.UserAgent.requests` get it, and its answer."""

from __future__ import annotations

from ctypes import byref, c_size_t
from typing import TYPE_CHECKING, Iterable, List, Optional, Union

from . import _lib
from ._errors import InvalidArgumentError, TerminatedError
from ._lib import check, encode, lib

if TYPE_CHECKING:  # pragma: no cover
    from ._core import _Handle

__all__ = ["IncomingRequest"]


class IncomingRequest:
    """A request for the user agent's contact (a call, a message, a
    notification routed to the AOR over the registered flow, or an OPTIONS
    when ``answer_options=False``), or a response to a request the
    application sent with :meth:`UserAgent.send` (then :attr:`status` is set).

    It stays usable after the listener returned: :meth:`respond` may be
    called later, from any thread, while the flow it came over lives.
    """

    __slots__ = ("_handle", "_raw", "method", "flow", "flow_id")

    def __init__(self, handle: "_Handle", raw: bytes, method: str, flow: str, flow_id: int) -> None:
        self._handle = handle
        self._raw = raw
        #: The method (``"MESSAGE"``, ``"INVITE"``…; of a response: its CSeq method).
        self.method = method
        #: The flow it came over, ``"proto:local -> remote"``.
        self.flow = flow
        #: The flow's id, for :meth:`UserAgent.send`.
        self.flow_id = flow_id

    @property
    def raw(self) -> bytes:
        """The message as received (its top Via noting where it came from)."""
        return self._raw

    @property
    def message(self) -> str:
        """The message as text (invalid UTF-8 replaced)."""
        return self._raw.decode("utf-8", "replace")

    @property
    def status(self) -> Optional[int]:
        """The status code when this is a response to the application's own request, else ``None``."""
        if not self._raw.lstrip(b"\r\n").startswith(b"SIP/2.0 "):
            return None
        try:
            return int(self._raw.lstrip(b"\r\n")[8:11])
        except ValueError:
            return None

    @property
    def uri(self) -> str:
        """The Request-URI (``""`` for a response)."""
        if self.status is not None:
            return ""
        first = self.message.lstrip("\r\n").split("\r\n", 1)[0].split(" ")
        return first[1] if len(first) == 3 else ""

    def header(self, name: str) -> List[str]:
        """Every value of header ``name`` (any case, long or compact form), in
        order; one line's comma-separated list is one value. ``[]`` if absent."""
        raw = self._raw
        cname = encode(name, "name")
        count = c_size_t(0)
        check(
            lib.sipreg_message_header_count(raw, len(raw), cname, byref(count)),
            "sipreg_message_header_count",
        )
        out: List[str] = []
        for i in range(count.value):

            def call(buf: object, size: int, needed: object, i: int = i) -> int:
                return int(lib.sipreg_message_header(raw, len(raw), cname, i, buf, size, needed))

            out.append(_lib.read_string(call, "sipreg_message_header"))
        return out

    @property
    def body(self) -> bytes:
        """The body (``b""`` without one)."""
        offset = c_size_t(0)
        length = c_size_t(0)
        check(
            lib.sipreg_message_body(self._raw, len(self._raw), byref(offset), byref(length)),
            "sipreg_message_body",
        )
        return self._raw[offset.value : offset.value + length.value]

    def respond(
        self,
        status: int,
        reason: str = "",
        headers: Iterable[str] = (),
        body: Union[bytes, str] = b"",
    ) -> None:
        """Answers the request (RFC 3261 8.2.6: Via, From, To with a tag, Call-ID
        and CSeq copied) with ``status`` (100..699), ``reason`` (``""``: the
        standard phrase), ``headers`` (``"Name: value"`` strings; give the
        body's ``Content-Type`` here; a ``To`` replaces the copied one) and
        ``body``. It goes back over the flow the request came in on (UDP: to
        its Via's received/rport). A retransmission of the request gets the
        same answer. After a final answer, one with another status is not
        sent (RFC 3261 17.2: the transaction discards it; a log line says so).

        Raises:
            InvalidArgumentError: a bad status, reason, header or body, or this
                is a response.
            TransportError: the flow is closed.
            TerminatedError: the user agent is closed.
        """
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidArgumentError(f"status must be an int, not {type(status).__name__}")
        if not 100 <= status <= 699:
            raise InvalidArgumentError(f"status must be between 100 and 699, got {status}")
        if self.status is not None:
            raise InvalidArgumentError("a response cannot be answered")
        if isinstance(headers, (str, bytes)):
            raise InvalidArgumentError("headers must be a sequence of strings, not one string")
        lines = [encode(h, "headers").decode("utf-8") for h in headers]
        if any("\r" in h or "\n" in h for h in lines):
            raise InvalidArgumentError("a header must be one line")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise InvalidArgumentError(f"body must be bytes or str, not {type(body).__name__}")
        h = self._handle.value
        if h is None:
            raise TerminatedError("the user agent is closed")
        block = encode("\r\n".join(lines), "headers") if lines else None
        check(
            lib.sipreg_user_agent_respond(
                h,
                self.flow_id,
                self._raw,
                len(self._raw),
                status,
                encode(reason, "reason"),
                block,
                body if body else None,
                len(body),
            ),
            "sipreg_user_agent_respond",
        )

    def __repr__(self) -> str:
        what = f"{self.status} response" if self.status is not None else f"{self.method} {self.uri}"
        return f"<sipreg.IncomingRequest {what} over {self.flow} (flow {self.flow_id})>"
