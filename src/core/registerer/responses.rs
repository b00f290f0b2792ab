//! Final responses: matching, digest challenges, 2xx bookkeeping, failures
//! and the automatic retry.

use super::*;

impl Registerer {
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
                    self.pack_auth_when_idle();
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

    /// Ends the request in flight as if `status` had arrived (SIP.js's
    /// internal 408/503), failed for the reason `why`.
    pub(super) fn synthetic_failure(
        &mut self,
        now: Instant,
        status: u16,
        reason: &str,
        immediate_retry: bool,
        why: Failure,
    ) {
        let Some(p) = self.take_pending() else { return };
        self.record_response(status, reason);
        self.record_failure(why.with_status(status));
        self.fail(now, p.kind, status, None, immediate_retry);
    }

    pub(super) fn record_response(&mut self, status: u16, reason: &str) {
        let shared =
            crate::core::shared_text::shared(crate::core::shared_text::Kind::Reason, reason);
        self.last_reason = Some(shared.clone());
        self.last_status = status;
        self.events.push(Event::Response {
            status,
            reason: shared,
        });
    }

    pub(super) fn on_final(&mut self, now: Instant, resp: &Response) {
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
                until: MaybeInstant::at(until),
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
                Err(failure) => {
                    if failure.kind == FailureKind::AuthDowngrade {
                        self.warn(&failure.detail);
                    } else {
                        self.note(&failure.detail);
                    }
                    self.record_failure(failure.with_status(resp.status));
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
                Some(min) if min > self.max_min_expires() => {
                    let why = format!(
                        "423 asks for Min-Expires {min} s, more than the {} s this client accepts",
                        self.max_min_expires()
                    );
                    self.interval_too_brief(now, p, &why, resp.retry_after());
                }
                Some(min) if min > p.expires_sent && p.interval_rounds < MAX_INTERVAL_ROUNDS => {
                    p.interval_rounds += 1;
                    self.expires = min;
                    self.send(now, p);
                }
                min => {
                    let why = match min {
                        None => "423 Interval Too Brief without a Min-Expires".to_owned(),
                        Some(min) if min <= p.expires_sent => format!(
                            "423 Interval Too Brief with Min-Expires {min}, not above the {} s asked for",
                            p.expires_sent
                        ),
                        Some(min) => format!(
                            "423 Interval Too Brief again after {} raises (Min-Expires now {min})",
                            p.interval_rounds
                        ),
                    };
                    self.interval_too_brief(now, p, &why, resp.retry_after());
                }
            },
            503 if resp.retry_after().is_none() && self.targets.is_some() => {
                self.pending = Some(p);
                if !self.failover(now, "503 without Retry-After") {
                    if let Some(p) = self.take_pending() {
                        self.fail(now, p.kind, 503, None, false);
                    }
                }
            }
            403 if !p.answered.is_empty() => {
                // RFC 3261 22.4: a 403 to a request with credentials refuses them.
                let why = format!("the registrar refused our credentials: 403 {}", resp.reason);
                self.record_failure(Failure::new(FailureKind::AuthRejected, why).with_status(403));
                self.fail(now, p.kind, 403, resp.retry_after(), false);
            }
            status => self.fail(now, p.kind, status, resp.retry_after(), false),
        }
    }

    /// Decides whether a 401/407 may be answered, and caches the challenge if so.
    pub(super) fn accept_challenge(
        &mut self,
        p: &mut Pending,
        resp: &Response,
    ) -> Result<(), Failure> {
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
        let (at, ch) = self.answerable_challenge(&offered, resp.status)?;
        let rejected = |why: String| Failure::new(FailureKind::AuthRejected, why);
        if p.auth_rounds >= MAX_AUTH_ROUNDS {
            return Err(rejected("too many authentication rounds".into()));
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
                    return Err(rejected(
                        "credentials rejected: too many stale nonces".into(),
                    ));
                }
                p.stale_retries += 1;
            } else if realm_answered.contains(&&ch.nonce) || p.new_nonce_retry_used {
                return Err(rejected(format!(
                    "credentials for realm {:?} were rejected",
                    ch.realm
                )));
            } else {
                // Servers that forget stale=true get one more try with the new nonce.
                p.new_nonce_retry_used = true;
            }
        }
        p.auth_rounds += 1;
        self.remember_challenge(proxy, offered, at);
        Ok(())
    }

    /// Whether `c`, a contact a 2xx lists, is ours: by `+sip.instance` (and
    /// `reg-id`) when we sent one, else by URI (RFC 3261 §19.1.4) against
    /// `ours_text`, the Contact URI the request carried. The usual 2xx
    /// lists it as written: equal text is the same URI, and only another
    /// spelling makes ours parsed (once, into `ours`) and compared.
    pub(super) fn our_contact_matches(
        &self,
        c: &NameAddrRef<'_>,
        ours_text: Option<&str>,
        ours: &mut Option<Option<Uri>>,
    ) -> bool {
        if let Some(urn) = &self.settings.extras().instance_urn {
            let instance = c.param("+sip.instance").flatten();
            if let Some(inst) = instance.as_deref().map(|v| v.trim_matches(['<', '>'])) {
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
        let Some(text) = ours_text else {
            return false;
        };
        if c.uri_text.trim() == text.trim() {
            return true;
        }
        ours.get_or_insert_with(|| Uri::parse(text).ok())
            .as_ref()
            .is_some_and(|o| o.equivalent(&c.uri.to_uri()))
    }

    pub(super) fn on_register_ok(&mut self, now: Instant, mut p: Box<Pending>, resp: &Response) {
        let listed = match resp.contact_refs() {
            Ok(list) => list,
            Err(e) => {
                self.note(&format!(
                    "2xx with an unreadable Contact ({e}): not registered"
                ));
                Vec::new()
            }
        };
        self.replace_contacts(ContactList::of_uris(listed.iter().map(|c| &c.uri)));
        self.stale_contacts.retain(|c| !p.stale_sent.contains(c));
        // Match what this request carried: the local address may have changed since.
        let ours_text = p.sent_contact.take();
        let mut ours = None;
        // Our first listed contact (its routing facts) and the least
        // interval granted to any of ours.
        let mut first_mine = None;
        let mut granted: Option<u32> = None;
        for c in &listed {
            if self.our_contact_matches(c, ours_text.as_deref(), &mut ours) {
                first_mine.get_or_insert(c);
                let secs = c.expires().or(resp.expires()).unwrap_or(p.expires_sent);
                granted = Some(granted.map_or(secs, |g| g.min(secs)));
            }
        }
        let mut rewrite_to = None;
        match granted {
            None => {
                self.note("2xx does not list our contact: not registered");
                let why = format!("{} {} does not list our contact", resp.status, resp.reason);
                self.record_failure(
                    Failure::new(FailureKind::Rejected, why).with_status(resp.status),
                );
                self.failure_fresh = false;
                self.failures = self.failures.saturating_add(1);
                self.unregistered();
            }
            Some(0) => {
                self.note("registrar granted expires=0 for our contact");
                let why = format!(
                    "{} {} granted expires=0 for our contact",
                    resp.status, resp.reason
                );
                self.record_failure(
                    Failure::new(FailureKind::Rejected, why).with_status(resp.status),
                );
                self.failure_fresh = false;
                self.failures = self.failures.saturating_add(1);
                self.unregistered();
            }
            Some(secs) => {
                if let Some(t) = self.targets.as_mut() {
                    t.succeeded();
                }
                // Kept until the flow proves itself (a quick loss restores it).
                self.failures_at_ok = self.failures;
                self.failures = 0;
                self.clear_failure();
                self.registered_at = MaybeInstant::at(now);
                self.retry_after = None;
                // Registered: a recovery still scheduled (a refresh that went
                // out during a flow-loss backoff) has nothing left to do.
                self.retry_at = MaybeInstant::NONE;
                self.set_bound_contact(ours_text);
                let granted = Duration::from_secs(u64::from(secs));
                let spread = refresh::spread_of(self.call_id.as_str());
                let delay =
                    refresh::refresh_delay(granted, self.settings.refresh_frequency, spread);
                self.refresh_at = MaybeInstant::at(now + delay);
                self.expire_at = MaybeInstant::at(now + granted);
                self.set_state(State::Registered);
                self.outbound_in_use = p.outbound && resp.lists_option("require", "outbound");
                let routing = RoutingFacts::from_response(resp, first_mine);
                self.routing = (routing != RoutingFacts::EMPTY).then(|| Box::new(routing));
                self.start_keepalive(now, resp);
                let seen = resp.top_via_public_address();
                if seen.is_some() {
                    self.public_address = MaybeAddr::new(seen);
                }
                rewrite_to = seen.and_then(|public| self.rewrite_target(&p, public));
            }
        }
        self.after_request(now, p.kind);
        if let Some(public) = rewrite_to {
            self.rewrite_contact(now, public);
        }
    }

    pub(super) fn on_unregister_ok(&mut self, now: Instant, p: Box<Pending>, resp: &Response) {
        self.replace_contacts(
            resp.contact_refs()
                .ok()
                .and_then(|l| ContactList::of_uris(l.iter().map(|c| &c.uri))),
        );
        self.stale_contacts.retain(|c| !p.stale_sent.contains(c));
        self.set_bound_contact(None);
        self.retry_after = None;
        self.clear_failure();
        self.unregistered();
        self.after_request(now, p.kind);
    }

    pub(super) fn unregistered(&mut self) {
        self.refresh_at = MaybeInstant::NONE;
        self.expire_at = MaybeInstant::NONE;
        if let Some(k) = self.keepalive.as_mut() {
            k.stop();
        }
        self.routing = None;
        self.outbound_in_use = false;
        self.set_state(State::Unregistered);
    }

    /// A request ended without success.
    pub(super) fn fail(
        &mut self,
        now: Instant,
        kind: Kind,
        status: u16,
        retry_after: Option<u32>,
        immediate: bool,
    ) {
        if !std::mem::take(&mut self.failure_fresh) {
            // No path said more: the registrar's final answer is the reason.
            let reason = match self.last_response() {
                Some((s, r)) if s == status => r.to_owned(),
                _ => String::new(),
            };
            let why = format!("the registrar answered {status} {reason}");
            self.record_failure(
                Failure::new(FailureKind::Rejected, why.trim_end()).with_status(status),
            );
            self.failure_fresh = false;
        }
        self.retry_after = retry_after;
        self.unregistered();
        if kind == Kind::Register {
            self.failures = self.failures.saturating_add(1);
            let policy = self.settings.retry();
            if policy.enabled && is_transient(status) && self.dispose_deadline.is_none() {
                let delay = if immediate && self.failures == 1 {
                    Duration::ZERO
                } else if let Some(ra) = retry_after.filter(|ra| *ra > 0) {
                    // Retry-After: 0 falls back to the backoff (no retry storm),
                    // and a server that keeps asking for a short wait gets the
                    // backoff from the second failure in a row on.
                    let asked = Duration::from_secs(u64::from(ra)).min(policy.retry_after_max);
                    if self.failures > 1 {
                        asked.max(self.backoff())
                    } else {
                        asked
                    }
                } else {
                    self.backoff()
                };
                self.retry_at = MaybeInstant::at(now + delay);
                self.events.push(Event::RetryScheduled {
                    delay,
                    failures: self.failures,
                });
            }
        }
        self.after_request(now, kind);
    }

    /// Follow-ups once a logical request is over: dispose progress, pending rebind.
    pub(super) fn after_request(&mut self, now: Instant, kind: Kind) {
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
            self.retry_at = MaybeInstant::NONE;
            self.start(now, Kind::Register);
        }
    }

    /// The largest Min-Expires a 423 may ask for: a day, or the expiry the
    /// application asked for if that is longer. A registrar asking for more
    /// (4 294 967 295 s, say) ends the attempt instead.
    pub(super) fn max_min_expires(&self) -> u32 {
        self.settings.expires.max(MAX_MIN_EXPIRES)
    }

    /// A 423 this client will not follow: the attempt fails as INTERVAL_TOO_BRIEF.
    fn interval_too_brief(
        &mut self,
        now: Instant,
        p: Box<Pending>,
        why: &str,
        retry_after: Option<u32>,
    ) {
        self.note(why);
        self.record_failure(Failure::new(FailureKind::IntervalTooBrief, why).with_status(423));
        self.fail(now, p.kind, 423, retry_after, false);
    }

    /// The backoff after `failures` consecutive failures: retry_base·2^failures,
    /// capped by retry_max, with 50–100 % jitter.
    pub(super) fn backoff(&mut self) -> Duration {
        let policy = self.settings.retry();
        let exp = 1u32 << self.failures.min(20);
        let backoff = policy.base.saturating_mul(exp).min(policy.max);
        backoff.mul_f64(0.5 + 0.5 * self.rng.unit())
    }
}
