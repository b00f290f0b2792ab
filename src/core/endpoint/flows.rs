//! The flow table: every socket and connection of the process as the
//! endpoint sees it, by [`FlowId`]. User agents do not own flows; they use
//! the endpoint's, shared by everyone whose settings match (transport,
//! address family and local address; for a stream also the target and the
//! TLS / WebSocket session settings). A user agent that asks for a private
//! socket gets its own. Responses are routed to registerers by the Via
//! branch, so sharing needs nothing else.
//!
//! One exception keeps user agents apart: two user agents with the same AOR
//! never share a flow (they would be one contact, so one binding, at the
//! registrar); the second one gets the next flow of the same kind.
//!
//! A flow lives while a registerer uses it and is closed when the last one
//! leaves, so disposing the last registerer closes its connection.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::{ConnectSpec, FlowId, HandshakeStep, RegId, UaId};
use crate::core::idhash::IdMap;
use crate::core::options::Transport;

/// What makes two registerers share a flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Transport carried.
    pub transport: Transport,
    /// The target of a stream; `None` for UDP (one socket serves every target).
    pub remote: Option<SocketAddr>,
    /// Address family.
    pub v6: bool,
    /// Configured local address, if any.
    pub local: Option<SocketAddr>,
    /// TLS trust settings, SNI name, WebSocket host and path (empty for udp/tcp).
    pub session: String,
    /// The user agent of a private socket.
    pub private: Option<UaId>,
    /// Which of several flows of the same kind (see the module docs).
    pub slot: u32,
}

/// One flow and who uses it.
#[derive(Debug)]
pub struct Flow {
    /// Its sharing key.
    pub key: FlowKey,
    /// The user agent that opened it: counters of messages that match no
    /// registerer go there.
    pub owner: UaId,
    /// Registerers that send on it.
    pub users: HashSet<RegId>,
    /// AORs on it: the user agent using each, and how many of its registerers.
    aors: HashMap<Arc<str>, (UaId, usize)>,
    /// Our address: a UDP socket's bound address, a stream's local end.
    /// `None` until the shell opened it.
    pub local: Option<SocketAddr>,
    /// A stream finished its handshakes (always true for UDP once open).
    pub up: bool,
    /// When a stream's handshakes must have finished.
    pub handshake_deadline: Option<Instant>,
    /// How far a stream's handshakes got.
    pub step: HandshakeStep,
    /// A connect waiting for its turn (the target's connection rate limit).
    pub pending_connect: Option<(Instant, ConnectSpec)>,
    /// Registerers with a message waiting for the flow to open.
    pub waiting: Vec<RegId>,
}

impl Flow {
    /// "proto:local -> remote" for log lines (the remote of UDP is per message).
    pub fn describe(&self) -> String {
        let local = self.local.map_or_else(|| "?".to_owned(), |l| l.to_string());
        match self.key.remote {
            Some(r) => format!("{}:{local} -> {r}", self.key.transport.as_str()),
            None => format!("{}:{local}", self.key.transport.as_str()),
        }
    }
}

/// Every flow, plus the local routes learnt for unbound UDP sockets.
#[derive(Debug, Default)]
pub struct Flows {
    flows: IdMap<FlowId, Flow>,
    by_key: HashMap<FlowKey, FlowId>,
    /// The local IP the kernel uses towards each target (for a socket bound
    /// to the unspecified address), as the shell found it.
    routes: HashMap<SocketAddr, IpAddr>,
    /// Registerers waiting for a route, by target.
    route_waiters: HashMap<SocketAddr, Vec<RegId>>,
    last_id: u64,
}

