//! What arrives on a flow: responses routed to their registerer by the
//! branch key, requests to the incoming side (`incoming`), STUN answers and
//! keep-alive pongs to the registerers on the flow, and everything else
//! dropped and counted.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Endpoint, FlowId, RegId, UaId, UaStats};
use crate::core::message::{classify_unchecked, FramedHead, Kind, ParseError, Response};
use crate::core::options::Transport;
use crate::core::registerer::{branch_key, KEY_LEN};
use crate::log::Level;
use crate::log_at;

/// Room a response's buffers may hold and still be kept for the next one:
/// a registrar's responses take a few KiB; one that came with a long header
/// section is not kept at that size.
const SPARE_RESPONSE_ROOM: usize = 16 * 1024;

impl Endpoint {
    /// A datagram from `from` on UDP flow `flow`. Returns the user agent it
    /// was attributed to (for the trace), if any.
    pub fn datagram(
        &mut self,
        now: Instant,
        flow: FlowId,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<UaId> {
        let owner = self.flows.get(flow)?.owner;
        let ua = if crate::core::stun::is_stun(bytes) {
            self.on_stun(now, flow, bytes, from);
            Some(owner)
        } else {
            Some(self.on_message(now, flow, bytes, None, from, true))
        };
        self.start_admitted(now);
        ua
    }

    /// A complete message framed on stream flow `flow`, with its header
    /// section as the framing parsed it (`None`: parsed here). Returns the
    /// user agent it was attributed to (for the trace), if any.
    pub fn stream_message(
        &mut self,
        now: Instant,
        flow: FlowId,
        bytes: &[u8],
        head: Option<FramedHead>,
    ) -> Option<UaId> {
        let remote = self.flows.get(flow)?.key.remote?;
        let ua = self.on_message(now, flow, bytes, head, remote, false);
        self.start_admitted(now);
        Some(ua)
    }

    /// Something that arrived on `flow` was thrown away by the shell (too
    /// large, unframeable): counted on the flow's owner.
    pub fn dropped(&mut self, flow: FlowId, why: &str) {
        let owner = self.flows.get(flow).map_or(0, |f| f.owner);
        self.count_drop(owner, why);
    }

    /// Keep-alive answers (CRLF pongs, WebSocket PONGs) arrived on stream `flow`.
    pub fn pongs(&mut self, flow: FlowId) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        for rid in f.users.iter() {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.core.keepalive_pong();
            }
        }
    }

    /// The user agent that owns `flow` (unmatched messages count there).
    pub fn owner(&self, flow: FlowId) -> Option<UaId> {
        self.flows.get(flow).map(|f| f.owner)
    }

    pub(super) fn count_drop(&self, ua: UaId, why: &str) {
        if let Some(u) = self.uas.get(&ua) {
            UaStats::bump(&u.stats.dropped);
        }
        log_at!(Level::Debug, "dropped a message: {why}");
    }

    /// One received message: a response goes to its registerer, anything
    /// else is dropped (counted on the registerer's user agent when known,
    /// else on the flow's owner). Returns that user agent.
    fn on_message(
        &mut self,
        now: Instant,
        flow: FlowId,
        bytes: &[u8],
        head: Option<FramedHead>,
        from: SocketAddr,
        udp: bool,
    ) -> UaId {
        // The request reader checks the request line (read once).
        let kind = classify_unchecked(bytes);
        if kind == Kind::Request {
            return self.on_request(now, flow, bytes, head, from, udp);
        }
        let resp = match kind {
            Kind::Response => Some(match head {
                Some(head) => Response::parse_framed(bytes, head),
                None => Response::parse_reusing(bytes, std::mem::take(&mut self.spare_response)),
            }),
            _ => None,
        };
        let (counted, resp) = self.on_response(now, flow, bytes, kind, resp, from, udp);
        // Its buffers are read into again (unless they grew large).
        if let Some(r) = resp {
            let spare = r.into_buffers();
            if spare.capacity() <= SPARE_RESPONSE_ROOM {
                self.spare_response = spare;
            }
        }
        counted
    }

    /// What [`on_message`](Self::on_message) does with a response (or
    /// with what is not a request): returns the user agent it is counted
    /// on, and the response when one was read (for its buffers).
    #[allow(clippy::too_many_arguments)]
    fn on_response(
        &mut self,
        now: Instant,
        flow: FlowId,
        bytes: &[u8],
        kind: Kind,
        resp: Option<Result<Response, ParseError>>,
        from: SocketAddr,
        udp: bool,
    ) -> (UaId, Option<Response>) {
        let owner = self.flows.get(flow).map_or(0, |f| f.owner);
        let rid: Option<RegId> = resp.as_ref().and_then(|r| r.as_ref().ok()).and_then(|r| {
            let key = r.top_branch().and_then(branch_key)?;
            // A key that is an id names its registerer if that one's key is it.
            let by_id = crate::core::rand::token_id(key.as_bytes())
                .filter(|id| self.regs.get(id).is_some_and(|r| r.core.key() == key));
            by_id.or_else(|| {
                let key = <[u8; KEY_LEN]>::try_from(key.as_bytes()).ok()?;
                self.keys.get(&key).copied()
            })
        });
        let counted = rid.and_then(|r| self.regs.get(&r)).map_or(owner, |r| r.ua);
        if let Some(ua) = self.uas.get(&counted) {
            UaStats::bump(&ua.stats.received);
        }
        let resp = match (kind, resp) {
            (_, Some(Ok(r))) => r,
            (_, Some(Err(e))) => {
                self.count_drop(counted, &format!("unparsable response: {e}"));
                return (counted, None);
            }
            (Kind::Response | Kind::KeepAlive | Kind::Request, None) => return (counted, None),
            (Kind::Junk, _) => {
                self.count_drop(counted, "not SIP");
                return (counted, None);
            }
        };
        let Some(rid) = rid else {
            if let Some(ua) = self.app_response(now, flow, &resp, bytes, from) {
                return (ua, Some(resp));
            }
            self.count_drop(counted, "response for an unknown branch");
            return (counted, Some(resp));
        };
        let Some(reg) = self.regs.get_mut(&rid) else {
            return (counted, Some(resp));
        };
        if reg.flow != Some(flow) {
            self.count_drop(counted, "response on a flow the request was not sent on");
            return (counted, Some(resp));
        }
        if udp && reg.core.destination() != Some(from) {
            self.count_drop(
                counted,
                "response from an address the request was not sent to",
            );
            return (counted, Some(resp));
        }
        log_at!(
            Level::Debug,
            "{}: received {} {}",
            crate::log::Who {
                aor: reg.core.settings().aor_text(),
                id: rid
            },
            resp.status,
            resp.reason
        );
        // Lent before the step that queues the response's events (drive
        // lends too late for those, and takes back what is left).
        super::lend_spare_events(&mut self.spare_events, &mut reg.core);
        match reg.core.handle_response(now, &resp) {
            Ok(()) => self.drive(rid, now, |_, _| {}),
            Err(why) => {
                self.reclaim_events(rid);
                self.count_drop(counted, why.as_str());
            }
        }
        (counted, Some(resp))
    }

    /// A STUN datagram from `from` on UDP flow `flow`: offered to the
    /// registerers on that flow whose target that is.
    fn on_stun(&mut self, now: Instant, flow: FlowId, bytes: &[u8], from: SocketAddr) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        debug_assert_eq!(f.key.transport, Transport::Udp);
        let owner = f.owner;
        let users: Vec<RegId> = f.users.iter().collect();
        for rid in users {
            if self
                .regs
                .get(&rid)
                .is_none_or(|r| r.core.destination() != Some(from))
            {
                continue;
            }
            let mut taken = false;
            self.drive(rid, now, |core, now| taken = core.stun_datagram(now, bytes));
            if taken {
                return;
            }
        }
        self.count_drop(owner, "STUN message that answers no request of ours");
    }
}
