//! Waiting for something to happen: a condition polled until it holds. The
//! bound only stops a test that would otherwise hang; running out of it means
//! "it never happened", never "it was too slow".

use std::time::{Duration, Instant};

/// The bound for things that happen within a second or two on an idle
/// machine: generous enough for a loaded one.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `cond` until it returns true (true) or `within` ran out (false).
pub fn until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    until_some(within, || cond().then_some(())).is_some()
}

/// Polls `f` until it returns something (that) or `within` ran out (None).
pub fn until_some<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
