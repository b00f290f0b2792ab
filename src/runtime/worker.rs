//! The event loop: sockets, commands, timers, callbacks — one thread for all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll, Token};

use super::endpoint::{Endpoint, FlowKey, Io};
use super::idhash::IdMap;
use super::log::{Level, Who};
use super::pacing::{Outcome, Pacer};
use super::stream::{self, StreamSpec, TlsParams, WsParams};
use super::udp;
use super::{cause, Command, RegId, Shared, UaId, UaStats};
use crate::core::failure::Failure;
use crate::core::message::{classify, Kind, Response};
use crate::core::options::{Transport, UserAgentConfig};
use crate::core::registerer::{branch_key, Event, Registerer, State, Transmit, KEY_LEN};
use crate::core::routing::RoutingFacts;
use crate::core::uri::Host;
use crate::log_at;

mod flow;

/// Token of the waker that interrupts `poll` when commands arrive.
pub const WAKE_TOKEN: Token = Token(0);

/// Longest wait for a connection's TCP, TLS and WebSocket handshakes (shorter with a small T1).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Ua {
    /// Shared with the API handle and the registerers (copied only on change).
    config: Arc<UserAgentConfig>,
    stats: Arc<UaStats>,
    /// Its registerers (usually one: a short list, not a hash table per user agent).
    regs: Vec<RegId>,
    freeing: Option<Sender<()>>,
    /// The "certificates are not checked" warning was logged for this user agent.
    warned_insecure: bool,
}

struct Reg {
    /// Boxed where the API call made it (moving it here would free that box
    /// on this thread, far from the allocator arena it came from).
    core: Box<Registerer>,
    ua: UaId,
    target: SocketAddr,
    shared: Arc<Shared>,
    timer_at: Option<Instant>,
    freed: bool,
    deferred_unregister: Option<(bool, Vec<String>)>,
    /// The endpoint socket this registerer sends on.
    sock: Option<Token>,
    /// Local address of the flow last published in the snapshot.
    flow_local: Option<SocketAddr>,
}

/// The worker's state. Only the worker thread touches it.
pub struct Worker {
    poll: Poll,
    commands: Receiver<Command>,
    uas: IdMap<UaId, Ua>,
    /// Entries boxed: the table holds pointers, not 130-byte entries with its slack.
    regs: IdMap<RegId, Box<Reg>>,
    /// Registerer keys (the start of every branch) to registerers, as bytes
    /// inline rather than strings on the heap.
    keys: IdMap<[u8; KEY_LEN], RegId>,
    ep: Endpoint,
    timers: BinaryHeap<Reverse<(Instant, RegId)>>,
    /// Receive buffer reused for every datagram.
    rbuf: Vec<u8>,
    /// Stream connections a send failed on: (their other users, the sender), to
    /// tell the others once the sender's step is finished.
    failed_streams: Vec<(Vec<RegId>, RegId)>,
    /// Sockets with more to read than one wake-up takes (readiness is edge-triggered).
    again: Vec<Token>,
    /// Window of transactions in flight per registrar target.
    pacing: Pacer<SocketAddr, RegId>,
}

