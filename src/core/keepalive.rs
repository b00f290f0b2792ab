//! Keep-alive of one flow, sans-IO: when to ping, what to send, and when the
//! flow counts as failed.
//!
//! - RFC 5626 §4.4.1 on a stream: CRLFCRLF ping, a CRLF pong is due within 10 s.
//! - RFC 5626 §4.4.2 on UDP: a STUN Binding request (retransmitted with the
//!   RFC 5389 back-off inside the same 10 s); a changed mapped address is a
//!   flow failure too.
//! - Plain NAT keep-alive (no outbound): CRLF on UDP (like pjsip's default
//!   keep-alive data), CRLFCRLF on a stream; no answer expected.
//!
//! With outbound, each interval is drawn between 80 % and 100 % of the base
//! (Flow-Timer or the configured value), so many clients do not ping in step.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::rand::Rng;
use super::stun::{self, TransactionId};

/// How long a pong or STUN answer may take before the flow is failed (RFC 5626 §4.4.1).
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// First STUN retransmission delay (RFC 5389 §7.2.1 RTO).
const STUN_RTO: Duration = Duration::from_millis(500);

/// Which keep-alive a flow gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// CRLFCRLF ping, CRLF pong expected (stream flows with outbound).
    CrlfPong,
    /// STUN Binding request, success response expected (UDP flows with outbound).
    Stun,
    /// CRLF with no answer expected (plain NAT keep-alive on UDP, no outbound).
    Crlf,
    /// CRLFCRLF with no answer expected (plain keep-alive on a stream, no outbound).
    DoubleCrlf,
}

/// Why a flow failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowFailure {
    /// No pong / STUN answer within [`PONG_TIMEOUT`].
    NoAnswer,
    /// The STUN mapped address changed: the NAT rebound the flow.
    MappedChanged {
        /// What the server saw before.
        old: SocketAddr,
        /// What it sees now.
        new: SocketAddr,
    },
}

/// The bytes of a CRLFCRLF ping (RFC 5626 §3.5.1).
pub const CRLF_PING: &[u8] = b"\r\n\r\n";
/// The bytes of a plain UDP keep-alive.
pub const CRLF: &[u8] = b"\r\n";

/// Keep-alive state of one flow.
#[derive(Debug, Default)]
pub struct KeepAlive {
    active: Option<(Mechanism, Duration)>,
    next_ping: Option<Instant>,
    deadline: Option<Instant>,
    stun_id: Option<TransactionId>,
    stun_resend: Option<(Instant, Duration)>,
    mapped: Option<SocketAddr>,
    owed: Vec<Vec<u8>>,
    pings: u64,
}

impl KeepAlive {
    /// The state of a flow that never ran keep-alives (same as `default()`).
    pub const IDLE: KeepAlive = KeepAlive {
        active: None,
        next_ping: None,
        deadline: None,
        stun_id: None,
        stun_resend: None,
        mapped: None,
        owed: Vec::new(),
        pings: 0,
    };

    /// (Re)starts keep-alives with `base` between pings. A running ping
    /// schedule keeps its next ping if that comes sooner; an outstanding
    /// answer is forgiven (the caller just heard from the peer on this flow).
    pub fn start(&mut self, now: Instant, mech: Mechanism, base: Duration, rng: &mut Rng) {
        if base.is_zero() {
            return self.stop();
        }
        let same = self.active == Some((mech, base));
        self.active = Some((mech, base));
        self.deadline = None;
        self.stun_resend = None;
        let next = now + interval(mech, base, rng);
        self.next_ping = match self.next_ping {
            Some(t) if same && t <= next => Some(t),
            _ => Some(next),
        };
    }

    /// Stops pinging (unregistered, terminated). The mapped address is kept
    /// until [`new_flow`](Self::new_flow).
    pub fn stop(&mut self) {
        self.active = None;
        self.next_ping = None;
        self.deadline = None;
        self.stun_id = None;
        self.stun_resend = None;
        self.owed.clear();
    }

    /// The flow was replaced: forget what the old one saw.
    pub fn new_flow(&mut self) {
        self.stop();
        self.mapped = None;
    }

    /// The running mechanism and base interval, if any.
    pub fn active(&self) -> Option<(Mechanism, Duration)> {
        self.active
    }

