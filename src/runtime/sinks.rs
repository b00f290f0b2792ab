//! One application callback per user agent (the trace sinks, the request
//! listeners): installed and removed from any thread, called on the worker
//! or the user agent's dispatcher thread. Removing one off the thread it
//! runs on returns only once no call of it is running, so the application
//! may then free what it used; a call that raced the removal does not start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::UaId;

/// The installed callback of one user agent.
pub(super) struct Entry<S: ?Sized> {
    sink: Arc<S>,
    /// Held (shared) while the sink runs, so removing it can wait for running calls.
    gate: RwLock<()>,
    /// Set before the entry is removed: a call that raced the removal does not start.
    removed: AtomicBool,
}

impl<S: ?Sized> Entry<S> {
    /// Runs `f` with the sink, unless it was removed meanwhile (then false).
    /// A sink that panics does not take its caller (the worker, or the
    /// dispatcher's loop) down with it.
    pub(super) fn call(&self, f: impl FnOnce(&S)) -> bool {
        let _running = self.gate.read().unwrap_or_else(|e| e.into_inner());
        if self.removed.load(Ordering::Acquire) {
            return false;
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&self.sink)));
        true
    }
}

/// The callbacks of every user agent, of one kind.
pub(super) struct Sinks<S: ?Sized> {
    map: RwLock<Option<HashMap<UaId, Arc<Entry<S>>>>>,
    /// How many are installed (a hot path skips everything at 0).
    active: AtomicUsize,
}

impl<S: ?Sized> Sinks<S> {
    /// None installed.
    pub(super) const fn new() -> Sinks<S> {
        Sinks {
            map: RwLock::new(None),
            active: AtomicUsize::new(0),
        }
    }

    /// Installs (or with `None` removes) the callback of user agent `ua`.
    /// Off the thread it runs on, returns only once no call of the old one
    /// is running.
    pub(super) fn set(&self, ua: UaId, sink: Option<Arc<S>>) {
        let old = {
            let mut g = self.map.write().unwrap_or_else(|e| e.into_inner());
            let map = g.get_or_insert_with(HashMap::new);
            let old = match sink {
                Some(sink) => map.insert(
                    ua,
                    Arc::new(Entry {
                        sink,
                        gate: RwLock::new(()),
                        removed: AtomicBool::new(false),
                    }),
                ),
                None => map.remove(&ua),
            };
            self.active.store(map.len(), Ordering::Release);
            old
        };
        if let Some(old) = old {
            old.removed.store(true, Ordering::Release);
            // Not on the thread the sink runs on (where it cannot be running
            // now, or is our caller); the worker never waits for a dispatcher.
            let on_its_thread = super::dispatch::route(ua).is_some_and(|d| d.is_current());
            if !super::on_worker_thread() && !on_its_thread {
                drop(old.gate.write().unwrap_or_else(|e| e.into_inner()));
            }
        }
    }

    /// The callback of user agent `ua`, if one is installed.
    pub(super) fn get(&self, ua: UaId) -> Option<Arc<Entry<S>>> {
        if !self.any() {
            return None;
        }
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.get(&ua).cloned())
    }

    /// Whether any user agent has one installed.
    pub(super) fn any(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }
}
