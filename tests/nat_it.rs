//! Issue 10 against real peers on loopback, through the C ABI: contact rewrite
//! through a UDP NAT relay that changes its source port (and back), no rewrite
//! with outbound, keep-alive intervals from Flow-Timer on UDP (STUN) and TCP
//! (CRLF), a missing pong and a STUN mapping change each re-registering on a
//! new flow (Kamailio, tests/kamailio/outbound.cfg); over TLS and secure
//! WebSocket the encrypted pings are answered and keep the flow; the rewrite loop guard,
//! 439 fallback and Service-Route/Path/GRUU (SIPp, tests/sipp/).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{free_port, fresh_user};
use support::logs;
use support::nat_capi;
use support::nat_peers::{OutboundKamailio, Seen, TcpWatch, UdpNat};

const INSTANCE: &str = "00000000-0000-4000-8000-0000000000a1";

fn ua(user: &str, pw: &str, transport: &str) -> Ua {
    Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(pw)
        .transport(transport)
        .timers(0.1, 0.8, 1.0)
        .shutdown_timeout(2.0)
        // Each test its own sockets: a failed flow replaces the socket for
        // every registerer on it, and the tests here run in parallel.
        .private_socket(true)
}

fn port_of(binding: &str) -> u16 {
    let after = binding.rsplit_once(':').map_or("", |(_, p)| p);
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn never_unregistered(r: &mut Reg) -> bool {
    !r.events().contains(&Ev::State(SIPREG_STATE_UNREGISTERED))
}

/// Starts of distinct keep-alives (a STUN retransmission repeats the bytes).
fn ping_times(seen: &[Seen], pred: impl Fn(&Seen) -> bool) -> Vec<Instant> {
    let mut out: Vec<Instant> = Vec::new();
    let mut last: Option<&[u8]> = None;
    for s in seen.iter().filter(|s| pred(s)) {
        let repeat = s.is_stun() && last == Some(s.bytes.as_slice());
        if !repeat {
            out.push(s.at);
        }
        last = Some(s.bytes.as_slice());
    }
    out
}

fn assert_gaps(times: &[Instant], lo: f64, hi: f64, what: &str) {
    assert!(times.len() >= 2, "{what}: only {} pings", times.len());
    let gaps: Vec<String> = times
        .windows(2)
        .map(|w| format!("{:.2}", (w[1] - w[0]).as_secs_f64()))
        .collect();
    println!("{what}: gaps {} s", gaps.join(", "));
    for w in times.windows(2) {
        let gap = (w[1] - w[0]).as_secs_f64();
        assert!(
            gap >= lo && gap <= hi,
            "{what}: gap {gap:.3} s outside [{lo}, {hi}]"
        );
    }
}

#[test]
fn udp_contact_rewrite_through_a_nat_that_rebinds_and_back() {
    let k = OutboundKamailio::start(30);
    let nat = UdpNat::new(k.addr(), 2);
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "udp");
    let mut r = Reg::new(
        &u,
        &Opts {
            expires: 4,
            refresh_frequency: 50,
            registrar: Some(format!("sip:127.0.0.1:{}", nat.addr.port())),
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(nat_capi::public_address(&r), None);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)));
    let [p0, p1] = [nat.upstream_ports[0], nat.upstream_ports[1]];
    let only = |p: u16| move |b: &[String]| b.len() == 1 && port_of(&b[0]) == p;
    let b = k
        .wait_bindings(&user, Duration::from_secs(3), only(p0))
        .unwrap_or_else(|b| panic!("binding not rewritten to the NAT port {p0}: {b:?}"));
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{p0}").as_str())
    );
    // The NAT rebinds: the next refresh (2 s) learns it and rewrites again.
    nat.switch(1);
    k.wait_bindings(&user, Duration::from_secs(5), only(p1))
        .unwrap_or_else(|b| panic!("not re-rewritten to {p1}: {b:?} (was {b:?})"));
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{p1}").as_str())
    );
    // And back to the first mapping.
    nat.switch(0);
    k.wait_bindings(&user, Duration::from_secs(5), only(p0))
        .unwrap_or_else(|b| panic!("not rewritten back to {p0}: {b:?}"));
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    // Every REGISTER kept the Call-ID; each rewrite removed the old contact in
    // the same request.
    let regs: Vec<String> = nat
        .seen()
        .iter()
        .filter(|s| s.is_register())
        .map(|s| String::from_utf8_lossy(&s.bytes).into_owned())
        .collect();
    let call_ids: std::collections::HashSet<&str> = regs
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Call-ID:")))
        .collect();
    assert_eq!(call_ids.len(), 1, "{call_ids:?}");
    let removals = regs
        .iter()
        .filter(|m| m.contains(&format!("@127.0.0.1:{p0}>;expires=0")))
        .count();
    assert!(removals >= 1, "old NAT contact removed with expires=0");
    assert_eq!(b.len(), 1);
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

