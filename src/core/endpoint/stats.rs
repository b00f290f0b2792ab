//! Counters of a user agent, readable by the API at any moment without
//! asking the endpoint. The message counters count since the user agent was
//! created; the window is read live from the pacer's counters of the
//! registrar target this user agent used last, so a read is exact at that
//! moment.

use std::ops::Deref;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
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
    /// The address of the counters in `window` (0: none), so the endpoint
    /// sees the usual "same window again" without the lock. Written by the
    /// endpoint, and by `reset` once the last reference (the endpoint's
    /// among them) is gone.
    window_at: AtomicUsize,
}

/// The counters of one user agent, shared by its API handle and the
/// endpoint (a counted reference, like an `Arc`).
///
/// They live in blocks of [`BLOCK_SLOTS`] user agents rather than in an
/// allocation of their own: every request for a contact bumps its user
/// agent's counters, and at 10 000 contacts pinged in turn those are cold;
/// counters scattered over the heap cost a TLB miss each on top of the
/// cache miss, counters in a few dense blocks stay within the TLB's reach.
/// A slot freed by its last reference is reset and taken by the next user
/// agent (blocks are kept for reuse, never returned).
pub struct SharedStats {
    /// Its slot: blocks live as long as the process (see [`BLOCKS`]), so a
    /// plain reference, half the size of a block pointer and an index.
    place: &'static Slot,
}

/// User agents per block of counters (a block is about two pages).
pub const BLOCK_SLOTS: usize = 112;

/// One user agent's place in a block.
#[derive(Default)]
struct Slot {
    /// References to it ([`SharedStats`] clones); 0 when free.
    refs: AtomicUsize,
    stats: UaStats,
}

struct Block {
    slots: [Slot; BLOCK_SLOTS],
}

/// Every block made. Their slots are reused, never returned: this list
/// keeps each block reachable (leak checkers see it held) for the life of
/// the process.
static BLOCKS: Mutex<Vec<&'static Block>> = Mutex::new(Vec::new());

/// Free slots, the last freed handed out first.
static FREE: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

impl SharedStats {
    /// Counters for a new user agent, all zero.
    pub fn new() -> SharedStats {
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        let place = match free.pop() {
            Some(taken) => taken,
            None => {
                let block: &'static Block = Box::leak(Box::new(Block {
                    slots: std::array::from_fn(|_| Slot::default()),
                }));
                BLOCKS.lock().unwrap_or_else(|e| e.into_inner()).push(block);
                // Handed out in order, so user agents made together are neighbours.
                let (first, rest) = block.slots.split_at(1);
                free.extend(rest.iter().rev());
                &first[0]
            }
        };
        drop(free);
        place.refs.store(1, Ordering::Relaxed);
        SharedStats { place }
    }
}

impl Default for SharedStats {
    fn default() -> SharedStats {
        SharedStats::new()
    }
}

impl Clone for SharedStats {
    fn clone(&self) -> SharedStats {
        self.place.refs.fetch_add(1, Ordering::Relaxed);
        SharedStats { place: self.place }
    }
}

impl Drop for SharedStats {
    fn drop(&mut self) {
        if self.place.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // The last reference: every other use of the slot happened before.
        fence(Ordering::Acquire);
        self.place.stats.reset();
        FREE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.place);
    }
}

impl Deref for SharedStats {
    type Target = UaStats;
    fn deref(&self) -> &UaStats {
        &self.place.stats
    }
}

impl std::fmt::Debug for SharedStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl UaStats {
    /// All counters back to zero and no window (a slot about to be reused).
    fn reset(&self) {
        for c in [
            &self.received,
            &self.dropped,
            &self.requests,
            &self.answered,
            &self.sent,
            &self.transport_errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.window.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.window_at.store(0, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Follows the window of `target` from now on (the target last used).
    pub fn follow_window(&self, target: &Arc<WindowCounters>) {
        let at = Arc::as_ptr(target) as usize;
        // Held in `window` while its address is here, so no other counters
        // can have taken that address.
        if self.window_at.load(Ordering::Relaxed) == at {
            return;
        }
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if !w.as_ref().is_some_and(|c| Arc::ptr_eq(c, target)) {
            *w = Some(target.clone());
        }
        self.window_at.store(at, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One sits in every user agent's handle and entry, and beside each
    /// contact user in a flow's table.
    #[test]
    fn a_counted_reference_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<SharedStats>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn live_counters_have_their_own_slot_and_a_freed_slot_comes_back_zeroed() {
        let a = SharedStats::new();
        let b = SharedStats::new();
        UaStats::bump(&a.received);
        assert_eq!(b.received.load(Ordering::Relaxed), 0, "distinct slots");
        let a2 = a.clone();
        drop(a);
        UaStats::bump(&a2.received);
        assert_eq!(
            a2.received.load(Ordering::Relaxed),
            2,
            "a clone keeps the slot"
        );
        let at = std::ptr::from_ref::<UaStats>(&a2);
        drop(a2);
        // Other tests take slots too: look for ours among several new ones.
        let fresh: Vec<SharedStats> = (0..BLOCK_SLOTS * 2).map(|_| SharedStats::new()).collect();
        let reused = fresh
            .iter()
            .find(|s| std::ptr::eq(std::ptr::from_ref::<UaStats>(s), at));
        if let Some(s) = reused {
            assert_eq!(s.received.load(Ordering::Relaxed), 0, "reset on reuse");
        }
        let mut seen: Vec<*const UaStats> = fresh
            .iter()
            .map(|s| std::ptr::from_ref::<UaStats>(s))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), fresh.len(), "no slot handed out twice");
    }

    /// The window follows the target last used, back and forth.
    #[test]
    fn the_window_follows_the_last_target() {
        let (a, b) = (
            Arc::new(WindowCounters::default()),
            Arc::new(WindowCounters::default()),
        );
        let s = SharedStats::new();
        let shown = |s: &SharedStats| s.window.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for next in [&a, &a, &b, &b, &a] {
            s.follow_window(next);
            assert!(shown(&s).is_some_and(|w| Arc::ptr_eq(&w, next)));
        }
        assert_eq!(
            Arc::strong_count(&b),
            1,
            "the window left behind is not held"
        );
    }

    /// Whoever used a slot before (this test or one running beside it),
    /// it is handed out zero and without a window: checked on every slot
    /// taken, not only on one found again.
    #[test]
    fn every_slot_handed_out_is_zero_and_has_no_window() {
        let target = Arc::new(WindowCounters::default());
        for _ in 0..BLOCK_SLOTS * 3 {
            let s = SharedStats::new();
            let counters = [
                &s.received,
                &s.dropped,
                &s.requests,
                &s.answered,
                &s.sent,
                &s.transport_errors,
            ];
            for c in counters {
                assert_eq!(c.load(Ordering::Relaxed), 0);
                UaStats::bump(c);
            }
            assert!(s.window.lock().unwrap_or_else(|e| e.into_inner()).is_none());
            s.follow_window(&target);
            // The same counters as the slot's last user followed: still set.
            let w = s.window.lock().unwrap_or_else(|e| e.into_inner()).clone();
            assert!(w.is_some_and(|w| Arc::ptr_eq(&w, &target)));
            let kept = s.clone();
            drop(s);
            assert_eq!(kept.sent.load(Ordering::Relaxed), 1, "a clone keeps it");
        }
    }
}
