//! The contact answers, against real peers: a Kamailio (tests/kamailio/contact.cfg)
//! that routes requests to registered contacts and pings them, SIPp as a
//! second client or as the far end of the application's own MESSAGE, the
//! NAT relay of the outbound tests, and a WebSocket server that checks the
//! Origin of the upgrade. Everything through the C ABI.
//!
//! - Kamailio pings registered contacts (nathelper SIP pings over UDP,
//!   usrloc keep-alives over TCP) and removes silent ones: the binding
//!   survives three times the timeout, and is removed when the contact
//!   stops answering OPTIONS.
//! - MESSAGE and INFO from SIPp through Kamailio reach the listener over
//!   UDP, TCP, TLS and WS, and over an outbound flow through the NAT
//!   relay; the answers reach SIPp. Without a listener: 405 with Allow.
//!   An unknown contact user: 404. `send` carries an application-built
//!   MESSAGE over the registered flow.
//! - The WebSocket upgrade carries Origin (Kamailio here refuses it without).

mod support;

use std::time::{Duration, Instant};

use sipreg::ffi::requests::*;
use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::contact::{flow_id, respond, send, set_str, AutoAnswer, Listener};
use support::kamailio::free_port;
use support::nat_peers::OutboundKamailio;
use support::nat_peers::{TcpWatch, UdpNat};
use support::sipp::Sipp;
use support::wait::{self, PATIENCE};

const WAIT: Duration = Duration::from_secs(15);

fn answered() -> Option<AutoAnswer> {
    Some(AutoAnswer {
        status: 200,
        headers: "X-Answered-By: sipreg-test\r\n".into(),
    })
}

/// alice on `k` over `transport`, registered (at `opts.registrar` when set,
/// e.g. through a relay); with `configure` applied to the user agent before
/// the registerer is made.
fn alice(
    k: &OutboundKamailio,
    transport: &str,
    configure: impl FnOnce(&Ua),
    opts: Opts,
) -> (Ua, Reg) {
    let mut ua = Ua::new("sip:alice@127.0.0.1")
        .password("alicepw")
        .transport(transport)
        .timers(0.1, 0.8, 1.0);
    if let Some(t) = &k.tls {
        ua = ua.tls_ca_file(&t.ca_file);
    }
    configure(&ua);
    let registrar = opts.registrar.clone().unwrap_or_else(|| match transport {
        "udp" | "tcp" => k.registrar(transport),
        "tls" => format!(
            "sip:127.0.0.1:{};transport=tls",
            k.tls.as_ref().unwrap().tls_port
        ),
        "ws" => format!("sip:127.0.0.1:{};transport=ws", k.ws_port),
        "wss" => format!(
            "sip:127.0.0.1:{};transport=wss",
            k.tls.as_ref().unwrap().wss_port
        ),
        t => panic!("transport {t}"),
    });
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(registrar),
            retry: false,
            ..opts
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "alice over {transport}: {:?}\n{}",
        r.events(),
        k.log()
    );
    (ua, r)
}

/// SIPp's MESSAGE and INFO through `k` to alice must be answered 200 by
/// the listener; returns what the listener got.
fn message_and_info(k: &OutboundKamailio, l: &Listener) -> Vec<support::contact::Got> {
    let sipp = Sipp::client(
        "contact_message_info",
        &format!("127.0.0.1:{}", k.port),
        "alice",
        free_port(),
    );
    let end = sipp.finish(WAIT * 2);
    assert_eq!(
        end.code,
        Some(0),
        "SIPp's MESSAGE/INFO were answered 200 by alice:\n{}\n{}",
        end.report(),
        k.log()
    );
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 2 && Instant::now() < deadline {
        if let Some(g) = l.next(Duration::from_millis(200)) {
            got.push(g);
        }
    }
    got
}

fn check_message_and_info(got: &[support::contact::Got], r: &Reg, transport: &str) {
    let methods: Vec<&str> = got.iter().map(|g| g.method.as_str()).collect();
    assert_eq!(methods, ["MESSAGE", "INFO"], "over {transport}");
    let flow = flow_id(r);
    assert_ne!(flow, 0);
    for g in got {
        assert_eq!(g.flow_id, flow, "over the registered flow ({transport})");
        assert!(g.flow.starts_with(&format!("{transport}:")), "{}", g.flow);
    }
    assert_eq!(got[0].body(), b"hello alice, this is sipp\r\n");
    assert!(got[1].text().contains("Signal=5"));
}