#[test]
fn udp_outbound_stun_keepalive_no_rewrite_and_mapping_change_re_registers() {
    let k = OutboundKamailio::start(3);
    let nat = UdpNat::new(k.addr(), 2);
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "udp");
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{}", nat.addr.port())),
            instance_id: Some(INSTANCE.into()),
            reg_id: 1,
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)));
    let p0 = nat.upstream_ports[0];
    // The registrar saw the NAT port, but with outbound the contact stays.
    let first = k
        .wait_bindings(&user, Duration::from_secs(2), |b| b.len() == 1)
        .unwrap();
    assert!(first[0].contains(";ob"), "{first:?}");
    assert_ne!(
        port_of(&first[0]),
        p0,
        "no rewrite with outbound: {first:?}"
    );
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{p0}").as_str())
    );
    // STUN every 80-100 % of Flow-Timer 3 s, each answered (no re-REGISTER).
    std::thread::sleep(Duration::from_millis(9_000));
    let seen = nat.seen();
    let pings = ping_times(&seen, Seen::is_stun);
    assert_gaps(&pings, 2.3, 3.2, "STUN keep-alive");
    let registers = seen.iter().filter(|s| s.is_register()).count();
    assert_eq!(registers, 2, "401 + credentialed REGISTER only");
    // The NAT rebinds: the next STUN answer maps another port -> new flow.
    let switched = Instant::now();
    nat.switch(1);
    let end = Instant::now() + Duration::from_secs(5);
    let re = loop {
        if let Some(s) = nat
            .seen()
            .into_iter()
            .find(|s| s.is_register() && s.at > switched)
        {
            break s;
        }
        assert!(
            Instant::now() < end,
            "no re-REGISTER after the mapping changed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "udp: re-REGISTER {:.3} s after the NAT rebound",
        (re.at - switched).as_secs_f64()
    );
    assert!((re.at - switched) < Duration::from_millis(3_300));
    let stun_after: Vec<Instant> = nat
        .seen()
        .iter()
        .filter(|s| s.is_stun() && s.at > switched && s.at <= re.at)
        .map(|s| s.at)
        .collect();
    assert!(
        !stun_after.is_empty(),
        "the STUN answer revealed the change"
    );
    let now = k
        .wait_bindings(&user, Duration::from_secs(3), |b| {
            b.len() == 1 && b[0] != first[0]
        })
        .unwrap_or_else(|b| panic!("binding not moved to the new flow: {b:?}"));
    assert!(now[0].contains(";ob"));
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    // Why it re-registered: a FLOW failure (no status), cleared by the 2xx
    // on the new flow.
    let flow = r.events().into_iter().find_map(|e| match e {
        Ev::Failed(kind, status, detail) => Some((kind, status, detail)),
        _ => None,
    });
    let (kind, status, detail) = flow.expect("a FAILED event");
    assert_eq!((kind, status), (SIPREG_FAILURE_FLOW, 0), "{detail}");
    assert!(detail.contains("STUN mapped address changed"), "{detail}");
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

#[test]
fn tcp_outbound_crlf_keepalive_and_missing_pong_makes_a_new_flow() {
    stream_keepalive_and_missing_pong("tcp");
}

#[test]
fn ws_outbound_ping_frames_and_missing_pong_makes_a_new_flow() {
    stream_keepalive_and_missing_pong("ws");
}

/// Outbound over a stream with Flow-Timer 3: pings (CRLFCRLF on TCP, PING
/// frames on WebSocket) every 2.4-3 s, each answered; then the relay swallows
/// the answers and the library registers on a new connection 10 s after the
/// first unanswered ping.
fn stream_keepalive_and_missing_pong(transport: &str) {
    let k = OutboundKamailio::start(3);
    let server_port = if transport == "ws" { k.ws_port } else { k.port };
    let watch = TcpWatch::new(std::net::SocketAddr::from(([127, 0, 0, 1], server_port)));
    let is_ping = |s: &Seen| {
        if transport == "ws" {
            s.is_ws_ping()
        } else {
            s.is_crlf_ping()
        }
    };
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, transport);
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(format!(
                "sip:127.0.0.1:{};transport={transport}",
                watch.addr.port()
            )),
            instance_id: Some(INSTANCE.into()),
            reg_id: 1,
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)));
    let first = k
        .wait_bindings(&user, Duration::from_secs(2), |b| b.len() == 1)
        .unwrap();
    assert!(
        first[0].contains(&format!("transport={transport}")) && first[0].contains(";ob"),
        "{first:?}"
    );
    std::thread::sleep(Duration::from_millis(9_000));
    let pings = ping_times(&watch.seen(), |s| is_ping(s) && s.via == 1);
    assert_gaps(&pings, 2.3, 3.2, &format!("{transport} keep-alive"));
    let pongs = watch.pongs.lock().unwrap().len();
    assert!(
        pongs >= pings.len(),
        "{pongs} pongs for {} pings",
        pings.len()
    );
    // Pongs stop arriving: 10 s after the first unanswered ping the library
    // opens a new connection and registers on it.
    let cut = Instant::now();
    watch.drop_pongs_on(1);
    let end = Instant::now() + Duration::from_secs(16);
    let is_register = |s: &Seen| {
        if transport == "ws" {
            // A masked text frame: its payload is not readable here, but the
            // first data frame on a new connection is the REGISTER.
            s.bytes.first() == Some(&0x81)
        } else {
            s.is_register()
        }
    };
    let re = loop {
        if let Some(s) = watch
            .seen()
            .into_iter()
            .find(|s| s.via == 2 && is_register(s))
        {
            break s;
        }
        assert!(Instant::now() < end, "no REGISTER on a new connection");
        std::thread::sleep(Duration::from_millis(20));
    };
    let unanswered = watch
        .seen()
        .into_iter()
        .find(|s| s.via == 1 && is_ping(s) && s.at > cut)
        .expect("a ping after the cut");
    let waited = (re.at - unanswered.at).as_secs_f64();
    println!("{transport}: REGISTER on a new connection {waited:.3} s after the unanswered ping");
    assert!(
        (9.9..=10.8).contains(&waited),
        "re-REGISTER {waited:.3} s after the unanswered ping"
    );
    let now = k
        .wait_bindings(&user, Duration::from_secs(3), |b| {
            b.len() == 1 && b[0] != first[0]
        })
        .unwrap_or_else(|b| panic!("binding not on the new connection: {b:?}"));
    assert!(now[0].contains(";ob"));
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    // Why it re-registered: a FLOW failure (no status), cleared by the 2xx
    // on the new flow.
    let flow = r.events().into_iter().find_map(|e| match e {
        Ev::Failed(kind, status, detail) => Some((kind, status, detail)),
        _ => None,
    });
    let (kind, status, detail) = flow.expect("a FAILED event");
    assert_eq!((kind, status), (SIPREG_FAILURE_FLOW, 0), "{detail}");
    assert!(detail.contains("no keep-alive answer"), "{detail}");
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

