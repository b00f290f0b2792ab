#!/usr/bin/env python3
"""asyncio_register.py: register several accounts with asyncio, print their
states, unregister them all on Ctrl-C::

    asyncio_register.py --registrar sip:127.0.0.1:5060 [--transport udp|tcp|tls]
                        [--expires 600] [--hold SECONDS] AOR PASSWORD [AOR PASSWORD ...]

Prints ``<aor> state <Name>`` per state change and ``<aor> failed <why>``
per failed attempt; every callback runs on the event loop's thread (through
the loop's ``sipreg.Dispatcher``), no thread is started and nothing blocks
the loop. On Ctrl-C (or after ``--hold`` seconds) each account unregisters,
then everything is disposed. Exit status 0 only if every account registered
and ended Terminated; 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

if importlib.util.find_spec("sipreg") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import sipreg  # noqa: E402
from sipreg import aio  # noqa: E402


def parse_args(argv: Optional[List[str]]) -> Tuple[argparse.Namespace, List[Tuple[str, str]]]:
    p = argparse.ArgumentParser(description="Register several accounts with asyncio.")
    p.add_argument("--registrar", required=True, help="Request-URI, e.g. sip:127.0.0.1:5060")
    p.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    p.add_argument("--expires", type=int, default=600, help="requested expiry in seconds")
    p.add_argument("--hold", type=float, default=None, help="seconds to stay (default: until Ctrl-C)")
    p.add_argument("accounts", nargs="+", metavar="AOR PASSWORD")
    args = p.parse_args(argv)
    if len(args.accounts) % 2:
        p.error("give a PASSWORD after each AOR")
    pairs = list(zip(args.accounts[::2], args.accounts[1::2]))
    return args, pairs


async def follow(aor: str, r: aio.Registerer, seen: Dict[str, List[sipreg.RegistererState]]) -> None:
    """Prints every state change of one account until it is Terminated."""
    async for state in r.states():
        seen[aor].append(state)
        print(f"{aor} state {state.label}", flush=True)


async def register(aor: str, r: aio.Registerer) -> bool:
    try:
        await r.register()
        return True
    except sipreg.RegistrationError as e:
        # e.failure.kind says what to tell the user: wrong password,
        # registrar unreachable, certificate not trusted, ...
        print(f"{aor} failed {e}", flush=True)
        return False


async def main(argv: Optional[List[str]] = None) -> int:
    args, accounts = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    seen: Dict[str, List[sipreg.RegistererState]] = {aor: [] for aor, _ in accounts}
    uas: List[aio.UserAgent] = []
    regs: List[Tuple[str, aio.Registerer]] = []
    try:
        for aor, password in accounts:
            ua = aio.UserAgent(aor, password=password, transport=args.transport)
            uas.append(ua)
            regs.append((aor, aio.Registerer(ua, registrar=args.registrar, expires=args.expires)))
        followers = [asyncio.create_task(follow(aor, r, seen)) for aor, r in regs]
        # All at once: the library paces them towards the registrar.
        ok = await asyncio.gather(*(register(aor, r) for aor, r in regs))
        print(f"registered {sum(ok)}/{len(ok)}; Ctrl-C to unregister", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), args.hold)
        except asyncio.TimeoutError:
            pass
        for aor, r in regs:
            if r.state is sipreg.RegistererState.REGISTERED:
                try:
                    await r.unregister()
                except sipreg.SipregError as e:
                    print(f"{aor} unregister: {e}", flush=True)
    finally:
        # Disposes what is left and frees everything; awaits Terminated.
        await asyncio.gather(*(ua.close() for ua in uas))
    await asyncio.gather(*followers)
    ended = all(s and s[-1] is sipreg.RegistererState.TERMINATED for s in seen.values())
    return 0 if all(ok) and ended else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
