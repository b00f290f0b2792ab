//! Requests handed to the application, remembered for a while so their
//! retransmissions are not handed up again (RFC 3261 §17.2.2: the server
//! transaction absorbs them): while the application has not answered, a
//! retransmission is absorbed; once it has, the last answer is sent again.
//!
//! Requests the library answers itself need no memory: their answer is
//! written again, identically, from the retransmission.
//!
//! Bounded: entries expire after 64*T1 (Timer J) and the oldest are
//! forgotten beyond [`MAX_ENTRIES`] or [`MAX_BYTES`] (a branch and an
//! answer can each be as large as a datagram: entries alone would let
//! hostile requests pin hundreds of megabytes).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::FlowId;
use crate::core::message::Request;

/// Transactions remembered at most.
pub const MAX_ENTRIES: usize = 2_048;
/// Bytes of branches and answers remembered at most.
pub const MAX_BYTES: usize = 8 << 20;

/// What identifies a request and its retransmissions (RFC 3261 §17.2.3):
/// the flow, the top Via branch (or, without the RFC 3261 cookie, Call-ID,
/// From tag and CSeq number) and the method (of CSeq).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxKey {
    flow: FlowId,
    id: Box<str>,
    method: Box<str>,
}

impl TxKey {
    /// The key of `req`, received on `flow`; `None` without a usable Via or CSeq.
    pub fn of(flow: FlowId, req: &Request) -> Option<TxKey> {
        Self::with_method(flow, req, req.cseq()?.1)
    }

    /// The key of the INVITE an ACK of a non-2xx answer acknowledges (same branch).
    pub fn invite_of(flow: FlowId, ack: &Request) -> Option<TxKey> {
        Self::with_method(flow, ack, "INVITE")
    }

    fn with_method(flow: FlowId, req: &Request, method: &str) -> Option<TxKey> {
        let branch = req.branch().filter(|b| b.starts_with("z9hG4bK"));
        let id = match branch {
            Some(b) => b,
            None => format!(
                "{}|{}|{}",
                req.call_id()?,
                req.from_tag().unwrap_or_default(),
                req.cseq()?.0
            ),
        };
        Some(TxKey {
            flow,
            id: id.into_boxed_str(),
            method: method.into(),
        })
    }
}

/// The last answer to a request: bytes and where they went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastAnswer {
    /// The response as sent.
    pub bytes: Vec<u8>,
    /// Where it went.
    pub dest: SocketAddr,
    /// Its status.
    pub status: u16,
}

/// Where a remembered request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Handed to the application, not answered yet.
    Pending,
    /// Answered; a retransmission gets this again.
    Answered(LastAnswer),
}

#[derive(Debug)]
struct Entry {
    seen: Seen,
    until: Instant,
}

impl Entry {
    /// What the entry holds, in bytes (of its key `key` too).
    fn size(&self, key: &TxKey) -> usize {
        let answer = match &self.seen {
            Seen::Pending => 0,
            Seen::Answered(a) => a.bytes.len(),
        };
        key.id.len() + key.method.len() + answer
    }
}

/// The remembered requests.
#[derive(Debug, Default)]
pub struct Answered {
    entries: HashMap<TxKey, Entry>,
    /// Insertion order, for expiry and the size bound (stale keys skipped).
    order: VecDeque<(Instant, TxKey)>,
    /// The [`Entry::size`] of every entry.
    bytes: usize,
}

impl Answered {
    /// What is known about `key` at `now`.
    pub fn get(&mut self, now: Instant, key: &TxKey) -> Option<&Seen> {
        self.expire(now);
        // Expiry goes in insertion order: an entry behind a longer-lived one
        // (another user agent's T1) may outlive its time there.
        self.entries
            .get(key)
            .filter(|e| e.until > now)
            .map(|e| &e.seen)
    }

    /// Remembers a request handed up at `now`, for `ttl`.
    pub fn pending(&mut self, now: Instant, key: TxKey, ttl: Duration) {
        self.put(now, key, Seen::Pending, ttl);
    }

    /// Records the application's answer (the latest one wins), for `ttl` from now.
    pub fn answered(&mut self, now: Instant, key: TxKey, answer: LastAnswer, ttl: Duration) {
        self.put(now, key, Seen::Answered(answer), ttl);
    }

