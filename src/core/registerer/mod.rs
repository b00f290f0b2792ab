//! The registerer state machine: SIP.js `Registerer` semantics, sans-IO.
//!
//! Inputs are API calls, responses, transport events and timer expiries, each with
//! the current `now`. Outputs are queued: bytes to send ([`Transmit`]) and
//! [`Event`]s for the application; [`Registerer::poll_timeout`] says when to call
//! [`Registerer::handle_timeout`] next.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compact::{MaybeAddr, MaybeInstant};
use super::contact_list::ContactList;
use super::digest::{self, Algorithm, Answer, Challenge};
use super::failure::{Failure, FailureKind};
use super::keepalive::{FlowFailure, KeepAlive, Mechanism};
use super::message::{NameAddrRef, Response};
use super::options::{RegistererOptions, Settings, UserAgentConfig};
use super::own_text::own_text;
use super::rand::Rng;
use super::refresh;
use super::request::{self, AuthHeader, ContactSpec, RequestParts};
use super::routing::RoutingFacts;
use super::short_text::ShortText;
use super::targets::{Query, Target, TargetList};
use super::transaction::{ClientTransaction, Delivery, TimerOutcome};
use super::uri::{Host, Uri};
use crate::error::Error;

mod api;
mod auth;
mod failover;
mod nat;
mod packed_auth;
mod responses;
mod sending;

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

impl State {
    /// The state's name as SIP.js writes it: "Initial", "Registered",
    /// "Unregistered", "Terminated" (`sipreg_state_str`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "Initial",
            State::Registered => "Registered",
            State::Unregistered => "Unregistered",
            State::Terminated => "Terminated",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        /// Reason phrase (shared with [`last_response`](Registerer::last_response)
        /// and with other registerers that heard the same one).
        reason: Arc<str>,
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
    /// An attempt failed, and why (also [`Registerer::failure`] until the
    /// next success). Comes after the [`Event::Response`] that caused it and
    /// before the state change and retry it leads to.
    Failed(Failure),
    /// A diagnostic for the log (never contains credentials).
    Note(String),
    /// Something the operator should look at, for the log at warning level
    /// (never contains credentials), e.g. a refused digest downgrade.
    Warning(String),
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

impl Unmatched {
    /// Why, in words (for the log line of a dropped response).
    pub fn as_str(self) -> &'static str {
        match self {
            Unmatched::UnknownBranch => "response for no transaction of ours",
            Unmatched::WrongDialogue => "response with a Call-ID or CSeq not ours",
            Unmatched::Terminated => "response for a terminated registerer",
        }
    }
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
    /// Contact carry the socket it really leaves from); retransmissions
    /// reuse it. Empty until written (no message is), and emptied with its
    /// room kept when the request is sent again (a challenge answered), so
    /// the new message is written into the old one's buffer.
    bytes: Vec<u8>,
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
    /// Headers for this request and its resends only (`register_with_headers`),
    /// checked; never on refreshes.
    request_headers: Vec<String>,
}

/// A completed transaction absorbing retransmitted finals until Timer K: only
/// what matching needs (the transaction itself is freed when it completes).
#[derive(Debug)]
struct Lingering {
    /// The branch after our cookie and key (every branch of ours is
    /// `z9hG4bK` + key + this), inline rather than a string on the heap.
    tail: [u8; TAIL_LEN],
    cseq: u32,
    /// Timer K (8 bytes, so an entry takes 24).
    until: MaybeInstant,
}

