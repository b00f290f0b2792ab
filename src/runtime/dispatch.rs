//! Dispatchers: callbacks queued for the application's thread instead of
//! run on the worker (the shape of c-ares' and libcurl multi's fd + "do the
//! work now" call).
//!
//! The worker never waits for the application: it queues a callback and
//! goes on. A file descriptor is readable while callbacks wait, so the
//! application's own loop (poll, GLib, Qt, libuv, asyncio) notices;
//! [`Dispatcher::run`] then runs them on the calling thread, in the order the
//! worker queued them.
//!
//! The queue is bounded in what it may keep for a slow (or stopped)
//! application: past [`CAPACITY`] waiting callbacks,
//! - state changes are still queued: they are never dropped;
//! - other registerer events are coalesced: a new one replaces the same
//!   registerer's older event of the same kind still waiting, so each
//!   registerer keeps at most one of each kind (memory stays proportional to
//!   the registerers, not to how long the application stalls); what was
//!   replaced stays readable through the accessors (last response, failure);
//! - message traces (and anything else queued as droppable) are dropped and
//!   counted.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::ThreadId;

use super::UaId;
use crate::error::Error;

/// Waiting callbacks past which the bound applies (see the module docs).
pub const CAPACITY: usize = 4096;

/// One queued callback.
pub type Job = Box<dyn FnOnce() + Send>;

/// How a callback is treated once the queue is past [`CAPACITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Always queued (state changes).
    Keep,
    /// Replaces the waiting callback with the same key (a registerer and an
    /// event kind), if any.
    Coalesce(u64, u8),
    /// Dropped and counted (message traces).
    Droppable,
}

struct Entry {
    seq: u64,
    key: Option<(u64, u8)>,
    /// `None`: replaced by a newer one of the same key.
    job: Option<Job>,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    /// Entries holding a job (not replaced).
    live: usize,
    next_seq: u64,
    /// The newest waiting entry of each key.
    newest: HashMap<(u64, u8), u64>,
    /// The fd was made readable and not yet drained.
    signalled: bool,
    dropped: u64,
    coalesced: u64,
}

/// Counters of one dispatcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Callbacks waiting.
    pub waiting: u64,
    /// Droppable callbacks dropped because the queue was full.
    pub dropped: u64,
    /// Events replaced by a newer one of the same registerer and kind.
    pub coalesced: u64,
}

