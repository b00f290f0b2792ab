//! The registerer state machine: SIP.js `Registerer` semantics, sans-IO.
//!
//! Inputs are API calls, responses, transport events and timer expiries, each with
//! the current `now`. Outputs are queued: bytes to send ([`Transmit`]) and
//! [`Event`]s for the application; [`Registerer::poll_timeout`] says when to call
//! [`Registerer::handle_timeout`] next.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::digest::{self, Answer, Challenge};
use super::keepalive::{Failure, KeepAlive, Mechanism};
use super::message::Response;
use super::options::{RegistererOptions, Settings, UserAgentConfig};
use super::rand::Rng;
use super::refresh;
use super::request::{self, AuthHeader, ContactSpec, RequestParts};
use super::routing::RoutingFacts;
use super::targets::{Query, Target, TargetList};
use super::transaction::{ClientTransaction, Delivery, TimerOutcome};
use super::uri::Uri;
use crate::error::Error;

/// SIP.js `RegistererState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, nothing sent yet.
    Initial,
    /// The registrar holds our binding.
    Registered,
    /// Not registered (after an un-REGISTER, a failure or an expiry).
    Unregistered,
    /// Disposed; final.
    Terminated,
}

/// Something the application should hear about, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The state changed (never twice to the same state in a row).
    StateChanged(State),
    /// A final response ended a transaction (408 / 503 are synthesised for
    /// timeouts and transport errors, as SIP.js does).
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// An automatic retry was scheduled after a transient failure.
    RetryScheduled {
        /// Delay until the retry.
        delay: Duration,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// The scheduled retry REGISTER is being sent now.
    RetryStarted {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// A diagnostic for the log (never contains credentials).
    Note(String),
}

/// A request (or retransmission) to send to the registerer's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The complete SIP message.
    pub bytes: Vec<u8>,
    /// True for a Timer E retransmission.
    pub retransmission: bool,
}

/// Why a response was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// No transaction of ours has that branch.
    UnknownBranch,
    /// Branch matched but Call-ID or CSeq did not.
    WrongDialogue,
    /// The registerer is terminated.
    Terminated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Register,
    Unregister { all: bool },
}

/// Per-logical-request bookkeeping: a REGISTER and its auth / 423 follow-ups.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    tx: ClientTransaction,
    /// The transaction has started (its timers run and its first send is owed).
    /// A paced registerer waits for the runtime's [`Registerer::admit`].
    admitted: bool,
    /// The message, written when the runtime first polls it (so Via and
    /// Contact carry the socket it really leaves from); retransmissions reuse it.
    bytes: Option<Vec<u8>>,
    cseq: u32,
    /// Authorization headers, computed at admission.
    auth: Vec<(AuthHeader, String)>,
    expires_sent: u32,
    stale_sent: Vec<String>,
    /// Our contact URI as written in this request (what its 2xx must list).
    sent_contact: Option<String>,
    /// The address in that contact (local, or public after a rewrite).
    contact_addr: Option<SocketAddr>,
    /// Sent with RFC 5626 outbound (reg-id, `;ob`, `Supported: outbound`).
    outbound: bool,
    /// Sent because a 2xx reported a new public address (loop guard).
    rewrite: bool,
    /// 423 resends in this request (loop guard).
    interval_rounds: u8,
    /// (realm, proxy, nonce) of every credential sent for this request.
    answered: Vec<(String, bool, String)>,
    stale_retries: u8,
    new_nonce_retry_used: bool,
    auth_rounds: u8,
}

/// A completed transaction absorbing retransmitted finals until Timer K: only
/// what matching needs (the transaction itself is freed when it completes).
#[derive(Debug)]
struct Lingering {
    /// The branch after our cookie and key (every branch of ours is
    /// `z9hG4bK` + key + this), inline rather than a string on the heap.
    tail: [u8; TAIL_LEN],
    cseq: u32,
    /// Timer K.
    until: Instant,
}

#[derive(Clone, Debug)]
struct AuthEntry {
    proxy: bool,
    challenge: Challenge,
    nc: u32,
}

/// Sends owed to the runtime, in order: the first send of the request (if
/// not taken yet), then Timer E retransmissions. Two counters instead of a
/// queue: nothing on the heap.
#[derive(Debug, Default)]
struct Owed {
    first: bool,
    retransmissions: u32,
}

impl Owed {
    fn is_empty(&self) -> bool {
        !self.first && self.retransmissions == 0
    }

    /// The next send: `Some(true)` for a retransmission.
    fn front(&self) -> Option<bool> {
        if self.first {
            Some(false)
        } else {
            (self.retransmissions > 0).then_some(true)
        }
    }

    fn pop_front(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.retransmissions = self.retransmissions.saturating_sub(1);
        }
    }

    fn clear(&mut self) {
        *self = Owed::default();
    }

    /// Only the first send of a new transaction is owed.
    fn owe_first(&mut self) {
        *self = Owed {
            first: true,
            retransmissions: 0,
        };
    }

    fn owe_retransmission(&mut self) {
        self.retransmissions = self.retransmissions.saturating_add(1);
    }
}

/// Cap on authenticated resends per request, whatever the realms (loop guard).
const MAX_AUTH_ROUNDS: u8 = 6;
/// Cap on consecutive `stale=true` retries.
const MAX_STALE_RETRIES: u8 = 3;
/// Cap on 423 resends per request, even when Min-Expires keeps growing.
const MAX_INTERVAL_ROUNDS: u8 = 3;

