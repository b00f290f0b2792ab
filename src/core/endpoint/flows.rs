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
//! A request reaching a shared flow is routed by the user part of its
//! Request-URI, so the contact users on one flow are unique: a user agent
//! whose contact user another one already holds there gets it with a
//! suffix (`alice-2`).
//!
//! A flow lives while a registerer uses it and is closed when the last one
//! leaves, so disposing the last registerer closes its connection.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Card, ConnectSpec, FlowId, HandshakeStep, RegId, UaId};
use crate::core::id_table::IdTableSet;
use crate::core::idhash::IdMap;
use crate::core::options::Transport;
use crate::core::short_text::ShortText;

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
    pub users: IdTableSet,
    /// AORs on it, by a hash of their text: the user agent using each, and
    /// how many of its registerers. (Two AORs that hash alike only cost
    /// sharing: the second one's user agent takes the next flow.)
    aors: IdMap<u64, (UaId, u32)>,
    /// Contact users on it (compared unescaped): the user agent holding
    /// each, how many of its registerers, and its card (what answering a
    /// request for it reads). (Ours: a user taken from a request is only
    /// looked up, hence the fast hasher.)
    contact_users: IdMap<ShortText<CONTACT_USER_INLINE>, (UaId, usize, Card)>,
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
    /// Registrars and proxies our REGISTERs went to on this flow (the
    /// sources whose requests are trusted with a larger answer budget),
    /// the newest last, at most [`MAX_PEERS`].
    pub peers: Vec<SocketAddr>,
}

/// The key of an AOR in a flow's table of them: SipHash, whose 64 bits
/// make two of an application's AORs alike only by a 2^-64 chance (the
/// fast id hasher's multiply-rotate scheme collides on AORs that differ
/// in two of its 8-byte words; it is fine for spreading, not as a key).
fn aor_hash(aor: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    aor.hash(&mut h);
    h.finish()
}

/// Contact users of up to this many bytes are kept inside the flow's table
/// (read on every request without following a pointer).
const CONTACT_USER_INLINE: usize = 22;

