#!/usr/bin/env python3
"""Runs SIPp for the benchmark and prints a RESULT line like examples/bench.rs.

sipp_run.py <port> <transport udp|tcp> <n> <first_user> <rate> <workdir>
CPU and peak RSS are SIPp's own (getrusage of the child), wall is from start
to exit (all calls done)."""
import csv, os, resource, socket, subprocess, sys, time

port, transport, n, first, rate, work = sys.argv[1:7]
n, first = int(n), int(first)
here = os.path.dirname(os.path.abspath(__file__))
users = os.path.join(work, "users.csv")
with open(users, "w") as f:
    f.write("SEQUENTIAL\n")
    for k in range(n):
        u = f"user{first + k}"
        f.write(f"{u};127.0.0.1;[authentication username={u} password=pw-{u}]\n")
stat = os.path.join(work, "stat.csv")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
local_port = s.getsockname()[1]
s.close()
cmd = [
    "sipp", "-sf", os.path.join(here, "sipp_register_auth.xml"),
    "-inf", users, f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(local_port),
    "-t", "u1" if transport == "udp" else "t1",
    "-m", str(n), "-r", str(max(1, int(float(rate)))), "-rp", "1000",
    "-l", str(n), "-nostdin", "-timeout", "120s", "-timeout_error",
    "-trace_stat", "-stf", stat, "-fd", "3600", "-trace_err", "-error_file",
    os.path.join(work, "errors.log"), "-max_socket", str(n + 100),
]
t0 = time.monotonic()
p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
ok = failed = retrans = -1
try:
    rows = list(csv.reader(open(stat), delimiter=";"))
    head, last = rows[0], rows[-1]
    get = lambda name: int(last[head.index(name)])
    ok, failed, retrans = get("SuccessfulCall(C)"), get("FailedCall(C)"), get("Retransmissions(C)")
except Exception as e:  # noqa: BLE001 - report, do not hide, a missing stat file
    print(f"sipp stat file unreadable: {e}; stderr: {p.stderr.decode()[-500:]}", file=sys.stderr)
failures = failed if failed >= 0 else n
if ok >= 0 and ok + failed < n:
    failures += n - ok - failed
print(
    f"RESULT impl=sipp transport={transport} n={n} wall={wall:.4f} cpu={cpu:.4f} "
    f"us_per_reg={cpu / n * 1e6:.2f} peak_kib={ru.ru_maxrss} base_kib=0 "
    f"kib_per_reg={ru.ru_maxrss / n:.3f} retrans={retrans} failures={failures} "
    f"rate={n / wall:.0f} exit={p.returncode}"
)
