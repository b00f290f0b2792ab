#!/usr/bin/env python3
"""Prints the benchmark table from the RESULT lines of run-bench.sh."""
import sys

rows = []
pings = []
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    elif line.startswith("PING "):
        pings.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
base = next((float(r["peak_kib"]) for r in rows if r["impl"] == "sipp-base"), 0.0)
print("| N | transport | impl | wall to all Registered s | client CPU s | µs CPU/reg "
      "| peak RSS KiB | KiB/reg | retrans | failures | CPU sipreg/SIPp | CPU after/before |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
by = {}
for r in rows:
    if r["impl"] not in ("sipp-base", "closing-server"):
        by[(r["impl"], r["transport"], r["n"])] = r
for r in rows:
    if r["impl"] in ("sipp-base", "closing-server"):
        continue
    n = int(r["n"])
    peak = float(r["peak_kib"])
    if r["impl"].startswith("floor"):
        # Messages only: no memory figures.
        print(f"| {n} | {r['transport']} | {r['impl']} | {float(r['wall']):.3f} | {float(r['cpu']):.3f} "
              f"| {float(r['us_per_reg']):.1f} |  |  | {r['retrans']} | {r['failures']} |  |  |")
        continue
    if r["impl"] == "sipp":
        kib = max(0.0, peak - base) / n
    else:
        kib = float(r["kib_per_reg"])
    ratio = ""
    change = ""
    if r["impl"] == "sipreg":
        other = by.get(("sipp", r["transport"], r["n"]))
        if other and float(other["cpu"]) > 0:
            ratio = f"{float(r['cpu']) / float(other['cpu']):.2f}"
        old = by.get(("sipreg-before", r["transport"], r["n"]))
        if old and float(old["cpu"]) > 0:
            change = f"{float(r['cpu']) / float(old['cpu']):.2f}"
    print(f"| {n} | {r['transport']} | {r['impl']} | {float(r['wall']):.3f} | {float(r['cpu']):.3f} "
          f"| {float(r['us_per_reg']):.1f} | {peak:.0f} | {kib:.2f} | {r['retrans']} | {r['failures']} | {ratio} | {change} |")
for r in rows:
    if r["impl"] == "sipreg" and r.get("idle_pct", "nan").lower() != "nan":
        print(f"\nidle, {r['n']} registered ({r['transport']}): {float(r['idle_pct']):.3f} % of a core "
              "(process CPU from /proc over the idle period)")
unreg = [r for r in rows if r["impl"] == "sipreg" and r.get("unreg_wall")]
for r in unreg:
    if int(r["n"]) >= 1000:
        print(f"un-REGISTER of {r['n']} ({r['transport']}): {float(r['unreg_wall']):.3f} s wall")
for r in rows:
    if r["impl"] == "closing-server":
        print(f"\nstorm: {r['n']} registerers over TCP against a server that closes after every 200: "
              f"{r['registers_per_min']} REGISTERs per minute, {r['connections_per_s']} connections per second "
              f"({r['registers']} REGISTERs and {r['connections']} connections in {r['seconds']} s)")
for p in pings:
    print(f"\nOPTIONS pings from the registrar (nathelper) to {p['n']} registered contacts ({p['transport']}): "
          f"{p['answered']} answered in {float(p['secs']):.1f} s, client CPU {float(p['cpu']):.3f} s = "
          f"{float(p['us_per_ping']):.2f} µs per ping ({float(p.get('user_us', 'nan')):.2f} in user space, "
          f"{float(p.get('kernel_us', 'nan')):.2f} in the kernel; target <= 10)")
