//! A simulated network around the core endpoint: the test plays the I/O
//! shell. Flows open at once, stream handshakes finish after a set delay,
//! registrars are scripted peers with a latency, DNS answers are scripted,
//! and time is simulated, so hours of traffic run in microseconds.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipreg::core::endpoint::{
    Action, Endpoint, FlowError, FlowId, RegId, SharedStats, Transmit, TransmitKind, UaId, View,
};
use sipreg::core::failure::{Failure, FailureKind};
use sipreg::core::options::{RegistererOptions, Transport, UserAgentConfig};
use sipreg::core::registerer::{Event, Registerer, State};
use sipreg::core::targets::{Target, TargetList};

use sipreg::core::message::frame_with_head;

use super::wire::Request;

/// How a scripted registrar answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// 200 listing the contact with `expires` (what was asked for un-REGISTER: 0).
    Ok { expires: u32 },
    /// 401 to a REGISTER without credentials, else 200 as `Ok`.
    Auth { expires: u32 },
    /// Never answers.
    Silent,
    /// Always this final status.
    Status(u16),
    /// 200 as `Ok`, then closes the stream it came on.
    OkThenClose { expires: u32 },
    /// Each request gets the next step of the script (then the script repeats).
    Script(Vec<Step>),
    /// 200 as `Ok`, its Contact with `params` appended (e.g. a pub-gruu)
    /// and `headers` added (e.g. `Require: outbound`).
    OkWith {
        expires: u32,
        params: String,
        headers: Vec<String>,
    },
}

/// One scripted answer (see [`Behaviour::Script`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// 200 granting this many seconds.
    Ok(u32),
    /// 200, then the stream closes.
    OkThenClose(u32),
    /// No answer; the stream closes (on UDP: silence).
    Close,
    /// 401 with a fresh nonce.
    Challenge,
    /// This final status.
    Status(u16),
    /// This status with Retry-After.
    RetryAfter(u16, u32),
    /// 423 with this Min-Expires.
    TooBrief(u32),
    /// No answer.
    Silent,
}

/// One scripted registrar at one address.
#[derive(Debug)]
pub struct Peer {
    pub behaviour: Behaviour,
    /// Time between a request's arrival and the answer's.
    pub latency: Duration,
    /// Every request that arrived (retransmissions too), with its time.
    pub received: Vec<(Duration, Request, bool)>,
    /// Keep-alives that arrived.
    pub pings: Vec<Duration>,
    /// Answer CRLFCRLF keep-alives with a pong.
    pub pong: bool,
    /// Requests received but not answered yet.
    pub outstanding: usize,
    /// Position in a `Behaviour::Script`.
    pub script_pos: usize,
    /// The most outstanding at once.
    pub max_outstanding: usize,
}

impl Peer {
    /// Original (not retransmitted) requests, in order.
    pub fn requests(&self) -> Vec<&Request> {
        self.received
            .iter()
            .filter(|(_, _, re)| !re)
            .map(|(_, r, _)| r)
            .collect()
    }

    /// Times of the original REGISTERs that carried a binding (not un-REGISTERs).
    pub fn registers_at(&self) -> Vec<Duration> {
        self.received
            .iter()
            .filter(|(_, r, re)| !re && r.header("Expires").is_none_or(|e| e != "0"))
            .map(|(t, _, _)| *t)
            .collect()
    }
}

/// Something the simulated network delivers later.
#[derive(Debug)]
enum Delivery {
    Message {
        flow: FlowId,
        from: SocketAddr,
        bytes: Vec<u8>,
        /// An answer (not a retransmission absorbed): counts down `outstanding`.
        peer: SocketAddr,
    },
    Up(FlowId),
    Close(FlowId),
    Pong(FlowId),
}

/// A request the endpoint handed to the application.
#[derive(Clone, Debug)]
pub struct HandedUp {
    pub at: Duration,
    pub ua: UaId,
    pub flow: FlowId,
    pub remote: SocketAddr,
    pub method: String,
    pub bytes: Vec<u8>,
}

impl HandedUp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A response or an application message as it left a flow.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub flow: FlowId,
    pub dest: SocketAddr,
    pub kind: TransmitKind,
    pub bytes: Vec<u8>,
}

impl Sent {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status code of a response.
    pub fn status(&self) -> u16 {
        sipreg::core::message::Response::parse(&self.bytes)
            .map(|r| r.status)
            .unwrap_or(0)
    }

