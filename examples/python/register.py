#!/usr/bin/env python3
"""register.py: register an address of record, hold the registration, then dispose.

The Python twin of the C example ``sipreg-register``::

    register.py --aor sip:alice@127.0.0.1 [--password PW] [--auth-user U]
                [--registrar sip:127.0.0.1:5060] [--transport udp|tcp|tls]
                [--expires 600] [--hold SECONDS] [--unregister-all] [--trace]

Prints ``state <Name>`` per state change (Initial, Registered, Unregistered,
Terminated), ``response <code> <reason>`` per final response and ``failed
<why>`` per failed attempt. Exit status 0
only if it reached Registered and then Terminated cleanly; 2 for bad usage.
``--trace`` also prints every SIP message sent and received (credentials redacted).
``SIPREG_LOG=info|debug`` prints the library's log lines on stderr.

The ``sipreg`` package is imported from the environment, or from
``bindings/python`` of this repository when it is not installed; the library
is found through ``SIPREG_LIBRARY`` or the repository's cargo target dir.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Callable, List, Optional

if importlib.util.find_spec("sipreg") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import sipreg  # noqa: E402
from sipreg import RegistererState as S  # noqa: E402


class Progress:
    """What the listeners saw, guarded by a condition (listeners run on the worker thread)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.state = S.INITIAL
        self.registered_seen = False
        self.terminated_seen = False

    def on_state(self, state: S) -> None:
        with self.cond:
            print(f"state {state.label}", flush=True)
            self.state = state
            self.registered_seen |= state is S.REGISTERED
            self.terminated_seen |= state is S.TERMINATED
            self.cond.notify_all()

    def on_response(self, code: int, reason: str) -> None:
        with self.cond:
            print(f"response {code} {reason}", flush=True)

    def on_retry(self, event: sipreg.RetryEvent) -> None:
        if event.kind is sipreg.EventKind.RETRY_SCHEDULED:
            with self.cond:
                print(
                    f"retry in {event.delay:.1f} s (failure {event.failure_count})", flush=True
                )

    def on_failure(self, failure: sipreg.Failure) -> None:
        with self.cond:
            # Why, in words: "failed auth_rejected (401 Unauthorized): credentials ...".
            print(f"failed {failure}", flush=True)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Waits until ``predicate()`` holds (evaluated under the lock) or ``timeout`` passes."""
        with self.cond:
            return bool(self.cond.wait_for(predicate, timeout))


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Register an AOR, hold the registration, then dispose."
    )
    p.add_argument("--aor", required=True, help="address of record, e.g. sip:alice@127.0.0.1")
    p.add_argument("--password", help="digest password")
    p.add_argument("--auth-user", help="digest username (default: the AOR's user)")
    p.add_argument("--registrar", help="Request-URI, e.g. sip:127.0.0.1:5060 (default: the AOR's domain)")
    p.add_argument("--transport", choices=("udp", "tcp", "tls"), help="transport (default udp)")
    p.add_argument("--expires", type=int, default=600, help="requested expiry in seconds")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to stay registered")
    p.add_argument(
        "--unregister-all",
        action="store_true",
        help="before disposing, remove every binding of the AOR (Contact: *)",
    )
    p.add_argument("--trace", action="store_true", help="print every SIP message sent and received")
    args = p.parse_args(argv)
    if not 1 <= args.expires <= 0xFFFFFFFF:
        p.error("bad --expires")
    if args.hold < 0:
        p.error("bad --hold")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    level = os.environ.get("SIPREG_LOG", "")
    if level:
        logging.basicConfig(
            stream=sys.stderr,
            format="sipreg[%(levelname)s]: %(message)s",
            level=logging.DEBUG if level == "debug" else logging.INFO,
        )

    p = Progress()
    try:
        ua = sipreg.UserAgent(
            args.aor,
            password=args.password,
            auth_username=args.auth_user,
            transport=args.transport or "udp",
        )
    except sipreg.SipregError as e:
        print(f"user agent: {e}", file=sys.stderr)
        return 1
    if args.trace:
        ua.trace.add_listener(lambda rec: print(rec, flush=True))
    with ua:
        try:
            # A CLI reports failures instead of retrying in the background.
            r = sipreg.Registerer(ua, expires=args.expires, registrar=args.registrar, retry=False)
        except sipreg.SipregError as e:
            print(f"registerer: {e}", file=sys.stderr)
            return 1
        r.state_change.add_listener(p.on_state)
        r.response_event.add_listener(p.on_response)
        r.retry_event.add_listener(p.on_retry)
        r.failure_event.add_listener(p.on_failure)
        try:
            r.register()
        except sipreg.SipregError as e:
            print(f"register: {e}", file=sys.stderr)
            r.close()
            return 1
        p.wait(lambda: p.state is not S.INITIAL, 40.0)
        if p.state is S.REGISTERED and args.hold > 0:
            # Refreshes happen on the worker thread; stop early if the binding is lost.
            p.wait(lambda: p.state is not S.REGISTERED, args.hold)
        if args.unregister_all and p.state is not S.TERMINATED:
            try:
                r.unregister(all=True)
            except sipreg.SipregError as e:
                print(f"unregister: {e}", file=sys.stderr)
            else:
                p.wait(lambda: p.state is not S.REGISTERED, 40.0)
        r.dispose()  # waits (bounded) until Terminated reached the listeners
        p.wait(lambda: p.terminated_seen, 10.0)
        r.close()
    return 0 if (p.registered_seen and p.terminated_seen) else 1


if __name__ == "__main__":
    sys.exit(main())
