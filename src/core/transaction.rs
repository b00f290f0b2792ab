//! Non-INVITE client transaction timers (RFC 3261 §17.1.2), without I/O.
//!
//! The transaction only decides *when* to retransmit, time out and forget; the
//! registerer owns the bytes and the meaning of the responses.

use std::time::{Duration, Instant};

use super::short_text::ShortText;

/// Bytes of a branch kept inside the transaction (ours are 29).
const BRANCH_INLINE: usize = 32;

/// RFC 3261 timer values. Tests and fast failure detection shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; Timer E starts here and Timer F is 64*T1.
    pub t1: Duration,
    /// Cap for the Timer E interval.
    pub t2: Duration,
    /// How long a completed transaction absorbs retransmitted responses (Timer K, unreliable transports).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers::DEFAULT
    }
}

impl Timers {
    /// RFC 3261's defaults: T1 500 ms, T2 4 s, T4 5 s.
    pub const DEFAULT: Timers = Timers {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
    };

    /// Timer F: how long a request waits for a final response.
    pub fn timer_f(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Where the transaction is in the RFC 3261 Figure 6 state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxState {
    /// Sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; retransmissions of it are absorbed until Timer K.
    Completed,
    /// Gone.
    Terminated,
}

/// What a received response means for the transaction user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A 1xx: pass nowhere, the transaction moved to Proceeding.
    Provisional,
    /// The first final response: hand it to the registerer.
    Final,
    /// A retransmitted final response, or anything after the end: drop it.
    Absorbed,
}

/// What a timer expiry asks the owner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerOutcome {
    /// Nothing is due yet.
    Nothing,
    /// Timer E: send the request again.
    Retransmit,
    /// Timer F: no final response in time (report 408).
    TimedOut,
    /// Timer K: the completed transaction can be forgotten.
    Terminated,
}

/// One non-INVITE client transaction.
#[derive(Clone, Debug)]
pub struct ClientTransaction {
    // Ours are 29 bytes: kept inline, as a branch is made per request.
    branch: ShortText<BRANCH_INLINE>,
    reliable: bool,
    timers: Timers,
    state: TxState,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Instant,
    timer_k: Option<Instant>,
    retransmissions: u32,
}

impl ClientTransaction {
    /// Starts a transaction whose request was just sent at `now`.
    pub fn new(branch: &str, reliable: bool, timers: Timers, now: Instant) -> Self {
        let timer_e = (!reliable).then(|| now + timers.t1);
        ClientTransaction {
            branch: ShortText::new(branch),
            reliable,
            timers,
            state: TxState::Trying,
            timer_e,
            e_interval: timers.t1,
            timer_f: now + timers.timer_f(),
            timer_k: None,
            retransmissions: 0,
        }
    }

    /// The Via branch identifying this transaction.
    pub fn branch(&self) -> &str {
        self.branch.as_str()
    }

    /// Current state.
    pub fn state(&self) -> TxState {
        self.state
    }

    /// How many times Timer E resent the request.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// Feeds a response with `status` received at `now`.
    pub fn on_response(&mut self, status: u16, now: Instant) -> Delivery {
        match self.state {
            TxState::Trying | TxState::Proceeding if status < 200 => {
                if self.state == TxState::Trying && !self.reliable {
                    // §17.1.2.2: in Proceeding, retransmit every T2.
                    self.timer_e = Some(now + self.timers.t2);
                    self.e_interval = self.timers.t2;
                }
                self.state = TxState::Proceeding;
                Delivery::Provisional
            }
            TxState::Trying | TxState::Proceeding => {
                self.state = TxState::Completed;
                self.timer_e = None;
                let k = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.timer_k = Some(now + k);
                Delivery::Final
            }
            TxState::Completed | TxState::Terminated => Delivery::Absorbed,
        }
    }

