//! Issue 10 against real peers on loopback, through the C ABI: contact rewrite
//! through a UDP NAT relay that changes its source port (and back), no rewrite
//! with outbound, keep-alives from Flow-Timer on UDP (STUN) and TCP (CRLF)
//! keeping the flow, a missing pong and a STUN mapping change each
//! re-registering on a new flow (Kamailio, tests/kamailio/outbound.cfg); over
//! TLS and secure WebSocket the encrypted pings are answered and keep the
//! flow; the rewrite loop guard, 439 fallback and Service-Route/Path/GRUU
//! (SIPp, tests/sipp/).
//!
//! Outcomes only (what was sent, in which order, which state and binding
//! resulted): when a keep-alive or a re-REGISTER is due is the core's rule,
//! tested on the simulated clock in tests/nat_core.rs.

mod support;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::fresh_user;
use support::logs;
use support::nat_capi;
use support::nat_peers::{OutboundKamailio, Seen, TcpWatch, UdpNat};
use support::sipp::Sipp;
use support::wait::{self, PATIENCE};
use support::wire::Request;

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

/// How many distinct keep-alives `seen` holds (a STUN retransmission repeats the bytes).
fn pings(seen: &[Seen], pred: impl Fn(&Seen) -> bool) -> usize {
    let mut n = 0;
    let mut last: Option<&[u8]> = None;
    for s in seen.iter().filter(|s| pred(s)) {
        if !(s.is_stun() && last == Some(s.bytes.as_slice())) {
            n += 1;
        }
        last = Some(s.bytes.as_slice());
    }
    n
}

/// Pings it takes to cover the 10 s pong timeout: at 80-100 % of Flow-Timer
/// 3 s they are at least 2.4 s apart, so the 6th comes 12 s after the first.
/// Had any of them gone unanswered, the flow would have failed before it.
const PINGS_PAST_THE_PONG_TIMEOUT: usize = 6;

