//! The application-facing half: API calls, timer expiries and what the
//! runtime polls (transmits, events, the next deadline).

use super::*;
use crate::core::options::check_request_headers;

impl Registerer {
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
        self.poll_transmit_reusing(&mut Vec::new())
    }

    /// [`poll_transmit`](Self::poll_transmit) copying the bytes a request
    /// keeps for retransmission into `spare` (taken, so a caller that hands
    /// back the buffers it sent from copies into memory it already has
    /// rather than into a new allocation per message).
    pub fn poll_transmit_reusing(&mut self, spare: &mut Vec<u8>) -> Option<Transmit> {
        if self.awaiting_targets {
            return None;
        }
        let retransmission = self.transmits.front()?;
        let local = self.local.get()?;
        self.transmits.pop_front();
        if self.pending.as_ref()?.bytes.is_empty() {
            self.render(local);
        }
        let reliable = self.settings.transport.reliable();
        let p = self.pending.as_mut()?;
        // Over a reliable transport a request goes out once (no Timer E):
        // its bytes are handed over, not copied and kept.
        if p.bytes.is_empty() {
            return None;
        }
        let bytes = if reliable {
            std::mem::take(&mut p.bytes)
        } else {
            let kept = p.bytes.as_slice();
            let mut copy = std::mem::take(spare);
            copy.clear();
            copy.extend_from_slice(kept);
            copy
        };
        Some(Transmit {
            bytes,
            retransmission,
        })
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        // A step queues a handful at most: taking the first shifts the rest.
        let e = (!self.events.is_empty()).then(|| self.events.remove(0));
        if self.events.is_empty() && self.events.capacity() > 0 {
            // Drained: an idle registerer keeps no event buffer (128 bytes each).
            self.events = Vec::new();
        }
        e
    }

    /// Moves every queued event, in order, to the end of `out`: the queue
    /// itself when `out` is empty (nothing copied, no buffer made), as
    /// [`poll_event`](Self::poll_event) until `None` would give them.
    /// Returns whether there were any.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) -> bool {
        if self.events.is_empty() {
            return false;
        }
        if out.is_empty() {
            *out = std::mem::take(&mut self.events);
        } else {
            out.append(&mut self.events);
            // An idle registerer keeps no event buffer, as after poll_event.
            self.events = Vec::new();
        }
        true
    }

    /// How many events the registerer's queue has room for without an
    /// allocation: 0 for a registerer between steps (none is kept idle,
    /// at 10 000 registerers that is memory).
    pub fn event_buffer_capacity(&self) -> usize {
        self.events.capacity()
    }

    /// Gives the registerer an empty buffer with room for the events of
    /// a step, so that queuing them allocates nothing; given back (as
    /// `Some`) when it already has one. A caller that lends one before a
    /// step takes it back after ([`reclaim_event_buffer`](Self::reclaim_event_buffer),
    /// or with the events, [`drain_events`](Self::drain_events)).
    pub fn lend_event_buffer(&mut self, mut buf: Vec<Event>) -> Option<Vec<Event>> {
        if self.events.capacity() > 0 {
            return Some(buf);
        }
        buf.clear();
        self.events = buf;
        None
    }

    /// The event buffer, if it is empty and has room (so an idle
    /// registerer keeps none between steps).
    pub fn reclaim_event_buffer(&mut self) -> Option<Vec<Event>> {
        (self.events.is_empty() && self.events.capacity() > 0)
            .then(|| std::mem::take(&mut self.events))
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
            self.refresh_at.get(),
            self.expire_at.get(),
            self.retry_at.get(),
            self.dispose_deadline.get(),
            self.keepalive.as_ref().and_then(|k| k.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// SIP.js `register()`.
    pub fn register(&mut self, now: Instant) -> Result<(), Error> {
        self.register_with_headers(now, &[] as &[&str])
    }

    /// SIP.js `register({ requestOptions: { extraHeaders } })`: `headers`
    /// (`Name: value`, checked as the extra headers are) go on this REGISTER
    /// and its resends after a challenge only, never on refreshes.
    pub fn register_with_headers<S: AsRef<str>>(
        &mut self,
        now: Instant,
        headers: &[S],
    ) -> Result<(), Error> {
        let headers = check_request_headers(headers)?;
        self.check_can_send()?;
        self.retry_at = MaybeInstant::NONE;
        self.start(now, Kind::Register);
        self.set_request_headers(headers);
        Ok(())
    }

    /// SIP.js `unregister()`; `all` sends `Contact: *`.
    pub fn unregister(&mut self, now: Instant, all: bool) -> Result<(), Error> {
        self.unregister_with_headers(now, all, &[] as &[&str])
    }

    /// [`unregister`](Self::unregister) with headers for this request only
    /// (see [`register_with_headers`](Self::register_with_headers)).
    pub fn unregister_with_headers<S: AsRef<str>>(
        &mut self,
        now: Instant,
        all: bool,
        headers: &[S],
    ) -> Result<(), Error> {
        let headers = check_request_headers(headers)?;
        self.check_can_send()?;
        self.retry_at = MaybeInstant::NONE;
        self.refresh_at = MaybeInstant::NONE;
        self.start(now, Kind::Unregister { all });
        self.set_request_headers(headers);
        Ok(())
    }

    /// Gives the request just started its own headers (before its first send
    /// is written).
    fn set_request_headers(&mut self, headers: Vec<String>) {
        if !headers.is_empty() {
            self.materialize();
        }
        if let Some(p) = self.pending.as_mut() {
            p.request_headers = headers;
        }
    }

    /// SIP.js `dispose()`: waits for a request in flight, unregisters if
    /// registered, then Terminated — within the shutdown bound. Idempotent.
    pub fn dispose(&mut self, now: Instant) {
        if self.is_disposing() {
            return;
        }
        self.dispose_deadline = MaybeInstant::at(now + self.settings.ua.extras().shutdown_timeout);
        self.refresh_at = MaybeInstant::NONE;
        self.retry_at = MaybeInstant::NONE;
        if self.awaiting_targets {
            // A REGISTER still waiting for DNS was never sent: drop it.
            self.awaiting_targets = false;
            self.resolution_wanted = false;
            self.take_pending();
        }
        if !self.has_request() {
            self.continue_dispose(now);
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        self.run_transaction_timers(now);
        // A transaction that timed out ended its request.
        self.pack_auth_when_idle();
        self.purge_lingering(now);
        if self.dispose_deadline.get().is_some_and(|d| now >= d) {
            self.note("dispose: no final answer within the shutdown bound; terminating");
            self.terminate();
            return;
        }
        // The refresh goes first: a late wake-up past the expiry (suspend, a
        // stalled thread) must still send the refresh it was due.
        if self.refresh_at.get().is_some_and(|t| now >= t) {
            self.refresh_at = MaybeInstant::NONE;
            // A request in flight already decides the next refresh (SIP.js #1071).
            if !self.has_request() {
                self.start(now, Kind::Register);
            }
        }
        if self.expire_at.get().is_some_and(|t| now >= t) {
            self.note("registration expired without a successful refresh");
            self.unregistered();
        }
        let due = self.keepalive.as_mut();
        if let Some(f) = due.and_then(|k| k.handle_timeout(now, &mut self.rng)) {
            self.flow_failure(now, f);
        }
        if self.retry_at.get().is_some_and(|t| now >= t) {
            self.retry_at = MaybeInstant::NONE;
            if !self.has_request() {
                self.events.push(Event::RetryStarted {
                    failures: self.failures,
                });
                self.start(now, Kind::Register);
            }
        }
    }

    pub(super) fn check_can_send(&self) -> Result<(), Error> {
        if self.is_disposing() {
            return Err(Error::Terminated);
        }
        if self.has_request() {
            return Err(Error::RequestPending);
        }
        Ok(())
    }

    pub(super) fn terminate(&mut self) {
        if let Some(k) = self.keepalive.as_mut() {
            k.stop();
        }
        self.routing = None;
        self.take_pending();
        self.lingering = Vec::new();
        self.refresh_at = MaybeInstant::NONE;
        self.expire_at = MaybeInstant::NONE;
        self.retry_at = MaybeInstant::NONE;
        self.dispose_deadline = MaybeInstant::NONE;
        self.set_state(State::Terminated);
    }

    pub(super) fn continue_dispose(&mut self, now: Instant) {
        if self.state == State::Registered {
            self.start(now, Kind::Unregister { all: false });
        } else {
            self.terminate();
        }
    }

    /// The user agent's settings changed: the NAT options and the
    /// credentials follow (a credential change forgets the cached challenges);
    /// everything else keeps what the registerer was created with.
    pub fn apply_user_agent(&mut self, ua: &UserAgentConfig) {
        self.set_nat_options(ua.keepalive, ua.contact_rewrite);
        self.follow_credentials(ua);
    }

    /// Replaces the digest credentials (the user agent's password changed).
    pub fn set_credentials(
        &mut self,
        auth_username: Option<String>,
        password: Option<crate::core::options::Secret>,
    ) {
        let ua = Arc::make_mut(&mut self.settings.ua);
        ua.replace_auth_username(auth_username);
        ua.password = password;
        self.forget_answers();
    }

    /// Follows the user agent's credentials (password, auth username,
    /// credential list, downgrade policy) when they differ from this
    /// registerer's; nothing happens when they are the same.
    pub fn follow_credentials(&mut self, from: &UserAgentConfig) {
        if !self.settings.ua.credentials_differ(from) {
            return; // unchanged: the shared settings stay shared
        }
        Arc::make_mut(&mut self.settings.ua).copy_credentials_from(from);
        self.forget_answers();
    }

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
}
