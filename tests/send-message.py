#!/usr/bin/env python3
"""Sends one SIP MESSAGE over UDP straight to a registered contact and prints
the status line of its answer; exit status 0 only for a 200.

    send-message.py CONTACT-URI BODY      (e.g. sip:alice@127.0.0.1:40312 "hello")

Used by tests/run-all.sh (the C example's --answer-messages) and the Python
example tests: loopback only, stdlib only."""

import socket
import sys
import uuid


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    contact, body = sys.argv[1], sys.argv[2]
    hostport = contact.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]
    host, port = hostport.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    me = "%s:%d" % s.getsockname()
    data = body.encode()
    msg = (
        f"MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\nTo: <{contact}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    s.sendto(msg, (host, int(port)))
    try:
        answer = s.recv(65535).decode("utf-8", "replace")
    except socket.timeout:
        print("no answer", file=sys.stderr)
        return 1
    status = answer.split("\r\n", 1)[0]
    print(status)
    return 0 if status.startswith("SIP/2.0 200 ") else 1


if __name__ == "__main__":
    sys.exit(main())
