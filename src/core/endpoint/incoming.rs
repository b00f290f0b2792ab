//! Requests reaching our contacts (the registrar's OPTIONS pings, calls and
//! messages routed to the AOR over the flow that carried the REGISTER) and
//! the application's answers and messages on a flow.
//!
//! Every request is answered or handed to the application, never dropped
//! in silence, unless it cannot be answered at all (no readable Via, From,
//! To, Call-ID or CSeq: dropped with a log line) or its source is over its
//! answer budget ([`answer_limit`](super::answer_limit)). In order:
//!
//! 1. The receiving transport notes where the request came from on its top
//!    Via (`received`, `rport`: RFC 3261 §18.2.1, RFC 3581), which is where
//!    a datagram answer goes (§18.2.2).
//! 2. Routing to a user agent on the flow: a GRUU's `gr` parameter, else
//!    the Request-URI's user part (each contact user is unique on a flow),
//!    else, on a stream, the one user agent with RFC 5626 outbound on it.
//!    No user agent: 404.
//! 3. A malformed request: 400 (416 for a Request-URI that is not SIP).
//! 4. OPTIONS: 200 with Allow and Supported (420 with Unsupported when it
//!    requires an extension we lack), unless the user agent asked for them
//!    (`answer_options` off) and has a listener.
//! 5. With a listener, the request goes up as [`Action::Request`] (an
//!    INVITE gets 100 Trying at once); its retransmissions are absorbed (an
//!    INVITE's get the 100) until the application answers, then get that
//!    answer again. Without one: 405 with Allow (an ACK gets nothing, a
//!    CANCEL 481).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::answer_limit::Verdict;
use super::answered::{LastAnswer, Seen, TxKey};
use super::{Action, Card, Endpoint, FlowId, Transmit, TransmitKind, UaId, UaStats};
use crate::core::lexer::list_items;
use crate::core::message::{
    annotated_parsed_via, answer_address, classify, response_address, standard_reason, to_tag,
    write_answer, write_response, Answer, FramedHead, Kind, Reply, Request, Response, Tag, ViaRef,
    MAX_RESPONSE,
};
use crate::core::options::Transport;
use crate::core::uri::{Uri, UriRef};
use crate::log::Level;
use crate::log_at;

/// How long a request handed up (and its answer) is remembered when the
/// user agent is unknown: 64 * the default T1 (Timer J).
const DEFAULT_TX_MEMORY: Duration = Duration::from_secs(32);

/// Streams with more registerers than this are not searched for the one
/// user agent with outbound (a shared connection routes by user part only).
const OUTBOUND_SEARCH_LIMIT: usize = 64;

/// An answer the library writes itself.
#[derive(Clone, Copy)]
enum Stock {
    /// 200 to an OPTIONS: Allow, Supported, Server; 420 with Unsupported
    /// when it requires an extension the user agent does not support (RFC
    /// 3261 §8.2.2.3).
    Options,
    /// 405 with Allow; 481 to a CANCEL (RFC 3261 §9.2: it matches no
    /// transaction, and every user agent accepts CANCEL).
    NotAllowed,
    /// 400, 404, 416 …: Server only.
    Status(u16),
}

/// Where a request came from.
#[derive(Clone, Copy)]
struct Source {
    flow: FlowId,
    from: SocketAddr,
    udp: bool,
}

/// A received request, read once: what every answer to it needs.
struct Received<'a> {
    req: Request,
    /// The bytes as received.
    bytes: &'a [u8],
    /// The top Via's branch.
    branch: Option<String>,
    /// The top Via as the receiving transport notes it (`None`: unchanged).
    noted: Option<String>,
    /// Where a datagram answer goes (RFC 3261 §18.2.2 on the noted Via).
    reply_to: SocketAddr,
}

