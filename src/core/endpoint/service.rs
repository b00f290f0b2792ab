//! Servicing one registerer after an input: its admission to the pacing
//! window, the flow and local address its message needs, its sends and
//! keep-alives, what a timed-out request or a failed flow means for the
//! flow, its deferred unregister, and publishing its view and events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::flows::FlowKey;
use super::pacing::Outcome;
use super::{
    view_of, Action, ConnectSpec, Endpoint, FlowError, FlowId, RegId, ShownFlow, TlsSpec, Transmit,
    TransmitKind, WsSpec,
};
use crate::core::compact::MaybeInstant;
use crate::core::failure::{Failure, FailureKind};
use crate::core::options::Transport;
use crate::core::registerer::{Event, Registerer, State};
use crate::core::uri::{Decimal, Host, V4Text};
use crate::log::{Level, Who};
use crate::log_at;

/// Longest wait for a connection's TCP, TLS and WebSocket handshakes (shorter with a small T1).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a registerer's next message can leave from.
enum Local {
    /// From this address.
    Ready(SocketAddr),
    /// Not yet: its flow is opening, or the route is being looked up.
    Wait,
    /// Never: why.
    Failed(Failure),
}

impl Endpoint {
    /// Feeds one input to registerer `id`'s core, then services it.
    pub(super) fn drive(
        &mut self,
        id: RegId,
        now: Instant,
        f: impl FnOnce(&mut Registerer, Instant),
    ) {
        self.lend_events(id);
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        f(&mut reg.core, now);
        self.service(id, now);
    }

    /// Moves everything the core queued: admission, sends, keep-alives,
    /// events; then publishes the view and tells the users of flows that
    /// closed in this step.
    fn service(&mut self, id: RegId, now: Instant) {
        let mut fired: Vec<Event> = Vec::new();
        let mut lost: Option<Vec<RegId>> = None;
        // The target a timed-out request went to (before a failover moves on).
        let sent_to = self.regs.get(&id).and_then(|r| r.core.destination());
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
                self.follow_destination(id);
                match self.local_for(id, now) {
                    Local::Ready(local) => {
                        progressed = true;
                        self.send(id, local);
                    }
                    Local::Wait => break,
                    Local::Failed(why) => {
                        progressed = true;
                        if let Some(u) = self.regs.get(&id).and_then(|r| self.uas.get(&r.ua)) {
                            super::UaStats::bump(&u.stats.transport_errors);
                        }
                        if let Some(r) = self.regs.get_mut(&id) {
                            r.core.transport_error(now, why, false);
                        }
                    }
                }
            }
            self.queue_pings(id);
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            progressed |= reg.core.drain_events(&mut fired);
            if reg.core.take_timed_out() && reg.core.settings().transport.reliable() {
                // A stream that swallowed a request is not trusted again (pjsip #5033).
                // After a failover the flow in use is the new target's: keep it.
                let moved = sent_to != reg.core.destination();
                if let Some(f) = reg.flow.take_if(|_| !moved) {
                    if let Some(flow) = self.flows.get(f) {
                        log_at!(
                            Level::Info,
                            "{}: closing after a request timed out",
                            flow.describe()
                        );
                    }
                    self.detach_from(id, f);
                    lost = Some(self.close_flow(f));
                }
            }
            let Some(reg) = self.regs.get_mut(&id) else {
                return;
            };
            if !reg.core.is_waiting() {
                if let Some((all, headers)) = reg.deferred_unregister.take().map(|d| *d) {
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
        self.reclaim_events(id);
        // Usually nothing waits: no partition (its moves show in profiles).
        if !self.later.is_empty() {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
                .into_iter()
                .partition(|(_, _, sender)| *sender == id);
            self.later = rest;
            for (users, error, _) in mine {
                self.fail_users(users, now, &error, Some(id));
            }
        }
        if let Some(users) = lost {
            // The others on that connection learn it too (after this one's events).
            let error = FlowError::transport("connection closed after a request timed out", true);
            self.fail_users(users, now, &error, Some(id));
        }
    }

    /// Writes the core's next message for `local` and queues it.
    fn send(&mut self, id: RegId, local: SocketAddr) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        let (Some(flow), Some(dest)) = (reg.flow, reg.core.destination()) else {
            return;
        };
        reg.core.set_local_addr(local);
        let mut spare = self.spare_bytes.pop().unwrap_or_default();
        let t = reg.core.poll_transmit_reusing(&mut spare);
        // Not taken (nothing to send, or a stream's request handed over
        // whole): kept for the next copy.
        if spare.capacity() > 0 {
            self.spare_bytes.push(spare);
        }
        let Some(t) = t else {
            return;
        };
        if crate::log::enabled(Level::Debug) {
            let first = t.bytes.split(|b| *b == b'\r').next().unwrap_or(&[]);
            log_at!(
                Level::Debug,
                "{}: {} {} -> {dest}",
                Who {
                    aor: reg.core.settings().aor_text(),
                    id
                },
                if t.retransmission {
                    "retransmit"
                } else {
                    "send"
                },
                String::from_utf8_lossy(first)
            );
        }
        if t.retransmission {
            self.pacing.retransmitted(dest);
        }
        let ua = reg.ua;
        let transport = reg.core.settings().transport;
        self.flows.note_peer(flow, dest);
        self.push_transmit(
            Transmit {
                flow,
                dest,
                ua,
                transport,
                local: Some(local),
                kind: if t.retransmission {
                    TransmitKind::Retransmission
                } else {
                    TransmitKind::Request
                },
                bytes: t.bytes,
            },
            false,
        );
    }

