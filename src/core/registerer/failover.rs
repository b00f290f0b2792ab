//! RFC 3263 targets: resolution requests, the answers, failover to the next
//! target, and transport errors that trigger it.

use super::*;

impl Registerer {
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

    /// Where requests go now: the RFC 3263 target in use, or the IP-literal
    /// registrar (or proxy) itself. `None` while a host name is unresolved.
    pub fn destination(&self) -> Option<SocketAddr> {
        if let Some(list) = self.targets.as_ref() {
            return list.current().map(|t| t.addr);
        }
        match &self.settings.target_host {
            Host::V4(a) => Some(SocketAddr::new((*a).into(), self.settings.target_port)),
            Host::V6(a) => Some(SocketAddr::new((*a).into(), self.settings.target_port)),
            Host::Domain(_) => None,
        }
    }

    /// Whether the registrar (or proxy) is a host name, found by RFC 3263.
    pub fn needs_resolution(&self) -> bool {
        matches!(self.settings.target_host, Host::Domain(_))
    }

    /// The runtime's answer to [`poll_resolution`](Self::poll_resolution).
    /// The waiting request then goes out (new branch, fresh timers). A failed
    /// resolution with no earlier targets ends it with a synthetic 503 and the
    /// usual backoff, failed for the runtime's reason (a [`FailureKind::Dns`]
    /// failure saying what the resolver answered); with earlier targets they
    /// are used once more.
    pub fn targets_resolved(&mut self, now: Instant, result: Result<TargetList, Failure>) {
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
                Err(Failure::new(
                    FailureKind::Dns,
                    "no usable SIP targets in the answers",
                ))
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
                    "cannot re-resolve {name} ({}); keeping the previous targets",
                    why.detail
                ));
            }
            Err(mut why) => {
                why.detail = format!("cannot resolve {name}: {}", why.detail);
                self.note(&why.detail);
                self.synthetic_failure(now, 503, "Service Unavailable", false, why);
                return;
            }
        }
        self.follow_target();
        if self.queued_at.is_some() {
            // Still waiting for the window: its branch and CSeq are made at
            // admission, for the target in use then.
            return;
        }
        if let Some(p) = self.take_pending() {
            self.send(now, p);
        }
    }

    /// With an open transport choice, requests use the transport of the
    /// target in use (NAPTR may list udp, tcp and tls targets).
    pub(super) fn follow_target(&mut self) {
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
    pub(super) fn failover(&mut self, now: Instant, why: &str) -> bool {
        if !self.has_request() {
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

    /// Sending the current request failed because of `cause` (built by the
    /// runtime from what it saw: [`FailureKind::Transport`] for a refused,
    /// reset or unreachable peer, [`FailureKind::Tls`] for a handshake or
    /// certificate failure): fails over to the next RFC 3263 target, else
    /// ends the request with a synthetic 503 failed for that cause.
    /// `immediate_retry` asks for the first automatic retry without delay.
    /// A request still waiting for admission was not sent, so it is not affected.
    pub fn transport_error(&mut self, now: Instant, cause: Failure, immediate_retry: bool) {
        if !self.in_transaction() {
            return;
        }
        let reason = cause.detail.as_str();
        self.note(&format!("{} error: {reason}", cause.kind.label()));
        if self.failover(now, &format!("{} error ({reason})", cause.kind.label())) {
            return;
        }
        self.synthetic_failure(now, 503, "Service Unavailable", immediate_retry, cause);
    }
}
