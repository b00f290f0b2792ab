//! What crosses the endpoint's boundary: the bytes it asks the shell to
//! send, the actions it asks for, the views it publishes, and how the shell
//! reports a failed flow or a handshake's progress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{FlowId, RegId, UaId};
use crate::core::failure::{Failure, FailureKind};
use crate::core::options::{TlsSettings, Transport};
use crate::core::registerer::{Event, Registerer, State};
use crate::core::routing::RoutingFacts;
use crate::core::targets::Query;
use crate::core::uri::Host;

/// Bytes for the shell to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The flow to send on.
    pub flow: FlowId,
    /// Where to (a stream sends to its peer whatever this says).
    pub dest: SocketAddr,
    /// The user agent it is sent for (counters and trace).
    pub ua: UaId,
    /// The flow's transport.
    pub transport: Transport,
    /// The address it leaves from, as written in the message (for the trace).
    pub local: Option<SocketAddr>,
    /// What it is.
    pub kind: TransmitKind,
    /// The message.
    pub bytes: Vec<u8>,
}

/// What a [`Transmit`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransmitKind {
    /// A request, first sent.
    Request,
    /// A Timer E retransmission of one.
    Retransmission,
    /// A keep-alive: on a stream the shell sends the connection's own ping
    /// (CRLFCRLF, or a WebSocket PING) instead of the bytes.
    KeepAlive,
    /// A response to a request that reached our contact (the library's
    /// answer, or the application's).
    Response,
    /// The application's own request on its registered flow.
    Message,
}

/// How to reach a stream peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSpec {
    /// Transport to carry.
    pub transport: Transport,
    /// The peer.
    pub remote: SocketAddr,
    /// Local address to bind, if configured.
    pub local: Option<SocketAddr>,
    /// TLS for `tls` and `wss`.
    pub tls: Option<TlsSpec>,
    /// The upgrade of `ws` and `wss`.
    pub ws: Option<WsSpec>,
}

/// The TLS side of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSpec {
    /// Trust and name settings of the user agent.
    pub settings: TlsSettings,
    /// The host the registrar (or proxy) URI named (the default server name).
    pub host: Host,
}

/// What a WebSocket upgrade asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsSpec {
    /// `Host` header value.
    pub host: String,
    /// Request path.
    pub path: String,
    /// `Origin` header value (servers such as OpenSIPS refuse an upgrade without one).
    pub origin: String,
}

/// What the application can read about a registerer, as of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Current state.
    pub state: State,
    /// A request is in flight (or waits for the pacing window or DNS).
    pub waiting: bool,
    /// Dispose was called (or Terminated).
    pub disposing: bool,
    /// Retry-After of the last rejection.
    pub retry_after: Option<u32>,
    /// When the automatic retry is due.
    pub retry_at: Option<Instant>,
    /// Consecutive failures.
    pub failure_count: u32,
    /// Timer E retransmissions so far.
    pub retransmissions: u64,
    /// The address the registrar saw (Via received/rport).
    pub public_address: Option<SocketAddr>,
    /// What only changes with an event; `None` when the step fired none.
    pub facts: Option<Box<Facts>>,
    /// The flow in use, when it changed (shared by every registerer on it).
    pub flow: Option<Arc<ShownFlow>>,
    /// The flow in use (where the application's own messages go).
    pub flow_id: Option<FlowId>,
}

/// A flow as the application is shown it: "proto:local -> remote", made
/// once and shared by the registerers that send the same way (the endpoint
/// hands out the last one made while it still fits).
#[derive(Debug, PartialEq, Eq)]
pub struct ShownFlow {
    /// The transport's name (`udp`, `tcp`, ...).
    pub transport: &'static str,
    /// Our end.
    pub local: SocketAddr,
    /// The registrar's (or proxy's) end.
    pub remote: SocketAddr,
    /// "proto:local -> remote".
    pub text: Box<str>,
}

/// The parts of a [`View`] that change only with events.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    /// Contacts of the last 2xx (`None`: none).
    pub contacts: Option<crate::core::contact_list::ContactList>,
    /// The last final response (the reason shared with the registerer).
    pub last_response: Option<(u16, Arc<str>)>,
    /// Service-Route, Path and GRUUs of the last 2xx (`None`: none).
    pub routing: Option<Box<RoutingFacts>>,
    /// Why the last attempt failed (`None` after a success).
    pub failure: Option<Failure>,
}

