//! The endpoint on a simulated clock and network: the rules that live
//! between registerers and sockets — pacing, shared flows, failover order,
//! flow loss, keep-alives on the flow, refresh timing, unregister deferral,
//! handshake deadlines — each checked in microseconds, with no socket, thread
//! or wall clock.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use sipreg::core::endpoint::pacing::{INITIAL_WINDOW, MAX_WINDOW};
use sipreg::core::endpoint::RegId;
use sipreg::core::options::{RegistererOptions, Transport, UserAgentConfig};
use sipreg::core::registerer::{Event, State};
use sipreg::core::targets::Target;
use support::sim::{ms, secs, Behaviour, Sim};

const REGISTRAR: &str = "127.0.0.1:5060";

fn registrar_uri(transport: Option<&str>) -> String {
    match transport {
        Some(t) => format!("sip:{REGISTRAR};transport={t}"),
        None => format!("sip:{REGISTRAR}"),
    }
}

/// `n` UDP accounts `sip:u<i>@127.0.0.1` asking `expires`, each asked to
/// register now (nothing pumped yet).
fn register_fleet(s: &mut Sim, n: usize, expires: u32) -> Vec<RegId> {
    let regs: Vec<_> = (0..n)
        .map(|i| {
            s.account(
                &format!("sip:u{i}@127.0.0.1"),
                &registrar_uri(None),
                None,
                expires,
            )
            .1
        })
        .collect();
    for r in &regs {
        s.ep.register(s.now, *r, &[]);
    }
    regs
}

#[test]
fn a_digest_registration_goes_out_on_one_udp_flow_and_registers() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Auth { expires: 600 }, ms(5));
    let (_, r) = s.account("sip:alice@127.0.0.1", &registrar_uri(None), None, 600);
    s.register(r);
    s.run(secs(1));
    assert_eq!(s.states(r), vec![State::Registered]);
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    let reqs = peer.requests();
    assert_eq!(reqs.len(), 2, "REGISTER, then the authenticated one");
    assert!(reqs[0].header("Authorization").is_none());
    assert!(reqs[1].header("Authorization").is_some());
    assert_eq!(s.opened.len(), 1, "one UDP socket");
    let view = s.view(r).unwrap();
    assert!(!view.waiting);
    assert_eq!(
        view.facts.as_ref().unwrap().last_response,
        Some((200, "OK".into()))
    );
}

#[test]
fn a_fleet_registers_with_reused_buffers_and_no_registerer_keeps_an_event_list() {
    // The sim hands sent bytes and published event lists back as the shell
    // does, so the endpoint lends them out again: every message and event
    // below went through reused buffers.
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Auth { expires: 600 }, ms(5));
    let regs = register_fleet(&mut s, 300, 600);
    s.pump();
    s.run(secs(2));
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    let reqs = peer.requests();
    assert_eq!(reqs.len(), 600, "each REGISTER, then its authenticated one");
    assert_eq!(
        reqs.iter()
            .filter(|r| r.header("Authorization").is_some())
            .count(),
        300
    );
    for r in &regs {
        assert_eq!(s.states(*r), vec![State::Registered]);
        let events = s.events(*r);
        let responses: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                Event::Response { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(responses, vec![401, 200], "no event lost or repeated");
        let core = s.ep.registerer(*r).unwrap();
        assert_eq!(
            core.event_buffer_capacity(),
            0,
            "an idle registerer keeps no event list"
        );
    }
}

#[test]
fn the_refresh_leaves_at_the_refresh_point_and_keeps_the_binding() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 120 }, ms(1));
    let (_, r) = s.account("sip:alice@127.0.0.1", &registrar_uri(None), None, 120);
    s.register(r);
    s.run(secs(3600));
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    let at = peer.registers_at();
    // One hour of 120 s grants: a refresh per grant, never late, never bunched.
    assert!(at.len() >= 30, "{} REGISTERs in an hour", at.len());
    let refresh = sipreg::core::refresh::refresh_delay(
        secs(120),
        99,
        sipreg::core::refresh::spread_of(s.ep.registerer(r).unwrap().call_id()),
    );
    for w in at.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= refresh && gap <= refresh + ms(5),
            "refresh gap {gap:?}, rule says {refresh:?}"
        );
    }
    assert_eq!(s.states(r), vec![State::Registered]);
}

