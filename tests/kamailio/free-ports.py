"""Prints N distinct ports free for TCP and UDP on 127.0.0.1 and TCP on ::1,
taken below the kernel's ephemeral range (32768 and up), so that no socket
bound to port 0 can take one before the peer that is handed it binds it.

    python3 free-ports.py N
"""
import random
import socket
import sys

CHECKS = (
    (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
    (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
    (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
)


def free(port: int) -> bool:
    for family, kind, host in CHECKS:
        s = socket.socket(family, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


want = int(sys.argv[1]) if len(sys.argv) > 1 else 1
ports: list = []
while len(ports) < want:
    p = random.randint(20000, 31999)
    if p not in ports and free(p):
        ports.append(p)
print(" ".join(map(str, ports)))
