//! The worker thread: the I/O shell around the core's [`Endpoint`]. It owns
//! the sockets (mio), runs TLS and WebSocket handshakes, reads and frames
//! what arrives, sends what the endpoint queues (many datagrams per system
//! call), hands DNS queries to the resolver thread, applies the endpoint's
//! publications to the handles' snapshots and calls the callbacks. Every
//! protocol decision is the endpoint's: this file only moves bytes, sockets
//! and events.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::batch::{self, RecvBuffers, SendBuffers};
use super::clock::Clock;
use super::stream::{self, StreamConn, StreamSpec, TlsParams, WsParams};
use super::{cause, udp, Command, Shared, Snapshot};
use crate::core::compact::{MaybeAddr, MaybeInstant};
use crate::core::endpoint::{
    Action, ConnectSpec, Endpoint, FlowError, FlowId, RegId, Transmit, TransmitKind, UaId, UaStats,
    View,
};
use crate::core::failure::{Failure, FailureKind};
use crate::core::id_table::IdTable;
use crate::core::idhash::IdMap;
use crate::core::options::Transport;
use crate::core::registerer::Event;
use crate::log::Level;
use crate::log_at;

/// Token of the waker that interrupts `poll` when commands arrive.
pub const WAKE_TOKEN: Token = Token(0);

/// Datagrams read from one socket per wake-up, so a flood cannot starve
/// timers and commands; a socket left readable is read on the next turn.
const READ_LIMIT: usize = 1024;

enum Io {
    Udp(UdpSocket),
    Stream(StreamConn),
}

/// The worker's state. Only the worker thread touches it.
pub struct Shell {
    poll: Poll,
    commands: Receiver<Command>,
    clock: Box<dyn Clock>,
    ep: Endpoint,
    socks: IdMap<FlowId, Io>,
    /// Each registerer's handle state, by id.
    regs: IdTable<Arc<Shared>>,
    /// User agents being freed: who waits for the end.
    freeing: IdMap<UaId, Sender<()>>,
    /// Sockets with more to read than one wake-up takes (readiness is edge-triggered).
    again: Vec<FlowId>,
    rbufs: RecvBuffers,
    sbufs: SendBuffers,
    /// Stream connections written to since the last flush.
    dirty: Vec<FlowId>,
    /// A turn's transmits while they are sent (kept, emptied, for the next
    /// turn: a burst's list is several KiB, allocated once, not each turn).
    queued: Vec<Transmit>,
    /// The lists a turn's sends are sorted in.
    scratch: SendScratch,
    /// Since when the library's answers have been held back, waiting for
    /// more to send with them (see [`ANSWER_HOLD`]).
    held_since: Option<Instant>,
    /// Datagrams read in this turn of the loop: answers are held only in a
    /// burst (a lone request is answered at once, no extra wake-up).
    read_in_turn: usize,
    /// When the last turn woken by a socket began (see [`TURN_SPACING`]).
    last_io_turn: Option<Instant>,
}

/// How long the library's answers to requests that came in a burst may
/// wait to go out together ([`Endpoint::transmits_may_wait`]): a registrar
/// pinging thousands of contacts gets them in bursts, and the sends (and,
/// on loopback, the deliveries and the registrar's wake-ups) are shared.
/// Far below any SIP timer (T1 is 500 ms). The deadline is read on the
/// shell's clock: under a manual clock held answers wait until it is moved
/// (or something that cannot wait is queued).
const ANSWER_HOLD: Duration = Duration::from_millis(1);

/// The least time between the starts of two turns woken by sockets. Under
/// load, a stream peer such as a registrar answers one message at a time,
/// and a worker that turns at every answer wakes, reads one message, sends
/// one request and wakes the peer again, paying the kernel's wake-ups and
/// context switches on both sides for every message. Spaced turns read
/// and send what a whole interval brought: over TCP, 10 000 registrations
/// against Kamailio on loopback took 32–35 µs of CPU each unspaced and
/// 17–20 µs spaced (docs/tuning.md). A lone message after a quiet spell is
/// read at once; under load a message, a due timer or a held answer
/// ([`ANSWER_HOLD`]) waits at most this much longer, far below any SIP
/// timer (T1 is 500 ms). Measured on the shell's clock and slept in real
/// time: under a manual clock that stands still, every turn woken by a
/// socket after the first waits the whole spacing.
const TURN_SPACING: Duration = Duration::from_micros(500);