#[test]
fn the_pacing_window_bounds_the_registers_in_flight_and_grows_with_answers() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 3600 }, ms(50));
    let regs = register_fleet(&mut s, 500, 3600);
    s.pump();
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    assert_eq!(
        peer.outstanding, INITIAL_WINDOW as usize,
        "the first burst is the initial window"
    );
    s.run(secs(5));
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    assert!(
        peer.max_outstanding <= MAX_WINDOW as usize,
        "never more than the largest window in flight: {}",
        peer.max_outstanding
    );
    assert!(
        peer.max_outstanding > INITIAL_WINDOW as usize,
        "answers grew the window: {}",
        peer.max_outstanding
    );
    assert!(regs.iter().all(|r| s.state(*r) == State::Registered));
    assert_eq!(peer.requests().len(), 500);
    assert_eq!(s.opened.len(), 1, "500 user agents share one UDP socket");
    let stats = s.stats.values().next().unwrap().window();
    assert_eq!((stats.in_flight, stats.queued), (0, 0), "exact when read");
}

#[test]
fn a_lost_datagram_halves_the_window() {
    let mut s = Sim::new();
    // Silent: every REGISTER is "lost", so Timer E retransmits.
    s.peer(REGISTRAR, Behaviour::Silent, ms(10));
    register_fleet(&mut s, 100, 600);
    s.run(ms(600));
    let w = s.stats.values().next().unwrap().window();
    assert_eq!(w.window, INITIAL_WINDOW / 2, "one loss event, one halving");
    assert_eq!(w.in_flight, INITIAL_WINDOW);
    assert_eq!(w.queued, 100 - INITIAL_WINDOW);
}

#[test]
fn user_agents_share_a_stream_flow_unless_same_aor_or_private() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(1));
    let (_, a) = s.account(
        "sip:a@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    let (_, b) = s.account(
        "sip:b@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    // The same AOR as a: never on a's flow (one contact, one binding).
    let (_, a2) = s.account(
        "sip:a@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    let mut cfg = UserAgentConfig::new("sip:c@127.0.0.1").unwrap();
    cfg.transport = Transport::Tcp;
    cfg.transport_chosen = true;
    cfg.private_socket = true;
    let cfg2 = cfg.clone();
    let c_ua = s.user_agent("sip:c@127.0.0.1", move |c| *c = cfg2);
    let c = s.registerer(
        c_ua,
        &cfg,
        RegistererOptions {
            registrar: Some(registrar_uri(Some("tcp"))),
            ..RegistererOptions::default()
        },
    );
    for r in [a, b, a2, c] {
        s.register(r);
    }
    s.run(secs(1));
    for r in [a, b, a2, c] {
        assert_eq!(s.state(r), State::Registered);
    }
    let flow = |r| s.ep.flow_of(r).unwrap();
    assert_eq!(flow(a), flow(b), "a and b share");
    assert_ne!(flow(a), flow(a2), "the same AOR gets the next flow");
    assert_ne!(flow(c), flow(a));
    assert_ne!(flow(c), flow(a2));
    assert_eq!(s.opened.len(), 3);
    // Disposing every user of a flow closes it.
    s.dispose(a);
    s.dispose(b);
    s.run(secs(1));
    let open: HashSet<_> = s.open_flows().into_iter().collect();
    assert_eq!(open.len(), 2, "a and b's flow closed with its last user");
}

#[test]
fn failover_tries_targets_in_order_and_remembers_the_one_that_answered() {
    let mut s = Sim::new();
    s.peer("127.0.0.1:5061", Behaviour::Silent, ms(1));
    s.peer("127.0.0.1:5062", Behaviour::Status(503), ms(1));
    s.peer("127.0.0.1:5063", Behaviour::Ok { expires: 600 }, ms(1));
    s.dns.insert(
        "sip.example.test".into(),
        ["127.0.0.1:5061", "127.0.0.1:5062", "127.0.0.1:5063"]
            .iter()
            .map(|a| Target {
                transport: Transport::Udp,
                addr: a.parse().unwrap(),
            })
            .collect(),
    );
    let mut cfg = UserAgentConfig::new("sip:alice@example.test").unwrap();
    cfg.set_timers(ms(50), secs(4), secs(5)).unwrap();
    cfg.set_password(Some("pw")).unwrap();
    let cfg2 = cfg.clone();
    let ua = s.user_agent("sip:alice@example.test", move |c| *c = cfg2);
    let r = s.registerer(
        ua,
        &cfg,
        RegistererOptions {
            registrar: Some("sip:sip.example.test".into()),
            ..RegistererOptions::default()
        },
    );
    s.register(r);
    s.run(secs(10));
    assert_eq!(s.state(r), State::Registered);
    let got = |s: &Sim, p: &str| s.peers[&p.parse().unwrap()].requests().len();
    assert!(got(&s, "127.0.0.1:5061") >= 1, "the first target was tried");
    assert_eq!(got(&s, "127.0.0.1:5062"), 1, "the 503 moved on at once");
    assert_eq!(got(&s, "127.0.0.1:5063"), 1);
    // The refresh goes where the registration succeeded.
    s.run(secs(600));
    assert_eq!(got(&s, "127.0.0.1:5063"), 2);
    assert_eq!(got(&s, "127.0.0.1:5062"), 1);
}

#[test]
fn a_lost_stream_while_registered_re_registers_every_user_on_a_new_flow() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(1));
    let (_, a) = s.account(
        "sip:a@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    let (_, b) = s.account(
        "sip:b@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    s.register(a);
    s.register(b);
    s.run(secs(1));
    let first = s.ep.flow_of(a).unwrap();
    assert_eq!(s.ep.flow_of(b), Some(first));
    s.close_from_peer(first);
    s.run(secs(1));
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    assert_eq!(peer.requests().len(), 4, "each re-registered once");
    let second = s.ep.flow_of(a).unwrap();
    assert_ne!(second, first);
    assert_eq!(
        s.ep.flow_of(b),
        Some(second),
        "still sharing, on the new flow"
    );
    assert_eq!(s.states(a), vec![State::Registered]);
}

