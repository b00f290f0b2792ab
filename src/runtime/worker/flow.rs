//! Flow hooks of the worker: keep-alive bytes out, pongs and STUN answers in,
//! and replacing a flow the core declared failed. The decisions are the
//! core's (`core::keepalive`); this only moves bytes and sockets.

use std::net::SocketAddr;
use std::time::Instant;

use mio::Token;

use super::{Io, RegId, Worker};
use crate::log_at;
use crate::runtime::log::{Level, Who};

impl Worker {
    /// Sends the keep-alives the core owes on the registerer's existing flow
    /// (never opens a socket or connection for a ping). On a stream the
    /// connection's own ping goes out: CRLFCRLF, or a PING frame on WebSocket.
    pub(super) fn send_pings(&mut self, id: RegId) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        let mut pings = Vec::new();
        while let Some(p) = reg.core.poll_ping() {
            pings.push(p);
        }
        let (Some(token), target) = (reg.sock, reg.target) else {
            return;
        };
        let aor = reg.core.settings().aor_text.clone();
        for p in pings {
            let r = match self.ep.socks.get_mut(&token).map(|s| &mut s.io) {
                Some(Io::Udp(sock)) => sock.send_to(&p, target).map(|_| ()),
                Some(Io::Stream(conn)) => conn.ping(),
                None => return,
            };
            let outcome = match r {
                Ok(()) => "sent".to_owned(),
                Err(e) => format!("not sent: {}", crate::runtime::cause::plain(&e)),
            };
            log_at!(
                Level::Debug,
                "{}: keep-alive ({} bytes) -> {target}: {outcome}",
                Who { aor: &aor, id },
                p.len()
            );
        }
    }

    /// The core declared its flow failed: close the socket or connection so
    /// the REGISTER it queued goes out on a new one; the others that shared
    /// the flow (the same NAT binding) re-register too.
    pub(super) fn replace_flow(&mut self, id: RegId, now: Instant) {
        let Some(reg) = self.regs.get_mut(&id) else {
            return;
        };
        let reliable = reg.core.settings().transport.reliable();
        let target = reg.target;
        let Some(token) = reg.sock.take() else {
            return;
        };
        log_at!(
            Level::Info,
            "{}: flow to {target} failed; opening a new one",
            Who {
                aor: &reg.core.settings().aor_text,
                id
            }
        );
        let others: Vec<RegId> = self
            .ep
            .close(token)
            .into_iter()
            .filter(|r| *r != id)
            .collect();
        if reliable {
            // Told after this registerer's step, like a failed send.
            self.failed_streams.push((others, id));
            return;
        }
        for rid in others {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.sock = None;
            }
            self.drive(rid, now, |core, now| core.network_changed(now));
        }
    }

    /// A STUN datagram from `from` on UDP socket `token`: offer it to the
    /// registerers on that socket whose target that is.
    pub(super) fn on_stun(&mut self, token: Token, bytes: &[u8], from: SocketAddr, now: Instant) {
        let users: Vec<RegId> = self
            .ep
            .socks
            .get(&token)
            .map(|s| s.users.iter().copied().collect())
            .unwrap_or_default();
        for rid in users {
            if self.regs.get(&rid).is_none_or(|r| r.target != from) {
                continue;
            }
            let mut taken = false;
            self.drive(rid, now, |core, now| taken = core.stun_datagram(now, bytes));
            if taken {
                return;
            }
        }
        self.count_drop(
            self.owner(token),
            "STUN message that answers no request of ours",
        );
    }

    /// Keep-alive answers (CRLF pongs, WebSocket PONGs) arrived on connection `token`.
    pub(super) fn on_pong(&mut self, token: Token) {
        let Some(sock) = self.ep.socks.get(&token) else {
            return;
        };
        for rid in &sock.users {
            if let Some(r) = self.regs.get_mut(rid) {
                r.core.keepalive_pong();
            }
        }
    }
}
