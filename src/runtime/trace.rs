//! Message trace: every SIP message a user agent sends or receives, handed to
//! the application's sink (like sngrep or pjsip's `msg_logging`), with
//! credentials redacted.
//!
//! The worker calls [`sent`] and [`received`] at its send and receive sites;
//! both return at once when no sink is installed for the user agent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::UaId;
use crate::core::options::Transport;
use crate::core::redact::redact;

/// Which way a traced message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the library (retransmissions included).
    Sent,
    /// Received from the network (including what is then dropped).
    Received,
}

/// One traced message.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    /// Sent or received.
    pub direction: Direction,
    /// Transport it went over.
    pub transport: Transport,
    /// The library's end (`None` when the socket is already gone).
    pub local: Option<SocketAddr>,
    /// The peer's end.
    pub remote: SocketAddr,
    /// Wall-clock time it was sent or received.
    pub at: SystemTime,
    /// The message text, Authorization/Proxy-Authorization values redacted.
    pub message: &'a str,
}

/// Receives the records of one user agent, on the worker thread (or the
/// thread running the user agent's dispatcher).
pub type Sink = Arc<dyn Fn(&Record<'_>) + Send + Sync>;

struct Entry {
    sink: Sink,
    /// Held (shared) while the sink runs, so removing it can wait for running calls.
    gate: RwLock<()>,
    /// Set before the entry is removed: a call that raced the removal does not start.
    removed: AtomicBool,
}

static SINKS: RwLock<Option<HashMap<UaId, Arc<Entry>>>> = RwLock::new(None);
/// Number of installed sinks: the send/receive paths skip everything when 0.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Installs (or with `None` removes) the trace sink of user agent `ua`. Off the
/// worker thread it returns only once no call of the old sink is running, so
/// whatever the old sink used may then be released.
pub fn set_sink(ua: UaId, sink: Option<Sink>) {
    let old = {
        let mut g = SINKS.write().unwrap_or_else(|e| e.into_inner());
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
        ACTIVE.store(map.len(), Ordering::Release);
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

/// Whether user agent `ua` has a trace sink (cheap when none has).
/// Whether any user agent has a sink.
pub fn any_enabled() -> bool {
    ACTIVE.load(Ordering::Acquire) > 0
}

/// Whether user agent `ua` has a sink (skip building the record otherwise).
pub fn enabled(ua: UaId) -> bool {
    ACTIVE.load(Ordering::Acquire) > 0 && entry(ua).is_some()
}

fn entry(ua: UaId) -> Option<Arc<Entry>> {
    SINKS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&ua).cloned())
}

/// Traces a message the worker sent from `local` to `remote`.
pub fn sent(
    ua: UaId,
    transport: Transport,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    bytes: &[u8],
) {
    emit(ua, Direction::Sent, transport, local, remote, bytes);
}

/// Traces a message the worker received on `local` from `remote`.
pub fn received(
    ua: UaId,
    transport: Transport,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    bytes: &[u8],
) {
    emit(ua, Direction::Received, transport, local, remote, bytes);
}

fn emit(
    ua: UaId,
    direction: Direction,
    transport: Transport,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    bytes: &[u8],
) {
    // CRLF keep-alives (RFC 5626) are not SIP messages.
    if ACTIVE.load(Ordering::Acquire) == 0 || bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Some(e) = entry(ua) else { return };
    let at = SystemTime::now();
    let text = redact(&String::from_utf8_lossy(bytes));
    if let Some(d) = super::dispatch::route(ua) {
        // Run later on the application's thread; dropped if its queue is full.
        d.push(
            super::dispatch::Class::Droppable,
            Box::new(move || call(&e, direction, transport, local, remote, at, &text)),
        );
        return;
    }
    call(&e, direction, transport, local, remote, at, &text);
}

/// One call of a sink, unless it was removed meanwhile.
fn call(
    e: &Entry,
    direction: Direction,
    transport: Transport,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    at: SystemTime,
    text: &str,
) {
    let _running = e.gate.read().unwrap_or_else(|e| e.into_inner());
    if e.removed.load(Ordering::Acquire) {
        return;
    }
    let record = Record {
        direction,
        transport,
        local,
        remote,
        at,
        message: text,
    };
    // A sink that panics must not take the worker down with it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (e.sink)(&record)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn records_reach_only_their_user_agent_and_stop_after_removal() {
        let seen: Arc<Mutex<Vec<(UaId, Direction, String)>>> = Arc::default();
        let mk = |id: UaId| -> Sink {
            let seen = seen.clone();
            Arc::new(move |r: &Record<'_>| {
                seen.lock()
                    .unwrap()
                    .push((id, r.direction, r.message.to_owned()))
            })
        };
        let (a, b) = (u64::MAX - 1, u64::MAX - 2);
        set_sink(a, Some(mk(a)));
        set_sink(b, Some(mk(b)));
        let remote: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        sent(
            a,
            Transport::Udp,
            None,
            remote,
            b"REGISTER sip:x SIP/2.0\r\nAuthorization: Digest response=\"s3cr3t\"\r\n\r\n",
        );
        received(b, Transport::Tcp, None, remote, b"SIP/2.0 200 OK\r\n\r\n");
        set_sink(a, None);
        sent(a, Transport::Udp, None, remote, b"after removal");
        set_sink(b, None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!((seen[0].0, seen[0].1), (a, Direction::Sent));
        assert!(!seen[0].2.contains("s3cr3t"));
        assert_eq!((seen[1].0, seen[1].1), (b, Direction::Received));
        assert!(!enabled(a) && !enabled(b));
    }
}
