//! The runtime: the I/O shell around the core's endpoint. One worker thread
//! owns the endpoint (every registerer and flow), the sockets and the timers,
//! and fires the callbacks; it makes no protocol decision of its own.
//!
//! API calls do not wait for the worker: they check and update the per-handle
//! [`Shared`] state under a short lock and queue a [`Command`], so a callback may
//! call any function (including dispose of its own registerer). The exceptions
//! are the calls that remove a callback (`sipreg_registerer_free`, setting a
//! callback, `sipreg_set_log_callback`) off the thread the callback runs on:
//! they wait for a running call of the old callback, so that callback must
//! not wait for a lock the caller holds. `sipreg_user_agent_free` waits
//! (bounded) for dispose, except inside a callback.
//!
//! Callbacks run on the worker, or, for a user agent attached to a
//! [`dispatch::Dispatcher`], are queued there and run by the application's
//! thread; the worker never waits for them.

mod batch;
pub mod cause;
pub mod clock;
pub mod dispatch;
pub(crate) mod dns;
mod link;
pub mod requests;
pub mod resolve;
mod shell;
mod sinks;
mod stream;
pub mod tls;
pub mod trace;
mod udp;
mod ws;

pub use crate::core::endpoint::{pacing, RegId, SharedStats, UaId, UaStats};
pub use crate::log;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::ThreadId;

use crossbeam_channel::{Receiver, Sender};
use once_cell::sync::OnceCell;

use crate::core::compact::{MaybeAddr, MaybeInstant};
use crate::core::endpoint::FlowId;
use crate::core::failure::Failure;
use crate::core::id_table::{KIND_BITS, KIND_MASK};
use crate::core::message::{Reply, Request};
use crate::core::options::{RegistererOptions, UserAgentConfig};
use crate::core::registerer::{Event, Registerer, State};
use crate::core::routing::RoutingFacts;
use crate::error::Error;

/// Receives every event of one registerer with the failure of the last
/// attempt as of that event, on the worker thread or the dispatcher's.
pub trait EventSink: Send + Sync {
    /// One event, with the failure of the last attempt as of it.
    fn on_event(&self, e: &Event, failure: Option<&Failure>);
}

/// A registerer's listener, held weakly: it is the application-side handle
/// itself (no allocation of its own per registerer), and a handle already
/// dropped gets no calls.
pub type Listener = std::sync::Weak<dyn EventSink>;

/// What the application can read about a registerer without asking the worker.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Current state.
    pub state: State,
    /// Contact URIs of the last 2xx (`None`: none), shared with the core.
    pub contacts: Option<crate::core::contact_list::ContactList>,
    /// Retry-After of the last rejection.
    pub retry_after: Option<u32>,
    /// Reason phrase of the last final response (`None`: none yet).
    pub last_reason: Option<Arc<str>>,
    /// Its status (apart from the reason, the two pack into less room).
    pub last_status: u16,
    /// When the automatic retry is due.
    pub retry_at: MaybeInstant,
    /// Consecutive failures.
    pub failure_count: u32,
    /// A request is in flight in the worker.
    pub waiting: bool,
    /// register/unregister calls accepted but not yet run by the worker.
    pub claims: u16,
    /// dispose was called (or the handle freed).
    pub disposing: bool,
    /// Timer E retransmissions so far (saturating).
    pub retransmissions: u32,
    /// The flow requests went out on last ("proto:local -> remote" in its
    /// `text`), shared with the registerers on it.
    pub flow: Option<Arc<crate::core::endpoint::ShownFlow>>,
    /// The flow in use now (for the application's own messages), by its
    /// number; 0 for none (a flow's is never 0; 8 bytes, not 16).
    pub flow_id: u64,
    /// Service-Route, Path and GRUUs of the last 2xx; `None` when it had
    /// none (most registrars send none: no 96 bytes per handle for them).
    pub routing: Option<Box<RoutingFacts>>,
    /// The address the registrar saw (Via received/rport).
    pub public_address: MaybeAddr,
    /// Why the last attempt failed (`None` after a success).
    pub failure: Option<Arc<Failure>>,
}

