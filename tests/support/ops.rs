//! Operation scripts for one core `Registerer` on a simulated clock, and the
//! invariants checked after every step.
//!
//! Shared by `tests/core_props.rs` (proptest) and the `registerer` fuzz
//! target (which includes this file by path), so it depends on `sipreg` and
//! `std` only. Every invariant violation is a panic.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipreg::core::failure::{Failure, FailureKind};
use sipreg::core::message::Response;
use sipreg::core::options::{RegistererOptions, RetryPolicy, Transport, UserAgentConfig};
use sipreg::core::registerer::{Event, Registerer, State, Transmit};
use sipreg::core::uri::Uri;
use sipreg::Error;

/// Local addresses a script can switch between (loopback only).
pub const LOCALS: [&str; 4] = [
    "127.0.0.1:5080",
    "127.0.0.2:6000",
    "[::1]:5090",
    "127.0.0.1:5081",
];

/// The instance id used when [`Config::instance`] is set.
pub const INSTANCE: &str = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

/// Upper bound of transmits or events produced by one input.
pub const MAX_OUTPUTS_PER_STEP: usize = 64;

/// How a scripted registerer is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// TCP instead of UDP (no retransmissions, Timer K = 0).
    pub tcp: bool,
    /// Automatic retry after transient failures.
    pub retry: bool,
    /// Digest password configured.
    pub password: bool,
    /// `+sip.instance` and `reg-id=1` on our contact.
    pub instance: bool,
    /// Requested expiry.
    pub expires: u32,
    /// Refresh point in percent (50..=99).
    pub refresh_frequency: u32,
    /// T1 = 10 ms instead of 500 ms (Timer F 640 ms).
    pub short_timers: bool,
    /// Index into [`LOCALS`] set before the first step, or none.
    pub start_local: Option<u8>,
    /// RNG seed of the registerer.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: false,
            retry: true,
            password: true,
            instance: false,
            expires: 600,
            refresh_frequency: 99,
            short_timers: false,
            start_local: Some(0),
            seed: 42,
        }
    }
}

const EXPIRES_CHOICES: [u32; 8] = [1, 2, 30, 60, 600, 3600, 86_400, u32::MAX];

impl Config {
    /// A configuration from two script bytes.
    pub fn from_bytes(a: u8, b: u8) -> Config {
        Config {
            tcp: a & 1 != 0,
            retry: a & 2 == 0,
            password: a & 4 == 0,
            instance: a & 8 != 0,
            expires: EXPIRES_CHOICES[usize::from(a >> 5)],
            refresh_frequency: 50 + u32::from(b) % 50,
            short_timers: a & 16 != 0,
            start_local: (b & 0x80 == 0).then_some((b >> 5) & 3),
            seed: u64::from(a) << 8 | u64::from(b),
        }
    }

    /// User agent and options for this configuration.
    pub fn build(&self) -> (UserAgentConfig, RegistererOptions) {
        let mut ua = UserAgentConfig::new("sip:alice@example.com").expect("valid aor");
        if self.password {
            ua.set_password(Some("pw")).expect("valid password");
        }
        if self.tcp {
            ua.transport = Transport::Tcp;
        }
        if self.short_timers {
            ua.set_timers(
                Duration::from_millis(10),
                Duration::from_millis(40),
                Duration::from_millis(50),
            )
            .expect("valid timers");
        }
        let opts = RegistererOptions {
            expires: self.expires,
            refresh_frequency: self.refresh_frequency,
            instance_id: self.instance.then(|| INSTANCE.to_owned()),
            reg_id: self.instance.then_some(1),
            retry: RetryPolicy {
                enabled: self.retry,
                ..Default::default()
            },
            ..Default::default()
        };
        (ua, opts)
    }
}

/// Which earlier request a reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mangle {
    /// Echo the request faithfully.
    None,
    /// Another Call-ID.
    CallId,
    /// CSeq number + 1.
    CSeq,
    /// Another branch.
    Branch,
    /// CSeq method OPTIONS.
    Method,
    /// No Via at all.
    NoVia,
}