/// The most transmits whose list [`Shell::send_queued`] keeps between turns
/// (a pacing window's burst is 64 per target; 256 entries are about 28 KiB).
const QUEUED_KEPT: usize = 256;

/// Orders the registerers' first sends among `idx` (positions in `queued`)
/// by destination and length, in a stable way, so that runs of equal
/// datagrams to one registrar can go as one segmented send
/// ([`batch::GSO_MAX_LEN`]). Each is a different registerer's, so their
/// order carries no meaning; every other datagram (retransmissions,
/// answers, keep-alives, the application's requests) keeps its place.
fn group_requests(idx: &mut [usize], queued: &[Transmit], scratch: &mut GroupScratch) {
    let GroupScratch { at, requests } = scratch;
    at.clear();
    at.extend((0..idx.len()).filter(|&k| queued[idx[k]].kind == TransmitKind::Request));
    if at.len() < 2 {
        return;
    }
    requests.clear();
    requests.extend(at.iter().map(|&k| idx[k]));
    requests.sort_by_key(|&i| (queued[i].dest, queued[i].bytes.len()));
    for (&k, &i) in at.iter().zip(requests.iter()) {
        idx[k] = i;
    }
}

/// [`group_requests`]' lists: the positions of the first sends and the
/// first sends in their new order.
#[derive(Default)]
struct GroupScratch {
    at: Vec<usize>,
    requests: Vec<usize>,
}

/// The lists a turn's sends are sorted in, kept emptied between turns: a
/// turn allocates none of them (a fresh allocation per turn of several
/// hundred bytes went through the allocator's slow path).
#[derive(Default)]
struct SendScratch {
    /// Per UDP socket, the positions of its datagrams in the turn's list;
    /// entries past the turn's sockets are spares.
    groups: Vec<(FlowId, Vec<usize>)>,
    group: GroupScratch,
    /// One socket's (destination, bytes), empty between uses (see [`emptied`]).
    items: Vec<(SocketAddr, &'static [u8])>,
}

/// Sockets whose lists [`SendScratch`] keeps.
const GROUPS_KEPT: usize = 8;

/// Lets `list` go when a rare huge turn (a storm's backlog) grew it past
/// [`QUEUED_KEPT`], so that the lists kept between turns do not pin its room.
fn unpin<T>(list: &mut Vec<T>) {
    if list.capacity() > QUEUED_KEPT {
        *list = Vec::new();
    }
}

/// `list` emptied, with its room, as a list of borrows of any lifetime: an
/// empty list's own iterator collected back reuses its allocation (the
/// standard library collects a vector's mapped iterator in place when the
/// element sizes match), so borrows of one turn's bytes can be listed in
/// the room kept from the last turn.
fn emptied<'b>(mut list: Vec<(SocketAddr, &[u8])>) -> Vec<(SocketAddr, &'b [u8])> {
    list.clear();
    list.into_iter().map(|(dest, _)| (dest, &[][..])).collect()
}

/// How long a turn woken by a socket at `now` waits, the last such turn
/// having begun at `last`: the rest of [`TURN_SPACING`], or nothing.
fn turn_wait(last: Option<Instant>, now: Instant) -> Option<Duration> {
    let due = last? + TURN_SPACING;
    (now < due).then(|| due - now)
}

/// Answers are no longer held once this many are queued (a few `sendmmsg`
/// batches, some 100 KB).
const ANSWERS_HELD_AT_MOST: usize = 8 * batch::BATCH;

fn token(flow: FlowId) -> Token {
    Token(flow.0 as usize)
}