impl Snapshot {
    /// Service-Route, Path and GRUUs of the last 2xx (empty when none).
    pub fn routing_facts(&self) -> &RoutingFacts {
        static NONE: RoutingFacts = RoutingFacts::EMPTY;
        self.routing.as_deref().unwrap_or(&NONE)
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            state: State::Initial,
            contacts: None,
            retry_after: None,
            last_reason: None,
            last_status: 0,
            retry_at: MaybeInstant::NONE,
            failure_count: 0,
            waiting: false,
            claims: 0,
            disposing: false,
            retransmissions: 0,
            flow: None,
            flow_id: 0,
            routing: None,
            public_address: MaybeAddr::None,
            failure: None,
        }
    }
}

/// State shared between the API side of a registerer handle and the worker.
#[derive(Default)]
pub struct Shared {
    /// The readable view, updated by the worker after every step.
    pub snapshot: Mutex<Snapshot>,
    /// Where events go; `None` silences the handle (after free).
    listener: Mutex<Option<Listener>>,
    /// Held (shared) while a callback runs, so removing the listener can wait for it.
    gate: RwLock<()>,
    /// Where the callbacks run: queued to this dispatcher, else on the worker.
    /// Fixed when the registerer is created.
    dispatcher: Option<Arc<dispatch::Dispatcher>>,
}

impl Shared {
    /// Locks the snapshot, surviving a poisoned lock (a panicking callback must not wedge the handle).
    pub fn snap(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shared state whose callbacks go to `dispatcher` (else run on the worker).
    pub fn new(dispatcher: Option<Arc<dispatch::Dispatcher>>) -> Shared {
        Shared {
            dispatcher,
            ..Shared::default()
        }
    }

    /// The dispatcher this registerer's callbacks go to, if any.
    pub fn dispatcher(&self) -> Option<&Arc<dispatch::Dispatcher>> {
        self.dispatcher.as_ref()
    }

    fn listener(&self) -> Option<Listener> {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The listener, if it is set and still alive (upgraded under the lock:
    /// no copy of the weak reference is made, one atomic count less).
    fn live_listener(&self) -> Option<Arc<dyn EventSink>> {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|l| l.upgrade())
    }

    /// Calls the listener for each event (with the failure as of the end of
    /// the step that made them), unless it was removed meanwhile; with a
    /// dispatcher, queues the calls there instead. A panicking listener
    /// cannot stop the worker. `failure` is the snapshot's, read by the
    /// caller under the lock it took to update the snapshot.
    pub(crate) fn deliver(self: &Arc<Self>, events: &[Event], failure: Option<Arc<Failure>>) {
        if let Some(d) = &self.dispatcher {
            if self.listener().is_none() {
                return; // freed: nothing to queue
            }
            let key = Arc::as_ptr(self) as usize as u64;
            for e in events {
                let class = match e {
                    Event::StateChanged(_) => dispatch::Class::Keep,
                    Event::Response { .. } => dispatch::Class::Coalesce(key, 1),
                    Event::RetryScheduled { .. } | Event::RetryStarted { .. } => {
                        dispatch::Class::Coalesce(key, 2)
                    }
                    Event::Failed(_) => dispatch::Class::Coalesce(key, 3),
                    Event::Note(_) | Event::Warning(_) => continue, // for the log only
                };
                let (shared, e, failure) = (self.clone(), e.clone(), failure.clone());
                d.push(class, Box::new(move || shared.call(&e, failure.as_deref())));
            }
            return;
        }
        for e in events {
            self.call(e, failure.as_deref());
        }
    }

    /// One listener call, on the thread that runs this handle's callbacks.
    /// The gate is taken per call, not per step: a thread replacing the
    /// listener waits for the call running, never for the step's others
    /// (which may wait on a lock that thread holds).
    fn call(&self, e: &Event, failure: Option<&Failure>) {
        let _running = self.gate.read().unwrap_or_else(|e| e.into_inner());
        // Looked up per event: a callback that frees its handle gets no more events.
        let Some(listener) = self.live_listener() else {
            return;
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            listener.on_event(e, failure)
        }));
    }

