//! The endpoint: every user agent and registerer of the process, the flows
//! they share, and every decision between them and the network — which
//! registerer a message belongs to, pacing per registrar target, which flow
//! and target a request uses, what a lost flow, a failed handshake or a
//! timeout means. Sans-IO like the rest of the core: it never touches a
//! socket, a thread or the clock.
//!
//! Inputs are method calls, each with `now`: API commands
//! ([`add_registerer`](Endpoint::add_registerer), [`register`](Endpoint::register), …),
//! network input ([`datagram`](Endpoint::datagram),
//! [`stream_message`](Endpoint::stream_message)), the application's
//! answers and messages ([`respond`](Endpoint::respond),
//! [`send_message`](Endpoint::send_message)), flow events
//! ([`flow_opened`](Endpoint::flow_opened), [`flow_up`](Endpoint::flow_up),
//! [`flow_failed`](Endpoint::flow_failed), …), resolver answers
//! ([`resolved`](Endpoint::resolved)) and [`handle_timeout`](Endpoint::handle_timeout).
//! Outputs are polled: [`poll_transmit`](Endpoint::poll_transmit) (bytes for
//! a flow and a destination), [`poll_action`](Endpoint::poll_action) (open or
//! close a flow, find a route, resolve a name, publish a registerer's view
//! and events, hand a request to the application) and
//! [`poll_timeout`](Endpoint::poll_timeout). The runtime is
//! the I/O shell that carries them out; tests drive the same endpoint on a
//! simulated clock and network.

pub mod answer_limit;
mod answered;
mod app_requests;
pub mod connect_limit;
mod flows;
mod incoming;
mod io;
pub mod pacing;
mod receive;
mod reg_list;
mod service;
pub mod stats;
mod timers;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use flows::{normalized_user, Flow, FlowKey};
use io::view_of;
pub use io::{
    Action, ConnectSpec, Facts, FlowError, HandshakeStep, ShownFlow, TlsSpec, Transmit,
    TransmitKind, View, WsSpec,
};
pub use stats::{SharedStats, UaStats};

use self::flows::Flows;
use self::pacing::{Outcome, Pacer};
use self::timers::Timers;
use super::compact::MaybeInstant;
use super::failure::{Failure, FailureKind};
use super::id_table::{IdTable, IdTableSet};
use super::idhash::IdMap;
use super::options::{Transport, UserAgentConfig, DEFAULT_ALLOW, DEFAULT_USER_AGENT};
use super::registerer::{Event, Registerer, State, KEY_LEN};
use super::targets::TargetList;
use crate::log::Level;
use crate::log_at;

/// Identifies a user agent.
pub type UaId = u64;
/// Identifies a registerer.
pub type RegId = u64;

/// Identifies a flow: a UDP socket or a stream connection. Never 0, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

struct UaEntry {
    /// Shared with the API handle and the registerers (copied only on change).
    config: Arc<UserAgentConfig>,
    stats: SharedStats,
    /// How its contact answers (shared with user agents that answer alike,
    /// and copied beside its contact users on flows: see [`Card`]).
    answering: Arc<Answering>,
    /// Its registerers (usually one: kept inline, not a list on the heap).
    regs: reg_list::RegList,
    /// Being freed: gone once its last registerer is.
    freeing: bool,
    /// The "certificates are not checked" warning was logged for this user agent.
    warned_insecure: bool,
}

/// What answering a request for a user agent's contact reads: how it
/// answers and its counters. A copy sits beside each of its contact users
/// on a flow, so a request routed there needs no look into the user agent
/// table: at 10 000 contacts pinged in turn that table's entries are cold,
/// a cache miss a request. The answering is shared by the user agents that
/// answer alike, so it stays in cache.
#[derive(Clone)]
pub(super) struct Card {
    answering: Arc<Answering>,
    stats: SharedStats,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Card")
    }
}

impl Card {
    /// A card for tests of the flow table.
    #[cfg(test)]
    pub(super) fn blank() -> Card {
        let config = UserAgentConfig::new("sip:a@127.0.0.1").unwrap_or_else(|_| unreachable!());
        Card {
            answering: Arc::new(Answering::of(&config)),
            stats: SharedStats::new(),
        }
    }
}

const DEFAULT_ALLOW_LINE: &str = concat!("Allow: ", "OPTIONS");
const DEFAULT_SERVER_LINE: &str = concat!("Server: sipreg/", env!("CARGO_PKG_VERSION"));