#[test]
fn tls_outbound_crlf_pongs_keep_the_flow() {
    secure_keepalive_keeps_the_flow("tls");
}

#[test]
fn wss_outbound_ping_frames_keep_the_flow() {
    secure_keepalive_keeps_the_flow("wss");
}

/// Outbound over TLS / secure WebSocket with Flow-Timer 3: the pings go out
/// inside the encrypted stream every 2.4-3 s and the registrar's answers
/// reach the keep-alive (a relay cannot read them here): for 16 s, longer
/// than the first ping plus the 10 s pong timeout, the flow is never declared
/// failed, the binding stays on the first connection and nothing unregisters.
fn secure_keepalive_keeps_the_flow(transport: &str) {
    logs::capture_logs();
    let k = OutboundKamailio::start_tls(3);
    let tls = k.tls.as_ref().expect("tls listeners");
    let port = if transport == "wss" {
        tls.wss_port
    } else {
        tls.tls_port
    };
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, transport).tls_ca_file(&tls.ca_file);
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{port};transport={transport}")),
            instance_id: Some(INSTANCE.into()),
            reg_id: 1,
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)),
        "{:?} {}",
        r.events(),
        k.log()
    );
    let first = k
        .wait_bindings(&user, Duration::from_secs(2), |b| b.len() == 1)
        .unwrap();
    assert!(
        first[0].contains(&format!("transport={transport}")) && first[0].contains(";ob"),
        "{first:?}"
    );
    std::thread::sleep(Duration::from_secs(16));
    let target = format!("-> 127.0.0.1:{port}");
    let pings: Vec<String> = logs::log_lines("keep-alive")
        .into_iter()
        .filter(|l| l.ends_with(&target))
        .collect();
    assert!(
        pings.len() >= 5,
        "{transport}: {} keep-alives: {pings:?}",
        pings.len()
    );
    let failed = logs::log_lines(&format!("-> 127.0.0.1:{port} failed"));
    assert!(failed.is_empty(), "{transport}: {failed:?}");
    assert_eq!(k.bindings(&user), first, "{transport}: binding moved");
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    println!(
        "{transport}: {} keep-alives in 16 s, all answered",
        pings.len()
    );
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

