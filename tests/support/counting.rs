//! A counting global allocator for the cost guards (`alloc_guard`,
//! `size_guard`): counts only on the thread that asked, only while asked.
//! A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator and counts on the measuring thread.
pub struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn note_alloc(size: usize) {
    if counting() {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
        let _ = LIVE.try_with(|c| c.set(c.get() + size as i64));
    }
}

fn note_free(size: usize) {
    if counting() {
        let _ = LIVE.try_with(|c| c.set(c.get() - size as i64));
    }
}

// SAFETY: forwards to the system allocator; the counters are thread-local
// cells touched only on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A move to a new block: counted as an allocation of the new size.
        note_alloc(new_size);
        note_free(layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

/// What `f` cost on this thread: allocations, bytes allocated (freed or not)
/// and the change in live heap bytes.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    /// Allocations (a realloc counts as one).
    pub allocs: u64,
    /// Bytes requested in total.
    pub bytes: u64,
    /// Bytes still allocated afterwards minus before.
    pub live: i64,
}

/// Runs `f` with the counters on; returns what it returned and its cost.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Cost) {
    ALLOCS.with(|c| c.set(0));
    BYTES.with(|c| c.set(0));
    LIVE.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    let cost = Cost {
        allocs: ALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        live: LIVE.with(Cell::get),
    };
    (r, cost)
}