#[test]
fn message_and_info_reach_the_listener_over_udp_and_tcp() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    for transport in ["udp", "tcp"] {
        let (ua, r) = alice(&k, transport, |_| {}, Opts::default());
        let l = Listener::install(&ua, answered());
        let got = message_and_info(&k, &l);
        check_message_and_info(&got, &r, transport);
        let st = ua.stats();
        assert!(st.requests >= 2 && st.answered >= 2, "{st:?}");
        assert_eq!(r.dispose(), SIPREG_OK);
    }
}

#[test]
fn message_and_info_reach_the_listener_over_tls_and_ws() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, true, &[]);
    for transport in ["tls", "ws", "wss"] {
        let (ua, r) = alice(&k, transport, |_| {}, Opts::default());
        let l = Listener::install(&ua, answered());
        let got = message_and_info(&k, &l);
        check_message_and_info(&got, &r, transport);
        assert_eq!(r.dispose(), SIPREG_OK);
    }
    // Kamailio here refuses an upgrade without Origin: ours carried the default one.
    let log = k.log();
    assert!(
        log.contains("WebSocket upgrade with Origin http://127.0.0.1"),
        "{log}"
    );
    assert!(
        log.contains("WebSocket upgrade with Origin https://127.0.0.1"),
        "{log}"
    );
    assert!(!log.contains("without Origin refused"), "{log}");
}

#[test]
fn a_set_ws_origin_is_sent() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    let (ua, r) = alice(
        &k,
        "ws",
        |ua| {
            assert_eq!(
                set_str(
                    ua,
                    sipreg_user_agent_set_ws_origin,
                    Some("https://app.example.test")
                ),
                SIPREG_OK
            );
        },
        Opts::default(),
    );
    assert!(
        k.log()
            .contains("WebSocket upgrade with Origin https://app.example.test"),
        "{}",
        k.log()
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    drop(ua);
}

#[test]
fn without_a_listener_a_message_gets_405_and_an_unknown_user_404() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    let (ua, r) = alice(&k, "udp", |_| {}, Opts::default());
    let sipp = Sipp::client(
        "contact_expect_405",
        &format!("127.0.0.1:{}", k.port),
        "alice",
        free_port(),
    );
    let end = sipp.finish(WAIT * 2);
    assert_eq!(
        end.code,
        Some(0),
        "405 with Allow: OPTIONS\n{}",
        end.report()
    );
    // Straight to our contact, for a user we do not have.
    let contact = r.contacts()[0].clone();
    let hostport = contact
        .split('@')
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let sipp = Sipp::client("contact_expect_404", &hostport, "mallory", free_port());
    let end = sipp.finish(WAIT * 2);
    assert_eq!(end.code, Some(0), "404 from {hostport}\n{}", end.report());
    let st = ua.stats();
    assert!(st.requests >= 2 && st.answered >= 2, "{st:?}");
    assert_eq!(r.dispose(), SIPREG_OK);
}

#[test]
fn the_application_sends_a_message_over_the_registered_flow_and_hears_the_answer() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    for transport in ["udp", "tcp"] {
        let (ua, r) = alice(&k, transport, |_| {}, Opts::default());
        let l = Listener::install(&ua, None);
        let port = free_port();
        let far = Sipp::start_on(port, "contact_uas_message", false, 1, &[]);
        let flow = flow_id(&r);
        assert_ne!(flow, 0);
        // Our address on the flow, for the Via.
        let flow_text = r.flow();
        let local = flow_text.split(':').skip(1).collect::<Vec<_>>().join(":");
        let local = local.split(" -> ").next().unwrap().to_owned();
        let body = "sent over the flow";
        let msg = format!(
            "MESSAGE sip:sipp@127.0.0.1:{port} SIP/2.0\r\n\
Via: SIP/2.0/{} {local};branch=z9hG4bKappmsg{port};rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:127.0.0.1:{};transport={transport};lr>\r\n\
From: <sip:alice@127.0.0.1>;tag=app{port}\r\n\
To: <sip:sipp@127.0.0.1:{port}>\r\n\
Call-ID: app-{port}@127.0.0.1\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: {}\r\n\r\n{body}",
            transport.to_uppercase(),
            k.port,
            body.len()
        );
        assert_eq!(send(&ua, flow, msg.as_bytes()), SIPREG_OK);
        let end = far.finish(WAIT);
        assert_eq!(
            end.code,
            Some(0),
            "SIPp got the MESSAGE over {transport}\n{}\n{}",
            end.report(),
            k.log()
        );
        let answer = l
            .next_of("MESSAGE", WAIT)
            .expect("the 200 reached the listener");
        assert!(
            answer.text().starts_with("SIP/2.0 200"),
            "{}",
            answer.text()
        );
        assert_eq!(answer.flow_id, flow);
        assert_eq!(r.dispose(), SIPREG_OK);
    }
}

/// Kamailio's keep-alive timeout in the ping tests, seconds.
const KA_TIMEOUT: u64 = 6;

