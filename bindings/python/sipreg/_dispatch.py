"""The dispatcher: callbacks on the application's thread.

A :class:`Dispatcher` queues the callbacks of the user agents attached to it
(``ua.set_dispatcher(d)``, before creating registerers) instead of running
them on the library's worker thread. Its :meth:`~Dispatcher.fileno` is
readable while callbacks wait; :meth:`~Dispatcher.run` runs them on the
calling thread, in order. :mod:`sipreg.aio` uses one per event loop; a GLib,
Qt or selectors loop can watch the fd the same way.
"""

from __future__ import annotations

import threading
import weakref
from ctypes import byref, c_uint32, c_void_p
from typing import Dict, Optional

from ._errors import RequestPendingError, TerminatedError
from ._lib import SIPREG_OK, check, lib, make_error, sipreg_dispatcher_stats

__all__ = ["Dispatcher"]


def _free(handle: Dict[str, Optional[int]]) -> None:
    """Frees a collected dispatcher's handle (refused, and kept, while in use)."""
    h = handle.get("h")
    if h is not None and lib.sipreg_dispatcher_free(h) == SIPREG_OK:
        handle["h"] = None


class Dispatcher:
    """A queue of library callbacks that the application runs on its own thread.

    Watch :meth:`fileno` for input and call :meth:`run` when it is readable
    (``loop.add_reader(d.fileno(), d.run)`` in asyncio,
    ``GLib.unix_fd_add_full`` in GLib). Callbacks may call any library
    function. Past 4096 waiting callbacks, state changes are still queued,
    other events of a registerer are coalesced and traces dropped (see
    :attr:`stats`).
    """

    def __init__(self) -> None:
        out = c_void_p()
        check(lib.sipreg_dispatcher_new(byref(out)), "sipreg_dispatcher_new")
        self._handle: Dict[str, Optional[int]] = {"h": out.value}
        self._home: Optional[int] = None
        self._finalizer = weakref.finalize(self, _free, self._handle)

    def _require(self) -> int:
        h = self._handle["h"]
        if h is None:
            raise TerminatedError("the dispatcher was closed")
        return h

    def fileno(self) -> int:
        """The fd that is readable while callbacks wait (watch it; never read it)."""
        fd = int(lib.sipreg_dispatcher_fd(self._require()))
        if fd < 0:
            raise TerminatedError("the dispatcher was closed")
        return fd

    def run(self, max: int = 0) -> int:  # noqa: A002 - mirrors the C name
        """Runs up to ``max`` waiting callbacks (0: all that wait now) on this
        thread, in order; returns how many ran.

        Raises:
            RequestPendingError: called from one of this dispatcher's own
                callbacks, or while another thread runs it.
        """
        self._home = threading.get_ident()
        ran = c_uint32(0)
        check(lib.sipreg_dispatcher_run(self._require(), max, byref(ran)), "sipreg_dispatcher_run")
        return int(ran.value)

    def try_run(self, max: int = 0) -> int:  # noqa: A002
        """Like :meth:`run`, but returns 0 instead of raising when a run is in progress."""
        try:
            return self.run(max)
        except RequestPendingError:
            return 0

    def is_home(self) -> bool:
        """Whether this thread ran the dispatcher last (where waiting for its
        callbacks would wait forever)."""
        return self._home == threading.get_ident()

    @property
    def stats(self) -> Dict[str, int]:
        """``waiting``, ``dropped`` (traces) and ``coalesced`` (events) callbacks."""
        st = sipreg_dispatcher_stats()
        check(
            lib.sipreg_dispatcher_get_stats(self._require(), byref(st)),
            "sipreg_dispatcher_get_stats",
        )
        return {
            "waiting": int(st.waiting),
            "dropped": int(st.dropped),
            "coalesced": int(st.coalesced),
        }

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` freed the dispatcher."""
        return self._handle["h"] is None

    def close(self) -> None:
        """Frees the dispatcher (remove its fd from your loop first).

        Raises:
            InvalidArgumentError: user agents or registerers still deliver
                through it (close them first); nothing is freed.
        """
        h = self._handle["h"]
        if h is None:
            return
        rc = lib.sipreg_dispatcher_free(h)
        if rc != SIPREG_OK:
            raise make_error(rc, "sipreg_dispatcher_free")
        self._handle["h"] = None
        self._finalizer.detach()

    def __enter__(self) -> "Dispatcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sipreg.Dispatcher{' closed' if self.closed else ''}>"
