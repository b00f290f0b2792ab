//! Pacing: a window of REGISTER transactions in flight per registrar target.
//!
//! Pure bookkeeping, no I/O. A registerer that wants to start a transaction
//! asks for a slot ([`Pacer::request`]); it gets one at once while the target's
//! window has room, otherwise it waits in that target's queue, in order. The
//! window adapts like TCP's (AIMD): it grows by one per answered transaction
//! up to a threshold (slow start), then by one per window's worth of answers,
//! and halves on a Timer E retransmission or a 503 / timeout, at most once per
//! window's worth of answers (one loss event, one decrease). Initial
//! registrations, refreshes and un-REGISTERs share the window.

use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::core::idhash::IdMap;

/// Window a new target starts with.
pub const INITIAL_WINDOW: u32 = 32;
/// The window never shrinks below this.
pub const MIN_WINDOW: u32 = 4;
/// The window never grows past this.
pub const MAX_WINDOW: u32 = 64;

/// How a transaction that held a slot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A final response came (other than a 503).
    Answered,
    /// 503, timeout or transport failure: the target is overloaded or gone.
    Congested,
    /// Ended without an answer that says anything about the target (disposed, cancelled).
    Abandoned,
}

/// One target's window.
#[derive(Clone, Debug)]
struct Window<T> {
    cwnd: u32,
    ssthresh: u32,
    in_flight: u32,
    /// Answers counted towards the next additive increase.
    acked: u32,
    /// Answers still to come before another decrease is allowed.
    hold_decrease: u32,
    queue: VecDeque<T>,
    /// Entries of `queue` still waiting (cancelled ones are skipped lazily).
    waiting: u32,
}

impl<T> Window<T> {
    fn new() -> Self {
        Window {
            cwnd: INITIAL_WINDOW,
            ssthresh: MAX_WINDOW,
            in_flight: 0,
            acked: 0,
            hold_decrease: 0,
            queue: VecDeque::new(),
            waiting: 0,
        }
    }

    fn on_answer(&mut self) {
        self.hold_decrease = self.hold_decrease.saturating_sub(1);
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.acked += 1;
            if self.acked >= self.cwnd {
                self.acked = 0;
                self.cwnd += 1;
            }
        }
        self.cwnd = self.cwnd.min(MAX_WINDOW);
    }

    fn on_congestion(&mut self) {
        if self.hold_decrease > 0 {
            return;
        }
        self.cwnd = (self.cwnd / 2).max(MIN_WINDOW);
        self.ssthresh = self.cwnd;
        self.acked = 0;
        self.hold_decrease = self.cwnd;
    }
}

/// A target's window as the user agents' stats read it, kept current by the
/// pacer after every change (so a read is exact at that moment, whichever
/// user agent's registerer changed it last).
#[derive(Debug, Default)]
pub struct WindowCounters {
    window: AtomicU32,
    in_flight: AtomicU32,
    queued: AtomicU32,
}

impl WindowCounters {
    /// The window, transactions in flight and registerers queued, now.
    pub fn view(&self) -> WindowView {
        WindowView {
            window: self.window.load(Ordering::Acquire),
            in_flight: self.in_flight.load(Ordering::Acquire),
            queued: self.queued.load(Ordering::Acquire),
        }
    }

    fn store(&self, v: WindowView) {
        self.window.store(v.window, Ordering::Release);
        self.in_flight.store(v.in_flight, Ordering::Release);
        self.queued.store(v.queued, Ordering::Release);
    }
}

/// A target's window as stats show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowView {
    /// Transactions allowed in flight.
    pub window: u32,
    /// Transactions in flight.
    pub in_flight: u32,
    /// Registerers waiting for a slot.
    pub queued: u32,
}

/// Windows of every target, the slot holders, and who was just admitted.
#[derive(Debug)]
pub struct Pacer<K, T> {
    windows: IdMap<K, Window<T>>,
    /// Registerers holding a slot, with their target.
    holders: IdMap<T, K>,
    /// Registerers queued, with their target (an entry in a queue without one
    /// here was cancelled and is skipped).
    /// (The target as its number in `targets`: an entry takes 16 bytes, not
    /// 40, and in a burst every registerer is here.)
    waiting: IdMap<T, u32>,
    /// Every target seen, numbered in order (few: one per registrar address).
    targets: Vec<K>,
    /// The number of each target in `targets`.
    target_numbers: IdMap<K, u32>,
    /// Registerers given a slot off the queue, to be started by the caller.
    ready: VecDeque<T>,
    /// The live counters of every target seen (one per registrar address:
    /// kept when an idle window is forgotten, so readers never hold a stale one).
    counters: IdMap<K, Arc<WindowCounters>>,
}

