//! Deterministic harness: one core registerer, a simulated clock, and a
//! scripted registrar on the other side.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipreg::core::message::Response;
use sipreg::core::options::{RegistererOptions, UserAgentConfig};
use sipreg::core::registerer::{Event, Registerer, State};

use super::wire::Request;

/// A sent request with the simulated time it left.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub req: Request,
    pub retransmission: bool,
}

pub struct Harness {
    pub reg: Registerer,
    pub t0: Instant,
    pub now: Instant,
    pub sent: Vec<Sent>,
    pub events: Vec<(Duration, Event)>,
    /// Read events with `drain_events` (into a list that already holds
    /// one, so both of its paths run) instead of `poll_event`.
    pub bulk_events: bool,
    bulk_rounds: u32,
}

pub const LOCAL: &str = "127.0.0.1:5080";

impl Harness {
    pub fn new(ua: UserAgentConfig, opts: RegistererOptions) -> Harness {
        let mut reg = Registerer::new(&ua, &opts, 42).expect("valid options");
        reg.set_local_addr(LOCAL.parse::<SocketAddr>().unwrap());
        let t0 = Instant::now();
        Harness {
            reg,
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
            bulk_events: false,
            bulk_rounds: 0,
        }
    }

    /// alice@example.com with password "pw" and the given options.
    pub fn alice(opts: RegistererOptions) -> Harness {
        Harness::new(Harness::alice_ua(), opts)
    }

    /// The user agent settings of [`alice`](Self::alice), for a test to
    /// change (a transport, say) before making its harness.
    pub fn alice_ua() -> UserAgentConfig {
        let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
        ua.set_password(Some("pw")).unwrap();
        ua
    }

    /// When this registerer refreshes a grant of `grant_secs` (its own spread
    /// included), per the rule in `sipreg::core::refresh`.
    #[allow(dead_code)]
    pub fn refresh_after(&self, grant_secs: u64) -> Duration {
        sipreg::core::refresh::refresh_delay(
            Duration::from_secs(grant_secs),
            self.reg.settings().refresh_frequency,
            sipreg::core::refresh::spread_of(self.reg.call_id()),
        )
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Collects everything the registerer produced.
    pub fn drain(&mut self) {
        let at = self.elapsed();
        while let Some(t) = self.reg.poll_transmit() {
            self.sent.push(Sent {
                at,
                req: Request::parse(&t.bytes),
                retransmission: t.retransmission,
            });
        }
        if self.bulk_events {
            self.bulk_rounds += 1;
            // Every other time into a list that already holds an event of
            // ours, so both of drain_events' paths run.
            let marker = Event::Note("marker".into());
            let mut got = if self.bulk_rounds.is_multiple_of(2) {
                vec![marker.clone()]
            } else {
                Vec::new()
            };
            let had = got.len();
            let any = self.reg.drain_events(&mut got);
            assert_eq!(any, got.len() > had);
            if had == 1 {
                assert_eq!(got.remove(0), marker);
            }
            assert!(!self.reg.drain_events(&mut Vec::new()), "all drained");
            assert!(self.reg.poll_event().is_none(), "all drained");
            self.events.extend(got.into_iter().map(|e| (at, e)));
        } else {
            while let Some(e) = self.reg.poll_event() {
                self.events.push((at, e));
            }
        }
    }

    /// Moves the clock forward by `d`, firing every timer on the way at its own instant.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.reg.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.reg.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Runs the clock until a new request is sent (at most `limit`).
    pub fn run_until_sent(&mut self, limit: Duration) -> Option<Sent> {
        let before = self.sent.len();
        let end = self.now + limit;
        while self.sent.len() == before {
            match self.reg.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.reg.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.now = end;
                    return None;
                }
            }
        }
        self.sent.get(before).cloned()
    }

    pub fn register(&mut self) {
        self.reg.register(self.now).expect("register accepted");
        self.drain();
    }

    pub fn last(&self) -> &Request {
        &self.sent.last().expect("something was sent").req
    }

    /// Number of original (non-retransmitted) requests.
    pub fn requests(&self) -> Vec<&Request> {
        self.sent
            .iter()
            .filter(|s| !s.retransmission)
            .map(|s| &s.req)
            .collect()
    }

    /// Delivers raw response bytes.
    pub fn deliver(&mut self, bytes: &[u8]) -> Result<(), sipreg::core::registerer::Unmatched> {
        let resp = Response::parse(bytes).expect("test responses parse");
        let r = self.reg.handle_response(self.now, &resp);
        self.drain();
        r
    }

    /// Answers the last request.
    pub fn reply(&mut self, status: u16, reason: &str, extra: &[String]) {
        let bytes = self.last().response(status, reason, extra);
        self.deliver(&bytes).expect("response matched");
    }

    /// 200 OK listing the last request's contact with `expires`.
    pub fn ok(&mut self, expires: u32) {
        let contact = format!("Contact: <{}>;expires={expires}", self.last().contact_uri());
        self.reply(200, "OK", &[contact]);
    }

    /// The 401 a Kamailio-like registrar sends.
    pub fn challenge(&mut self, nonce: &str, stale: bool) {
        let stale = if stale { ", stale=true" } else { "" };
        let h = format!("WWW-Authenticate: Digest realm=\"example.com\", nonce=\"{nonce}\", qop=\"auth\"{stale}");
        self.reply(401, "Unauthorized", &[h]);
    }

    pub fn states(&self) -> Vec<State> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StateChanged(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// The notes (log lines for the runtime) produced so far.
    pub fn notes(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Note(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn responses(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Response { status, .. } => Some(*status),
                _ => None,
            })
            .collect()
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
