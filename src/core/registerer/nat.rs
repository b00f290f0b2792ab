//! NAT and RFC 5626 outbound: the local and public address in the Contact,
//! keep-alives, flow failure, lost connections and network changes.

use super::*;
use crate::core::options::Extras;

impl Registerer {
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

    /// Tells the registerer which local address its packets leave from. A change
    /// while bound queues the old contact for removal in the next REGISTER.
    pub fn set_local_addr(&mut self, addr: SocketAddr) {
        if self.local.get() == Some(addr) {
            return;
        }
        self.local = MaybeAddr::new(Some(addr));
        // A new flow: its public address and keep-alive state are unknown.
        self.contact_public = MaybeAddr::None;
        if let Some(k) = self.keepalive.as_mut() {
            k.new_flow();
        }
        // Nothing bound and nothing stale (a registerer's first flow): no
        // contact to compare, so none is written.
        let bound = self.bound_at != NOT_LISTED || self.bound_contact.is_some();
        if !bound && self.stale_contacts.is_empty() {
            return;
        }
        let now_contact = request::contact_uri(
            &self.settings,
            self.contact_user(),
            addr,
            self.outbound_wanted(),
        );
        // Back on an address used before: that contact is ours again, not stale.
        self.stale_contacts.retain(|c| *c != now_contact);
        if let Some(old) = self.take_bound_contact() {
            if old != now_contact && !self.stale_contacts.contains(&old) {
                self.stale_contacts.push(old);
            }
        }
    }

    /// Gives our Contact the user part `user` (`None`: the user agent's
    /// contact user, else the AOR's user); the endpoint picks it so that user
    /// agents sharing a socket have distinct contacts. A change while bound
    /// queues the old contact for removal in the next REGISTER.
    pub fn set_contact_user(&mut self, user: Option<Box<str>>) {
        if self.settings.extras().contact_user == user {
            return;
        }
        // Kept with the rarely set settings: most registerers never need one.
        let mut extras = self
            .settings
            .extras
            .take()
            .map_or_else(Default::default, |b| *b);
        extras.contact_user = user;
        self.settings.extras = (extras != Extras::default()).then(|| Box::new(extras));
        let (Some(old), Some(local)) = (self.bound_contact(), self.local.get()) else {
            return;
        };
        let now_contact = request::contact_uri(
            &self.settings,
            self.contact_user(),
            self.contact_addr(local),
            self.outbound_wanted(),
        );
        self.stale_contacts.retain(|c| *c != now_contact);
        if old != now_contact {
            self.set_bound_contact(None);
            if !self.stale_contacts.contains(&old) {
                self.stale_contacts.push(old);
            }
        }
    }

    /// The user part of our Contact.
    pub fn contact_user(&self) -> Option<&str> {
        self.settings
            .extras()
            .contact_user
            .as_deref()
            .or_else(|| self.settings.ua.default_contact_user())
    }

    /// The network changed (and [`set_local_addr`](Self::set_local_addr) was called
    /// with the new address): re-register at once if registered or waiting to retry.
    pub fn network_changed(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        let pending_kind = self.request_kind();
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
        if self.has_request() {
            self.rebind_wanted = true;
        } else {
            self.retry_at = MaybeInstant::NONE;
            self.note("network changed: re-registering with the new contact");
            self.start(now, Kind::Register);
        }
    }

    /// The stream connection carrying our requests dropped (`cause` says how,
    /// a [`FailureKind::Transport`] failure built by the runtime). A request
    /// in flight fails (503) and is retried at once; a registered binding is
    /// refreshed at once.
    pub fn connection_lost(&mut self, now: Instant, cause: Failure) {
        if self.state == State::Terminated {
            return;
        }
        let resend_unregister = self.dispose_deadline.is_some()
            && !self.dispose_resent
            && matches!(self.request_kind(), Some(Kind::Unregister { .. }));
        if resend_unregister {
            // Dispose's un-REGISTER gets one more chance on a new connection.
            self.dispose_resent = true;
            if let Some(kind) = self.take_pending().map(|p| p.kind) {
                self.note("connection closed during dispose: sending the un-REGISTER again");
                self.start(now, kind);
            }
        } else if self.in_transaction() {
            self.transport_error(now, cause, true);
        } else if self.has_request() {
            // Waiting for admission: it goes out on a new connection when admitted.
        } else if self.state == State::Registered && self.dispose_deadline.is_none() {
            match self.flow_loss_backoff(now) {
                None => {
                    self.note("connection closed while registered: re-registering");
                    self.start(now, Kind::Register);
                }
                Some(delay) => self.schedule_flow_recovery(now, delay, "connection closed"),
            }
        }
    }

