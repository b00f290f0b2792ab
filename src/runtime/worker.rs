//! The event loop: sockets, commands, timers, callbacks — one thread for all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::log::Level;
use super::stream::{self, StreamConn, StreamSpec, TlsParams, WsParams};
use super::udp;
use super::{Command, RegId, Shared, UaId, UaStats};
use crate::core::message::{classify, Kind, Response};
use crate::core::options::{Transport, UserAgentConfig};
use crate::core::registerer::{branch_key, Event, Registerer, State, Transmit};
use crate::log_at;

/// Token of the waker that interrupts `poll` when commands arrive.
pub const WAKE_TOKEN: Token = Token(0);

/// Longest wait for a connection's TCP, TLS and WebSocket handshakes (shorter with a small T1).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Ua {
    config: UserAgentConfig,
    stats: Arc<UaStats>,
    udp: HashMap<bool, Token>,
    streams: HashMap<FlowKey, Token>,
    routes: HashMap<SocketAddr, IpAddr>,
    regs: HashSet<RegId>,
    freeing: Option<Sender<()>>,
    /// The "certificates are not checked" warning was logged for this user agent.
    warned_insecure: bool,
}

/// A stream connection is shared by the registerers of a user agent that use
/// the same transport to the same target.
type FlowKey = (Transport, SocketAddr);

struct Reg {
    core: Registerer,
    ua: UaId,
    target: SocketAddr,
    shared: Arc<Shared>,
    timer_at: Option<Instant>,
    freed: bool,
    deferred_unregister: Option<bool>,
    /// Local address of the flow last published in the snapshot.
    flow_local: Option<SocketAddr>,
}

enum Sock {
    Udp { sock: UdpSocket, ua: UaId },
    Stream { conn: StreamConn, ua: UaId },
}

/// The worker's state. Only the worker thread touches it.
pub struct Worker {
    poll: Poll,
    commands: Receiver<Command>,
    uas: HashMap<UaId, Ua>,
    regs: HashMap<RegId, Reg>,
    keys: HashMap<String, RegId>,
    socks: HashMap<Token, Sock>,
    next_token: usize,
    timers: BinaryHeap<Reverse<(Instant, RegId)>>,
    /// Handshake deadlines of stream connections that are not up yet.
    handshakes: BinaryHeap<Reverse<(Instant, Token)>>,
    /// Receive buffer reused for every datagram.
    rbuf: Vec<u8>,
    /// Stream connections a send failed on: (user agent, target, the sender), to
    /// tell the connection's other users once the sender's step is finished.
    failed_streams: Vec<(UaId, FlowKey, RegId)>,
    /// Sockets with more to read than one wake-up takes (readiness is edge-triggered).
    again: Vec<Token>,
}