#[derive(Clone, Debug)]
struct AuthEntry {
    proxy: bool,
    challenge: Challenge,
    nc: u32,
    /// The strongest algorithm this realm offered so far (downgrade guard);
    /// kept when the credentials change.
    strongest: Algorithm,
    /// The challenge may be answered without a new 401/407 (false once the
    /// credentials changed: the entry stays for `strongest`).
    usable: bool,
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
/// The largest Min-Expires followed, unless the application asked for more: a day.
pub const MAX_MIN_EXPIRES: u32 = 86_400;

/// One registration of one contact for one address of record.
#[derive(Debug)]
pub struct Registerer {
    settings: Settings,
    rng: Rng,
    /// Random, ASCII, inline: saves a heap string per registerer.
    key: [u8; KEY_LEN],
    state: State,
    /// Call-ID: our random 24 characters inline (one given longer than that on the heap).
    call_id: ShortText<CALL_ID_LEN>,
    /// From tag: our random 10 characters inline.
    from_tag: ShortText<FROM_TAG_LEN>,
    cseq: u32,
    expires: u32,
    local: MaybeAddr,
    /// Our Contact as the last 2xx bound it, when it is not in `contacts`
    /// as sent (read both through [`bound_contact`](Self::bound_contact)).
    bound_contact: Option<Box<str>>,
    /// Its place in `contacts` when listed there as sent (no copy kept:
    /// the usual case); [`NOT_LISTED`] otherwise.
    bound_at: u8,
    stale_contacts: Vec<String>,
    /// The request in flight; boxed, so an idle registerer keeps only a pointer.
    pending: Option<Box<Pending>>,
    /// When a new request waiting for the pacing window was made (NONE:
    /// none waits): its bookkeeping is made when it is admitted, so a burst
    /// of thousands of registrations queues no 350-byte `Pending` each.
    /// Never set together with `pending`.
    queued_at: MaybeInstant,
    /// The kind of that request.
    queued_kind: Kind,
    /// Completed transactions absorbing retransmitted finals until Timer K, with their CSeq.
    lingering: Vec<Lingering>,
    refresh_at: MaybeInstant,
    expire_at: MaybeInstant,
    retry_at: MaybeInstant,
    dispose_deadline: MaybeInstant,
    rebind_wanted: bool,
    dispose_resent: bool,
    /// Per-realm challenges: open while a request uses them, packed into
    /// one buffer between requests.
    auth: packed_auth::AuthCache,
    /// Contacts of the last 2xx, shared with the runtime's snapshot (`None`: none).
    contacts: Option<ContactList>,
    retry_after: Option<u32>,
    /// Reason of the last final response (shared; `None`: no final response
    /// yet) and its status beside it (apart, the two pack into less room).
    last_reason: Option<Arc<str>>,
    last_status: u16,
    failures: u32,
    retransmissions: u32,
    timed_out: bool,
    events: Vec<Event>,
    /// Sends owed to the runtime: `true` for a retransmission.
    transmits: Owed,
    /// Public address written in our Contact instead of the local one (contact rewrite).
    contact_public: MaybeAddr,
    /// The address the registrar last saw us at (Via received/rport of a 2xx).
    public_address: MaybeAddr,
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
    /// Why the last attempt failed (`None` after a success); boxed, as most
    /// registerers never fail.
    failure: Option<Box<Failure>>,
    /// When the last 2xx registered us (a flow lost soon after is a quick loss).
    registered_at: MaybeInstant,
    /// The failure count the last 2xx cleared, restored if its flow dies
    /// quickly (see `flow_loss_backoff`).
    failures_at_ok: u32,
    /// A failure was recorded for the request ending now, so the generic
    /// classification in `fail` does not record a second one.
    failure_fresh: bool,
}

/// What [`Registerer::routing`] and [`Registerer::keepalive`] show without state.
static NO_ROUTING: RoutingFacts = RoutingFacts::EMPTY;
static NO_KEEPALIVE: KeepAlive = KeepAlive::IDLE;

/// `bound_at` when our bound Contact is not read from the contact list.
const NOT_LISTED: u8 = u8::MAX;

/// Length of the per-registerer key at the start of every branch (after the cookie).
pub const KEY_LEN: usize = 10;
const COOKIE: &str = "z9hG4bK";
/// Length of our random Call-IDs.
const CALL_ID_LEN: usize = 24;
/// Length of our random From tags.
const FROM_TAG_LEN: usize = 10;
/// Length of the random part of a branch, after the cookie and the key.
const TAIL_LEN: usize = 12;

/// The registerer key embedded in a Via branch, used by the runtime to route responses.
pub fn branch_key(branch: &str) -> Option<&str> {
    branch.strip_prefix(COOKIE)?.get(..KEY_LEN)
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
        rng.fill_token(&mut key);
        let call_id = match &options.call_id {
            Some(c) => ShortText::new(c),
            None => {
                let mut id = [0u8; CALL_ID_LEN];
                rng.fill_token(&mut id);
                // SAFETY: `fill_token` writes ASCII.
                ShortText::new(unsafe { own_text(&id) })
            }
        };
        let from_tag = match &options.from_tag {
            Some(t) => ShortText::new(t),
            None => {
                let mut tag = [0u8; FROM_TAG_LEN];
                rng.fill_token(&mut tag);
                // SAFETY: `fill_token` writes ASCII.
                ShortText::new(unsafe { own_text(&tag) })
            }
        };
        Ok(Registerer {
            cseq: settings.cseq,
            expires: settings.expires,
            settings,
            rng,
            key,
            state: State::Initial,
            call_id,
            from_tag,
            local: MaybeAddr::None,
            bound_contact: None,
            bound_at: NOT_LISTED,
            stale_contacts: Vec::new(),
            pending: None,
            queued_at: MaybeInstant::NONE,
            queued_kind: Kind::Register,
            lingering: Vec::new(),
            refresh_at: MaybeInstant::NONE,
            expire_at: MaybeInstant::NONE,
            retry_at: MaybeInstant::NONE,
            dispose_deadline: MaybeInstant::NONE,
            rebind_wanted: false,
            dispose_resent: false,
            auth: packed_auth::AuthCache::default(),
            contacts: None,
            retry_after: None,
            last_reason: None,
            last_status: 0,
            failures: 0,
            retransmissions: 0,
            timed_out: false,
            events: Vec::new(),
            transmits: Owed::default(),
            contact_public: MaybeAddr::None,
            public_address: MaybeAddr::None,
            outbound_refused: false,
            outbound_in_use: false,
            routing: None,
            keepalive: None,
            flow_failed: false,
            targets: None,
            awaiting_targets: false,
            resolution_wanted: false,
            paced: false,
            failure: None,
            registered_at: MaybeInstant::NONE,
            failures_at_ok: 0,
            failure_fresh: false,
        })
    }