/// How a user agent's contact answers requests: read on every request, so
/// kept in its entry (one place in memory) rather than behind the settings
/// and the registerers.
struct Answering {
    /// `Allow: …` of the library's answers (the default one is shared).
    allow: Arc<str>,
    /// `Server: …` of the library's answers (the default one is shared).
    server: Arc<str>,
    /// The application listens for requests.
    listener: bool,
    /// The library answers OPTIONS.
    answer_options: bool,
    /// A registerer asks for GRUUs (`path_gruu`): OPTIONS answers say `gruu`.
    gruu: bool,
    /// A registerer uses RFC 5626 outbound: OPTIONS answers say `outbound`.
    outbound: bool,
}

/// The default Allow and Server lines, shared, not allocated per user agent.
fn default_lines() -> &'static (Arc<str>, Arc<str>) {
    static DEFAULT_LINES: OnceLock<(Arc<str>, Arc<str>)> = OnceLock::new();
    DEFAULT_LINES.get_or_init(|| (DEFAULT_ALLOW_LINE.into(), DEFAULT_SERVER_LINE.into()))
}

/// Answerings with the default lines, one per combination of the flags
/// (index: [`Answering::flag_bits`]).
type CommonAnswerings = [Option<Arc<Answering>>; 16];

impl Answering {
    fn of(config: &UserAgentConfig) -> Answering {
        let defaults = default_lines();
        let allow = if config.extras().allow == DEFAULT_ALLOW {
            defaults.0.clone()
        } else {
            format!("Allow: {}", config.extras().allow).into()
        };
        let server = if config.extras().user_agent == DEFAULT_USER_AGENT {
            defaults.1.clone()
        } else {
            format!("Server: {}", config.extras().user_agent).into()
        };
        Answering {
            allow,
            server,
            listener: config.listener,
            answer_options: config.answer_options,
            gruu: false,
            outbound: false,
        }
    }

    /// New settings; what the registerers said stays.
    fn follow(&self, config: &UserAgentConfig) -> Answering {
        Answering {
            gruu: self.gruu,
            outbound: self.outbound,
            ..Answering::of(config)
        }
    }

    fn flag_bits(&self) -> usize {
        usize::from(self.listener)
            | usize::from(self.answer_options) << 1
            | usize::from(self.gruu) << 2
            | usize::from(self.outbound) << 3
    }

    /// `self` shared: with the default lines, every user agent with the
    /// same flags holds one value (custom lines get their own).
    fn shared(self, common: &mut CommonAnswerings) -> Arc<Answering> {
        let defaults = default_lines();
        let default_lines =
            Arc::ptr_eq(&self.allow, &defaults.0) && Arc::ptr_eq(&self.server, &defaults.1);
        match common.get_mut(self.flag_bits()) {
            Some(slot) if default_lines => slot.get_or_insert_with(|| Arc::new(self)).clone(),
            _ => Arc::new(self),
        }
    }
}

struct RegEntry {
    /// Boxed where the API call made it (moving it here would free that box
    /// on this thread, far from the allocator arena it came from).
    core: Box<Registerer>,
    ua: UaId,
    /// The flow this registerer sends on.
    flow: Option<FlowId>,
    /// The deadline last scheduled for it (8 bytes, not `Option`'s 16: with
    /// the freed mark kept apart, the entry is a 64-byte heap chunk, not 80).
    timer_at: MaybeInstant,
    /// An unregister that arrived while a request was in flight (an automatic
    /// refresh raced the API call): run when that request ends.
    /// Boxed: rare, and the entry stays small.
    deferred_unregister: Option<Box<(bool, Vec<String>)>>,
    /// The flow last published (shared with the registerers on it).
    shown_flow: Option<Arc<ShownFlow>>,
}