    /// Number of remembered requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held (tests and diagnostics).
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn put(&mut self, now: Instant, key: TxKey, seen: Seen, ttl: Duration) {
        self.expire(now);
        let until = now + ttl;
        let entry = Entry { seen, until };
        self.bytes += entry.size(&key);
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.bytes -= old.size(&key);
        }
        self.order.push_back((until, key));
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some((t, old)) = self.order.pop_front() else {
                break;
            };
            self.remove_if_until(&old, t);
        }
        // Keys re-inserted leave stale order entries: bound them too.
        if self.order.len() > 2 * MAX_ENTRIES {
            let entries = &self.entries;
            self.order
                .retain(|(t, k)| entries.get(k).is_some_and(|e| e.until == *t));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if *t > now {
                break;
            }
            if let Some((t, k)) = self.order.pop_front() {
                self.remove_if_until(&k, t);
            }
        }
    }

    /// Forgets `key` if its entry is the one that lives until `t` (not a
    /// later re-insertion).
    fn remove_if_until(&mut self, key: &TxKey, t: Instant) {
        if self.entries.get(key).is_some_and(|e| e.until == t) {
            if let Some(e) = self.entries.remove(key) {
                self.bytes -= e.size(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(branch: &str, method: &str) -> Request {
        let m = format!(
            "{method} sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch={branch}\r\n\
From: <sip:b@h>;tag=f\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\r\n"
        );
        Request::parse(m.as_bytes()).unwrap()
    }

    #[test]
    fn pending_then_answered_then_expired() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        let k = TxKey::of(FlowId(1), &req("z9hG4bKx", "MESSAGE")).unwrap();
        a.pending(t0, k.clone(), Duration::from_secs(32));
        assert_eq!(a.get(t0, &k), Some(&Seen::Pending));
        let ans = LastAnswer {
            bytes: b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
            dest: "1.2.3.4:5060".parse().unwrap(),
            status: 200,
        };
        a.answered(t0, k.clone(), ans.clone(), Duration::from_secs(32));
        assert_eq!(a.get(t0, &k), Some(&Seen::Answered(ans)));
        assert_eq!(a.get(t0 + Duration::from_secs(33), &k), None);
        assert!(a.is_empty());
    }

    #[test]
    fn keys_tell_flows_methods_and_branches_apart() {
        let m = TxKey::of(FlowId(1), &req("z9hG4bKx", "MESSAGE")).unwrap();
        assert_ne!(
            m,
            TxKey::of(FlowId(2), &req("z9hG4bKx", "MESSAGE")).unwrap()
        );
        assert_ne!(
            m,
            TxKey::of(FlowId(1), &req("z9hG4bKy", "MESSAGE")).unwrap()
        );
        let invite = TxKey::of(FlowId(1), &req("z9hG4bKx", "INVITE")).unwrap();
        assert_eq!(
            invite,
            TxKey::invite_of(FlowId(1), &req("z9hG4bKx", "ACK")).unwrap()
        );
        // Without the cookie: Call-ID, From tag and CSeq.
        assert_eq!(
            TxKey::of(FlowId(1), &req("old1", "MESSAGE")),
            TxKey::of(FlowId(1), &req("old2", "MESSAGE"))
        );
    }

    #[test]
    fn the_size_is_bounded() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES + 100) {
            let k = TxKey::of(FlowId(1), &req(&format!("z9hG4bK{i}"), "MESSAGE")).unwrap();
            a.pending(t0, k.clone(), Duration::from_secs(32));
            a.pending(t0, k, Duration::from_secs(32));
        }
        assert_eq!(a.len(), MAX_ENTRIES);
        assert!(a.order.len() <= 2 * MAX_ENTRIES + 1);
        let first = TxKey::of(FlowId(1), &req("z9hG4bK0", "MESSAGE")).unwrap();
        assert_eq!(a.get(t0, &first), None, "the oldest went first");
    }

    #[test]
    fn an_entry_behind_a_longer_lived_one_is_not_seen_after_its_time() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        let long = TxKey::of(FlowId(1), &req("z9hG4bKlong", "MESSAGE")).unwrap();
        let short = TxKey::of(FlowId(1), &req("z9hG4bKshort", "MESSAGE")).unwrap();
        a.pending(t0, long.clone(), Duration::from_secs(128));
        a.pending(t0, short.clone(), Duration::from_secs(32));
        let later = t0 + Duration::from_secs(33);
        assert_eq!(a.get(later, &short), None);
        assert_eq!(a.get(later, &long), Some(&Seen::Pending));
    }

    #[test]
    fn large_branches_and_answers_are_bounded_in_bytes() {
        let mut a = Answered::default();
        let t0 = Instant::now();
        let long = "x".repeat(30_000);
        let answer = LastAnswer {
            bytes: vec![b'a'; 30_000],
            dest: "1.2.3.4:5060".parse().unwrap(),
            status: 100,
        };
        let mut last = None;
        for i in 0..MAX_ENTRIES {
            let k = TxKey::of(FlowId(1), &req(&format!("z9hG4bK{i}{long}"), "INVITE")).unwrap();
            a.answered(t0, k.clone(), answer.clone(), Duration::from_secs(32));
            last = Some(k);
        }
        assert!(a.bytes() <= MAX_BYTES, "{} bytes held", a.bytes());
        // Far less than the entries bound alone would let in (about 120 MB).
        assert!(
            a.bytes() < MAX_ENTRIES * 60_000 / 8,
            "{} bytes held",
            a.bytes()
        );
        assert!(a.len() < MAX_ENTRIES);
        assert!(a.get(t0, &last.unwrap()).is_some(), "the newest stays");
        // Replacing and expiring keep the count exact.
        a.get(
            t0 + Duration::from_secs(33),
            &TxKey::of(FlowId(9), &req("z9hG4bKq", "BYE")).unwrap(),
        );
        assert_eq!((a.len(), a.bytes()), (0, 0));
    }
}