impl Shell {
    pub(super) fn new(poll: Poll, commands: Receiver<Command>, clock: Box<dyn Clock>) -> Shell {
        let mut ep = Endpoint::new();
        ep.set_secret(crate::core::rand::os_seed());
        Shell {
            poll,
            commands,
            clock,
            ep,
            socks: IdMap::default(),
            regs: IdTable::default(),
            freeing: IdMap::default(),
            again: Vec::new(),
            rbufs: RecvBuffers::default(),
            sbufs: SendBuffers::default(),
            dirty: Vec::new(),
            queued: Vec::new(),
            scratch: SendScratch::default(),
            held_since: None,
            read_in_turn: 0,
            last_io_turn: None,
        }
    }

    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if self.again.is_empty() {
                let now = self.clock.now();
                let next = match (self.ep.poll_timeout(), self.held_since) {
                    (Some(t), Some(h)) => Some(t.min(h + ANSWER_HOLD)),
                    (t, h) => t.or(h.map(|h| h + ANSWER_HOLD)),
                };
                next.map(|t| t.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_at!(Level::Error, "poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            if events.iter().any(|ev| ev.token() != WAKE_TOKEN) {
                self.space_turn();
            }
            // Commands first: what an API call queued before a packet was
            // sent applies to that packet (a request listener set, then a
            // request arriving, reaches the listener).
            // Cleared before draining: a command queued after this wakes us again.
            super::WAKE_PENDING.store(false, std::sync::atomic::Ordering::SeqCst);
            self.read_in_turn = 0;
            while let Ok(cmd) = self.commands.try_recv() {
                self.on_command(cmd);
            }
            for flow in std::mem::take(&mut self.again) {
                self.on_socket(flow, true, false, false);
            }
            for ev in events.iter() {
                if ev.token() != WAKE_TOKEN {
                    self.on_socket(
                        FlowId(ev.token().0 as u64),
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                        ev.is_error(),
                    );
                }
            }
            let now = self.clock.now();
            self.ep.handle_timeout(now);
            if self.hold_answers(now) {
                // Actions never wait (and may queue what cannot).
                while let Some(a) = self.ep.poll_action() {
                    self.act(a);
                }
                if !self.hold_answers(now) {
                    self.pump();
                }
            } else {
                self.pump();
            }
        }
    }

    /// Lets a turn woken by a socket start no sooner than [`TURN_SPACING`]
    /// after the last one, so that what arrives meanwhile is read, answered
    /// and sent in the same turn.
    fn space_turn(&mut self) {
        if let Some(wait) = turn_wait(self.last_io_turn, self.clock.now()) {
            std::thread::sleep(wait);
        }
        self.last_io_turn = Some(self.clock.now());
    }

    /// Whether what waits to be sent may wait longer: only the library's
    /// answers, to a burst (more than one datagram read in the turn that
    /// started the hold), fewer than [`ANSWERS_HELD_AT_MOST`], held for less
    /// than [`ANSWER_HOLD`].
    fn hold_answers(&mut self, now: Instant) -> bool {
        let may_wait = self.ep.has_transmits()
            && self.ep.transmits_may_wait()
            && self.ep.queued_transmits() < ANSWERS_HELD_AT_MOST
            && (self.held_since.is_some() || self.read_in_turn > 1);
        if !may_wait {
            return false;
        }
        let since = *self.held_since.get_or_insert(now);
        now < since + ANSWER_HOLD
    }