impl<K: Copy + Eq + Hash, T: Copy + Eq + Hash> Default for Pacer<K, T> {
    fn default() -> Self {
        Pacer {
            windows: IdMap::default(),
            holders: IdMap::default(),
            waiting: IdMap::default(),
            targets: Vec::new(),
            target_numbers: IdMap::default(),
            ready: VecDeque::new(),
            counters: IdMap::default(),
        }
    }
}

impl<K: Copy + Eq + Hash, T: Copy + Eq + Hash> Pacer<K, T> {
    /// Asks for a slot for `id` towards `target`: `true` if it may start now,
    /// `false` if it was queued (behind everyone queued before it).
    pub fn request(&mut self, target: K, id: T) -> bool {
        if self.holders.contains_key(&id) {
            return true;
        }
        if self.waiting.contains_key(&id) {
            return false;
        }
        let w = self.windows.entry(target).or_insert_with(Window::new);
        let started = if w.in_flight < w.cwnd && w.waiting == 0 {
            w.in_flight += 1;
            self.holders.insert(id, target);
            true
        } else {
            w.queue.push_back(id);
            w.waiting += 1;
            let number = self.number(target);
            self.waiting.insert(id, number);
            false
        };
        self.publish(target);
        started
    }

    /// Whether `id` holds a slot.
    pub fn holds(&self, id: T) -> bool {
        self.holders.contains_key(&id)
    }

    /// The transaction of `id` ended with `outcome`; `id` keeps its slot for
    /// the follow-up it starts at once (the authenticated resend after a 401,
    /// the resend after a 423).
    pub fn renew(&mut self, id: T, outcome: Outcome) {
        if let Some(target) = self.holders.get(&id).copied() {
            self.account(target, outcome);
            self.fill(target);
        }
    }

    /// The transaction of `id` ended with `outcome` and nothing follows: its
    /// slot goes to the next queued registerer (see [`pop_ready`](Self::pop_ready)).
    /// Also drops `id` from a queue if it was waiting there.
    pub fn release(&mut self, id: T, outcome: Outcome) {
        if let Some(number) = self.waiting.remove(&id) {
            let target = self.targets[number as usize];
            // Lazily skipped when its turn comes; only the count changes now.
            if let Some(w) = self.windows.get_mut(&target) {
                w.waiting = w.waiting.saturating_sub(1);
            }
            self.publish(target);
            return;
        }
        let Some(target) = self.holders.remove(&id) else {
            return;
        };
        self.account(target, outcome);
        if let Some(w) = self.windows.get_mut(&target) {
            w.in_flight = w.in_flight.saturating_sub(1);
        }
        self.fill(target);
    }

    /// A Timer E retransmission towards `target`: a datagram was lost.
    pub fn retransmitted(&mut self, target: K) {
        if let Some(w) = self.windows.get_mut(&target) {
            w.on_congestion();
        }
        self.publish(target);
    }

    /// Next registerer that got a slot off a queue; the caller starts its transaction.
    pub fn pop_ready(&mut self) -> Option<T> {
        self.ready.pop_front()
    }

    /// The window of `target`.
    pub fn view(&self, target: K) -> WindowView {
        self.windows
            .get(&target)
            .map(|w| WindowView {
                window: w.cwnd,
                in_flight: w.in_flight,
                queued: w.waiting,
            })
            .unwrap_or(WindowView {
                window: INITIAL_WINDOW,
                ..WindowView::default()
            })
    }

    /// The live counters of `target` (created at the first request for it).
    pub fn counters(&mut self, target: K) -> &Arc<WindowCounters> {
        if !self.counters.contains_key(&target) {
            let c = Arc::new(WindowCounters::default());
            c.store(self.view(target));
            self.counters.insert(target, c);
        }
        &self.counters[&target]
    }

    /// The number of `target` in `targets` (given at its first request).
    fn number(&mut self, target: K) -> u32 {
        if let Some(n) = self.target_numbers.get(&target) {
            return *n;
        }
        let n = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        self.targets.push(target);
        self.target_numbers.insert(target, n);
        n
    }

    /// Brings the target's live counters up to date (if anyone reads them).
    fn publish(&self, target: K) {
        if let Some(c) = self.counters.get(&target) {
            c.store(self.view(target));
        }
    }

