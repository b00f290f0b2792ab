#!/usr/bin/env python3
"""A hostile registrar for the storm row of run-bench.sh: over TCP on
127.0.0.1:PORT it answers every REGISTER with a valid 200 OK (granting the
asked expiry) and then closes the connection. It counts the connections and
REGISTERs it gets during SECONDS, starting when the first REGISTER arrives,
then prints one RESULT line and exits.

    closing_registrar.py PORT SECONDS
"""
import asyncio
import re
import sys
import time

PORT = int(sys.argv[1])
SECONDS = float(sys.argv[2])
start = None
connections = 0
registers = 0


def answer(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    pick = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        pick.setdefault(name.strip().lower(), value.strip())
    contact = pick.get("contact", "")
    m = re.search(r"<([^>]*)>", contact)
    expires = pick.get("expires", "600")
    out = ["SIP/2.0 200 OK"]
    out.append("Via: " + pick.get("via", pick.get("v", "")))
    out.append("From: " + pick.get("from", pick.get("f", "")))
    out.append("To: " + pick.get("to", pick.get("t", "")) + ";tag=closing")
    out.append("Call-ID: " + pick.get("call-id", pick.get("i", "")))
    out.append("CSeq: " + pick.get("cseq", ""))
    if m and expires != "0" and "expires=0" not in contact:
        out.append(f"Contact: <{m.group(1)}>;expires={expires}")
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global start, connections, registers
    connections += 1
    buf = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            buf += data
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"\r\n(?:Content-Length|l)\s*:\s*(\d+)", head, re.I)
                body = int(m.group(1)) if m else 0
                if len(rest) < body:
                    break
                buf = rest[body:]
                if head.startswith(b"REGISTER "):
                    if start is None:
                        start = time.monotonic()
                    registers += 1
                    writer.write(answer(head + b"\r\n\r\n"))
                    await writer.drain()
                    writer.close()
                    return
    except (ConnectionError, OSError):
        pass
    writer.close()


async def main() -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", PORT)
    while start is None:
        await asyncio.sleep(0.05)
    at_start = (connections, registers)
    await asyncio.sleep(SECONDS)
    minutes = SECONDS / 60.0
    print(f"RESULT impl=closing-server connections={connections} registers={registers} "
          f"seconds={SECONDS:.0f} registers_per_min={registers / minutes:.0f} "
          f"connections_per_s={connections / SECONDS:.1f} first={at_start[1]}", flush=True)
    server.close()


asyncio.run(main())