    /// Replaces the listener (`None` stops all callbacks for this handle).
    /// Called off the thread its callbacks run on (the worker, or the
    /// dispatcher's thread inside a run), it returns only once no callback
    /// of the old listener is running, so the caller may then free what the
    /// old listener used.
    pub fn set_listener(&self, l: Option<Listener>) {
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = l;
        let on_its_thread = match &self.dispatcher {
            Some(d) => d.is_current(),
            None => on_worker_thread(),
        };
        // The worker never waits for an application thread: a dispatcher
        // callback may itself be waiting for the worker.
        if !on_its_thread && !on_worker_thread() {
            drop(self.gate.write().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

/// Work for the worker thread.
pub enum Command {
    /// The user agent's settings changed: sockets opened later and every
    /// registerer's credentials follow the new values.
    UaConfig {
        /// Which user agent.
        id: UaId,
        /// New settings.
        config: Arc<UserAgentConfig>,
    },
    /// Re-bind sockets and re-register.
    NetworkChanged {
        /// Which user agent.
        id: UaId,
    },
    /// Dispose every registerer of the user agent, then drop it; `done` fires when all are Terminated.
    FreeUa {
        /// Which user agent.
        id: UaId,
        /// Signalled once every registerer was told to dispose (those with
        /// nothing on the wire are Terminated by then).
        started: Sender<()>,
        /// Signalled once everything is Terminated.
        done: Sender<()>,
    },
    /// A new registerer (validated by the caller).
    AddReg {
        /// Its id.
        id: RegId,
        /// Its user agent.
        ua: UaId,
        /// The state machine.
        core: Box<Registerer>,
        /// Shared view.
        shared: Arc<Shared>,
        /// Set for the user agent's first registerer, which introduces it:
        /// its counters here, its settings those `core` was made with. (Not
        /// a command of its own: a burst of account creations the worker
        /// falls behind on queues one command fewer per account.)
        new_ua: Option<SharedStats>,
    },
    /// `register()` accepted by the API, with headers for that request only
    /// (checked; usually none).
    Register(RegId, Vec<String>),
    /// `unregister(all)` accepted by the API, with headers for that request only.
    Unregister(RegId, bool, Vec<String>),
    /// `dispose()` accepted by the API.
    Dispose(RegId),
    /// The handle was freed: no more callbacks; dispose in the background.
    FreeReg(RegId),
    /// The application's answer to a request it was handed.
    Respond {
        /// The user agent answering.
        ua: UaId,
        /// The flow the request came over.
        flow: FlowId,
        /// The request as it was handed up.
        request: Vec<u8>,
        /// Status, reason, headers and body, checked (boxed, like the other
        /// rare large commands: a burst of account creations queues tens of
        /// thousands of commands, each as large as the largest kind).
        reply: Box<Reply>,
    },
    /// A request queued for a dispatcher whose sink was removed before it
    /// ran: answered as without a listener.
    Unheard {
        /// Whose request.
        ua: UaId,
        /// The flow it came over.
        flow: FlowId,
        /// Where it came from, and the request.
        from: Box<(SocketAddr, Vec<u8>)>,
    },
    /// The application's own message on a flow.
    SendMessage {
        /// The user agent sending.
        ua: UaId,
        /// The flow.
        flow: FlowId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// The resolver thread's answer for a registerer's targets.
    Resolved {
        /// Which registerer asked.
        id: RegId,
        /// The ordered targets, or why there are none (a DNS failure).
        result: Box<Result<crate::core::targets::TargetList, crate::core::failure::Failure>>,
    },
}

struct Runtime {
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
    thread: ThreadId,
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
/// The next sequence number of each kind of id (see [`next_id`]).
static NEXT_SEQ: [AtomicU64; 1 << KIND_BITS] = [const { AtomicU64::new(1) }; 1 << KIND_BITS];
/// A wake-up of the worker is on its way: commands queued meanwhile need no
/// other (10 000 accounts created in a loop cost one wake-up, not 50 000).
/// The worker clears it before it drains the queue.
pub(crate) static WAKE_PENDING: AtomicBool = AtomicBool::new(false);

fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME.get_or_try_init(|| {
        let (tx, rx): (Sender<Command>, Receiver<Command>) = crossbeam_channel::unbounded();
        let poll =
            mio::Poll::new().map_err(|e| Error::Internal(format!("cannot create poller: {e}")))?;
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), shell::WAKE_TOKEN)
                .map_err(|e| Error::Internal(format!("cannot create waker: {e}")))?,
        );
        let handle = std::thread::Builder::new()
            .name("sipreg-worker".into())
            .spawn(move || shell::Shell::new(poll, rx, Box::new(clock::SystemClock)).run())
            .map_err(|e| Error::Internal(format!("cannot start worker thread: {e}")))?;
        Ok(Runtime {
            commands: tx,
            waker,
            thread: handle.thread().id(),
        })
    })
}

/// Starts the worker thread if it is not running yet.
pub fn start() -> Result<(), Error> {
    runtime().map(|_| ())
}

/// What an id names: its low [`KIND_BITS`] bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum IdKind {
    /// A user agent.
    UserAgent = 1,
    /// A registerer.
    Registerer = 2,
    /// A set of registerer options.
    Options = 3,
    /// A dispatcher.
    Dispatcher = 4,
}

impl IdKind {
    /// The kind named by `id`'s low bits, if any.
    pub fn of(id: u64) -> Option<IdKind> {
        match id & KIND_MASK {
            1 => Some(IdKind::UserAgent),
            2 => Some(IdKind::Registerer),
            3 => Some(IdKind::Options),
            4 => Some(IdKind::Dispatcher),
            _ => None,
        }
    }

