//! New stream connections per registrar target are rate-limited (a token
//! bucket per transport and address), whatever the number of registerers
//! behind them: a burst of `BURST` at once, then `RATE` per second. A
//! server that closes every connection, or a network change with many
//! private connections, cannot make the process open connections in a loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::options::Transport;

/// Connections to one target that may start at once.
pub const BURST: f64 = 16.0;
/// Connections per second to one target after the burst.
pub const RATE: f64 = 4.0;

#[derive(Debug)]
struct Bucket {
    /// Tokens left (negative: reserved by connections waiting their turn).
    tokens: f64,
    at: Instant,
}

/// The buckets of every target connected to.
#[derive(Debug, Default)]
pub struct ConnectLimit {
    buckets: HashMap<(Transport, SocketAddr), Bucket>,
}

impl ConnectLimit {
    /// Takes the turn of a new connection to `target` asked for at `now`:
    /// `None` if it may start now, else when it may.
    pub fn take(
        &mut self,
        transport: Transport,
        target: SocketAddr,
        now: Instant,
    ) -> Option<Instant> {
        let b = self.buckets.entry((transport, target)).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * RATE;
        b.tokens = (b.tokens + refill).min(BURST);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            return None;
        }
        Some(now + Duration::from_secs_f64(-b.tokens / RATE))
    }

    /// Forgets targets whose bucket is full again (nothing learnt to keep).
    pub fn prune(&mut self, now: Instant) {
        self.buckets.retain(|_, b| {
            let refill = now.saturating_duration_since(b.at).as_secs_f64() * RATE;
            b.tokens + refill < BURST
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut l = ConnectLimit::default();
        let t0 = Instant::now();
        let target: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        for _ in 0..BURST as usize {
            assert_eq!(l.take(Transport::Tcp, target, t0), None);
        }
        // The next ones wait their turn, a quarter second apart.
        let waits: Vec<Duration> = (0..4)
            .map(|_| l.take(Transport::Tcp, target, t0).unwrap() - t0)
            .collect();
        assert_eq!(
            waits,
            [250, 500, 750, 1000].map(Duration::from_millis).to_vec()
        );
        // Another target, or another transport, has its own bucket.
        assert_eq!(l.take(Transport::Tls, target, t0), None);
        assert_eq!(
            l.take(Transport::Tcp, "127.0.0.1:5070".parse().unwrap(), t0),
            None
        );
        // Ten idle seconds refill it.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.take(Transport::Tcp, target, later), None);
        l.prune(later + Duration::from_secs(10));
        assert!(l.buckets.is_empty());
    }
}
