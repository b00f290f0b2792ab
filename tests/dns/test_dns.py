"""RFC 3263 resolution and failover against real peers, inside a network namespace.

Run by tests/dns/run.sh, which creates the namespace (own loopback, its own
/etc/resolv.conf -> 127.0.0.1) and runs pytest in it with ``ip netns exec``.
This module starts, inside that namespace: dnsmasq on 127.0.0.1:53 serving
NAPTR/SRV/A records for example.test, Kamailio registrars on free ports (and
one on 5060, the RFC 3263 default port, for the A-record fallback: the
namespace's loopback is private, so no other test can collide with it), and
SIPp for the 503 and silent registrars, a Kamailio with TLS (one listener
with a certificate for another name) and a small IPv6-only registrar on ::1.
Every process is stopped by its PID.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
import sipreg  # noqa: E402
from sipp import Sipp  # noqa: E402
from wait import PATIENCE, wait_until  # noqa: E402

KAMCTL = ROOT / "tests" / "kamailio" / "kamctl.sh"
HERE = Path(__file__).resolve().parent

if os.environ.get("SIPREG_IN_NETNS") != "1":
    pytest.skip(
        "tests/dns runs inside its own network namespace: use tests/dns/run.sh",
        allow_module_level=True,
    )


_handed_out: set = {5060}


def free_port() -> int:
    """A port free for both UDP and TCP on the namespace's 127.0.0.1 (never the same twice)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port in _handed_out:
            continue
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            _handed_out.add(port)
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