#[test]
fn plain_udp_nat_keepalive_without_outbound() {
    let k = OutboundKamailio::start(30);
    let nat = UdpNat::new(k.addr(), 1);
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "udp");
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{}", nat.addr.port())),
            retry: false,
            ..Default::default()
        },
    );
    // Set after the registerer exists: it applies from the next 2xx.
    nat_capi::keepalive(&u, 1);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(3_600));
    let pings = ping_times(&nat.seen(), Seen::is_crlf);
    assert!(pings.len() >= 3, "{} CRLF keep-alives", pings.len());
    assert_gaps(&pings, 0.9, 1.2, "plain keep-alive");
    assert!(never_unregistered(&mut r));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

#[test]
fn contact_rewrite_off_leaves_the_contact() {
    let k = OutboundKamailio::start(30);
    let nat = UdpNat::new(k.addr(), 1);
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "udp");
    nat_capi::contact_rewrite(&u, false);
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{}", nat.addr.port())),
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(500));
    let b = k.bindings(&user);
    assert_eq!(b.len(), 1);
    assert_ne!(port_of(&b[0]), nat.upstream_ports[0]);
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{}", nat.upstream_ports[0]).as_str())
    );
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, Duration::from_secs(3));
}

// ----- SIPp scenarios --------------------------------------------------------