    /// The first value of a header (any case; long names only).
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        text.split("\r\n")
            .take_while(|l| !l.is_empty())
            .skip(1)
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
    }
}

/// A flow as the simulated shell holds it.
#[derive(Debug, Clone)]
pub struct SimFlow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    pub open: bool,
    /// Handshakes done (UDP: always).
    pub up: bool,
}

/// The endpoint, the network and the clock.
pub struct Sim {
    pub ep: Endpoint,
    pub t0: Instant,
    pub now: Instant,
    pub peers: HashMap<SocketAddr, Peer>,
    pub flows: BTreeMap<FlowId, SimFlow>,
    /// Every flow ever opened, in order.
    pub opened: Vec<FlowId>,
    /// Time a stream takes for its handshakes (`None`: never comes up).
    pub handshake: Option<Duration>,
    /// Scripted RFC 3263 answers by host name.
    pub dns: HashMap<String, Vec<Target>>,
    /// Publications per registerer: (time, view, events).
    pub published: HashMap<RegId, Vec<(Duration, View, Vec<Event>)>>,
    pub removed: Vec<RegId>,
    pub freed_uas: Vec<UaId>,
    pub stats: HashMap<UaId, SharedStats>,
    /// Requests the endpoint handed to the application, in order.
    pub handed_up: Vec<HandedUp>,
    /// Responses (ours and the application's) and the application's own
    /// requests, as they left: never given to a scripted registrar.
    pub answers: Vec<Sent>,
    queue: BTreeMap<(Instant, u64), Delivery>,
    /// Messages waiting for a stream's handshakes.
    held: HashMap<FlowId, Vec<Transmit>>,
    seq: u64,
    next_port: u16,
    next_id: u64,
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

impl Sim {
    pub fn new() -> Sim {
        let t0 = Instant::now();
        Sim {
            ep: Endpoint::new(),
            t0,
            now: t0,
            peers: HashMap::new(),
            flows: BTreeMap::new(),
            opened: Vec::new(),
            handshake: Some(Duration::from_millis(1)),
            dns: HashMap::new(),
            published: HashMap::new(),
            removed: Vec::new(),
            freed_uas: Vec::new(),
            stats: HashMap::new(),
            handed_up: Vec::new(),
            answers: Vec::new(),
            queue: BTreeMap::new(),
            held: HashMap::new(),
            seq: 0,
            next_port: 40_000,
            next_id: 1,
        }
    }