    /// What the C header calls a handle of this kind.
    pub fn name(self) -> &'static str {
        match self {
            IdKind::UserAgent => "sipreg_user_agent",
            IdKind::Registerer => "sipreg_registerer",
            IdKind::Options => "sipreg_registerer_options",
            IdKind::Dispatcher => "sipreg_dispatcher",
        }
    }
}

/// A fresh id of `kind`, never reused in the process: the kind's next
/// sequence number shifted left by [`KIND_BITS`], with the kind below it.
/// Ids of one kind are dense, so the tables keyed by them
/// ([`IdTable`](crate::core::id_table::IdTable)) hold them in pages; the
/// kind bits keep a handle of one kind from naming an object of another.
pub fn next_id(kind: IdKind) -> u64 {
    (NEXT_SEQ[kind as usize].fetch_add(1, Ordering::Relaxed) << KIND_BITS) | kind as u64
}

/// Queues a command and wakes the worker (starting it on first use).
pub fn send(cmd: Command) -> Result<(), Error> {
    let rt = runtime()?;
    rt.commands
        .send(cmd)
        .map_err(|_| Error::Internal("worker thread is gone".into()))?;
    if WAKE_PENDING.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    rt.waker.wake().map_err(|e| {
        WAKE_PENDING.store(false, Ordering::SeqCst);
        Error::Internal(format!("cannot wake worker: {e}"))
    })
}

/// Whether the caller is the worker thread (i.e. inside a callback).
pub fn on_worker_thread() -> bool {
    RUNTIME
        .get()
        .is_some_and(|rt| rt.thread == std::thread::current().id())
}

/// Creates registerer `id` of user agent `ua` (settings `config`) with
/// `options`: validated here, so bad options fail the call, then handed to
/// the worker. `seed` makes its random values (tests pass a fixed one).
pub fn add_registerer(
    id: RegId,
    ua: UaId,
    config: &Arc<UserAgentConfig>,
    options: &RegistererOptions,
    seed: u64,
    shared: Arc<Shared>,
    new_ua: Option<SharedStats>,
) -> Result<(), Error> {
    let core = Registerer::with_shared_config(config, options, seed)?;
    send(Command::AddReg {
        id,
        ua,
        core: Box::new(core),
        shared,
        new_ua,
    })
}

/// Whether the caller is inside a callback: on the worker, or running a
/// dispatcher's callbacks.
pub fn in_callback() -> bool {
    on_worker_thread() || dispatch::in_dispatch()
}

/// Accepts a `register()` call: checks and claims the handle, then queues it.
pub fn register(id: RegId, shared: &Shared, headers: Vec<String>) -> Result<(), Error> {
    claim(shared)?;
    send(Command::Register(id, headers))
}

/// Accepts an `unregister(all)` call.
pub fn unregister(
    id: RegId,
    shared: &Shared,
    all: bool,
    headers: Vec<String>,
) -> Result<(), Error> {
    claim(shared)?;
    send(Command::Unregister(id, all, headers))
}

/// Accepts a `dispose()` call; a second call reports Terminated.
pub fn dispose(id: RegId, shared: &Shared) -> Result<(), Error> {
    {
        let mut s = shared.snap();
        if s.disposing || s.state == State::Terminated {
            return Err(Error::Terminated);
        }
        s.disposing = true;
    }
    send(Command::Dispose(id))
}

fn claim(shared: &Shared) -> Result<(), Error> {
    let mut s = shared.snap();
    if s.disposing || s.state == State::Terminated {
        return Err(Error::Terminated);
    }
    if s.waiting || s.claims > 0 {
        return Err(Error::RequestPending);
    }
    s.claims = s.claims.saturating_add(1);
    Ok(())
}