struct Sipp {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Sipp {
    fn start(scenario: &str) -> Sipp {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sipreg-nat-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(format!("{scenario}.xml"));
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1"])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-trace_msg", "-message_file", &f("messages.log")])
            .args(["-trace_err", "-error_file", &f("errors.log")])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("sipp (apt-get install sip-tester; tests/setup-machine.sh does)");
        let want = format!(":{port:04X} ");
        let end = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string("/proc/net/udp")
            .unwrap_or_default()
            .contains(&want)
        {
            assert!(Instant::now() < end, "sipp did not bind {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Sipp { port, dir, child }
    }

    fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// Waits for SIPp's verdict; panics with its logs unless it passed.
    fn passed(mut self, within: Duration) {
        let end = Instant::now() + within;
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        assert_eq!(
            code,
            Some(0),
            "sipp failed\n-- errors\n{}\n-- messages\n{}\n-- stdout\n{}",
            read("errors.log"),
            read("messages.log"),
            read("stdout.log")
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sipp_ua() -> Ua {
    Ua::new("sip:alice@127.0.0.1")
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0)
}

#[test]
fn sipp_439_registers_again_without_outbound() {
    let sipp = Sipp::start("outbound_439");
    let u = sipp_ua();
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(sipp.registrar()),
            instance_id: Some(INSTANCE.into()),
            reg_id: 1,
            expires: 60,
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(3)));
    let responses: Vec<u16> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            Ev::Response(c, _) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(responses, [439, 200]);
    sipp.passed(Duration::from_secs(6));
}

#[test]
fn sipp_rewrite_loop_guard() {
    let sipp = Sipp::start("rewrite_loop");
    let u = sipp_ua();
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(sipp.registrar()),
            expires: 60,
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(3)));
    sipp.passed(Duration::from_secs(8));
    // The address the registrar reported last, though not rewritten to.
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some("127.0.0.1:40002")
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert!(never_unregistered(&mut r));
}

#[test]
fn sipp_service_route_path_and_gruu_exposed_then_cleared() {
    let sipp = Sipp::start("routing_facts");
    let u = sipp_ua();
    let mut r = Reg::new(
        &u,
        &Opts {
            registrar: Some(sipp.registrar()),
            instance_id: Some("00000000-0000-4000-8000-000000000010".into()),
            expires: 60,
            retry: false,
            path_gruu: true,
            ..Default::default()
        },
    );
    assert!(nat_capi::service_route(&r).is_empty());
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(3)));
    assert_eq!(
        nat_capi::service_route(&r),
        [
            "sip:orig@scscf.example.test;lr",
            "sip:mmtel.example.test;lr",
            "sip:third.example.test;lr"
        ]
    );
    assert_eq!(nat_capi::path(&r), ["sip:pcscf.example.test;lr;ob"]);
    assert_eq!(
        nat_capi::pub_gruu(&r).as_deref(),
        Some("sip:alice@example.test;gr=urn:uuid:00000000-0000-4000-8000-000000000010")
    );
    assert_eq!(
        nat_capi::temp_gruu(&r).as_deref(),
        Some("sip:tgruu.7deacf@example.test;gr")
    );
    // A buffer one byte short is refused and says what it needs.
    let gruu_len = nat_capi::pub_gruu(&r).unwrap().len();
    let (rc, why, need) = nat_capi::pub_gruu_into(&r, gruu_len);
    assert_eq!(rc, SIPREG_ERR_BUFFER_TOO_SMALL);
    assert_eq!(need, gruu_len + 1, "the size needed, counting the NUL");
    assert!(
        why.contains(&format!("{} bytes needed", gruu_len + 1)),
        "{why}"
    );
    assert_eq!(nat_capi::pub_gruu_into(&r, gruu_len + 1).0, SIPREG_OK);
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, Duration::from_secs(3)));
    assert!(nat_capi::service_route(&r).is_empty());
    assert!(nat_capi::path(&r).is_empty());
    assert_eq!(nat_capi::pub_gruu(&r), None);
    assert_eq!(nat_capi::temp_gruu(&r), None);
    sipp.passed(Duration::from_secs(5));
}