impl Flows {
    /// The flow `id`.
    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(&id)
    }

    /// The flow `id`, to change.
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut Flow> {
        self.flows.get_mut(&id)
    }

    /// Whether the flow exists.
    pub fn contains(&self, id: FlowId) -> bool {
        self.flows.contains_key(&id)
    }

    /// The open flow for `key`, if any.
    pub fn find(&self, key: &FlowKey) -> Option<FlowId> {
        self.by_key.get(key).copied()
    }

    /// Adds a flow for `key`, not open yet (the caller asks the shell to open it).
    pub fn insert(&mut self, key: FlowKey, owner: UaId) -> FlowId {
        // Ids are never reused, so a late event for a closed flow finds nothing.
        self.last_id += 1;
        let id = FlowId(self.last_id);
        self.by_key.insert(key.clone(), id);
        self.flows.insert(
            id,
            Flow {
                key,
                owner,
                users: HashSet::new(),
                aors: HashMap::new(),
                local: None,
                up: false,
                handshake_deadline: None,
                step: HandshakeStep::default(),
                pending_connect: None,
                waiting: Vec::new(),
            },
        );
        id
    }

    /// Whether another user agent with `aor` already uses flow `id`.
    pub fn taken(&self, id: FlowId, aor: &str, ua: UaId) -> bool {
        self.flows
            .get(&id)
            .and_then(|f| f.aors.get(aor))
            .is_some_and(|(u, _)| *u != ua)
    }

    /// Records that registerer `reg` of user agent `ua` (for `aor`) sends on `id`.
    pub fn attach(&mut self, id: FlowId, reg: RegId, aor: &Arc<str>, ua: UaId) {
        if let Some(f) = self.flows.get_mut(&id) {
            if f.users.insert(reg) {
                // The registerer's own text of its AOR, shared, not copied.
                f.aors.entry(aor.clone()).or_insert((ua, 0)).1 += 1;
            }
        }
    }

    /// Registerer `reg` (for `aor`) no longer uses `id`. True when that left
    /// the flow without users (the caller closes it).
    pub fn detach(&mut self, id: FlowId, reg: RegId, aor: &str) -> bool {
        self.flows.get_mut(&id).is_some_and(|f| {
            if f.users.remove(&reg) {
                if let Some(e) = f.aors.get_mut(aor) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        f.aors.remove(aor);
                    }
                }
            }
            f.waiting.retain(|r| *r != reg);
            f.users.is_empty()
        })
    }

    /// Removes a flow and returns it (its users are the caller's to tell).
    pub fn remove(&mut self, id: FlowId) -> Option<Flow> {
        let f = self.flows.remove(&id)?;
        if self.by_key.get(&f.key) == Some(&id) {
            self.by_key.remove(&f.key);
        }
        Some(f)
    }

    /// The address packets on `flow` to `dest` leave from, if known.
    pub fn local_towards(&self, flow: FlowId, dest: SocketAddr) -> Option<SocketAddr> {
        let f = self.flows.get(&flow)?;
        let bound = f.local?;
        if f.key.transport != Transport::Udp || !bound.ip().is_unspecified() {
            return Some(bound);
        }
        self.route(dest).map(|ip| SocketAddr::new(ip, bound.port()))
    }

    /// The route to `target`, if the shell told it.
    pub fn route(&self, target: SocketAddr) -> Option<IpAddr> {
        self.routes.get(&target).copied()
    }

    /// Queues `reg` for the route to `target`; true if the route must be asked for.
    pub fn wait_for_route(&mut self, target: SocketAddr, reg: RegId) -> bool {
        let waiters = self.route_waiters.entry(target).or_default();
        let first = waiters.is_empty();
        if !waiters.contains(&reg) {
            waiters.push(reg);
        }
        first
    }

    /// The shell found the route to `target` (or could not): who waited for it.
    pub fn route_found(&mut self, target: SocketAddr, ip: Option<IpAddr>) -> Vec<RegId> {
        if let Some(ip) = ip {
            self.routes.insert(target, ip);
        }
        self.route_waiters.remove(&target).unwrap_or_default()
    }

    /// Forgets the routes learnt (the network changed).
    pub fn forget_routes(&mut self) {
        self.routes.clear();
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }
}