    /// Pings sent since creation (STUN retransmissions not counted).
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// The reflexive address the last STUN answer reported.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// Whether an answer is outstanding.
    pub fn awaiting(&self) -> bool {
        self.deadline.is_some()
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_ping, self.deadline, self.stun_resend.map(|r| r.0)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Bytes to send on the flow now, oldest first.
    pub fn poll_ping(&mut self) -> Option<Vec<u8>> {
        if self.owed.is_empty() {
            None
        } else {
            Some(self.owed.remove(0))
        }
    }

    /// Runs what is due at `now`; a missing answer fails the flow (and stops pinging).
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) -> Option<FlowFailure> {
        let (mech, base) = self.active?;
        if self.deadline.is_some_and(|d| now >= d) {
            self.stop();
            return Some(FlowFailure::NoAnswer);
        }
        if let Some((at, rto)) = self.stun_resend {
            if now >= at {
                if let Some(id) = self.stun_id {
                    self.owed.push(stun::binding_request(&id));
                }
                let rto = rto * 2;
                self.stun_resend =
                    Some((now + rto, rto)).filter(|(t, _)| self.deadline.is_some_and(|d| *t < d));
            }
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            self.pings += 1;
            match mech {
                Mechanism::Crlf => self.owed.push(CRLF.to_vec()),
                Mechanism::DoubleCrlf => self.owed.push(CRLF_PING.to_vec()),
                Mechanism::CrlfPong => {
                    self.owed.push(CRLF_PING.to_vec());
                    self.deadline.get_or_insert(now + PONG_TIMEOUT);
                }
                Mechanism::Stun => {
                    let mut id = [0u8; 12];
                    for b in &mut id {
                        *b = (rng.next_u64() & 0xFF) as u8;
                    }
                    self.stun_id = Some(id);
                    self.owed.push(stun::binding_request(&id));
                    self.deadline.get_or_insert(now + PONG_TIMEOUT);
                    self.stun_resend = Some((now + STUN_RTO, STUN_RTO));
                }
            }
            self.next_ping = Some(now + interval(mech, base, rng));
        }
        None
    }

    /// A CRLF pong arrived on the flow.
    pub fn on_pong(&mut self) {
        if matches!(self.active, Some((Mechanism::CrlfPong, _))) {
            self.deadline = None;
        }
    }

    /// A datagram that may be the answer to our STUN request. Returns whether
    /// it was ours, and a failure if the mapped address changed.
    pub fn on_stun(&mut self, datagram: &[u8]) -> (bool, Option<FlowFailure>) {
        let Some(answer) = stun::parse_binding_success(datagram) else {
            return (false, None);
        };
        if self.stun_id != Some(answer.id) {
            return (false, None);
        }
        self.stun_id = None;
        self.stun_resend = None;
        self.deadline = None;
        match self.mapped.replace(answer.mapped) {
            Some(old) if old != answer.mapped => {
                self.stop();
                self.mapped = Some(answer.mapped);
                (
                    true,
                    Some(FlowFailure::MappedChanged {
                        old,
                        new: answer.mapped,
                    }),
                )
            }
            _ => (true, None),
        }
    }
}