/// Whether `k` holds a binding for alice's `contact` (same user, host and port).
fn holds(k: &OutboundKamailio, contact: &str) -> bool {
    let key = contact.split(';').next().unwrap_or(contact);
    k.bindings("alice")
        .iter()
        .any(|a| a.split(';').next() == Some(key))
}

/// alice registers on `k` (which pings its contacts and removes the silent
/// ones after KA_TIMEOUT s) over `transport`. Answering: the binding is
/// still there after three times the timeout, and OPTIONS did arrive. Not
/// answering (OPTIONS handed to a listener that never answers): the
/// binding is removed.
fn pinged_binding_survives_only_when_answered(k: &OutboundKamailio, transport: &str) {
    let (ua, r) = alice(k, transport, |_| {}, Opts::default());
    let contact = r.contacts()[0].clone();
    // Kamailio pings every 2 s: answering 3 * KA_TIMEOUT / 2 + 1 of its
    // pings spans three times its timeout, with the binding there all along.
    let want = ua.stats().answered + 3 * KA_TIMEOUT / 2 + 1;
    let give_up = Instant::now() + Duration::from_secs(20 * KA_TIMEOUT);
    loop {
        let answered = ua.stats().answered;
        assert!(
            holds(k, &contact),
            "over {transport}: binding {contact} gone after {answered} answered pings: {:?}\n{}",
            k.bindings("alice"),
            k.log()
        );
        if answered >= want {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "over {transport}: only {answered} of Kamailio's pings answered\n{}",
            k.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let st = ua.stats();
    assert!(
        st.requests >= 3 && st.answered >= 3,
        "over {transport}: Kamailio's OPTIONS arrived and were answered: {st:?}"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);

    // Answering switched off: OPTIONS go to a listener that never answers.
    assert_eq!(sipreg_user_agent_set_answer_options(ua.0, false), SIPREG_OK);
    let l = Listener::install(&ua, None);
    let gone = k.wait_bindings("alice", Duration::from_secs(4 * KA_TIMEOUT), |_| {
        !holds(k, &contact)
    });
    assert!(
        gone.is_ok(),
        "over {transport}: a silent contact is removed: {gone:?}\n{}",
        k.log()
    );
    assert!(
        l.drain().iter().any(|g| g.method == "OPTIONS"),
        "the pings reached the listener, which did not answer"
    );
    drop(l);
    assert_eq!(r.dispose(), SIPREG_OK);
}

#[test]
fn nathelper_pings_keep_a_udp_binding_that_answers() {
    let timeout = format!("NH_TIMEOUT={KA_TIMEOUT}");
    let k = OutboundKamailio::launch_cfg(
        "contact.cfg",
        30,
        false,
        &["WITH_NH_PING", "NATPING_INTERVAL=2", &timeout],
    );
    pinged_binding_survives_only_when_answered(&k, "udp");
}

// One registrar each, so the two transports (about 30 s of Kamailio's
// timers each) run side by side.
#[test]
fn usrloc_keepalives_keep_a_tcp_binding_that_answers() {
    usrloc_keepalives_keep_a_binding_that_answers("tcp");
}

#[test]
fn usrloc_keepalives_keep_a_udp_binding_that_answers() {
    usrloc_keepalives_keep_a_binding_that_answers("udp");
}

fn usrloc_keepalives_keep_a_binding_that_answers(transport: &str) {
    let timeout = format!("UL_KA_TIMEOUT={KA_TIMEOUT}");
    let k = OutboundKamailio::launch_cfg(
        "contact.cfg",
        30,
        false,
        &["WITH_UL_KA", "UL_TIMER=2", &timeout],
    );
    pinged_binding_survives_only_when_answered(&k, transport);
}

#[test]
fn message_and_info_reach_the_listener_over_an_outbound_flow_through_a_nat() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    let outbound = || Opts {
        instance_id: Some("6c0b7f5a-4d2e-4c8a-9b1e-2f3d4c5b6a70".into()),
        reg_id: 1,
        ..Opts::default()
    };
    // UDP through a NAT that maps us to another port.
    let nat = UdpNat::new(k.addr(), 1);
    let through = |registrar: String| Opts {
        registrar: Some(registrar),
        ..outbound()
    };
    let (ua, mut r) = alice(&k, "udp", |_| {}, through(format!("sip:{}", nat.addr)));
    let b = k.bindings("alice");
    assert!(
        b.iter().any(|a| a.contains(";ob")),
        "an outbound binding: {b:?}"
    );
    let l = Listener::install(&ua, answered());
    let got = message_and_info(&k, &l);
    check_message_and_info(&got, &r, "udp");
    assert!(
        got.iter()
            .all(|g| g.flow.ends_with(&format!("-> {}", nat.addr))),
        "they came over the NAT's flow: {:?}",
        got.iter().map(|g| &g.flow).collect::<Vec<_>>()
    );
    drop(l);
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));

    // TCP through a relay: one connection, the flow, reused by Kamailio.
    let relay = TcpWatch::new(k.addr());
    let (ua, r) = alice(
        &k,
        "tcp",
        |_| {},
        through(format!("sip:{};transport=tcp", relay.addr)),
    );
    let l = Listener::install(&ua, answered());
    let got = message_and_info(&k, &l);
    check_message_and_info(&got, &r, "tcp");
    assert_eq!(
        relay.accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "everything over the one registered connection"
    );
    assert_eq!(r.dispose(), SIPREG_OK);
}

