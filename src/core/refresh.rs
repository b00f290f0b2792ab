//! When to refresh a granted binding: the refresh rule, as pure arithmetic.
//!
//! The refresh is due at `refresh_frequency` % of the granted expiry, but never
//! later than `min(grant / 2, 5 s)` before the expiry (a 99 % refresh of a 30 s
//! grant would leave 0.3 s, less than T1, for the answer to come back). Each
//! registerer then moves its refresh earlier by a stable fraction of up to 10 %
//! of that interval, derived from its Call-ID, so registerers that were granted
//! at the same moment do not refresh in lockstep.

use std::time::Duration;

/// Most the refresh ever waits past the point where `LEAD` is left before expiry.
const LEAD: Duration = Duration::from_secs(5);

/// Largest per-registerer spread, in 1/10 000 of the refresh interval (10 %).
pub const MAX_SPREAD: u32 = 1000;

/// The registerer's stable spread in 0..[`MAX_SPREAD`] (FNV-1a of the Call-ID),
/// so the same Call-ID always refreshes at the same fraction of its grant.
pub fn spread_of(call_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in call_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % MAX_SPREAD
}

/// Delay from the 2xx to the refresh, for a grant of `grant`, a refresh point of
/// `frequency` percent and a spread of `spread` (see [`spread_of`]).
pub fn refresh_delay(grant: Duration, frequency: u32, spread: u32) -> Duration {
    let at_frequency = grant * frequency.min(100) / 100;
    let latest = grant.saturating_sub((grant / 2).min(LEAD));
    let at = at_frequency.min(latest);
    let earlier = at * spread.min(MAX_SPREAD) / 10_000;
    at.saturating_sub(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn long_grants_refresh_at_the_frequency() {
        assert_eq!(refresh_delay(s(3600), 99, 0), s(3564));
        assert_eq!(refresh_delay(s(600), 50, 0), s(300));
    }

    #[test]
    fn at_least_five_seconds_before_expiry() {
        assert_eq!(refresh_delay(s(600), 99, 0), s(594), "99 % would leave 6 s");
        assert_eq!(refresh_delay(s(100), 99, 0), s(95));
        assert_eq!(refresh_delay(s(30), 99, 0), s(25));
        assert_eq!(
            refresh_delay(s(30), 50, 0),
            s(15),
            "50 % already leaves more"
        );
    }

    #[test]
    fn short_grants_keep_half() {
        assert_eq!(refresh_delay(s(8), 99, 0), s(4));
        assert_eq!(refresh_delay(s(2), 99, 0), s(1));
        assert_eq!(refresh_delay(s(1), 99, 0), Duration::from_millis(500));
        assert_eq!(refresh_delay(Duration::ZERO, 99, 0), Duration::ZERO);
    }

    #[test]
    fn spread_moves_up_to_ten_percent_earlier() {
        assert_eq!(
            refresh_delay(s(100), 99, 500),
            Duration::from_millis(90_250)
        );
        let most = refresh_delay(s(30), 99, MAX_SPREAD - 1);
        assert!(most > s(22) && most < s(25), "{most:?}");
        assert_eq!(
            refresh_delay(s(30), 99, 5000),
            Duration::from_millis(22_500)
        );
    }

    #[test]
    fn spread_is_stable_and_covers_the_range() {
        assert_eq!(spread_of("abc"), spread_of("abc"));
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let v = spread_of(&format!("call-{i}@host"));
            assert!(v < MAX_SPREAD);
            buckets[(v / 100) as usize] += 1;
        }
        for (i, b) in buckets.iter().enumerate() {
            assert!((700..1300).contains(b), "bucket {i}: {b} of 10 000");
        }
    }
}
