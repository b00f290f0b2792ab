//! The endpoint: every socket and connection of the process. User agents do
//! not own sockets; they use the endpoint's, shared by everyone whose settings
//! match (transport, address family and local address; for a stream also the
//! target and the TLS / WebSocket session settings). A user agent that asks
//! for a private socket gets its own. Responses are routed to registerers by
//! the Via branch, so sharing needs nothing else.
//!
//! One exception keeps user agents apart: two user agents with the same AOR
//! never share a socket (they would be one contact, so one binding, at the
//! registrar); the second one gets the next socket of the same kind.
//!
//! A socket lives while a registerer uses it and is closed when the last
//! one leaves, so disposing the last registerer closes its connection.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::stream::{StreamConn, StreamSpec};
use super::udp;
use super::{RegId, UaId};
use crate::core::options::Transport;

/// What makes two registerers share a socket.
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
    /// Which of several sockets of the same kind (see the module docs).
    pub slot: u32,
}

/// The socket itself.
pub enum Io {
    /// A datagram socket.
    Udp(UdpSocket),
    /// A stream connection of any kind.
    Stream(StreamConn),
}

/// One socket and who uses it.
pub struct Sock {
    /// Its sharing key.
    pub key: FlowKey,
    /// The user agent that opened it: counters of messages that match no
    /// registerer go there.
    pub owner: UaId,
    /// Registerers that send on it.
    pub users: HashSet<RegId>,
    /// AORs on it: the user agent using each, and how many of its registerers.
    aors: HashMap<Arc<str>, (UaId, usize)>,
    /// The address a UDP socket is bound to, read once (not per send).
    bound: Option<SocketAddr>,
    /// The socket.
    pub io: Io,
}

/// Every socket of the process.
#[derive(Default)]
pub struct Endpoint {
    /// Open sockets by poll token.
    pub socks: HashMap<Token, Sock>,
    flows: HashMap<FlowKey, Token>,
    routes: HashMap<SocketAddr, IpAddr>,
    next_token: usize,
    /// Handshake deadlines of stream connections that are not up yet.
    pub handshakes: BinaryHeap<Reverse<(Instant, Token)>>,
}

impl Endpoint {
    /// The open socket for `key`, if any.
    pub fn find(&self, key: &FlowKey) -> Option<Token> {
        self.flows.get(key).copied()
    }

    fn alloc_token(&mut self) -> Token {
        // Token 0 is the waker; tokens are never reused, so a stale one finds nothing.
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Binds a UDP socket for `key` (its first user is attached by the caller).
    pub fn open_udp(
        &mut self,
        key: FlowKey,
        owner: UaId,
        target: SocketAddr,
        registry: &Registry,
    ) -> io::Result<Token> {
        let mut sock = udp::bind(key.local, target)?;
        let token = self.alloc_token();
        registry.register(&mut sock, token, Interest::READABLE)?;
        let bound = sock.local_addr()?;
        self.insert(token, key, owner, Io::Udp(sock), Some(bound));
        Ok(token)
    }

    /// Starts a stream connection for `key`.
    pub fn open_stream(
        &mut self,
        key: FlowKey,
        owner: UaId,
        spec: StreamSpec,
        registry: &Registry,
    ) -> io::Result<Token> {
        let token = self.alloc_token();
        let deadline = spec.deadline;
        let conn = StreamConn::connect(spec, registry, token)?;
        self.handshakes.push(Reverse((deadline, token)));
        self.insert(token, key, owner, Io::Stream(conn), None);
        Ok(token)
    }

    fn insert(
        &mut self,
        token: Token,
        key: FlowKey,
        owner: UaId,
        io: Io,
        bound: Option<SocketAddr>,
    ) {
        self.flows.insert(key.clone(), token);
        self.socks.insert(
            token,
            Sock {
                key,
                owner,
                users: HashSet::new(),
                aors: HashMap::new(),
                bound,
                io,
            },
        );
    }

    /// Whether another user agent with `aor` already uses `token`.
    pub fn taken(&self, token: Token, aor: &str, ua: UaId) -> bool {
        self.socks
            .get(&token)
            .and_then(|s| s.aors.get(aor))
            .is_some_and(|(u, _)| *u != ua)
    }

    /// Records that registerer `id` of user agent `ua` (for `aor`) sends on `token`.
    pub fn attach(&mut self, token: Token, id: RegId, aor: &Arc<str>, ua: UaId) {
        if let Some(s) = self.socks.get_mut(&token) {
            if s.users.insert(id) {
                // The registerer's own text of its AOR, shared, not copied.
                s.aors.entry(aor.clone()).or_insert((ua, 0)).1 += 1;
            }
        }
    }

    /// Registerer `id` (for `aor`) no longer uses `token`; the last user closes it.
    pub fn detach(&mut self, token: Token, id: RegId, aor: &str) {
        let empty = self.socks.get_mut(&token).is_some_and(|s| {
            if s.users.remove(&id) {
                if let Some(e) = s.aors.get_mut(aor) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        s.aors.remove(aor);
                    }
                }
            }
            s.users.is_empty()
        });
        if empty {
            self.close(token);
        }
    }

    /// Closes a socket (a stream politely) and returns who used it.
    pub fn close(&mut self, token: Token) -> Vec<RegId> {
        let Some(sock) = self.socks.remove(&token) else {
            return Vec::new();
        };
        if self.flows.get(&sock.key) == Some(&token) {
            self.flows.remove(&sock.key);
        }
        if let Io::Stream(mut conn) = sock.io {
            // Dropping the socket removes it from the poller.
            conn.close();
        }
        sock.users.into_iter().collect()
    }

    /// Forgets the cached local routes (the network changed).
    pub fn forget_routes(&mut self) {
        self.routes.clear();
    }

    /// The address packets to `target` leave from on `token` (for Via and Contact).
    pub fn local_addr(&mut self, token: Token, target: SocketAddr) -> io::Result<SocketAddr> {
        let Some(sock) = self.socks.get(&token) else {
            return Err(io::Error::other("no socket"));
        };
        let bound = match (&sock.io, sock.bound) {
            (Io::Stream(conn), _) => return Ok(conn.local),
            (Io::Udp(_), bound) => bound.ok_or_else(|| io::Error::other("socket not bound"))?,
        };
        if !bound.ip().is_unspecified() {
            return Ok(bound);
        }
        let ip = match self.routes.get(&target) {
            Some(ip) => *ip,
            None => {
                let ip = udp::route_ip(target)?;
                self.routes.insert(target, ip);
                ip
            }
        };
        Ok(SocketAddr::new(ip, bound.port()))
    }
}