    fn account(&mut self, target: K, outcome: Outcome) {
        let Some(w) = self.windows.get_mut(&target) else {
            return;
        };
        match outcome {
            Outcome::Answered => w.on_answer(),
            Outcome::Congested => w.on_congestion(),
            Outcome::Abandoned => {}
        }
    }

    /// Hands free slots of `target` to its queue, in order.
    fn fill(&mut self, target: K) {
        let Some(w) = self.windows.get_mut(&target) else {
            return;
        };
        while w.in_flight < w.cwnd {
            let Some(id) = w.queue.pop_front() else { break };
            if self.waiting.remove(&id).is_none() {
                continue; // cancelled while queued
            }
            w.waiting = w.waiting.saturating_sub(1);
            w.in_flight += 1;
            self.holders.insert(id, target);
            self.ready.push_back(id);
        }
        // A burst's queue drained: its room goes back to the heap for what
        // the registrations keep, rather than sitting empty.
        if shrinks(w.queue.len(), w.queue.capacity()) {
            w.queue.shrink_to(w.queue.len() * 2);
        }
        if shrinks(self.waiting.len(), self.waiting.capacity()) {
            self.waiting.shrink_to(self.waiting.len() * 2);
        }
        if w.in_flight == 0 && w.waiting == 0 && w.cwnd == INITIAL_WINDOW {
            // Nothing learnt and nothing pending: forget the target.
            self.windows.remove(&target);
        }
        self.publish(target);
    }
}