class Kamailio:
    def __init__(self, base: Path, name: str, port: int, secure: bool = False) -> None:
        self.rundir = base / name
        self.port = port
        self.running = False
        # secure: also TLS (good certificate) and TLS with a wrongly named certificate.
        # kamctl.sh secure wants TLS WRONG WS WSS EXPIRED ports.
        self.extra = ["secure", *(str(free_port()) for _ in range(5))] if secure else []

    @property
    def tls_port(self) -> int:
        return int(self.extra[1])

    @property
    def wrong_tls_port(self) -> int:
        return int(self.extra[2])

    def start(self) -> None:
        subprocess.run([str(KAMCTL), "start", str(self.rundir), str(self.port), *self.extra],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        self.running = True

    def stop(self) -> None:
        if self.running:
            subprocess.run([str(KAMCTL), "stop", str(self.rundir)], timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.running = False
            # A failover test needs a dead port (ICMP), not a worker still bound to it.
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as e:
                raise AssertionError(f"{self.rundir.name}: udp port {self.port} "
                                     f"still bound after stop: {e}") from e
            finally:
                probe.close()

    def has_binding(self, user: str) -> bool:
        p = subprocess.run([str(KAMCTL), "lookup", str(self.rundir), f"{user}@example.test"],
                           capture_output=True, text=True, timeout=10)
        return p.returncode == 0 and "Contact" in p.stdout


class Lab:
    """dnsmasq + registrars inside the namespace, and the zone they serve."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ports: Dict[str, int] = {}
        self.kam: Dict[str, Kamailio] = {}
        self.dns: Optional[subprocess.Popen] = None
        self.moving_port = 0
        for name in ("k1", "k2", "k3", "k4"):
            self.ports[name] = free_port()
            self.kam[name] = Kamailio(base, name, self.ports[name])
        self.kam["k5060"] = Kamailio(base, "k5060", 5060)
        self.kam["tls"] = Kamailio(base, "tls", free_port(), secure=True)
        self.ports["dead"] = free_port()  # nothing listens there
        self.ports["silent"] = free_port()
        self.ports["busy"] = free_port()
        self.ports["v6"] = free_port()

    def zone(self) -> str:
        p = self.ports
        lines = [
            "port=53", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-poll",
            "no-hosts", "local=/example.test/", "no-negcache", "log-queries", "log-facility=-",
            "keep-in-foreground", "pid-file=", "user=root",
            # A records only (no AAAA: NOERROR/NODATA for AAAA).
            "host-record=sip1.example.test,127.0.0.1",
            "host-record=sip2.example.test,127.0.0.1",
            "host-record=plain.example.test,127.0.0.1",
            # example.test: NAPTR -> SRV, priority 10 = k1, 20 = k2, udp and tcp.
            "naptr-record=example.test,10,10,S,SIP+D2U,,_sip._udp.example.test",
            "naptr-record=example.test,20,10,S,SIP+D2T,,_sip._tcp.example.test",
        ]
        def srv(name: str, target: str, port: int, prio: int, weight: int) -> None:
            lines.append(f"srv-host={name},{target},{port},{prio},{weight}")
        for proto in ("udp", "tcp"):
            srv(f"_sip._{proto}.example.test", "sip1.example.test", p["k1"], 10, 10)
            srv(f"_sip._{proto}.example.test", "sip2.example.test", p["k2"], 20, 10)
            srv(f"_sip._{proto}.failover.example.test", "sip1.example.test", p["dead"], 10, 10)
            srv(f"_sip._{proto}.failover.example.test", "sip2.example.test", p["k2"], 20, 10)
            srv(f"_sip._{proto}.sticky.example.test", "sip1.example.test", p["k3"], 10, 10)
            srv(f"_sip._{proto}.sticky.example.test", "sip2.example.test", p["k4"], 20, 10)
        srv("_sip._udp.weighted.example.test", "sip1.example.test", p["k1"], 10, 80)
        srv("_sip._udp.weighted.example.test", "sip2.example.test", p["k2"], 10, 20)
        srv("_sip._udp.timeout.example.test", "sip1.example.test", p["silent"], 10, 10)
        srv("_sip._udp.timeout.example.test", "sip2.example.test", p["k2"], 20, 10)
        srv("_sip._udp.busy.example.test", "sip1.example.test", p["busy"], 10, 10)
        srv("_sip._udp.busy.example.test", "sip2.example.test", p["k2"], 20, 10)
        srv("_sip._udp.moving.example.test", "sip1.example.test", self.moving_port, 10, 10)
        # dual.example.test: A 127.0.0.3 (nothing there) and AAAA ::1 (a v6-only registrar).
        lines.append("host-record=dual.example.test,127.0.0.3,::1")
        srv("_sip._udp.dual.example.test", "dual.example.test", p["v6"], 10, 10)
        # secure.example.test: TLS first to a certificate for another name, then a good one.
        tls = self.kam["tls"]
        srv("_sips._tcp.secure.example.test", "sip1.example.test", tls.wrong_tls_port, 10, 10)
        srv("_sips._tcp.secure.example.test", "sip2.example.test", tls.tls_port, 20, 10)
        # tcpfirst.example.test: NAPTR prefers TCP (at a dead port), then UDP at k2.
        lines.append("naptr-record=tcpfirst.example.test,10,10,S,SIP+D2T,,_sip._tcp.tcpfirst.example.test")
        lines.append("naptr-record=tcpfirst.example.test,20,10,S,SIP+D2U,,_sip._udp.tcpfirst.example.test")
        srv("_sip._tcp.tcpfirst.example.test", "sip1.example.test", p["dead"], 10, 10)
        srv("_sip._udp.tcpfirst.example.test", "sip2.example.test", p["k2"], 10, 10)
        return "\n".join(lines) + "\n"

    def start_dns(self) -> None:
        conf = self.base / "dnsmasq.conf"
        conf.write_text(self.zone())
        log = open(self.base / "dnsmasq.log", "ab")
        self.dns = subprocess.Popen(["dnsmasq", "-C", str(conf)], stdout=log, stderr=log)
        def answers() -> bool:
            assert self.dns is not None
            if self.dns.poll() is not None:
                raise RuntimeError("dnsmasq exited: " + (self.base / "dnsmasq.log").read_text())
            r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1",
                                "sip1.example.test"], capture_output=True, text=True)
            return "127.0.0.1" in r.stdout

        if not wait_until(answers, PATIENCE, step=0.05):
            raise RuntimeError("dnsmasq did not answer")

    def stop_dns(self) -> None:
        if self.dns is not None and self.dns.poll() is None:
            self.dns.terminate()
            self.dns.wait(5)
        self.dns = None

    def restart_dns(self) -> None:
        """A changed zone: dnsmasq reads the new file on start."""
        self.stop_dns()
        self.start_dns()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    base = Path(tempfile.mkdtemp(prefix="sipreg-dns-"))
    lab = Lab(base)
    lab.moving_port = lab.ports["k1"]
    try:
        lab.start_dns()
        for k in lab.kam.values():
            k.start()
        yield lab
    finally:
        for k in lab.kam.values():
            k.stop()
        lab.stop_dns()


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def find(self, *words: str) -> List[str]:
        return [line for line in self.lines if all(w in line for w in words)]


@pytest.fixture
def logs() -> Iterator[LogLines]:
    h = LogLines()
    lg = logging.getLogger("sipreg")
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    yield h
    lg.removeHandler(h)


PASSWORDS = {"alice": "alicepw", "bob": "bobpw"}


def agent(user: str, transport: Optional[str] = "udp", t1: float = 0.5) -> sipreg.UserAgent:
    pw = PASSWORDS.get(user, f"pw-{user}")
    return sipreg.UserAgent(f"sip:{user}@example.test", password=pw, transport=transport, t1=t1)


def registered_at(r: sipreg.Registerer, want: str, timeout: float = PATIENCE) -> bool:
    return wait_until(lambda: r.state == sipreg.RegistererState.REGISTERED
                      and target(r) == want and r.last_response is not None
                      and r.last_response[0] == 200, timeout)


REG = sipreg.RegistererState


def target(r: sipreg.Registerer) -> Optional[str]:
    """``proto:remote`` of the flow in use ("udp:127.0.0.1:40000 -> 127.0.0.1:5071")."""
    flow = r.flow
    if not flow or " -> " not in flow:
        return None
    proto = flow.split(":", 1)[0]
    return f"{proto}:{flow.split(' -> ', 1)[1]}"


def test_srv_priority_order_udp_and_tcp_via_naptr(lab: Lab, logs: LogLines) -> None:
    for transport, user in (("udp", "user11"), ("tcp", "user12")):
        with agent(user, transport) as ua:
            r = sipreg.Registerer(ua, expires=60)
            r.register()
            assert r.wait_for(REG.REGISTERED, PATIENCE), r.responses
            assert target(r) == f"{transport}:127.0.0.1:{lab.ports['k1']}"
            assert lab.kam["k1"].has_binding(user)
            assert not lab.kam["k2"].has_binding(user)
            r.dispose()
    assert logs.find("resolved example.test", str(lab.ports["k1"]), str(lab.ports["k2"]))


def test_open_transport_follows_naptr_order_across_transports(lab: Lab, logs: LogLines) -> None:
    # No transport chosen: NAPTR order says TCP first (refused), then UDP.
    with agent("user13", transport=None) as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:tcpfirst.example.test")
        r.register()
        assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k2']}"), r.responses
        assert logs.find("failover", f"tcp:127.0.0.1:{lab.ports['dead']}",
                         f"udp:127.0.0.1:{lab.ports['k2']}")
        assert lab.kam["k2"].has_binding("user13")
        r.dispose()
    # The same name with UDP chosen skips the TCP NAPTR: no failover at all.
    logs.lines.clear()
    with agent("user14", transport="udp") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:tcpfirst.example.test")
        r.register()
        assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k2']}"), r.responses
        assert not logs.find("failover")
        r.dispose()


class V6Registrar:
    """A minimal registrar on [::1] (UDP): 200 OK echoing the Contact, counting requests."""

    def __init__(self, port: int) -> None:
        import threading
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", port))
        self.sock.settimeout(0.2)
        self.requests = 0
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop_flag:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            msg = data.decode("utf-8", "replace")
            if not msg.startswith("REGISTER "):
                continue
            self.requests += 1
            keep = [line for line in msg.split("\r\n")
                    if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            contact = next((line.split(":", 1)[1].strip() for line in msg.split("\r\n")
                            if line.lower().startswith("contact:")), "")
            contact = contact.split(";expires")[0]
            head = [line + ";tag=v6" if line.lower().startswith("to:") else line for line in keep]
            resp = "\r\n".join(["SIP/2.0 200 OK", *head, f"Contact: {contact};expires=60",
                                 "Content-Length: 0", "", ""])
            self.sock.sendto(resp.encode(), peer)

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(2)
        self.sock.close()


def test_both_address_families_the_working_one_is_kept(lab: Lab, logs: LogLines) -> None:
    v6 = V6Registrar(lab.ports["v6"])
    try:
        with agent("user15") as ua:
            r = sipreg.Registerer(ua, expires=60, registrar="sip:dual.example.test")
            r.register()
            want = f"udp:[::1]:{lab.ports['v6']}"
            assert registered_at(r, want), (r.flow, r.responses)
            assert logs.find("failover", f"udp:127.0.0.3:{lab.ports['v6']}", want)
            # The next REGISTER resolves again (TTL 0) and goes to IPv6 first.
            logs.lines.clear()
            n = v6.requests
            r.register()
            assert wait_until(lambda: v6.requests > n and r.responses[-1][0] == 200)
            assert target(r) == want
            assert not logs.find("failover"), logs.find("failover")
            r.dispose()
    finally:
        v6.close()


def test_weights_80_20_over_200_resolutions(lab: Lab) -> None:
    uas = [agent(f"user{1000 + i}") for i in range(200)]
    regs = [sipreg.Registerer(ua, expires=60, registrar="sip:weighted.example.test") for ua in uas]
    try:
        for r in regs:
            r.register()
        assert wait_until(lambda: all(r.state == REG.REGISTERED for r in regs), 2 * PATIENCE), \
            [r.responses for r in regs if r.state != REG.REGISTERED][:3]
        heavy = sum(1 for r in regs if target(r) == f"udp:127.0.0.1:{lab.ports['k1']}")
        light = sum(1 for r in regs if target(r) == f"udp:127.0.0.1:{lab.ports['k2']}")
        print(f"weights 80/20: {heavy} / {light} of 200")
        assert heavy + light == 200
        # P(weight-80 first) = 81/101 (RFC 2782 pick in 0..=sum): mean 160.4, sd 5.6; 4 sd.
        assert 138 <= heavy <= 183, (heavy, light)
    finally:
        for r in regs:
            r.dispose()
        for ua in uas:
            ua.close()


@pytest.mark.parametrize("transport,why", [("udp", "ICMP"), ("tcp", "refused")])
def test_failover_on_icmp_and_refused_tcp(lab: Lab, logs: LogLines, transport: str,
                                          why: str) -> None:
    user = "user21" if transport == "udp" else "user22"
    with agent(user, transport) as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:failover.example.test",
                              retry_base=30.0)
        r.register()
        assert registered_at(r, f"{transport}:127.0.0.1:{lab.ports['k2']}"), r.responses
        # Failed over at once, not through the 30 s backoff: no failure counted,
        # no retry scheduled on the way.
        assert r.failure_count == 0
        assert 503 not in [c for c, _ in r.responses], "no failure surfaced"
        assert lab.kam["k2"].has_binding(user)
        assert logs.find("failover", f"127.0.0.1:{lab.ports['dead']}",
                         f"127.0.0.1:{lab.ports['k2']}")
        r.dispose()


def test_failover_on_tls_certificate_failure(lab: Lab, logs: LogLines) -> None:
    k = lab.kam["tls"]
    ua = sipreg.UserAgent("sip:user23@example.test", password="pw-user23", transport="tls",
                          tls_ca_file=str(k.rundir / "certs" / "ca.pem"),
                          tls_server_name="localhost")
    with ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:secure.example.test")
        r.register()
        assert registered_at(r, f"tls:127.0.0.1:{k.tls_port}"), r.responses
        assert logs.find("failover", f"tls:127.0.0.1:{k.wrong_tls_port}",
                         f"tls:127.0.0.1:{k.tls_port}")
        assert k.has_binding("user23")
        r.dispose()


def test_failover_on_timer_f_timeout(lab: Lab, logs: LogLines) -> None:
    sipp = Sipp(HERE / "silent.xml", lab.ports["silent"])
    try:
        with agent("user31", t1=0.05) as ua:  # Timer F = 64 * T1 = 3.2 s
            r = sipreg.Registerer(ua, expires=60, registrar="sip:timeout.example.test")
            r.register()
            assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k2']}"), r.responses
            # Timer F (when: core_scenarios) ended the first target's transaction
            # after Timer E had resent it.
            assert sipp.requests() >= 2, "the silent registrar got the REGISTER, resent"
            assert logs.find("failover", "Timer F")
            assert 408 not in [c for c, _ in r.responses]
            r.dispose()
    finally:
        sipp.stop()


def test_failover_on_503_without_retry_after(lab: Lab, logs: LogLines) -> None:
    sipp = Sipp(HERE / "reply_503.xml", lab.ports["busy"])
    try:
        with agent("user41") as ua:
            r = sipreg.Registerer(ua, expires=60, registrar="sip:busy.example.test")
            r.register()
            assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k2']}"), r.responses
            assert sipp.wait() == 0, "SIPp saw its REGISTER and sent the 503"
            assert [c for c, _ in r.responses][:1] == [503]
            assert logs.find("failover", "503 without Retry-After")
            r.dispose()
    finally:
        sipp.stop()


def test_primary_killed_fails_over_stays_then_returns_after_second_fails(lab: Lab) -> None:
    k3, k4 = lab.kam["k3"], lab.kam["k4"]
    first = f"udp:127.0.0.1:{lab.ports['k3']}"
    second = f"udp:127.0.0.1:{lab.ports['k4']}"
    with agent("user51") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:sticky.example.test")
        r.register()
        assert registered_at(r, first)
        # Registrar killed -> the next REGISTER lands on the second target.
        k3.stop()
        n = len(r.responses)
        r.register()
        assert wait_until(lambda: len(r.responses) > n and r.responses[-1][0] == 200
                          and target(r) == second), r.responses
        assert r.failure_count == 0, "failed over at once, not through the backoff"
        assert k4.has_binding("user51")
        # The first is back: the registerer stays on the second.
        k3.start()
        for _ in range(3):
            n = len(r.responses)
            r.register()
            assert wait_until(lambda: len(r.responses) > n and r.responses[-1][0] == 200)
            assert target(r) == second
        assert not k3.has_binding("user51")
        # Only when the second fails does it return to the first.
        k4.stop()
        n = len(r.responses)
        r.register()
        assert wait_until(lambda: len(r.responses) > n and r.responses[-1][0] == 200
                          and target(r) == first), r.responses
        assert k3.has_binding("user51")
        r.dispose()
    k4.start()


def test_ttl_expiry_re_resolves_a_changed_record(lab: Lab, logs: LogLines) -> None:
    # dnsmasq answers with TTL 0: every new REGISTER resolves again.
    with agent("user61") as ua:
        r = sipreg.Registerer(ua, expires=4, refresh_frequency=50,
                              registrar="sip:moving.example.test")
        r.register()
        assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k1']}")
        lab.moving_port = lab.ports["k2"]
        lab.restart_dns()
        # The automatic refresh finds the new record.
        assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k2']}"), (target(r), r.responses)
        assert lab.kam["k2"].has_binding("user61")
        assert logs.find("resolved moving.example.test", str(lab.ports["k2"]))
        r.dispose()


def test_no_srv_falls_back_to_a_record_on_port_5060(lab: Lab) -> None:
    # plain.example.test: no NAPTR, NXDOMAIN for the SRV names, one A record.
    with agent("user71") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:plain.example.test")
        r.register()
        assert registered_at(r, "udp:127.0.0.1:5060"), r.responses
        assert lab.kam["k5060"].has_binding("user71")
        r.dispose()


def test_explicit_port_skips_srv(lab: Lab) -> None:
    # SRV for example.test says k1 first; a port in the URI means A/AAAA only.
    port = lab.ports["k2"]
    with agent("user72") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar=f"sip:sip2.example.test:{port}")
        r.register()
        assert registered_at(r, f"udp:127.0.0.1:{port}"), r.responses
        r.dispose()


@pytest.mark.parametrize("name,why", [("nosuch.example.test", "nxdomain"),
                                      ("registrar.example.org", "refused")])
def test_unresolvable_name_fails_clearly(lab: Lab, logs: LogLines, name: str, why: str) -> None:
    with agent("user81") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar=f"sip:{name}", retry_base=30.0)
        r.register()
        assert r.wait_for(REG.UNREGISTERED, PATIENCE)
        assert r.last_response is not None and r.last_response[0] == 503
        assert r.next_retry is not None and r.next_retry > 10, "retried by the backoff"
        assert [line for line in logs.find("cannot resolve", name) if why in line.lower()], \
            logs.lines[-10:]
        # Why, without reading logs: a DNS failure naming the host and the answer.
        f = r.failure
        assert f is not None and f.kind == sipreg.FailureKind.DNS, f
        assert (f.status, f.reason) == (503, "Service Unavailable")
        assert f.detail.startswith(f"cannot resolve {name}: ") and why in f.detail.lower(), f
        r.dispose()


def test_register_wait_raises_unreachable_for_nxdomain(lab: Lab) -> None:
    with agent("user83") as ua:
        r = sipreg.Registerer(ua, expires=60, registrar="sip:nosuch.example.test",
                              retry_base=30.0)
        with pytest.raises(sipreg.RegistrarUnreachableError) as e:
            r.register(wait=10.0)
        assert e.value.failure.kind == sipreg.FailureKind.DNS
        assert "NXDOMAIN" in e.value.failure.detail
        assert e.value.next_retry is not None and e.value.next_retry > 10, "the backoff goes on"
        assert "retrying in" in str(e.value)
        r.dispose()


def test_api_calls_return_while_the_name_server_has_not_answered(lab: Lab,
                                                                logs: LogLines) -> None:
    """No lookup inside Registerer() / register(): with a name server that
    takes the query and never answers, both return, and only then does the
    query go unanswered: still Initial, no response. A lookup inside the call
    could only have returned after giving up (503)."""
    lab.stop_dns()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 53))
    silent.settimeout(PATIENCE)
    try:
        with agent("user82") as ua:
            r = sipreg.Registerer(ua, expires=60, registrar="sip:example.test")
            r.register()
            query, _ = silent.recvfrom(4096)  # the lookup runs now, off the caller's thread
            assert query, "a DNS query"
            assert r.state is REG.INITIAL and r.last_response is None, r.responses
            # Then the dead name server is given up on: a clear 503.
            silent.close()
            assert r.wait_for(REG.UNREGISTERED, PATIENCE)
            assert r.last_response is not None and r.last_response[0] == 503
            assert logs.find("cannot resolve", "example.test")
            assert r.failure is not None and r.failure.kind == sipreg.FailureKind.DNS
            r.dispose()
    finally:
        silent.close()
        lab.start_dns()


def test_network_changed_reads_resolv_conf_again(lab: Lab, logs: LogLines) -> None:
    # Inside the namespace /etc/resolv.conf is a bind mount of the
    # namespace's own file: rewriting it in place is what a new network does.
    conf = Path("/etc/resolv.conf")
    good = conf.read_text()
    assert "127.0.0.1" in good
    try:
        with agent("user91") as ua:
            # The resolver runs with the good name server first.
            r = sipreg.Registerer(ua, expires=60, registrar="sip:example.test")
            r.register()
            assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k1']}"), r.responses
            r.dispose()
            conf.write_text("nameserver 127.0.0.2\n")  # nothing answers DNS there
            ua.network_changed()
            r = sipreg.Registerer(ua, expires=60, registrar="sip:example.test", retry_base=30.0)
            r.register()
            assert r.wait_for(REG.UNREGISTERED, PATIENCE), "the new, dead name server is used"
            assert r.last_response is not None and r.last_response[0] == 503
            assert logs.find("cannot resolve", "example.test")
            r.dispose()
            conf.write_text(good)
            ua.network_changed()
            r = sipreg.Registerer(ua, expires=60, registrar="sip:example.test")
            r.register()
            assert registered_at(r, f"udp:127.0.0.1:{lab.ports['k1']}"), r.responses
            r.dispose()
    finally:
        conf.write_text(good)
