//! A counting global allocator for the cost guards (`alloc_guard`,
//! `size_guard`): counts only on the thread that asked, only while asked;
//! and the authenticated registration both guards measure.
//! A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sipreg::core::message::Response;
use sipreg::core::options::{RegistererOptions, UserAgentConfig};
use sipreg::core::registerer::{Registerer, State};

use super::wire::Request;

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

/// One authenticated registration of `user<i>` at `now` — `Registerer` made,
/// REGISTER, 401 parsed and answered, REGISTER with digest, 200 parsed,
/// Registered — and what it cost inside the core. The user agent's settings
/// exist before and are shared (not counted); the test's copies of the wire
/// bytes go to a buffer sized beforehand (not counted either).
pub fn authenticated_registration(i: usize, now: Instant) -> (Registerer, Cost) {
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut ua = UserAgentConfig::new(&format!("sip:user{i}@127.0.0.1")).unwrap();
    ua.set_password(Some(&format!("pw-user{i}"))).unwrap();
    let ua = Arc::new(ua);
    let opts = RegistererOptions {
        registrar: Some("sip:127.0.0.1:5060".into()),
        ..Default::default()
    };
    let mut wire = Vec::with_capacity(4096);
    let (mut reg, c1) = measure(|| {
        let mut reg = Registerer::with_shared_config(&ua, &opts, i as u64 + 1).unwrap();
        reg.set_local_addr(local);
        reg.register(now).unwrap();
        let t = reg.poll_transmit().unwrap();
        wire.extend_from_slice(&t.bytes);
        reg
    });
    let first = Request::parse(&wire);
    let www =
        format!("WWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"nonce{i}\", qop=\"auth\"");
    let challenge = first.response(401, "Unauthorized", &[www, "Server: kamailio".into()]);
    wire.clear();
    let ((), c2) = measure(|| {
        let resp = Response::parse(&challenge).unwrap();
        reg.handle_response(now, &resp).unwrap();
        while reg.poll_event().is_some() {}
        let t = reg.poll_transmit().unwrap();
        wire.extend_from_slice(&t.bytes);
    });
    let second = Request::parse(&wire);
    assert!(second.header("Authorization").is_some());
    let ok = second.response(
        200,
        "OK",
        &[format!("Contact: <{}>;expires=600", second.contact_uri())],
    );
    let ((), c3) = measure(|| {
        let resp = Response::parse(&ok).unwrap();
        reg.handle_response(now, &resp).unwrap();
        while reg.poll_event().is_some() {}
    });
    assert_eq!(reg.state(), State::Registered);
    let cost = Cost {
        allocs: c1.allocs + c2.allocs + c3.allocs,
        bytes: c1.bytes + c2.bytes + c3.bytes,
        live: c1.live + c2.live + c3.live,
    };
    (reg, cost)
}