impl Worker {
    pub(super) fn new(poll: Poll, commands: Receiver<Command>) -> Worker {
        Worker {
            poll,
            commands,
            uas: IdMap::default(),
            regs: IdMap::default(),
            keys: IdMap::default(),
            ep: Endpoint::default(),
            timers: BinaryHeap::new(),
            rbuf: vec![0u8; udp::MAX_DATAGRAM + 1],
            failed_streams: Vec::new(),
            again: Vec::new(),
            pacing: Pacer::default(),
        }
    }

    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if self.again.is_empty() {
                self.next_timeout()
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
            for token in std::mem::take(&mut self.again) {
                self.on_socket(token, true, false, false);
            }
            for ev in events.iter() {
                if ev.token() != WAKE_TOKEN {
                    self.on_socket(
                        ev.token(),
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                        ev.is_error(),
                    );
                }
            }
            // Cleared before draining: a command queued after this wakes us again.
            super::WAKE_PENDING.store(false, std::sync::atomic::Ordering::SeqCst);
            while let Ok(cmd) = self.commands.try_recv() {
                self.on_command(cmd);
            }
            self.run_timers();
            self.start_admitted();
        }
    }

    // ----- commands ------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::AddUa { id, config, stats } => {
                self.uas.insert(
                    id,
                    Ua {
                        config,
                        stats,
                        regs: Vec::new(),
                        freeing: None,
                        warned_insecure: false,
                    },
                );
            }
            Command::UaConfig { id, config } => {
                let Some(ua) = self.uas.get_mut(&id) else {
                    return;
                };
                let creds_changed = ua.config.credentials_differ(&config);
                ua.config = config;
                for rid in &ua.regs {
                    if let Some(r) = self.regs.get_mut(rid) {
                        r.core
                            .set_nat_options(ua.config.keepalive, ua.config.contact_rewrite);
                    }
                }
                if creds_changed {
                    for rid in &ua.regs {
                        if let Some(r) = self.regs.get_mut(rid) {
                            r.core.follow_credentials(&ua.config);
                        }
                    }
                }
            }
            Command::NetworkChanged { id } => self.network_changed(id, now),
            Command::FreeUa { id, started, done } => {
                self.free_ua(id, done, now);
                let _ = started.send(());
            }
            Command::AddReg {
                id,
                ua,
                core,
                target,
                shared,
            } => {
                let live_ua = self.uas.get_mut(&ua).filter(|u| u.freeing.is_none());
                let Some(u) = live_ua else {
                    // The user agent is gone or being freed: the registerer ends at once, visibly.
                    {
                        let mut s = shared.snap();
                        s.state = State::Terminated;
                        s.disposing = true;
                    }
                    shared.deliver(&[Event::StateChanged(State::Terminated)]);
                    return;
                };
                if !u.regs.contains(&id) {
                    u.regs.push(id);
                }
                if let Some(k) = key_bytes(core.key()) {
                    self.keys.insert(k, id);
                }
                // A host name: the core's RFC 3263 target list sets this before each send.
                let target = target.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                let mut core = core;
                core.set_paced(true);
                self.regs.insert(
                    id,
                    Box::new(Reg {
                        core,
                        ua,
                        target,
                        shared,
                        timer_at: None,
                        freed: false,
                        deferred_unregister: None,
                        sock: None,
                        flow_local: None,
                    }),
                );
            }
            Command::Register(id, headers) => {
                self.drive(id, now, |core, now| {
                    // Losing the race to an automatic refresh is fine: a REGISTER is in flight.
                    let _ = core.register_with_headers(now, &headers);
                });
                self.release_claim(id);
            }
            Command::Unregister(id, all, headers) => {
                let mut deferred = false;
                self.drive(id, now, |core, now| {
                    deferred = matches!(
                        core.unregister_with_headers(now, all, &headers),
                        Err(crate::Error::RequestPending)
                    );
                });
                if deferred {
                    if let Some(r) = self.regs.get_mut(&id) {
                        r.deferred_unregister = Some((all, headers));
                    }
                }
                self.release_claim(id);
            }
            Command::Dispose(id) => self.drive(id, now, |core, now| core.dispose(now)),
            Command::Resolved { id, result } => {
                self.drive(id, now, |core, now| core.targets_resolved(now, result));
            }
            Command::FreeReg(id) => {
                if let Some(r) = self.regs.get_mut(&id) {
                    r.freed = true;
                    r.shared.set_listener(None);
                    r.shared.snap().disposing = true;
                }
                self.drive(id, now, |core, now| core.dispose(now));
            }
        }
    }

    /// Closes every socket the user agent's registerers use and re-binds
    /// everyone on them: with shared sockets, every user agent on a socket
    /// moves with it.
    fn network_changed(&mut self, id: UaId, now: Instant) {
        let Some(ua) = self.uas.get(&id) else {
            return;
        };
        let mut regs: Vec<RegId> = ua.regs.clone();
        let tokens: HashSet<Token> = regs
            .iter()
            .filter_map(|rid| self.regs.get(rid).and_then(|r| r.sock))
            .collect();
        for t in tokens {
            regs.extend(self.ep.close(t));
        }
        regs.sort_unstable();
        regs.dedup();
        self.ep.forget_routes();
        log_at!(
            Level::Info,
            "network changed: re-binding {} registerer(s)",
            regs.len()
        );
        for rid in regs {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.sock = None;
            }
            self.drive(rid, now, |core, now| core.network_changed(now));
        }
    }

    fn free_ua(&mut self, id: UaId, done: Sender<()>, now: Instant) {
        let Some(ua) = self.uas.get_mut(&id) else {
            let _ = done.send(());
            return;
        };
        ua.freeing = Some(done);
        let regs: Vec<RegId> = ua.regs.clone();
        for rid in regs {
            if let Some(r) = self.regs.get(&rid) {
                r.shared.snap().disposing = true;
            }
            self.drive(rid, now, |core, now| core.dispose(now));
        }
        self.check_ua_done(id);
    }

    fn check_ua_done(&mut self, id: UaId) {
        let Some(ua) = self.uas.get(&id) else { return };
        if ua.freeing.is_none() || !ua.regs.is_empty() {
            return;
        }
        let Some(ua) = self.uas.remove(&id) else {
            return;
        };
        if let Some(done) = ua.freeing {
            let _ = done.send(());
        }
    }

    // ----- driving one registerer ---------------------------------------

    /// Feeds one input to the core, then flushes its outputs.
    fn drive(&mut self, id: RegId, now: Instant, f: impl FnOnce(&mut Registerer, Instant)) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        f(&mut reg.core, now);
        self.flush(id, now);
    }

    /// Releases the claim an accepted register/unregister call took on the handle,
    /// after `publish` marked the handle as waiting (so no second call slips in).
    fn release_claim(&mut self, id: RegId) {
        if let Some(reg) = self.regs.get(&id) {
            let mut s = reg.shared.snap();
            s.claims = s.claims.saturating_sub(1);
        }
    }

    /// Opens (if needed) the socket registerer `id` sends on and returns the
    /// local address its packets leave from. Called only when there is
    /// something to send, so a registrar that is down is not reconnected in a loop.
    fn local_for(&mut self, id: RegId) -> io::Result<SocketAddr> {
        let token = self.socket_for(id)?;
        let target = self
            .regs
            .get(&id)
            .map(|r| r.target)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        self.ep.local_addr(token, target)
    }

    /// The endpoint socket registerer `id` uses: the one it has, else a shared
    /// one that matches its settings, else a new one.
    fn socket_for(&mut self, id: RegId) -> io::Result<Token> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        if let Some(t) = reg.sock.filter(|t| self.ep.socks.contains_key(t)) {
            return Ok(t);
        }
        let mut key = self.flow_key(id)?;
        let (aor, ua) = (reg.core.settings().aor_text.clone(), reg.ua);
        let token = loop {
            match self.ep.find(&key) {
                // Another user agent of this AOR is there: the next socket.
                Some(t) if self.ep.taken(t, &aor, ua) => key.slot += 1,
                Some(t) => break t,
                None => break self.open(id, key)?,
            }
        };
        self.ep.attach(token, id, &aor, ua);
        if let Some(r) = self.regs.get_mut(&id) {
            r.sock = Some(token);
        }
        Ok(token)
    }

    /// What registerer `id`'s socket must match, from its settings and its
    /// user agent's current ones.
    fn flow_key(&self, id: RegId) -> io::Result<FlowKey> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let ua = self
            .uas
            .get(&reg.ua)
            .ok_or_else(|| io::Error::other("user agent gone"))?;
        let settings = reg.core.settings();
        let transport = settings.transport;
        let mut session = String::new();
        if transport.secure() {
            let tls = &ua.config.tls;
            let sni =
                super::tls::server_name(tls, &settings.target_host).map_err(io::Error::other)?;
            session = format!(
                "ca={:?};verify={};sni={}",
                tls.ca_file,
                tls.verify,
                sni.to_str()
            );
        }
        if transport.websocket() {
            session.push_str(&format!(
                ";host={};path={}",
                ws_host(&settings.target_host, reg.target),
                ua.config.ws_path
            ));
        }
        if let Some(l) = ua.config.local_address {
            if l.is_ipv4() != reg.target.is_ipv4() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "local address {l} and target {} are of different families",
                        reg.target
                    ),
                ));
            }
        }
        Ok(FlowKey {
            transport,
            remote: transport.reliable().then_some(reg.target),
            v6: reg.target.is_ipv6(),
            local: ua.config.local_address,
            session,
            private: ua.config.private_socket.then_some(reg.ua),
            slot: 0,
        })
    }

    /// Opens the socket for `key` on behalf of registerer `id` (TCP connect,
    /// TLS and WebSocket handshakes all start here, non-blocking).
    fn open(&mut self, id: RegId, key: FlowKey) -> io::Result<Token> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let (ua_id, target) = (reg.ua, reg.target);
        if key.transport == Transport::Udp {
            return self.ep.open_udp(key, ua_id, target, self.poll.registry());
        }
        let settings = reg.core.settings();
        let ua = self
            .uas
            .get_mut(&ua_id)
            .ok_or_else(|| io::Error::other("user agent gone"))?;
        let tls = if key.transport.secure() {
            let tls = &ua.config.tls;
            if !tls.verify && !ua.warned_insecure {
                ua.warned_insecure = true;
                log_at!(
                    Level::Warn,
                    "TLS certificate and host name checks are OFF for {} (tls_verify=false): lab use only",
                    ua.config.aor
                );
            }
            let config = super::tls::client_config(tls).map_err(io::Error::other)?;
            let name =
                super::tls::server_name(tls, &settings.target_host).map_err(io::Error::other)?;
            Some(TlsParams { config, name })
        } else {
            None
        };
        let ws = key.transport.websocket().then(|| WsParams {
            host: ws_host(&settings.target_host, target),
            path: ua.config.ws_path.to_string(),
        });
        // A handshake that has not finished by then is a failure of its own.
        let limit = (ua.config.timers.t1 * 64).clamp(Duration::from_secs(1), HANDSHAKE_TIMEOUT);
        let spec = StreamSpec {
            transport: key.transport,
            remote: target,
            local: key.local,
            tls,
            ws,
            deadline: Instant::now() + limit,
        };
        let token = self
            .ep
            .open_stream(key, ua_id, spec, self.poll.registry())?;
        if let Some(Io::Stream(conn)) = self.ep.socks.get(&token).map(|s| &s.io) {
            log_at!(Level::Debug, "{}: connecting", conn.describe());
        }
        Ok(token)
    }

    /// Registerer `id` stops using its socket (the last user closes it).
    fn detach(&mut self, id: RegId) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        if let Some(t) = reg.sock.take() {
            let aor = reg.core.settings().aor_text.clone();
            self.ep.detach(t, id, &aor);
        }
    }

    /// Sends what the core queued, delivers its events, updates the snapshot and the timer.
    fn flush(&mut self, id: RegId, now: Instant) {
        let mut fired: Vec<Event> = Vec::new();
        let mut lost_connection = None;
        // The target a timed-out request went to (before a failover moves on).
        let sent_to = self.regs.get(&id).map(|r| r.target);
        loop {
            let mut progressed = false;
            if self
                .regs
                .get_mut(&id)
                .is_some_and(|r| r.core.take_flow_failed())
            {
                self.replace_flow(id, now);
            }
            progressed |= self.pace(id, now);
            while self.regs.get(&id).is_some_and(|r| r.core.wants_transmit()) {
                progressed = true;
                self.sync_target(id);
                let sent = self.local_for(id).and_then(|local| {
                    let reg = self
                        .regs
                        .get_mut(&id)
                        .ok_or_else(|| io::Error::other("registerer gone"))?;
                    reg.core.set_local_addr(local);
                    if reg.flow_local != Some(local) {
                        reg.flow_local = Some(local);
                        let transport = reg.core.settings().transport.as_str();
                        reg.shared.snap().flow =
                            Some(format!("{transport}:{local} -> {}", reg.target));
                    }
                    match reg.core.poll_transmit() {
                        Some(t) => self.transmit(id, &t),
                        None => Err(io::Error::other("nothing to send")),
                    }
                });
                if let Err(e) = sent {
                    if let Some(ua) = self.regs.get(&id).and_then(|r| self.uas.get(&r.ua)) {
                        UaStats::bump(&ua.stats.transport_errors);
                    }
                    if let Some(r) = self.regs.get_mut(&id) {
                        let why = cause::send_failed(r.target, &e);
                        r.core.transport_error(now, why, false);
                    }
                }
            }
            self.send_pings(id);
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            while let Some(e) = reg.core.poll_event() {
                progressed = true;
                fired.push(e);
            }
            if reg.core.take_timed_out() && reg.core.settings().transport.reliable() {
                // A stream that swallowed a request is not trusted again (pjsip #5033).
                let (transport, target) = (reg.core.settings().transport, reg.target);
                // After a failover the socket in use is the new target's: keep it.
                let moved = sent_to.is_some_and(|t| t != target);
                if let Some(t) = reg.sock.take_if(|_| !moved) {
                    log_at!(
                        Level::Info,
                        "{}: closing {target} after a request timed out",
                        transport.as_str()
                    );
                    lost_connection = Some(self.ep.close(t));
                }
            }
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            if !reg.core.is_waiting() {
                if let Some((all, headers)) = reg.deferred_unregister.take() {
                    let _ = reg.core.unregister_with_headers(now, all, &headers);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        self.request_resolution(id);
        self.publish(id, fired);
        let failed: Vec<(Vec<RegId>, RegId)> = {
            let (mine, rest) = std::mem::take(&mut self.failed_streams)
                .into_iter()
                .partition(|(_, sender)| *sender == id);
            self.failed_streams = rest;
            mine
        };
        for (users, sender) in failed {
            let why = cause::stream("sending on the connection failed", false);
            self.fail_users(users, now, &why, true, Some(sender));
        }
        if let Some(users) = lost_connection {
            // The others on that connection learn it too (after this one's events).
            let why = cause::stream("connection closed after a request timed out", false);
            self.fail_users(users, now, &why, true, Some(id));
        }
    }

    fn publish(&mut self, id: RegId, fired: Vec<Event>) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        {
            // Contacts and the last response only change with a final response:
            // a timer step (Timer K, a retransmission) copies no strings.
            let responded = fired.iter().any(|e| matches!(e, Event::Response { .. }));
            let mut s = reg.shared.snap();
            s.state = reg.core.state();
            if responded {
                s.contacts = reg.core.shared_contacts();
                s.last_response = reg.core.last_response().cloned();
            }
            s.retry_after = reg.core.retry_after();
            s.retry_at = reg.core.retry_at();
            s.failure_count = reg.core.failure_count();
            s.waiting = reg.core.is_waiting();
            s.retransmissions = reg.core.retransmissions();
            let routing = reg.core.routing();
            if s.routing_facts() != routing {
                s.routing = (*routing != RoutingFacts::EMPTY).then(|| Box::new(routing.clone()));
            }
            s.public_address = reg.core.public_address();
            if s.failure.as_deref() != reg.core.failure() {
                s.failure = reg.core.failure().cloned().map(Arc::new);
            }
            if reg.core.is_disposing() {
                s.disposing = true;
            }
        }
        let deadline = reg.core.poll_timeout();
        if deadline != reg.timer_at {
            reg.timer_at = deadline;
            if let Some(t) = deadline {
                self.timers.push(Reverse((t, id)));
            }
        }
        let shared = reg.shared.clone();
        if self.timers.len() > self.timer_limit() {
            self.compact_timers();
        }
        let Some(reg) = self.regs.get(&id) else {
            return;
        };
        let terminated = reg.core.state() == State::Terminated;
        let ua_id = reg.ua;
        let who = Who {
            aor: &reg.core.settings().aor_text,
            id,
        };
        for e in &fired {
            log_event(&who, e);
        }
        if terminated {
            // A terminated registerer sends nothing more: its socket may close.
            self.detach(id);
        }
        if !fired.is_empty() {
            shared.deliver(&fired);
        }
        if terminated {
            let remove = self.regs.get(&id).is_some_and(|r| r.freed)
                || self.uas.get(&ua_id).is_some_and(|u| u.freeing.is_some());
            if remove {
                self.remove_reg(id);
                self.check_ua_done(ua_id);
            }
        }
    }

    /// Points the registerer's sends at the core's current RFC 3263 target.
    /// A socket that no longer fits (another stream peer, family or
    /// transport) is left for one that does.
    fn sync_target(&mut self, id: RegId) {
        let Some(r) = self.regs.get_mut(&id) else {
            return;
        };
        let Some(addr) = r.core.current_target().map(|t| t.addr) else {
            return;
        };
        let moved = r.target != addr;
        if moved {
            r.target = addr;
            // The flow in the snapshot follows the new remote.
            r.flow_local = None;
        }
        let transport = r.core.settings().transport;
        let Some(token) = r.sock else {
            return;
        };
        let have = self.ep.socks.get(&token).map(|s| s.key.clone());
        if !moved && have.as_ref().is_some_and(|k| k.transport == transport) {
            return;
        }
        let fits = match (self.flow_key(id), have) {
            (Ok(want), Some(have)) => {
                FlowKey {
                    slot: have.slot,
                    ..want
                } == have
            }
            _ => false,
        };
        if !fits {
            self.detach(id);
        }
    }

    /// Hands the core's lookup (if it wants one) to the resolver thread.
    fn request_resolution(&mut self, id: RegId) {
        if let Some(query) = self
            .regs
            .get_mut(&id)
            .and_then(|r| r.core.poll_resolution())
        {
            super::dns::request(super::dns::Request { reg: id, query });
        }
    }

    /// Drops superseded timer entries (each reschedule leaves one behind).
    /// Stale timer entries (a deadline moved) are dropped lazily; past this
    /// many entries the heap is rebuilt from the live deadlines.
    fn timer_limit(&self) -> usize {
        self.regs.len() + self.regs.len() / 2 + 64
    }

    fn compact_timers(&mut self) {
        // Sized for the entries until the next rebuild, so the heap does not
        // double past them (at 10 000 registerers a doubled heap of stale
        // entries cost more than a hundred bytes per registerer).
        let mut live = Vec::with_capacity(self.timer_limit() + 1);
        live.extend(
            self.regs
                .iter()
                .filter_map(|(id, r)| r.timer_at.map(|t| Reverse((t, *id)))),
        );
        self.timers = BinaryHeap::from(live);
    }

    fn remove_reg(&mut self, id: RegId) {
        self.detach(id);
        self.pacing.release(id, Outcome::Abandoned);
        if let Some(r) = self.regs.remove(&id) {
            if let Some(k) = key_bytes(r.core.key()) {
                self.keys.remove(&k);
            }
            if let Some(ua) = self.uas.get_mut(&r.ua) {
                ua.regs.retain(|r| *r != id);
            }
        }
    }

    fn transmit(&mut self, id: RegId, t: &Transmit) -> io::Result<()> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let (ua_id, target) = (reg.ua, reg.target);
        if log_enabled_debug() {
            let first = t.bytes.split(|b| *b == b'\r').next().unwrap_or(&[]);
            let who = Who {
                aor: &reg.core.settings().aor_text,
                id,
            };
            log_at!(
                Level::Debug,
                "{who}: {} {} -> {target}",
                if t.retransmission {
                    "retransmit"
                } else {
                    "send"
                },
                String::from_utf8_lossy(first)
            );
        }
        let stats = self.uas.get(&ua_id).map(|u| u.stats.clone());
        if t.retransmission {
            self.pacing.retransmitted(target);
        }
        let token = self.socket_for(id)?;
        let result = match self.ep.socks.get_mut(&token).map(|s| &mut s.io) {
            Some(Io::Udp(sock)) => match udp::send_to(sock, &t.bytes, target) {
                Ok(_) => Ok(()),
                // A full socket buffer loses the datagram; Timer E resends it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(e),
            },
            Some(Io::Stream(conn)) => {
                let r = conn.send(&t.bytes);
                if r.is_err() {
                    let users = self.ep.close(token);
                    self.failed_streams.push((users, id));
                }
                r
            }
            None => Err(io::Error::other("no socket")),
        };
        if let (Ok(()), Some(s)) = (&result, stats) {
            UaStats::bump(&s.sent);
        }
        if result.is_ok() && super::trace::enabled(ua_id) {
            let local = self.ep.local_addr(token, target).ok();
            let transport = self.regs.get(&id).map(|r| r.core.settings().transport);
            let transport = transport.unwrap_or(Transport::Udp);
            super::trace::sent(ua_id, transport, local, target, &t.bytes);
        }
        result
    }

    // ----- pacing --------------------------------------------------------

    /// Gives registerer `id` a slot in its target's window when it wants to
    /// start a transaction, and frees the slot when the transaction is over.
    /// True if a transaction was started (there is something to send).
    fn pace(&mut self, id: RegId, now: Instant) -> bool {
        let Some(reg) = self.regs.get_mut(&id) else {
            return false;
        };
        let mut started = false;
        if self.pacing.holds(id) && !reg.core.in_transaction() {
            let outcome = match reg.core.last_response() {
                Some((408 | 503, _)) => Outcome::Congested,
                _ => Outcome::Answered,
            };
            if reg.core.wants_admission() {
                self.pacing.renew(id, outcome);
                reg.core.admit(now);
                started = true;
            } else {
                self.pacing.release(id, outcome);
            }
        } else if reg.core.wants_admission()
            && !reg.core.is_resolving()
            && self.pacing.request(Self::pacing_key(reg), id)
        {
            // (A request waiting for RFC 3263 answers asks once it has a target.)
            reg.core.admit(now);
            started = true;
        }
        if let Some(ua) = self.uas.get(&reg.ua) {
            ua.stats
                .follow_window(&self.pacing.counters(Self::pacing_key(reg)));
        }
        started
    }

    /// The registrar target a registerer's window belongs to: the resolved
    /// RFC 3263 target in use, else the fixed address.
    fn pacing_key(reg: &Reg) -> SocketAddr {
        reg.core
            .current_target()
            .map(|t| t.addr)
            .unwrap_or(reg.target)
    }

    /// Starts the transactions that got a slot when others ended.
    fn start_admitted(&mut self) {
        let now = Instant::now();
        while let Some(id) = self.pacing.pop_ready() {
            if self.regs.get(&id).is_some_and(|r| r.core.wants_admission()) {
                self.drive(id, now, |core, now| core.admit(now));
            } else {
                self.pacing.release(id, Outcome::Abandoned);
            }
        }
    }

    // ----- sockets -------------------------------------------------------

    fn on_socket(&mut self, token: Token, readable: bool, writable: bool, error: bool) {
        let now = Instant::now();
        match self.ep.socks.get(&token).map(|s| &s.io) {
            Some(Io::Udp(_)) => self.on_udp(token, now, error),
            Some(Io::Stream(_)) => self.on_stream(token, now, readable, writable),
            None => {}
        }
    }

    fn on_udp(&mut self, token: Token, now: Instant, error: bool) {
        let mut buf = std::mem::take(&mut self.rbuf);
        if buf.len() <= udp::MAX_DATAGRAM {
            buf = vec![0u8; udp::MAX_DATAGRAM + 1];
        }
        let mut datagrams = Vec::new();
        let mut errors = Vec::new();
        {
            let Some(Io::Udp(sock)) = self.ep.socks.get(&token).map(|s| &s.io) else {
                return;
            };
            // Bounded per wake-up so a flood cannot starve timers and commands;
            // a socket left readable is read again on the next turn of the loop.
            let mut drained = false;
            for _ in 0..1024 {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        datagrams.push((buf[..n].to_vec(), from, n > udp::MAX_DATAGRAM))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        // An ICMP error surfaced as a recv error: read it from the queue below.
                        if let Some(qe) = udp::take_queued_error(sock) {
                            errors.push(qe);
                        }
                    }
                }
            }
            if !drained {
                self.again.push(token);
            }
            if error {
                while let Some(qe) = udp::take_queued_error(sock) {
                    errors.push(qe);
                    if errors.len() > 1024 {
                        break;
                    }
                }
            }
        }
        self.rbuf = buf;
        for (bytes, from, oversized) in datagrams {
            if oversized {
                self.count_drop(self.owner(token), "oversized datagram");
                continue;
            }
            if crate::core::stun::is_stun(&bytes) {
                self.on_stun(token, &bytes, from, now);
                continue;
            }
            self.on_message(token, &bytes, from, Transport::Udp, now);
        }
        for (dest, err) in errors {
            self.on_udp_error(token, dest, err, now);
        }
    }

    /// An ICMP error for a datagram sent to `dest` on `token`: fail the requests
    /// in flight to it.
    fn on_udp_error(
        &mut self,
        token: Token,
        dest: Option<SocketAddr>,
        err: io::Error,
        now: Instant,
    ) {
        let Some(sock) = self.ep.socks.get(&token) else {
            return;
        };
        let victims: Vec<RegId> = sock
            .users
            .iter()
            .copied()
            .filter(|rid| {
                self.regs
                    .get(rid)
                    .is_some_and(|r| r.core.in_transaction() && dest.is_none_or(|d| d == r.target))
            })
            .collect();
        self.bump_users(&victims, |s| &s.transport_errors);
        let why = cause::icmp(dest, &err);
        log_at!(
            Level::Info,
            "udp: {}; failing {} request(s)",
            why.detail,
            victims.len()
        );
        for rid in victims {
            let why = why.clone();
            self.drive(rid, now, |core, now| core.transport_error(now, why, false));
        }
    }

    /// Bumps one counter once for each user agent among `regs`.
    fn bump_users(
        &self,
        regs: &[RegId],
        counter: impl Fn(&UaStats) -> &std::sync::atomic::AtomicU64,
    ) {
        let mut seen: Vec<UaId> = regs
            .iter()
            .filter_map(|rid| self.regs.get(rid).map(|r| r.ua))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for ua in seen {
            if let Some(u) = self.uas.get(&ua) {
                UaStats::bump(counter(&u.stats));
            }
        }
    }

    /// The user agent that opened `token` (unmatched messages count there).
    fn owner(&self, token: Token) -> UaId {
        self.ep.socks.get(&token).map(|s| s.owner).unwrap_or(0)
    }

    fn on_stream(&mut self, token: Token, now: Instant, readable: bool, writable: bool) {
        let Some(Io::Stream(conn)) = self.ep.socks.get_mut(&token).map(|s| &mut s.io) else {
            return;
        };
        let (transport, remote) = (conn.transport, conn.remote);
        let was_up = conn.is_up();
        if writable {
            if let Err(e) = conn.on_writable() {
                let why = if was_up {
                    format!("write failed: {}", cause::plain(&e))
                } else {
                    format!("connect to {remote} failed: {}", cause::plain(&e))
                };
                return self.stream_failed(token, &why, was_up);
            }
        }
        let out = if readable {
            conn.read()
        } else {
            stream::ReadOutcome::default()
        };
        if conn.take_up_event() {
            match conn.tls_version() {
                Some(v) => log_at!(Level::Debug, "{}: up ({v})", conn.describe()),
                None => log_at!(Level::Debug, "{}: up", conn.describe()),
            }
        }
        let up = conn.is_up();
        if out.more {
            self.again.push(token);
        }
        if out.pongs > 0 {
            self.on_pong(token);
        }
        for m in &out.messages {
            if m.len() > stream::MAX_MESSAGE {
                self.count_drop(self.owner(token), "oversized stream message");
                continue;
            }
            self.on_message(token, m, remote, transport, now);
        }
        if out.invalid {
            self.count_drop(self.owner(token), "unframeable stream data");
        }
        if let Some(why) = out.closed {
            // Closed before it came up: the connect or a handshake failed.
            let why = if up || was_up {
                why
            } else {
                format!("connect to {remote} failed: {why}")
            };
            self.stream_failed(token, &why, up || was_up);
        }
    }

    /// A stream connection failed or closed: log why, drop it, tell its users.
    /// `established`: it had come up (its users re-register at once).
    fn stream_failed(&mut self, token: Token, why: &str, established: bool) {
        let Some(Io::Stream(conn)) = self.ep.socks.get(&token).map(|s| &s.io) else {
            return;
        };
        log_at!(Level::Info, "{}: {why}", conn.describe());
        let why = cause::stream(why, conn.tls_handshaking());
        let users = self.ep.close(token);
        self.fail_users(users, Instant::now(), &why, established, None);
    }

    /// Fails the connections whose handshakes ran past their deadline.
    fn run_handshake_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, token))) = self.ep.handshakes.peek().copied() {
            if t > now {
                break;
            }
            self.ep.handshakes.pop();
            let late = match self.ep.socks.get(&token).map(|s| &s.io) {
                Some(Io::Stream(conn)) if conn.deadline().is_some_and(|d| d <= now) => {
                    Some(conn.waiting_for())
                }
                _ => None,
            };
            if let Some(why) = late {
                self.stream_failed(token, why, false);
            }
        }
    }

    /// A connection is gone: tell every registerer that used it (but `except`).
    fn fail_users(
        &mut self,
        users: Vec<RegId>,
        now: Instant,
        why: &Failure,
        established: bool,
        except: Option<RegId>,
    ) {
        let users: Vec<RegId> = users.into_iter().filter(|r| Some(*r) != except).collect();
        self.bump_users(&users, |s| &s.transport_errors);
        for rid in users {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.sock = None;
            }
            let why = why.clone();
            if established {
                self.drive(rid, now, |core, now| core.connection_lost(now, why));
            } else {
                self.drive(rid, now, |core, now| core.transport_error(now, why, false));
            }
        }
    }

    fn count_drop(&self, ua_id: UaId, why: &str) {
        if let Some(ua) = self.uas.get(&ua_id) {
            UaStats::bump(&ua.stats.dropped);
        }
        log_at!(Level::Debug, "dropped a message: {why}");
    }

    /// One received message on `token`: route a response to its registerer,
    /// drop anything else (counted on the registerer's user agent when known,
    /// else on the socket's owner).
    fn on_message(
        &mut self,
        token: Token,
        bytes: &[u8],
        from: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let owner = self.owner(token);
        let kind = classify(bytes);
        let resp = match kind {
            Kind::Response => Some(Response::parse(bytes)),
            _ => None,
        };
        let rid = resp.as_ref().and_then(|r| r.as_ref().ok()).and_then(|r| {
            r.top_branch()
                .and_then(branch_key)
                .and_then(key_bytes)
                .and_then(|k| self.keys.get(&k).copied())
        });
        let counted = rid.and_then(|r| self.regs.get(&r)).map_or(owner, |r| r.ua);
        if super::trace::enabled(counted) {
            let local = self.ep.local_addr(token, from).ok();
            super::trace::received(counted, transport, local, from, bytes);
        }
        if let Some(ua) = self.uas.get(&counted) {
            UaStats::bump(&ua.stats.received);
        }
        let resp = match (kind, resp) {
            (_, Some(Ok(r))) => r,
            (_, Some(Err(e))) => {
                return self.count_drop(counted, &format!("unparsable response: {e}"))
            }
            (Kind::Response | Kind::KeepAlive, None) => return,
            (Kind::Request, _) => {
                return self.count_drop(counted, "request (only responses are expected)")
            }
            (Kind::Junk, _) => return self.count_drop(counted, "not SIP"),
        };
        let Some(rid) = rid else {
            return self.count_drop(counted, "response for an unknown branch");
        };
        let Some(reg) = self.regs.get_mut(&rid) else {
            return;
        };
        if reg.sock != Some(token) {
            return self.count_drop(counted, "response on a socket the request was not sent on");
        }
        if transport == Transport::Udp && from != reg.target {
            return self.count_drop(
                counted,
                "response from an address the request was not sent to",
            );
        }
        log_at!(
            Level::Debug,
            "{}: received {} {}",
            Who {
                aor: &reg.core.settings().aor_text,
                id: rid
            },
            resp.status,
            resp.reason
        );
        match reg.core.handle_response(now, &resp) {
            Ok(()) => self.flush(rid, now),
            Err(why) => self.count_drop(counted, why.as_str()),
        }
    }

    // ----- timers --------------------------------------------------------

    fn next_timeout(&mut self) -> Option<Duration> {
        let mut next = None;
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if self.regs.get(&id).is_some_and(|r| r.timer_at == Some(t)) {
                next = Some(t);
                break;
            }
            self.timers.pop();
        }
        while let Some(Reverse((t, token))) = self.ep.handshakes.peek().copied() {
            let pending = match self.ep.socks.get(&token).map(|s| &s.io) {
                Some(Io::Stream(conn)) => conn.deadline() == Some(t),
                _ => false,
            };
            if pending {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
                break;
            }
            self.ep.handshakes.pop();
        }
        next.map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        self.run_handshake_timers(now);
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let due = self.regs.get_mut(&id).is_some_and(|r| {
                let live = r.timer_at == Some(t);
                if live {
                    r.timer_at = None;
                }
                live
            });
            if due {
                self.drive(id, now, |core, now| core.handle_timeout(now));
            }
        }
    }
}