#[test]
fn the_application_answers_after_its_callback_returned() {
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    let (ua, r) = alice(&k, "udp", |_| {}, Opts::default());
    // No answer inside the callback: the test thread answers later.
    let l = Listener::install(&ua, None);
    let sipp = Sipp::client(
        "contact_message_info",
        &format!("127.0.0.1:{}", k.port),
        "alice",
        free_port(),
    );
    for method in ["MESSAGE", "INFO"] {
        let got = l.next_of(method, WAIT).expect(method);
        // Kamailio retransmits (UDP) while we wait: absorbed, not handed up again.
        std::thread::sleep(Duration::from_millis(700));
        assert!(l.drain().is_empty(), "a retransmission was handed up again");
        assert_eq!(
            respond(
                &ua,
                &got,
                200,
                Some("Fine"),
                "X-Answered-By: sipreg-test\r\n",
                b""
            ),
            SIPREG_OK
        );
    }
    let end = sipp.finish(WAIT * 2);
    end.assert_passed();
    assert!(
        end.raw_messages.contains("SIP/2.0 200 Fine"),
        "{}",
        end.raw_messages
    );
    assert_eq!(r.dispose(), SIPREG_OK);
}

#[test]
fn a_flood_of_requests_from_one_source_gets_a_bounded_number_of_answers() {
    use sipreg::core::endpoint::answer_limit::SOURCE_BURST;
    let k = OutboundKamailio::launch_cfg("contact.cfg", 30, false, &[]);
    // A short grant: refreshes must get through while the flood lasts.
    let (ua, mut r) = alice(
        &k,
        "udp",
        |_| {},
        Opts {
            expires: 4,
            ..Opts::default()
        },
    );
    let contact = r.contacts()[0].clone();
    let target = contact
        .split('@')
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.set_nonblocking(true).unwrap();
    let me = attacker.local_addr().unwrap();
    let refreshes0 = r
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Response(200, _)))
        .count();
    let refreshed = |r: &mut Reg| {
        r.events()
            .iter()
            .filter(|e| matches!(e, Ev::Response(200, _)))
            .count()
            > refreshes0
    };
    // The flood goes on until a refresh got through it (and for at least
    // MIN_SENT requests); the budget's rate is checked on the simulated
    // clock (incoming_sim), here only what a flood gets out of a real run.
    const MIN_SENT: u32 = 4_000;
    let give_up = Instant::now() + PATIENCE;
    let mut sent = 0u32;
    let mut answers = 0u64;
    let mut buf = [0u8; 4096];
    while sent < MIN_SENT || !refreshed(&mut r) {
        assert!(
            Instant::now() < give_up,
            "no refresh got through the flood: {:?}",
            r.events()
        );
        for _ in 0..50 {
            let ping = format!(
                "OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood{sent}\r\n\
From: <sip:mallory@127.0.0.1>;tag=m\r\nTo: <{contact}>\r\nCall-ID: flood{sent}\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = attacker.send_to(ping.as_bytes(), &target);
            sent += 1;
        }
        while attacker.recv_from(&mut buf).is_ok() {
            answers += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The answers still on their way.
    let st = ua.stats();
    wait::until(PATIENCE, || {
        let now = ua.stats();
        now.answered + now.dropped >= st.requests
    });
    while attacker.recv_from(&mut buf).is_ok() {
        answers += 1;
    }
    println!("flood: {sent} OPTIONS from one source, {answers} answered");
    assert!(
        answers >= SOURCE_BURST as u64,
        "the budget's worth was answered: {answers}"
    );
    assert!(
        answers * 4 < u64::from(sent),
        "no reflector: {answers} answers to {sent} requests"
    );
    let st = ua.stats();
    assert!(
        st.requests > answers && st.dropped + st.answered >= st.requests,
        "every request was answered or dropped over budget: {st:?}"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    // The registrar's own pings are still answered.
    assert!(holds(&k, &contact));
    assert_eq!(r.dispose(), SIPREG_OK);
}