/// The wait before the next ping: the base for plain keep-alives, else a
/// random point between 80 % and 100 % of it (RFC 5626 §4.4.1).
fn interval(mech: Mechanism, base: Duration, rng: &mut Rng) -> Duration {
    match mech {
        Mechanism::Crlf | Mechanism::DoubleCrlf => base,
        Mechanism::CrlfPong | Mechanism::Stun => base.mul_f64(0.8 + 0.2 * rng.unit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn outbound_intervals_stay_between_80_and_100_percent() {
        let mut rng = Rng::new(7);
        let t0 = Instant::now();
        let mut k = KeepAlive::default();
        k.start(t0, Mechanism::CrlfPong, secs(30), &mut rng);
        let mut now = t0;
        for _ in 0..200 {
            let next = k.poll_timeout().unwrap();
            let gap = next - now;
            assert!(gap >= secs(24) && gap <= secs(30), "{gap:?}");
            now = next;
            assert_eq!(k.handle_timeout(now, &mut rng), None);
            assert_eq!(k.poll_ping().as_deref(), Some(CRLF_PING));
            k.on_pong();
        }
        assert_eq!(k.pings(), 200);
    }

    #[test]
    fn missing_pong_fails_after_ten_seconds() {
        let mut rng = Rng::new(1);
        let t0 = Instant::now();
        let mut k = KeepAlive::default();
        k.start(t0, Mechanism::CrlfPong, secs(30), &mut rng);
        let ping_at = k.poll_timeout().unwrap();
        assert_eq!(k.handle_timeout(ping_at, &mut rng), None);
        assert!(k.poll_ping().is_some());
        assert_eq!(k.poll_timeout(), Some(ping_at + PONG_TIMEOUT));
        assert_eq!(
            k.handle_timeout(ping_at + secs(9), &mut rng),
            None,
            "not yet"
        );
        assert_eq!(
            k.handle_timeout(ping_at + PONG_TIMEOUT, &mut rng),
            Some(FlowFailure::NoAnswer)
        );
        assert_eq!(k.poll_timeout(), None, "stopped after the failure");
    }

    #[test]
    fn plain_crlf_keeps_the_exact_interval_and_expects_nothing() {
        let mut rng = Rng::new(1);
        let t0 = Instant::now();
        let mut k = KeepAlive::default();
        k.start(t0, Mechanism::Crlf, secs(15), &mut rng);
        for i in 1..=10 {
            let t = k.poll_timeout().unwrap();
            assert_eq!(t, t0 + secs(15 * i));
            assert_eq!(k.handle_timeout(t, &mut rng), None);
            assert_eq!(k.poll_ping().as_deref(), Some(CRLF));
            assert!(!k.awaiting());
        }
    }

    fn answer(id: &TransactionId, mapped: &str) -> Vec<u8> {
        let a: SocketAddr = mapped.parse().unwrap();
        let SocketAddr::V4(v4) = a else { panic!() };
        let mut m = vec![0x01, 0x01, 0x00, 0x0C];
        m.extend_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(id);
        m.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01]);
        m.extend_from_slice(&v4.port().to_be_bytes());
        m.extend_from_slice(&v4.ip().octets());
        m
    }

    fn id_of(req: &[u8]) -> TransactionId {
        let mut id = [0u8; 12];
        id.copy_from_slice(&req[8..20]);
        id
    }

    #[test]
    fn stun_retransmits_within_the_deadline_and_detects_a_mapping_change() {
        let mut rng = Rng::new(3);
        let t0 = Instant::now();
        let mut k = KeepAlive::default();
        k.start(t0, Mechanism::Stun, secs(20), &mut rng);
        let at = k.poll_timeout().unwrap();
        k.handle_timeout(at, &mut rng);
        let req = k.poll_ping().unwrap();
        assert!(stun::is_stun(&req));
        // Retransmissions at +0.5, +1.5, +3.5, +7.5 s, none after the deadline.
        let mut resends = Vec::new();
        while let Some(t) = k.poll_timeout() {
            if t >= at + PONG_TIMEOUT {
                break;
            }
            k.handle_timeout(t, &mut rng);
            if let Some(r) = k.poll_ping() {
                assert_eq!(r, req);
                resends.push(t - at);
            }
        }
        assert_eq!(
            resends,
            [500, 1500, 3500, 7500].map(Duration::from_millis).to_vec()
        );
        let id = id_of(&req);
        assert_eq!(
            k.on_stun(&answer(&[9; 12], "1.2.3.4:5")),
            (false, None),
            "foreign id"
        );
        assert_eq!(k.on_stun(&answer(&id, "1.2.3.4:5")), (true, None));
        assert_eq!(k.mapped(), Some("1.2.3.4:5".parse().unwrap()));
        assert!(!k.awaiting());
        // Next ping, answered from a new mapping: flow failure.
        let at = k.poll_timeout().unwrap();
        k.handle_timeout(at, &mut rng);
        let req = k.poll_ping().unwrap();
        let (ours, failure) = k.on_stun(&answer(&id_of(&req), "1.2.3.4:6"));
        assert!(ours);
        assert_eq!(
            failure,
            Some(FlowFailure::MappedChanged {
                old: "1.2.3.4:5".parse().unwrap(),
                new: "1.2.3.4:6".parse().unwrap()
            })
        );
        assert_eq!(k.poll_timeout(), None);
    }
}