    /// Adds a scripted registrar at `addr`.
    pub fn peer(&mut self, addr: &str, behaviour: Behaviour, latency: Duration) -> SocketAddr {
        let addr: SocketAddr = addr.parse().unwrap();
        self.peers.insert(
            addr,
            Peer {
                behaviour,
                latency,
                received: Vec::new(),
                pings: Vec::new(),
                pong: true,
                outstanding: 0,
                max_outstanding: 0,
                script_pos: 0,
            },
        );
        addr
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// A new user agent for `aor` with `configure` applied; returns its id.
    pub fn user_agent(&mut self, aor: &str, configure: impl FnOnce(&mut UserAgentConfig)) -> UaId {
        let mut c = UserAgentConfig::new(aor).unwrap();
        c.set_password(Some("pw")).unwrap();
        configure(&mut c);
        let id = self.fresh_id();
        let stats = SharedStats::new();
        self.stats.insert(id, stats.clone());
        self.ep.add_user_agent(id, Arc::new(c), stats);
        id
    }

    /// A new registerer of user agent `ua` with `opts`; returns its id.
    pub fn registerer(
        &mut self,
        ua: UaId,
        config: &UserAgentConfig,
        opts: RegistererOptions,
    ) -> RegId {
        let id = self.fresh_id();
        let core = Registerer::new(config, &opts, id).expect("valid options");
        self.ep.add_registerer(id, ua, Box::new(core));
        self.pump();
        id
    }

    /// A user agent for `aor` and one registerer to `registrar` (`expires` asked).
    pub fn account(
        &mut self,
        aor: &str,
        registrar: &str,
        transport: Option<&str>,
        expires: u32,
    ) -> (UaId, RegId) {
        let mut config = UserAgentConfig::new(aor).unwrap();
        config.set_password(Some("pw")).unwrap();
        if let Some(t) = transport {
            config.transport = Transport::parse(t).unwrap();
            config.transport_chosen = true;
        }
        let cfg = config.clone();
        let ua = self.user_agent(aor, move |c| *c = cfg);
        let opts = RegistererOptions {
            expires,
            registrar: Some(registrar.to_owned()),
            ..RegistererOptions::default()
        };
        let reg = self.registerer(ua, &config, opts);
        (ua, reg)
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn register(&mut self, reg: RegId) {
        self.ep.register(self.now, reg, &[]);
        self.pump();
    }

    pub fn unregister(&mut self, reg: RegId, all: bool) {
        self.ep.unregister(self.now, reg, all, Vec::new());
        self.pump();
    }

    pub fn dispose(&mut self, reg: RegId) {
        self.ep.dispose(self.now, reg);
        self.pump();
    }

    /// Runs the network and the endpoint's timers for `d` of simulated time.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.pump();
            let next_timer = self.ep.poll_timeout();
            let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
            let next = [next_timer, next_delivery].into_iter().flatten().min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.deliver_due();
                    self.ep.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.pump();
    }

    /// A request from `from` arrives on `flow` now (a datagram on UDP, a
    /// framed message on a stream).
    pub fn request_in(&mut self, flow: FlowId, from: SocketAddr, bytes: &[u8]) {
        let udp = self
            .flows
            .get(&flow)
            .is_some_and(|f| f.transport == Transport::Udp);
        if udp {
            self.ep.datagram(self.now, flow, from, bytes);
        } else {
            self.stream_in(flow, bytes);
        }
        self.pump();
    }

    /// A message arriving on stream `flow`, with its head as the shell's
    /// framing hands it over (a message that does not frame goes as bytes).
    fn stream_in(&mut self, flow: FlowId, bytes: &[u8]) {
        let (_, head) = frame_with_head(bytes, bytes.len().max(1));
        self.ep.stream_message(self.now, flow, bytes, head);
    }

    /// Answers and application messages sent since index `from`.
    pub fn answers_since(&self, from: usize) -> &[Sent] {
        &self.answers[from.min(self.answers.len())..]
    }

    /// Closes stream flow `flow` from the far end now.
    pub fn close_from_peer(&mut self, flow: FlowId) {
        if let Some(f) = self.flows.get_mut(&flow) {
            f.open = false;
        }
        self.ep.flow_failed(
            self.now,
            flow,
            FlowError::transport("connection closed by peer", true),
        );
        self.pump();
    }

    fn schedule(&mut self, at: Instant, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    fn deliver_due(&mut self) {
        while let Some((&(t, seq), _)) = self.queue.iter().next() {
            if t > self.now {
                break;
            }
            let d = self.queue.remove(&(t, seq)).unwrap();
            match d {
                Delivery::Message {
                    flow,
                    from,
                    bytes,
                    peer,
                } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.outstanding = p.outstanding.saturating_sub(1);
                    }
                    let Some(f) = self.flows.get(&flow).cloned() else {
                        continue;
                    };
                    if !f.open {
                        continue;
                    }
                    if f.transport == Transport::Udp {
                        self.ep.datagram(self.now, flow, from, &bytes);
                    } else {
                        self.stream_in(flow, &bytes);
                    }
                }
                Delivery::Up(flow) => {
                    if let Some(f) = self.flows.get_mut(&flow).filter(|f| f.open) {
                        f.up = true;
                        self.ep.flow_up(self.now, flow, None);
                        // What waited for the handshakes goes out now, in order.
                        let held: Vec<Transmit> = self.held.remove(&flow).unwrap_or_default();
                        for t in held {
                            self.transmit(t);
                        }
                    }
                }
                Delivery::Close(flow) => {
                    if self.flows.get(&flow).is_some_and(|f| f.open) {
                        self.close_from_peer(flow);
                    }
                }
                Delivery::Pong(flow) => {
                    if self.flows.get(&flow).is_some_and(|f| f.open) {
                        self.ep.pongs(flow);
                    }
                }
            }
            self.pump();
        }
    }

    /// Carries out every action and transmit, like the runtime's shell.
    pub fn pump(&mut self) {
        loop {
            let mut busy = false;
            while let Some(a) = self.ep.poll_action() {
                busy = true;
                self.act(a);
            }
            while let Some(t) = self.ep.poll_transmit() {
                busy = true;
                self.transmit(t);
            }
            if !busy {
                break;
            }
        }
    }