/// A queue of callbacks for one application thread, with its wake-up fd.
pub struct Dispatcher {
    /// Distinguishes dispatchers in the thread-local "running" mark.
    id: u64,
    queue: Mutex<Queue>,
    /// Read end (the fd the application watches) and write end; `None` once freed.
    signal: Mutex<Option<(UnixStream, UnixStream)>>,
    fd: i32,
    /// The thread inside [`run`](Self::run), if any.
    running: Mutex<Option<ThreadId>>,
    /// The thread that called [`run`](Self::run) last: the application's
    /// loop thread, which must not block waiting for what only it delivers.
    home: Mutex<Option<ThreadId>>,
    closed: AtomicBool,
    /// User agents attached and registerers created with it, not yet freed.
    users: AtomicUsize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The dispatcher whose callbacks this thread is running (0: none).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Which user agents send their callbacks to which dispatcher.
static ROUTES: RwLock<Option<HashMap<UaId, Arc<Dispatcher>>>> = RwLock::new(None);
/// Number of routes: the delivery paths skip the lookup when 0.
static ROUTED: AtomicUsize = AtomicUsize::new(0);

impl Dispatcher {
    /// A new dispatcher with an empty queue (its fd not readable).
    pub fn new() -> Result<Dispatcher, Error> {
        let (rx, tx) = UnixStream::pair()
            .map_err(|e| Error::Internal(format!("cannot create the dispatcher's fd: {e}")))?;
        rx.set_nonblocking(true)
            .and_then(|()| tx.set_nonblocking(true))
            .map_err(|e| Error::Internal(format!("cannot set up the dispatcher's fd: {e}")))?;
        let fd = rx.as_raw_fd();
        Ok(Dispatcher {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Queue::default()),
            signal: Mutex::new(Some((rx, tx))),
            fd,
            running: Mutex::new(None),
            home: Mutex::new(None),
            closed: AtomicBool::new(false),
            users: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fd that is readable while callbacks wait (-1 once freed).
    pub fn fd(&self) -> i32 {
        if self.closed.load(Ordering::Acquire) {
            -1
        } else {
            self.fd
        }
    }

    /// Queues `job` (never blocks, never runs it here). False when it was
    /// dropped: the queue was full and `class` is droppable, or the
    /// dispatcher was freed.
    pub fn push(&self, class: Class, job: Job) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let mut q = self.lock();
        let full = q.live >= CAPACITY;
        let key = match class {
            Class::Keep => None,
            Class::Coalesce(a, b) => Some((a, b)),
            Class::Droppable if full => {
                q.dropped += 1;
                return false;
            }
            Class::Droppable => None,
        };
        if let (true, Some(k)) = (full, key) {
            if let Some(old) = q.newest.get(&k).copied() {
                let front = q.entries.front().map_or(old, |e| e.seq);
                let at = usize::try_from(old - front).unwrap_or(usize::MAX);
                if let Some(e) = q.entries.get_mut(at).filter(|e| e.seq == old) {
                    e.job = None;
                    q.live -= 1;
                    q.coalesced += 1;
                }
            }
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        if let Some(k) = key {
            q.newest.insert(k, seq);
        }
        q.entries.push_back(Entry {
            seq,
            key,
            job: Some(job),
        });
        q.live += 1;
        if !q.signalled {
            q.signalled = true;
            self.signal_ready();
        }
        true
    }

    /// Makes the fd readable (called under the queue lock).
    fn signal_ready(&self) {
        let g = self.signal.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = g.as_ref() {
            // A full socket buffer still leaves the fd readable: fine to ignore.
            let _ = (&*tx).write(&[1]);
        }
    }

    /// Makes the fd unreadable again (called under the queue lock, queue empty).
    fn drain_signal(&self) {
        let g = self.signal.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((rx, _)) = g.as_ref() {
            let mut buf = [0u8; 64];
            loop {
                match (&*rx).read(&mut buf) {
                    Ok(n) if n == buf.len() => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
    }

    /// Runs up to `max` waiting callbacks (0: those waiting when it starts,
    /// not the ones they cause) on this thread, in order; returns how many
    /// ran. A callback that panics is caught and counted as run. Fails while
    /// another `run` of this dispatcher is in progress (on another thread, or
    /// from one of its own callbacks).
    pub fn run(&self, max: u32) -> Result<u32, Error> {
        {
            let mut r = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_some() {
                return Err(Error::RequestPending);
            }
            *r = Some(std::thread::current().id());
        }
        *self.home.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
        let _done = ResetOnDrop(self);
        let mut budget = if max == 0 {
            self.lock().entries.len()
        } else {
            usize::MAX
        };
        let limit = if max == 0 { u32::MAX } else { max };
        let mut ran = 0u32;
        let outer = CURRENT.with(|c| c.replace(self.id));
        while ran < limit && budget > 0 {
            let job = {
                let mut q = self.lock();
                let Some(e) = q.entries.pop_front() else {
                    break;
                };
                if let Some(k) = e.key {
                    if q.newest.get(&k) == Some(&e.seq) {
                        q.newest.remove(&k);
                    }
                }
                if e.job.is_some() {
                    q.live -= 1;
                }
                e.job
            };
            budget -= 1;
            let Some(job) = job else { continue };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            ran += 1;
        }
        CURRENT.with(|c| c.set(outer));
        let mut q = self.lock();
        if q.entries.is_empty() {
            if q.newest.capacity() > 64 {
                q.newest = HashMap::new();
            }
            if q.signalled {
                q.signalled = false;
                self.drain_signal();
            }
        }
        Ok(ran)
    }

    /// Counters (waiting, dropped, coalesced).
    pub fn stats(&self) -> Stats {
        let q = self.lock();
        Stats {
            waiting: q.live as u64,
            dropped: q.dropped,
            coalesced: q.coalesced,
        }
    }

    /// One more user agent or registerer delivers through this dispatcher.
    pub fn add_user(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }

    /// One user agent or registerer stopped delivering through it.
    pub fn remove_user(&self) {
        let _ = self
            .users
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// User agents and registerers that still deliver through it.
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Acquire)
    }

    /// Frees the queue and the fd: what waits is dropped, later pushes are refused.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let jobs = std::mem::take(&mut *self.lock());
        // The jobs are dropped outside the lock (they may own handles).
        drop(jobs);
        *self.signal.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether this thread is the one that ran the dispatcher last (its
    /// application loop's thread).
    pub fn is_home(&self) -> bool {
        *self.home.lock().unwrap_or_else(|e| e.into_inner()) == Some(std::thread::current().id())
    }

    /// Whether this thread is running this dispatcher's callbacks now.
    pub fn is_current(&self) -> bool {
        CURRENT.with(Cell::get) == self.id
    }
}

struct ResetOnDrop<'a>(&'a Dispatcher);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        *self.0.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Whether this thread is running callbacks of some dispatcher now.
pub fn in_dispatch() -> bool {
    CURRENT.with(Cell::get) != 0
}

/// Sends the callbacks of user agent `ua` (its trace, and registerers
/// created afterwards) to `d`, or back to the worker with `None`.
pub fn attach(ua: UaId, d: Option<Arc<Dispatcher>>) {
    let mut g = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(d) = &d {
        d.add_user();
    }
    let old = match d {
        Some(d) => map.insert(ua, d),
        None => map.remove(&ua),
    };
    if let Some(old) = old {
        old.remove_user();
    }
    ROUTED.store(map.len(), Ordering::Release);
}

/// The dispatcher user agent `ua` delivers through, if any.
pub fn route(ua: UaId) -> Option<Arc<Dispatcher>> {
    if ROUTED.load(Ordering::Acquire) == 0 {
        return None;
    }
    ROUTES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&ua).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn readable(fd: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn runs_in_order_on_the_caller_and_the_fd_follows_the_queue() {
        let d = Dispatcher::new().unwrap();
        assert!(!readable(d.fd()));
        let seen = Arc::new(StdMutex::new(Vec::new()));
        for i in 0..5 {
            let seen = seen.clone();
            let me = std::thread::current().id();
            d.push(
                Class::Keep,
                Box::new(move || {
                    assert_eq!(std::thread::current().id(), me);
                    seen.lock().unwrap().push(i);
                }),
            );
        }
        assert!(readable(d.fd()));
        assert_eq!(d.run(2).unwrap(), 2);
        assert!(readable(d.fd()), "three still wait");
        assert_eq!(d.run(0).unwrap(), 3);
        assert!(!readable(d.fd()));
        assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(d.stats().waiting, 0);
    }

    #[test]
    fn a_full_queue_keeps_states_coalesces_events_and_drops_traces() {
        let d = Arc::new(Dispatcher::new().unwrap());
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let push = |class: Class, tag: String| {
            let seen = seen.clone();
            d.push(class, Box::new(move || seen.lock().unwrap().push(tag)))
        };
        for i in 0..CAPACITY {
            assert!(push(Class::Droppable, format!("trace {i}")));
        }
        assert!(!push(Class::Droppable, "trace over".into()));
        assert!(push(Class::Keep, "state 1".into()));
        assert!(push(Class::Coalesce(7, 1), "response a".into()));
        assert!(push(Class::Coalesce(7, 1), "response b".into()));
        assert!(push(Class::Coalesce(8, 1), "response other".into()));
        assert!(push(Class::Keep, "state 2".into()));
        let s = d.stats();
        assert_eq!((s.dropped, s.coalesced), (1, 1));
        assert_eq!(d.run(0).unwrap() as usize, CAPACITY + 4);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[CAPACITY..].to_vec(),
            vec!["state 1", "response b", "response other", "state 2"]
        );
    }

    #[test]
    fn run_zero_runs_what_waited_not_what_it_causes_and_refuses_reentry() {
        let d = Arc::new(Dispatcher::new().unwrap());
        let inner = d.clone();
        let reentry = Arc::new(StdMutex::new(None));
        let r2 = reentry.clone();
        d.push(
            Class::Keep,
            Box::new(move || {
                *r2.lock().unwrap() = Some(inner.run(0).is_err());
                assert!(inner.is_current() && in_dispatch());
                inner.push(Class::Keep, Box::new(|| {}));
            }),
        );
        assert_eq!(d.run(0).unwrap(), 1);
        assert_eq!(*reentry.lock().unwrap(), Some(true));
        assert!(readable(d.fd()), "the callback's own push waits");
        assert_eq!(d.run(0).unwrap(), 1);
        assert!(!in_dispatch());
        d.close();
        assert_eq!(d.fd(), -1);
        assert!(!d.push(Class::Keep, Box::new(|| {})));
    }
}