/// Every registerer and flow of the process, sans-IO.
#[derive(Default)]
pub struct Endpoint {
    /// Entries boxed, the table's pages holding pointers: a page lives
    /// while any of its ids does, and when accounts come and go one live
    /// entry holds several slots (a few at random lifetimes, 32 at worst),
    /// which costs 8 bytes a slot this way, not the entry's size.
    uas: IdTable<Box<UaEntry>>,
    /// Entries boxed, as for `uas`.
    regs: IdTable<Box<RegEntry>>,
    /// Registerer keys (the start of every branch) to registerers, as bytes
    /// inline rather than strings on the heap: only for keys that are not
    /// the registerer's id (ids beyond the key's 50 bits; see
    /// [`Registerer::set_key_id`]).
    keys: IdMap<[u8; KEY_LEN], RegId>,
    /// Registerers whose handle was freed: removed once Terminated.
    freed_regs: IdTableSet,
    flows: Flows,
    /// Window of transactions in flight per registrar target.
    pacing: Pacer<SocketAddr, RegId>,
    /// New stream connections per target, rate-limited.
    connects: connect_limit::ConnectLimit,
    timers: Timers,
    /// Messages to send, each with whether it may wait (see
    /// [`Endpoint::transmits_may_wait`]).
    transmits: VecDeque<(Transmit, bool)>,
    /// How many of `transmits` may not wait.
    urgent_transmits: usize,
    actions: VecDeque<Action>,
    /// Users of flows closed during a registerer's step, told after that
    /// step: (users, why, the registerer whose step it was).
    later: Vec<(Vec<RegId>, FlowError, RegId)>,
    /// Answer budgets per request source.
    limit: answer_limit::AnswerLimit,
    /// Requests handed to the application, for their retransmissions.
    answered: answered::Answered,
    /// The application's own requests, for their responses.
    app_requests: app_requests::AppRequests,
    /// Key of our To tags.
    secret: u64,
    /// The flow view made last, handed to the next registerer sending the
    /// same way instead of a text of its own.
    last_shown_flow: Option<Arc<ShownFlow>>,
    /// The buffers of the last request read, reused for the next one.
    spare_request: crate::core::message::Request,
    /// The buffers of the last response read, reused for the next one.
    spare_response: crate::core::message::ResponseBuffers,
    /// The answerings user agents share (see [`Answering::shared`]).
    common_answerings: CommonAnswerings,
    /// Buffers of messages sent, handed back by the shell
    /// ([`recycle`](Endpoint::recycle)) for the next copies.
    spare_bytes: Vec<Vec<u8>>,
    /// Event lists published and handed back
    /// ([`recycle_events`](Endpoint::recycle_events)), lent to registerers
    /// for their next steps' events.
    spare_events: Vec<Vec<Event>>,
}

/// How many published event lists the endpoint keeps for reuse (as
/// [`SPARE_BYTES_KEPT`]; a list is 224 bytes).
const SPARE_EVENTS_KEPT: usize = 128;

/// Event lists with room for more than this many are freed, not kept.
const SPARE_EVENTS_MAX_CAPACITY: usize = 16;

/// How many sent buffers the endpoint keeps for reuse: a turn's burst of
/// first sends (the pacing window is 64 per target) without an allocation
/// each, and a bound on what is kept idle (a few hundred KiB at most).
const SPARE_BYTES_KEPT: usize = 128;

/// Buffers larger than this are freed, not kept (a large message now and
/// then should not pin its size).
const SPARE_BYTES_MAX_CAPACITY: usize = 2048;

/// Buffers smaller than this are freed, not kept: a keep-alive's few bytes
/// would only be grown again by the next request's copy.
const SPARE_BYTES_MIN_CAPACITY: usize = 256;

/// Keeps `buf`, emptied, in `pool` when the pool has fewer than `kept` and
/// the buffer's room is within `room`; else lets it go.
fn keep_spare<T>(
    pool: &mut Vec<Vec<T>>,
    mut buf: Vec<T>,
    kept: usize,
    room: std::ops::RangeInclusive<usize>,
) {
    if pool.len() < kept && room.contains(&buf.capacity()) {
        buf.clear();
        pool.push(buf);
    }
}

/// Lends `core` a list from `pool` for its next step's events (kept in the
/// pool when the registerer already has one).
fn lend_spare_events(pool: &mut Vec<Vec<Event>>, core: &mut Registerer) {
    if let Some(back) = pool.pop().and_then(|buf| core.lend_event_buffer(buf)) {
        pool.push(back);
    }
}

impl Endpoint {
    /// An endpoint with nothing in it.
    pub fn new() -> Endpoint {
        Endpoint::default()
    }

