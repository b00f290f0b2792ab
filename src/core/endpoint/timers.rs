//! The endpoint's deadlines: one per registerer (its core's next timer) and
//! one per stream flow that is not up yet (its handshake deadline).
//!
//! A moved deadline leaves its old entry behind; stale entries are dropped
//! when they reach the top, and the registerer heap is rebuilt from the live
//! deadlines when stale entries pile up (each reschedule leaves one).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::{FlowId, RegId};
use crate::core::compact::MaybeInstant;

/// Deadlines of registerers and flows.
#[derive(Debug, Default)]
pub struct Timers {
    /// An entry per registerer (and stale ones): instants in 8 bytes, so an
    /// entry takes 16, not 24.
    regs: BinaryHeap<Reverse<(MaybeInstant, RegId)>>,
    flows: BinaryHeap<Reverse<(Instant, FlowId)>>,
}

impl Timers {
    /// Schedules registerer `id` at `t`.
    pub fn push_reg(&mut self, t: Instant, id: RegId) {
        self.regs.push(Reverse((MaybeInstant::at(t), id)));
    }

    /// Schedules flow `id`'s handshake deadline at `t`.
    pub fn push_flow(&mut self, t: Instant, id: FlowId) {
        self.flows.push(Reverse((t, id)));
    }

    /// Whether the registerer heap holds more than `limit` entries (then the
    /// caller rebuilds it with [`rebuild_regs`](Self::rebuild_regs)).
    pub fn regs_over(&self, limit: usize) -> bool {
        self.regs.len() > limit
    }

    /// Replaces the registerer heap by the live deadlines, sized for the
    /// entries until the next rebuild (a doubled heap of stale entries cost
    /// more than a hundred bytes per registerer at 10 000).
    pub fn rebuild_regs(&mut self, live: impl Iterator<Item = (Instant, RegId)>, capacity: usize) {
        let mut v = Vec::with_capacity(capacity);
        v.extend(live.map(|(t, id)| Reverse((MaybeInstant::at(t), id))));
        self.regs = BinaryHeap::from(v);
    }

    /// The earliest live deadline: `reg_live(id, t)` / `flow_live(id, t)` say
    /// whether an entry is still current (stale ones are dropped).
    pub fn next(
        &mut self,
        reg_live: impl Fn(RegId, Instant) -> bool,
        flow_live: impl Fn(FlowId, Instant) -> bool,
    ) -> Option<Instant> {
        let mut next = None;
        while let Some(Reverse((t, id))) = self.regs.peek().copied() {
            // Always set: only instants are pushed.
            if let Some(t) = t.get().filter(|t| reg_live(id, *t)) {
                next = Some(t);
                break;
            }
            self.regs.pop();
        }
        while let Some(Reverse((t, id))) = self.flows.peek().copied() {
            if flow_live(id, t) {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
                break;
            }
            self.flows.pop();
        }
        next
    }

    /// The next registerer entry due at `now` (possibly stale: the caller checks).
    pub fn pop_reg(&mut self, now: Instant) -> Option<(Instant, RegId)> {
        match self.regs.peek() {
            Some(Reverse((t, _))) if *t <= MaybeInstant::at(now) => self
                .regs
                .pop()
                .and_then(|Reverse((t, id))| Some((t.get()?, id))),
            _ => None,
        }
    }

    /// The next flow entry due at `now` (possibly stale: the caller checks).
    pub fn pop_flow(&mut self, now: Instant) -> Option<FlowId> {
        match self.flows.peek() {
            Some(Reverse((t, _))) if *t <= now => self.flows.pop().map(|Reverse((_, f))| f),
            _ => None,
        }
    }
}
