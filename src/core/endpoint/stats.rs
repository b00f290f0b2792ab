//! Counters of a user agent, readable by the API at any moment without
//! asking the endpoint. The message counters count since the user agent was
//! created; the window is read live from the pacer's counters of the
//! registrar target this user agent used last, so a read is exact at that
//! moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::pacing::{WindowCounters, WindowView};

/// Counters kept per user agent.
#[derive(Debug, Default)]
pub struct UaStats {
    /// Datagrams and stream messages received on the user agent's flows and
    /// attributed to it (a response to one of its requests, or anything else
    /// arriving on a flow it opened).
    pub received: AtomicU64,
    /// Of those, messages dropped: unparsable, unknown branch, wrong
    /// Call-ID/CSeq, wrong source, oversized, a request that cannot be
    /// answered or whose source is over its answer budget.
    pub dropped: AtomicU64,
    /// Requests received for the user agent's contact (OPTIONS pings, calls,
    /// messages, and those for no known contact on a flow it opened).
    pub requests: AtomicU64,
    /// Responses sent to them: the library's answers and the application's.
    pub answered: AtomicU64,
    /// Requests sent (retransmissions included), counted when handed to the socket.
    pub sent: AtomicU64,
    /// Transport failures seen: failed sends, refused or lost connections,
    /// failed handshakes, ICMP errors (once per user agent per failure).
    pub transport_errors: AtomicU64,
    /// The pacing window of the registrar target last used (none before the first request).
    window: Mutex<Option<Arc<WindowCounters>>>,
}

impl UaStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Follows the window of `target` from now on (the target last used).
    pub fn follow_window(&self, target: &Arc<WindowCounters>) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if !w.as_ref().is_some_and(|c| Arc::ptr_eq(c, target)) {
            *w = Some(target.clone());
        }
    }

    /// The window of the target last used, now (all zero before the first request).
    pub fn window(&self) -> WindowView {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.view())
            .unwrap_or_default()
    }
}