/// Whether a queue of `len` entries in room for `capacity` should give
/// room back: under a quarter full and more than a few pages of it (halving
/// at a quarter keeps the shrinking amortised).
fn shrinks(len: usize, capacity: usize) -> bool {
    capacity > 1024 && len < capacity / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    type P = Pacer<u8, u32>;

    fn admitted(p: &mut P, target: u8, ids: std::ops::Range<u32>) -> Vec<u32> {
        ids.filter(|id| p.request(target, *id)).collect()
    }

    fn drain(p: &mut P) -> Vec<u32> {
        std::iter::from_fn(|| p.pop_ready()).collect()
    }

    #[test]
    fn the_initial_window_admits_and_queues_the_rest_in_order() {
        let mut p = P::default();
        let now: Vec<u32> = admitted(&mut p, 1, 0..100);
        assert_eq!(now, (0..INITIAL_WINDOW).collect::<Vec<_>>());
        let v = p.view(1);
        assert_eq!((v.window, v.in_flight, v.queued), (32, 32, 68));
        p.release(0, Outcome::Answered);
        // One answer in slow start: window 33, two slots free.
        assert_eq!(drain(&mut p), vec![32, 33]);
        p.release(1, Outcome::Answered);
        assert_eq!(drain(&mut p), vec![34, 35]);
    }

    #[test]
    fn a_drained_burst_gives_its_queue_room_back() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..20_000);
        let full = (p.waiting.capacity(), p.windows[&1].queue.capacity());
        assert!(full.0 >= 19_968 && full.1 >= 19_968, "{full:?}");
        let mut next = 0;
        while p.holds(next) {
            p.release(next, Outcome::Answered);
            next += 1;
            drain(&mut p);
        }
        assert_eq!(next, 20_000, "every one admitted in turn");
        assert!(p.waiting.capacity() <= 1024, "{}", p.waiting.capacity());
        assert!(p.windows.get(&1).is_none_or(|w| w.queue.capacity() <= 1024));
    }

    #[test]
    fn a_queued_registerer_cancelled_leaves_its_own_targets_queue() {
        let mut p = P::default();
        // Two targets with full windows and queues; ids of the second start at 1000.
        admitted(&mut p, 1, 0..40);
        admitted(&mut p, 2, 1000..1040);
        assert_eq!((p.view(1).queued, p.view(2).queued), (8, 8));
        // Cancelling a queued one counts against its own target only.
        p.release(1035, Outcome::Abandoned);
        assert_eq!((p.view(1).queued, p.view(2).queued), (8, 7));
        // A second request for a queued one keeps its place (not queued twice).
        assert!(!p.request(2, 1036));
        assert_eq!(p.view(2).queued, 7);
        // When slots free up on the second target, the cancelled one is skipped.
        p.release(1000, Outcome::Answered);
        p.release(1001, Outcome::Answered);
        assert_eq!(drain(&mut p), vec![1032, 1033, 1034, 1036]);
        assert_eq!(p.view(1).queued, 8);
    }

    #[test]
    fn targets_have_their_own_windows() {
        let mut p = P::default();
        assert_eq!(admitted(&mut p, 1, 0..40).len(), 32);
        assert!(p.request(2, 100), "another registrar is not held up");
    }

    #[test]
    fn halves_on_retransmission_once_per_window() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..32);
        p.retransmitted(1);
        assert_eq!(p.view(1).window, 16);
        p.retransmitted(1);
        assert_eq!(p.view(1).window, 16, "same loss event: one decrease");
        for id in 0..16 {
            p.release(id, Outcome::Answered);
        }
        // 16 answers later another loss may halve again.
        p.retransmitted(1);
        assert_eq!(p.view(1).window, 8);
        for _ in 0..10 {
            p.retransmitted(1);
            for id in 0..64 {
                p.renew(id, Outcome::Answered);
            }
        }
        assert!(p.view(1).window >= MIN_WINDOW);
    }

    #[test]
    fn a_503_halves_and_no_slot_is_handed_out_past_the_window() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..100);
        p.release(0, Outcome::Congested);
        assert_eq!(p.view(1).window, 16);
        assert!(drain(&mut p).is_empty(), "31 in flight > 16: nobody starts");
        for id in 1..16 {
            p.release(id, Outcome::Answered);
        }
        assert!(
            drain(&mut p).is_empty(),
            "16 in flight, window 16 (+ congestion avoidance)"
        );
        p.release(16, Outcome::Answered);
        assert_eq!(drain(&mut p), vec![32, 33], "window 17, 15 in flight");
    }

    #[test]
    fn additive_increase_after_a_decrease() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..1);
        p.release(0, Outcome::Congested);
        let w = p.view(1).window;
        assert_eq!(w, 16);
        for _ in 0..w {
            assert!(p.request(1, 7));
            p.release(7, Outcome::Answered);
        }
        assert_eq!(
            p.view(1).window,
            17,
            "one more per window's worth of answers"
        );
    }

    #[test]
    fn grows_to_the_cap_while_answers_come() {
        let mut p = P::default();
        for _ in 0..5000 {
            assert!(p.request(1, 7));
            p.release(7, Outcome::Answered);
        }
        assert_eq!(p.view(1).window, MAX_WINDOW);
    }

    #[test]
    fn renew_keeps_the_slot_for_the_follow_up() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..33);
        p.renew(0, Outcome::Answered); // 401 answered, authenticated resend follows
        assert!(p.holds(0));
        assert_eq!(drain(&mut p), vec![32], "the window grew by one");
        assert_eq!(p.view(1).in_flight, 33);
    }

    #[test]
    fn cancelled_while_queued_is_skipped() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..35);
        p.release(33, Outcome::Abandoned); // disposed while queued
        p.release(0, Outcome::Abandoned);
        p.release(1, Outcome::Abandoned);
        assert_eq!(drain(&mut p), vec![32, 34]);
        assert_eq!(
            p.view(1).window,
            32,
            "abandoned says nothing about the target"
        );
    }

    #[test]
    fn asking_twice_does_not_take_two_slots_or_places() {
        let mut p = P::default();
        admitted(&mut p, 1, 0..32);
        assert!(p.request(1, 5));
        assert!(!p.request(1, 40));
        assert!(!p.request(1, 40));
        assert_eq!(p.view(1).queued, 1);
    }

    #[test]
    fn live_counters_follow_every_change_and_skip_cancelled_entries() {
        let mut p = P::default();
        let c = p.counters(1).clone();
        admitted(&mut p, 1, 0..34);
        assert_eq!((c.view().in_flight, c.view().queued), (32, 2));
        p.release(33, Outcome::Abandoned); // cancelled while queued
        assert_eq!(c.view().queued, 1, "a cancelled entry is not counted");
        for id in 0..32 {
            p.release(id, Outcome::Abandoned);
        }
        assert_eq!(drain(&mut p), vec![32]);
        p.release(32, Outcome::Abandoned);
        let v = c.view();
        assert_eq!((v.window, v.in_flight, v.queued), (32, 0, 0));
        assert!(p.windows.is_empty(), "idle window forgotten");
        assert!(Arc::ptr_eq(&c, p.counters(1)), "its counters are kept");
    }

    #[test]
    fn idle_target_is_forgotten_only_when_nothing_was_learnt() {
        let mut p = P::default();
        assert!(p.request(1, 0));
        p.release(0, Outcome::Abandoned);
        assert!(p.windows.is_empty());
        assert!(p.request(1, 0));
        p.release(0, Outcome::Congested);
        assert_eq!(p.view(1).window, 16, "the lesson is kept");
    }
}