    // ----- outputs ----------------------------------------------------------

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (t, may_wait) = self.transmits.pop_front()?;
        if !may_wait {
            self.urgent_transmits -= 1;
        }
        Some(t)
    }

    /// Gives back the bytes of a sent [`Transmit`], for the next message's
    /// copy: with the buffers of a turn's sends handed back, the next
    /// turn's need no allocation. Optional (a shell that drops them only
    /// allocates more).
    pub fn recycle(&mut self, bytes: Vec<u8>) {
        keep_spare(
            &mut self.spare_bytes,
            bytes,
            SPARE_BYTES_KEPT,
            SPARE_BYTES_MIN_CAPACITY..=SPARE_BYTES_MAX_CAPACITY,
        );
    }

    /// Gives back the events of a delivered [`Action::Publish`], for the
    /// next steps' events: with every published list handed back, a
    /// registerer's step queues its events without an allocation.
    /// Optional, as [`recycle`](Self::recycle).
    pub fn recycle_events(&mut self, events: Vec<Event>) {
        keep_spare(
            &mut self.spare_events,
            events,
            SPARE_EVENTS_KEPT,
            1..=SPARE_EVENTS_MAX_CAPACITY,
        );
    }

    /// Lends registerer `id` a spare event list before a step (see
    /// [`Registerer::lend_event_buffer`]).
    fn lend_events(&mut self, id: RegId) {
        if let Some(reg) = self.regs.get_mut(&id) {
            lend_spare_events(&mut self.spare_events, &mut reg.core);
        }
    }

    /// Takes back what registerer `id` did not fill after a step.
    fn reclaim_events(&mut self, id: RegId) {
        if let Some(buf) = self
            .regs
            .get_mut(&id)
            .and_then(|r| r.core.reclaim_event_buffer())
        {
            self.recycle_events(buf);
        }
    }

    /// Whether messages wait to be sent.
    pub fn has_transmits(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// How many messages wait to be sent.
    pub fn queued_transmits(&self) -> usize {
        self.transmits.len()
    }

    /// Whether every message waiting to be sent (if any) is an answer the
    /// library wrote to a request: the 200 to an OPTIONS ping, a 100, 400,
    /// 404, 405, 416, 420, 481 or 503. Nothing waits on those at the scale
    /// of a millisecond (their senders' timers start at T1, 500 ms), so the
    /// shell may hold them a moment and send them with the next ones: a
    /// registrar that pings thousands of contacts gets its answers in
    /// bursts, one wake-up of its receiver for many, not one each.
    /// Anything else (a REGISTER, a keep-alive, the application's messages
    /// and responses, an answer repeated for a retransmission) goes at
    /// once, and whatever waits goes with it, in order.
    pub fn transmits_may_wait(&self) -> bool {
        self.urgent_transmits == 0
    }

    /// Queues `t`; `may_wait`: see [`transmits_may_wait`](Self::transmits_may_wait).
    fn push_transmit(&mut self, t: Transmit, may_wait: bool) {
        if !may_wait {
            self.urgent_transmits += 1;
        }
        self.transmits.push_back((t, may_wait));
    }

    /// Next thing for the shell to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let regs = &self.regs;
        let flows = &self.flows;
        self.timers.next(
            |id, t| regs.get(&id).is_some_and(|r| r.timer_at.get() == Some(t)),
            |f, t| {
                flows.get(f).is_some_and(|f| {
                    f.handshake_deadline == Some(t)
                        || f.pending_connect.as_ref().is_some_and(|(at, _)| *at == t)
                })
            },
        )
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(flow) = self.timers.pop_flow(now) {
            let due = self
                .flows
                .get_mut(flow)
                .and_then(|f| f.pending_connect.take_if(|(at, _)| *at <= now));
            if let Some((_, spec)) = due {
                self.start_connect(flow, spec, now);
                continue;
            }
            let late = self
                .flows
                .get(flow)
                .filter(|f| f.handshake_deadline.is_some_and(|d| d <= now) && !f.up)
                .map(|f| f.step.timeout());
            if let Some(failure) = late {
                // Failed here, before any request's timer due at the same instant.
                self.actions.push_back(Action::Close { flow });
                self.flow_failed(
                    now,
                    flow,
                    FlowError {
                        failure,
                        established: false,
                    },
                );
            }
        }
        while let Some((t, id)) = self.timers.pop_reg(now) {
            let due = self.regs.get_mut(&id).is_some_and(|r| {
                let live = r.timer_at.get() == Some(t);
                if live {
                    r.timer_at = MaybeInstant::NONE;
                }
                live
            });
            if due {
                self.drive(id, now, |core, now| core.handle_timeout(now));
            }
        }
        self.start_admitted(now);
    }

    // ----- user agents ------------------------------------------------------

    /// A new user agent. One already known keeps its entry (its
    /// registerers) and takes `config` as a settings change: the API may
    /// introduce it twice if it could not tell the first time went through.
    pub fn add_user_agent(&mut self, id: UaId, config: Arc<UserAgentConfig>, stats: SharedStats) {
        if self.uas.contains_key(&id) {
            self.set_user_agent_config(id, config);
            return;
        }
        let answering = Answering::of(&config).shared(&mut self.common_answerings);
        self.uas.insert(
            id,
            Box::new(UaEntry {
                answering,
                config,
                stats,
                regs: reg_list::RegList::default(),
                freeing: false,
                warned_insecure: false,
            }),
        );
    }

    /// The user agent's settings changed: flows opened later and every
    /// registerer's NAT options and credentials follow the new values.
    pub fn set_user_agent_config(&mut self, id: UaId, config: Arc<UserAgentConfig>) {
        let Some(ua) = self.uas.get_mut(&id) else {
            return;
        };
        ua.answering = ua
            .answering
            .follow(&config)
            .shared(&mut self.common_answerings);
        ua.config = config;
        for rid in &ua.regs {
            if let Some(r) = self.regs.get_mut(rid) {
                r.core.apply_user_agent(&ua.config);
            }
        }
        self.refresh_cards(id);
    }

    /// The card of user agent `ua` (see [`Card`]).
    pub(super) fn card(&self, ua: UaId) -> Option<Card> {
        self.uas.get(&ua).map(|u| Card {
            answering: u.answering.clone(),
            stats: u.stats.clone(),
        })
    }

    /// User agent `ua`'s answering changed: the copies beside its contact
    /// users on flows follow.
    fn refresh_cards(&mut self, ua: UaId) {
        let Some(card) = self.card(ua) else {
            return;
        };
        let Some(u) = self.uas.get(&ua) else {
            return;
        };
        let mut flows: Vec<FlowId> = u
            .regs
            .iter()
            .filter_map(|rid| self.regs.get(rid)?.flow)
            .collect();
        flows.sort_unstable();
        flows.dedup();
        for flow in flows {
            self.flows.set_card(flow, ua, &card);
        }
    }

    /// The host's network changed: every flow the user agent's registerers
    /// use is closed and everyone on them re-binds and re-registers (with
    /// shared flows, every user agent on a flow moves with it).
    pub fn network_changed(&mut self, now: Instant, id: UaId) {
        let Some(ua) = self.uas.get(&id) else {
            return;
        };
        let mut regs: Vec<RegId> = ua.regs.to_vec();
        let mut flows: Vec<FlowId> = regs
            .iter()
            .filter_map(|rid| self.regs.get(rid).and_then(|r| r.flow))
            .collect();
        flows.sort_unstable();
        flows.dedup();
        for f in flows {
            regs.extend(self.close_flow(f));
        }
        regs.sort_unstable();
        regs.dedup();
        self.flows.forget_routes();
        log_at!(
            Level::Info,
            "network changed: re-binding {} registerer(s)",
            regs.len()
        );
        for rid in regs {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.flow = None;
            }
            self.drive(rid, now, |core, now| core.network_changed(now));
        }
        self.start_admitted(now);
    }

    /// Disposes every registerer of the user agent, then forgets it:
    /// [`Action::UserAgentFreed`] says when all are Terminated.
    pub fn free_user_agent(&mut self, now: Instant, id: UaId) {
        let Some(ua) = self.uas.get_mut(&id) else {
            self.actions.push_back(Action::UserAgentFreed { ua: id });
            return;
        };
        ua.freeing = true;
        for rid in ua.regs.to_vec() {
            self.drive(rid, now, |core, now| core.dispose(now));
        }
        self.check_ua_done(id);
        self.start_admitted(now);
    }

    // ----- registerers ------------------------------------------------------

    /// Adds a registerer (validated by the caller) to user agent `ua`. One
    /// whose user agent is gone or being freed ends at once, visibly.
    pub fn add_registerer(&mut self, id: RegId, ua: UaId, mut core: Box<Registerer>) {
        let live = self.uas.get_mut(&ua).filter(|u| !u.freeing);
        let Some(u) = live else {
            let mut view = view_of(&core, true);
            view.state = State::Terminated;
            view.disposing = true;
            self.actions.push_back(Action::Publish {
                reg: id,
                view,
                events: vec![Event::StateChanged(State::Terminated)],
            });
            self.actions.push_back(Action::Removed { reg: id });
            return;
        };
        if !u.regs.contains(&id) {
            u.regs.push(id);
        }
        let (gruu, outbound) = (
            u.answering.gruu || core.settings().path_gruu,
            u.answering.outbound || core.settings().reg_id.is_some(),
        );
        let changed = (gruu, outbound) != (u.answering.gruu, u.answering.outbound);
        if changed {
            let answering = Answering {
                allow: u.answering.allow.clone(),
                server: u.answering.server.clone(),
                gruu,
                outbound,
                ..*u.answering
            };
            u.answering = answering.shared(&mut self.common_answerings);
        }
        // The usual case: the key is the id, read back without a table.
        if !core.set_key_id(id) {
            if let Ok(k) = <[u8; KEY_LEN]>::try_from(core.key().as_bytes()) {
                self.keys.insert(k, id);
            }
        }
        if core.needs_resolution() {
            // A host name: RFC 3263 finds the targets before the first send.
            core.resolve_targets();
        }
        core.set_paced(true);
        self.regs.insert(
            id,
            Box::new(RegEntry {
                core,
                ua,
                flow: None,
                timer_at: MaybeInstant::NONE,
                deferred_unregister: None,
                shown_flow: None,
            }),
        );
        if changed {
            self.refresh_cards(ua);
        }
    }

    /// SIP.js `register()`, with `headers` on that request only (a request
    /// already in flight is fine: an automatic refresh won the race with the
    /// API call).
    pub fn register(&mut self, now: Instant, id: RegId, headers: &[String]) {
        self.drive(id, now, |core, now| {
            let _ = core.register_with_headers(now, headers);
        });
        self.start_admitted(now);
    }

    /// SIP.js `unregister()`, with `headers` on that request only; waits for
    /// a request in flight (an automatic refresh that raced the API call)
    /// and runs after it.
    pub fn unregister(&mut self, now: Instant, id: RegId, all: bool, headers: Vec<String>) {
        let mut deferred = false;
        self.drive(id, now, |core, now| {
            deferred = matches!(
                core.unregister_with_headers(now, all, &headers),
                Err(crate::Error::RequestPending)
            );
        });
        if deferred {
            if let Some(r) = self.regs.get_mut(&id) {
                r.deferred_unregister = Some(Box::new((all, headers)));
            }
        }
        self.start_admitted(now);
    }

    /// SIP.js `dispose()`.
    pub fn dispose(&mut self, now: Instant, id: RegId) {
        self.drive(id, now, |core, now| core.dispose(now));
        self.start_admitted(now);
    }

    /// The handle was freed: dispose, then forget the registerer once Terminated.
    pub fn free_registerer(&mut self, now: Instant, id: RegId) {
        if self.regs.contains_key(&id) {
            self.freed_regs.insert(id);
        }
        self.drive(id, now, |core, now| core.dispose(now));
        self.start_admitted(now);
    }

    /// The resolver's answer for registerer `id`'s targets.
    pub fn resolved(&mut self, now: Instant, id: RegId, result: Result<TargetList, Failure>) {
        self.drive(id, now, |core, now| core.targets_resolved(now, result));
        self.start_admitted(now);
    }

    /// The counters of user agent `ua`.
    pub fn ua_stats(&self, ua: UaId) -> Option<&SharedStats> {
        self.uas.get(&ua).map(|u| &u.stats)
    }

    /// The address packets on `flow` to `dest` leave from (for the trace).
    pub fn local_towards(&self, flow: FlowId, dest: SocketAddr) -> Option<SocketAddr> {
        self.flows.local_towards(flow, dest)
    }

    /// The registerer's core, to read (tests and diagnostics).
    pub fn registerer(&self, id: RegId) -> Option<&Registerer> {
        self.regs.get(&id).map(|r| &*r.core)
    }

    /// The flow registerer `id` sends on.
    pub fn flow_of(&self, id: RegId) -> Option<FlowId> {
        self.regs.get(&id).and_then(|r| r.flow)
    }

    /// A flow, to read (tests and diagnostics).
    pub fn flow(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(id)
    }

    /// Number of registerers.
    pub fn registerer_count(&self) -> usize {
        self.regs.len()
    }

    /// Number of open (or opening) flows.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Requests handed to the application that are remembered for their
    /// retransmissions (bounded; tests and diagnostics).
    pub fn remembered_requests(&self) -> usize {
        self.answered.len()
    }

    // ----- flow events --------------------------------------------------------

    /// The shell opened `flow` (bound a UDP socket, or started a connect):
    /// its local address, or why it could not.
    pub fn flow_opened(
        &mut self,
        now: Instant,
        flow: FlowId,
        result: Result<SocketAddr, FlowError>,
    ) {
        match result {
            Ok(local) => {
                let Some(f) = self.flows.get_mut(flow) else {
                    return;
                };
                f.local = Some(local);
                if f.key.transport == Transport::Udp {
                    f.up = true;
                } else {
                    log_at!(Level::Debug, "{}: connecting", f.describe());
                }
                let waiting = std::mem::take(&mut f.waiting);
                for rid in waiting {
                    self.drive(rid, now, |_, _| {});
                }
            }
            Err(e) => self.flow_failed(now, flow, e),
        }
        self.start_admitted(now);
    }

    /// A stream's handshakes moved on to `step`.
    pub fn flow_step(&mut self, flow: FlowId, step: HandshakeStep) {
        if let Some(f) = self.flows.get_mut(flow) {
            f.step = step;
        }
    }

    /// A stream finished its TCP, TLS and WebSocket handshakes.
    pub fn flow_up(&mut self, _now: Instant, flow: FlowId, detail: Option<&str>) {
        if let Some(f) = self.flows.get_mut(flow) {
            f.up = true;
            f.handshake_deadline = None;
            match detail {
                Some(d) => log_at!(Level::Debug, "{}: up ({d})", f.describe()),
                None => log_at!(Level::Debug, "{}: up", f.describe()),
            }
        }
    }

    /// A flow failed or closed (the shell has closed it): its users learn
    /// it — a request in flight fails, a registered binding re-registers.
    pub fn flow_failed(&mut self, now: Instant, flow: FlowId, error: FlowError) {
        let Some(f) = self.flows.remove(flow) else {
            return;
        };
        log_at!(Level::Info, "{}: {}", f.describe(), error.failure.detail);
        let mut users: Vec<RegId> = f.users.into_iter().collect();
        users.extend(f.waiting);
        users.sort_unstable();
        users.dedup();
        self.fail_users(users, now, &error, None);
        self.start_admitted(now);
    }

    /// The shell found (or could not find) the local IP towards `target`.
    pub fn route_found(
        &mut self,
        now: Instant,
        target: SocketAddr,
        result: Result<std::net::IpAddr, String>,
    ) {
        let waiters = self
            .flows
            .route_found(target, result.as_ref().ok().copied());
        for rid in waiters {
            match &result {
                Ok(_) => self.drive(rid, now, |_, _| {}),
                Err(why) => {
                    let why = Failure::new(
                        FailureKind::Transport,
                        format!("no route to {target}: {why}"),
                    );
                    self.drive(rid, now, |core, now| core.transport_error(now, why, false));
                }
            }
        }
        self.start_admitted(now);
    }

    /// Sending on `flow` to `dest` failed (a UDP send error, `why` built by
    /// the shell; a stream that fails a send is reported by
    /// [`flow_failed`](Self::flow_failed)).
    pub fn send_failed(&mut self, now: Instant, flow: FlowId, dest: SocketAddr, why: Failure) {
        self.unreachable(now, flow, Some(dest), why);
    }

    /// An ICMP error for a datagram sent on UDP `flow` to `dest` (`None`:
    /// unknown): the requests in flight to it fail at once instead of after Timer F.
    pub fn unreachable(
        &mut self,
        now: Instant,
        flow: FlowId,
        dest: Option<SocketAddr>,
        why: Failure,
    ) {
        let Some(f) = self.flows.get(flow) else {
            return;
        };
        let victims: Vec<RegId> = f
            .users
            .iter()
            .filter(|rid| {
                self.regs.get(rid).is_some_and(|r| {
                    r.core.in_transaction() && dest.is_none_or(|d| r.core.destination() == Some(d))
                })
            })
            .collect();
        self.bump_users(&victims, |s| &s.transport_errors);
        log_at!(
            Level::Info,
            "udp: {}; failing {} request(s)",
            why.detail,
            victims.len()
        );
        for rid in victims {
            let why = why.clone();
            self.drive(rid, now, |core, now| core.transport_error(now, why, false));
        }
        self.start_admitted(now);
    }

    // ----- helpers ------------------------------------------------------------

    /// Closes a flow (the shell is told) and returns who used it.
    fn close_flow(&mut self, flow: FlowId) -> Vec<RegId> {
        let Some(f) = self.flows.remove(flow) else {
            return Vec::new();
        };
        self.actions.push_back(Action::Close { flow });
        f.users.into_iter().collect()
    }

    /// A flow is gone: tell every registerer that used it (but `except`).
    fn fail_users(
        &mut self,
        users: Vec<RegId>,
        now: Instant,
        error: &FlowError,
        except: Option<RegId>,
    ) {
        let users: Vec<RegId> = users.into_iter().filter(|r| Some(*r) != except).collect();
        self.bump_users(&users, |s| &s.transport_errors);
        for rid in users {
            if let Some(r) = self.regs.get_mut(&rid) {
                r.flow = None;
            }
            let why = error.failure.clone();
            if error.established {
                self.drive(rid, now, |core, now| core.connection_lost(now, why));
            } else {
                self.drive(rid, now, |core, now| core.transport_error(now, why, false));
            }
        }
    }

    /// Bumps one counter once for each user agent among `regs`.
    fn bump_users(
        &self,
        regs: &[RegId],
        counter: impl Fn(&UaStats) -> &std::sync::atomic::AtomicU64,
    ) {
        let mut seen: Vec<UaId> = regs
            .iter()
            .filter_map(|rid| self.regs.get(rid).map(|r| r.ua))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for ua in seen {
            if let Some(u) = self.uas.get(&ua) {
                UaStats::bump(counter(&u.stats));
            }
        }
    }

    fn check_ua_done(&mut self, id: UaId) {
        let done = self
            .uas
            .get(&id)
            .is_some_and(|ua| ua.freeing && ua.regs.is_empty());
        if done {
            self.uas.remove(&id);
            self.actions.push_back(Action::UserAgentFreed { ua: id });
        }
    }

    /// Starts the transactions that got a pacing slot when others ended.
    fn start_admitted(&mut self, now: Instant) {
        while let Some(id) = self.pacing.pop_ready() {
            if self.regs.get(&id).is_some_and(|r| r.core.wants_admission()) {
                self.drive(id, now, |core, now| core.admit(now));
            } else {
                self.pacing.release(id, Outcome::Abandoned);
            }
        }
    }
}

