//! Optional instants and socket addresses in half the room `Option` takes
//! (a registerer holds five of the one and three of the other, its
//! handle's snapshot one of each, per account).

use std::net::{SocketAddr, SocketAddrV6};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The instant every [`MaybeInstant`] counts from: the first one this
/// process stored (earlier instants count backwards from it). Taken from
/// what is stored, not read from a clock: the core reads none.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// An optional instant in 8 bytes (`Option<Instant>` takes 16): signed
/// nanoseconds from a process-wide origin, exact within ±292 years of it
/// (beyond, it saturates there: a deadline centuries away never comes either
/// way). Ordered as the instants are, none before every instant.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaybeInstant(i64);

// Its associated constant would put an opaque type in the C header.
/// cbindgen:ignore
impl MaybeInstant {
    /// No instant.
    pub const NONE: MaybeInstant = MaybeInstant(i64::MIN);

    /// Holds `t`, if any.
    pub fn new(t: Option<Instant>) -> MaybeInstant {
        t.map_or(MaybeInstant::NONE, MaybeInstant::at)
    }

    /// Holds `t`.
    pub fn at(t: Instant) -> MaybeInstant {
        let o = *ORIGIN.get_or_init(|| t);
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        MaybeInstant(match t.checked_duration_since(o) {
            Some(ahead) => nanos(ahead),
            // i64::MIN stays free for NONE.
            None => -nanos(o.duration_since(t)),
        })
    }

    /// The instant held, if any.
    pub fn get(self) -> Option<Instant> {
        if self.0 == i64::MIN {
            return None;
        }
        // Set: an instant was stored (`at` sets the origin first).
        let o = *ORIGIN.get()?;
        let d = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            o.checked_add(d)
        } else {
            o.checked_sub(d)
        }
    }

    /// Whether an instant is held.
    pub fn is_some(self) -> bool {
        self.0 != i64::MIN
    }

    /// Whether no instant is held.
    pub fn is_none(self) -> bool {
        !self.is_some()
    }
}

impl std::fmt::Debug for MaybeInstant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// An optional socket address in 16 bytes (`Option<SocketAddr>` takes 32):
/// IPv4 inline, IPv6 boxed.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum MaybeAddr {
    /// No address.
    #[default]
    None,
    /// An IPv4 address and port.
    V4([u8; 4], u16),
    /// An IPv6 address (with port, flow info and scope).
    V6(Box<SocketAddrV6>),
}

impl MaybeAddr {
    /// Holds `addr`, if any.
    pub fn new(addr: Option<SocketAddr>) -> MaybeAddr {
        match addr {
            None => MaybeAddr::None,
            Some(SocketAddr::V4(a)) => MaybeAddr::V4(a.ip().octets(), a.port()),
            Some(SocketAddr::V6(a)) => MaybeAddr::V6(Box::new(a)),
        }
    }

    /// The address held, if any.
    pub fn get(&self) -> Option<SocketAddr> {
        match self {
            MaybeAddr::None => None,
            MaybeAddr::V4(ip, port) => Some(SocketAddr::from((*ip, *port))),
            MaybeAddr::V6(a) => Some(SocketAddr::V6(**a)),
        }
    }
}

impl std::fmt::Debug for MaybeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_before_and_after_the_origin_come_back_exactly() {
        let now = Instant::now();
        let earlier = now.checked_sub(Duration::new(3, 7)).unwrap_or(now);
        for t in [now, earlier, now + Duration::new(86_400 * 365, 123_456_789)] {
            assert_eq!(MaybeInstant::at(t).get(), Some(t));
            assert!(MaybeInstant::at(t).is_some());
        }
        assert_eq!(MaybeInstant::NONE.get(), None);
        assert!(MaybeInstant::NONE.is_none());
        assert_eq!(std::mem::size_of::<MaybeInstant>(), 8);
    }

    #[test]
    fn instants_order_as_their_times_and_none_first() {
        let now = Instant::now();
        let earlier = now.checked_sub(Duration::from_millis(1)).unwrap_or(now);
        let later = now + Duration::from_nanos(1);
        let (e, n, l) = (
            MaybeInstant::at(earlier),
            MaybeInstant::at(now),
            MaybeInstant::at(later),
        );
        assert!(e <= n && n < l, "{e:?} {n:?} {l:?}");
        assert!(MaybeInstant::NONE < e);
    }

    #[test]
    fn addresses_of_both_families_come_back_exactly() {
        let scoped = SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 9, 2);
        let addrs: [SocketAddr; 4] = [
            "127.0.0.1:5060".parse().unwrap(),
            "[::1]:5061".parse().unwrap(),
            "0.0.0.0:0".parse().unwrap(),
            SocketAddr::V6(scoped),
        ];
        for a in addrs {
            assert_eq!(MaybeAddr::new(Some(a)).get(), Some(a));
        }
        assert_eq!(MaybeAddr::new(None).get(), None);
        assert_eq!(std::mem::size_of::<MaybeAddr>(), 16);
    }
}