#[test]
fn a_stream_that_swallows_a_request_is_closed_and_not_reused() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Silent, ms(1));
    let mut cfg = UserAgentConfig::new("sip:a@127.0.0.1").unwrap();
    cfg.transport = Transport::Tcp;
    cfg.transport_chosen = true;
    cfg.set_timers(ms(50), secs(4), secs(5)).unwrap();
    let cfg2 = cfg.clone();
    let ua = s.user_agent("sip:a@127.0.0.1", move |c| *c = cfg2);
    let r = s.registerer(
        ua,
        &cfg,
        RegistererOptions {
            registrar: Some(registrar_uri(Some("tcp"))),
            ..RegistererOptions::default()
        },
    );
    s.register(r);
    s.run(secs(4));
    let events = s.events(r);
    assert!(
        events.contains(&Event::Response {
            status: 408,
            reason: "Request Timeout".into()
        }),
        "{events:?}"
    );
    assert!(s.open_flows().is_empty(), "the connection was closed");
}

#[test]
fn an_unregister_racing_a_refresh_runs_after_it() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 60 }, ms(200));
    let (_, r) = s.account("sip:a@127.0.0.1", &registrar_uri(None), None, 60);
    s.register(r);
    s.run(secs(1));
    // Run until the refresh is on the wire (waiting), then unregister.
    let mut waited = 0;
    while !s.ep.registerer(r).unwrap().is_waiting() {
        s.run(ms(100));
        waited += 1;
        assert!(waited < 1000, "no refresh within 100 s");
    }
    s.unregister(r, false);
    s.run(secs(2));
    let peer = &s.peers[&REGISTRAR.parse().unwrap()];
    let reqs = peer.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.contact_expires(), Some(0), "the un-REGISTER went last");
    assert_eq!(s.state(r), State::Unregistered);
    assert_eq!(
        s.states(r),
        vec![State::Registered, State::Unregistered],
        "never twice the same state"
    );
}

#[test]
fn a_handshake_that_never_finishes_fails_at_its_deadline_before_timer_f() {
    let mut s = Sim::new();
    s.handshake = None;
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(1));
    let mut cfg = UserAgentConfig::new("sip:a@127.0.0.1").unwrap();
    cfg.transport = Transport::Tls;
    cfg.transport_chosen = true;
    // Timer F and the handshake deadline fall on the same instant.
    cfg.set_timers(ms(50), secs(4), secs(5)).unwrap();
    let cfg2 = cfg.clone();
    let ua = s.user_agent("sip:a@127.0.0.1", move |c| *c = cfg2);
    let r = s.registerer(
        ua,
        &cfg,
        RegistererOptions {
            registrar: Some(format!("sips:{REGISTRAR}")),
            retry: sipreg::core::options::RetryPolicy {
                enabled: false,
                ..Default::default()
            },
            ..RegistererOptions::default()
        },
    );
    s.register(r);
    s.run(ms(3199));
    assert!(s.events(r).is_empty(), "nothing before the deadline");
    s.run(ms(2));
    let events = s.events(r);
    assert!(
        events.contains(&Event::Response {
            status: 503,
            reason: "Service Unavailable".into()
        }),
        "{events:?}"
    );
    assert!(s.open_flows().is_empty());
}