/// Registrar addresses remembered per flow.
pub const MAX_PEERS: usize = 16;

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
    by_key: IdMap<FlowKey, FlowId>,
    /// The local IP the kernel uses towards each target (for a socket bound
    /// to the unspecified address), as the shell found it.
    routes: IdMap<SocketAddr, IpAddr>,
    /// Registerers waiting for a route, by target.
    route_waiters: IdMap<SocketAddr, Vec<RegId>>,
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
                users: IdTableSet::default(),
                aors: IdMap::default(),
                contact_users: IdMap::default(),
                local: None,
                up: false,
                handshake_deadline: None,
                step: HandshakeStep::default(),
                pending_connect: None,
                waiting: Vec::new(),
                peers: Vec::new(),
            },
        );
        id
    }

    /// Whether another user agent with `aor` already uses flow `id`.
    pub fn taken(&self, id: FlowId, aor: &str, ua: UaId) -> bool {
        self.flows
            .get(&id)
            .and_then(|f| f.aors.get(&aor_hash(aor)))
            .is_some_and(|(u, _)| *u != ua)
    }

    /// Records that registerer `reg` of user agent `ua` (for `aor`, wanting
    /// the contact user `user`) sends on `id`. Returns the contact user it
    /// gets there: `user`, or `user` with a suffix when another user agent
    /// on the flow holds it.
    pub fn attach<'u>(
        &mut self,
        id: FlowId,
        reg: RegId,
        aor: &str,
        ua: UaId,
        user: &'u str,
        card: &Card,
    ) -> Cow<'u, str> {
        let Some(f) = self.flows.get_mut(&id) else {
            return Cow::Borrowed(user);
        };
        // (The usual user agent gets its own user: nothing copied.)
        let mut chosen = Cow::Borrowed(user);
        let mut n = 1;
        while f
            .contact_users
            .get(&*normalized_user(&chosen))
            .is_some_and(|(u, _, _)| *u != ua)
        {
            n += 1;
            chosen = Cow::Owned(format!("{user}-{n}"));
        }
        if f.users.insert(reg) {
            f.aors.entry(aor_hash(aor)).or_insert((ua, 0)).1 += 1;
            f.contact_users
                .entry(ShortText::new(&normalized_user(&chosen)))
                .or_insert_with(|| (ua, 0, card.clone()))
                .1 += 1;
        }
        chosen
    }

    /// The user agent whose contact user on flow `id` is `user` (as a
    /// Request-URI writes it: escapes of unreserved characters allowed).
    pub fn contact_user_owner(&self, id: FlowId, user: &str) -> Option<(UaId, &Card)> {
        let f = self.flows.get(&id)?;
        // (A user without escapes, the common case, is not copied.)
        f.contact_users
            .get(&*normalized_user(user))
            .map(|(u, _, card)| (*u, card))
    }

    /// User agent `ua`'s card changed: the copies beside its contact users
    /// on flow `id` follow (every one of them: a contact user it held before
    /// a change of its settings is still its own until its registerers move).
    pub fn set_card(&mut self, id: FlowId, ua: UaId, card: &Card) {
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        for e in f.contact_users.values_mut().filter(|e| e.0 == ua) {
            e.2 = card.clone();
        }
    }

    /// Registerer `reg` (for `aor`, with the contact user `user`) no longer
    /// uses `id`. True when that left the flow without users (the caller
    /// closes it).
    pub fn detach(&mut self, id: FlowId, reg: RegId, aor: &str, user: &str) -> bool {
        self.flows.get_mut(&id).is_some_and(|f| {
            if f.users.remove(&reg) {
                let hash = aor_hash(aor);
                if let Some(e) = f.aors.get_mut(&hash) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        f.aors.remove(&hash);
                    }
                }
                let key = normalized_user(user);
                if let Some(e) = f.contact_users.get_mut(&*key) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        f.contact_users.remove(&*key);
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

    /// A REGISTER went to `peer` on flow `id`: it is one of the flow's registrars.
    pub fn note_peer(&mut self, id: FlowId, peer: SocketAddr) {
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        if f.peers.last() == Some(&peer) {
            return;
        }
        f.peers.retain(|p| *p != peer);
        if f.peers.len() == MAX_PEERS {
            f.peers.remove(0);
        }
        f.peers.push(peer);
    }

    /// The address packets on `flow` to `dest` leave from, if known.
    pub fn local_towards(&self, flow: FlowId, dest: SocketAddr) -> Option<SocketAddr> {
        let f = self.flows.get(&flow)?;
        let bound = f.local?;
        if f.key.transport != Transport::Udp || !bound.ip().is_unspecified() {
            return Some(bound);
        }
        // A peer we never sent to (one that sent us a request): the route
        // to another port of its address, or loopback for loopback.
        let ip = self.route(dest).or_else(|| {
            self.routes
                .iter()
                .find(|(t, _)| t.ip() == dest.ip())
                .map(|(_, ip)| *ip)
                .or_else(|| dest.ip().is_loopback().then_some(dest.ip()))
        })?;
        Some(SocketAddr::new(ip, bound.port()))
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

/// A URI user part with escapes of unreserved characters decoded (`%41`
/// is `A`), so two spellings of one user compare equal (RFC 3261 §19.1.4).
pub fn normalized_user(user: &str) -> Cow<'_, str> {
    // Without an escape (the usual user) the text is its own normal form.
    if !user.contains('%') {
        return Cow::Borrowed(user);
    }
    let b = user.as_bytes();
    let mut out = String::with_capacity(user.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let Some(v) = crate::core::lexer::hex_pair(b.get(i + 1..i + 3)) {
                if v.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&v) {
                    out.push(char::from(v));
                    i += 3;
                    continue;
                }
                // A reserved character stays escaped, in one spelling.
                out.push('%');
                out.push_str(&format!("{v:02X}"));
                i += 3;
                continue;
            }
        }
        // Up to the next '%' (ASCII, so a character boundary) as written:
        // other text, non-ASCII included, is copied whole.
        let run = b
            .get(i + 1..)
            .and_then(|rest| rest.iter().position(|&c| c == b'%'))
            .map_or(b.len(), |at| i + 1 + at);
        out.push_str(user.get(i..run).unwrap_or_default());
        i = run;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FlowKey {
        FlowKey {
            transport: Transport::Udp,
            remote: None,
            v6: false,
            local: None,
            session: String::new(),
            private: None,
            slot: 0,
        }
    }

    #[test]
    fn contact_users_are_unique_per_flow_and_freed_on_detach() {
        let owner = |flows: &Flows, f, user| flows.contact_user_owner(f, user).map(|(ua, _)| ua);
        let mut flows = Flows::default();
        let card = Card::blank();
        let f = flows.insert(key(), 1);
        let (a, b) = ("sip:alice@a.example", "sip:alice@b.example");
        assert_eq!(flows.attach(f, 10, a, 1, "alice", &card), "alice");
        assert_eq!(
            flows.attach(f, 11, a, 1, "alice", &card),
            "alice",
            "same user agent, same user"
        );
        assert_eq!(flows.attach(f, 20, b, 2, "alice", &card), "alice-2");
        assert_eq!(
            flows.attach(f, 30, b, 3, "al%69ce", &card),
            "al%69ce-3",
            "an escaped spelling clashes too"
        );
        assert_eq!(owner(&flows, f, "alice"), Some(1));
        assert_eq!(owner(&flows, f, "%61lice-2"), Some(2));
        assert_eq!(owner(&flows, f, "alice-3"), Some(3));
        assert_eq!(owner(&flows, f, "alice-4"), None);
        assert!(!flows.detach(f, 10, a, "alice"));
        assert_eq!(owner(&flows, f, "alice"), Some(1), "one registerer left");
        assert!(!flows.detach(f, 11, a, "alice"));
        assert_eq!(owner(&flows, f, "alice"), None);
        assert_eq!(
            flows.attach(f, 40, b, 4, "alice", &card),
            "alice",
            "free again"
        );
        assert_eq!(normalized_user("a%3bb%3B"), "a%3Bb%3B");
        // Other text is kept as written, with or without an escape beside it.
        assert_eq!(normalized_user("h\u{e9}"), "h\u{e9}");
        assert_eq!(normalized_user("h\u{e9}%41\u{e9}%"), "h\u{e9}A\u{e9}%");
        assert_eq!(normalized_user("%4"), "%4");
    }

    #[test]
    fn an_aor_on_a_flow_is_taken_for_other_user_agents_until_its_last_registerer_leaves() {
        let mut flows = Flows::default();
        let card = Card::blank();
        let f = flows.insert(key(), 1);
        let aor = "sip:alice@a.example";
        assert!(!flows.taken(f, aor, 1));
        flows.attach(f, 10, aor, 1, "alice", &card);
        flows.attach(f, 11, aor, 1, "alice", &card);
        assert!(!flows.taken(f, aor, 1), "its own user agent");
        assert!(flows.taken(f, aor, 2), "another user agent");
        assert!(!flows.taken(f, "sip:bob@a.example", 2), "another AOR");
        // AORs that differ in two 8-byte words (alike under the id hasher).
        for i in 0..10_000 {
            let (aor, user) = (format!("sip:u{i}@127.0.0.1"), format!("u{i}"));
            flows.attach(f, 100 + i, &aor, 100 + i, &user, &card);
        }
        for i in 0..10_000 {
            let aor = format!("sip:u{i}@127.0.0.1");
            assert!(!flows.taken(f, &aor, 100 + i), "{aor}");
        }
        flows.detach(f, 10, aor, "alice");
        assert!(flows.taken(f, aor, 2), "one registerer left");
        flows.detach(f, 11, aor, "alice");
        assert!(!flows.taken(f, aor, 2), "free again");
    }
}