impl<'a> Received<'a> {
    /// Reads `bytes`, which came from `from`; `None` (with why) when no
    /// answer can be written for it.
    fn read(
        bytes: &'a [u8],
        head: Option<FramedHead>,
        from: SocketAddr,
        spare: Request,
    ) -> Result<Received<'a>, String> {
        let req = match head {
            Some(head) => Request::parse_framed(bytes, head, spare),
            None => Request::parse_reusing(bytes, spare),
        }
        .map_err(|e| format!("unparsable request: {e}"))?;
        let no_answer = || "request without a readable Via, From, To, Call-ID or CSeq".to_owned();
        let text = req.top_via_text().ok_or_else(no_answer)?;
        let via = ViaRef::read(text)
            .filter(|_| req.has_dialog_headers())
            .ok_or_else(no_answer)?;
        let noted = annotated_parsed_via(text, &via, from);
        let branch = via.branch().map(str::to_owned);
        let reply_to = answer_address(&via, from);
        Ok(Received {
            branch,
            reply_to,
            req,
            bytes,
            noted,
        })
    }

    /// The bytes handed to the application: the top Via noted.
    fn noted_bytes(&self) -> Vec<u8> {
        match &self.noted {
            Some(v) => self.req.with_top_via(self.bytes, v),
            None => self.bytes.to_vec(),
        }
    }
}

/// The `Unsupported` line of a 420 to `req`: the option tags of its
/// Require lines other than those the user agent supports (`gruu`,
/// `outbound`, compared as tokens: any case); `None` when it needs nothing
/// else (RFC 3261 §8.2.2.3).
fn unsupported(req: &Request, gruu: bool, outbound: bool) -> Option<String> {
    if !req.has_require() {
        return None;
    }
    let mut line = String::new();
    for tag in req.headers("require").flat_map(list_items) {
        let tag = tag.trim();
        let known = (gruu && tag.eq_ignore_ascii_case("gruu"))
            || (outbound && tag.eq_ignore_ascii_case("outbound"));
        if tag.is_empty() || known {
            continue;
        }
        line.push_str(if line.is_empty() {
            "Unsupported: "
        } else {
            ", "
        });
        line.push_str(tag);
    }
    (!line.is_empty()).then_some(line)
}

impl Endpoint {
    /// Sets the key that makes our To tags unguessable (the runtime passes
    /// OS randomness; tests a constant).
    pub fn set_secret(&mut self, secret: u64) {
        self.secret = secret;
    }