    /// The next instant at which [`on_timer`](Self::on_timer) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            TxState::Trying | TxState::Proceeding => Some(match self.timer_e {
                Some(e) => e.min(self.timer_f),
                None => self.timer_f,
            }),
            TxState::Completed => self.timer_k,
            TxState::Terminated => None,
        }
    }

    /// Runs the timers due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> TimerOutcome {
        match self.state {
            TxState::Trying | TxState::Proceeding => {
                if now >= self.timer_f {
                    self.state = TxState::Terminated;
                    self.timer_e = None;
                    return TimerOutcome::TimedOut;
                }
                match self.timer_e {
                    Some(e) if now >= e => {
                        self.e_interval = if self.state == TxState::Trying {
                            (self.e_interval * 2).min(self.timers.t2)
                        } else {
                            self.timers.t2
                        };
                        self.timer_e = Some(now + self.e_interval);
                        self.retransmissions += 1;
                        TimerOutcome::Retransmit
                    }
                    _ => TimerOutcome::Nothing,
                }
            }
            TxState::Completed => match self.timer_k {
                Some(k) if now >= k => {
                    self.state = TxState::Terminated;
                    TimerOutcome::Terminated
                }
                _ => TimerOutcome::Nothing,
            },
            TxState::Terminated => TimerOutcome::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives the transaction to Timer F and returns the instants of each retransmission (ms from start).
    fn run_to_timeout(tx: &mut ClientTransaction, t0: Instant) -> (Vec<u64>, u64) {
        let mut sends = Vec::new();
        while let Some(d) = tx.next_deadline() {
            match tx.on_timer(d) {
                TimerOutcome::Retransmit => sends.push((d - t0).as_millis() as u64),
                TimerOutcome::TimedOut => return (sends, (d - t0).as_millis() as u64),
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("no timeout")
    }

    #[test]
    fn udp_retransmits_doubling_to_t2_then_times_out_at_64_t1() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new("z9hG4bKa", false, Timers::default(), t0);
        let (sends, timeout) = run_to_timeout(&mut tx, t0);
        assert_eq!(&sends[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(timeout, 32_000);
        // 500, 1500, 3500, 7500, then every 4 s up to 31500: 10 retransmissions.
        assert_eq!(sends.len(), 10);
        assert_eq!(*sends.last().unwrap(), 31_500);
        assert_eq!(tx.retransmissions(), 10);
        assert_eq!(tx.state(), TxState::Terminated);
    }

    #[test]
    fn tcp_never_retransmits() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new("b", true, Timers::default(), t0);
        let (sends, timeout) = run_to_timeout(&mut tx, t0);
        assert!(sends.is_empty());
        assert_eq!(timeout, 32_000);
    }

    #[test]
    fn provisional_moves_to_t2_interval() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new("b", false, Timers::default(), t0);
        assert_eq!(tx.on_response(100, t0 + ms(100)), Delivery::Provisional);
        assert_eq!(tx.state(), TxState::Proceeding);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(4100)));
        assert_eq!(tx.on_timer(t0 + ms(4100)), TimerOutcome::Retransmit);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(8100)));
    }

    #[test]
    fn final_then_absorb_then_timer_k() {
        let t0 = Instant::now();
        let timers = Timers {
            t1: ms(50),
            t2: ms(400),
            t4: ms(700),
        };
        let mut tx = ClientTransaction::new("b", false, timers, t0);
        assert_eq!(tx.on_response(200, t0 + ms(10)), Delivery::Final);
        assert_eq!(tx.on_response(200, t0 + ms(20)), Delivery::Absorbed);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(710)));
        assert_eq!(tx.on_timer(t0 + ms(709)), TimerOutcome::Nothing);
        assert_eq!(tx.on_timer(t0 + ms(710)), TimerOutcome::Terminated);
        assert_eq!(tx.next_deadline(), None);
    }

    #[test]
    fn reliable_timer_k_is_zero() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new("b", true, Timers::default(), t0);
        assert_eq!(tx.on_response(401, t0 + ms(5)), Delivery::Final);
        assert_eq!(tx.next_deadline(), Some(t0 + ms(5)));
    }

    #[test]
    fn custom_t1_scales_timer_f() {
        let t0 = Instant::now();
        let timers = Timers {
            t1: ms(10),
            t2: ms(40),
            t4: ms(50),
        };
        let mut tx = ClientTransaction::new("b", false, timers, t0);
        let (sends, timeout) = run_to_timeout(&mut tx, t0);
        assert_eq!(timeout, 640);
        assert_eq!(&sends[..3], &[10, 30, 70]);
    }
}
