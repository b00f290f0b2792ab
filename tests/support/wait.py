"""Waiting for something to happen in the Python tests: a condition polled
until it holds. The bound only stops a test that would otherwise hang;
running out of it means "it never happened", never "it was too slow". The
Rust tests have the same in tests/support/wait.rs."""

from __future__ import annotations

import time
from typing import Callable

#: The bound for things that happen within a second or two on an idle
#: machine: generous enough for a loaded one.
PATIENCE = 30.0


def wait_until(cond: Callable[[], object], timeout: float = PATIENCE, step: float = 0.01) -> bool:
    """Polls ``cond`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return bool(cond())
        time.sleep(step)
