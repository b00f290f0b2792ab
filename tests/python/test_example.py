"""End-to-end runs of examples/python/register.py against the test registrar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python" / "register.py"


def _run(args, env, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_example_registers_holds_and_disposes(kamailio, user, sipreg_env) -> None:
    p = _run(
        [
            "--aor", user.aor,
            "--password", user.password,
            "--registrar", kamailio.registrar,
            "--expires", "60",
            "--hold", "1",
        ],
        sipreg_env,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines == [
        "response 401 Unauthorized",
        "response 200 OK",
        "state Registered",
        "response 200 OK",
        "state Unregistered",
        "state Terminated",
    ], p.stdout
    assert "Traceback" not in p.stderr
    assert kamailio.lookup(user.name) == []


def test_example_tcp_unregister_all(kamailio, user, sipreg_env) -> None:
    p = _run(
        [
            "--aor", user.aor,
            "--password", user.password,
            "--auth-user", user.name,
            "--registrar", kamailio.registrar,
            "--transport", "tcp",
            "--unregister-all",
        ],
        sipreg_env,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "state Registered" in p.stdout.splitlines()
    assert p.stdout.splitlines()[-1] == "state Terminated"
    assert kamailio.lookup(user.name) == []


def test_example_wrong_password_exits_nonzero(kamailio, user, sipreg_env) -> None:
    p = _run(
        ["--aor", user.aor, "--password", "wrong", "--registrar", kamailio.registrar],
        sipreg_env,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "state Registered" not in p.stdout
    assert "state Unregistered" in p.stdout and "state Terminated" in p.stdout


def test_example_usage_errors(sipreg_env) -> None:
    assert _run([], sipreg_env).returncode == 2
    assert _run(["--aor", "sip:a@127.0.0.1", "--expires", "0"], sipreg_env).returncode == 2


def test_example_trace_prints_messages_redacted(kamailio, user, sipreg_env) -> None:
    p = _run(
        ["--aor", user.aor, "--password", user.password, "--registrar", kamailio.registrar,
         "--expires", "60", "--trace"],
        sipreg_env,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    heads = [line for line in p.stdout.splitlines() if line.startswith("--- ")]
    # REGISTER, 401, REGISTER, 200, un-REGISTER, 200.
    assert len(heads) == 6, p.stdout
    assert [" sent udp " in h for h in heads] == [True, False] * 3, heads
    assert p.stdout.count("    Authorization: Digest <redacted>\n") == 2, p.stdout
    assert user.password not in p.stdout and "response=" not in p.stdout
    assert "state Registered" in p.stdout.splitlines()