    /// RFC 5626 §4.5-style backoff for flows that keep dying: a loss within
    /// `retry_base` of the 2xx that registered on the flow is a quick loss,
    /// and counts as a failure on top of those that 2xx had cleared. The
    /// first failure re-registers at once (`None`); later ones wait the
    /// usual backoff (`retry_base · 2^n`, capped by `retry_max`, 50–100 %
    /// jitter). A flow that outlives `retry_base` starts the count again. So
    /// a server that closes after every 200 costs a few REGISTERs, never a loop.
    pub(super) fn flow_loss_backoff(&mut self, now: Instant) -> Option<Duration> {
        let quick = self
            .registered_at
            .get()
            .is_some_and(|t| now.saturating_duration_since(t) < self.settings.retry().base);
        if !quick {
            return None;
        }
        self.failures = self.failures_at_ok.saturating_add(1);
        self.failures_at_ok = self.failures;
        (self.failures > 1).then(|| self.backoff())
    }

    /// Re-registers after `delay` instead of at once (see [`flow_loss_backoff`](Self::flow_loss_backoff)).
    pub(super) fn schedule_flow_recovery(&mut self, now: Instant, delay: Duration, what: &str) {
        self.note(&format!(
            "{what} within {:.0} s of registering, {} times in a row: re-registering in {:.1} s",
            self.settings.retry().base.as_secs_f64(),
            self.failures,
            delay.as_secs_f64()
        ));
        self.retry_at = MaybeInstant::at(now + delay);
        self.events.push(Event::RetryScheduled {
            delay,
            failures: self.failures,
        });
    }

    /// Whether a 2xx that saw us at `public` calls for a contact rewrite.
    pub(super) fn rewrite_target(&mut self, p: &Pending, public: SocketAddr) -> Option<SocketAddr> {
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
    pub(super) fn rewrite_contact(&mut self, now: Instant, public: SocketAddr) {
        if self.has_request() || self.state != State::Registered || self.is_disposing() {
            return;
        }
        let Some(local) = self.local.get() else {
            return;
        };
        self.note(&format!(
            "registrar sees us at {public}: rewriting the contact and re-registering"
        ));
        if let Some(old) = self.take_bound_contact() {
            if !self.stale_contacts.contains(&old) {
                self.stale_contacts.push(old);
            }
        }
        self.contact_public = MaybeAddr::new((public != local).then_some(public));
        let now_contact = request::contact_uri(
            &self.settings,
            self.contact_user(),
            public,
            self.outbound_wanted(),
        );
        self.stale_contacts.retain(|c| *c != now_contact);
        self.start(now, Kind::Register);
        self.materialize();
        if let Some(p) = self.pending.as_mut() {
            p.rewrite = true;
        }
    }

    pub(super) fn outbound_wanted(&self) -> bool {
        self.settings.reg_id.is_some() && !self.outbound_refused
    }

    pub(super) fn contact_addr(&self, local: SocketAddr) -> SocketAddr {
        self.contact_public.get().unwrap_or(local)
    }

    /// Keep-alive after a 2xx: with outbound, STUN (UDP) or CRLF ping/pong at
    /// Flow-Timer (else the configured interval); without, the plain CRLF
    /// (UDP) / CRLFCRLF (stream) keep-alive if configured.
    pub(super) fn start_keepalive(&mut self, now: Instant, resp: &Response) {
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
    pub(super) fn flow_failure(&mut self, now: Instant, f: FlowFailure) {
        let why = match f {
            FlowFailure::NoAnswer => "no keep-alive answer within 10 s".to_owned(),
            FlowFailure::MappedChanged { old, new } => {
                format!("STUN mapped address changed from {old} to {new}")
            }
        };
        // Recorded (and told) now; the re-registration on the new flow
        // clears it, or records its own failure.
        self.record_failure(Failure::new(FailureKind::Flow, why.clone()));
        self.failure_fresh = false;
        if let Some(k) = self.keepalive.as_mut() {
            k.new_flow();
        }
        self.flow_failed = true;
        let registered = self.state == State::Registered
            && !self.has_request()
            && self.dispose_deadline.is_none();
        if let Some(delay) = registered.then(|| self.flow_loss_backoff(now)).flatten() {
            self.schedule_flow_recovery(now, delay, &format!("flow failed ({why})"));
            return;
        }
        self.note(&format!(
            "flow failed ({why}): re-registering on a new flow"
        ));
        self.network_changed(now);
    }
}