    // ----- commands ------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::UaConfig { id, config } => self.ep.set_user_agent_config(id, config),
            Command::NetworkChanged { id } => self.ep.network_changed(now, id),
            Command::FreeUa { id, started, done } => {
                self.freeing.insert(id, done);
                self.ep.free_user_agent(now, id);
                self.pump();
                let _ = started.send(());
            }
            Command::AddReg {
                id,
                ua,
                core,
                shared,
                new_ua,
            } => {
                if let Some(stats) = new_ua {
                    self.ep
                        .add_user_agent(ua, core.settings().ua.clone(), stats);
                }
                self.regs.insert(id, shared);
                self.ep.add_registerer(id, ua, core);
            }
            Command::Register(id, headers) => {
                self.ep.register(now, id, &headers);
                self.pump();
                self.release_claim(id);
            }
            Command::Unregister(id, all, headers) => {
                self.ep.unregister(now, id, all, headers);
                self.pump();
                self.release_claim(id);
            }
            Command::Dispose(id) => self.ep.dispose(now, id),
            Command::Respond {
                ua,
                flow,
                request,
                reply,
            } => {
                if let Err(why) = self.ep.respond(now, ua, flow, &request, &reply) {
                    log_at!(
                        Level::Warn,
                        "the answer on flow {} was not sent: {why}",
                        flow.0
                    );
                }
            }
            Command::Unheard { ua, flow, from } => {
                let (remote, bytes) = *from;
                self.ep.unheard(now, ua, flow, remote, &bytes, false)
            }
            Command::SendMessage { ua, flow, bytes } => {
                if let Err(why) = self.ep.send_message(now, ua, flow, &bytes) {
                    log_at!(
                        Level::Warn,
                        "the message on flow {} was not sent: {why}",
                        flow.0
                    );
                }
            }
            Command::Resolved { id, result } => self.ep.resolved(now, id, *result),
            Command::FreeReg(id) => {
                if let Some(s) = self.regs.get(&id) {
                    s.set_listener(None);
                    s.snap().disposing = true;
                }
                self.ep.free_registerer(now, id);
            }
        }
    }

    /// Releases the claim an accepted register/unregister call took on the
    /// handle, after the publication marked the handle as waiting (so no
    /// second call slips in).
    fn release_claim(&mut self, id: RegId) {
        if let Some(s) = self.regs.get(&id) {
            let mut s = s.snap();
            s.claims = s.claims.saturating_sub(1);
        }
    }

    // ----- carrying out the endpoint's outputs ----------------------------

    /// Carries out every action and send the endpoint queued, until it has
    /// nothing more (an answer such as a bound socket may queue more).
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            while let Some(a) = self.ep.poll_action() {
                busy = true;
                self.act(a);
            }
            if self.ep.has_transmits() {
                busy = true;
                self.send_queued();
            }
            if !busy {
                break;
            }
        }
        for flow in std::mem::take(&mut self.dirty) {
            let failed = match self.socks.get_mut(&flow) {
                Some(Io::Stream(conn)) => conn.flush().err().map(|e| (e, conn.is_up())),
                _ => None,
            };
            if let Some((e, up)) = failed {
                self.stream_failed(
                    flow,
                    format!("write failed: {}", cause::plain(&e)),
                    up,
                    false,
                );
                self.pump();
            }
        }
    }

    fn act(&mut self, a: Action) {
        // The clock is read by the actions that need it: most (publishing
        // a registerer's view) do not.
        match a {
            Action::OpenUdp { flow, local, v6 } => {
                let result = self.open_udp(flow, local, v6).map_err(|e| {
                    FlowError::transport(
                        format!("cannot open a UDP socket: {}", cause::plain(&e)),
                        false,
                    )
                });
                self.ep.flow_opened(self.clock.now(), flow, result);
            }
            Action::Connect { flow, spec } => {
                let result = self.connect(flow, spec);
                self.ep.flow_opened(self.clock.now(), flow, result);
            }
            Action::Close { flow } => {
                // Answers held from earlier turns were queued before the
                // close: they go first (unheld, they would have gone then).
                let held = self.held_since.is_some();
                if held {
                    self.send_queued();
                }
                super::requests::flow_closed(flow);
                if let Some(Io::Stream(mut conn)) = self.socks.remove(&flow) {
                    if held {
                        // What was just written goes before the close (a
                        // failure changes nothing now).
                        let _ = conn.flush();
                    }
                    // Dropping the socket removes it from the poller.
                    conn.close();
                }
            }
            Action::FindRoute { target } => {
                let result = udp::route_ip(target).map_err(|e| e.to_string());
                self.ep.route_found(self.clock.now(), target, result);
            }
            Action::Resolve { reg, query } => {
                super::dns::request(super::dns::Request { reg, query });
            }
            Action::Publish { reg, view, events } => {
                self.publish(reg, view, &events);
                self.ep.recycle_events(events);
            }
            Action::Removed { reg } => {
                self.regs.remove(&reg);
            }
            Action::UserAgentFreed { ua } => {
                if let Some(done) = self.freeing.remove(&ua) {
                    let _ = done.send(());
                }
            }
            Action::Request {
                ua,
                flow,
                transport,
                local,
                remote,
                method,
                bytes,
            } => {
                let local = local.map_or_else(|| "?".to_owned(), |l| l.to_string());
                let request = super::requests::Incoming {
                    flow,
                    flow_text: format!("{}:{local} -> {remote}", transport.as_str()),
                    transport,
                    remote,
                    method,
                    bytes,
                };
                use super::requests::Delivery;
                match super::requests::deliver(ua, request) {
                    Delivery::Delivered => {}
                    Delivery::NoListener(r) => {
                        self.ep
                            .unheard(self.clock.now(), ua, flow, remote, &r.bytes, false)
                    }
                    Delivery::Busy(r) => {
                        self.ep
                            .unheard(self.clock.now(), ua, flow, remote, &r.bytes, true)
                    }
                }
            }
        }
    }

    fn open_udp(
        &mut self,
        flow: FlowId,
        local: Option<SocketAddr>,
        v6: bool,
    ) -> io::Result<SocketAddr> {
        let mut sock = udp::bind(local, v6)?;
        self.poll
            .registry()
            .register(&mut sock, token(flow), Interest::READABLE)?;
        let bound = sock.local_addr()?;
        self.socks.insert(flow, Io::Udp(sock));
        super::requests::flow_opened(flow);
        Ok(bound)
    }

    fn connect(&mut self, flow: FlowId, spec: ConnectSpec) -> Result<SocketAddr, FlowError> {
        let tls = match spec.tls {
            Some(t) => {
                let config = super::tls::client_config(&t.settings).map_err(tls_failure)?;
                let name = super::tls::server_name(&t.settings, &t.host).map_err(tls_failure)?;
                Some(TlsParams { config, name })
            }
            None => None,
        };
        let ws = spec.ws.map(|w| WsParams {
            host: w.host,
            path: w.path,
            origin: w.origin,
        });
        let conn = StreamConn::connect(
            StreamSpec {
                transport: spec.transport,
                remote: spec.remote,
                local: spec.local,
                tls,
                ws,
            },
            self.poll.registry(),
            token(flow),
        )
        .map_err(|e| {
            FlowError::transport(format!("connect to {} failed: {e}", spec.remote), false)
        })?;
        let local = conn.local;
        self.socks.insert(flow, Io::Stream(conn));
        super::requests::flow_opened(flow);
        Ok(local)
    }

    /// Applies a registerer's view to its handle and delivers its events.
    fn publish(&mut self, reg: RegId, view: View, events: &[Event]) {
        let Some(shared) = self.regs.get(&reg) else {
            return;
        };
        // One lock of the snapshot: the view in, and out the failure the
        // events go with (read only when there are events).
        let failure = {
            let mut snap = shared.snap();
            apply(&mut snap, view);
            (!events.is_empty()).then(|| snap.failure.clone())
        };
        if let Some(failure) = failure {
            shared.deliver(events, failure);
        }
    }

    /// Sends everything the endpoint queued: datagrams in batches per
    /// socket, stream messages buffered and written once per wake-up.
    fn send_queued(&mut self) {
        let now = self.clock.now();
        self.held_since = None;
        let mut queued = std::mem::take(&mut self.queued);
        while let Some(t) = self.ep.poll_transmit() {
            queued.push(t);
        }
        // Datagrams grouped by socket, in order within each.
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut groups = 0;
        for (i, t) in queued.iter().enumerate() {
            let written = match self.socks.get_mut(&t.flow) {
                Some(Io::Udp(_)) => {
                    match scratch.groups[..groups]
                        .iter_mut()
                        .find(|(f, _)| *f == t.flow)
                    {
                        Some((_, v)) => v.push(i),
                        None => {
                            if groups == scratch.groups.len() {
                                scratch.groups.push((t.flow, Vec::new()));
                            }
                            let (f, v) = &mut scratch.groups[groups];
                            *f = t.flow;
                            v.clear();
                            v.push(i);
                            groups += 1;
                        }
                    }
                    continue;
                }
                Some(Io::Stream(conn)) => match t.kind {
                    TransmitKind::KeepAlive => conn.ping(),
                    _ => conn.send_later(&t.bytes),
                }
                .map_err(|e| (e, conn.is_up())),
                None => continue,
            };
            match written {
                Ok(()) => {
                    if !self.dirty.contains(&t.flow) {
                        self.dirty.push(t.flow);
                    }
                    self.sent(t);
                }
                Err((e, up)) => self.stream_failed(
                    t.flow,
                    format!("sending on the connection failed: {}", cause::plain(&e)),
                    up,
                    false,
                ),
            }
        }
        let mut items = emptied(std::mem::take(&mut scratch.items));
        for (flow, idx) in &mut scratch.groups[..groups] {
            let flow = *flow;
            let Some(Io::Udp(sock)) = self.socks.get(&flow) else {
                continue;
            };
            group_requests(idx, &queued, &mut scratch.group);
            items.clear();
            items.extend(
                idx.iter()
                    .map(|i| (queued[*i].dest, queued[*i].bytes.as_slice())),
            );
            let failed = self.sbufs.send(sock, &items);
            for (k, i) in idx.iter().enumerate() {
                if !failed.iter().any(|(f, _)| *f == k) {
                    self.sent(&queued[*i]);
                }
            }
            for (k, e) in failed {
                let t = &queued[idx[k]];
                self.ep
                    .send_failed(now, flow, t.dest, cause::send_failed(t.dest, &e));
            }
        }
        scratch.items = emptied(items);
        scratch.groups.truncate(GROUPS_KEPT);
        for (_, idx) in &mut scratch.groups {
            unpin(idx);
        }
        unpin(&mut scratch.group.at);
        unpin(&mut scratch.group.requests);
        unpin(&mut scratch.items);
        self.scratch = scratch;
        for t in queued.drain(..) {
            self.ep.recycle(t.bytes);
        }
        unpin(&mut queued);
        self.queued = queued;
    }

    /// Counts and traces a message handed to a socket (answers are counted
    /// by the endpoint, as `answered`).
    fn sent(&self, t: &Transmit) {
        if t.kind == TransmitKind::KeepAlive {
            return;
        }
        if t.kind != TransmitKind::Response {
            if let Some(stats) = self.ep.ua_stats(t.ua) {
                UaStats::bump(&stats.sent);
            }
        }
        if super::trace::enabled(t.ua) {
            super::trace::sent(t.ua, t.transport, t.local, t.dest, &t.bytes);
        }
    }

    // ----- sockets -------------------------------------------------------

    fn on_socket(&mut self, flow: FlowId, readable: bool, writable: bool, error: bool) {
        match self.socks.get(&flow) {
            Some(Io::Udp(_)) => self.on_udp(flow, error),
            Some(Io::Stream(_)) => self.on_stream(flow, readable, writable),
            None => {}
        }
    }

    fn on_udp(&mut self, flow: FlowId, error: bool) {
        let now = self.clock.now();
        let mut read = 0;
        let mut errors = Vec::new();
        loop {
            let Some(Io::Udp(sock)) = self.socks.get(&flow) else {
                return;
            };
            let n = match self.rbufs.recv(sock) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // An ICMP error surfaced as a receive error: read it from the queue.
                    match udp::take_queued_error(sock) {
                        Some(qe) => {
                            errors.push(qe);
                            continue;
                        }
                        None => break,
                    }
                }
            };
            for i in 0..n {
                let (r, bytes) = self.rbufs.get(i);
                if r.truncated {
                    self.ep.dropped(flow, "oversized datagram");
                    continue;
                }
                // Read before the message is handled: that may close the flow.
                let local = super::trace::any_enabled()
                    .then(|| self.ep.local_towards(flow, r.from))
                    .flatten();
                let ua = self.ep.datagram(now, flow, r.from, bytes);
                if let Some(ua) = ua.filter(|ua| super::trace::enabled(*ua)) {
                    super::trace::received(ua, Transport::Udp, local, r.from, bytes);
                }
            }
            read += n;
            self.read_in_turn += n;
            if read >= READ_LIMIT {
                self.again.push(flow);
                break;
            }
            if cfg!(target_os = "linux") && n < batch::BATCH {
                // A short batch emptied the queue: a datagram arriving
                // later raises a new edge, so no empty read is needed.
                break;
            }
        }
        if error {
            if let Some(Io::Udp(sock)) = self.socks.get(&flow) {
                while let Some(qe) = udp::take_queued_error(sock) {
                    errors.push(qe);
                    if errors.len() > READ_LIMIT {
                        break;
                    }
                }
            }
        }
        for (dest, err) in errors {
            self.ep
                .unreachable(now, flow, dest, cause::icmp(dest, &err));
        }
    }

    fn on_stream(&mut self, flow: FlowId, readable: bool, writable: bool) {
        let now = self.clock.now();
        let Some(Io::Stream(conn)) = self.socks.get_mut(&flow) else {
            return;
        };
        let remote = conn.remote;
        let was_up = conn.is_up();
        if writable {
            if let Err(e) = conn.on_writable() {
                let tls = conn.tls_handshaking();
                let why = if was_up {
                    format!("write failed: {}", cause::plain(&e))
                } else {
                    format!("connect to {remote} failed: {}", cause::plain(&e))
                };
                return self.stream_failed(flow, why, was_up, tls);
            }
        }
        let out = if readable {
            conn.read()
        } else {
            stream::ReadOutcome::default()
        };
        if conn.take_up_event() {
            let version = conn.tls_version();
            self.ep.flow_up(now, flow, version);
        } else if !conn.is_up() {
            let step = conn.step();
            self.ep.flow_step(flow, step);
        }
        let Some(Io::Stream(conn)) = self.socks.get_mut(&flow) else {
            return;
        };
        let up = conn.is_up();
        let tls = conn.tls_handshaking();
        let transport = conn.transport;
        if out.more {
            self.again.push(flow);
        }
        if out.pongs > 0 {
            self.ep.pongs(flow);
        }
        for (m, head) in out.messages {
            if m.len() > stream::MAX_MESSAGE {
                self.ep.dropped(flow, "oversized stream message");
                continue;
            }
            let local = super::trace::any_enabled()
                .then(|| self.ep.local_towards(flow, remote))
                .flatten();
            let ua = self.ep.stream_message(now, flow, &m, head);
            if let Some(ua) = ua.filter(|ua| super::trace::enabled(*ua)) {
                super::trace::received(ua, transport, local, remote, &m);
            }
        }
        if out.invalid {
            self.ep.dropped(flow, "unframeable stream data");
        }
        if let Some(why) = out.closed {
            // Closed before it came up: the connect or a handshake failed.
            let why = if up || was_up {
                why
            } else {
                format!("connect to {remote} failed: {why}")
            };
            self.stream_failed(flow, why, up || was_up, tls);
        }
    }

    /// A stream connection failed or closed: drop it and tell the endpoint.
    /// `established`: it had come up; `tls`: it failed in the TLS handshake.
    fn stream_failed(&mut self, flow: FlowId, why: String, established: bool, tls: bool) {
        super::requests::flow_closed(flow);
        if let Some(Io::Stream(mut conn)) = self.socks.remove(&flow) {
            conn.close();
        }
        let now = self.clock.now();
        self.ep.flow_failed(
            now,
            flow,
            FlowError {
                failure: cause::stream(&why, tls && !established),
                established,
            },
        );
    }
}