#[cfg(test)]
mod answering_tests {

    use super::*;

    #[test]
    fn the_shared_default_lines_say_what_the_defaults_say() {
        assert_eq!(DEFAULT_ALLOW_LINE, format!("Allow: {DEFAULT_ALLOW}"));
        assert_eq!(DEFAULT_SERVER_LINE, format!("Server: {DEFAULT_USER_AGENT}"));
        let mut config = UserAgentConfig::new("sip:alice@127.0.0.1").unwrap();
        let a = Answering::of(&config);
        let b = Answering::of(&config);
        assert!(Arc::ptr_eq(&a.allow, &b.allow) && Arc::ptr_eq(&a.server, &b.server));
        assert_eq!(
            (&*a.allow, &*a.server),
            (DEFAULT_ALLOW_LINE, DEFAULT_SERVER_LINE)
        );
        // User agents that answer alike share one answering (it stays in
        // cache); other flags or lines get another.
        let mut common = CommonAnswerings::default();
        let (a, b) = (a.shared(&mut common), b.shared(&mut common));
        assert!(Arc::ptr_eq(&a, &b));
        let c = a.follow(&config);
        let c = Answering {
            listener: true,
            ..c
        }
        .shared(&mut common);
        assert!(!Arc::ptr_eq(&a, &c) && c.listener && !a.listener);
        config.set_allow("INVITE, OPTIONS").unwrap();
        config.set_user_agent("phone/2").unwrap();
        let a = Answering::of(&config);
        assert_eq!(
            (&*a.allow, &*a.server),
            ("Allow: INVITE, OPTIONS", "Server: phone/2")
        );
    }
}

