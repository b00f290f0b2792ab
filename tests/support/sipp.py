"""SIPp 3.6 playing a scenario on 127.0.0.1 for the Python tests (a registrar,
or a client sending requests to a contact)
(tests/python, tests/dns): start it, wait for its verdict (exit status 0 =
every expected message arrived, in order), read its message log. The Rust
tests have the same runner in tests/support/sipp.rs."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from wait import PATIENCE, wait_until


def _bound(port: int) -> bool:
    """Whether a UDP socket listens on ``port`` (read from /proc/net/udp, so
    nothing probes SIPp while it starts; per network namespace)."""
    want = f":{port:04X} "
    return want in Path("/proc/net/udp").read_text()


class Sipp:
    """One SIPp process playing ``scenario`` (an .xml path) over UDP on
    127.0.0.1:``port``; ``args`` go on its command line (a client's target
    and ``-s service``)."""

    def __init__(self, scenario: Path, port: int, args: Sequence[str] = ()) -> None:
        if shutil.which("sipp") is None:
            raise AssertionError("sipp not found (tests/setup-machine.sh installs sip-tester)")
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix=f"sipreg-sipp-{scenario.stem}-"))
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
             "-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
             "-trace_msg", "-message_file", str(self.dir / "messages.log"),
             "-trace_err", "-error_file", str(self.dir / "errors.log"), *args],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        if not wait_until(lambda: self.proc.poll() is not None or _bound(port), PATIENCE):
            self.stop()
            raise AssertionError(f"sipp never bound port {port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"sipp exited at start ({self.proc.returncode})")

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def _read(self, name: str) -> str:
        p = self.dir / name
        return p.read_text(errors="replace") if p.exists() else ""

    def requests(self) -> int:
        """REGISTERs SIPp received so far, retransmissions included."""
        return self._read("messages.log").count("REGISTER sip:")

    def wait(self, timeout: float = PATIENCE) -> Optional[int]:
        """SIPp's exit status, or None if it is still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def passed(self, timeout: float = PATIENCE) -> None:
        """Waits for SIPp's verdict; fails with its logs unless it passed."""
        code = self.wait(timeout)
        self.stop()
        assert code == 0, (
            f"sipp exit {code}\n-- errors\n{self._read('errors.log')}"
            f"\n-- messages\n{self._read('messages.log')}"
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
