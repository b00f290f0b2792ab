//! Simulated-clock tests of NAT contact rewrite, RFC 5626 keep-alive and flow
//! failure, 439 fallback and the routing facts (issue 10), against the core only.

mod support;

use std::net::SocketAddr;

use sipreg::core::keepalive::{Mechanism, CRLF, CRLF_PING, PONG_TIMEOUT};
use sipreg::core::options::{RegistererOptions, UserAgentConfig};
use sipreg::core::registerer::State;
use sipreg::core::stun;
use support::harness::{ms, secs, Harness};

const INSTANCE: &str = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

fn no_retry() -> RegistererOptions {
    let mut o = RegistererOptions {
        expires: 600,
        ..Default::default()
    };
    o.retry.enabled = false;
    o
}

fn outbound() -> RegistererOptions {
    RegistererOptions {
        instance_id: Some(INSTANCE.into()),
        reg_id: Some(1),
        ..no_retry()
    }
}

fn harness(opts: RegistererOptions, keepalive: u32, tcp: bool) -> Harness {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_password(Some("pw")).unwrap();
    ua.set_keepalive(keepalive).unwrap();
    if tcp {
        ua.transport = sipreg::core::options::Transport::Tcp;
    }
    Harness::new(ua, opts)
}

/// A 200 for the last request: its Via with `received`/`rport` set to `seen`
/// (if any), our contact listed, and `extra` headers.
fn ok_seen(h: &mut Harness, seen: Option<&str>, extra: &[&str]) {
    let last = h.last().clone();
    let via = last.header("Via").unwrap().to_owned();
    let via = match seen {
        Some(addr) => {
            let a: SocketAddr = addr.parse().unwrap();
            via.replace(
                ";rport",
                &format!(";received={};rport={}", a.ip(), a.port()),
            )
        }
        None => via,
    };
    let mut raw = format!("SIP/2.0 200 OK\r\nVia: {via}\r\n");
    for name in ["From", "Call-ID", "CSeq"] {
        raw.push_str(&format!("{name}: {}\r\n", last.header(name).unwrap()));
    }
    raw.push_str(&format!("To: {};tag=srv\r\n", last.header("To").unwrap()));
    let ours = last.header("Contact").unwrap();
    let ours = ours.rsplit_once(";expires=").map_or(ours, |(c, _)| c);
    raw.push_str(&format!("Contact: {ours};expires=600\r\n"));
    for e in extra {
        raw.push_str(e);
        raw.push_str("\r\n");
    }
    raw.push_str("Content-Length: 0\r\n\r\n");
    h.deliver(raw.as_bytes()).expect("matched");
}

fn contacts_of(h: &Harness) -> Vec<String> {
    h.last()
        .all("Contact")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Pings the registerer owes the runtime now.
fn pings(h: &mut Harness) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| h.reg.poll_ping()).collect()
}

#[test]
fn rewrite_to_the_public_address_and_back() {
    let mut h = harness(no_retry(), 0, false);
    h.register();
    ok_seen(&mut h, Some("203.0.113.5:40000"), &[]);
    assert_eq!(h.states(), [State::Registered]);
    assert_eq!(
        h.reg.public_address(),
        Some("203.0.113.5:40000".parse().unwrap())
    );
    // Re-REGISTER at once: public contact, the old one removed, same Call-ID.
    let reqs = h.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("Call-ID"), reqs[0].header("Call-ID"));
    assert_eq!(reqs[1].cseq(), reqs[0].cseq() + 1);
    assert_eq!(
        contacts_of(&h),
        [
            "<sip:alice@203.0.113.5:40000>;expires=600",
            "<sip:alice@127.0.0.1:5080>;expires=0"
        ]
    );
    // Via still carries the local address.
    assert!(h.last().header("Via").unwrap().contains("127.0.0.1:5080"));
    ok_seen(&mut h, Some("203.0.113.5:40000"), &[]);
    assert_eq!(h.requests().len(), 2, "no further rewrite");
    assert_eq!(h.states(), [State::Registered], "no state flicker");
    assert_eq!(
        h.reg.contact().as_deref(),
        Some("sip:alice@203.0.113.5:40000")
    );
    // The refresh finds the NAT gone (registrar sees our own address): back.
    h.run_until_sent(secs(600)).expect("refresh");
    assert_eq!(
        contacts_of(&h),
        ["<sip:alice@203.0.113.5:40000>;expires=600"]
    );
    ok_seen(&mut h, Some("127.0.0.1:5080"), &[]);
    assert_eq!(
        contacts_of(&h),
        [
            "<sip:alice@127.0.0.1:5080>;expires=600",
            "<sip:alice@203.0.113.5:40000>;expires=0"
        ]
    );
    ok_seen(&mut h, None, &[]);
    assert_eq!(h.states(), [State::Registered]);
    assert_eq!(h.reg.contact().as_deref(), Some("sip:alice@127.0.0.1:5080"));
}