    /// Queues the keep-alives the core owes on the registerer's existing
    /// flow (a ping never opens a flow).
    fn queue_pings(&mut self, id: RegId) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        // Usually none is owed: then the flow is not looked at (every step
        // of every registerer comes through here).
        let Some(first) = reg.core.poll_ping() else {
            return;
        };
        let (Some(flow), Some(dest)) = (reg.flow, reg.core.destination()) else {
            while reg.core.poll_ping().is_some() {}
            return;
        };
        if !self.flows.get(flow).is_some_and(|f| f.up) {
            while reg.core.poll_ping().is_some() {}
            return;
        }
        let local = self.flows.local_towards(flow, dest);
        let transport = reg.core.settings().transport;
        let mut next = Some(first);
        while let Some(p) = next.take().or_else(|| reg.core.poll_ping()) {
            log_at!(
                Level::Debug,
                "{}: keep-alive ({} bytes) -> {dest}",
                Who {
                    aor: reg.core.settings().aor_text(),
                    id
                },
                p.len()
            );
            let t = Transmit {
                flow,
                dest,
                ua: reg.ua,
                transport,
                local,
                kind: TransmitKind::KeepAlive,
                bytes: p,
            };
            // (`push_transmit` by hand: `reg` still borrows the registerers.)
            self.urgent_transmits += 1;
            self.transmits.push_back((t, false));
        }
    }

    /// The core declared its flow failed: close it so the REGISTER it
    /// queued goes out on a new one; the others on the flow (the same NAT
    /// binding) re-register too.
    fn replace_flow(&mut self, id: RegId, now: Instant) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        let reliable = reg.core.settings().transport.reliable();
        let Some(flow) = reg.flow else {
            return;
        };
        if let Some(f) = self.flows.get(flow) {
            log_at!(
                Level::Info,
                "{}: flow {} failed; opening a new one",
                Who {
                    aor: reg.core.settings().aor_text(),
                    id
                },
                f.describe()
            );
        }
        self.detach_from(id, flow);
        let others = self.close_flow(flow);
        if reliable {
            // Told after this registerer's step.
            self.later
                .push((others, FlowError::transport("the flow failed", true), id));
            return;
        }
        for rid in others {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.flow = None;
            }
            self.drive(rid, now, |core, now| core.network_changed(now));
        }
    }

    /// Gives registerer `id` a slot in its target's window when it wants to
    /// start a transaction, and frees the slot when the transaction is over.
    /// True if a transaction was started (there is something to send).
    fn pace(&mut self, id: RegId, now: Instant) -> bool {
        let Some(reg) = self.regs.get_mut(&id) else {
            return false;
        };
        let key = reg
            .core
            .destination()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut started = false;
        if self.pacing.holds(id) && !reg.core.in_transaction() {
            // A 408 or 503 (real or ours) says the target is overloaded or gone.
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
            && self.pacing.request(key, id)
        {
            // (A request waiting for RFC 3263 answers asks once it has a target.)
            reg.core.admit(now);
            started = true;
        }
        if reg.core.wants_admission() || reg.core.in_transaction() || started {
            if let Some(ua) = self.uas.get(&reg.ua) {
                ua.stats.follow_window(self.pacing.counters(key));
            }
        }
        started
    }

    /// Where registerer `id`'s message leaves from: its flow (opened if
    /// needed) and, for an unbound UDP socket, the route to its target.
    fn local_for(&mut self, id: RegId, now: Instant) -> Local {
        let flow = match self.flow_for(id, now) {
            Ok(f) => f,
            Err(why) => return Local::Failed(Failure::new(FailureKind::Transport, why)),
        };
        let Some(reg) = self.regs.get(&id) else {
            return Local::Wait;
        };
        let Some(dest) = reg.core.destination() else {
            return Local::Wait;
        };
        let Some(f) = self.flows.get_mut(flow) else {
            return Local::Wait;
        };
        let Some(bound) = f.local else {
            if !f.waiting.contains(&id) {
                f.waiting.push(id);
            }
            return Local::Wait;
        };
        if f.key.transport != Transport::Udp || !bound.ip().is_unspecified() {
            return Local::Ready(bound);
        }
        match self.flows.route(dest) {
            Some(ip) => Local::Ready(SocketAddr::new(ip, bound.port())),
            None => {
                if self.flows.wait_for_route(dest, id) {
                    self.actions.push_back(Action::FindRoute { target: dest });
                }
                Local::Wait
            }
        }
    }

    /// The flow registerer `id` uses: the one it has, else a shared one
    /// that matches its settings, else a new one.
    fn flow_for(&mut self, id: RegId, now: Instant) -> Result<FlowId, String> {
        let reg = self.regs.get(&id).ok_or("registerer gone")?;
        if let Some(f) = reg.flow.filter(|f| self.flows.contains(*f)) {
            return Ok(f);
        }
        let mut key = self.flow_key(id)?;
        let reg = self.regs.get(&id).ok_or("registerer gone")?;
        let (aor, ua) = (reg.core.settings().aor_text().clone(), reg.ua);
        let flow = loop {
            match self.flows.find(&key) {
                // Another user agent of this AOR is there: the next flow.
                Some(f) if self.flows.taken(f, &aor, ua) => key.slot += 1,
                Some(f) => break f,
                None => break self.open(id, key, now)?,
            }
        };
        let card = self.card(ua).ok_or("user agent gone")?;
        let reg = self.regs.get_mut(&id).ok_or("registerer gone")?;
        let wanted = reg
            .core
            .settings()
            .ua
            .default_contact_user()
            .unwrap_or_default();
        let user = self.flows.attach(flow, id, &aor, ua, wanted, &card);
        // Another user agent on this flow has the user part: ours gets a suffix.
        let own = (user != wanted).then(|| Box::from(&*user));
        reg.core.set_contact_user(own);
        reg.flow = Some(flow);
        Ok(flow)
    }

    /// What registerer `id`'s flow must match, from its settings and its
    /// user agent's current ones.
    fn flow_key(&self, id: RegId) -> Result<FlowKey, String> {
        let reg = self.regs.get(&id).ok_or("registerer gone")?;
        let ua = self.uas.get(&reg.ua).ok_or("user agent gone")?;
        let dest = reg.core.destination().ok_or("no target yet")?;
        let settings = reg.core.settings();
        let transport = settings.transport;
        let mut session = String::new();
        if transport.secure() {
            let tls = &ua.config.extras().tls;
            let sni = tls
                .server_name
                .clone()
                .unwrap_or_else(|| host_text(&settings.target_host));
            session = format!("ca={:?};verify={};sni={sni}", tls.ca_file, tls.verify);
        }
        if transport.websocket() {
            session.push_str(&format!(
                ";host={};path={};origin={}",
                ws_host(&settings.target_host, dest),
                ua.config.extras().ws_path,
                ws_origin(
                    ua.config.extras().ws_origin.as_deref(),
                    transport,
                    &settings.target_host
                )
            ));
        }
        if let Some(l) = ua.config.extras().local_address {
            if l.is_ipv4() != dest.is_ipv4() {
                return Err(format!(
                    "local address {l} and target {dest} are of different families"
                ));
            }
        }
        Ok(FlowKey {
            transport,
            remote: transport.reliable().then_some(dest),
            v6: dest.is_ipv6(),
            local: ua.config.extras().local_address,
            session,
            private: ua.config.private_socket.then_some(reg.ua),
            slot: 0,
        })
    }

    /// Adds the flow for `key` and asks the shell to open it on behalf of
    /// registerer `id` (a UDP bind, or a connect with its handshakes).
    fn open(&mut self, id: RegId, key: FlowKey, now: Instant) -> Result<FlowId, String> {
        let reg = self.regs.get(&id).ok_or("registerer gone")?;
        let ua_id = reg.ua;
        let dest = reg.core.destination().ok_or("no target yet")?;
        let host = reg.core.settings().target_host.clone();
        let ua = self.uas.get_mut(&ua_id).ok_or("user agent gone")?;
        let transport = key.transport;
        let local = key.local;
        let v6 = key.v6;
        let flow = self.flows.insert(key, ua_id);
        if transport == Transport::Udp {
            self.actions.push_back(Action::OpenUdp { flow, local, v6 });
            return Ok(flow);
        }
        let tls = transport.secure().then(|| {
            if !ua.config.extras().tls.verify && !ua.warned_insecure {
                ua.warned_insecure = true;
                log_at!(
                    Level::Warn,
                    "TLS certificate and host name checks are OFF for {} (tls_verify=false): lab use only",
                    ua.config.aor_text()
                );
            }
            TlsSpec {
                settings: ua.config.extras().tls.clone(),
                host: host.clone(),
            }
        });
        let ws = transport.websocket().then(|| WsSpec {
            host: ws_host(&host, dest),
            path: ua.config.extras().ws_path.to_string(),
            origin: ws_origin(ua.config.extras().ws_origin.as_deref(), transport, &host),
        });
        let spec = ConnectSpec {
            transport,
            remote: dest,
            local,
            tls,
            ws,
        };
        self.connects.prune(now);
        match self.connects.take(transport, dest, now) {
            None => self.start_connect(flow, spec, now),
            Some(at) => {
                log_at!(
                    Level::Info,
                    "{}:{dest}: too many new connections to this target; this one waits {:.2} s",
                    transport.as_str(),
                    at.saturating_duration_since(now).as_secs_f64()
                );
                if let Some(f) = self.flows.get_mut(flow) {
                    f.pending_connect = Some((at, spec));
                }
                self.timers.push_flow(at, flow);
            }
        }
        Ok(flow)
    }

    /// Asks the shell to connect `flow` now; its handshakes must finish by
    /// a deadline of their own.
    pub(super) fn start_connect(&mut self, flow: FlowId, spec: ConnectSpec, now: Instant) {
        let Some(f) = self.flows.get_mut(flow) else {
            return;
        };
        let t1 = self
            .uas
            .get(&f.owner)
            .map_or(Duration::from_millis(500), |u| u.config.extras().timers.t1);
        let deadline = now + (t1 * 64).clamp(Duration::from_secs(1), HANDSHAKE_TIMEOUT);
        f.handshake_deadline = Some(deadline);
        self.timers.push_flow(deadline, flow);
        self.actions.push_back(Action::Connect { flow, spec });
    }

    /// Registerer `id` stops using flow `flow` (the last user closes it).
    fn detach_from(&mut self, id: RegId, flow: FlowId) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        if reg.flow == Some(flow) {
            reg.flow = None;
        }
        let aor = reg.core.settings().aor_text().clone();
        let user = reg.core.contact_user().unwrap_or_default().to_owned();
        if self.flows.detach(flow, id, &aor, &user) {
            self.close_flow(flow);
        }
    }

    /// Registerer `id` stops using its flow, if it has one.
    pub(super) fn detach(&mut self, id: RegId) {
        if let Some(f) = self.regs.get(&id).and_then(|r| r.flow) {
            self.detach_from(id, f);
        }
    }

    /// Points the registerer at its core's current target: a flow that no
    /// longer fits (another stream peer, family or transport) is left for
    /// one that does.
    fn follow_destination(&mut self, id: RegId) {
        let Some(r) = self.regs.get(&id) else {
            return;
        };
        let Some(flow) = r.flow else {
            return;
        };
        let Some(have) = self.flows.get(flow).map(|f| f.key.clone()) else {
            return;
        };
        let fits = match self.flow_key(id) {
            Ok(want) => {
                FlowKey {
                    slot: have.slot,
                    ..want
                } == have
            }
            Err(_) => false,
        };
        if !fits {
            self.detach_from(id, flow);
        }
    }

    /// Hands the core's lookup (if it wants one) to the shell.
    fn request_resolution(&mut self, id: RegId) {
        if let Some(query) = self
            .regs
            .get_mut(&id)
            .and_then(|r| r.core.poll_resolution())
        {
            self.actions.push_back(Action::Resolve { reg: id, query });
        }
    }

    /// Publishes registerer `id`'s view and events, reschedules its timer,
    /// and forgets it once it is Terminated and nobody holds it.
    fn publish(&mut self, id: RegId, fired: Vec<Event>) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        let notable = fired
            .iter()
            .any(|e| !matches!(e, Event::Note(_) | Event::Warning(_)));
        let mut view = view_of(&reg.core, notable);
        let now_flow = reg.flow.and_then(|f| {
            let local = self.flows.get(f)?.local?;
            Some((local, reg.core.destination()?))
        });
        // A terminated registerer leaves its flow below.
        view.flow_id = reg.flow.filter(|_| reg.core.state() != State::Terminated);
        let transport = reg.core.settings().transport.as_str();
        let shows = |s: &ShownFlow, (local, remote): (SocketAddr, SocketAddr)| {
            s.transport == transport && s.local == local && s.remote == remote
        };
        if let Some(now_flow) =
            now_flow.filter(|f| !reg.shown_flow.as_deref().is_some_and(|s| shows(s, *f)))
        {
            let shown = match self.last_shown_flow.as_ref().filter(|s| shows(s, now_flow)) {
                Some(s) => s.clone(),
                None => {
                    let (local, remote) = now_flow;
                    let s = Arc::new(ShownFlow {
                        transport,
                        local,
                        remote,
                        text: flow_text(transport, local, remote).into_boxed_str(),
                    });
                    self.last_shown_flow = Some(s.clone());
                    s
                }
            };
            view.flow = Some(shown.clone());
            reg.shown_flow = Some(shown);
        }
        let deadline = reg.core.poll_timeout();
        if deadline != reg.timer_at.get() {
            reg.timer_at = MaybeInstant::new(deadline);
            if let Some(t) = deadline {
                self.timers.push_reg(t, id);
            }
        }
        let terminated = reg.core.state() == State::Terminated;
        let ua_id = reg.ua;
        let freed = self.freed_regs.contains(&id);
        for e in &fired {
            log_event(&reg.core, id, e);
        }
        let limit = self.regs.len() + self.regs.len() / 2 + 64;
        if self.timers.regs_over(limit) {
            let live = self
                .regs
                .iter()
                .filter_map(|(id, r)| r.timer_at.get().map(|t| (t, id)));
            self.timers.rebuild_regs(live, limit + 1);
        }
        if terminated {
            // A terminated registerer sends nothing more: its flow may close.
            self.detach(id);
        }
        self.actions.push_back(Action::Publish {
            reg: id,
            view,
            events: fired,
        });
        if terminated && (freed || self.uas.get(&ua_id).is_some_and(|u| u.freeing)) {
            self.remove_reg(id);
            self.check_ua_done(ua_id);
        }
    }

    fn remove_reg(&mut self, id: RegId) {
        self.freed_regs.remove(&id);
        self.detach(id);
        self.pacing.release(id, Outcome::Abandoned);
        if let Some(r) = self.regs.remove(&id) {
            if let Ok(k) =
                <[u8; crate::core::registerer::KEY_LEN]>::try_from(r.core.key().as_bytes())
            {
                self.keys.remove(&k);
            }
            if let Some(ua) = self.uas.get_mut(&r.ua) {
                ua.regs.retain(|r| *r != id);
            }
        }
        self.actions.push_back(Action::Removed { reg: id });
    }
}