/// A TLS settings problem found when connecting (bad CA file, bad name).
fn tls_failure(why: String) -> FlowError {
    FlowError {
        failure: Failure::new(FailureKind::Tls, why),
        established: false,
    }
}

/// Writes a registerer's view into its handle's snapshot.
fn apply(s: &mut Snapshot, v: View) {
    s.state = v.state;
    s.waiting = v.waiting;
    if v.disposing {
        s.disposing = true;
    }
    s.retry_after = v.retry_after;
    s.retry_at = MaybeInstant::new(v.retry_at);
    s.failure_count = v.failure_count;
    s.retransmissions = u32::try_from(v.retransmissions).unwrap_or(u32::MAX);
    s.public_address = MaybeAddr::new(v.public_address);
    if let Some(f) = v.facts {
        let f = *f;
        s.contacts = f.contacts;
        (s.last_status, s.last_reason) = match f.last_response {
            Some((status, reason)) => (status, Some(reason)),
            None => (0, None),
        };
        s.routing = f.routing;
        if s.failure.as_deref() != f.failure.as_ref() {
            s.failure = f.failure.map(Arc::new);
        }
    }
    if let Some(flow) = v.flow {
        s.flow = Some(flow);
    }
    s.flow_id = v.flow_id.map_or(0, |f| f.0);
}