    // ----- read-only view -------------------------------------------------

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Makes the key at the start of this registerer's branches `id` in the
    /// token alphabet (the endpoint reads the registerer of a response from
    /// its branch without a table; the random tail after the key still
    /// makes a branch unguessable). Before the first request only; false
    /// (the random key kept) when `id` needs more than the key's length.
    pub fn set_key_id(&mut self, id: u64) -> bool {
        // Every request sent took a CSeq: none was, while it is the first.
        if self.has_request() || self.cseq != self.settings.cseq {
            return false;
        }
        match super::rand::id_token::<KEY_LEN>(id) {
            Some(k) => {
                self.key = k;
                true
            }
            None => false,
        }
    }

    /// The key at the start of this registerer's branches (see [`branch_key`]).
    pub fn key(&self) -> &str {
        // SAFETY: the key is drawn from the token alphabet (`fill_token`,
        // `id_token`): ASCII.
        unsafe { own_text(&self.key) }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a request is in flight (SIP.js's private `waiting` flag).
    pub fn is_waiting(&self) -> bool {
        self.has_request()
    }

    /// Whether a request waits to start its transaction (paced registerers only;
    /// the runtime calls [`admit`](Self::admit) when the window has room).
    pub fn wants_admission(&self) -> bool {
        self.queued_at.is_some() || self.pending.as_ref().is_some_and(|p| !p.admitted)
    }

    /// Whether a request is started: queued for the pacing window or in flight.
    fn has_request(&self) -> bool {
        self.pending.is_some() || self.queued_at.is_some()
    }

    /// The kind of the request started, if any.
    fn request_kind(&self) -> Option<Kind> {
        let queued = self.queued_at.is_some().then_some(self.queued_kind);
        self.pending.as_ref().map(|p| p.kind).or(queued)
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
    pub fn contacts(&self) -> Vec<String> {
        self.contacts
            .as_ref()
            .map(ContactList::to_vec)
            .unwrap_or_default()
    }

    /// [`contacts`](Self::contacts), shared rather than copied (`None`: none).
    pub fn shared_contacts(&self) -> Option<ContactList> {
        self.contacts.clone()
    }

    /// Our Contact as the last 2xx bound it, if it did.
    fn bound_contact(&self) -> Option<String> {
        if self.bound_at != NOT_LISTED {
            let listed = self.contacts.as_ref()?.get(usize::from(self.bound_at));
            return listed.map(str::to_owned);
        }
        self.bound_contact.as_deref().map(str::to_owned)
    }

    /// Takes our bound Contact (none is bound afterwards).
    fn take_bound_contact(&mut self) -> Option<String> {
        let bound = self.bound_contact();
        self.set_bound_contact(None);
        bound
    }

    /// Records `text` as our bound Contact: by its place in the contact
    /// list when the 2xx listed it as we sent it, else as its own text.
    fn set_bound_contact(&mut self, text: Option<String>) {
        self.bound_at = NOT_LISTED;
        self.bound_contact = None;
        let Some(text) = text else {
            return;
        };
        let at = self
            .contacts
            .as_ref()
            .and_then(|c| c.iter().position(|c| c == text));
        match at
            .and_then(|i| u8::try_from(i).ok())
            .filter(|i| *i != NOT_LISTED)
        {
            Some(i) => self.bound_at = i,
            None => self.bound_contact = Some(text.into_boxed_str()),
        }
    }

    /// Replaces the contact list of the last 2xx; a bound Contact read from
    /// the old list keeps its text.
    fn replace_contacts(&mut self, contacts: Option<ContactList>) {
        if self.bound_at != NOT_LISTED {
            let bound = self.bound_contact();
            self.bound_at = NOT_LISTED;
            self.bound_contact = bound.map(String::into_boxed_str);
        }
        self.contacts = contacts;
    }

    /// Retry-After seconds of the last rejection, if it had one.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Status and reason of the last final response (including synthesised 408/503).
    pub fn last_response(&self) -> Option<(u16, &str)> {
        self.last_reason.as_ref().map(|r| (self.last_status, &**r))
    }

    /// [`last_response`](Self::last_response) with the reason shared rather than copied.
    pub fn shared_last_response(&self) -> Option<(u16, Arc<str>)> {
        self.last_reason.clone().map(|r| (self.last_status, r))
    }

    /// Time until the scheduled automatic retry.
    pub fn next_retry(&self, now: Instant) -> Option<Duration> {
        self.retry_at
            .get()
            .map(|t| t.saturating_duration_since(now))
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
        self.call_id.as_str()
    }

    /// Timer E retransmissions so far.
    pub fn retransmissions(&self) -> u64 {
        u64::from(self.retransmissions)
    }

    /// True once after a transaction timed out (the runtime drops a stream
    /// connection then, so the next attempt does not reuse a dead socket).
    pub fn take_timed_out(&mut self) -> bool {
        std::mem::take(&mut self.timed_out)
    }

    /// When the automatic retry is due.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.get()
    }

    /// Our contact URI for the current local address (the public one after a rewrite).
    pub fn contact(&self) -> Option<String> {
        self.local.get().map(|l| {
            request::contact_uri(
                &self.settings,
                self.contact_user(),
                self.contact_addr(l),
                self.outbound_wanted(),
            )
        })
    }

    /// The address the registrar saw our last successful REGISTER come from
    /// (Via `received`/`rport`), if it said.
    pub fn public_address(&self) -> Option<SocketAddr> {
        self.public_address.get()
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

    /// Why the last attempt failed; `None` before any attempt ended and after a success.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_deref()
    }

    // ----- internals shared by the parts -----------------------------------

    /// Records why the attempt in progress failed (kept until the next
    /// success) and tells the application ([`Event::Failed`]). A status
    /// without a reason takes the reason of the last response with that status.
    fn record_failure(&mut self, mut failure: Failure) {
        if let (Some(status), true) = (failure.status, failure.reason.is_empty()) {
            if let Some((s, reason)) = self.last_response() {
                if s == status {
                    failure.reason = reason.to_string();
                }
            }
        }
        self.failure_fresh = true;
        self.events.push(Event::Failed(failure.clone()));
        self.failure = Some(Box::new(failure));
    }

    /// A success: no failure to report any more.
    fn clear_failure(&mut self) {
        self.failure = None;
        self.failure_fresh = false;
    }

    /// Where requests go, for failure details: the RFC 3263 target in use,
    /// else the registrar's (or proxy's) host and port.
    fn target_text(&self) -> String {
        match self.current_target() {
            Some(t) => t.addr.to_string(),
            None => format!(
                "{}:{}",
                self.settings.target_host, self.settings.target_port
            ),
        }
    }

    fn note(&mut self, msg: &str) {
        self.events.push(Event::Note(msg.to_owned()));
    }

    fn warn(&mut self, msg: &str) {
        self.events.push(Event::Warning(msg.to_owned()));
    }

    fn set_state(&mut self, s: State) {
        if self.state != s {
            self.state = s;
            self.events.push(Event::StateChanged(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registerer() -> Registerer {
        let ua = UserAgentConfig::new("sip:alice@127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        Registerer::new(&ua, &RegistererOptions::default(), 7).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_contact_listed_as_sent_is_read_from_the_list_and_survives_its_replacement() {
        let mut r = registerer();
        r.replace_contacts(ContactList::of([
            "sip:bob@127.0.0.1:5070",
            "sip:alice@127.0.0.1:5080",
        ]));
        r.set_bound_contact(Some("sip:alice@127.0.0.1:5080".to_owned()));
        assert_eq!(
            (r.bound_at, r.bound_contact.is_none()),
            (1, true),
            "no copy kept"
        );
        assert_eq!(
            r.bound_contact().as_deref(),
            Some("sip:alice@127.0.0.1:5080")
        );
        // A new list (a later 2xx that did not bind ours) leaves our text as it was.
        r.replace_contacts(ContactList::of(["sip:carol@127.0.0.1:5090"]));
        assert_eq!(
            r.bound_contact().as_deref(),
            Some("sip:alice@127.0.0.1:5080")
        );
        assert_eq!(
            r.take_bound_contact().as_deref(),
            Some("sip:alice@127.0.0.1:5080")
        );
        assert_eq!(r.bound_contact(), None);
    }

    #[test]
    fn a_contact_the_list_does_not_hold_as_sent_keeps_its_own_text() {
        let mut r = registerer();
        r.replace_contacts(ContactList::of(["sip:alice@127.0.0.1:5080;ob"]));
        r.set_bound_contact(Some("sip:alice@127.0.0.1:5080".to_owned()));
        assert_eq!(r.bound_at, NOT_LISTED);
        assert_eq!(
            r.bound_contact().as_deref(),
            Some("sip:alice@127.0.0.1:5080")
        );
        r.replace_contacts(None);
        assert_eq!(
            r.bound_contact().as_deref(),
            Some("sip:alice@127.0.0.1:5080")
        );
        r.set_bound_contact(None);
        assert_eq!(r.bound_contact(), None);
    }

    #[test]
    fn a_lent_event_buffer_fills_and_an_unused_one_comes_back() {
        let mut r = registerer();
        assert_eq!(r.reclaim_event_buffer(), None, "a new registerer has none");
        let lent: Vec<Event> = Vec::with_capacity(4);
        let at = lent.as_ptr();
        assert!(r.lend_event_buffer(lent).is_none(), "taken");
        let again = r
            .lend_event_buffer(Vec::with_capacity(4))
            .unwrap_or_else(|| panic!("a second buffer is given back"));
        assert_eq!(again.capacity(), 4);
        // Unused: it comes back whole, and the registerer keeps none.
        let back = r.reclaim_event_buffer().unwrap_or_else(|| panic!("back"));
        assert_eq!((back.as_ptr(), back.capacity()), (at, 4));
        assert_eq!(r.reclaim_event_buffer(), None);
        // Filled: the events go out in it (no buffer of the registerer's own).
        assert!(r.lend_event_buffer(back).is_none());
        r.set_local_addr("127.0.0.1:5080".parse().unwrap_or_else(|e| panic!("{e}")));
        r.register(Instant::now()).unwrap_or_else(|e| panic!("{e}"));
        r.note("a note");
        let mut out = Vec::new();
        assert!(r.drain_events(&mut out));
        assert_eq!(out.as_ptr(), at, "the lent buffer carries the events");
        assert_eq!(r.reclaim_event_buffer(), None);
        // Appended to a list that has some: the emptied buffer is let go
        // (a caller that never reclaims must not leave it with every registerer).
        assert!(r.lend_event_buffer(Vec::with_capacity(4)).is_none());
        r.note("another");
        assert!(r.drain_events(&mut out));
        assert!(matches!(out.last(), Some(Event::Note(n)) if n == "another"));
        assert_eq!(r.event_buffer_capacity(), 0);
        assert_eq!(r.reclaim_event_buffer(), None);
        // Lent while events wait: refused, and they stay first, in order.
        r.note("waiting");
        let refused = r
            .lend_event_buffer(Vec::with_capacity(8))
            .unwrap_or_else(|| panic!("refused"));
        assert_eq!(refused.capacity(), 8);
        let mut rest = Vec::new();
        assert!(r.drain_events(&mut rest));
        assert!(matches!(&rest[..], [Event::Note(n)] if n == "waiting"));
    }

    #[test]
    fn a_retransmittable_request_is_copied_into_the_spare_buffer() {
        let mut r = registerer();
        r.set_local_addr("127.0.0.1:5080".parse().unwrap_or_else(|e| panic!("{e}")));
        r.register(Instant::now()).unwrap_or_else(|e| panic!("{e}"));
        let mut spare = Vec::with_capacity(2048);
        spare.extend_from_slice(b"old bytes");
        let at = spare.as_ptr();
        let sent = r
            .poll_transmit_reusing(&mut spare)
            .unwrap_or_else(|| panic!("a REGISTER"));
        assert_eq!(sent.bytes.as_ptr(), at, "written into the spare buffer");
        assert!(
            sent.bytes.starts_with(b"REGISTER "),
            "old bytes cleared first"
        );
        assert_eq!(spare.capacity(), 0, "the spare is taken");
        let kept = r
            .pending
            .as_ref()
            .map(|p| p.bytes.clone())
            .filter(|b| !b.is_empty());
        assert_eq!(
            kept.as_deref(),
            Some(&sent.bytes[..]),
            "and still kept for Timer E"
        );
    }

    #[test]
    fn the_answer_to_a_challenge_is_written_into_the_first_requests_buffer() {
        for algorithm in ["MD5", "SHA-256"] {
            let mut ua =
                UserAgentConfig::new("sip:alice@127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
            ua.set_password(Some("pw"))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut r = Registerer::new(&ua, &RegistererOptions::default(), 7)
                .unwrap_or_else(|e| panic!("{e}"));
            r.set_local_addr("127.0.0.1:5080".parse().unwrap_or_else(|e| panic!("{e}")));
            let now = Instant::now();
            r.register(now).unwrap_or_else(|e| panic!("{e}"));
            let first = r.poll_transmit().unwrap_or_else(|| panic!("a REGISTER"));
            let kept = |r: &Registerer| {
                r.pending
                    .as_ref()
                    .map(|p| &p.bytes)
                    .filter(|b| !b.is_empty())
                    .map(|b| (b.as_ptr(), b.capacity()))
            };
            let (at, room) = kept(&r).unwrap_or_else(|| panic!("kept for Timer E"));
            assert!(room >= first.bytes.len() + request::ANSWER_ROOM);
            let req = crate::core::message::Request::parse(&first.bytes)
                .unwrap_or_else(|e| panic!("{e}"));
            let field = |v: Option<&str>| v.unwrap_or_else(|| panic!("a header")).to_owned();
            // A nonce as long as the longest a registrar here sends.
            let nonce = "n".repeat(64);
            let challenge = format!(
                "SIP/2.0 401 Unauthorized\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=t1\r\n\
                 Call-ID: {}\r\nCSeq: {}\r\nWWW-Authenticate: Digest realm=\"127.0.0.1\", \
                 nonce=\"{nonce}\", qop=\"auth\", algorithm={algorithm}\r\n\
                 Content-Length: 0\r\n\r\n",
                field(req.top_via_text()),
                field(req.from_value()),
                field(req.to_value()),
                field(req.call_id()),
                field(req.cseq_value()),
            );
            let resp = Response::parse(challenge.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            r.handle_response(now, &resp)
                .unwrap_or_else(|e| panic!("{e:?}"));
            let second = r.poll_transmit().unwrap_or_else(|| panic!("the answer"));
            let text = String::from_utf8_lossy(&second.bytes).into_owned();
            assert!(text.contains("\r\nAuthorization: Digest "), "{text}");
            assert!(text.contains(&format!("algorithm={algorithm}")), "{text}");
            assert_eq!(
                kept(&r),
                Some((at, room)),
                "{algorithm}: written into the first request's buffer, which had room"
            );
        }
    }

    #[test]
    fn a_stream_request_is_handed_over_and_the_spare_buffer_left_alone() {
        let mut ua = UserAgentConfig::new("sip:alice@127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        ua.transport = crate::core::options::Transport::Tcp;
        ua.transport_chosen = true;
        let mut r = Registerer::new(&ua, &RegistererOptions::default(), 7)
            .unwrap_or_else(|e| panic!("{e}"));
        r.set_local_addr("127.0.0.1:5080".parse().unwrap_or_else(|e| panic!("{e}")));
        r.register(Instant::now()).unwrap_or_else(|e| panic!("{e}"));
        let mut spare = Vec::with_capacity(2048);
        let sent = r
            .poll_transmit_reusing(&mut spare)
            .unwrap_or_else(|| panic!("a REGISTER"));
        assert!(sent.bytes.starts_with(b"REGISTER "));
        assert!(
            sent.bytes.capacity() < sent.bytes.len() + request::ANSWER_ROOM,
            "no room left for an answer in bytes handed over whole"
        );
        assert_eq!(spare.capacity(), 2048, "not taken: the caller keeps it");
        assert!(
            r.pending.as_ref().is_some_and(|p| p.bytes.capacity() == 0),
            "nothing kept for a retransmission over a stream"
        );
    }

    #[test]
    fn the_key_becomes_the_id_only_before_the_first_request() {
        let mut r = registerer();
        assert!(
            !r.set_key_id(1 << 50),
            "an id beyond 50 bits keeps the random key"
        );
        assert!(r.set_key_id(4242));
        assert_eq!(crate::core::rand::token_id(r.key().as_bytes()), Some(4242));
        r.set_local_addr("127.0.0.1:5080".parse().unwrap_or_else(|e| panic!("{e}")));
        r.register(Instant::now()).unwrap_or_else(|e| panic!("{e}"));
        let sent = r.poll_transmit().unwrap_or_else(|| panic!("a REGISTER"));
        let text = String::from_utf8_lossy(&sent.bytes).into_owned();
        assert!(
            text.contains(&format!(";branch=z9hG4bK{}", r.key())),
            "{text}"
        );
        assert!(
            !r.set_key_id(7),
            "the branch of a sent request keeps its key"
        );
        assert_eq!(crate::core::rand::token_id(r.key().as_bytes()), Some(4242));
    }
}
