//! Runtime behaviour through the C ABI: network change, local address, host
//! names, IPv6 — against Kamailio or a scripted loopback peer.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, shared};
use support::wire::Request;

const WAIT: Duration = support::wait::PATIENCE;

fn port_of(contact: &str) -> u16 {
    let hostport = contact
        .split('@')
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    hostport.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn network_change_re_registers_and_removes_the_old_binding() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1")).password(&pw);
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(k.registrar("udp")),
            expires: 300,
            ..Default::default()
        },
    );
    r.register();
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    let before = k.lookup(&user);
    assert_eq!(before.len(), 1);
    let old_port = port_of(&before[0].0);

    ua.network_changed();
    assert!(
        r.wait_for(WAIT, |e| matches!(e, Ev::Response(200, _)))
            .is_some(),
        "{:?}",
        r.events()
    );
    let after = k.lookup(&user);
    assert_eq!(
        after.len(),
        1,
        "old binding removed in the same REGISTER: {after:?}"
    );
    assert_ne!(port_of(&after[0].0), old_port, "new socket, new contact");
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    let states = r
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::State(_)))
        .count();
    assert_eq!(states, 1, "no state change for a re-bind");
}

#[test]
fn local_address_and_host_name_registrar() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .local_address("127.0.0.2");
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(format!("sip:localhost:{}", k.port)),
            expires: 300,
            ..Default::default()
        },
    );
    r.register();
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    let b = k.lookup(&user);
    assert_eq!(b.len(), 1);
    assert!(
        b[0].0.contains("@127.0.0.2:"),
        "contact carries the bound address: {b:?}"
    );
}

/// A one-shot scripted registrar: answers each REGISTER with 200 echoing its Contact.
fn echo_registrar(sock: UdpSocket, answers: usize) -> std::thread::JoinHandle<Vec<Request>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        sock.set_read_timeout(Some(WAIT)).unwrap();
        while seen.len() < answers {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            // Read without the rsip oracle: rsip 0.4 cannot parse an IPv6 host.
            let req = Request::read(&String::from_utf8_lossy(&buf[..n]));
            let contact = format!("Contact: {}", req.header("Contact").unwrap());
            sock.send_to(&req.response(200, "OK", &[contact]), from)
                .unwrap();
            seen.push(req);
        }
        seen
    })
}

#[test]
fn ipv6_loopback_over_udp() {
    let Ok(sock) = UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let port = sock.local_addr().unwrap().port();
    let peer = echo_registrar(sock, 2);
    let ua = Ua::new("sip:alice@[::1]");
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(format!("sip:[::1]:{port}")),
            expires: 60,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    let seen = peer.join().unwrap();
    assert_eq!(
        seen[0].request_line,
        format!("REGISTER sip:[::1]:{port} SIP/2.0"),
        "{}",
        seen[0].raw
    );
    let via = seen[0].header("Via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP [::1]:"),
        "real local IPv6 address in Via: {via}"
    );
    let contact = seen[0].header("Contact").unwrap();
    assert!(contact.starts_with("<sip:alice@[::1]:"), "{contact}");
}

#[test]
fn icmp_port_unreachable_fails_fast_instead_of_waiting_for_timer_f() {
    // A loopback port nobody listens on.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ua = Ua::new("sip:alice@127.0.0.1");
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{closed}")),
            retry: true,
            retry_base: 30.0,
            ..Default::default()
        },
    );
    r.register();
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    // A Timer F timeout would be a 408; the ICMP error ends the transaction
    // as a transport failure (503).
    assert_eq!(r.last_response().map(|(c, _)| c), Some(503));
    assert!(ua.stats().transport_errors >= 1);
    let next = r
        .next_retry()
        .expect("a transport error is transient: retry scheduled");
    assert!(
        (10.0..=60.0).contains(&next),
        "RFC 5626 backoff with base 30 s: {next}"
    );
}

#[test]
fn a_refused_tcp_registrar_fails_fast_and_is_not_reconnected_in_a_loop() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ua = Ua::new("sip:alice@127.0.0.1").transport("tcp");
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(format!("sip:127.0.0.1:{closed}")),
            retry: true,
            retry_base: 30.0,
            ..Default::default()
        },
    );
    r.register();
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(r.last_response().map(|(c, _)| c), Some(503));
    // The next attempt is the backoff's (base 30 s), not a reconnect loop.
    let next = r.next_retry().expect("a backoff retry scheduled");
    assert!(next >= 10.0, "{next}");
    let s = ua.stats();
    assert!(
        s.transport_errors <= 3,
        "one refused connect, then quiet until the backoff retry: {s:?}"
    );
}