#[cfg(test)]
mod tests {
    use crate::core::endpoint::SharedStats;
    use std::net::UdpSocket as StdUdp;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::core::options::{RegistererOptions, UserAgentConfig};
    use crate::core::registerer::{Registerer, State};
    use crate::runtime::clock::ManualClock;

    #[test]
    fn first_sends_are_grouped_by_destination_and_length_and_nothing_else_moves() {
        let to = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let t = |kind: TransmitKind, dest: SocketAddr, len: usize, tag: u8| Transmit {
            flow: FlowId(1),
            dest,
            ua: 1,
            transport: Transport::Udp,
            local: None,
            kind,
            bytes: vec![tag; len],
        };
        use TransmitKind::*;
        let queued = vec![
            t(Request, to(2), 646, 0),
            t(Request, to(2), 402, 1),
            t(Response, to(9), 300, 2),
            t(Request, to(1), 646, 3),
            t(Retransmission, to(2), 402, 4),
            t(Request, to(2), 646, 5),
            t(KeepAlive, to(2), 4, 6),
            t(Request, to(2), 402, 7),
        ];
        let mut idx: Vec<usize> = (0..queued.len()).collect();
        let mut scratch = GroupScratch::default();
        group_requests(&mut idx, &queued, &mut scratch);
        // The first sends fill the first sends' places, ordered by
        // destination then length, equal ones in their own order; the
        // answer, the retransmission and the keep-alive stay where they were.
        assert_eq!(idx, vec![3, 1, 2, 7, 4, 0, 6, 5]);
        let mut none: Vec<usize> = vec![2, 4];
        group_requests(&mut none, &queued, &mut scratch);
        assert_eq!(none, vec![2, 4]);
    }