/// One registration of one contact for one address of record.
#[derive(Debug)]
pub struct Registerer {
    settings: Settings,
    rng: Rng,
    /// Random, ASCII, inline: saves a heap string per registerer.
    key: [u8; KEY_LEN],
    state: State,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    local: Option<SocketAddr>,
    bound_contact: Option<String>,
    stale_contacts: Vec<String>,
    /// The request in flight; boxed, so an idle registerer keeps only a pointer.
    pending: Option<Box<Pending>>,
    /// Completed transactions absorbing retransmitted finals until Timer K, with their CSeq.
    lingering: Vec<Lingering>,
    refresh_at: Option<Instant>,
    expire_at: Option<Instant>,
    retry_at: Option<Instant>,
    dispose_deadline: Option<Instant>,
    rebind_wanted: bool,
    dispose_resent: bool,
    auth: Vec<AuthEntry>,
    /// Contacts of the last 2xx, shared with the runtime's snapshot (`None`: none).
    contacts: Option<Arc<[String]>>,
    retry_after: Option<u32>,
    last_response: Option<(u16, String)>,
    failures: u32,
    retransmissions: u64,
    timed_out: bool,
    events: VecDeque<Event>,
    /// Sends owed to the runtime: `true` for a retransmission.
    transmits: Owed,
    /// Public address written in our Contact instead of the local one (contact rewrite).
    contact_public: Option<SocketAddr>,
    /// The address the registrar last saw us at (Via received/rport of a 2xx).
    public_address: Option<SocketAddr>,
    /// A 439 said the first hop lacks outbound: register without it from now on.
    outbound_refused: bool,
    /// The last 2xx confirmed outbound for our flow (`Require: outbound`).
    outbound_in_use: bool,
    /// Service-Route, Path and GRUUs of the last 2xx; boxed and only when the
    /// registrar sent any (most send none).
    routing: Option<Box<RoutingFacts>>,
    /// Keep-alive state of the flow; created by the first keep-alive start
    /// (off by default), so most registerers keep only a null pointer.
    keepalive: Option<Box<KeepAlive>>,
    /// Set when the flow failed, until the runtime takes it and replaces the flow.
    flow_failed: bool,
    /// RFC 3263 targets of a host-name registrar (`None`: the runtime sends
    /// to one fixed address).
    targets: Option<Box<TargetList>>,
    /// A request waits for the runtime's resolution of the targets.
    awaiting_targets: bool,
    /// The runtime has not been asked for that resolution yet.
    resolution_wanted: bool,
    /// Transactions wait for [`Registerer::admit`] (the runtime's pacing window).
    paced: bool,
}

/// What [`Registerer::routing`] and [`Registerer::keepalive`] show without state.
static NO_ROUTING: RoutingFacts = RoutingFacts::EMPTY;
static NO_KEEPALIVE: KeepAlive = KeepAlive::IDLE;

/// Length of the per-registerer key at the start of every branch (after the cookie).
pub const KEY_LEN: usize = 10;
const COOKIE: &str = "z9hG4bK";
/// Length of the random part of a branch, after the cookie and the key.
const TAIL_LEN: usize = 12;

/// The registerer key embedded in a Via branch, used by the runtime to route responses.
pub fn branch_key(branch: &str) -> Option<&str> {
    branch.strip_prefix(COOKIE)?.get(..KEY_LEN)
}

/// A list to share, `None` when empty (no allocation for it).
fn shared(list: Vec<String>) -> Option<Arc<[String]>> {
    (!list.is_empty()).then(|| list.into())
}

fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 480 | 500 | 502 | 503 | 504)
        || ((600..700).contains(&status) && status != 603)
}

impl Registerer {
    /// Validates `options` against the user agent and creates an Initial registerer.
    /// Nothing is sent until [`register`](Self::register).
    pub fn new(
        ua: &UserAgentConfig,
        options: &RegistererOptions,
        seed: u64,
    ) -> Result<Registerer, Error> {
        Registerer::with_shared_config(&Arc::new(ua.clone()), options, seed)
    }

    /// [`new`](Self::new) sharing the user agent's settings instead of copying them.
    pub fn with_shared_config(
        ua: &Arc<UserAgentConfig>,
        options: &RegistererOptions,
        seed: u64,
    ) -> Result<Registerer, Error> {
        let settings = options.validate_shared(ua)?;
        let mut rng = Rng::new(seed);
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(rng.token(KEY_LEN).as_bytes());
        let call_id = options.call_id.clone().unwrap_or_else(|| rng.token(24));
        let from_tag = options.from_tag.clone().unwrap_or_else(|| rng.token(10));
        Ok(Registerer {
            cseq: settings.cseq,
            expires: settings.expires,
            settings,
            rng,
            key,
            state: State::Initial,
            call_id,
            from_tag,
            local: None,
            bound_contact: None,
            stale_contacts: Vec::new(),
            pending: None,
            lingering: Vec::new(),
            refresh_at: None,
            expire_at: None,
            retry_at: None,
            dispose_deadline: None,
            rebind_wanted: false,
            dispose_resent: false,
            auth: Vec::new(),
            contacts: None,
            retry_after: None,
            last_response: None,
            failures: 0,
            retransmissions: 0,
            timed_out: false,
            events: VecDeque::new(),
            transmits: Owed::default(),
            contact_public: None,
            public_address: None,
            outbound_refused: false,
            outbound_in_use: false,
            routing: None,
            keepalive: None,
            flow_failed: false,
            targets: None,
            awaiting_targets: false,
            resolution_wanted: false,
            paced: false,
        })
    }

    // ----- read-only view -------------------------------------------------

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The key at the start of this registerer's branches (see [`branch_key`]).
    pub fn key(&self) -> &str {
        // The key is drawn from the token alphabet: always ASCII.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a request is in flight (SIP.js's private `waiting` flag).
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether a request waits to start its transaction (paced registerers only;
    /// the runtime calls [`admit`](Self::admit) when the window has room).
    pub fn wants_admission(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| !p.admitted)
    }

    /// Whether a started transaction is in flight (sent or owed to the runtime).
    pub fn in_transaction(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.admitted)
    }

    /// Whether dispose was called (and Terminated may not have been reached yet).
    pub fn is_disposing(&self) -> bool {
        self.dispose_deadline.is_some() || self.state == State::Terminated
    }

    /// Contact URIs listed in the last 2xx.
    pub fn contacts(&self) -> &[String] {
        self.contacts.as_deref().unwrap_or(&[])
    }

    /// [`contacts`](Self::contacts), shared rather than copied (`None`: none).
    pub fn shared_contacts(&self) -> Option<Arc<[String]>> {
        self.contacts.clone()
    }

    /// Retry-After seconds of the last rejection, if it had one.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Status and reason of the last final response (including synthesised 408/503).
    pub fn last_response(&self) -> Option<&(u16, String)> {
        self.last_response.as_ref()
    }

