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
use support::contact::{flow_id, respond, send, set_str, AutoAnswer, Listener, Sipp};
use support::kamailio::free_port;
use support::nat_peers::OutboundKamailio;

const WAIT: Duration = Duration::from_secs(15);

fn answered() -> Option<AutoAnswer> {
    Some(AutoAnswer {
        status: 200,
        headers: "X-Answered-By: sipreg-test\r\n".into(),
    })
}

/// alice on `k` over `transport`, registered; with `configure` applied to
/// the user agent before the registerer is made.
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
    let registrar = match transport {
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
    };
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
        &[],
    );
    let end = sipp.finish(WAIT * 2);
    assert_eq!(
        end.code,
        Some(0),
        "SIPp's MESSAGE/INFO were answered 200 by alice:\n{}\n{}\n{}",
        end.errors,
        end.messages,
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