    /// The request of an [`Action::Request`] found no listener (it was
    /// removed meanwhile, or the user agent is being freed): it is answered
    /// as without one (405 with Allow; nothing for an ACK; 481 for a
    /// CANCEL). `busy`: the listener is there but cannot take it now (its
    /// dispatcher's queue is full): 503.
    pub fn unheard(
        &mut self,
        now: Instant,
        ua: UaId,
        flow: FlowId,
        from: SocketAddr,
        bytes: &[u8],
        busy: bool,
    ) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        let src = Source {
            flow,
            from,
            udp: f.key.transport == Transport::Udp,
        };
        // (A response to the application's own request needs no answer.)
        let Ok(rcv) = Received::read(bytes, None, from, Request::empty()) else {
            return;
        };
        if rcv.req.method() == "ACK" {
            return;
        }
        let what = if busy {
            Stock::Status(503)
        } else {
            Stock::NotAllowed
        };
        let card = self.card(ua);
        if let Some(answer) = self.stock(now, src, (ua, card.as_ref()), &rcv, what, true) {
            self.remember(now, ua, src.flow, &rcv.req, answer);
        }
    }

    /// The application's response to `request` (as it was handed up) on
    /// `flow`, built per RFC 3261 §8.2.6 and sent per §18.2.2: on a stream
    /// back on the connection, on UDP to the top Via's `received`/`rport`.
    /// Its retransmissions get it again. Errors say why nothing was sent.
    pub fn respond(
        &mut self,
        now: Instant,
        ua: UaId,
        flow: FlowId,
        request: &[u8],
        reply: &Reply,
    ) -> Result<(), String> {
        let req = Request::parse(request).map_err(|e| format!("not a request: {e}"))?;
        if !req.answerable() {
            return Err("the request has no readable Via, From, To, Call-ID or CSeq".into());
        }
        let f = self
            .flows
            .get(flow)
            .ok_or_else(|| format!("flow {} is closed", flow.0))?;
        let src = Source {
            flow,
            from: f.key.remote.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            udp: f.key.transport == Transport::Udp,
        };
        let seen = TxKey::of(flow, &req).and_then(|k| self.answered.get(now, &k).cloned());
        // RFC 3261 §17.2.1, §17.2.2: after a final response the transaction
        // discards any other the TU passes (the same status again is the
        // application retransmitting its 2xx, §13.3.1.4).
        if let Some(Seen::Answered(last)) = &seen {
            if last.status >= 200 && last.status != reply.status {
                return Err(format!(
                    "the request was answered {} already; {} is not sent",
                    last.status, reply.status
                ));
            }
        }
        if seen.is_none() && !self.uses_flow(ua, flow) {
            return Err(format!("flow {} is not one of this user agent's", flow.0));
        }
        let tag = to_tag(self.secret, &req);
        let bytes = write_response(&req, reply, &tag);
        if bytes.len() > MAX_RESPONSE {
            return Err(format!(
                "the response would be {} bytes (at most {MAX_RESPONSE})",
                bytes.len()
            ));
        }
        let dest = if src.udp {
            req.top_via()
                .and_then(|v| response_address(&v))
                .ok_or("the request's top Via names no address to answer")?
        } else {
            src.from
        };
        log_at!(
            Level::Debug,
            "{}: answering {} with {} {}",
            self.who(ua),
            req.method(),
            reply.status,
            reply.reason
        );
        self.queue(ua, flow, dest, TransmitKind::Response, bytes.clone());
        self.bump_ua(ua, |s| &s.answered);
        self.remember(
            now,
            ua,
            flow,
            &req,
            LastAnswer {
                bytes,
                dest,
                status: reply.status,
            },
        );
        Ok(())
    }

    /// The application's own message on `flow` (its INVITE, a response it
    /// wrote), as RFC 5626 needs: a request goes to the registrar (or
    /// proxy) the user agent's registerer on that flow sends to, a response
    /// to its top Via (on a stream: the connection's peer, for both).
    pub fn send_message(
        &mut self,
        now: Instant,
        ua: UaId,
        flow: FlowId,
        bytes: &[u8],
    ) -> Result<(), String> {
        if bytes.len() > MAX_RESPONSE {
            return Err(format!(
                "the message is {} bytes (at most {MAX_RESPONSE})",
                bytes.len()
            ));
        }
        let f = self
            .flows
            .get(flow)
            .ok_or_else(|| format!("flow {} is closed", flow.0))?;
        let remote = f.key.remote;
        if !self.uses_flow(ua, flow) {
            return Err(format!("flow {} is not one of this user agent's", flow.0));
        }
        let (kind, dest) = match classify(bytes) {
            Kind::Request => {
                let req = Request::parse(bytes).map_err(|e| format!("not a SIP request: {e}"))?;
                let dest = remote.or_else(|| self.destination_on(ua, flow));
                // Its responses go to the listener.
                if let Some(branch) = req.branch() {
                    let memory = if req.method() == "INVITE" {
                        super::app_requests::INVITE_MEMORY
                    } else {
                        self.tx_memory(ua)
                    };
                    self.app_requests.sent(now, flow, &branch, ua, now + memory);
                }
                (TransmitKind::Message, dest)
            }
            Kind::Response => {
                let resp =
                    Response::parse(bytes).map_err(|e| format!("not a SIP response: {e}"))?;
                let dest = remote.or_else(|| resp.top_via().and_then(|v| response_address(&v)));
                (TransmitKind::Response, dest)
            }
            Kind::KeepAlive | Kind::Junk => {
                return Err("not a SIP request or response".into());
            }
        };
        let dest = dest.ok_or("no destination for it on this flow")?;
        self.queue(ua, flow, dest, kind, bytes.to_vec());
        if kind == TransmitKind::Response {
            self.bump_ua(ua, |s| &s.answered);
        }
        Ok(())
    }

    /// A response on `flow` whose branch is none of a registerer's: if it
    /// answers a request the application sent there, it goes to that user
    /// agent's listener. Returns that user agent.
    pub(super) fn app_response(
        &mut self,
        now: Instant,
        flow: FlowId,
        resp: &Response,
        bytes: &[u8],
        from: SocketAddr,
    ) -> Option<UaId> {
        let branch = resp.top_branch()?;
        let ua = self.app_requests.owner(now, flow, branch)?;
        if !self.uas.get(&ua).is_some_and(|u| u.config.listener) {
            return Some(ua);
        }
        let local = self.flows.local_towards(flow, from);
        let transport = self
            .flows
            .get(flow)
            .map_or(Transport::Udp, |f| f.key.transport);
        self.actions.push_back(Action::Request {
            ua,
            flow,
            transport,
            local,
            remote: from,
            method: resp.cseq().map(|(_, m)| m.to_owned()).unwrap_or_default(),
            bytes: bytes.to_vec(),
        });
        Some(ua)
    }

    /// One request received on `flow` from `from` (`udp`: a datagram).
    /// Returns the user agent it was attributed to.
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        flow: FlowId,
        bytes: &[u8],
        head: Option<FramedHead>,
        from: SocketAddr,
        udp: bool,
    ) -> UaId {
        let owner = self.flows.get(flow).map_or(0, |f| f.owner);
        let spare = std::mem::take(&mut self.spare_request);
        let rcv = match Received::read(bytes, head, from, spare) {
            Ok(r) => r,
            Err(why) => {
                self.bump_ua(owner, |s| &s.received);
                // (Taken for a request unchecked: it may be no SIP at all.)
                let why = if classify(bytes) == Kind::Junk {
                    "not SIP".to_owned()
                } else {
                    why
                };
                self.count_drop(owner, &why);
                return owner;
            }
        };
        let counted = self.on_received(now, &rcv, Source { flow, from, udp }, owner);
        self.spare_request = rcv.req;
        counted
    }

    /// [`on_request`](Self::on_request) once the request was read.
    fn on_received(&mut self, now: Instant, rcv: &Received<'_>, src: Source, owner: UaId) -> UaId {
        let Source { flow, from, .. } = src;
        let bytes = rcv.bytes;
        let req = &rcv.req;
        let uri = UriRef::parse(req.uri()).ok();
        let (ua, card) = match self.route(flow, req, uri.as_ref()) {
            Some((ua, Some(card))) => (Some(ua), Some(card)),
            Some((ua, None)) => (Some(ua), self.card(ua)),
            None => (None, self.card(owner)),
        };
        let counted = ua.unwrap_or(owner);
        if let Some(c) = &card {
            UaStats::bump(&c.stats.received);
            UaStats::bump(&c.stats.requests);
        }
        let card = card.as_ref();
        let method = req.method();
        log_at!(
            Level::Debug,
            "{}: received {method} {} from {from}",
            self.who(counted),
            req.uri()
        );
        let refusal = req.refusal_given(bytes.len(), uri.is_some());
        let Some(ua) = ua else {
            if method != "ACK" {
                let status = refusal.map_or(404, |r| r.status);
                self.stock(now, src, (owner, card), rcv, Stock::Status(status), false);
            }
            return counted;
        };
        // With a listener (UserAgentConfig::listener) every request but the
        // OPTIONS the library answers goes up; without, 405.
        // (Read from the card: the settings are behind one more pointer.)
        let (listener, answer_options) = card.map_or((false, true), |c| {
            (c.answering.listener, c.answering.answer_options)
        });
        if method == "ACK" {
            // An ACK of a non-2xx answer ends its INVITE transaction (absorbed);
            // any other goes to the listener, or nowhere (it is never answered).
            let of_failure = TxKey::invite_of(flow, req).is_some_and(|k| {
                matches!(self.answered.get(now, &k), Some(Seen::Answered(a)) if a.status >= 300)
            });
            if listener && !of_failure && refusal.is_none() {
                self.hand_up(now, src, ua, rcv);
            }
            return counted;
        }
        if let Some(r) = refusal {
            self.stock(now, src, (ua, card), rcv, Stock::Status(r.status), false);
            return counted;
        }
        if method == "OPTIONS" && (answer_options || !listener) {
            self.stock(now, src, (ua, card), rcv, Stock::Options, false);
        } else if listener {
            self.hand_up(now, src, ua, rcv);
        } else if !self.repeat_answer(now, src, ua, req) {
            self.stock(now, src, (ua, card), rcv, Stock::NotAllowed, false);
        }
        counted
    }

    /// A retransmission of a request that was answered while a listener
    /// was there gets that answer again, not a 405 (RFC 3261 §17.2.2: the
    /// transaction repeats its final response). Returns whether `req` was one.
    fn repeat_answer(&mut self, now: Instant, src: Source, ua: UaId, req: &Request) -> bool {
        if self.answered.is_empty() {
            return false;
        }
        let last = match TxKey::of(src.flow, req).and_then(|k| self.answered.get(now, &k)) {
            // (Only a final one: nobody is left to follow a 1xx with one.)
            Some(Seen::Answered(last)) if last.status >= 200 => last.clone(),
            _ => return false,
        };
        if self.allowed(now, src, ua) {
            self.queue(ua, src.flow, last.dest, TransmitKind::Response, last.bytes);
            self.bump_ua(ua, |s| &s.answered);
        }
        true
    }

    /// Hands `req` (its bytes `bytes`) to user agent `ua`'s listener, unless
    /// it is a retransmission: then the answer given is sent again, or
    /// nothing while there is none.
    fn hand_up(&mut self, now: Instant, src: Source, ua: UaId, rcv: &Received<'_>) {
        let req = &rcv.req;
        let key = TxKey::of(src.flow, req);
        match key
            .as_ref()
            .and_then(|k| self.answered.get(now, k))
            .cloned()
        {
            Some(Seen::Pending) => {
                log_at!(
                    Level::Debug,
                    "{}: {} retransmitted before the application answered: absorbed",
                    self.who(ua),
                    req.method()
                );
                return;
            }
            Some(Seen::Answered(last)) => {
                if self.allowed(now, src, ua) {
                    self.queue(ua, src.flow, last.dest, TransmitKind::Response, last.bytes);
                    self.bump_ua(ua, |s| &s.answered);
                }
                return;
            }
            None => {}
        }
        if !self.allowed(now, src, ua) {
            return;
        }
        // RFC 3261 §17.2.1: an INVITE gets 100 (Trying) unless the TU
        // answers within 200 ms, which the library cannot know; its
        // retransmissions get the 100 again until the application answers.
        let trying = if req.method() == "INVITE" {
            let card = self.card(ua);
            self.stock_within_budget(src, (ua, card.as_ref()), rcv, Stock::Status(100), true)
        } else {
            None
        };
        if let Some(k) = key {
            let ttl = self.tx_memory(ua);
            match trying {
                Some(t) => self.answered.answered(now, k, t, ttl),
                None => self.answered.pending(now, k, ttl),
            }
        }
        let local = self.flows.local_towards(src.flow, src.from);
        let transport = self
            .flows
            .get(src.flow)
            .map_or(Transport::Udp, |f| f.key.transport);
        self.actions.push_back(Action::Request {
            ua,
            flow: src.flow,
            transport,
            local,
            remote: src.from,
            method: req.method().to_owned(),
            bytes: rcv.noted_bytes(),
        });
    }

    /// Sends the library's answer `what` to the request `rcv` for user
    /// agent `ua` (with its card, when it has one), within the source's
    /// budget. Returns what was sent when `keep` (for retransmissions of a
    /// request that was handed up).
    fn stock(
        &mut self,
        now: Instant,
        src: Source,
        (ua, card): (UaId, Option<&Card>),
        rcv: &Received<'_>,
        what: Stock,
        keep: bool,
    ) -> Option<LastAnswer> {
        if !self.allowed(now, src, ua) {
            return None;
        }
        self.stock_within_budget(src, (ua, card), rcv, what, keep)
    }

    /// [`stock`](Self::stock) for a request whose budget was taken already.
    fn stock_within_budget(
        &mut self,
        src: Source,
        (ua, card): (UaId, Option<&Card>),
        rcv: &Received<'_>,
        what: Stock,
        keep: bool,
    ) -> Option<LastAnswer> {
        let req = &rcv.req;
        let tag = Tag::new(self.secret, req, rcv.branch.as_deref());
        let lines = card.map(|c| &*c.answering);
        let unsupported = match what {
            Stock::Options => {
                let (gruu, outbound) = lines.map_or((false, false), |l| (l.gruu, l.outbound));
                unsupported(req, gruu, outbound)
            }
            _ => None,
        };
        let what = match (what, &unsupported) {
            (Stock::Options, Some(_)) => Stock::Status(420),
            (Stock::NotAllowed, _) if req.method() == "CANCEL" => Stock::Status(481),
            _ => what,
        };
        let status = match what {
            Stock::Options => 200,
            Stock::NotAllowed => 405,
            Stock::Status(s) => s,
        };
        let bytes = {
            let allow = lines.map_or("Allow: OPTIONS", |l| &*l.allow);
            let server = lines.map_or("Server: sipreg", |l| &*l.server);
            let supported = match (what, lines.map(|l| (l.gruu, l.outbound))) {
                (Stock::Options, Some((true, true))) => Some("Supported: gruu, outbound"),
                (Stock::Options, Some((true, false))) => Some("Supported: gruu"),
                (Stock::Options, Some((false, true))) => Some("Supported: outbound"),
                _ => unsupported.as_deref(),
            };
            let mut headers: [&str; 3] = [server; 3];
            let mut n = 0;
            if matches!(what, Stock::Options | Stock::NotAllowed) {
                headers[n] = allow;
                n += 1;
            }
            if let Some(s) = supported {
                headers[n] = s;
                n += 1;
            }
            headers[n] = server;
            n += 1;
            write_answer(
                req,
                Answer {
                    status,
                    reason: standard_reason(status),
                    headers: &headers[..n],
                    body: &[],
                    replaces_to: false,
                },
                tag.as_str(),
                rcv.noted.as_deref(),
            )
        };
        if bytes.len() > MAX_RESPONSE {
            self.count_drop(ua, "request whose answer would be too large");
            return None;
        }
        let dest = if src.udp { rcv.reply_to } else { src.from };
        log_at!(
            Level::Debug,
            "{}: {} {} answered {status} {}",
            self.who(ua),
            req.method(),
            req.uri(),
            standard_reason(status)
        );
        let kept = keep.then(|| LastAnswer {
            bytes: bytes.clone(),
            dest,
            status,
        });
        // (The library's own answer: it may wait to go out with others.)
        self.queue_with(ua, src.flow, dest, TransmitKind::Response, bytes, true);
        if let Some(c) = card {
            UaStats::bump(&c.stats.answered);
        }
        kept
    }

    /// Records `answer` as the last answer to `req`, for its retransmissions.
    fn remember(
        &mut self,
        now: Instant,
        ua: UaId,
        flow: FlowId,
        req: &Request,
        answer: LastAnswer,
    ) {
        if let Some(k) = TxKey::of(flow, req) {
            let ttl = self.tx_memory(ua);
            self.answered.answered(now, k, answer, ttl);
        }
    }

    /// Whether the source of a request still has answer budget (one is
    /// taken). Trusted: a stream's peer, or a registrar (or proxy) our
    /// REGISTERs went to on this flow.
    fn allowed(&mut self, now: Instant, src: Source, ua: UaId) -> bool {
        let trusted = !src.udp
            || self
                .flows
                .get(src.flow)
                .is_some_and(|f| f.peers.contains(&src.from));
        match self.limit.allow(now, src.from, trusted) {
            Verdict::Allowed => true,
            Verdict::Limited { first } => {
                if first {
                    log_at!(
                        Level::Info,
                        "requests from {} exceed their answer budget: dropping until it recovers",
                        src.from
                    );
                }
                self.count_drop(ua, "request over its source's answer budget");
                false
            }
        }
    }

    /// Queues `bytes` on `flow` to `dest` for user agent `ua`, to go at
    /// once (see [`transmits_may_wait`](Endpoint::transmits_may_wait)).
    fn queue(
        &mut self,
        ua: UaId,
        flow: FlowId,
        dest: SocketAddr,
        kind: TransmitKind,
        bytes: Vec<u8>,
    ) {
        self.queue_with(ua, flow, dest, kind, bytes, false);
    }

    /// [`queue`](Self::queue), saying whether it may wait (only an answer
    /// the library wrote may).
    fn queue_with(
        &mut self,
        ua: UaId,
        flow: FlowId,
        dest: SocketAddr,
        kind: TransmitKind,
        bytes: Vec<u8>,
        may_wait: bool,
    ) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        let transport = f.key.transport;
        let local = self.flows.local_towards(flow, dest);
        self.push_transmit(
            Transmit {
                flow,
                dest,
                ua,
                transport,
                local,
                kind,
                bytes,
            },
            may_wait,
        );
    }

    /// The user agent `req` is for, among those on `flow`.
    /// `uri`: its Request-URI as read (`None`: it does not parse).
    /// With the user agent comes its card when routing found it beside the
    /// contact user (the usual case: see [`Card`]).
    fn route(
        &self,
        flow: FlowId,
        req: &Request,
        uri: Option<&UriRef<'_>>,
    ) -> Option<(UaId, Option<Card>)> {
        let parts = match uri {
            Some(u) => Some((u.user, u.params)),
            None => Uri::user_and_params(req.uri()),
        };
        if let Some((user, params)) = parts {
            let gr = params
                .split(';')
                .skip(1)
                .map(|p| crate::core::lexer::split_once_opt(p, '='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("gr"));
            if let Some((_, gr)) = gr {
                let found = uri
                    .map(UriRef::to_uri)
                    .and_then(|uri| self.route_gruu(flow, &uri, gr));
                if let Some(ua) = found {
                    return Some((ua, None));
                }
            }
            if let Some((ua, card)) = user.and_then(|u| self.flows.contact_user_owner(flow, u)) {
                return Some((ua, Some(card.clone())));
            }
        }
        self.route_outbound_flow(flow).map(|ua| (ua, None))
    }

    /// The user agent on `flow` whose public or temporary GRUU (or instance
    /// URN) `uri` with its `gr` parameter names (RFC 5627).
    fn route_gruu(&self, flow: FlowId, uri: &Uri, gr: Option<&str>) -> Option<UaId> {
        let f = self.flows.get(flow)?;
        let user = uri.user.as_deref().map(super::flows::normalized_user);
        f.users.iter().find_map(|rid| {
            let r = self.regs.get(&rid)?;
            let routing = r.core.routing();
            let named = [&routing.pub_gruu, &routing.temp_gruu]
                .into_iter()
                .flatten()
                .filter_map(|g| Uri::parse(g).ok())
                .any(|g| {
                    g.param("gr") == Some(gr)
                        && g.user.as_deref().map(super::flows::normalized_user) == user
                });
            let instance = r.core.settings().extras().instance_urn.as_deref();
            let by_instance = gr.is_some() && gr == instance;
            (named || by_instance).then_some(r.ua)
        })
    }

    /// On a stream: the one user agent whose registerers use RFC 5626
    /// outbound on it (RFC 5626 §5.3: the flow names the instance).
    fn route_outbound_flow(&self, flow: FlowId) -> Option<UaId> {
        let f = self.flows.get(flow)?;
        if f.key.remote.is_none() || f.users.len() > OUTBOUND_SEARCH_LIMIT {
            return None;
        }
        let mut found: Option<UaId> = None;
        for rid in f.users.iter() {
            let Some(r) = self.regs.get(&rid).filter(|r| r.core.outbound_in_use()) else {
                continue;
            };
            match found {
                Some(u) if u != r.ua => return None,
                _ => found = Some(r.ua),
            }
        }
        found
    }

    /// Whether a registerer of `ua` uses `flow`.
    fn uses_flow(&self, ua: UaId, flow: FlowId) -> bool {
        self.uas.get(&ua).is_some_and(|u| {
            u.regs
                .iter()
                .any(|rid| self.regs.get(rid).is_some_and(|r| r.flow == Some(flow)))
        })
    }

    /// Where `ua`'s registerer on `flow` sends to.
    fn destination_on(&self, ua: UaId, flow: FlowId) -> Option<SocketAddr> {
        let u = self.uas.get(&ua)?;
        u.regs.iter().find_map(|rid| {
            self.regs
                .get(rid)
                .filter(|r| r.flow == Some(flow))
                .and_then(|r| r.core.destination())
        })
    }

    /// How long a request handed up is remembered: 64*T1 of its user agent.
    fn tx_memory(&self, ua: UaId) -> Duration {
        self.uas
            .get(&ua)
            .map_or(DEFAULT_TX_MEMORY, |u| u.config.extras().timers.t1 * 64)
    }

    /// The user agent's AOR for log lines.
    fn who(&self, ua: UaId) -> String {
        self.uas
            .get(&ua)
            .map_or_else(|| "sipreg".to_owned(), |u| u.config.aor_text().to_string())
    }

    /// Adds one to a counter of user agent `ua`.
    pub(super) fn bump_ua(
        &self,
        ua: UaId,
        counter: impl Fn(&UaStats) -> &std::sync::atomic::AtomicU64,
    ) {
        if let Some(u) = self.uas.get(&ua) {
            UaStats::bump(counter(&u.stats));
        }
    }
}
