//! Library diagnostics, delivered to one application-supplied sink.
//!
//! Messages never contain passwords or credentials headers: callers log
//! status lines, addresses and CSeq numbers, not message bodies.

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, RwLock};

/// Severity, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something unexpected that the library handled.
    Warn = 2,
    /// Normal progress (requests sent, responses received).
    Info = 3,
    /// Details (retransmissions, dropped packets).
    Debug = 4,
}

/// Receives each log line.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<(Sink, Level)>> = RwLock::new(None);
/// The most verbose level the sink wants (0: no sink), read without the lock
/// on every [`enabled`] check (the per-request paths ask it often).
static MAX: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
/// Held (shared) while the sink runs, so replacing it can wait for running calls.
static GATE: RwLock<()> = RwLock::new(());

thread_local! {
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Installs (or with `None` removes) the sink and the most verbose level it
/// wants. Returns once no call of the old sink is running on another thread.
pub fn set_sink(sink: Option<Sink>, max: Level) {
    {
        let mut g = SINK.write().unwrap_or_else(|e| e.into_inner());
        MAX.store(
            if sink.is_some() { max as u8 } else { 0 },
            std::sync::atomic::Ordering::Relaxed,
        );
        *g = sink.map(|s| (s, max));
    }
    if !IN_SINK.with(Cell::get) {
        drop(GATE.write().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Whether a message at `level` would be delivered (skip formatting otherwise).
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX.load(std::sync::atomic::Ordering::Relaxed)
}

/// Delivers one message (a message logged from inside the sink is dropped).
pub fn emit(level: Level, msg: &str) {
    if IN_SINK.with(Cell::get) {
        return;
    }
    let _running = GATE.read().unwrap_or_else(|e| e.into_inner());
    let sink = match SINK.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some((s, max)) if level <= *max => s.clone(),
        _ => return,
    };
    IN_SINK.with(|f| f.set(true));
    // A sink that panics must not take the worker down with it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, msg)));
    IN_SINK.with(|f| f.set(false));
}

/// Names a registerer in log lines by its address of record and its id,
/// e.g. `sip:alice@example.com (registerer 13)`: with many accounts the id
/// alone says nothing to a person.
pub struct Who<'a> {
    /// The registerer's address of record.
    pub aor: &'a str,
    /// Its id (the same in every line about it).
    pub id: u64,
}

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (registerer {})", self.aor, self.id)
    }
}

/// Formats and emits only when the level is enabled.
#[macro_export]
macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::emit($level, &format!($($arg)*));
        }
    };
}
