//! The application's own requests on a flow (`send_message`), remembered by
//! flow and Via branch for a while, so that their responses reach its
//! listener (the registerers' responses are routed by their branch key).
//!
//! Bounded: an entry lives 64*T1 (Timer F), an INVITE three minutes (Timer
//! C), and the oldest go first beyond [`MAX_ENTRIES`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{FlowId, UaId};

/// Requests remembered at most.
pub const MAX_ENTRIES: usize = 2_048;
/// How long an INVITE of the application may be answered (RFC 3261 Timer C).
pub const INVITE_MEMORY: Duration = Duration::from_secs(180);

/// The application's requests in flight.
#[derive(Debug, Default)]
pub struct AppRequests {
    by_branch: HashMap<(FlowId, Box<str>), (UaId, Instant)>,
    order: VecDeque<(Instant, FlowId, Box<str>)>,
}

impl AppRequests {
    /// Remembers a request with `branch` that user agent `ua` sent on `flow`, until `until`.
    pub fn sent(&mut self, now: Instant, flow: FlowId, branch: &str, ua: UaId, until: Instant) {
        self.expire(now);
        let key: Box<str> = branch.into();
        self.by_branch.insert((flow, key.clone()), (ua, until));
        self.order.push_back((until, flow, key));
        while self.by_branch.len() > MAX_ENTRIES {
            let Some((t, f, b)) = self.order.pop_front() else {
                break;
            };
            let k = (f, b);
            if self.by_branch.get(&k).is_some_and(|(_, u)| *u == t) {
                self.by_branch.remove(&k);
            }
        }
    }

    /// The user agent whose request on `flow` had `branch`, if it is remembered.
    pub fn owner(&mut self, now: Instant, flow: FlowId, branch: &str) -> Option<UaId> {
        self.expire(now);
        // An entry behind a longer-lived one (an INVITE's) may outlive its
        // time in the table.
        self.by_branch
            .get(&(flow, Box::from(branch)))
            .filter(|(_, until)| *until > now)
            .map(|(ua, _)| *ua)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.order.front() {
            if *t > now {
                break;
            }
            if let Some((t, f, b)) = self.order.pop_front() {
                let k = (f, b);
                if self.by_branch.get(&k).is_some_and(|(_, u)| *u == t) {
                    self.by_branch.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_per_flow_until_it_expires_and_bounded() {
        let mut a = AppRequests::default();
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(32);
        a.sent(t0, FlowId(1), "z9hG4bKa", 7, end);
        assert_eq!(a.owner(t0, FlowId(1), "z9hG4bKa"), Some(7));
        assert_eq!(a.owner(t0, FlowId(2), "z9hG4bKa"), None);
        assert_eq!(a.owner(end, FlowId(1), "z9hG4bKa"), None);
        for i in 0..(MAX_ENTRIES + 10) {
            a.sent(
                end,
                FlowId(1),
                &format!("b{i}"),
                1,
                end + Duration::from_secs(1),
            );
        }
        assert!(a.by_branch.len() <= MAX_ENTRIES);
    }

    #[test]
    fn an_entry_behind_an_invites_is_forgotten_in_its_time() {
        let mut a = AppRequests::default();
        let t0 = Instant::now();
        a.sent(t0, FlowId(1), "z9hG4bKinv", 1, t0 + INVITE_MEMORY);
        a.sent(t0, FlowId(1), "z9hG4bKmsg", 1, t0 + Duration::from_secs(32));
        let later = t0 + Duration::from_secs(33);
        assert_eq!(a.owner(later, FlowId(1), "z9hG4bKmsg"), None);
        assert_eq!(a.owner(later, FlowId(1), "z9hG4bKinv"), Some(1));
    }
}