    /// Time until the scheduled automatic retry.
    pub fn next_retry(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(now))
    }

    /// Consecutive failed registration attempts.
    pub fn failure_count(&self) -> u32 {
        self.failures
    }

    /// The expiry we ask for (raised by 423 Min-Expires).
    pub fn requested_expires(&self) -> u32 {
        self.expires
    }

    /// Call-ID, fixed for the registerer's life.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Timer E retransmissions so far.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    /// True once after a transaction timed out (the runtime drops a stream
    /// connection then, so the next attempt does not reuse a dead socket).
    pub fn take_timed_out(&mut self) -> bool {
        std::mem::take(&mut self.timed_out)
    }

    /// When the automatic retry is due.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Our contact URI for the current local address (the public one after a rewrite).
    pub fn contact(&self) -> Option<String> {
        self.local.map(|l| {
            request::contact_uri(&self.settings, self.contact_addr(l), self.outbound_wanted())
        })
    }

    /// The address the registrar saw our last successful REGISTER come from
    /// (Via `received`/`rport`), if it said.
    pub fn public_address(&self) -> Option<SocketAddr> {
        self.public_address
    }

    /// Service-Route, Path and GRUUs of the last 2xx (empty when not registered).
    pub fn routing(&self) -> &RoutingFacts {
        self.routing.as_deref().unwrap_or(&NO_ROUTING)
    }

    /// Whether the registrar confirmed RFC 5626 outbound for our flow.
    pub fn outbound_in_use(&self) -> bool {
        self.outbound_in_use
    }

    /// The keep-alive state of the flow (mechanism, interval, mapped address).
    pub fn keepalive(&self) -> &KeepAlive {
        self.keepalive.as_deref().unwrap_or(&NO_KEEPALIVE)
    }

    /// True once after the flow failed (no pong, STUN mapping changed): the
    /// runtime then replaces the socket or connection before sending the
    /// REGISTER that is already queued.
    pub fn take_flow_failed(&mut self) -> bool {
        std::mem::take(&mut self.flow_failed)
    }

    /// Keep-alive bytes to send on the flow now (CRLFCRLF or a STUN request).
    pub fn poll_ping(&mut self) -> Option<Vec<u8>> {
        self.keepalive.as_mut()?.poll_ping()
    }

    /// A CRLF pong arrived on our stream flow.
    pub fn keepalive_pong(&mut self) {
        if let Some(k) = self.keepalive.as_mut() {
            k.on_pong();
        }
    }

    /// A STUN datagram arrived from our target. Returns whether it answered
    /// our request; a changed mapped address fails the flow.
    pub fn stun_datagram(&mut self, now: Instant, datagram: &[u8]) -> bool {
        // Without keep-alive state no STUN request of ours is outstanding.
        let Some(k) = self.keepalive.as_mut() else {
            return false;
        };
        let (ours, failure) = k.on_stun(datagram);
        if let Some(f) = failure {
            self.flow_failure(now, f);
        }
        ours
    }

    /// Replaces the NAT settings of the user agent (keep-alive interval when
    /// the registrar sends no Flow-Timer, contact rewrite on/off).
    pub fn set_nat_options(&mut self, keepalive: u32, contact_rewrite: bool) {
        if self.settings.ua.keepalive == keepalive
            && self.settings.ua.contact_rewrite == contact_rewrite
        {
            return; // unchanged: the shared settings stay shared
        }
        let ua = Arc::make_mut(&mut self.settings.ua);
        ua.keepalive = keepalive;
        ua.contact_rewrite = contact_rewrite;
    }

    // ----- outputs --------------------------------------------------------

    /// Whether a message is waiting to be sent. The runtime makes sure the
    /// socket exists and calls [`set_local_addr`](Self::set_local_addr) before
    /// [`poll_transmit`](Self::poll_transmit), so a socket is only opened when
    /// there is something to send.
    pub fn wants_transmit(&self) -> bool {
        !self.transmits.is_empty() && !self.awaiting_targets
    }

    /// Next message to send (written now, from the current local address, if
    /// it is the first send of the request). `None` without a local address.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.awaiting_targets {
            return None;
        }
        let retransmission = self.transmits.front()?;
        let local = self.local?;
        self.transmits.pop_front();
        if self.pending.as_ref()?.bytes.is_none() {
            self.render(local);
        }
        let bytes = self.pending.as_ref()?.bytes.clone()?;
        Some(Transmit {
            bytes,
            retransmission,
        })
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 0 {
            // Drained: an idle registerer keeps no event buffer (128 bytes each).
            self.events = VecDeque::new();
        }
        e
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self
            .pending
            .as_ref()
            .filter(|p| p.admitted && !self.awaiting_targets)
            .and_then(|p| p.tx.next_deadline());
        [
            tx,
            // Lingering transactions (Timer K) wake nobody: they are purged at
            // the next input, so 10 000 registrations cost no 20 000 wake-ups.
            self.refresh_at,
            self.expire_at,
            self.retry_at,
            self.dispose_deadline,
            self.keepalive.as_ref().and_then(|k| k.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- inputs from the runtime ----------------------------------------

    /// With `on`, every new transaction waits for [`admit`](Self::admit) before
    /// its timers start and its first send is owed (the runtime's pacing window).
    /// A waiting request still counts as in flight for `register`/`unregister`
    /// (`RequestPending`). Off (the default), transactions start at once.
    pub fn set_paced(&mut self, on: bool) {
        self.paced = on;
        if !on {
            self.admit_pending(None);
        }
    }

    /// Starts the waiting transaction now (see [`wants_admission`](Self::wants_admission)).
    pub fn admit(&mut self, now: Instant) {
        self.admit_pending(Some(now));
    }

    /// Tells the registerer which local address its packets leave from. A change
    /// while bound queues the old contact for removal in the next REGISTER.
    pub fn set_local_addr(&mut self, addr: SocketAddr) {
        if self.local == Some(addr) {
            return;
        }
        self.local = Some(addr);
        // A new flow: its public address and keep-alive state are unknown.
        self.contact_public = None;
        if let Some(k) = self.keepalive.as_mut() {
            k.new_flow();
        }
        let now_contact = request::contact_uri(&self.settings, addr, self.outbound_wanted());
        // Back on an address used before: that contact is ours again, not stale.
        self.stale_contacts.retain(|c| *c != now_contact);
        if let Some(old) = self.bound_contact.take() {
            if old != now_contact && !self.stale_contacts.contains(&old) {
                self.stale_contacts.push(old);
            }
        }
    }

    /// Replaces the digest credentials (the user agent's password changed).
    pub fn set_credentials(
        &mut self,
        auth_username: Option<String>,
        password: Option<super::options::Secret>,
    ) {
        let ua = Arc::make_mut(&mut self.settings.ua);
        ua.auth_username = auth_username;
        ua.password = password;
        self.auth.clear();
    }

    /// The network changed (and [`set_local_addr`](Self::set_local_addr) was called
    /// with the new address): re-register at once if registered or waiting to retry.
    pub fn network_changed(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        let pending_kind = self.pending.as_ref().map(|p| p.kind);
        if let (Some(kind), true) = (pending_kind, self.settings.transport.reliable()) {
            // Its connection is gone with the old network: send it again on a new one.
            self.take_pending();
            self.note("network changed: re-sending the request in flight");
            self.start(now, kind);
            return;
        }
        let wants = self.state == State::Registered || self.retry_at.is_some();
        if !wants || self.dispose_deadline.is_some() {
            return;
        }
        if self.pending.is_some() {
            self.rebind_wanted = true;
        } else {
            self.retry_at = None;
            self.note("network changed: re-registering with the new contact");
            self.start(now, Kind::Register);
        }
    }

    /// The stream connection carrying our requests dropped. A request in flight
    /// fails (503) and is retried at once; a registered binding is refreshed at once.
    pub fn connection_lost(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        let resend_unregister = self.dispose_deadline.is_some()
            && !self.dispose_resent
            && matches!(
                self.pending.as_ref().map(|p| p.kind),
                Some(Kind::Unregister { .. })
            );
        if resend_unregister {
            // Dispose's un-REGISTER gets one more chance on a new connection.
            self.dispose_resent = true;
            if let Some(kind) = self.take_pending().map(|p| p.kind) {
                self.note("connection closed during dispose: sending the un-REGISTER again");
                self.start(now, kind);
            }
        } else if self.in_transaction() {
            self.transport_error(now, "connection closed", true);
        } else if self.pending.is_some() {
            // Waiting for admission: it goes out on a new connection when admitted.
        } else if self.state == State::Registered && self.dispose_deadline.is_none() {
            self.note("connection closed while registered: re-registering");
            self.start(now, Kind::Register);
        }
    }

    /// Makes the registerer find its host-name target by RFC 3263: the first
    /// request (and any after the answers' TTL ran out) waits until the
    /// runtime answers the [`poll_resolution`](Self::poll_resolution) query
    /// through [`targets_resolved`](Self::targets_resolved).
    pub fn resolve_targets(&mut self) {
        self.targets = Some(Box::new(TargetList::unresolved()));
    }

    /// The lookup the runtime must run now, once per needed resolution.
    pub fn poll_resolution(&mut self) -> Option<Query> {
        if !std::mem::take(&mut self.resolution_wanted) {
            return None;
        }
        let mut q = Query::for_settings(&self.settings)?;
        q.prefer_v6 = self.targets.as_ref().is_some_and(|t| t.prefers_v6());
        Some(q)
    }

    /// Whether a request waits for the targets to be resolved.
    pub fn is_resolving(&self) -> bool {
        self.awaiting_targets
    }

    /// The target requests go to now (`None`: not resolved yet, or a fixed
    /// address the runtime owns).
    pub fn current_target(&self) -> Option<&Target> {
        self.targets.as_ref().and_then(|t| t.current())
    }

    /// The runtime's answer to [`poll_resolution`](Self::poll_resolution).
    /// The waiting request then goes out (new branch, fresh timers). A failed
    /// resolution with no earlier targets ends it with a synthetic 503 and the
    /// usual backoff; with earlier targets they are used once more.
    pub fn targets_resolved(&mut self, now: Instant, result: Result<TargetList, String>) {
        if !self.awaiting_targets {
            return;
        }
        self.awaiting_targets = false;
        let name = Query::for_settings(&self.settings).map_or_else(String::new, |q| q.name);
        let list = self
            .targets
            .get_or_insert_with(|| Box::new(TargetList::unresolved()));
        let result = result.and_then(|l| {
            if l.targets().is_empty() {
                Err("no targets".to_owned())
            } else {
                Ok(l)
            }
        });
        match result {
            Ok(new) => {
                let changed = new.targets() != list.targets();
                let listed: Vec<String> = new.targets().iter().map(|t| t.to_string()).collect();
                list.replace(new);
                let using = list.current().map(|t| t.to_string()).unwrap_or_default();
                // Logged when the answers change, not at every refresh of a TTL-0 zone.
                if changed {
                    self.note(&format!(
                        "resolved {name}: [{}]; using {using}",
                        listed.join(", ")
                    ));
                }
            }
            Err(why) if !list.targets().is_empty() => {
                self.note(&format!(
                    "cannot re-resolve {name} ({why}); keeping the previous targets"
                ));
            }
            Err(why) => {
                self.note(&format!("cannot resolve {name}: {why}"));
                self.synthetic_failure(now, 503, "Service Unavailable", false);
                return;
            }
        }
        self.follow_target();
        if let Some(p) = self.take_pending() {
            self.send(now, p);
        }
    }

    /// With an open transport choice, requests use the transport of the
    /// target in use (NAPTR may list udp, tcp and tls targets).
    fn follow_target(&mut self) {
        if !self.settings.transport_open {
            return;
        }
        if let Some(t) = self.targets.as_ref().and_then(|l| l.current()) {
            self.settings.transport = t.transport;
        }
    }

    /// RFC 3263 section 4.3: the request in flight goes to the next target at
    /// once, with a new branch. False when there is none (a fixed target, or
    /// every target failed in this round: the caller then fails the request).
    fn failover(&mut self, now: Instant, why: &str) -> bool {
        if self.pending.is_none() {
            return false;
        }
        let Some(list) = self.targets.as_mut() else {
            return false;
        };
        let from = list.current().map(|t| t.to_string()).unwrap_or_default();
        let several = list.targets().len() > 1;
        let Some(next) = list.fail_current().map(|t| t.to_string()) else {
            if several {
                self.note(&format!(
                    "{why} at {from}: every target failed, backing off"
                ));
            }
            return false;
        };
        self.note(&format!("failover: {why} at {from}; trying {next}"));
        self.follow_target();
        if let Some(p) = self.take_pending() {
            self.send(now, p);
        }
        true
    }

    /// Sending the current request failed: ends it with a synthetic 503.
    /// `immediate_retry` asks for the first automatic retry without delay.
    /// A request still waiting for admission was not sent, so it is not affected.
    pub fn transport_error(&mut self, now: Instant, reason: &str, immediate_retry: bool) {
        if !self.in_transaction() {
            return;
        }
        self.note(&format!("transport error: {reason}"));
        if self.failover(now, &format!("transport error ({reason})")) {
            return;
        }
        self.synthetic_failure(now, 503, "Service Unavailable", immediate_retry);
    }

    /// SIP.js `register()`.
    pub fn register(&mut self, now: Instant) -> Result<(), Error> {
        self.check_can_send()?;
        self.retry_at = None;
        self.start(now, Kind::Register);
        Ok(())
    }

    /// SIP.js `unregister()`; `all` sends `Contact: *`.
    pub fn unregister(&mut self, now: Instant, all: bool) -> Result<(), Error> {
        self.check_can_send()?;
        self.retry_at = None;
        self.refresh_at = None;
        self.start(now, Kind::Unregister { all });
        Ok(())
    }

    /// SIP.js `dispose()`: waits for a request in flight, unregisters if
    /// registered, then Terminated — within the shutdown bound. Idempotent.
    pub fn dispose(&mut self, now: Instant) {
        if self.is_disposing() {
            return;
        }
        self.dispose_deadline = Some(now + self.settings.ua.shutdown_timeout);
        self.refresh_at = None;
        self.retry_at = None;
        if self.awaiting_targets {
            // A REGISTER still waiting for DNS was never sent: drop it.
            self.awaiting_targets = false;
            self.resolution_wanted = false;
            self.take_pending();
        }
        if self.pending.is_none() {
            self.continue_dispose(now);
        }
    }

    /// Feeds a response whose top Via branch carries this registerer's key.
    pub fn handle_response(&mut self, now: Instant, resp: &Response) -> Result<(), Unmatched> {
        self.purge_lingering(now);
        if self.state == State::Terminated {
            return Err(Unmatched::Terminated);
        }
        let branch = resp.top_branch();
        let Some(branch) = branch else {
            return Err(Unmatched::UnknownBranch);
        };
        let dialogue_ok = |cseq: u32| {
            resp.call_id() == Some(self.call_id.as_str()) && resp.cseq() == Some((cseq, "REGISTER"))
        };
        if let Some(p) = self.pending.as_ref().filter(|p| p.admitted) {
            if p.tx.branch() == branch {
                if !dialogue_ok(p.cseq) {
                    return Err(Unmatched::WrongDialogue);
                }
                let delivery = self
                    .pending
                    .as_mut()
                    .map(|p| p.tx.on_response(resp.status, now));
                if delivery == Some(Delivery::Final) {
                    self.on_final(now, resp);
                }
                return Ok(());
            }
        }
        let tail = branch
            .strip_prefix(COOKIE)
            .and_then(|b| b.strip_prefix(self.key()))
            .map(str::as_bytes);
        let lingering = tail.and_then(|t| self.lingering.iter().find(|l| l.tail[..] == *t));
        if let Some(l) = lingering {
            // A retransmitted final of a completed transaction: absorbed.
            return if dialogue_ok(l.cseq) {
                Ok(())
            } else {
                Err(Unmatched::WrongDialogue)
            };
        }
        Err(Unmatched::UnknownBranch)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        self.run_transaction_timers(now);
        self.purge_lingering(now);
        if self.dispose_deadline.is_some_and(|d| now >= d) {
            self.note("dispose: no final answer within the shutdown bound; terminating");
            self.terminate();
            return;
        }
        // The refresh goes first: a late wake-up past the expiry (suspend, a
        // stalled thread) must still send the refresh it was due.
        if self.refresh_at.is_some_and(|t| now >= t) {
            self.refresh_at = None;
            // A request in flight already decides the next refresh (SIP.js #1071).
            if self.pending.is_none() {
                self.start(now, Kind::Register);
            }
        }
        if self.expire_at.is_some_and(|t| now >= t) {
            self.note("registration expired without a successful refresh");
            self.unregistered();
        }
        let due = self.keepalive.as_mut();
        if let Some(f) = due.and_then(|k| k.handle_timeout(now, &mut self.rng)) {
            self.flow_failure(now, f);
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            if self.pending.is_none() {
                self.events.push_back(Event::RetryStarted {
                    failures: self.failures,
                });
                self.start(now, Kind::Register);
            }
        }
    }

    // ----- internals --------------------------------------------------------

    /// Drops the lingering transactions past Timer K; none left frees their list.
    fn purge_lingering(&mut self, now: Instant) {
        self.lingering.retain(|l| l.until > now);
        if self.lingering.is_empty() && self.lingering.capacity() > 0 {
            self.lingering = Vec::new();
        }
    }

    fn check_can_send(&self) -> Result<(), Error> {
        if self.is_disposing() {
            return Err(Error::Terminated);
        }
        if self.pending.is_some() {
            return Err(Error::RequestPending);
        }
        Ok(())
    }

    fn note(&mut self, msg: &str) {
        self.events.push_back(Event::Note(msg.to_owned()));
    }

    fn set_state(&mut self, s: State) {
        if self.state != s {
            self.state = s;
            self.events.push_back(Event::StateChanged(s));
        }
    }

    fn terminate(&mut self) {
        if let Some(k) = self.keepalive.as_mut() {
            k.stop();
        }
        self.routing = None;
        self.take_pending();
        self.lingering = Vec::new();
        self.refresh_at = None;
        self.expire_at = None;
        self.retry_at = None;
        self.dispose_deadline = None;
        self.set_state(State::Terminated);
    }

    fn continue_dispose(&mut self, now: Instant) {
        if self.state == State::Registered {
            self.start(now, Kind::Unregister { all: false });
        } else {
            self.terminate();
        }
    }

    /// Starts a new logical request (after resolving the targets if their
    /// answers ran out).
    fn start(&mut self, now: Instant, kind: Kind) {
        if let Some(t) = self.targets.as_mut() {
            t.begin_round();
            if t.needs_resolution(now) && !self.awaiting_targets {
                self.awaiting_targets = true;
                self.resolution_wanted = true;
            }
        }
        let pending = Pending {
            kind,
            tx: ClientTransaction::new(String::new(), true, self.settings.ua.timers, now),
            admitted: false,
            bytes: None,
            cseq: 0,
            auth: Vec::new(),
            expires_sent: 0,
            stale_sent: Vec::new(),
            sent_contact: None,
            contact_addr: None,
            outbound: false,
            rewrite: false,
            interval_rounds: 0,
            answered: Vec::new(),
            stale_retries: 0,
            new_nonce_retry_used: false,
            auth_rounds: 0,
        };
        self.send(now, pending);
    }

    /// Sends (or re-sends after a challenge / 423) the request of `p`: a new
    /// CSeq and branch now; credentials when it is admitted; the bytes when
    /// the runtime polls them.
    fn send(&mut self, now: Instant, mut p: Pending) {
        self.cseq = self.cseq.wrapping_add(1);
        p.cseq = self.cseq;
        let tail = self.rng.token(TAIL_LEN);
        let mut branch = String::with_capacity(COOKIE.len() + KEY_LEN + TAIL_LEN);
        branch.push_str(COOKIE);
        branch.push_str(self.key());
        branch.push_str(&tail);
        p.auth = Vec::new();
        p.expires_sent = match p.kind {
            Kind::Register => self.expires,
            Kind::Unregister { .. } => 0,
        };
        p.bytes = None;
        p.sent_contact = None;
        p.tx = ClientTransaction::new(
            branch,
            self.settings.transport.reliable(),
            self.settings.ua.timers,
            now,
        );
        p.admitted = false;
        self.transmits.clear();
        self.pending = Some(Box::new(p));
        if !self.paced {
            self.admit_pending(Some(now));
        }
    }

    /// Starts the pending transaction: at `now` (a fresh Timer E/F start), or
    /// with the timers it was created with (`None`). Its credentials are
    /// computed here, not when it was queued: thousands of requests waiting
    /// for the pacing window keep no Authorization text.
    fn admit_pending(&mut self, now: Option<Instant>) {
        let reliable = self.settings.transport.reliable();
        let timers = self.settings.ua.timers;
        let Some(mut p) = self.pending.take_if(|p| !p.admitted) else {
            return;
        };
        if let Some(now) = now {
            let branch = p.tx.take_branch();
            p.tx = ClientTransaction::new(branch, reliable, timers, now);
        }
        p.auth = self.credentials_headers(&mut p);
        p.admitted = true;
        self.pending = Some(p);
        self.transmits.owe_first();
    }

    /// Writes the pending request for packets leaving `local`.
    fn render(&mut self, local: SocketAddr) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let contact = match p.kind {
            Kind::Register => ContactSpec::Bind(p.expires_sent),
            Kind::Unregister { all: false } => ContactSpec::Remove,
            Kind::Unregister { all: true } => ContactSpec::RemoveAll,
        };
        p.stale_sent = self.stale_contacts.clone();
        let contact_addr = self.contact_public.unwrap_or(local);
        let outbound = self.settings.reg_id.is_some() && !self.outbound_refused;
        p.contact_addr = Some(contact_addr);
        p.outbound = outbound;
        let sent_contact = request::contact_uri(&self.settings, contact_addr, outbound);
        let parts = RequestParts {
            settings: &self.settings,
            local,
            contact_addr,
            outbound,
            branch: p.tx.branch(),
            call_id: &self.call_id,
            from_tag: &self.from_tag,
            cseq: p.cseq,
            contact,
            stale_contacts: &p.stale_sent,
            auth: &p.auth,
            contact_uri: &sent_contact,
        };
        p.bytes = Some(request::build_register(&parts));
        p.sent_contact = Some(sent_contact);
    }

    /// Ends the request in flight, dropping sends still owed for it.
    fn take_pending(&mut self) -> Option<Pending> {
        self.transmits.clear();
        self.pending.take().map(|p| *p)
    }

    /// Authorization headers from the per-realm cache, each with the next nc.
    fn credentials_headers(&mut self, p: &mut Pending) -> Vec<(AuthHeader, String)> {
        let Some(password) = self.settings.ua.password.as_ref() else {
            return Vec::new();
        };
        let username = self.settings.ua.effective_auth_username();
        let uri = self.settings.registrar_text.as_str();
        let mut out = Vec::with_capacity(self.auth.len());
        // Exact: a queued request keeps this list until it is answered, and
        // the default growth would reserve four entries for the usual one.
        p.answered.reserve_exact(self.auth.len());
        for entry in &mut self.auth {
            entry.nc = entry.nc.wrapping_add(1).max(1);
            let cnonce = self.rng.token(16);
            let answer = Answer {
                username,
                password: Some(password.expose()),
                method: "REGISTER",
                uri,
                body: b"",
                nc: entry.nc,
                cnonce: &cnonce,
            };
            if let Ok(value) = digest::authorization(&entry.challenge, &answer) {
                let kind = if entry.proxy {
                    AuthHeader::ProxyAuthorization
                } else {
                    AuthHeader::Authorization
                };
                p.answered.push((
                    entry.challenge.realm.clone(),
                    entry.proxy,
                    entry.challenge.nonce.clone(),
                ));
                out.push((kind, value));
            }
        }
        out
    }

    fn run_transaction_timers(&mut self, now: Instant) {
        if self.awaiting_targets {
            return;
        }
        let Some(p) = self.pending.as_mut().filter(|p| p.admitted) else {
            return;
        };
        match p.tx.on_timer(now) {
            TimerOutcome::Retransmit => {
                self.retransmissions += 1;
                self.transmits.owe_retransmission();
            }
            TimerOutcome::TimedOut => {
                self.timed_out = true;
                self.note("no final response before Timer F");
                if self.failover(now, "no final response before Timer F") {
                    return;
                }
                self.synthetic_failure(now, 408, "Request Timeout", false);
            }
            TimerOutcome::Nothing | TimerOutcome::Terminated => {}
        }
    }

    /// Ends the request in flight as if `status` had arrived (SIP.js's internal 408/503).
    fn synthetic_failure(
        &mut self,
        now: Instant,
        status: u16,
        reason: &str,
        immediate_retry: bool,
    ) {
        let Some(p) = self.take_pending() else { return };
        self.record_response(status, reason);
        self.fail(now, p.kind, status, None, immediate_retry);
    }

    fn record_response(&mut self, status: u16, reason: &str) {
        self.last_response = Some((status, reason.to_owned()));
        self.events.push_back(Event::Response {
            status,
            reason: reason.to_owned(),
        });
    }

    fn on_final(&mut self, now: Instant, resp: &Response) {
        let Some(mut p) = self.take_pending() else {
            return;
        };
        let tail =
            p.tx.branch()
                .strip_prefix(COOKIE)
                .and_then(|b| b.strip_prefix(self.key()))
                .and_then(|t| <[u8; TAIL_LEN]>::try_from(t.as_bytes()).ok());
        if let (Some(until), Some(tail)) = (p.tx.next_deadline(), tail) {
            // Usually one or two linger at a time: no room for four kept per registerer.
            self.lingering.reserve_exact(1);
            self.lingering.push(Lingering {
                tail,
                cseq: p.cseq,
                until,
            });
        }
        self.record_response(resp.status, &resp.reason);
        match resp.status {
            200..=299 => match p.kind {
                Kind::Register => self.on_register_ok(now, p, resp),
                Kind::Unregister { .. } => self.on_unregister_ok(now, p, resp),
            },
            401 | 407 => match self.accept_challenge(&mut p, resp) {
                Ok(()) => self.send(now, p),
                Err(why) => {
                    self.note(&why);
                    self.fail(now, p.kind, resp.status, resp.retry_after(), false);
                }
            },
            439 if p.outbound => {
                // RFC 5626 §11.6: the first hop cannot do outbound; go on without it.
                self.outbound_refused = true;
                self.note("439 First Hop Lacks Outbound Support: registering without outbound");
                self.send(now, p);
            }
            423 if p.kind == Kind::Register => match resp.min_expires() {
                Some(min) if min > p.expires_sent && p.interval_rounds < MAX_INTERVAL_ROUNDS => {
                    p.interval_rounds += 1;
                    self.expires = min;
                    self.send(now, p);
                }
                _ => {
                    self.note("423 without a usable Min-Expires");
                    self.fail(now, p.kind, 423, resp.retry_after(), false);
                }
            },
            503 if resp.retry_after().is_none() && self.targets.is_some() => {
                self.pending = Some(Box::new(p));
                if !self.failover(now, "503 without Retry-After") {
                    if let Some(p) = self.take_pending() {
                        self.fail(now, p.kind, 503, None, false);
                    }
                }
            }
            status => self.fail(now, p.kind, status, resp.retry_after(), false),
        }
    }

    /// Decides whether a 401/407 may be answered, and caches the challenge if so.
    fn accept_challenge(&mut self, p: &mut Pending, resp: &Response) -> Result<(), String> {
        let proxy = resp.status == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let offered: Vec<Challenge> = resp
            .headers(header)
            .filter_map(|v| digest::parse_challenge(v).ok())
            .collect();
        let Some(ch) = digest::choose_challenge(&offered).cloned() else {
            return Err(format!("{} without a usable Digest challenge", resp.status));
        };
        if self.settings.ua.password.is_none() {
            return Err(format!(
                "{} challenge for realm {:?} but no password is configured",
                resp.status, ch.realm
            ));
        }
        if p.auth_rounds >= MAX_AUTH_ROUNDS {
            return Err("too many authentication rounds".into());
        }
        let realm_answered: Vec<&String> = p
            .answered
            .iter()
            .filter(|(r, px, _)| *r == ch.realm && *px == proxy)
            .map(|(_, _, n)| n)
            .collect();
        if !realm_answered.is_empty() {
            if ch.stale {
                if p.stale_retries >= MAX_STALE_RETRIES {
                    return Err("credentials rejected: too many stale nonces".into());
                }
                p.stale_retries += 1;
            } else if realm_answered.contains(&&ch.nonce) || p.new_nonce_retry_used {
                return Err(format!(
                    "credentials for realm {:?} were rejected",
                    ch.realm
                ));
            } else {
                // Servers that forget stale=true get one more try with the new nonce.
                p.new_nonce_retry_used = true;
            }
        }
        p.auth_rounds += 1;
        self.auth
            .retain(|e| !(e.proxy == proxy && e.challenge.realm == ch.realm));
        self.auth.reserve_exact(1);
        self.auth.push(AuthEntry {
            proxy,
            challenge: ch,
            nc: 0,
        });
        Ok(())
    }

    fn our_contact_matches(&self, c: &super::message::NameAddr, ours: Option<&Uri>) -> bool {
        if let Some(urn) = &self.settings.extras().instance_urn {
            let instance = c
                .param("+sip.instance")
                .flatten()
                .map(|v| v.trim_matches(|ch| ch == '<' || ch == '>'));
            if let Some(inst) = instance {
                let reg_id_ok = match self.settings.reg_id.filter(|_| self.outbound_wanted()) {
                    Some(id) => {
                        c.param("reg-id")
                            .flatten()
                            .and_then(|v| v.parse::<u32>().ok())
                            == Some(id)
                    }
                    None => true,
                };
                if inst.eq_ignore_ascii_case(urn) && reg_id_ok {
                    return true;
                }
            }
        }
        ours.is_some_and(|o| o.equivalent(&c.uri))
    }

    fn on_register_ok(&mut self, now: Instant, p: Pending, resp: &Response) {
        let listed = match resp.contacts() {
            Ok(list) => list,
            Err(e) => {
                self.note(&format!(
                    "2xx with an unreadable Contact ({e}): not registered"
                ));
                Vec::new()
            }
        };
        self.contacts = shared(listed.iter().map(|c| c.uri.to_string()).collect());
        self.stale_contacts.retain(|c| !p.stale_sent.contains(c));
        // Match what this request carried: the local address may have changed since.
        let ours_text = p.sent_contact.clone();
        let ours = ours_text.as_deref().and_then(|t| Uri::parse(t).ok());
        let mine: Vec<&super::message::NameAddr> = listed
            .iter()
            .filter(|c| self.our_contact_matches(c, ours.as_ref()))
            .collect();
        let granted = mine
            .iter()
            .map(|c| c.expires().or(resp.expires()).unwrap_or(p.expires_sent))
            .min();
        let mut rewrite_to = None;
        match granted {
            None => {
                self.note("2xx does not list our contact: not registered");
                self.failures = self.failures.saturating_add(1);
                self.unregistered();
            }
            Some(0) => {
                self.note("registrar granted expires=0 for our contact");
                self.failures = self.failures.saturating_add(1);
                self.unregistered();
            }
            Some(secs) => {
                if let Some(t) = self.targets.as_mut() {
                    t.succeeded();
                }
                self.failures = 0;
                self.retry_after = None;
                self.bound_contact = ours_text;
                let granted = Duration::from_secs(u64::from(secs));
                let spread = refresh::spread_of(&self.call_id);
                let delay =
                    refresh::refresh_delay(granted, self.settings.refresh_frequency, spread);
                self.refresh_at = Some(now + delay);
                self.expire_at = Some(now + granted);
                self.set_state(State::Registered);
                self.outbound_in_use = p.outbound && resp.lists_option("require", "outbound");
                let routing = RoutingFacts::from_response(resp, mine.first().copied());
                self.routing = (routing != RoutingFacts::EMPTY).then(|| Box::new(routing));
                self.start_keepalive(now, resp);
                let seen = resp.top_via_public_address();
                if seen.is_some() {
                    self.public_address = seen;
                }
                rewrite_to = seen.and_then(|public| self.rewrite_target(&p, public));
            }
        }
        self.after_request(now, p.kind);
        if let Some(public) = rewrite_to {
            self.rewrite_contact(now, public);
        }
    }

    /// Whether a 2xx that saw us at `public` calls for a contact rewrite.
    fn rewrite_target(&mut self, p: &Pending, public: SocketAddr) -> Option<SocketAddr> {
        let sent_at = p.contact_addr?;
        if !self.settings.ua.contact_rewrite || public == sent_at {
            return None;
        }
        if self.outbound_in_use {
            // RFC 5626: the registrar reaches us over this flow; no rewrite needed.
            return None;
        }
        if p.rewrite {
            // The answer to a rewrite flips again: at most one rewrite per
            // change; a refresh that still sees it will rewrite then.
            self.note(&format!(
                "public address changed again to {public} right after a rewrite: not rewriting now (loop guard)"
            ));
            return None;
        }
        Some(public)
    }

    /// Re-registers at once with `public` in the Contact, removing the old
    /// binding (`expires=0`) in the same request; the Call-ID stays.
    fn rewrite_contact(&mut self, now: Instant, public: SocketAddr) {
        if self.pending.is_some() || self.state != State::Registered || self.is_disposing() {
            return;
        }
        let Some(local) = self.local else { return };
        self.note(&format!(
            "registrar sees us at {public}: rewriting the contact and re-registering"
        ));
        if let Some(old) = self.bound_contact.take() {
            if !self.stale_contacts.contains(&old) {
                self.stale_contacts.push(old);
            }
        }
        self.contact_public = (public != local).then_some(public);
        let now_contact = request::contact_uri(&self.settings, public, self.outbound_wanted());
        self.stale_contacts.retain(|c| *c != now_contact);
        self.start(now, Kind::Register);
        if let Some(p) = self.pending.as_mut() {
            p.rewrite = true;
        }
    }

    fn outbound_wanted(&self) -> bool {
        self.settings.reg_id.is_some() && !self.outbound_refused
    }

    fn contact_addr(&self, local: SocketAddr) -> SocketAddr {
        self.contact_public.unwrap_or(local)
    }

    /// Keep-alive after a 2xx: with outbound, STUN (UDP) or CRLF ping/pong at
    /// Flow-Timer (else the configured interval); without, the plain CRLF
    /// (UDP) / CRLFCRLF (stream) keep-alive if configured.
    fn start_keepalive(&mut self, now: Instant, resp: &Response) {
        let configured = self.settings.ua.keepalive;
        let (mech, secs) = if self.outbound_in_use {
            let mech = if self.settings.transport.reliable() {
                Mechanism::CrlfPong
            } else {
                Mechanism::Stun
            };
            (
                mech,
                resp.flow_timer().filter(|s| *s > 0).unwrap_or(configured),
            )
        } else {
            let mech = if self.settings.transport.reliable() {
                Mechanism::DoubleCrlf
            } else {
                Mechanism::Crlf
            };
            (mech, configured)
        };
        let base = Duration::from_secs(u64::from(secs));
        if base.is_zero() {
            // Off: what start would do, without creating the state.
            if let Some(k) = self.keepalive.as_mut() {
                k.stop();
            }
            return;
        }
        let k = self.keepalive.get_or_insert_with(Box::default);
        k.start(now, mech, base, &mut self.rng);
    }

    /// The flow died (no pong, or the NAT mapping moved): re-register at once
    /// on a new flow; the state stays Registered if that succeeds.
    fn flow_failure(&mut self, now: Instant, f: Failure) {
        let why = match f {
            Failure::NoAnswer => "no keep-alive answer within 10 s".to_owned(),
            Failure::MappedChanged { old, new } => {
                format!("STUN mapped address changed from {old} to {new}")
            }
        };
        self.note(&format!(
            "flow failed ({why}): re-registering on a new flow"
        ));
        if let Some(k) = self.keepalive.as_mut() {
            k.new_flow();
        }
        self.flow_failed = true;
        self.network_changed(now);
    }

    fn on_unregister_ok(&mut self, now: Instant, p: Pending, resp: &Response) {
        self.contacts = shared(
            resp.contacts()
                .map(|l| l.iter().map(|c| c.uri.to_string()).collect())
                .unwrap_or_default(),
        );
        self.stale_contacts.retain(|c| !p.stale_sent.contains(c));
        self.bound_contact = None;
        self.retry_after = None;
        self.unregistered();
        self.after_request(now, p.kind);
    }

    fn unregistered(&mut self) {
        self.refresh_at = None;
        self.expire_at = None;
        if let Some(k) = self.keepalive.as_mut() {
            k.stop();
        }
        self.routing = None;
        self.outbound_in_use = false;
        self.set_state(State::Unregistered);
    }

    /// A request ended without success.
    fn fail(
        &mut self,
        now: Instant,
        kind: Kind,
        status: u16,
        retry_after: Option<u32>,
        immediate: bool,
    ) {
        self.retry_after = retry_after;
        self.unregistered();
        if kind == Kind::Register {
            self.failures = self.failures.saturating_add(1);
            let policy = self.settings.retry;
            if policy.enabled && is_transient(status) && self.dispose_deadline.is_none() {
                let delay = if immediate && self.failures == 1 {
                    Duration::ZERO
                } else if let Some(ra) = retry_after.filter(|ra| *ra > 0) {
                    // Retry-After: 0 falls back to the backoff (no retry storm).
                    Duration::from_secs(u64::from(ra)).min(policy.retry_after_max)
                } else {
                    let exp = 1u32 << self.failures.min(20);
                    let backoff = policy.base.saturating_mul(exp).min(policy.max);
                    backoff.mul_f64(0.5 + 0.5 * self.rng.unit())
                };
                self.retry_at = Some(now + delay);
                self.events.push_back(Event::RetryScheduled {
                    delay,
                    failures: self.failures,
                });
            }
        }
        self.after_request(now, kind);
    }

    /// Follow-ups once a logical request is over: dispose progress, pending rebind.
    fn after_request(&mut self, now: Instant, kind: Kind) {
        if self.dispose_deadline.is_some() {
            match kind {
                Kind::Unregister { .. } => self.terminate(),
                Kind::Register => self.continue_dispose(now),
            }
            return;
        }
        if std::mem::take(&mut self.rebind_wanted)
            && kind == Kind::Register
            && (self.state == State::Registered || self.retry_at.is_some())
        {
            self.retry_at = None;
            self.start(now, Kind::Register);
        }
    }
}