/// One extra header line of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extra {
    /// The contact of the answered request, in one of several spellings.
    OurContact { expires: Option<String>, form: u8 },
    /// A contact with another address but our `+sip.instance`.
    Instance { expires: Option<String>, reg_id: u8 },
    /// Somebody else's contact.
    OtherContact { expires: Option<String>, n: u8 },
    /// `Contact: *` (invalid in a response).
    Star,
    /// `Expires:`
    Expires(String),
    /// `Min-Expires:`
    MinExpires(String),
    /// `Retry-After:`
    RetryAfter(String),
    /// A Digest challenge.
    Challenge {
        proxy: bool,
        realm: u8,
        nonce: u8,
        stale: bool,
        alg: u8,
        qop: u8,
    },
    /// Arbitrary bytes spliced into the header section.
    Raw(Vec<u8>),
}

/// A response to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code (100..=699).
    pub status: u16,
    /// 0 = the last original request, n = the n-th before it.
    pub back: u8,
    /// Deliberate mismatch.
    pub mangle: Mangle,
    /// Extra header lines.
    pub extras: Vec<Extra>,
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Register,
    Unregister {
        all: bool,
    },
    Dispose,
    /// Move the clock by `ms`, then `handle_timeout` once (or, `stepwise`, at every
    /// deadline on the way).
    Advance {
        ms: u64,
        stepwise: bool,
    },
    /// Jump to the next deadline exactly and handle it.
    NextDeadline,
    SetLocal(u8),
    NetworkChanged,
    ConnectionLost,
    TransportError {
        immediate: bool,
    },
    Respond(Reply),
    /// Pacing on or off (`set_paced`: the runtime's window).
    Pace(bool),
    /// The window has room: `admit` (a no-op when nothing waits).
    Admit,
}

/// What the checker extracted from a request we sent.
#[derive(Clone, Debug)]
pub struct Req {
    pub bytes: Vec<u8>,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub cseq: u32,
    pub call_id: String,
    pub branch: String,
    /// The URI inside the first Contact's `<>`, or None for `Contact: *`.
    pub contact_uri: Option<String>,
    /// The `;expires=` of the first Contact (0 for `*`).
    pub contact_expires: u32,
    /// Every Contact URI (empty for `*`).
    pub contacts: Vec<Uri>,
}