    #[test]
    fn an_emptied_list_of_borrows_keeps_its_room_for_the_next_turn() {
        let to = SocketAddr::from(([127, 0, 0, 1], 5060));
        let kept: Vec<(SocketAddr, &'static [u8])> = {
            let bytes = vec![vec![1u8; 10]; 40];
            let mut items: Vec<(SocketAddr, &[u8])> = Vec::new();
            items.extend(bytes.iter().map(|b| (to, b.as_slice())));
            let room = (items.capacity(), items.as_ptr() as usize);
            let kept = emptied(items);
            assert!(kept.is_empty());
            assert_eq!((kept.capacity(), kept.as_ptr() as usize), room);
            kept
        };
        // Filled again with another turn's borrows, in the same room.
        let other = [7u8; 3];
        let mut items = emptied(kept);
        let room = items.capacity();
        items.extend((0..40).map(|_| (to, &other[..])));
        assert_eq!(items.capacity(), room);
        assert!(items.iter().all(|(_, b)| *b == [7, 7, 7]));
    }

    #[test]
    fn a_turn_soon_after_another_waits_the_rest_of_the_spacing() {
        let t0 = Instant::now();
        // The first turn, and one after a quiet spell, start at once.
        assert_eq!(turn_wait(None, t0), None);
        assert_eq!(turn_wait(Some(t0), t0 + TURN_SPACING), None);
        assert_eq!(turn_wait(Some(t0), t0 + Duration::from_secs(5)), None);
        // One woken sooner waits until the spacing has passed since the last.
        let soon = Duration::from_micros(120);
        assert_eq!(turn_wait(Some(t0), t0 + soon), Some(TURN_SPACING - soon));
        assert_eq!(turn_wait(Some(t0), t0), Some(TURN_SPACING));
    }