#[test]
fn crlf_keep_alives_go_out_on_the_registered_flow_at_the_interval() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 3600 }, ms(1));
    let mut cfg = UserAgentConfig::new("sip:a@127.0.0.1").unwrap();
    cfg.transport = Transport::Tcp;
    cfg.transport_chosen = true;
    cfg.set_keepalive(10).unwrap();
    let cfg2 = cfg.clone();
    let ua = s.user_agent("sip:a@127.0.0.1", move |c| *c = cfg2);
    let r = s.registerer(
        ua,
        &cfg,
        RegistererOptions {
            registrar: Some(registrar_uri(Some("tcp"))),
            expires: 3600,
            ..RegistererOptions::default()
        },
    );
    s.register(r);
    s.run(secs(120));
    let pings = &s.peers[&REGISTRAR.parse().unwrap()].pings;
    assert!(pings.len() >= 10, "{} pings in 120 s", pings.len());
    for w in pings.windows(2) {
        let gap = w[1] - w[0];
        // RFC 5626 §4.4.1: between 80 % and 100 % of the interval.
        assert!(gap >= secs(8) && gap <= secs(10), "gap {gap:?}");
    }
    assert_eq!(s.opened.len(), 1, "all on the registered flow");
    assert_eq!(s.states(r), vec![State::Registered]);
}

#[test]
fn a_freed_registerer_is_forgotten_once_terminated_a_disposed_one_is_kept() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(5));
    let (_, kept) = s.account("sip:a@127.0.0.1", &registrar_uri(None), None, 600);
    let (_, freed) = s.account("sip:b@127.0.0.1", &registrar_uri(None), None, 600);
    s.register(kept);
    s.register(freed);
    s.run(secs(1));
    s.dispose(kept);
    s.ep.free_registerer(s.now, freed);
    s.pump();
    assert!(s.removed.is_empty(), "both wait for their un-REGISTER");
    s.run(secs(1));
    assert_eq!(s.state(kept), State::Terminated);
    assert_eq!(s.removed, vec![freed], "only the freed one is forgotten");
    assert_eq!(s.ep.registerer_count(), 1);
    assert!(s.ep.registerer(freed).is_none() && s.ep.registerer(kept).is_some());
}

#[test]
fn freeing_a_user_agent_unregisters_its_registerers_then_reports_it_gone() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(5));
    let (ua, r) = s.account("sip:a@127.0.0.1", &registrar_uri(None), None, 600);
    s.register(r);
    s.run(secs(1));
    s.ep.free_user_agent(s.now, ua);
    s.pump();
    assert!(s.freed_uas.is_empty(), "waits for the un-REGISTER");
    s.run(secs(1));
    assert_eq!(s.freed_uas, vec![ua]);
    assert_eq!(s.removed, vec![r]);
    assert_eq!(s.ep.registerer_count(), 0);
    assert_eq!(s.ep.flow_count(), 0, "its socket closed");
    let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
    assert_eq!(reqs, 2, "REGISTER and un-REGISTER");
}

#[test]
fn a_user_agent_introduced_twice_keeps_its_registerers() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(5));
    let (ua, r) = s.account("sip:a@127.0.0.1", &registrar_uri(None), None, 600);
    s.register(r);
    s.run(secs(1));
    // The API can send a user agent's introduction again (when it could not
    // tell the first one was queued): a settings change, not a new entry.
    let mut again = UserAgentConfig::new("sip:a@127.0.0.1").unwrap();
    again.set_password(Some("pw")).unwrap();
    s.ep.add_user_agent(ua, Arc::new(again), sipreg::runtime::SharedStats::new());
    s.ep.free_user_agent(s.now, ua);
    s.run(secs(1));
    assert_eq!(s.freed_uas, vec![ua]);
    assert_eq!(s.removed, vec![r], "its registerer was still its own");
    let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
    assert_eq!(reqs, 2, "REGISTER and un-REGISTER");
}

/// Opens flows of `transport` for `n` accounts to a registrar that answers
/// every REGISTER with a 200 and then closes the connection.
fn closing_server(transport: &str, n: usize) -> (Sim, Vec<u64>) {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::OkThenClose { expires: 600 }, ms(1));
    let registrar = match transport {
        "tls" => format!("sips:{REGISTRAR}"),
        t => registrar_uri(Some(t)),
    };
    let regs = (0..n)
        .map(|i| {
            s.account(
                &format!("sip:u{i}@127.0.0.1"),
                &registrar,
                Some(transport),
                600,
            )
            .1
        })
        .collect();
    (s, regs)
}