#[cfg(test)]
mod spare_tests {
    use super::*;

    #[test]
    fn sent_buffers_and_event_lists_are_kept_within_bounds() {
        let mut ep = Endpoint::new();
        ep.recycle(Vec::new());
        ep.recycle(b"\r\n\r\n".to_vec());
        ep.recycle(Vec::with_capacity(SPARE_BYTES_MAX_CAPACITY + 1));
        assert!(
            ep.spare_bytes.is_empty(),
            "none without room, none too small, none too large"
        );
        let mut full = Vec::with_capacity(600);
        full.extend_from_slice(b"REGISTER sip:x SIP/2.0\r\n");
        ep.recycle(full);
        assert!(ep.spare_bytes[0].is_empty(), "kept emptied");
        for _ in 0..SPARE_BYTES_KEPT + 10 {
            ep.recycle(Vec::with_capacity(600));
        }
        assert_eq!(ep.spare_bytes.len(), SPARE_BYTES_KEPT);

        ep.recycle_events(Vec::new());
        ep.recycle_events(Vec::with_capacity(SPARE_EVENTS_MAX_CAPACITY + 1));
        assert!(ep.spare_events.is_empty());
        ep.recycle_events(vec![Event::Note("n".into())]);
        assert!(ep.spare_events[0].is_empty(), "kept emptied");
        for _ in 0..SPARE_EVENTS_KEPT + 10 {
            ep.recycle_events(Vec::with_capacity(4));
        }
        assert_eq!(ep.spare_events.len(), SPARE_EVENTS_KEPT);
    }