/// Checks that flow `flow` is open now (an id that was never a flow is
/// invalid; a closed one is a transport error).
fn check_flow(flow: u64) -> Result<(), Error> {
    if !requests::flow_issued(flow) {
        return Err(Error::invalid(format!("{flow} is not a flow id")));
    }
    if !requests::flow_open(flow) {
        return Err(Error::Transport(format!("flow {flow} is closed")));
    }
    Ok(())
}

/// Accepts the application's answer to `request` (a request it was handed)
/// on `flow`: the request must be one that can be answered; the response is
/// built and sent by the worker.
pub fn respond(ua: UaId, flow: u64, request: &[u8], reply: Reply) -> Result<(), Error> {
    let req = Request::parse(request)
        .map_err(|e| Error::invalid(format!("request is not a SIP request: {e}")))?;
    if !req.answerable() {
        return Err(Error::invalid(
            "request has no readable Via, From, To, Call-ID or CSeq",
        ));
    }
    check_flow(flow)?;
    send(Command::Respond {
        ua,
        flow: FlowId(flow),
        request: request.to_vec(),
        reply: Box::new(reply),
    })
}

/// Accepts the application's own message for `flow`: a SIP request or
/// response of at most [`MAX_RESPONSE`](crate::core::message::MAX_RESPONSE) bytes.
pub fn send_message(ua: UaId, flow: u64, bytes: &[u8]) -> Result<(), Error> {
    use crate::core::message::{classify, Kind, Response};
    if bytes.len() > crate::core::message::MAX_RESPONSE {
        return Err(Error::invalid(format!(
            "message is {} bytes, at most {} fit a datagram",
            bytes.len(),
            crate::core::message::MAX_RESPONSE
        )));
    }
    let ok = match classify(bytes) {
        Kind::Request => Request::parse(bytes).map(|_| ()).map_err(|e| e.to_string()),
        Kind::Response => Response::parse(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Kind::KeepAlive | Kind::Junk => Err("not a SIP request or response".to_owned()),
    };
    ok.map_err(|e| Error::invalid(format!("message: {e}")))?;
    check_flow(flow)?;
    send(Command::SendMessage {
        ua,
        flow: FlowId(flow),
        bytes: bytes.to_vec(),
    })
}

/// Whether `id` was handed out by [`next_id`] (so a missing handle was freed, not forged).
pub fn was_issued(id: u64) -> bool {
    let seq = id >> KIND_BITS;
    IdKind::of(id).is_some_and(|k| seq > 0 && seq < NEXT_SEQ[k as usize].load(Ordering::Relaxed))
}

#[cfg(test)]
mod command_size {
    /// A burst of account creations queues tens of thousands of commands,
    /// each in a slot as large as the largest kind: the rare large ones are
    /// boxed. (120 bytes before they were.)
    #[test]
    fn a_command_takes_at_most_48_bytes() {
        assert!(std::mem::size_of::<super::Command>() <= 48);
    }

    /// One per registerer, in an `Arc`: at 168 bytes it is a 192-byte heap
    /// chunk (176 made it 208: the last status apart from its reason, the
    /// flow as its number, 32-bit retransmission and 16-bit claim counts).
    #[test]
    fn the_shared_state_takes_at_most_168_bytes() {
        assert!(std::mem::size_of::<super::Shared>() <= 168);
    }
}

#[cfg(test)]
mod ids {
    use super::{next_id, was_issued, IdKind, KIND_BITS};

    #[test]
    fn ids_of_one_kind_step_by_eight_and_carry_their_kind() {
        let a = next_id(IdKind::Registerer);
        let b = next_id(IdKind::Registerer);
        let u = next_id(IdKind::UserAgent);
        // Other tests take ids meanwhile: later, never equal, same kind bits.
        assert!(b > a && (b - a).is_multiple_of(1 << KIND_BITS));
        assert_eq!(a & 7, IdKind::Registerer as u64);
        assert_eq!(u & 7, IdKind::UserAgent as u64);
        assert!(was_issued(a) && was_issued(b) && was_issued(u));
    }

    #[test]
    fn ids_never_handed_out_are_told_apart() {
        let a = next_id(IdKind::Options);
        // The next one of the kind, not taken yet by this test's thread; far
        // ahead so other tests cannot have taken it either.
        assert!(!was_issued(a + (1 << 40)));
        // No kind 0, no sequence number 0, no kind beyond the last.
        assert!(!was_issued(0));
        assert!(!was_issued(a & !7));
        assert!(!was_issued(IdKind::Dispatcher as u64));
        assert!(!was_issued((1 << KIND_BITS) | 7));
    }
}