#[test]
fn flip_flopping_answers_do_not_ping_pong() {
    let mut h = harness(no_retry(), 0, false);
    h.register();
    ok_seen(&mut h, Some("203.0.113.5:40000"), &[]);
    assert_eq!(h.requests().len(), 2);
    // The answer to the rewrite says another address: no second rewrite.
    ok_seen(&mut h, Some("198.51.100.9:1234"), &[]);
    assert_eq!(h.requests().len(), 2, "loop guard holds");
    assert!(h.notes().iter().any(|n| n.contains("loop guard")));
    assert_eq!(h.states(), [State::Registered]);
    // Next refresh follows the refresh rule for the 600 s grant, not earlier.
    let refresh = h.run_until_sent(secs(600)).unwrap();
    assert_eq!(refresh.at, h.refresh_after(600));
    assert!(refresh.at >= ms(534_600), "{:?}", refresh.at);
}

#[test]
fn rewrite_can_be_switched_off() {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.contact_rewrite = false;
    let mut h = Harness::new(ua, no_retry());
    h.register();
    ok_seen(&mut h, Some("203.0.113.5:40000"), &[]);
    assert_eq!(h.requests().len(), 1);
    assert_eq!(
        h.reg.public_address(),
        Some("203.0.113.5:40000".parse().unwrap())
    );
}

#[test]
fn no_rewrite_when_outbound_is_in_use() {
    let mut h = harness(outbound(), 0, false);
    h.register();
    assert_eq!(h.last().header("Supported"), Some("outbound"));
    assert!(contacts_of(&h)[0].starts_with("<sip:alice@127.0.0.1:5080;ob>;reg-id=1;"));
    ok_seen(
        &mut h,
        Some("203.0.113.5:40000"),
        &["Require: outbound", "Flow-Timer: 30"],
    );
    assert_eq!(h.requests().len(), 1, "no rewrite with outbound");
    assert!(h.reg.outbound_in_use());
    assert_eq!(
        h.reg.keepalive().active(),
        Some((Mechanism::Stun, secs(30)))
    );
}

#[test]
fn outbound_refused_by_the_registrar_still_rewrites() {
    // Outbound was offered but the 2xx has no Require: outbound.
    let mut h = harness(outbound(), 0, false);
    h.register();
    ok_seen(&mut h, Some("203.0.113.5:40000"), &[]);
    assert!(!h.reg.outbound_in_use());
    assert_eq!(h.requests().len(), 2, "rewrite without outbound");
}

/// Registers over TCP with outbound, Flow-Timer `ft`.
fn tcp_outbound_registered(ft: u32) -> Harness {
    let mut h = harness(outbound(), 0, true);
    h.register();
    ok_seen(
        &mut h,
        None,
        &["Require: outbound", &format!("Flow-Timer: {ft}")],
    );
    assert_eq!(h.states(), [State::Registered]);
    h
}

#[test]
fn crlf_pings_on_tcp_between_80_and_100_percent_of_flow_timer() {
    let mut h = tcp_outbound_registered(20);
    assert_eq!(
        h.reg.keepalive().active(),
        Some((Mechanism::CrlfPong, secs(20)))
    );
    let mut last = h.now;
    for _ in 0..30 {
        let due = h.reg.keepalive().poll_timeout().unwrap();
        let gap = due - last;
        assert!(gap >= secs(16) && gap <= secs(20), "gap {gap:?}");
        h.advance(due - h.now);
        assert_eq!(pings(&mut h), [CRLF_PING.to_vec()]);
        h.reg.keepalive_pong();
        last = due;
        if h.requests().len() > 1 {
            break; // the refresh came due; the rest is covered elsewhere
        }
    }
    assert_eq!(h.states(), [State::Registered]);
}