impl Req {
    /// First value of a header (exact-case name as we write them).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

/// Minimal, independent check of a REGISTER we generated: request line,
/// header syntax, the mandatory headers once each and `Content-Length: 0`
/// ending the message. Panics with the message text on any problem.
pub fn check_request(bytes: &[u8]) -> Req {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("request not UTF-8: {e}"));
    let fail = |why: &str| -> ! { panic!("bad request ({why}):\n{text}") };
    let Some(head) = text.strip_suffix("\r\n\r\n") else {
        fail("does not end with an empty line")
    };
    if head.contains("\r\n\r\n") {
        fail("empty line inside the header section");
    }
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    if parts.len() != 3 || parts[0] != "REGISTER" || parts[2] != "SIP/2.0" {
        fail("request line");
    }
    if Uri::parse(parts[1]).is_err() {
        fail("request URI");
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.chars().any(|c| c.is_control()) {
            fail("control character in a header line");
        }
        let Some((name, value)) = line.split_once(": ") else {
            fail("header line without ': '")
        };
        if !is_token(name) || value.trim().is_empty() || value.trim() != value {
            fail("header name or value");
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    let count = |name: &str| headers.iter().filter(|(n, _)| n == name).count();
    for name in [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Expires",
    ] {
        if count(name) != 1 {
            fail(&format!("{name} must appear exactly once"));
        }
    }
    match headers.last() {
        Some((n, v)) if n == "Content-Length" && v == "0" => {}
        _ => fail("Content-Length: 0 must be the last header"),
    }
    if count("Content-Length") != 1 {
        fail("one Content-Length");
    }
    if count("Contact") == 0 {
        fail("no Contact");
    }
    // The project's own response parser reads the same header section.
    let as_response = format!("SIP/2.0 200 OK\r\n{}", &text[request_line.len() + 2..]);
    let parsed = Response::parse(as_response.as_bytes())
        .unwrap_or_else(|e| panic!("header section does not parse ({e}):\n{text}"));
    let (cseq, method) = parsed.cseq().unwrap_or_else(|| fail("CSeq"));
    if method != "REGISTER" {
        fail("CSeq method");
    }
    let call_id = parsed
        .call_id()
        .unwrap_or_else(|| fail("Call-ID"))
        .to_owned();
    let via = parsed.top_via().unwrap_or_else(|| fail("Via"));
    let branch = via.branch().unwrap_or_else(|| fail("branch")).to_owned();
    if !branch.starts_with("z9hG4bK") {
        fail("branch without the magic cookie");
    }
    if parsed.header("max-forwards") != Some("70") {
        fail("Max-Forwards");
    }
    let from = parsed.header("from").unwrap_or_default();
    if !from.contains(";tag=") {
        fail("From tag");
    }
    let expires: u32 = parsed
        .header("expires")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail("Expires"));
    let first_contact = parsed.header("contact").unwrap_or_default();
    let mut all_contacts = Vec::new();
    let (contact_uri, contact_expires) = if first_contact == "*" {
        if count("Contact") != 1 || expires != 0 {
            fail("Contact: * must be alone with Expires: 0");
        }
        (None, 0)
    } else {
        let contacts = parsed
            .contacts()
            .unwrap_or_else(|e| panic!("our Contact does not parse ({e}):\n{text}"));
        let first = contacts.first().unwrap_or_else(|| fail("Contact"));
        let e = first.expires().unwrap_or_else(|| fail("Contact expires"));
        if e != expires {
            fail("Expires header differs from the contact's expires");
        }
        for extra in contacts.iter().skip(1) {
            if extra.expires() != Some(0) {
                fail("a stale contact must be removed with expires=0");
            }
        }
        all_contacts = contacts.iter().map(|c| c.uri.clone()).collect();
        (Some(first.uri.to_string()), e)
    };
    Req {
        bytes: bytes.to_vec(),
        uri: parts[1].to_owned(),
        headers,
        cseq,
        call_id,
        branch,
        contact_uri,
        contact_expires,
        contacts: all_contacts,
    }
}

/// Reads a request we generated without checking it (for the soak, where
/// [`check_request`] would dominate the run time).
pub fn light_request(bytes: &[u8]) -> Req {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let uri = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let cseq = get("CSeq")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let branch = get("Via")
        .split(';')
        .find_map(|p| p.strip_prefix("branch="))
        .unwrap_or_default()
        .to_owned();
    let contact = get("Contact");
    let contact_uri = contact
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(uri, _)| uri.to_owned());
    let contact_expires = contact
        .split(';')
        .find_map(|p| p.strip_prefix("expires="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let call_id = get("Call-ID").to_owned();
    Req {
        bytes: bytes.to_vec(),
        uri,
        cseq,
        call_id,
        branch,
        contact_uri,
        contact_expires,
        contacts: Vec::new(),
        headers,
    }
}

/// The header lines of `req` that a response echoes.
fn echo(req: &Req, mangle: Mangle) -> String {
    let mut r = String::new();
    let via = req.header("Via").unwrap_or_default();
    match mangle {
        Mangle::NoVia => {}
        Mangle::Branch => {
            let _ = write!(r, "Via: {}\r\n", via.replace(&req.branch, "z9hG4bKother"));
        }
        _ => {
            let _ = write!(r, "Via: {via};received=127.0.0.1\r\n");
        }
    }
    let _ = write!(r, "From: {}\r\n", req.header("From").unwrap_or_default());
    let _ = write!(
        r,
        "To: {};tag=srv\r\n",
        req.header("To").unwrap_or_default()
    );
    let call_id = if mangle == Mangle::CallId {
        "not-ours"
    } else {
        &req.call_id
    };
    let _ = write!(r, "Call-ID: {call_id}\r\n");
    match mangle {
        Mangle::CSeq => {
            let _ = write!(r, "CSeq: {} REGISTER\r\n", req.cseq.wrapping_add(1));
        }
        Mangle::Method => {
            let _ = write!(r, "CSeq: {} OPTIONS\r\n", req.cseq);
        }
        _ => {
            let _ = write!(r, "CSeq: {} REGISTER\r\n", req.cseq);
        }
    }
    r
}

fn with_expires(mut s: String, expires: &Option<String>) -> String {
    if let Some(e) = expires {
        let _ = write!(s, ";expires={e}");
    }
    s
}

fn challenge_line(proxy: bool, realm: u8, nonce: u8, stale: bool, alg: u8, qop: u8) -> String {
    let name = if proxy {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let realm = match realm % 3 {
        0 => "example.com".to_owned(),
        n => format!("r{n}"),
    };
    let mut s = format!("{name}: Digest realm=\"{realm}\", nonce=\"n{nonce}\"");
    match qop % 4 {
        0 => s.push_str(", qop=\"auth\""),
        1 => s.push_str(", qop=\"auth,auth-int\""),
        2 => s.push_str(", qop=\"auth-int\""),
        _ => {}
    }
    match alg % 6 {
        0 => {}
        1 => s.push_str(", algorithm=MD5"),
        2 => s.push_str(", algorithm=SHA-256"),
        3 => s.push_str(", algorithm=SHA-512-256-sess"),
        4 => s.push_str(", algorithm=MD5-sess, opaque=\"op\""),
        _ => s.push_str(", algorithm=UNKNOWN"),
    }
    if stale {
        s.push_str(", stale=true");
    }
    s
}

/// Renders a reply to `req` as wire bytes. `ours` is our contact URI when the
/// request carried `Contact: *`.
pub fn render_reply(req: &Req, reply: &Reply, ours: Option<&str>) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {} X\r\n", reply.status).into_bytes();
    out.extend_from_slice(echo(req, reply.mangle).as_bytes());
    let our_uri = req
        .contact_uri
        .as_deref()
        .or(ours)
        .unwrap_or("sip:nobody@h");
    for extra in &reply.extras {
        let line = match extra {
            Extra::OurContact { expires, form } => match form % 6 {
                0 => with_expires(format!("Contact: <{our_uri}>"), expires),
                1 => with_expires(format!("m: <{our_uri}>"), expires),
                2 => with_expires(format!("CONTACT:\t\"Alice\" <{our_uri}>;q=0.5"), expires),
                3 => with_expires(format!("Contact: {our_uri}"), expires),
                4 => with_expires(
                    format!("Contact: <sip:x@192.0.2.1>, <{our_uri}>;foo=\"a,b\""),
                    expires,
                ),
                _ => with_expires(format!("Contact:\r\n  <{our_uri}>"), expires),
            },
            Extra::Instance { expires, reg_id } => with_expires(
                format!(
                    "Contact: <sip:alice@203.0.113.7:40000>;reg-id={};+sip.instance=\"<urn:uuid:{INSTANCE}>\"",
                    reg_id % 3
                ),
                expires,
            ),
            Extra::OtherContact { expires, n } => {
                with_expires(format!("Contact: <sip:alice@10.0.0.{n}:5060>"), expires)
            }
            Extra::Star => "Contact: *".to_owned(),
            Extra::Expires(v) => format!("Expires: {v}"),
            Extra::MinExpires(v) => format!("Min-Expires: {v}"),
            Extra::RetryAfter(v) => format!("Retry-After: {v}"),
            Extra::Challenge {
                proxy,
                realm,
                nonce,
                stale,
                alg,
                qop,
            } => challenge_line(*proxy, *realm, *nonce, *stale, *alg, *qop),
            Extra::Raw(bytes) => {
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
                continue;
            }
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// Summary of a finished script, for statistics and assertions in tests.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: usize,
    pub originals: usize,
    pub retransmissions: usize,
    pub responses_delivered: usize,
    pub responses_accepted: usize,
    pub states: Vec<State>,
}

/// A callback for every transmitted message.
pub type TransmitHook = Box<dyn FnMut(&[u8])>;

/// One registerer, its simulated clock and the invariant checker.
pub struct Driver {
    pub reg: Registerer,
    pub config: Config,
    pub t0: Instant,
    pub now: Instant,
    /// Original requests sent, newest last (only the last 8 kept).
    pub requests: Vec<Req>,
    pub stats: Stats,
    /// Called with the bytes of every transmit (e.g. an external parser oracle).
    pub on_transmit: Option<TransmitHook>,
    /// Also check invariants that known, still unfixed bugs break (see the
    /// ignored tests in tests/core_props.rs): no contact both bound and
    /// removed in one REGISTER, and an expiry never leaves the registerer
    /// idle (the overdue refresh is in flight).
    pub strict: bool,
    state: State,
    terminated: bool,
    last_cseq: Option<u32>,
    call_id: Option<String>,
    branches: Vec<String>,
    waiting_since: Option<Instant>,
    current_sent: bool,
    dispose_since: Option<Instant>,
    timer_f: Duration,
    shutdown: Duration,
}

fn legal(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Initial, Registered | Unregistered | Terminated)
            | (Registered, Unregistered | Terminated)
            | (Unregistered, Registered | Terminated)
    )
}

impl Driver {
    pub fn new(config: Config) -> Driver {
        let (ua, opts) = config.build();
        let timer_f = ua.extras().timers.timer_f();
        let shutdown = ua.extras().shutdown_timeout;
        let mut reg = Registerer::new(&ua, &opts, config.seed).expect("valid options");
        if let Some(i) = config.start_local {
            reg.set_local_addr(local(i));
        }
        let t0 = Instant::now();
        let mut d = Driver {
            reg,
            config,
            t0,
            now: t0,
            requests: Vec::new(),
            stats: Stats::default(),
            on_transmit: None,
            strict: false,
            state: State::Initial,
            terminated: false,
            last_cseq: None,
            call_id: None,
            branches: Vec::new(),
            waiting_since: None,
            current_sent: false,
            dispose_since: None,
            timer_f,
            shutdown,
        };
        d.check_step(false, false);
        d
    }

    /// Runs one operation and checks every invariant.
    pub fn apply(&mut self, op: &Op) {
        self.stats.steps += 1;
        let waiting_before = self.reg.is_waiting();
        let disposing_before = self.reg.is_disposing();
        match op {
            Op::Register => {
                let r = self.reg.register(self.now);
                self.check_api_result(r, disposing_before, waiting_before);
            }
            Op::Unregister { all } => {
                let r = self.reg.unregister(self.now, *all);
                self.check_api_result(r, disposing_before, waiting_before);
            }
            Op::Dispose => {
                self.reg.dispose(self.now);
                if !disposing_before {
                    self.dispose_since = Some(self.now);
                }
                assert!(self.reg.is_disposing(), "dispose() must stick");
            }
            Op::Advance { ms, stepwise } => {
                let end = self.now + Duration::from_millis(*ms);
                if *stepwise {
                    // Every deadline at its own instant (at most 64, then jump).
                    for _ in 0..64 {
                        match self.reg.poll_timeout() {
                            Some(t) if t <= end => {
                                self.now = self.now.max(t);
                                self.timeout_step();
                            }
                            _ => break,
                        }
                    }
                }
                self.now = end;
                self.timeout_step();
                return;
            }
            Op::NextDeadline => {
                if let Some(t) = self.reg.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timeout_step();
                return;
            }
            Op::SetLocal(i) => self.reg.set_local_addr(local(*i)),
            Op::NetworkChanged => self.reg.network_changed(self.now),
            Op::ConnectionLost => self
                .reg
                .connection_lost(self.now, Failure::new(FailureKind::Transport, "fuzzed")),
            Op::TransportError { immediate } => self.reg.transport_error(
                self.now,
                Failure::new(FailureKind::Transport, "fuzzed"),
                *immediate,
            ),
            Op::Respond(reply) => self.respond(reply),
            Op::Pace(on) => self.reg.set_paced(*on),
            Op::Admit => self.reg.admit(self.now),
        }
        self.check_step(waiting_before, false);
    }

    fn timeout_step(&mut self) {
        let waiting_before = self.reg.is_waiting();
        self.reg.handle_timeout(self.now);
        if let Some(t) = self.reg.poll_timeout() {
            assert!(
                t > self.now,
                "deadline {:?} not after handle_timeout at {:?}: the runtime would spin",
                t - self.t0,
                self.now - self.t0
            );
        }
        self.check_step(waiting_before, true);
    }

    fn check_api_result(&self, r: Result<(), Error>, disposing: bool, waiting: bool) {
        let want = if disposing {
            Err(Error::Terminated)
        } else if waiting {
            Err(Error::RequestPending)
        } else {
            Ok(())
        };
        assert_eq!(
            r, want,
            "API result (disposing={disposing}, waiting={waiting})"
        );
    }

    fn respond(&mut self, reply: &Reply) {
        let Some(idx) = self.requests.len().checked_sub(1 + usize::from(reply.back)) else {
            return;
        };
        let ours = self.reg.contact();
        let bytes = render_reply(&self.requests[idx], reply, ours.as_deref());
        let Ok(resp) = Response::parse(&bytes) else {
            return;
        };
        self.stats.responses_delivered += 1;
        let r = self.reg.handle_response(self.now, &resp);
        if self.terminated {
            assert_eq!(
                r,
                Err(sipreg::core::registerer::Unmatched::Terminated),
                "responses after Terminated"
            );
        }
        if r.is_ok() {
            self.stats.responses_accepted += 1;
        }
    }

    /// Drains the outputs of one input and checks every invariant.
    fn check_step(&mut self, waiting_before: bool, after_timeout: bool) {
        let now = self.now;
        let mut originals = 0i64;
        let mut n = 0;
        while let Some(t) = self.reg.poll_transmit() {
            n += 1;
            assert!(n < MAX_OUTPUTS_PER_STEP, "unbounded transmits in one step");
            self.check_transmit(&t, waiting_before);
            if !t.retransmission {
                originals += 1;
            }
        }
        let mut responses = 0i64;
        let mut notes = 0i64;
        let mut n = 0;
        let mut terminated_now = false;
        let mut expired = false;
        let mut last_failed = None;
        while let Some(e) = self.reg.poll_event() {
            n += 1;
            assert!(n < MAX_OUTPUTS_PER_STEP, "unbounded events in one step");
            assert!(
                !self.terminated && !terminated_now,
                "event after Terminated: {e:?}"
            );
            match e {
                Event::StateChanged(s) => {
                    assert!(
                        legal(self.state, s),
                        "illegal transition {:?} -> {s:?}",
                        self.state
                    );
                    expired |= self.state == State::Registered
                        && s == State::Unregistered
                        && responses == 0
                        && after_timeout;
                    self.state = s;
                    self.stats.states.push(s);
                    terminated_now = s == State::Terminated;
                }
                Event::Response { status, .. } => {
                    assert!((200..=699).contains(&status), "Response event {status}");
                    responses += 1;
                }
                Event::RetryScheduled { failures, .. } | Event::RetryStarted { failures } => {
                    assert!(failures >= 1, "retry with no failure");
                }
                Event::Failed(f) => {
                    assert!(!f.detail.is_empty(), "a failure without detail: {f:?}");
                    assert_eq!(
                        f.status.is_none(),
                        f.kind == FailureKind::Flow,
                        "only a flow failure has no status: {f:?}"
                    );
                    last_failed = Some(f.kind);
                }
                Event::Note(_) | Event::Warning(_) => notes += 1,
            }
        }
        assert_eq!(
            self.reg.state(),
            self.state,
            "state() vs StateChanged events"
        );
        if let Some(kind) = last_failed {
            // Told and kept: the last failure of a step is the one failure() reports.
            assert_eq!(self.reg.failure().map(|f| f.kind), Some(kind));
        }
        let waiting = self.reg.is_waiting();
        // One request in flight at a time: a new request goes out only after the
        // previous one ended (a final or synthetic response, or a re-send that the
        // registerer announces with a Note).
        let ends = responses + notes;
        let current_sent = waiting_before && self.current_sent;
        assert!(
            originals <= ends + i64::from(!current_sent),
            "new request before the previous one ended: {originals} sent, {ends} ended"
        );
        // Whether the request now in flight has been written out (it is not
        // while there is no local address).
        self.current_sent = waiting && (originals > 0 || (current_sent && ends == 0));
        // A request waiting for the pacing window has no timers yet: Timer F
        // counts from its admission.
        let queued = self.reg.wants_admission();
        // When the request in flight began, at the latest (it may have been
        // written later than it started, once a local address was known).
        if !waiting {
            self.waiting_since = None;
        } else if queued || !waiting_before || originals > 0 || responses > 0 || notes > 0 {
            self.waiting_since = Some(now);
        }
        if queued {
            assert_eq!(originals, 0, "a request sent before its admission");
        } else if waiting {
            let since = self.waiting_since.expect("waiting since a step");
            assert!(
                !after_timeout || now < since + self.timer_f,
                "still waiting {:?} after the request, Timer F is {:?}",
                now - since,
                self.timer_f
            );
            assert!(self.reg.poll_timeout().is_some(), "waiting without a timer");
        }
        if self.strict && expired && !self.reg.is_disposing() {
            assert!(
                waiting,
                "registration expired and no refresh is in flight (poll_timeout {:?})",
                self.reg.poll_timeout().map(|t| t - now)
            );
        }
        if terminated_now {
            self.terminated = true;
        }
        if self.terminated {
            assert!(!waiting, "waiting after Terminated");
            assert_eq!(self.reg.poll_timeout(), None, "timer after Terminated");
            assert!(self.reg.is_disposing());
        }
        if self.state == State::Registered {
            assert!(
                self.reg.poll_timeout().is_some(),
                "Registered without a refresh or expiry timer"
            );
        }
        if let (Some(d), true) = (self.dispose_since, after_timeout) {
            if now >= d + self.shutdown {
                assert!(self.terminated, "dispose not finished within its bound");
            }
        }
    }

    fn check_transmit(&mut self, t: &Transmit, waiting_before: bool) {
        assert!(!self.terminated, "transmit after Terminated");
        if let Some(hook) = self.on_transmit.as_mut() {
            hook(&t.bytes);
        }
        if t.retransmission {
            self.stats.retransmissions += 1;
            assert!(!self.config.tcp, "retransmission on a reliable transport");
            let last = self.requests.last().expect("retransmission of nothing");
            assert_eq!(
                t.bytes, last.bytes,
                "retransmission differs from the original"
            );
            assert!(waiting_before, "retransmission of a request not in flight");
            return;
        }
        self.stats.originals += 1;
        let req = check_request(&t.bytes);
        if let Some(prev) = self.last_cseq {
            assert!(req.cseq > prev, "CSeq {} after {prev}", req.cseq);
        }
        self.last_cseq = Some(req.cseq);
        match &self.call_id {
            Some(c) => assert_eq!(&req.call_id, c, "Call-ID changed"),
            None => self.call_id = Some(req.call_id.clone()),
        }
        assert_eq!(req.call_id, self.reg.call_id());
        assert!(
            req.branch
                .starts_with(&format!("z9hG4bK{}", self.reg.key())),
            "branch without the registerer key"
        );
        assert!(
            !self.branches.contains(&req.branch),
            "branch reused: {}",
            req.branch
        );
        if self.strict {
            for (i, a) in req.contacts.iter().enumerate() {
                for b in &req.contacts[i + 1..] {
                    assert!(
                        !a.equivalent(b),
                        "contact {a} both bound and removed in one REGISTER"
                    );
                }
            }
        }
        self.branches.push(req.branch.clone());
        if self.branches.len() > 64 {
            self.branches.remove(0);
        }
        if let Some(uri) = &req.contact_uri {
            if req.contact_expires > 0 {
                assert_eq!(
                    Some(uri.clone()),
                    self.reg.contact(),
                    "binding a contact that is not our current one"
                );
                assert_eq!(req.contact_expires, self.reg.requested_expires());
            }
        }
        self.requests.push(req);
        if self.requests.len() > 8 {
            self.requests.remove(0);
        }
    }

    /// Runs a whole script.
    pub fn run(config: Config, ops: &[Op]) -> Driver {
        let mut d = Driver::new(config);
        for op in ops {
            d.apply(op);
        }
        d
    }
}

fn local(i: u8) -> SocketAddr {
    LOCALS[usize::from(i) % LOCALS.len()]
        .parse()
        .expect("valid address")
}

// ----- byte-script decoding (fuzz target and byte-level proptest) ----------

/// Reads a script; past the end every byte is 0.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}

const STATUSES: [u16; 24] = [
    100, 180, 200, 200, 200, 202, 299, 302, 401, 401, 403, 404, 407, 408, 423, 423, 480, 500, 503,
    503, 504, 600, 603, 699,
];

/// A delta-seconds text: mostly small numbers, sometimes edge cases or junk.
pub fn delta(b: &mut Bytes) -> String {
    let k = b.u8();
    match k % 16 {
        0 => "0".into(),
        1 => "1".into(),
        2 => "4294967295".into(),
        3 => "4294967296".into(),
        4 => "99999999999999999999".into(),
        5 => "-1".into(),
        6 => "soon".into(),
        7 => "120 (in a meeting);duration=60".into(),
        8 => "".into(),
        _ => (b.u16() % 7200).to_string(),
    }
}

fn opt_delta(b: &mut Bytes) -> Option<String> {
    if b.u8().is_multiple_of(4) {
        None
    } else {
        Some(delta(b))
    }
}

fn extra(b: &mut Bytes) -> Extra {
    match b.u8() % 12 {
        0..=2 => Extra::OurContact {
            expires: opt_delta(b),
            form: b.u8(),
        },
        3 => Extra::Instance {
            expires: opt_delta(b),
            reg_id: b.u8(),
        },
        4 => Extra::OtherContact {
            expires: opt_delta(b),
            n: b.u8(),
        },
        5 => Extra::Star,
        6 => Extra::Expires(delta(b)),
        7 => Extra::MinExpires(delta(b)),
        8 => Extra::RetryAfter(delta(b)),
        9 | 10 => {
            let flags = b.u8();
            Extra::Challenge {
                proxy: flags & 1 != 0,
                stale: flags & 2 != 0,
                realm: flags >> 2,
                nonce: b.u8() % 8,
                alg: b.u8(),
                qop: b.u8(),
            }
        }
        _ => {
            let n = usize::from(b.u8() % 64);
            Extra::Raw(b.take(n).to_vec())
        }
    }
}

fn mangle(k: u8) -> Mangle {
    match k % 16 {
        0 => Mangle::CallId,
        1 => Mangle::CSeq,
        2 => Mangle::Branch,
        3 => Mangle::Method,
        4 => Mangle::NoVia,
        _ => Mangle::None,
    }
}

/// Decodes one operation (first byte = opcode).
pub fn decode_op(b: &mut Bytes) -> Op {
    match b.u8() % 16 {
        0 => Op::Register,
        1 => Op::Unregister {
            all: b.u8() & 1 != 0,
        },
        2 => Op::Dispose,
        3 => {
            let k = b.u8();
            let ms = match k % 4 {
                0 => u64::from(b.u8()),
                1 => u64::from(b.u8()) * 100,
                2 => u64::from(b.u16()) * 1000,
                _ => u64::from(b.u16()) * 60_000,
            };
            Op::Advance {
                ms,
                stepwise: k & 4 != 0,
            }
        }
        4 | 5 => Op::NextDeadline,
        6 => Op::SetLocal(b.u8()),
        7 => Op::NetworkChanged,
        8 => Op::ConnectionLost,
        9 => Op::TransportError {
            immediate: b.u8() & 1 != 0,
        },
        14 => Op::Pace(b.u8() & 1 != 0),
        15 => Op::Admit,
        _ => {
            let k = b.u8();
            let status = if k < 240 {
                STATUSES[usize::from(k) % STATUSES.len()]
            } else {
                100 + b.u16() % 600
            };
            let m = b.u8();
            let n = usize::from(b.u8() % 4);
            Op::Respond(Reply {
                status,
                back: m >> 6,
                mangle: mangle(m),
                extras: (0..n).map(|_| extra(b)).collect(),
            })
        }
    }
}

/// Decodes a whole script: two configuration bytes, then operations (at most 512).
pub fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let mut b = Bytes::new(data);
    let config = Config::from_bytes(b.u8(), b.u8());
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < 512 {
        ops.push(decode_op(&mut b));
    }
    (config, ops)
}

/// Decodes and runs a byte script (the fuzz target's body).
pub fn run_bytes(data: &[u8]) -> Stats {
    let (config, ops) = decode(data);
    Driver::run(config, &ops).stats
}
