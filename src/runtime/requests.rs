//! The application's request listeners: one sink per user agent, called by
//! the worker with each request the endpoint hands up, and the set of open
//! flows the API checks a flow id against before it queues an answer.
//!
//! Like the trace sinks: removing a sink off the worker thread returns only
//! once no call of it is running, so the application may then free what it
//! used; a request that finds no sink is answered by the endpoint as if
//! none was ever set (405). A user agent with a dispatcher gets its
//! requests on the application's thread, inside `sipreg_dispatcher_run`;
//! one its full queue cannot take is refused (503), one whose sink went
//! away while it waited is answered 405 by the worker.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::sinks::Sinks;
use super::UaId;
use crate::core::endpoint::FlowId;
use crate::core::options::Transport;

/// One request handed to the application.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The flow it came over (for answers and the application's messages).
    pub flow: FlowId,
    /// That flow as "proto:local -> remote".
    pub flow_text: String,
    /// Its transport.
    pub transport: Transport,
    /// Where it came from.
    pub remote: SocketAddr,
    /// Its method.
    pub method: String,
    /// The request as received (the top Via noting its source).
    pub bytes: Vec<u8>,
}

/// Receives the requests of one user agent, on the worker thread (or the
/// thread running the user agent's dispatcher).
pub type Sink = Arc<dyn Fn(&Incoming) + Send + Sync>;

/// What became of a request offered to a user agent's sink.
#[derive(Debug)]
pub enum Delivery {
    /// Called (or queued for the user agent's dispatcher).
    Delivered,
    /// No sink: it is answered as without a listener.
    NoListener(Incoming),
    /// The dispatcher's queue is full (or the dispatcher was freed): refused.
    Busy(Incoming),
}

static SINKS: Sinks<dyn Fn(&Incoming) + Send + Sync> = Sinks::new();

/// Installs (or with `None` removes) the request sink of user agent `ua`.
/// Off the worker thread it returns only once no call of the old sink is
/// running.
pub fn set_sink(ua: UaId, sink: Option<Sink>) {
    SINKS.set(ua, sink);
}

/// Offers `request` to user agent `ua`'s sink: called now on the worker, or
/// queued for its dispatcher.
pub fn deliver(ua: UaId, request: Incoming) -> Delivery {
    let Some(e) = SINKS.get(ua) else {
        return Delivery::NoListener(request);
    };
    let Some(d) = super::dispatch::route(ua) else {
        return match e.call(|sink| sink(&request)) {
            true => Delivery::Delivered,
            false => Delivery::NoListener(request),
        };
    };
    // The queue holds a copy: the request comes back if it cannot take one.
    let copy = request.clone();
    let queued = d.push(
        super::dispatch::Class::Droppable,
        Box::new(move || {
            if !e.call(|sink| sink(&copy)) {
                // Removed while it waited: the worker answers it as without.
                let _ = super::send(super::Command::Unheard {
                    ua,
                    flow: copy.flow,
                    from: Box::new((copy.remote, copy.bytes)),
                });
            }
        }),
    );
    if queued {
        Delivery::Delivered
    } else {
        Delivery::Busy(request)
    }
}

static OPEN: RwLock<Option<HashSet<u64>>> = RwLock::new(None);
static LAST_OPENED: AtomicU64 = AtomicU64::new(0);

/// The shell opened flow `id`.
pub(super) fn flow_opened(id: FlowId) {
    LAST_OPENED.fetch_max(id.0, Ordering::Relaxed);
    OPEN.write()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(id.0);
}

/// The shell closed flow `id`.
pub(super) fn flow_closed(id: FlowId) {
    if let Some(set) = OPEN.write().unwrap_or_else(|e| e.into_inner()).as_mut() {
        set.remove(&id.0);
    }
}

/// Whether flow `id` is open now.
pub fn flow_open(id: u64) -> bool {
    OPEN.read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&id))
}

/// Whether flow `id` was ever opened (else it is not a flow id at all).
pub fn flow_issued(id: u64) -> bool {
    id > 0 && id <= LAST_OPENED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_request_reaches_only_its_user_agent_and_none_after_removal() {
        let seen: Arc<Mutex<Vec<(UaId, String)>>> = Arc::default();
        let mk = |id: UaId| -> Sink {
            let seen = seen.clone();
            Arc::new(move |r: &Incoming| seen.lock().unwrap().push((id, r.method.clone())))
        };
        let (a, b) = (u64::MAX - 11, u64::MAX - 12);
        set_sink(a, Some(mk(a)));
        let req = Incoming {
            flow: FlowId(7),
            flow_text: "udp:127.0.0.1:1 -> 127.0.0.1:2".into(),
            transport: Transport::Udp,
            remote: "127.0.0.1:2".parse().unwrap(),
            method: "MESSAGE".into(),
            bytes: b"MESSAGE sip:a@b SIP/2.0\r\n\r\n".to_vec(),
        };
        assert!(matches!(deliver(a, req.clone()), Delivery::Delivered));
        assert!(
            matches!(deliver(b, req.clone()), Delivery::NoListener(_)),
            "no sink: the caller answers 405"
        );
        set_sink(a, None);
        assert!(matches!(deliver(a, req), Delivery::NoListener(_)));
        assert_eq!(*seen.lock().unwrap(), vec![(a, "MESSAGE".to_owned())]);
    }

    #[test]
    fn open_flows_are_tracked() {
        let id = FlowId(1_000_000_007);
        assert!(!flow_open(id.0));
        flow_opened(id);
        assert!(flow_open(id.0) && flow_issued(id.0));
        flow_closed(id);
        assert!(!flow_open(id.0) && flow_issued(id.0));
        assert!(!flow_issued(0));
    }
}