#[test]
fn missing_pong_fails_the_flow_and_re_registers_within_ten_seconds() {
    let mut h = tcp_outbound_registered(20);
    let due = h.reg.keepalive().poll_timeout().unwrap();
    h.advance(due - h.now);
    assert_eq!(pings(&mut h), [CRLF_PING.to_vec()]);
    let ping_at = h.now;
    // No pong. The REGISTER goes out exactly at the 10 s deadline.
    let sent = h.run_until_sent(secs(30)).expect("re-REGISTER");
    assert_eq!(sent.at, ping_at - h.t0 + PONG_TIMEOUT);
    assert!(h.reg.take_flow_failed(), "runtime told to replace the flow");
    assert!(h.notes().iter().any(|n| n.contains("flow failed")));
    // The runtime opened a new connection: new local port, old contact removed.
    h.reg.set_local_addr("127.0.0.1:5999".parse().unwrap());
    h.drain();
    assert_eq!(h.states(), [State::Registered], "state kept meanwhile");
    ok_seen(&mut h, None, &["Require: outbound", "Flow-Timer: 20"]);
    assert_eq!(h.states(), [State::Registered]);
    assert!(h.reg.keepalive().active().is_some(), "pings resume");
}

/// A STUN Binding success answering `req`: the server saw 127.0.0.1:`port`.
fn stun_answer(req: &[u8], port: u16) -> Vec<u8> {
    let mut m = vec![0x01, 0x01, 0x00, 0x0C];
    m.extend_from_slice(&req[4..20]);
    m.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
    m.extend_from_slice(&(port ^ 0x2112).to_be_bytes());
    let ip = [127u8, 0, 0, 1];
    for (b, k) in ip.iter().zip(stun::MAGIC_COOKIE.to_be_bytes()) {
        m.push(b ^ k);
    }
    m
}

/// What tests/nat_it.rs sees on UDP with outbound: a STUN request every 80 to
/// 100 % of Flow-Timer, each answered with the same mapping, keeps the flow.
#[test]
fn stun_pings_on_udp_between_80_and_100_percent_of_flow_timer() {
    let mut h = harness(outbound(), 0, false);
    h.register();
    ok_seen(&mut h, None, &["Require: outbound", "Flow-Timer: 3"]);
    let mut last = h.now;
    for _ in 0..50 {
        let due = h.reg.keepalive().poll_timeout().unwrap();
        let gap = due - last;
        assert!(gap >= ms(2400) && gap <= secs(3), "gap {gap:?}");
        h.advance(due - h.now);
        let req = pings(&mut h).pop().expect("a STUN request");
        assert!(stun::is_stun(&req));
        assert!(h.reg.stun_datagram(h.now, &stun_answer(&req, 5080)));
        h.drain();
        last = due;
    }
    assert_eq!(h.states(), [State::Registered]);
    assert!(!h.reg.take_flow_failed());
    assert_eq!(h.requests().len(), 1, "no re-REGISTER");
}

#[test]
fn stun_on_udp_and_mapped_address_change_re_registers() {
    let mut h = harness(outbound(), 0, false);
    h.register();
    ok_seen(&mut h, None, &["Require: outbound", "Flow-Timer: 15"]);
    let due = h.reg.keepalive().poll_timeout().unwrap();
    assert!(due - h.now >= secs(12) && due - h.now <= secs(15));
    h.advance(due - h.now);
    let req = pings(&mut h).pop().expect("STUN request");
    assert!(stun::is_stun(&req));
    let answer = stun_answer;
    assert!(h.reg.stun_datagram(h.now, &answer(&req, 5080)));
    h.drain();
    assert_eq!(h.requests().len(), 1);
    assert_eq!(
        h.reg.keepalive().mapped(),
        Some("127.0.0.1:5080".parse().unwrap())
    );
    let due = h.reg.keepalive().poll_timeout().unwrap();
    h.advance(due - h.now);
    let req = pings(&mut h).pop().expect("second STUN request");
    assert!(h.reg.stun_datagram(h.now, &answer(&req, 6000)));
    h.drain();
    assert_eq!(h.requests().len(), 2, "re-REGISTER at once");
    assert!(h.reg.take_flow_failed());
    assert!(h
        .notes()
        .iter()
        .any(|n| n.contains("mapped address changed")));
}

#[test]
fn unanswered_stun_fails_the_flow_after_ten_seconds() {
    let mut h = harness(outbound(), 0, false);
    h.register();
    ok_seen(&mut h, None, &["Require: outbound", "Flow-Timer: 15"]);
    let due = h.reg.keepalive().poll_timeout().unwrap();
    h.advance(due - h.now);
    let first = h.now;
    let sent = h.run_until_sent(secs(30)).expect("re-REGISTER");
    assert_eq!(sent.at, first - h.t0 + PONG_TIMEOUT);
}

