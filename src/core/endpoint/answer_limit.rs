//! How much the endpoint does for the requests of one source: token
//! buckets, so that requests with forged source addresses cannot turn the
//! library into a reflector, and a flood from one address cannot starve
//! the answers to our own REGISTERs.
//!
//! A registrar (or outbound proxy) our registerers send to is trusted with
//! a large budget of its own, keyed by its exact address: it pings every
//! contact it holds (OPTIONS keep-alives of thousands of contacts come in
//! bursts) and relays the calls and messages for them. Every other source
//! shares a small budget per IP address (the port is free for a forger to
//! vary), and all of them together one more.
//!
//! Each table is bounded: when it is full, idle sources (whose bucket has
//! refilled) are forgotten; if none is idle, a new source gets nothing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::core::idhash::IdMap;

/// Answers per second a trusted source (a registrar we send to) gets.
pub const TRUSTED_RATE: f64 = 5_000.0;
/// Answers a trusted source can get at once.
pub const TRUSTED_BURST: f64 = 20_000.0;
/// Answers per second one untrusted IP address gets.
pub const SOURCE_RATE: f64 = 20.0;
/// Answers one untrusted IP address can get at once.
pub const SOURCE_BURST: f64 = 40.0;
/// Answers per second all untrusted sources together get.
pub const GLOBAL_RATE: f64 = 500.0;
/// Answers all untrusted sources together can get at once.
pub const GLOBAL_BURST: f64 = 1_000.0;
/// Sources remembered per table.
const MAX_SOURCES: usize = 4_096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refused at least once since it last had tokens (log once per episode).
    limited: bool,
}

impl Bucket {
    fn full(now: Instant, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
            limited: false,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    fn has(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        self.refill(now, rate, burst);
        self.tokens >= 1.0
    }
}

/// The verdict on one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead (a token was taken).
    Allowed,
    /// Over budget: drop it. `first` for the first refusal of this source
    /// since it last had budget (log that one).
    Limited {
        /// The first refusal of an episode.
        first: bool,
    },
}

/// Per-source answer budgets.
#[derive(Debug, Default)]
pub struct AnswerLimit {
    /// Registrars and stream peers: addresses we chose, so the id hasher.
    trusted: IdMap<SocketAddr, Bucket>,
    sources: HashMap<IpAddr, Bucket>,
    global: Option<Bucket>,
}

impl AnswerLimit {
    /// Takes one answer's budget for `source` at `now`.
    pub fn allow(&mut self, now: Instant, source: SocketAddr, trusted: bool) -> Verdict {
        if trusted {
            return take(
                &mut self.trusted,
                source,
                now,
                TRUSTED_RATE,
                TRUSTED_BURST,
                None,
            );
        }
        let global = self
            .global
            .get_or_insert_with(|| Bucket::full(now, GLOBAL_BURST));
        take(
            &mut self.sources,
            source.ip(),
            now,
            SOURCE_RATE,
            SOURCE_BURST,
            Some(global),
        )
    }

    /// Sources remembered (tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.trusted.len() + self.sources.len()
    }
}

/// Takes a token from `key`'s bucket (and from `global` too, when given).
fn take<K: std::hash::Hash + Eq + Copy, S: std::hash::BuildHasher>(
    table: &mut HashMap<K, Bucket, S>,
    key: K,
    now: Instant,
    rate: f64,
    burst: f64,
    global: Option<&mut Bucket>,
) -> Verdict {
    // A known source (nearly every request) takes one lookup.
    if let Some(b) = table.get_mut(&key) {
        return spend(b, now, rate, burst, global);
    }
    if table.len() >= MAX_SOURCES {
        // Forget the idle ones (refilled to the brim).
        table.retain(|_, b| {
            b.refill(now, rate, burst);
            b.tokens < burst
        });
    }
    if table.len() >= MAX_SOURCES {
        return Verdict::Limited { first: false };
    }
    let b = table.entry(key).or_insert_with(|| Bucket::full(now, burst));
    spend(b, now, rate, burst, global)
}

/// Takes a token from `b` (and from `global` too, when given) if both have one.
fn spend(
    b: &mut Bucket,
    now: Instant,
    rate: f64,
    burst: f64,
    global: Option<&mut Bucket>,
) -> Verdict {
    let mut global = global;
    let global_ok = match global.as_mut() {
        Some(g) => g.has(now, GLOBAL_RATE, GLOBAL_BURST),
        None => true,
    };
    if b.has(now, rate, burst) && global_ok {
        b.tokens -= 1.0;
        b.limited = false;
        if let Some(g) = global {
            g.tokens -= 1.0;
        }
        Verdict::Allowed
    } else {
        let first = !b.limited;
        b.limited = true;
        Verdict::Limited { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_source_gets_its_burst_then_its_rate() {
        let mut l = AnswerLimit::default();
        let t0 = Instant::now();
        let src = addr("192.0.2.1:5060");
        let allowed = (0..1000)
            .filter(|_| l.allow(t0, src, false) == Verdict::Allowed)
            .count();
        assert_eq!(allowed, SOURCE_BURST as usize);
        assert_eq!(l.allow(t0, src, false), Verdict::Limited { first: false });
        // Another port of the same address shares the budget.
        assert!(matches!(
            l.allow(t0, addr("192.0.2.1:1"), false),
            Verdict::Limited { .. }
        ));
        // A second later: the rate's worth again.
        let t1 = t0 + Duration::from_secs(1);
        let again = (0..1000)
            .filter(|_| l.allow(t1, src, false) == Verdict::Allowed)
            .count();
        assert_eq!(again, SOURCE_RATE as usize);
        // Another address is not affected.
        assert_eq!(l.allow(t1, addr("192.0.2.2:5060"), false), Verdict::Allowed);
    }

    #[test]
    fn the_first_refusal_of_an_episode_is_marked() {
        let mut l = AnswerLimit::default();
        let t0 = Instant::now();
        let src = addr("192.0.2.1:5060");
        for _ in 0..SOURCE_BURST as usize {
            l.allow(t0, src, false);
        }
        assert_eq!(l.allow(t0, src, false), Verdict::Limited { first: true });
        assert_eq!(l.allow(t0, src, false), Verdict::Limited { first: false });
        let later = t0 + Duration::from_secs(2);
        assert_eq!(l.allow(later, src, false), Verdict::Allowed);
    }

    #[test]
    fn a_trusted_registrar_can_ping_ten_thousand_contacts_at_once() {
        let mut l = AnswerLimit::default();
        let t0 = Instant::now();
        let registrar = addr("127.0.0.1:5060");
        assert!((0..10_000).all(|_| l.allow(t0, registrar, true) == Verdict::Allowed));
        // Its budget is its own: an untrusted neighbour on the same IP still has one.
        assert_eq!(
            l.allow(t0, addr("127.0.0.1:40000"), false),
            Verdict::Allowed
        );
    }

    #[test]
    fn many_forged_sources_share_the_global_budget_and_the_table_stays_bounded() {
        let mut l = AnswerLimit::default();
        let t0 = Instant::now();
        let mut allowed = 0;
        for i in 0..20_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            if l.allow(t0, SocketAddr::new(ip.into(), 5060), false) == Verdict::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, GLOBAL_BURST as usize);
        assert!(l.tracked() <= MAX_SOURCES);
        // Much later every old entry is idle: new sources get in again.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            l.allow(later, addr("198.51.100.1:5060"), false),
            Verdict::Allowed
        );
        assert!(l.tracked() <= MAX_SOURCES);
    }
}
