#!/usr/bin/env python3
"""reachable.py: register, then stay reachable for messages over the registered flow.

The Python twin of ``sipreg-register --answer-messages``::

    reachable.py --aor sip:alice@127.0.0.1 [--password PW]
                 [--registrar sip:127.0.0.1:5060] [--transport udp|tcp|tls|ws|wss]
                 [--ca-file PEM] [--expires 600] [--hold SECONDS]

Prints ``state <Name>`` per state change and, for each MESSAGE that reaches
the contact (a proxy routes it there: Kamailio ``lookup("location")``, an
outbound flow, a NAT binding kept open by the registration),
``message from <From>: <body>`` (line breaks shown as spaces); it answers 200.
Other requests get 405; the library answers OPTIONS (registrar pings) itself.
Holds ``--hold`` seconds (default: until Ctrl-C), then disposes. Exit status
0 only if it reached Registered and then Terminated cleanly; 2 for bad usage.

The ``sipreg`` package is imported from the environment, or from
``bindings/python`` of this repository when it is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from pathlib import Path
from typing import List, Optional

if importlib.util.find_spec("sipreg") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import sipreg  # noqa: E402
from sipreg import RegistererState as S  # noqa: E402

#: What this contact accepts (the REGISTER's Allow says so).
ALLOW = ("OPTIONS", "MESSAGE")


def on_request(req: sipreg.IncomingRequest) -> None:
    """Runs on the library's worker thread for each request reaching the contact."""
    if req.method == "ACK" or req.status is not None:
        return  # never answered
    if req.method != "MESSAGE":
        req.respond(405, headers=[f"Allow: {', '.join(ALLOW)}"])
        return
    sender = next(iter(req.header("From")), "?")
    text = req.body.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
    print(f"message from {sender}: {text}", flush=True)
    req.respond(200)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Register and answer MESSAGEs over the registered flow.")
    p.add_argument("--aor", required=True, help="address of record, e.g. sip:alice@127.0.0.1")
    p.add_argument("--password", help="digest password")
    p.add_argument("--registrar", help="Request-URI, e.g. sip:127.0.0.1:5060")
    p.add_argument("--transport", choices=("udp", "tcp", "tls", "ws", "wss"), default="udp")
    p.add_argument("--ca-file", help="PEM of the CAs a TLS/WSS registrar must chain to")
    p.add_argument("--expires", type=int, default=600, help="requested expiry in seconds")
    p.add_argument("--hold", type=float, default=None, help="seconds to stay reachable (default: until Ctrl-C)")
    args = p.parse_args(argv)
    if not 1 <= args.expires <= 0xFFFFFFFF:
        p.error("bad --expires")
    if args.hold is not None and args.hold < 0:
        p.error("bad --hold")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    seen: List[S] = []
    changed = threading.Condition()

    def on_state(state: S) -> None:
        with changed:
            print(f"state {state.label}", flush=True)
            seen.append(state)
            changed.notify_all()

    try:
        ua = sipreg.UserAgent(
            args.aor,
            password=args.password,
            transport=args.transport,
            tls_ca_file=args.ca_file,
            allow=ALLOW,
        )
    except sipreg.SipregError as e:
        print(f"user agent: {e}", file=sys.stderr)
        return 1
    with ua:
        ua.requests.add_listener(on_request)
        r = sipreg.Registerer(ua, registrar=args.registrar, expires=args.expires, retry=False)
        r.state_change.add_listener(on_state)
        r.register()
        with changed:
            changed.wait_for(lambda: bool(seen), 40.0)
        if seen and seen[-1] is S.REGISTERED:
            try:
                with changed:
                    changed.wait_for(lambda: seen[-1] is not S.REGISTERED, args.hold)
            except KeyboardInterrupt:
                pass
        r.dispose()
    return 0 if S.REGISTERED in seen and S.TERMINATED in seen else 1


if __name__ == "__main__":
    sys.exit(main())