    /// Reads one REGISTER at `registrar` and answers it with a 200 granting 600 s.
    fn answer_one(registrar: &StdUdp) -> String {
        let mut buf = [0u8; 65_536];
        let (n, from) = registrar.recv_from(&mut buf).expect("a REGISTER arrives");
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        let header = |name: &str| {
            req.split("\r\n")
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_default()
                .to_owned()
        };
        let contact = header("Contact: ");
        let uri = &contact[contact.find('<').unwrap() + 1..contact.find('>').unwrap()];
        let resp = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=t\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <{uri}>;expires=600\r\nContent-Length: 0\r\n\r\n",
            header("Via: "),
            header("From: "),
            header("To: "),
            header("Call-ID: "),
            header("CSeq: ")
        );
        registrar.send_to(resp.as_bytes(), from).unwrap();
        req
    }

    fn wait_state(shared: &Shared, want: State) {
        let until = Instant::now() + Duration::from_secs(10);
        while shared.snap().state != want {
            assert!(Instant::now() < until, "never reached {want:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The shell reads `now` only from its clock: on a manual clock a
    /// refresh due in 594 s goes out as soon as the clock is moved, not
    /// ten minutes later.
    #[test]
    fn the_shell_runs_on_an_injected_clock() {
        let registrar = StdUdp::bind("127.0.0.1:0").unwrap();
        registrar
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let poll = Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let clock = ManualClock::new();
        let shell = Shell::new(poll, rx, Box::new(clock.clone()));
        // The worker runs for the rest of the test process.
        std::thread::spawn(move || shell.run());

        let config = Arc::new(UserAgentConfig::new("sip:alice@127.0.0.1").unwrap());
        let opts = RegistererOptions {
            registrar: Some(format!("sip:{}", registrar.local_addr().unwrap())),
            ..RegistererOptions::default()
        };
        let core = Registerer::with_shared_config(&config, &opts, 7).unwrap();
        let shared = Arc::new(Shared::default());
        tx.send(Command::AddReg {
            id: 2,
            ua: 1,
            core: Box::new(core),
            shared: shared.clone(),
            new_ua: Some(SharedStats::new()),
        })
        .unwrap();
        tx.send(Command::Register(2, Vec::new())).unwrap();
        waker.wake().unwrap();
        let first = answer_one(&registrar);
        assert!(first.starts_with("REGISTER "));
        wait_state(&shared, State::Registered);

        // Nothing more until the clock reaches the refresh point...
        registrar
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert!(registrar.recv_from(&mut buf).is_err(), "no early refresh");
        // ...which ten simulated minutes pass at once.
        clock.advance(Duration::from_secs(600));
        waker.wake().unwrap();
        registrar
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let refresh = answer_one(&registrar);
        let cseq = |m: &str| -> u32 {
            let line = m.split("\r\n").find(|l| l.starts_with("CSeq: ")).unwrap();
            line[6..].split(' ').next().unwrap().parse().unwrap()
        };
        assert_eq!(cseq(&refresh), cseq(&first) + 1, "the refresh: {refresh}");
        wait_state(&shared, State::Registered);
    }
}