/// A registerer key as the fixed-size bytes the key map holds.
fn key_bytes(key: &str) -> Option<[u8; KEY_LEN]> {
    key.as_bytes().try_into().ok()
}

fn log_enabled_debug() -> bool {
    super::log::enabled(Level::Debug)
}

fn log_event(who: &Who<'_>, e: &Event) {
    match e {
        Event::StateChanged(s) => log_at!(Level::Info, "{who}: state {s}"),
        Event::Response { status, reason } => {
            log_at!(Level::Info, "{who}: response {status} {reason}")
        }
        Event::RetryScheduled { delay, failures } => log_at!(
            Level::Info,
            "{who}: retry in {:.3} s (failure {failures})",
            delay.as_secs_f64()
        ),
        Event::RetryStarted { failures } => {
            log_at!(Level::Info, "{who}: retrying (failure {failures})")
        }
        Event::Failed(f) => log_at!(Level::Info, "{who}: failed ({}): {}", f.kind, f.detail),
        Event::Note(n) => log_at!(Level::Info, "{who}: {n}"),
        Event::Warning(n) => log_at!(Level::Warn, "{who}: {n}"),
    }
}

/// The `Host` of a WebSocket upgrade: the target's name if it has one.
fn ws_host(host: &Host, target: SocketAddr) -> String {
    match host {
        Host::Domain(d) => format!("{d}:{}", target.port()),
        _ => target.to_string(),
    }
}