/// The REGISTERs a relay passed on, read with the tests' request reader.
fn registers(seen: &[Seen]) -> Vec<Request> {
    seen.iter()
        .filter(|s| s.is_register())
        .map(|s| Request::read(&String::from_utf8_lossy(&s.bytes)))
        .collect()
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    let [p0, p1] = [nat.upstream_ports[0], nat.upstream_ports[1]];
    let only = |p: u16| move |b: &[String]| b.len() == 1 && port_of(&b[0]) == p;
    let b = k
        .wait_bindings(&user, PATIENCE, only(p0))
        .unwrap_or_else(|b| panic!("binding not rewritten to the NAT port {p0}: {b:?}"));
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{p0}").as_str())
    );
    // The NAT rebinds: the next refresh learns it and rewrites again.
    nat.switch(1);
    k.wait_bindings(&user, PATIENCE, only(p1))
        .unwrap_or_else(|b| panic!("not re-rewritten to {p1}: {b:?} (was {b:?})"));
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{p1}").as_str())
    );
    // And back to the first mapping.
    nat.switch(0);
    k.wait_bindings(&user, PATIENCE, only(p0))
        .unwrap_or_else(|b| panic!("not rewritten back to {p0}: {b:?}"));
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    // Every REGISTER kept the Call-ID; each rewrite removed the old contact in
    // the same request.
    let regs = registers(&nat.seen());
    let call_ids: std::collections::HashSet<Option<&str>> =
        regs.iter().map(|m| m.header("Call-ID")).collect();
    assert_eq!(call_ids.len(), 1, "{call_ids:?}");
    let removals = regs
        .iter()
        .filter(|m| {
            m.all("Contact")
                .iter()
                .any(|c| c.ends_with(&format!("@127.0.0.1:{p0}>;expires=0")))
        })
        .count();
    assert!(removals >= 1, "old NAT contact removed with expires=0");
    assert_eq!(b.len(), 1);
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    let p0 = nat.upstream_ports[0];
    // The registrar saw the NAT port, but with outbound the contact stays.
    let first = k.wait_bindings(&user, PATIENCE, |b| b.len() == 1).unwrap();
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
    // STUN keep-alives (Flow-Timer 3 s), each answered: no re-REGISTER.
    let kept = wait::until(PATIENCE, || {
        pings(&nat.seen(), Seen::is_stun) >= PINGS_PAST_THE_PONG_TIMEOUT
    });
    let seen = nat.seen();
    assert!(kept, "{} STUN keep-alives", pings(&seen, Seen::is_stun));
    assert_eq!(
        registers(&seen).len(),
        2,
        "401 + credentialed REGISTER only"
    );
    // The NAT rebinds: the next STUN answer maps another port -> new flow.
    let switched = nat.seen().len();
    nat.switch(1);
    let re = wait::until_some(PATIENCE, || {
        nat.seen().iter().skip(switched).position(Seen::is_register)
    })
    .expect("a re-REGISTER after the mapping changed");
    assert!(
        nat.seen()[switched..switched + re]
            .iter()
            .any(Seen::is_stun),
        "the STUN answer revealed the change"
    );
    let now = k
        .wait_bindings(&user, PATIENCE, |b| b.len() == 1 && b[0] != first[0])
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
    // Kamailio holds the new binding before its 200 reaches us: wait for
    // the 2xx on the new flow to clear the failure.
    wait::until(PATIENCE, || r.failure().0 == SIPREG_FAILURE_NONE);
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
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
/// frames on WebSocket), each answered; then the relay swallows the answers
/// and, after an unanswered ping, the library registers on a new connection
/// (10 s after it: nat_core::missing_pong_fails_the_flow_and_re_registers_within_ten_seconds).
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    let first = k.wait_bindings(&user, PATIENCE, |b| b.len() == 1).unwrap();
    assert!(
        first[0].contains(&format!("transport={transport}")) && first[0].contains(";ob"),
        "{first:?}"
    );
    let on_first = |s: &Seen| is_ping(s) && s.via == 1;
    let answered = wait::until(PATIENCE, || {
        let n = pings(&watch.seen(), on_first);
        n >= 3 && watch.pongs_on(1) >= n
    });
    assert!(
        answered,
        "{transport}: {} pings, {} pongs",
        pings(&watch.seen(), on_first),
        watch.pongs_on(1)
    );
    assert_eq!(watch.connections(), 1, "{transport}: the flow kept");
    // Pongs stop arriving: after the first unanswered ping the library opens
    // a new connection and registers on it.
    let cut = watch.seen().len();
    watch.drop_pongs_on(1);
    let is_register = |s: &Seen| {
        if transport == "ws" {
            // A masked text frame: its payload is not readable here, but the
            // first data frame on a new connection is the REGISTER.
            s.bytes.first() == Some(&0x81)
        } else {
            s.is_register()
        }
    };
    let re = wait::until_some(PATIENCE, || {
        watch
            .seen()
            .iter()
            .position(|s| s.via == 2 && is_register(s))
    })
    .expect("a REGISTER on a new connection");
    assert!(re > cut, "{transport}: a second connection before the cut");
    assert!(
        watch.seen()[cut..re].iter().any(on_first),
        "{transport}: an unanswered ping came before the new connection"
    );
    let now = k
        .wait_bindings(&user, PATIENCE, |b| b.len() == 1 && b[0] != first[0])
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
    // Kamailio holds the new binding before its 200 reaches us: wait for
    // the 2xx on the new flow to clear the failure.
    wait::until(PATIENCE, || r.failure().0 == SIPREG_FAILURE_NONE);
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
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
/// inside the encrypted stream and the registrar's answers reach the
/// keep-alive (a relay cannot read them here): over enough pings to outlast
/// the 10 s pong timeout, the flow is never declared failed, the binding
/// stays on the first connection and nothing unregisters.
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
        r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE),
        "{:?} {}",
        r.events(),
        k.log()
    );
    let first = k.wait_bindings(&user, PATIENCE, |b| b.len() == 1).unwrap();
    assert!(
        first[0].contains(&format!("transport={transport}")) && first[0].contains(";ob"),
        "{first:?}"
    );
    let target = format!("-> 127.0.0.1:{port}");
    let keepalives = || -> Vec<String> {
        logs::log_lines("keep-alive")
            .into_iter()
            .filter(|l| l.ends_with(&target))
            .collect()
    };
    let enough = wait::until(PATIENCE * 2, || {
        keepalives().len() >= PINGS_PAST_THE_PONG_TIMEOUT
    });
    let pings = keepalives();
    assert!(
        enough,
        "{transport}: {} keep-alives: {pings:?}",
        pings.len()
    );
    let failed = logs::log_lines(&format!("-> 127.0.0.1:{port} failed"));
    assert!(failed.is_empty(), "{transport}: {failed:?}");
    assert_eq!(k.bindings(&user), first, "{transport}: binding moved");
    assert!(never_unregistered(&mut r), "{:?}", r.events());
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    // Every second (nat_core::keepalive_option_without_flow_timer_and_plain_nat_keepalive).
    let kept = wait::until(PATIENCE, || pings(&nat.seen(), Seen::is_crlf) >= 3);
    assert!(
        kept,
        "{} CRLF keep-alives",
        pings(&nat.seen(), Seen::is_crlf)
    );
    assert!(never_unregistered(&mut r));
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    let b = k.bindings(&user);
    assert_eq!(b.len(), 1);
    assert_ne!(port_of(&b[0]), nat.upstream_ports[0]);
    assert_eq!(
        nat_capi::public_address(&r).as_deref(),
        Some(format!("127.0.0.1:{}", nat.upstream_ports[0]).as_str())
    );
    // A rewrite would go out with the 200 (before this un-REGISTER could
    // start): the registrar gets exactly 401, credentialed REGISTER and the
    // un-REGISTER, all with the local contact.
    assert_eq!(r.unregister(false), SIPREG_OK, "no rewrite in flight");
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, PATIENCE));
    let regs = registers(&nat.seen());
    assert_eq!(regs.len(), 3, "{regs:#?}");
    assert!(
        regs.iter()
            .all(|m| m.contact_uri() == regs[0].contact_uri()),
        "{regs:#?}"
    );
    let _ = r.dispose();
    r.wait_state(SIPREG_STATE_TERMINATED, PATIENCE);
}

// ----- SIPp scenarios --------------------------------------------------------

fn sipp_ua() -> Ua {
    Ua::new("sip:alice@127.0.0.1")
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0)
}

#[test]
fn sipp_439_registers_again_without_outbound() {
    let sipp = Sipp::start("outbound_439", false, 1);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    let responses: Vec<u16> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            Ev::Response(c, _) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(responses, [439, 200]);
    sipp.passed(PATIENCE);
}

#[test]
fn sipp_rewrite_loop_guard() {
    let sipp = Sipp::start("rewrite_loop", false, 1);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
    sipp.passed(PATIENCE);
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
    let sipp = Sipp::start("routing_facts", false, 1);
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
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, PATIENCE));
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
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, PATIENCE));
    assert!(nat_capi::service_route(&r).is_empty());
    assert!(nat_capi::path(&r).is_empty());
    assert_eq!(nat_capi::pub_gruu(&r), None);
    assert_eq!(nat_capi::temp_gruu(&r), None);
    sipp.passed(PATIENCE);
}