    fn local(&mut self) -> SocketAddr {
        self.next_port += 1;
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), self.next_port)
    }

    fn act(&mut self, a: Action) {
        let at = self.elapsed();
        match a {
            Action::OpenUdp { flow, local, .. } => {
                let local = local.unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
                let local = SocketAddr::new(local.ip(), self.local().port());
                self.flows.insert(
                    flow,
                    SimFlow {
                        transport: Transport::Udp,
                        local,
                        remote: None,
                        open: true,
                        up: true,
                    },
                );
                self.opened.push(flow);
                self.ep.flow_opened(self.now, flow, Ok(local));
            }
            Action::Connect { flow, spec } => {
                let local = self.local();
                self.flows.insert(
                    flow,
                    SimFlow {
                        transport: spec.transport,
                        local,
                        remote: Some(spec.remote),
                        open: true,
                        up: false,
                    },
                );
                self.opened.push(flow);
                self.ep.flow_opened(self.now, flow, Ok(local));
                if let Some(d) = self.handshake {
                    self.schedule(self.now + d, Delivery::Up(flow));
                }
            }
            Action::Close { flow } => {
                if let Some(f) = self.flows.get_mut(&flow) {
                    f.open = false;
                }
            }
            Action::FindRoute { target } => {
                let ip = if target.is_ipv4() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    "::1".parse().unwrap()
                };
                self.ep.route_found(self.now, target, Ok(ip));
            }
            Action::Resolve { reg, query } => {
                let result = match self.dns.get(&query.name) {
                    Some(t) => Ok(TargetList::new(
                        t.clone(),
                        Some(self.now + Duration::from_secs(3600)),
                    )),
                    None => Err(Failure::new(
                        FailureKind::Dns,
                        format!("{}: no such name", query.name),
                    )),
                };
                self.ep.resolved(self.now, reg, result);
            }
            Action::Publish { reg, view, events } => {
                // The list goes back to the endpoint, as the shell's does,
                // so every scenario runs with lent event buffers.
                self.published
                    .entry(reg)
                    .or_default()
                    .push((at, view, events.clone()));
                self.ep.recycle_events(events);
            }
            Action::Removed { reg } => self.removed.push(reg),
            Action::UserAgentFreed { ua } => self.freed_uas.push(ua),
            Action::Request {
                ua,
                flow,
                remote,
                method,
                bytes,
                ..
            } => self.handed_up.push(HandedUp {
                at,
                ua,
                flow,
                remote,
                method,
                bytes,
            }),
        }
    }

    fn transmit(&mut self, t: Transmit) {
        let at = self.elapsed();
        let Some(flow) = self.flows.get(&t.flow).cloned() else {
            return;
        };
        if !flow.open {
            return;
        }
        if !flow.up {
            if t.kind != TransmitKind::KeepAlive {
                self.held.entry(t.flow).or_default().push(t);
            }
            return;
        }
        let dest = flow.remote.unwrap_or(t.dest);
        if matches!(t.kind, TransmitKind::Response | TransmitKind::Message) {
            self.answers.push(Sent {
                at,
                flow: t.flow,
                dest,
                kind: t.kind,
                bytes: t.bytes,
            });
            return;
        }
        let Some(peer) = self.peers.get_mut(&dest) else {
            return; // nobody there: lost
        };
        if t.kind == TransmitKind::KeepAlive {
            peer.pings.push(at);
            if peer.pong && flow.transport.reliable() {
                let when = self.now + peer.latency;
                self.schedule(when, Delivery::Pong(t.flow));
            }
            return;
        }
        let req = Request::parse(&t.bytes);
        // Handed back as the shell does: later copies reuse the buffer.
        self.ep.recycle(t.bytes);
        let retransmission = t.kind == TransmitKind::Retransmission;
        peer.received.push((at, req.clone(), retransmission));
        let (answer, close_after) = match &peer.behaviour {
            Behaviour::Script(steps) if !steps.is_empty() => {
                let step = steps[peer.script_pos % steps.len()].clone();
                peer.script_pos += 1;
                scripted(&step, &req, peer.script_pos)
            }
            b => (answer(b, &req), matches!(b, Behaviour::OkThenClose { .. })),
        };
        let Some(bytes) = answer else {
            if !retransmission {
                peer.outstanding += 1;
                peer.max_outstanding = peer.max_outstanding.max(peer.outstanding);
            }
            if close_after && flow.transport.reliable() {
                let when = self.now + peer.latency;
                self.schedule(when, Delivery::Close(t.flow));
            }
            return;
        };
        if !retransmission {
            peer.outstanding += 1;
            peer.max_outstanding = peer.max_outstanding.max(peer.outstanding);
        } else {
            // The answer to the original is on its way or lost: this one is extra.
            peer.outstanding += 1;
        }
        let when = self.now + peer.latency;
        self.schedule(
            when,
            Delivery::Message {
                flow: t.flow,
                from: dest,
                bytes,
                peer: dest,
            },
        );
        if close_after && flow.transport.reliable() {
            self.schedule(when, Delivery::Close(t.flow));
        }
    }

    /// States published for `reg`, in order.
    pub fn states(&self, reg: RegId) -> Vec<State> {
        self.events(reg)
            .into_iter()
            .filter_map(|e| match e {
                Event::StateChanged(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// Every event published for `reg`, in order.
    pub fn events(&self, reg: RegId) -> Vec<Event> {
        self.published
            .get(&reg)
            .map(|v| v.iter().flat_map(|(_, _, e)| e.clone()).collect())
            .unwrap_or_default()
    }

    /// The last view published for `reg`.
    pub fn view(&self, reg: RegId) -> Option<&View> {
        self.published
            .get(&reg)
            .and_then(|v| v.last())
            .map(|(_, v, _)| v)
    }

    /// The state of `reg` now.
    pub fn state(&self, reg: RegId) -> State {
        self.ep
            .registerer(reg)
            .map_or(State::Terminated, |r| r.state())
    }

    /// Flows open now.
    pub fn open_flows(&self) -> Vec<FlowId> {
        self.flows
            .iter()
            .filter(|(_, f)| f.open)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The answer of one script step, and whether the stream closes after it.
fn scripted(step: &Step, req: &Request, n: usize) -> (Option<Vec<u8>>, bool) {
    match step {
        Step::Ok(e) => (answer(&Behaviour::Ok { expires: *e }, req), false),
        Step::OkThenClose(e) => (answer(&Behaviour::Ok { expires: *e }, req), true),
        Step::Close => (None, true),
        Step::Challenge => {
            let h = format!("WWW-Authenticate: Digest realm=\"sim\", nonce=\"n{n}\", qop=\"auth\"");
            (Some(req.response(401, "Unauthorized", &[h])), false)
        }
        Step::Status(s) => (Some(req.response(*s, "Scripted", &[])), false),
        Step::RetryAfter(s, ra) => (
            Some(req.response(*s, "Scripted", &[format!("Retry-After: {ra}")])),
            false,
        ),
        Step::TooBrief(min) => (
            Some(req.response(423, "Interval Too Brief", &[format!("Min-Expires: {min}")])),
            false,
        ),
        Step::Silent => (None, false),
    }
}

/// The scripted answer to `req`, if any.
fn answer(b: &Behaviour, req: &Request) -> Option<Vec<u8>> {
    let ok = |expires: u32| {
        let asked = req
            .contact_expires()
            .or_else(|| req.header("Expires").and_then(|e| e.parse().ok()));
        let e = match asked {
            Some(0) => 0,
            _ => expires,
        };
        let contact = format!("Contact: <{}>;expires={e}", req.contact_uri());
        if e == 0 {
            req.response(200, "OK", &[])
        } else {
            req.response(200, "OK", &[contact])
        }
    };
    match b {
        Behaviour::Ok { expires } | Behaviour::OkThenClose { expires } => Some(ok(*expires)),
        Behaviour::OkWith {
            expires,
            params,
            headers,
        } => {
            let mut extra = headers.clone();
            if req.contact_expires() != Some(0) {
                extra.push(format!(
                    "Contact: <{}>;expires={expires}{params}",
                    req.contact_uri()
                ));
            }
            Some(req.response(200, "OK", &extra))
        }
        Behaviour::Auth { expires } => {
            if req.header("Authorization").is_some() {
                Some(ok(*expires))
            } else {
                let h =
                    "WWW-Authenticate: Digest realm=\"sim\", nonce=\"n1\", qop=\"auth\"".to_owned();
                Some(req.response(401, "Unauthorized", &[h]))
            }
        }
        Behaviour::Silent | Behaviour::Script(_) => None,
        Behaviour::Status(s) => Some(req.response(*s, "Scripted", &[])),
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
