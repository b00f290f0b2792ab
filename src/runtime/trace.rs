//! Message trace: every SIP message a user agent sends or receives, handed to
//! the application's sink (like sngrep or pjsip's `msg_logging`), with
//! credentials redacted.
//!
//! The worker calls [`sent`] and [`received`] at its send and receive sites;
//! both return at once when no sink is installed for the user agent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::sinks::{Entry, Sinks};
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

static SINKS: Sinks<dyn Fn(&Record<'_>) + Send + Sync> = Sinks::new();

/// Installs (or with `None` removes) the trace sink of user agent `ua`. Off the
/// worker thread it returns only once no call of the old sink is running, so
/// whatever the old sink used may then be released.
pub fn set_sink(ua: UaId, sink: Option<Sink>) {
    SINKS.set(ua, sink);
}

/// Whether any user agent has a sink.
pub fn any_enabled() -> bool {
    SINKS.any()
}

/// Whether user agent `ua` has a sink (skip building the record otherwise).
pub fn enabled(ua: UaId) -> bool {
    SINKS.get(ua).is_some()
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
    if !SINKS.any() || bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Some(e) = SINKS.get(ua) else { return };
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
    e: &Entry<dyn Fn(&Record<'_>) + Send + Sync>,
    direction: Direction,
    transport: Transport,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    at: SystemTime,
    text: &str,
) {
    let record = Record {
        direction,
        transport,
        local,
        remote,
        at,
        message: text,
    };
    e.call(|sink| sink(&record));
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
