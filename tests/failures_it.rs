//! Why a registration failed, reached for real through the C ABI (issue 19):
//! a wrong and a missing password against Kamailio, a refused TCP port, a
//! silent UDP port, an unreachable UDP port. (TLS: secure_it.rs; statuses
//! from SIPp: sipp_faults.rs; a dead flow: nat_it.rs; NXDOMAIN: tests/dns.)
//! Each checks the kind, the status and the detail three ways: the FAILED
//! event, the `failure` field of the events that follow, and the accessors.

mod support;

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, shared};

const WAIT: Duration = Duration::from_secs(10);

fn opts(registrar: String) -> Opts {
    Opts {
        expires: 60,
        registrar: Some(registrar),
        retry: false,
        ..Default::default()
    }
}

/// Registers and returns the FAILED event (kind, status, detail) after
/// checking it against the accessors.
fn failed_attempt(ua: &Ua, registrar: String) -> (sipreg_failure, u16, String, Reg) {
    let mut r = Reg::new(ua, &opts(registrar));
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    assert_eq!(r.register(), SIPREG_OK);
    let (kind, status, detail) = r
        .wait_failed(WAIT)
        .unwrap_or_else(|| panic!("no FAILED event: {:?}", r.events()));
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(r.failure(), (kind, detail.clone()), "accessor = event");
    let (st, _reason) = r.failure_response();
    assert_eq!(st, status, "failure_response status = event status");
    (kind, status, detail, r)
}

#[test]
fn wrong_password_is_auth_rejected_naming_the_realm() {
    let (user, _pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1")).password("not-the-password");
    let (kind, status, detail, r) = failed_attempt(&ua, shared().registrar("udp"));
    assert_eq!(kind, SIPREG_FAILURE_AUTH_REJECTED, "{detail}");
    assert_eq!(status, 401);
    assert_eq!(detail, "credentials for realm \"127.0.0.1\" were rejected");
    assert_eq!(r.failure_response(), (401, "Unauthorized".into()));
}

#[test]
fn no_password_is_no_credentials() {
    let (user, _pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"));
    let (kind, status, detail, _r) = failed_attempt(&ua, shared().registrar("udp"));
    assert_eq!(kind, SIPREG_FAILURE_NO_CREDENTIALS, "{detail}");
    assert_eq!(status, 401);
    assert!(detail.contains("no password"), "{detail}");
}

#[test]
fn refused_tcp_port_is_transport() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ua = Ua::new("sip:alice@127.0.0.1")
        .password("pw")
        .transport("tcp");
    let (kind, status, detail, _r) = failed_attempt(&ua, format!("sip:127.0.0.1:{port}"));
    assert_eq!(kind, SIPREG_FAILURE_TRANSPORT, "{detail}");
    assert_eq!(status, 503);
    assert!(
        detail.contains("refused") && detail.contains(&port.to_string()),
        "{detail}"
    );
    assert!(!detail.contains("os error"), "plain words: {detail}");
}

#[test]
fn closed_udp_port_is_transport_by_icmp() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let ua = Ua::new("sip:alice@127.0.0.1").password("pw");
    let (kind, status, detail, _r) = failed_attempt(&ua, format!("sip:127.0.0.1:{port}"));
    assert_eq!(kind, SIPREG_FAILURE_TRANSPORT, "{detail}");
    assert_eq!(status, 503);
    assert_eq!(
        detail,
        format!("nothing listens on 127.0.0.1:{port} (ICMP port unreachable)")
    );
}

#[test]
fn silent_udp_port_is_timeout_told_before_the_state_change() {
    // Bound and never answering: no ICMP, Timer F (64 x T1 = 0.64 s) ends it.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let ua = Ua::new("sip:alice@127.0.0.1")
        .password("pw")
        .timers(0.01, 0.04, 0.05);
    let (kind, status, detail, mut r) = failed_attempt(&ua, format!("sip:127.0.0.1:{port}"));
    assert_eq!(kind, SIPREG_FAILURE_TIMEOUT, "{detail}");
    assert_eq!(status, 408);
    assert_eq!(
        detail,
        format!("no final response from 127.0.0.1:{port} within 0.6 s (Timer F)")
    );
    assert_eq!(r.failure_response(), (408, "Request Timeout".into()));
    // The order: the 408, then why, then the state change.
    let ev = r.events();
    let at = |p: &dyn Fn(&Ev) -> bool| ev.iter().position(p).expect("present");
    assert!(
        at(&|e| matches!(e, Ev::Response(408, _))) < at(&|e| matches!(e, Ev::Failed(..)))
            && at(&|e| matches!(e, Ev::Failed(..)))
                < at(&|e| *e == Ev::State(SIPREG_STATE_UNREGISTERED)),
        "{ev:?}"
    );
    drop(silent);
}

#[test]
fn success_clears_the_failure() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1")).password("wrong");
    let (kind, _, _, mut r) = failed_attempt(&ua, k.registrar("udp"));
    assert_eq!(kind, SIPREG_FAILURE_AUTH_REJECTED);
    // The same registerer, with the right password now.
    let c = std::ffi::CString::new(pw).unwrap();
    let rc = unsafe { sipreg::ffi::user_agent::sipreg_user_agent_set_password(ua.0, c.as_ptr()) };
    assert_eq!(rc, SIPREG_OK);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
    assert_eq!(r.failure_response(), (0, String::new()));
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    assert!(k.lookup(&user).is_empty());
}
