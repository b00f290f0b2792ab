//! The no-storm check shared by tests/storm_props.rs and the `storm` fuzz
//! target: a scripted registrar answers a registerer left alone (one
//! `register()`, nothing else), on the endpoint with its simulated network
//! or on the core registerer alone, and the busiest minute is measured.
//!
//! The bound, with the default recovery policy (retry_base 30 s, retry_max
//! 30 min) and grants of at least 60 s: at most [`BOUND_PER_MINUTE`]
//! REGISTERs (new transactions; Timer E retransmissions are not counted) in
//! any 60 s. One attempt sends at most 11 (the request, 6 authenticated
//! resends, 3 after 423, 1 without outbound); the first failure (or quick
//! flow loss) may retry at once; every later one waits at least retry_base;
//! refreshes of a 60 s grant leave at least 49 s apart.

use std::time::Duration;

use super::harness::Harness;
pub use super::sim::Step;
use super::sim::{ms, secs, Behaviour, Sim};

/// REGISTERs a registerer left alone may send in any minute.
pub const BOUND_PER_MINUTE: usize = 24;

/// The most REGISTERs in any 60 s window.
pub fn worst_minute(at: &[Duration]) -> usize {
    let mut worst = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= secs(60) {
            start += 1;
        }
        worst = worst.max(end - start + 1);
    }
    worst
}

/// The busiest minute and the connections opened, on the endpoint over
/// `transport`, for `minutes` of simulated time.
pub fn run_endpoint(transport: &str, script: Vec<Step>, minutes: u64) -> (usize, usize) {
    let mut s = Sim::new();
    s.peer("127.0.0.1:5060", Behaviour::Script(script), ms(20));
    let registrar = format!("sip:127.0.0.1:5060;transport={transport}");
    let (_, r) = s.account("sip:alice@127.0.0.1", &registrar, Some(transport), 600);
    s.register(r);
    s.run(secs(60 * minutes));
    let peer = &s.peers[&"127.0.0.1:5060".parse().unwrap()];
    let at: Vec<_> = peer
        .received
        .iter()
        .filter(|(_, _, retransmission)| !retransmission)
        .map(|(t, _, _)| *t)
        .collect();
    (worst_minute(&at), s.opened.len())
}

/// The same storm check on the core registerer alone (no endpoint): the
/// script answers each REGISTER the core emits; a close is
/// `connection_lost`, as the endpoint reports it.
pub fn run_core(script: &[Step], tcp: bool, minutes: u64) -> usize {
    use sipreg::core::options::{RegistererOptions, Transport, UserAgentConfig};
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_password(Some("pw")).unwrap();
    if tcp {
        ua.transport = Transport::Tcp;
        ua.transport_chosen = true;
    }
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.register();
    let end = h.now + secs(60 * minutes);
    let mut answered = 0;
    let mut pos = 0;
    let mut n = 0;
    loop {
        // Answer every new original request with the next step.
        let originals: Vec<_> = h
            .sent
            .iter()
            .filter(|s| !s.retransmission)
            .cloned()
            .collect();
        if answered < originals.len() {
            answered = originals.len();
            let step = script[pos % script.len()].clone();
            pos += 1;
            n += 1;
            h.advance(ms(20));
            match step {
                Step::Ok(e) => h.ok(e),
                Step::OkThenClose(e) => {
                    h.ok(e);
                    if tcp {
                        h.reg.connection_lost(h.now, closed());
                        h.drain();
                    }
                }
                Step::Close => {
                    if tcp {
                        h.reg.connection_lost(h.now, closed());
                        h.drain();
                    }
                }
                Step::Challenge => h.challenge(&format!("n{n}"), false),
                Step::Status(s) => h.reply(s, "Scripted", &[]),
                Step::RetryAfter(s, ra) => h.reply(s, "Scripted", &[format!("Retry-After: {ra}")]),
                Step::TooBrief(min) => {
                    h.reply(423, "Interval Too Brief", &[format!("Min-Expires: {min}")])
                }
                Step::Silent => {}
            }
            continue;
        }
        match h.reg.poll_timeout() {
            Some(t) if t <= end => h.advance(t.saturating_duration_since(h.now)),
            _ => break,
        }
    }
    let at: Vec<_> = h
        .sent
        .iter()
        .filter(|s| !s.retransmission)
        .map(|s| s.at)
        .collect();
    worst_minute(&at)
}

/// Decodes fuzz bytes into a transport and a script, runs it for 30
/// simulated minutes on the endpoint and on the core, and panics if either
/// stormed.
pub fn run_bytes(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let script: Vec<Step> = rest
        .chunks(3)
        .take(16)
        .map(|c| {
            let v = u32::from(c.get(1).copied().unwrap_or(0)) << 8
                | u32::from(c.get(2).copied().unwrap_or(0));
            match c[0] % 8 {
                0 => Step::Ok(60 + v % 3600),
                1 => Step::OkThenClose(60 + v % 3600),
                2 => Step::Close,
                3 => Step::Challenge,
                4 => Step::Status([403, 404, 480, 500, 503, 603][v as usize % 6]),
                5 => Step::RetryAfter(500 + (v % 4) as u16, v % 20),
                6 => Step::TooBrief(v * 3),
                _ => Step::Silent,
            }
        })
        .collect();
    if script.is_empty() {
        return;
    }
    let transport = ["udp", "tcp", "tls", "ws"][usize::from(first % 4)];
    let (worst, _) = run_endpoint(transport, script.clone(), 30);
    assert!(
        worst <= BOUND_PER_MINUTE,
        "{transport}: {worst} REGISTERs in a minute: {script:?}"
    );
    let worst = run_core(&script, first & 4 != 0, 30);
    assert!(
        worst <= BOUND_PER_MINUTE,
        "core: {worst} REGISTERs in a minute: {script:?}"
    );
}

/// What the endpoint reports when a peer closes a connection.
fn closed() -> sipreg::core::failure::Failure {
    sipreg::core::failure::Failure::new(
        sipreg::core::failure::FailureKind::Transport,
        "connection closed by peer",
    )
}
