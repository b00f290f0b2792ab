//! Counters of a user agent, readable by the API at any moment without
//! asking the endpoint: plain atomics, and the pacing window of the target
//! the user agent used last, shared with that window so it is exact when read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::pacing::WindowView;

/// A target's pacing window as its counters, updated by the pacer on every change.
#[derive(Debug, Default)]
pub struct WindowStats {
    window: AtomicU64,
    in_flight: AtomicU64,
    queued: AtomicU64,
}

impl WindowStats {
    /// Stores the window's current figures.
    pub fn store(&self, v: WindowView) {
        self.window.store(u64::from(v.window), Ordering::Relaxed);
        self.in_flight
            .store(u64::from(v.in_flight), Ordering::Relaxed);
        self.queued.store(u64::from(v.queued), Ordering::Relaxed);
    }

    /// The figures as last stored.
    pub fn load(&self) -> WindowView {
        let get = |a: &AtomicU64| u32::try_from(a.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        WindowView {
            window: get(&self.window),
            in_flight: get(&self.in_flight),
            queued: get(&self.queued),
        }
    }
}

/// Counters kept per user agent.
#[derive(Debug, Default)]
pub struct UaStats {
    /// Datagrams and stream messages received on the user agent's flows and
    /// attributed to it (a response to one of its requests, or anything else
    /// arriving on a flow it opened).
    pub received: AtomicU64,
    /// Of those, messages dropped: unparsable, not a response, unknown
    /// branch, wrong Call-ID/CSeq, wrong source, oversized.
    pub dropped: AtomicU64,
    /// Requests sent (retransmissions included), counted when handed to the socket.
    pub sent: AtomicU64,
    /// Transport failures seen: failed sends, refused or lost connections,
    /// failed handshakes, ICMP errors (once per user agent per failure).
    pub transport_errors: AtomicU64,
    /// The pacing window of the registrar target the user agent used last.
    target: Mutex<Option<Arc<WindowStats>>>,
}

impl UaStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The window of the target used last: transactions allowed in flight,
    /// in flight, and registerers queued (all user agents on that target).
    /// `None` before the first request.
    pub fn window(&self) -> Option<WindowView> {
        self.lock().as_ref().map(|w| w.load())
    }

    /// Points the window figures at `target`'s window.
    pub(crate) fn follow(&self, target: &Arc<WindowStats>) {
        let mut t = self.lock();
        if !t.as_ref().is_some_and(|w| Arc::ptr_eq(w, target)) {
            *t = Some(target.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<WindowStats>>> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }
}