    #[test]
    fn a_step_that_queues_no_event_gives_the_lent_list_back() {
        use crate::core::options::RegistererOptions;
        let mut ep = Endpoint::new();
        let config = UserAgentConfig::new("sip:alice@127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        ep.add_user_agent(1, Arc::new(config.clone()), SharedStats::new());
        let opts = RegistererOptions {
            registrar: Some("sip:127.0.0.1".to_owned()),
            ..RegistererOptions::default()
        };
        let core = Registerer::new(&config, &opts, 2).unwrap_or_else(|e| panic!("{e}"));
        ep.add_registerer(2, 1, Box::new(core));
        let list: Vec<Event> = Vec::with_capacity(4);
        let at = list.as_ptr();
        ep.recycle_events(list);
        ep.drive(2, Instant::now(), |_, _| {});
        let core = ep.registerer(2).unwrap_or_else(|| panic!("the registerer"));
        assert_eq!(
            core.event_buffer_capacity(),
            0,
            "not left with the registerer"
        );
        assert_eq!(ep.spare_events.len(), 1, "back with the endpoint");
        assert_eq!(ep.spare_events[0].as_ptr(), at);
    }
}

#[cfg(test)]
mod entry_size {
    use super::{RegEntry, UaEntry};

    /// Each is boxed, one per account: at most 56 bytes makes a 64-byte
    /// heap chunk (72 made 80).
    #[test]
    fn the_entries_take_at_most_56_bytes() {
        assert!(std::mem::size_of::<RegEntry>() <= 56);
        assert!(std::mem::size_of::<UaEntry>() <= 56);
    }
}