#[test]
fn keepalive_option_without_flow_timer_and_plain_nat_keepalive() {
    // Outbound confirmed, no Flow-Timer: the configured interval.
    let mut h = harness(outbound(), 25, true);
    h.register();
    ok_seen(&mut h, None, &["Require: outbound"]);
    assert_eq!(
        h.reg.keepalive().active(),
        Some((Mechanism::CrlfPong, secs(25)))
    );
    // No outbound: plain CRLF every 15 s exactly, nothing expected back.
    let mut h = harness(no_retry(), 15, false);
    h.register();
    ok_seen(&mut h, None, &[]);
    let start = h.now;
    for i in 1..=5u32 {
        let due = h.reg.keepalive().poll_timeout().unwrap();
        assert_eq!(due - start, secs(15) * i);
        h.advance(due - h.now);
        assert_eq!(pings(&mut h), [CRLF.to_vec()]);
    }
    assert_eq!(h.requests().len(), 1);
    // The same on TCP is CRLFCRLF (a pong may come; none is required).
    let mut h = harness(no_retry(), 15, true);
    h.register();
    ok_seen(&mut h, None, &[]);
    assert_eq!(
        h.reg.keepalive().active(),
        Some((Mechanism::DoubleCrlf, secs(15)))
    );
    let due = h.reg.keepalive().poll_timeout().unwrap();
    h.advance(due - h.now + secs(30));
    assert_eq!(
        pings(&mut h),
        [CRLF_PING.to_vec(), CRLF_PING.to_vec(), CRLF_PING.to_vec()]
    );
    assert_eq!(h.requests().len(), 1, "no flow failure without outbound");
    // Default (0) and no Flow-Timer: no keep-alive at all.
    let mut h = harness(no_retry(), 0, false);
    h.register();
    ok_seen(&mut h, None, &[]);
    assert_eq!(h.reg.keepalive().active(), None);
    h.advance(secs(500));
    assert!(pings(&mut h).is_empty());
}

#[test]
fn keepalive_stops_on_unregister() {
    let mut h = tcp_outbound_registered(20);
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    ok_seen(&mut h, None, &[]);
    assert_eq!(h.states(), [State::Registered, State::Unregistered]);
    assert_eq!(h.reg.keepalive().active(), None);
    h.advance(secs(100));
    assert!(pings(&mut h).is_empty());
}

#[test]
fn code_439_registers_again_without_outbound() {
    let mut h = harness(outbound(), 0, false);
    h.register();
    h.reply(439, "First Hop Lacks Outbound Support", &[]);
    let reqs = h.requests();
    assert_eq!(reqs.len(), 2, "resent at once");
    let second = reqs[1];
    assert_eq!(second.header("Supported"), None);
    let c = second.header("Contact").unwrap();
    assert!(!c.contains("reg-id") && !c.contains(";ob"), "{c}");
    assert!(c.contains("+sip.instance"), "{c}");
    h.ok(600);
    assert_eq!(h.states(), [State::Registered]);
    // Refreshes stay without outbound.
    h.run_until_sent(secs(600)).unwrap();
    assert_eq!(h.last().header("Supported"), None);
}

#[test]
fn routing_facts_from_the_last_2xx_cleared_on_unregister() {
    let opts = RegistererOptions {
        path_gruu: true,
        instance_id: Some(INSTANCE.into()),
        ..no_retry()
    };
    let mut h = harness(opts, 0, false);
    h.register();
    assert_eq!(h.last().header("Supported"), Some("path, gruu"));
    let contact = h.last().contact_uri();
    let gruu = format!(
        "Contact: <{contact}>;expires=60;+sip.instance=\"<urn:uuid:{INSTANCE}>\";pub-gruu=\"sip:alice@example.com;gr=urn:uuid:{INSTANCE}\";temp-gruu=\"sip:tgruu.1@example.com;gr\""
    );
    h.reply(
        200,
        "OK",
        &[
            gruu,
            "Service-Route: <sip:orig@scscf.example.com;lr>".into(),
            "Path: <sip:pcscf.example.com;lr>".into(),
        ],
    );
    let f = h.reg.routing().clone();
    assert_eq!(f.service_route, ["sip:orig@scscf.example.com;lr"]);
    assert_eq!(f.path, ["sip:pcscf.example.com;lr"]);
    assert_eq!(
        f.pub_gruu.as_deref(),
        Some(format!("sip:alice@example.com;gr=urn:uuid:{INSTANCE}").as_str())
    );
    assert_eq!(f.temp_gruu.as_deref(), Some("sip:tgruu.1@example.com;gr"));
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    h.ok(0);
    assert_eq!(h.reg.routing(), &Default::default());
}

#[test]
fn no_supported_header_without_the_options() {
    let opts = RegistererOptions {
        instance_id: Some(INSTANCE.into()),
        ..no_retry()
    };
    let mut h = harness(opts, 0, false);
    h.register();
    assert_eq!(h.last().header("Supported"), None);
}