/// Something for the shell to do.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Bind a UDP socket (on `local`, or the unspecified address of the
    /// family) and answer with [`Endpoint::flow_opened`].
    OpenUdp {
        /// The flow it becomes.
        flow: FlowId,
        /// The configured local address.
        local: Option<SocketAddr>,
        /// IPv6 (else IPv4).
        v6: bool,
    },
    /// Start a stream connection and answer with [`Endpoint::flow_opened`]
    /// (its local address), then [`Endpoint::flow_up`] or [`Endpoint::flow_failed`].
    Connect {
        /// The flow it becomes.
        flow: FlowId,
        /// Where and how.
        spec: ConnectSpec,
    },
    /// Close the flow (politely for a stream). Nothing is answered.
    Close {
        /// Which.
        flow: FlowId,
    },
    /// Find the local IP the kernel uses towards `target` and answer with
    /// [`Endpoint::route_found`].
    FindRoute {
        /// The destination.
        target: SocketAddr,
    },
    /// Resolve the registrar by RFC 3263 and answer with [`Endpoint::resolved`].
    Resolve {
        /// Who asked.
        reg: RegId,
        /// What to look up.
        query: Query,
    },
    /// A registerer's view changed; deliver its events (in order) to the application.
    Publish {
        /// Which.
        reg: RegId,
        /// Its view now.
        view: View,
        /// What happened, in order.
        events: Vec<Event>,
    },
    /// The registerer is gone from the endpoint (its handle was freed, or its
    /// user agent is being freed, and it is Terminated).
    Removed {
        /// Which.
        reg: RegId,
    },
    /// Every registerer of the user agent being freed is Terminated.
    UserAgentFreed {
        /// Which.
        ua: UaId,
    },
    /// A request for user agent `ua` (or a response to a request it sent
    /// with [`Endpoint::send_message`]), for its listener. If it has none
    /// any more, the shell answers [`Endpoint::unheard`].
    Request {
        /// Whose contact it reached.
        ua: UaId,
        /// The flow it came over (answers and the application's messages go there).
        flow: FlowId,
        /// That flow's transport.
        transport: Transport,
        /// Our end of the flow.
        local: Option<SocketAddr>,
        /// Where it came from.
        remote: SocketAddr,
        /// Its method (of a response: the method of its CSeq).
        method: String,
        /// The request as received, its top Via noting where it came from
        /// (`received`, `rport`; RFC 3261 §18.2.1); or the response.
        bytes: Vec<u8>,
    },
}

/// How far a stream's handshakes got (the shell reports each step with
/// [`Endpoint::flow_step`]); a deadline that passes names the step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HandshakeStep {
    /// TCP connecting.
    #[default]
    Connecting,
    /// TLS handshake running; `answered`: the server sent something.
    Tls {
        /// The server answered our ClientHello.
        answered: bool,
    },
    /// WebSocket upgrade sent, no answer yet.
    WebSocket,
}

impl HandshakeStep {
    /// What a handshake that stopped at this step failed of.
    pub fn timeout(self) -> Failure {
        match self {
            HandshakeStep::Connecting => {
                Failure::new(FailureKind::Transport, "TCP connect timed out")
            }
            HandshakeStep::Tls { answered: false } => Failure::new(
                FailureKind::Tls,
                "TLS handshake timed out (no TLS answer: is this a TLS port?)",
            ),
            HandshakeStep::Tls { answered: true } => Failure::new(
                FailureKind::Tls,
                "TLS handshake stalled after the server answered (it never finished its part)",
            ),
            HandshakeStep::WebSocket => Failure::new(
                FailureKind::Transport,
                "WebSocket upgrade timed out (no HTTP answer)",
            ),
        }
    }
}

/// A flow that failed or closed, as the shell saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowError {
    /// Transport (refused, reset, closed, timed out) or Tls (handshake,
    /// certificate), with the detail in plain words.
    pub failure: Failure,
    /// The flow had come up: its registered users re-register.
    pub established: bool,
}

impl FlowError {
    /// A transport failure with `detail`.
    pub fn transport(detail: impl Into<String>, established: bool) -> FlowError {
        FlowError {
            failure: Failure::new(FailureKind::Transport, detail),
            established,
        }
    }
}

/// The view of `core` now; `facts` when something happened that may change them.
pub(super) fn view_of(core: &Registerer, facts: bool) -> View {
    View {
        state: core.state(),
        waiting: core.is_waiting(),
        disposing: core.is_disposing(),
        retry_after: core.retry_after(),
        retry_at: core.retry_at(),
        failure_count: core.failure_count(),
        retransmissions: core.retransmissions(),
        public_address: core.public_address(),
        facts: facts.then(|| {
            let routing = core.routing();
            Box::new(Facts {
                contacts: core.shared_contacts(),
                last_response: core.shared_last_response(),
                routing: (*routing != RoutingFacts::EMPTY).then(|| Box::new(routing.clone())),
                failure: core.failure().cloned(),
            })
        }),
        flow: None,
        flow_id: None,
    }
}
