//! Starting requests: CSeq and branch, admission to the pacing window,
//! credentials at admission, writing the bytes, Timer E/F.

use super::*;

impl Registerer {
    /// Starts a new logical request (after resolving the targets if their
    /// answers ran out).
    pub(super) fn start(&mut self, now: Instant, kind: Kind) {
        if let Some(t) = self.targets.as_mut() {
            t.begin_round();
            if t.needs_resolution(now) && !self.awaiting_targets {
                self.awaiting_targets = true;
                self.resolution_wanted = true;
            }
        }
        if self.paced {
            // Nothing is made for it until the window admits it.
            self.transmits.clear();
            self.queued_at = MaybeInstant::at(now);
            self.queued_kind = kind;
            return;
        }
        self.send(
            now,
            Self::fresh(kind, now, self.settings.ua.extras().timers),
        );
    }

    /// The bookkeeping of a new request of `kind`, made at `now`.
    fn fresh(kind: Kind, now: Instant, timers: crate::core::transaction::Timers) -> Box<Pending> {
        Box::new(Pending {
            kind,
            tx: ClientTransaction::new("", true, timers, now),
            admitted: false,
            bytes: Vec::new(),
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
            request_headers: Vec::new(),
        })
    }

    /// Makes the bookkeeping of a request queued for the pacing window (as
    /// of when it was queued): before it is admitted, or when something
    /// must be recorded on it first.
    pub(super) fn materialize(&mut self) {
        let Some(at) = std::mem::replace(&mut self.queued_at, MaybeInstant::NONE).get() else {
            return;
        };
        let kind = self.queued_kind;
        self.send(at, Self::fresh(kind, at, self.settings.ua.extras().timers));
    }

    /// Sends (or re-sends after a challenge / 423) the request of `p`: a new
    /// CSeq and branch now; credentials when it is admitted; the bytes when
    /// the runtime polls them.
    pub(super) fn send(&mut self, now: Instant, mut p: Box<Pending>) {
        self.cseq = self.cseq.wrapping_add(1);
        p.cseq = self.cseq;
        let mut tail = [0u8; TAIL_LEN];
        self.rng.fill_token(&mut tail);
        let mut branch = [0u8; COOKIE.len() + KEY_LEN + TAIL_LEN];
        let (cookie, rest) = branch.split_at_mut(COOKIE.len());
        let (key, tail_at) = rest.split_at_mut(KEY_LEN);
        cookie.copy_from_slice(COOKIE.as_bytes());
        key.copy_from_slice(&self.key);
        tail_at.copy_from_slice(&tail);
        p.auth = Vec::new();
        p.expires_sent = match p.kind {
            Kind::Register => self.expires,
            Kind::Unregister { .. } => 0,
        };
        // The replaced request's buffer is written into again. A paced
        // answer keeps it until admitted: the endpoint admits the answer to
        // a challenge in the same step (its slot is renewed), and an
        // embedder that makes it wait holds one request's buffer meanwhile.
        p.bytes.clear();
        p.sent_contact = None;
        p.tx = ClientTransaction::new(
            // SAFETY: the cookie and the key are ASCII; `fill_token` writes base32.
            unsafe { own_text(&branch) },
            self.settings.transport.reliable(),
            self.settings.ua.extras().timers,
            now,
        );
        p.admitted = false;
        self.transmits.clear();
        self.pending = Some(p);
        if !self.paced {
            self.admit_pending(Some(now));
        }
    }

    /// Starts the pending transaction: at `now` (a fresh Timer E/F start), or
    /// with the timers it was created with (`None`). Its credentials are
    /// computed here, not when it was queued: thousands of requests waiting
    /// for the pacing window keep no Authorization text.
    pub(super) fn admit_pending(&mut self, now: Option<Instant>) {
        self.materialize();
        let reliable = self.settings.transport.reliable();
        let timers = self.settings.ua.extras().timers;
        let Some(mut p) = self.pending.take_if(|p| !p.admitted) else {
            return;
        };
        if let Some(now) = now {
            // Started afresh under the same branch.
            let tx = ClientTransaction::new(p.tx.branch(), reliable, timers, now);
            p.tx = tx;
        }
        p.auth = self.credentials_headers(&mut p);
        p.admitted = true;
        self.pending = Some(p);
        self.transmits.owe_first();
    }

    /// Writes the pending request for packets leaving `local`.
    pub(super) fn render(&mut self, local: SocketAddr) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let contact = match p.kind {
            Kind::Register => ContactSpec::Bind(p.expires_sent),
            Kind::Unregister { all: false } => ContactSpec::Remove,
            Kind::Unregister { all: true } => ContactSpec::RemoveAll,
        };
        p.stale_sent = self.stale_contacts.clone();
        let contact_addr = self.contact_public.get().unwrap_or(local);
        let outbound = self.settings.reg_id.is_some() && !self.outbound_refused;
        p.contact_addr = Some(contact_addr);
        p.outbound = outbound;
        let user = self
            .settings
            .extras()
            .contact_user
            .as_deref()
            .or_else(|| self.settings.ua.default_contact_user());
        let sent_contact = request::contact_uri(&self.settings, user, contact_addr, outbound);
        let parts = RequestParts {
            settings: &self.settings,
            local,
            contact_addr,
            outbound,
            branch: p.tx.branch(),
            call_id: self.call_id.as_str(),
            from_tag: self.from_tag.as_str(),
            cseq: p.cseq,
            contact,
            stale_contacts: &p.stale_sent,
            auth: &p.auth,
            contact_uri: &sent_contact,
            request_headers: &p.request_headers,
        };
        let room = std::mem::take(&mut p.bytes);
        p.bytes = request::build_register_into(&parts, room);
        p.sent_contact = Some(sent_contact);
    }

    /// Ends the request in flight, dropping sends still owed for it.
    pub(super) fn take_pending(&mut self) -> Option<Box<Pending>> {
        self.materialize();
        self.transmits.clear();
        // Kept boxed: a request sent again reuses the box.
        self.pending.take()
    }

    pub(super) fn run_transaction_timers(&mut self, now: Instant) {
        if self.awaiting_targets {
            return;
        }
        let Some(p) = self.pending.as_mut().filter(|p| p.admitted) else {
            return;
        };
        match p.tx.on_timer(now) {
            TimerOutcome::Retransmit => {
                self.retransmissions = self.retransmissions.saturating_add(1);
                self.transmits.owe_retransmission();
            }
            TimerOutcome::TimedOut => {
                self.timed_out = true;
                self.note("no final response before Timer F");
                let target = self.target_text();
                if self.failover(now, "no final response before Timer F") {
                    return;
                }
                let timer_f = self.settings.ua.extras().timers.t1 * 64;
                let why = format!(
                    "no final response from {target} within {:.1} s (Timer F)",
                    timer_f.as_secs_f64()
                );
                self.synthetic_failure(
                    now,
                    408,
                    "Request Timeout",
                    false,
                    Failure::new(FailureKind::Timeout, why),
                );
            }
            TimerOutcome::Nothing | TimerOutcome::Terminated => {}
        }
    }

    /// Drops the lingering transactions past Timer K; none left frees their list.
    pub(super) fn purge_lingering(&mut self, now: Instant) {
        self.lingering
            .retain(|l| l.until.get().is_some_and(|u| u > now));
        if self.lingering.is_empty() && self.lingering.capacity() > 0 {
            self.lingering = Vec::new();
        }
    }
}