#[test]
fn a_server_that_closes_after_every_200_cannot_drive_a_reconnect_loop() {
    for transport in ["tcp", "tls", "ws", "wss"] {
        let (mut s, regs) = closing_server(transport, 1);
        s.register(regs[0]);
        s.run(secs(15));
        let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
        assert!(
            s.opened.len() <= 8 && reqs <= 8,
            "{transport}: {} connections and {reqs} REGISTERs in 15 s",
            s.opened.len()
        );
        // The first loss re-registered at once; the second quick one backs off.
        assert_eq!(reqs, 2, "{transport}");
        let retry = s.events(regs[0]).into_iter().find_map(|e| match e {
            Event::RetryScheduled { delay, failures } => Some((delay, failures)),
            _ => None,
        });
        let (delay, failures) = retry.expect("a backoff was scheduled");
        assert_eq!(failures, 2);
        assert!(delay >= secs(60) && delay <= secs(120), "{delay:?}");
        // The backoff keeps growing while the server keeps doing it.
        s.run(secs(3600));
        let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
        assert!(reqs <= 16, "{transport}: {reqs} REGISTERs in an hour");
    }
}

#[test]
fn a_flow_that_outlives_the_base_time_re_registers_at_once_when_lost() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(1));
    let (_, r) = s.account(
        "sip:a@127.0.0.1",
        &registrar_uri(Some("tcp")),
        Some("tcp"),
        600,
    );
    s.register(r);
    s.run(secs(1));
    for round in 0..3 {
        // Each flow lives past the 30 s base before it is lost.
        s.run(secs(40));
        let flow = s.ep.flow_of(r).unwrap();
        s.close_from_peer(flow);
        s.run(ms(100));
        let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
        assert_eq!(reqs, 2 + round, "round {round}: re-registered at once");
    }
    assert!(s
        .events(r)
        .iter()
        .all(|e| !matches!(e, Event::RetryScheduled { .. })));
}

#[test]
fn new_connections_to_one_target_are_rate_limited_after_a_burst() {
    use sipreg::core::endpoint::connect_limit::{BURST, RATE};
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(1));
    let regs: Vec<_> = (0..40)
        .map(|i| {
            let aor = format!("sip:p{i}@127.0.0.1");
            let mut cfg = UserAgentConfig::new(&aor).unwrap();
            cfg.transport = Transport::Tcp;
            cfg.transport_chosen = true;
            cfg.private_socket = true;
            let cfg2 = cfg.clone();
            let ua = s.user_agent(&aor, move |c| *c = cfg2);
            s.registerer(
                ua,
                &cfg,
                RegistererOptions {
                    registrar: Some(registrar_uri(Some("tcp"))),
                    ..RegistererOptions::default()
                },
            )
        })
        .collect();
    for r in &regs {
        s.ep.register(s.now, *r, &[]);
    }
    s.pump();
    assert_eq!(s.opened.len(), BURST as usize, "the burst connects at once");
    s.run(secs(1));
    assert_eq!(s.opened.len(), BURST as usize + RATE as usize);
    s.run(secs(10));
    assert_eq!(s.opened.len(), 40);
    assert!(regs.iter().all(|r| s.state(*r) == State::Registered));
}

#[test]
fn a_thousand_registerers_behind_a_closing_server_stay_bounded() {
    let (mut s, regs) = closing_server("tcp", 1000);
    for r in &regs {
        s.ep.register(s.now, *r, &[]);
    }
    s.run(secs(60));
    let reqs = s.peers[&REGISTRAR.parse().unwrap()].requests().len();
    let conns = s.opened.len();
    println!("1 000 registerers, server closing after every 200: {reqs} REGISTERs and {conns} connections in the first minute");
    // Each registerer: its first REGISTER, at most one at-once re-REGISTER
    // and a few retries of requests cut off in flight; never a loop.
    assert!(reqs <= 4_000, "{reqs} REGISTERs in a minute");
    // Connections: the burst, then the target's rate.
    use sipreg::core::endpoint::connect_limit::{BURST, RATE};
    assert!(
        conns as f64 <= BURST + RATE * 60.0 + 1.0,
        "{conns} connections in a minute"
    );
}
