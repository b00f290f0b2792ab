//! Simulated-clock tests of RFC 3263 targets inside the core registerer:
//! waiting for the resolution, failover on Timer F / transport error / 503,
//! staying on a working target, backoff after the whole list failed, TTL
//! expiry re-resolving, and a failed resolution.

mod support;

use std::net::SocketAddr;
use std::time::Instant;

use sipreg::core::failure::{Failure, FailureKind};
use sipreg::core::options::{RegistererOptions, Transport};
use sipreg::core::registerer::State;
use sipreg::core::targets::{Target, TargetList};
use support::harness::{ms, secs, Harness};

fn t(port: u16) -> Target {
    Target {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn list(ports: &[u16], expires_at: Option<Instant>) -> TargetList {
    TargetList::new(ports.iter().map(|p| t(*p)).collect(), expires_at)
}

/// alice@example.com (a host name), resolving through the harness.
fn resolving() -> Harness {
    let mut h = Harness::alice(RegistererOptions::default());
    h.reg.resolve_targets();
    h
}

fn port(h: &Harness) -> u16 {
    h.reg.current_target().expect("a target").addr.port()
}

/// Resolves with `ports` and returns the first REGISTER's branch.
fn register_resolved(h: &mut Harness, ports: &[u16], expires_at: Option<Instant>) -> String {
    h.register();
    assert!(h.sent.is_empty(), "nothing is sent before the answer");
    assert!(h.reg.is_resolving());
    let q = h.reg.poll_resolution().expect("a lookup is asked for");
    assert_eq!(q.name, "example.com");
    assert_eq!(q.port, None, "no port: NAPTR/SRV apply");
    assert_eq!(
        q.transport, None,
        "no transport chosen: NAPTR order decides"
    );
    assert!(h.reg.poll_resolution().is_none(), "asked once");
    h.reg.targets_resolved(h.now, Ok(list(ports, expires_at)));
    h.drain();
    assert_eq!(h.sent.len(), 1);
    h.last().branch()
}

#[test]
fn first_register_waits_for_the_resolution_without_timers_running() {
    let mut h = resolving();
    h.register();
    assert!(h.reg.poll_resolution().is_some());
    // A slow DNS answer does not run Timer E/F for a request never sent.
    h.advance(secs(60));
    assert!(h.sent.is_empty());
    assert_eq!(h.states(), vec![]);
    h.reg.targets_resolved(h.now, Ok(list(&[5071, 5072], None)));
    h.drain();
    assert_eq!(h.sent.len(), 1);
    assert_eq!(port(&h), 5071);
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn timer_f_fails_over_at_once_with_a_new_branch() {
    let mut h = resolving();
    let b1 = register_resolved(&mut h, &[5071, 5072], None);
    // UDP Timer F = 64 * T1 = 32 s: retransmissions, then the next target.
    h.advance(ms(31_900));
    assert_eq!(port(&h), 5071);
    let before = h.requests().len();
    h.advance(ms(200));
    assert_eq!(port(&h), 5072, "failover after Timer F");
    let reqs = h.requests();
    assert_eq!(reqs.len(), before + 1, "the same REGISTER went out again");
    let b2 = h.last().branch();
    assert_ne!(b1, b2, "new branch");
    assert_eq!(
        h.last().header("Call-ID"),
        reqs[0].header("Call-ID"),
        "same registration"
    );
    assert!(
        h.responses().is_empty(),
        "no 408 surfaced while a target is left"
    );
    assert!(h.notes().iter().any(|n| n.contains("failover")
        && n.contains("udp:127.0.0.1:5071")
        && n.contains("udp:127.0.0.1:5072")));
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn transport_error_and_503_fail_over_but_503_with_retry_after_does_not() {
    let mut h = resolving();
    register_resolved(&mut h, &[5071, 5072, 5073], None);
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "ICMP port unreachable"),
        false,
    );
    h.drain();
    assert_eq!(port(&h), 5072);
    assert_eq!(h.requests().len(), 2);
    h.reply(503, "Service Unavailable", &[]);
    assert_eq!(port(&h), 5073, "503 without Retry-After fails over");
    assert_eq!(h.requests().len(), 3);
    h.reply(503, "Service Unavailable", &["Retry-After: 30".into()]);
    assert_eq!(
        h.requests().len(),
        3,
        "503 with Retry-After is honoured, no failover"
    );
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert_eq!(h.reg.retry_after(), Some(30));
}

#[test]
fn all_targets_failed_backs_off_then_starts_again_from_the_first() {
    let mut h = resolving();
    register_resolved(&mut h, &[5071, 5072], None);
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    assert_eq!(h.requests().len(), 2, "each target tried once");
    assert_eq!(h.responses(), vec![503]);
    assert_eq!(h.states(), vec![State::Unregistered]);
    let delay = h.reg.next_retry(h.now).expect("the backoff applies");
    assert!(delay > secs(1), "{delay:?}");
    assert!(h.notes().iter().any(|n| n.contains("every target failed")));
    assert_eq!(port(&h), 5071, "the retry starts from the first target");
    let sent = h.run_until_sent(secs(3600)).expect("retry");
    assert!(sent.at >= delay);
    assert_eq!(port(&h), 5071);
}

#[test]
fn stays_on_the_second_target_until_it_fails() {
    let mut h = resolving();
    register_resolved(&mut h, &[5071, 5072], None);
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    h.ok(60);
    assert_eq!(port(&h), 5072);
    // Refreshes (the first target may be back) stay on 5072.
    for _ in 0..3 {
        h.run_until_sent(secs(120)).expect("refresh");
        assert_eq!(port(&h), 5072);
        h.ok(60);
    }
    // 5072 fails: the refresh goes to 5071 at once.
    h.run_until_sent(secs(120)).expect("refresh");
    let n = h.requests().len();
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    assert_eq!(port(&h), 5071);
    assert_eq!(h.requests().len(), n + 1);
    h.ok(60);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn ttl_expiry_re_resolves_and_a_changed_record_moves_the_target() {
    let mut h = resolving();
    let ttl = h.now + secs(100);
    register_resolved(&mut h, &[5071, 5072], Some(ttl));
    h.ok(60);
    // Refresh at 59.4 s: answers still valid, no lookup.
    h.run_until_sent(secs(60)).expect("refresh");
    assert!(h.reg.poll_resolution().is_none());
    h.ok(60);
    // Refresh at 118.8 s: past the TTL, the refresh waits for a new answer.
    let n = h.sent.len();
    h.advance(ms(59_500));
    assert_eq!(h.sent.len(), n, "nothing sent before the new answer");
    assert!(h.reg.poll_resolution().is_some());
    // The record changed: now only 5073.
    h.reg.targets_resolved(h.now, Ok(list(&[5073], None)));
    h.drain();
    assert_eq!(h.sent.len(), n + 1);
    assert_eq!(port(&h), 5073);
    h.ok(60);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn failed_resolution_is_a_503_with_backoff_and_a_named_reason() {
    let mut h = resolving();
    h.register();
    assert!(h.reg.poll_resolution().is_some());
    h.reg.targets_resolved(
        h.now,
        Err(Failure::new(FailureKind::Dns, "A example.com: NXDOMAIN")),
    );
    h.drain();
    assert!(h.sent.is_empty());
    assert_eq!(h.responses(), vec![503]);
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert!(h
        .notes()
        .iter()
        .any(|n| n.contains("cannot resolve example.com") && n.contains("NXDOMAIN")));
    let delay = h.reg.next_retry(h.now).expect("retried by the backoff");
    // The retry asks for a new lookup.
    h.advance(delay + ms(1));
    assert!(h.reg.is_resolving());
    assert!(h.reg.poll_resolution().is_some());
    h.reg.targets_resolved(h.now, Ok(list(&[5071], None)));
    h.drain();
    h.ok(600);
    assert_eq!(h.states(), vec![State::Unregistered, State::Registered]);
}

#[test]
fn a_failed_re_resolution_keeps_the_previous_targets() {
    let mut h = resolving();
    let ttl = h.now + secs(10);
    register_resolved(&mut h, &[5071], Some(ttl));
    h.ok(60);
    h.advance(secs(60));
    assert!(h.reg.poll_resolution().is_some());
    let n = h.sent.len();
    h.reg
        .targets_resolved(h.now, Err(Failure::new(FailureKind::Dns, "SERVFAIL")));
    h.drain();
    assert_eq!(h.sent.len(), n + 1, "the refresh still went out");
    assert_eq!(port(&h), 5071);
    assert!(h
        .notes()
        .iter()
        .any(|n| n.contains("keeping the previous targets")));
}

#[test]
fn a_chosen_transport_is_asked_for_and_kept() {
    let mut ua = sipreg::core::options::UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.transport = Transport::Tcp;
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.reg.resolve_targets();
    h.register();
    let q = h.reg.poll_resolution().unwrap();
    assert_eq!(q.transport, Some(Transport::Tcp));
    assert_eq!(q.srv_names()[0].1, "_sip._tcp.example.com");
    // A transport= parameter on the registrar URI is a choice too.
    let mut h = Harness::alice(RegistererOptions {
        registrar: Some("sip:example.com;transport=tcp".into()),
        ..Default::default()
    });
    h.reg.resolve_targets();
    h.register();
    assert_eq!(
        h.reg.poll_resolution().unwrap().transport,
        Some(Transport::Tcp)
    );
}

#[test]
fn an_open_transport_follows_the_naptr_target_in_use() {
    let mut h = resolving();
    h.register();
    let q = h.reg.poll_resolution().unwrap();
    let names: Vec<String> = q.srv_names().into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["_sip._udp.example.com", "_sip._tcp.example.com"]);
    let tcp = Target {
        transport: Transport::Tcp,
        addr: SocketAddr::from(([127, 0, 0, 1], 5072)),
    };
    h.reg
        .targets_resolved(h.now, Ok(TargetList::new(vec![tcp, t(5071)], None)));
    h.drain();
    assert_eq!(h.reg.settings().transport, Transport::Tcp);
    assert!(h.last().header("Via").unwrap().starts_with("SIP/2.0/TCP"));
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    assert_eq!(h.reg.settings().transport, Transport::Udp);
    assert!(h.last().header("Via").unwrap().starts_with("SIP/2.0/UDP"));
    assert_eq!(port(&h), 5071);
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn dispose_while_resolving_sends_nothing_and_terminates() {
    let mut h = resolving();
    h.register();
    assert!(h.reg.poll_resolution().is_some());
    h.reg.dispose(h.now);
    h.drain();
    assert_eq!(h.states(), vec![State::Terminated]);
    // A late answer changes nothing.
    h.reg.targets_resolved(h.now, Ok(list(&[5071], None)));
    h.drain();
    assert!(h.sent.is_empty());
    assert_eq!(h.states(), vec![State::Terminated]);
}

#[test]
fn a_fixed_target_never_fails_over() {
    // Without resolve_targets (an IP literal), a transport error is the old 503 + backoff.
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    assert!(h.reg.poll_resolution().is_none());
    assert_eq!(h.sent.len(), 1);
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "refused"),
        false,
    );
    h.drain();
    assert_eq!(h.responses(), vec![503]);
    assert!(h.reg.current_target().is_none());
}

#[test]
fn an_explicit_port_skips_naptr_and_srv_and_the_proxy_decides_the_query() {
    use sipreg::core::options::UserAgentConfig;
    use sipreg::core::targets::Query;
    let query = |proxy: Option<&str>, registrar: Option<&str>| {
        let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
        ua.set_outbound_proxy(proxy).unwrap();
        let h = Harness::new(
            ua,
            RegistererOptions {
                registrar: registrar.map(str::to_owned),
                ..Default::default()
            },
        );
        Query::for_settings(h.reg.settings())
    };
    let q = query(None, Some("sip:sip1.example.com:5070")).unwrap();
    assert_eq!((q.name.as_str(), q.port), ("sip1.example.com", Some(5070)));
    let q = query(None, Some("sips:sip1.example.com:5071;transport=tls")).unwrap();
    assert_eq!((q.name.as_str(), q.port), ("sip1.example.com", Some(5071)));
    assert_eq!(q.transport, Some(Transport::Tls));
    // A transport parameter or sips: is not a port: RFC 3263 still applies.
    let q = query(None, Some("sips:sip1.example.com;transport=tls")).unwrap();
    assert_eq!(q.port, None);
    // The outbound proxy is the target: its port (or none) counts, not the registrar's.
    let q = query(Some("sip:edge.example.com:5080"), None).unwrap();
    assert_eq!((q.name.as_str(), q.port), ("edge.example.com", Some(5080)));
    let q = query(Some("sip:edge.example.com"), Some("sip:example.com:5070")).unwrap();
    assert_eq!((q.name.as_str(), q.port), ("edge.example.com", None));
    // IP literals need no lookup, with or without a port.
    assert!(query(None, Some("sip:[::1]:5070")).is_none());
    assert!(query(None, Some("sip:127.0.0.1")).is_none());
    assert!(query(Some("sip:127.0.0.1:5080"), Some("sip:example.com")).is_none());
}

#[test]
fn a_paced_register_resolved_while_queued_is_made_only_when_admitted() {
    let mut h = resolving();
    h.reg.set_paced(true);
    h.register();
    assert!(h.reg.poll_resolution().is_some());
    h.reg.targets_resolved(h.now, Ok(list(&[5071, 5072], None)));
    h.drain();
    // Resolved but not admitted: still queued, nothing sent, no timers.
    assert!(h.sent.is_empty());
    assert!(h.reg.wants_admission() && !h.reg.in_transaction());
    assert_eq!(h.reg.poll_timeout(), None);
    h.advance(secs(40));
    assert!(h.sent.is_empty(), "no Timer F for a request never admitted");
    h.reg.admit(h.now);
    h.drain();
    assert_eq!(h.sent.len(), 1);
    assert_eq!(port(&h), 5071);
    // One CSeq taken, at admission (the first after the initial 1). An
    // unpaced REGISTER takes one when started and another when re-sent to
    // the resolved target (3); a queued one was never started before.
    assert_eq!(h.last().cseq(), 2);
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}