impl Worker {
    pub(super) fn new(poll: Poll, commands: Receiver<Command>) -> Worker {
        Worker {
            poll,
            commands,
            uas: HashMap::new(),
            regs: HashMap::new(),
            keys: HashMap::new(),
            socks: HashMap::new(),
            next_token: 1,
            timers: BinaryHeap::new(),
            handshakes: BinaryHeap::new(),
            rbuf: vec![0u8; udp::MAX_DATAGRAM + 1],
            failed_streams: Vec::new(),
            again: Vec::new(),
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
            while let Ok(cmd) = self.commands.try_recv() {
                self.on_command(cmd);
            }
            self.run_timers();
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
                        config: *config,
                        stats,
                        udp: HashMap::new(),
                        streams: HashMap::new(),
                        routes: HashMap::new(),
                        regs: HashSet::new(),
                        freeing: None,
                        warned_insecure: false,
                    },
                );
            }
            Command::UaConfig { id, config } => {
                let Some(ua) = self.uas.get_mut(&id) else {
                    return;
                };
                let creds_changed = ua.config.auth_username != config.auth_username
                    || ua.config.password != config.password;
                ua.config = *config;
                if creds_changed {
                    for rid in &ua.regs {
                        if let Some(r) = self.regs.get_mut(rid) {
                            r.core.set_credentials(
                                ua.config.auth_username.clone(),
                                ua.config.password.clone(),
                            );
                        }
                    }
                }
            }
            Command::NetworkChanged { id } => self.network_changed(id, now),
            Command::FreeUa { id, done } => self.free_ua(id, done, now),
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
                u.regs.insert(id);
                self.keys.insert(core.key().to_owned(), id);
                self.regs.insert(
                    id,
                    Reg {
                        core: *core,
                        ua,
                        target,
                        shared,
                        timer_at: None,
                        freed: false,
                        deferred_unregister: None,
                        flow_local: None,
                    },
                );
            }
            Command::Register(id) => {
                self.drive(id, now, |core, now| {
                    // Losing the race to an automatic refresh is fine: a REGISTER is in flight.
                    let _ = core.register(now);
                });
                self.release_claim(id);
            }
            Command::Unregister(id, all) => {
                let mut deferred = false;
                self.drive(id, now, |core, now| {
                    deferred =
                        matches!(core.unregister(now, all), Err(crate::Error::RequestPending));
                });
                if deferred {
                    if let Some(r) = self.regs.get_mut(&id) {
                        r.deferred_unregister = Some(all);
                    }
                }
                self.release_claim(id);
            }
            Command::Dispose(id) => self.drive(id, now, |core, now| core.dispose(now)),
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

    fn network_changed(&mut self, id: UaId, now: Instant) {
        let Some(ua) = self.uas.get_mut(&id) else {
            return;
        };
        let tokens: Vec<Token> = ua
            .udp
            .values()
            .chain(ua.streams.values())
            .copied()
            .collect();
        ua.udp.clear();
        ua.streams.clear();
        ua.routes.clear();
        let regs: Vec<RegId> = ua.regs.iter().copied().collect();
        for t in tokens {
            self.close_socket(t);
        }
        log_at!(
            Level::Info,
            "network changed: re-binding {} registerer(s)",
            regs.len()
        );
        for rid in regs {
            self.drive(rid, now, |core, now| core.network_changed(now));
        }
    }

    fn free_ua(&mut self, id: UaId, done: Sender<()>, now: Instant) {
        let Some(ua) = self.uas.get_mut(&id) else {
            let _ = done.send(());
            return;
        };
        ua.freeing = Some(done);
        let regs: Vec<RegId> = ua.regs.iter().copied().collect();
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
        for t in ua.udp.values().chain(ua.streams.values()) {
            self.close_socket(*t);
        }
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
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let (ua_id, target, transport) = (reg.ua, reg.target, reg.core.settings().transport);
        if transport == Transport::Udp {
            return self.udp_local(ua_id, target);
        }
        let token = self.stream_conn(id)?;
        match self.socks.get(&token) {
            Some(Sock::Stream { conn, .. }) => Ok(conn.local),
            _ => Err(io::Error::other("no connection")),
        }
    }

    fn udp_local(&mut self, ua_id: UaId, target: SocketAddr) -> io::Result<SocketAddr> {
        let token = self.udp_socket(ua_id, target)?;
        let Some(Sock::Udp { sock, .. }) = self.socks.get(&token) else {
            return Err(io::Error::other("no socket"));
        };
        let bound = sock.local_addr()?;
        let ip = if bound.ip().is_unspecified() {
            let ua = self
                .uas
                .get_mut(&ua_id)
                .ok_or_else(|| io::Error::other("user agent gone"))?;
            match ua.routes.get(&target) {
                Some(ip) => *ip,
                None => {
                    let ip = udp::route_ip(target)?;
                    ua.routes.insert(target, ip);
                    ip
                }
            }
        } else {
            bound.ip()
        };
        Ok(SocketAddr::new(ip, bound.port()))
    }

    fn udp_socket(&mut self, ua_id: UaId, target: SocketAddr) -> io::Result<Token> {
        let ua = self
            .uas
            .get(&ua_id)
            .ok_or_else(|| io::Error::other("user agent gone"))?;
        if let Some(t) = ua.udp.get(&target.is_ipv6()) {
            return Ok(*t);
        }
        let mut sock = udp::bind(ua.config.local_address, target)?;
        let token = self.alloc_token();
        self.poll
            .registry()
            .register(&mut sock, token, Interest::READABLE)?;
        self.socks.insert(token, Sock::Udp { sock, ua: ua_id });
        if let Some(ua) = self.uas.get_mut(&ua_id) {
            ua.udp.insert(target.is_ipv6(), token);
        }
        Ok(token)
    }

    /// The stream connection registerer `id` uses, opened if needed (TCP
    /// connect, TLS and WebSocket handshakes all start here, non-blocking).
    fn stream_conn(&mut self, id: RegId) -> io::Result<Token> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let settings = reg.core.settings();
        let (ua_id, target, transport) = (reg.ua, reg.target, settings.transport);
        let ua = self
            .uas
            .get_mut(&ua_id)
            .ok_or_else(|| io::Error::other("user agent gone"))?;
        if let Some(t) = ua.streams.get(&(transport, target)) {
            return Ok(*t);
        }
        let tls = if transport.secure() {
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
        let ws = transport.websocket().then(|| WsParams {
            host: match &settings.target_host {
                crate::core::uri::Host::Domain(d) => format!("{d}:{}", target.port()),
                _ => target.to_string(),
            },
            path: ua.config.ws_path.clone(),
        });
        // A handshake that has not finished by then is a failure of its own.
        let limit = (ua.config.timers.t1 * 64).clamp(Duration::from_secs(1), HANDSHAKE_TIMEOUT);
        let deadline = Instant::now() + limit;
        let local = ua.config.local_address;
        let token = self.alloc_token();
        let spec = StreamSpec {
            transport,
            remote: target,
            local,
            tls,
            ws,
            deadline,
        };
        let conn = StreamConn::connect(spec, self.poll.registry(), token)?;
        log_at!(Level::Debug, "{}: connecting", conn.describe());
        self.socks.insert(token, Sock::Stream { conn, ua: ua_id });
        self.handshakes.push(Reverse((deadline, token)));
        if let Some(ua) = self.uas.get_mut(&ua_id) {
            ua.streams.insert((transport, target), token);
        }
        Ok(token)
    }

    fn alloc_token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn close_socket(&mut self, token: Token) {
        match self.socks.remove(&token) {
            Some(Sock::Udp { mut sock, .. }) => {
                let _ = self.poll.registry().deregister(&mut sock);
            }
            Some(Sock::Stream { mut conn, .. }) => {
                // Dropping the socket removes it from the poller.
                conn.close();
            }
            None => {}
        }
    }

    /// Sends what the core queued, delivers its events, updates the snapshot and the timer.
    fn flush(&mut self, id: RegId, now: Instant) {
        let mut fired: Vec<Event> = Vec::new();
        let mut lost_connection = None;
        loop {
            let mut progressed = false;
            while self.regs.get(&id).is_some_and(|r| r.core.wants_transmit()) {
                progressed = true;
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
                        r.core.transport_error(now, &e.to_string(), false);
                    }
                }
            }
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            while let Some(e) = reg.core.poll_event() {
                progressed = true;
                fired.push(e);
            }
            if reg.core.take_timed_out() && reg.core.settings().transport.reliable() {
                // A stream that swallowed a request is not trusted again (pjsip #5033).
                let (ua, key) = (reg.ua, (reg.core.settings().transport, reg.target));
                if let Some(t) = self.uas.get(&ua).and_then(|u| u.streams.get(&key)).copied() {
                    log_at!(
                        Level::Info,
                        "{}: closing {} after a request timed out",
                        key.0.as_str(),
                        key.1
                    );
                    self.drop_stream(ua, key, t);
                    lost_connection = Some((ua, key));
                }
            }
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            if !reg.core.is_waiting() {
                if let Some(all) = reg.deferred_unregister.take() {
                    let _ = reg.core.unregister(now, all);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        self.publish(id, fired);
        let failed: Vec<(UaId, FlowKey, RegId)> = {
            let (mine, rest) = std::mem::take(&mut self.failed_streams)
                .into_iter()
                .partition(|(_, _, sender)| *sender == id);
            self.failed_streams = rest;
            mine
        };
        for (ua, key, sender) in failed {
            self.fail_stream_users(
                ua,
                key,
                now,
                "send failed on the connection",
                true,
                Some(sender),
            );
        }
        if let Some((ua, key)) = lost_connection {
            // The others on that connection learn it too (after this one's events).
            self.fail_stream_users(
                ua,
                key,
                now,
                "connection closed after a timeout",
                true,
                Some(id),
            );
        }
    }

    fn publish(&mut self, id: RegId, fired: Vec<Event>) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        {
            let mut s = reg.shared.snap();
            s.state = reg.core.state();
            s.contacts = reg.core.contacts().to_vec();
            s.retry_after = reg.core.retry_after();
            s.last_response = reg.core.last_response().cloned();
            s.retry_at = reg.core.retry_at();
            s.failure_count = reg.core.failure_count();
            s.waiting = reg.core.is_waiting();
            s.retransmissions = reg.core.retransmissions();
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
        if self.timers.len() > 2 * self.regs.len() + 1024 {
            self.compact_timers();
        }
        let Some(reg) = self.regs.get(&id) else {
            return;
        };
        let terminated = reg.core.state() == State::Terminated;
        let ua_id = reg.ua;
        for e in &fired {
            log_event(id, e);
        }
        shared.deliver(&fired);
        if terminated {
            let remove = self.regs.get(&id).is_some_and(|r| r.freed)
                || self.uas.get(&ua_id).is_some_and(|u| u.freeing.is_some());
            if remove {
                self.remove_reg(id);
                self.check_ua_done(ua_id);
            }
        }
    }

    /// Drops superseded timer entries (each reschedule leaves one behind).
    fn compact_timers(&mut self) {
        self.timers = self
            .regs
            .iter()
            .filter_map(|(id, r)| r.timer_at.map(|t| Reverse((t, *id))))
            .collect();
    }

    fn remove_reg(&mut self, id: RegId) {
        if let Some(r) = self.regs.remove(&id) {
            self.keys.remove(r.core.key());
            if let Some(ua) = self.uas.get_mut(&r.ua) {
                ua.regs.remove(&id);
            }
        }
    }

    fn transmit(&mut self, id: RegId, t: &Transmit) -> io::Result<()> {
        let reg = self
            .regs
            .get(&id)
            .ok_or_else(|| io::Error::other("registerer gone"))?;
        let (ua_id, target, transport) = (reg.ua, reg.target, reg.core.settings().transport);
        if log_enabled_debug() {
            let first = t.bytes.split(|b| *b == b'\r').next().unwrap_or(&[]);
            log_at!(
                Level::Debug,
                "registerer {id}: {} {} -> {target}",
                if t.retransmission {
                    "retransmit"
                } else {
                    "send"
                },
                String::from_utf8_lossy(first)
            );
        }
        let stats = self.uas.get(&ua_id).map(|u| u.stats.clone());
        let result = match transport {
            Transport::Udp => {
                let token = self.udp_socket(ua_id, target)?;
                match self.socks.get(&token) {
                    Some(Sock::Udp { sock, .. }) => match sock.send_to(&t.bytes, target) {
                        Ok(_) => Ok(()),
                        // A full socket buffer loses the datagram; Timer E resends it.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                        Err(e) => Err(e),
                    },
                    _ => Err(io::Error::other("no socket")),
                }
            }
            _ => {
                let token = self.stream_conn(id)?;
                let r = match self.socks.get_mut(&token) {
                    Some(Sock::Stream { conn, .. }) => conn.send(&t.bytes),
                    _ => Err(io::Error::other("no connection")),
                };
                if r.is_err() {
                    self.drop_stream(ua_id, (transport, target), token);
                    self.failed_streams.push((ua_id, (transport, target), id));
                }
                r
            }
        };
        if let (Ok(()), Some(s)) = (&result, stats) {
            UaStats::bump(&s.sent);
        }
        result
    }

    fn drop_stream(&mut self, ua_id: UaId, key: FlowKey, token: Token) {
        if let Some(ua) = self.uas.get_mut(&ua_id) {
            if ua.streams.get(&key) == Some(&token) {
                ua.streams.remove(&key);
            }
        }
        self.close_socket(token);
    }

    // ----- sockets -------------------------------------------------------

    fn on_socket(&mut self, token: Token, readable: bool, writable: bool, error: bool) {
        let now = Instant::now();
        match self.socks.get(&token) {
            Some(Sock::Udp { .. }) => self.on_udp(token, now, error),
            Some(Sock::Stream { .. }) => self.on_stream(token, now, readable, writable),
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
        let ua_id;
        {
            let Some(Sock::Udp { sock, ua }) = self.socks.get(&token) else {
                return;
            };
            ua_id = *ua;
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
                self.count_drop(ua_id, "oversized datagram");
                continue;
            }
            self.on_message(ua_id, &bytes, from, Transport::Udp, now);
        }
        for (dest, err) in errors {
            self.on_udp_error(ua_id, dest, err, now);
        }
    }

    /// An ICMP error for a datagram sent to `dest`: fail the requests in flight to it.
    fn on_udp_error(
        &mut self,
        ua_id: UaId,
        dest: Option<SocketAddr>,
        err: io::Error,
        now: Instant,
    ) {
        let Some(ua) = self.uas.get(&ua_id) else {
            return;
        };
        UaStats::bump(&ua.stats.transport_errors);
        let victims: Vec<RegId> = ua
            .regs
            .iter()
            .copied()
            .filter(|rid| {
                self.regs
                    .get(rid)
                    .is_some_and(|r| r.core.is_waiting() && dest.is_none_or(|d| d == r.target))
            })
            .collect();
        log_at!(
            Level::Info,
            "udp: {err} from {dest:?}; failing {} request(s)",
            victims.len()
        );
        let msg = format!("{err}");
        for rid in victims {
            self.drive(rid, now, |core, now| core.transport_error(now, &msg, false));
        }
    }

    fn on_stream(&mut self, token: Token, now: Instant, readable: bool, writable: bool) {
        let Some(Sock::Stream { conn, ua }) = self.socks.get_mut(&token) else {
            return;
        };
        let (ua_id, key) = (*ua, (conn.transport, conn.remote));
        let was_up = conn.is_up();
        if writable {
            if let Err(e) = conn.on_writable() {
                let why = if was_up {
                    format!("write failed: {e}")
                } else {
                    format!("connect to {} failed: {e}", key.1)
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
        for m in &out.messages {
            if m.len() > stream::MAX_MESSAGE {
                self.count_drop(ua_id, "oversized stream message");
                continue;
            }
            self.on_message(ua_id, m, key.1, key.0, now);
        }
        if out.invalid {
            self.count_drop(ua_id, "unframeable stream data");
        }
        if let Some(why) = out.closed {
            // Closed before it came up: the connect or a handshake failed.
            let why = if up || was_up {
                why
            } else {
                format!("connect to {} failed: {why}", key.1)
            };
            self.stream_failed(token, &why, up || was_up);
        }
    }

    /// A stream connection failed or closed: log why, drop it, tell its users.
    /// `established`: it had come up (its users re-register at once).
    fn stream_failed(&mut self, token: Token, why: &str, established: bool) {
        let Some(Sock::Stream { conn, ua }) = self.socks.get(&token) else {
            return;
        };
        let (ua_id, key) = (*ua, (conn.transport, conn.remote));
        log_at!(Level::Info, "{}: {why}", conn.describe());
        self.drop_stream(ua_id, key, token);
        self.fail_stream_users(ua_id, key, Instant::now(), why, established, None);
    }

    /// Fails the connections whose handshakes ran past their deadline.
    fn run_handshake_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, token))) = self.handshakes.peek().copied() {
            if t > now {
                break;
            }
            self.handshakes.pop();
            let late = match self.socks.get(&token) {
                Some(Sock::Stream { conn, .. }) if conn.deadline().is_some_and(|d| d <= now) => {
                    Some(conn.waiting_for())
                }
                _ => None,
            };
            if let Some(why) = late {
                self.stream_failed(token, why, false);
            }
        }
    }

    /// The connection `key` of user agent `ua_id` is gone: tell every registerer that used it.
    fn fail_stream_users(
        &mut self,
        ua_id: UaId,
        key: FlowKey,
        now: Instant,
        why: &str,
        established: bool,
        except: Option<RegId>,
    ) {
        let Some(ua) = self.uas.get(&ua_id) else {
            return;
        };
        UaStats::bump(&ua.stats.transport_errors);
        let users: Vec<RegId> = ua
            .regs
            .iter()
            .copied()
            .filter(|rid| Some(*rid) != except)
            .filter(|rid| {
                self.regs
                    .get(rid)
                    .is_some_and(|r| (r.core.settings().transport, r.target) == key)
            })
            .collect();
        for rid in users {
            if established {
                self.drive(rid, now, |core, now| core.connection_lost(now));
            } else {
                let msg = why.to_owned();
                self.drive(rid, now, |core, now| core.transport_error(now, &msg, false));
            }
        }
    }

    fn count_drop(&self, ua_id: UaId, why: &str) {
        if let Some(ua) = self.uas.get(&ua_id) {
            UaStats::bump(&ua.stats.dropped);
        }
        log_at!(Level::Debug, "dropped a message: {why}");
    }

    /// One received message: route a response to its registerer, drop anything else.
    fn on_message(
        &mut self,
        ua_id: UaId,
        bytes: &[u8],
        from: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        if let Some(ua) = self.uas.get(&ua_id) {
            UaStats::bump(&ua.stats.received);
        }
        match classify(bytes) {
            Kind::Response => {}
            Kind::KeepAlive => return,
            Kind::Request => {
                return self.count_drop(ua_id, "request (only responses are expected)")
            }
            Kind::Junk => return self.count_drop(ua_id, "not SIP"),
        }
        let resp = match Response::parse(bytes) {
            Ok(r) => r,
            Err(e) => return self.count_drop(ua_id, &format!("unparsable response: {e}")),
        };
        let rid = resp.top_via().and_then(|v| {
            v.branch()
                .and_then(branch_key)
                .and_then(|k| self.keys.get(k).copied())
        });
        let Some(rid) = rid else {
            return self.count_drop(ua_id, "response for an unknown branch");
        };
        let Some(reg) = self.regs.get_mut(&rid) else {
            return;
        };
        if reg.ua != ua_id {
            return self.count_drop(ua_id, "response on another user agent's socket");
        }
        if transport == Transport::Udp && from != reg.target {
            return self.count_drop(
                ua_id,
                "response from an address the request was not sent to",
            );
        }
        log_at!(
            Level::Debug,
            "registerer {rid}: received {} {}",
            resp.status,
            resp.reason
        );
        match reg.core.handle_response(now, &resp) {
            Ok(()) => self.flush(rid, now),
            Err(why) => self.count_drop(ua_id, &format!("{why:?}")),
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
        while let Some(Reverse((t, token))) = self.handshakes.peek().copied() {
            let pending = match self.socks.get(&token) {
                Some(Sock::Stream { conn, .. }) => conn.deadline() == Some(t),
                _ => false,
            };
            if pending {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
                break;
            }
            self.handshakes.pop();
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

fn log_enabled_debug() -> bool {
    super::log::enabled(Level::Debug)
}

fn log_event(id: RegId, e: &Event) {
    match e {
        Event::StateChanged(s) => log_at!(Level::Info, "registerer {id}: state {s:?}"),
        Event::Response { status, reason } => {
            log_at!(Level::Info, "registerer {id}: response {status} {reason}")
        }
        Event::RetryScheduled { delay, failures } => log_at!(
            Level::Info,
            "registerer {id}: retry in {:.3} s (failure {failures})",
            delay.as_secs_f64()
        ),
        Event::RetryStarted { failures } => log_at!(
            Level::Info,
            "registerer {id}: retrying (failure {failures})"
        ),
        Event::Note(n) => log_at!(Level::Info, "registerer {id}: {n}"),
    }
}