/// One log line per event, naming the AOR and the registerer.
fn log_event(core: &Registerer, id: RegId, e: &Event) {
    let who = Who {
        aor: core.settings().aor_text(),
        id,
    };
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

/// The text of a host as written in a URI (without brackets for IPv6).
fn host_text(host: &Host) -> String {
    match host {
        Host::Domain(d) => d.clone(),
        Host::V4(a) => a.to_string(),
        Host::V6(a) => a.to_string(),
    }
}

/// The `Host` of a WebSocket upgrade: the target's name if it has one.
fn ws_host(host: &Host, target: SocketAddr) -> String {
    match host {
        Host::Domain(d) => format!("{d}:{}", target.port()),
        _ => target.to_string(),
    }
}

/// The `Origin` of a WebSocket upgrade: the configured one, else `http://`
/// (ws) or `https://` (wss) and the registrar's (or proxy's) host.
fn ws_origin(configured: Option<&str>, transport: Transport, host: &Host) -> String {
    match configured {
        Some(o) => o.to_owned(),
        None => {
            let scheme = if transport.secure() { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    }
}

/// `transport:local -> remote`, as `format!` would write it, without the
/// formatting machinery for the usual IPv4 addresses (once per registerer).
fn flow_text(transport: &str, local: SocketAddr, remote: SocketAddr) -> String {
    let mut out = String::with_capacity(transport.len() + 52);
    out.push_str(transport);
    out.push(':');
    push_socket_addr(&mut out, local);
    out.push_str(" -> ");
    push_socket_addr(&mut out, remote);
    out
}

/// Appends `addr` as its `Display` writes it.
fn push_socket_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            out.push_str(V4Text::new(*v4.ip()).as_str());
            out.push(':');
            out.push_str(Decimal::new(u64::from(v4.port())).as_str());
        }
        SocketAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_text_is_what_format_writes() {
        let addrs: Vec<SocketAddr> = [
            "127.0.0.1:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.20.30.40:9",
            "[::1]:5061",
            "[2001:db8::1%3]:40000",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for &local in &addrs {
            for &remote in &addrs {
                assert_eq!(
                    flow_text("udp", local, remote),
                    format!("udp:{local} -> {remote}")
                );
            }
        }
    }
}
