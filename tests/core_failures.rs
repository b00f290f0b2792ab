//! Simulated-clock tests of why an attempt failed (issue 19): every failure
//! class reached in the core, with its status, reason and detail, the
//! Failed event's place among the others, and what clears it.

mod support;

use sipreg::core::failure::{Failure, FailureKind};
use sipreg::core::keepalive::CRLF_PING;
use sipreg::core::options::{RegistererOptions, RetryPolicy, Transport, UserAgentConfig};
use sipreg::core::registerer::{Event, State};
use sipreg::core::targets::{Target, TargetList};
use support::harness::{secs, Harness};

fn no_retry() -> RegistererOptions {
    RegistererOptions {
        retry: RetryPolicy {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Failed events so far.
fn failures(h: &Harness) -> Vec<Failure> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Failed(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// The events so far, without notes, as short words (order checks).
fn kinds(h: &Harness) -> Vec<String> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::StateChanged(s) => Some(format!("state {s}")),
            Event::Response { status, .. } => Some(format!("response {status}")),
            Event::RetryScheduled { .. } => Some("retry scheduled".into()),
            Event::RetryStarted { .. } => Some("retry started".into()),
            Event::Failed(f) => Some(format!("failed {}", f.kind)),
            Event::Note(_) | Event::Warning(_) => None,
        })
        .collect()
}

fn only_failure(h: &Harness) -> Failure {
    let all = failures(h);
    assert_eq!(all.len(), 1, "one failure: {all:?}");
    let f = all[0].clone();
    assert_eq!(h.reg.failure(), Some(&f), "kept as the last failure");
    f
}

#[test]
fn wrong_password_is_auth_rejected_with_the_realm() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.challenge("n1", false);
    assert_eq!(failures(&h), [], "a first challenge is no failure");
    assert_eq!(h.reg.failure(), None);
    h.challenge("n1", false);
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::AuthRejected);
    assert_eq!((f.status, f.reason.as_str()), (Some(401), "Unauthorized"));
    assert_eq!(
        f.detail,
        "credentials for realm \"example.com\" were rejected"
    );
    assert_eq!(
        kinds(&h),
        [
            "response 401",
            "response 401",
            "failed auth_rejected",
            "state Unregistered"
        ]
    );
}

#[test]
fn no_password_is_no_credentials() {
    let ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    let mut h = Harness::new(ua, no_retry());
    h.register();
    h.challenge("n1", false);
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::NoCredentials);
    assert_eq!(f.status, Some(401));
    assert!(f.detail.contains("no password"), "{}", f.detail);
}

#[test]
fn a_challenge_with_no_digest_we_can_answer_is_no_credentials() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(
        401,
        "Unauthorized",
        &["WWW-Authenticate: Basic realm=\"example.com\"".into()],
    );
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::NoCredentials);
    assert!(f.detail.contains("Digest"), "{}", f.detail);
}

#[test]
fn forbidden_after_our_credentials_is_auth_rejected_before_them_rejected() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.challenge("n1", false);
    h.reply(403, "Forbidden", &[]);
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::AuthRejected);
    assert_eq!((f.status, f.reason.as_str()), (Some(403), "Forbidden"));
    assert_eq!(
        f.detail,
        "the registrar refused our credentials: 403 Forbidden"
    );

    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(403, "Forbidden", &[]);
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Rejected);
    assert_eq!(f.status, Some(403));
    assert_eq!(f.detail, "the registrar answered 403 Forbidden");
}

#[test]
fn any_other_final_status_is_rejected_with_its_status_and_reason() {
    for (status, reason) in [
        (404, "Not Found"),
        (480, "Temporarily Unavailable"),
        (603, "Decline"),
    ] {
        let mut h = Harness::alice(no_retry());
        h.register();
        h.reply(status, reason, &[]);
        let f = only_failure(&h);
        assert_eq!(f.kind, FailureKind::Rejected, "{status}");
        assert_eq!((f.status, f.reason.as_str()), (Some(status), reason));
        assert_eq!(
            f.detail,
            format!("the registrar answered {status} {reason}")
        );
    }
}

#[test]
fn a_transient_failure_comes_before_its_retry_and_lasts_until_a_success() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(503, "Service Unavailable", &[]);
    assert_eq!(
        kinds(&h),
        [
            "response 503",
            "failed rejected",
            "state Unregistered",
            "retry scheduled"
        ]
    );
    // The retry starts: the failure of the last attempt is still the 503.
    h.run_until_sent(secs(120)).expect("the retry");
    assert_eq!(h.reg.failure().map(|f| f.status), Some(Some(503)));
    h.ok(600);
    assert_eq!(h.reg.state(), State::Registered);
    assert_eq!(h.reg.failure(), None, "cleared by the 2xx");
    assert_eq!(failures(&h).len(), 1, "a success is no Failed event");
}

#[test]
fn a_2xx_without_our_contact_is_rejected_with_status_200() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(
        200,
        "OK",
        &["Contact: <sip:someone@192.0.2.1>;expires=60".into()],
    );
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Rejected);
    assert_eq!(f.status, Some(200));
    assert!(
        f.detail.contains("does not list our contact"),
        "{}",
        f.detail
    );
}

#[test]
fn interval_too_brief_without_a_usable_min_expires() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(423, "Interval Too Brief", &[]);
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::IntervalTooBrief);
    assert_eq!(f.status, Some(423));
    assert!(f.detail.contains("without a Min-Expires"), "{}", f.detail);

    // Min-Expires that keeps growing: three raises, then it stops.
    let mut h = Harness::alice(no_retry());
    h.register();
    for min in [700, 800, 900, 1000] {
        h.reply(423, "Interval Too Brief", &[format!("Min-Expires: {min}")]);
    }
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::IntervalTooBrief);
    assert!(f.detail.contains("again after 3 raises"), "{}", f.detail);
}

#[test]
fn timer_f_is_a_timeout_naming_the_target() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.advance(secs(40));
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Timeout);
    assert_eq!(
        (f.status, f.reason.as_str()),
        (Some(408), "Request Timeout")
    );
    assert_eq!(
        f.detail,
        "no final response from example.com:5060 within 32.0 s (Timer F)"
    );
    assert_eq!(
        kinds(&h),
        ["response 408", "failed timeout", "state Unregistered"]
    );
}

#[test]
fn the_runtime_cause_of_a_transport_failure_is_kept() {
    for kind in [FailureKind::Transport, FailureKind::Tls] {
        let mut h = Harness::alice(no_retry());
        h.register();
        let cause = Failure::new(kind, "certificate verify failed: it has expired");
        h.reg.transport_error(h.now, cause, false);
        h.drain();
        let f = only_failure(&h);
        assert_eq!(f.kind, kind);
        assert_eq!(
            (f.status, f.reason.as_str()),
            (Some(503), "Service Unavailable")
        );
        assert_eq!(f.detail, "certificate verify failed: it has expired");
    }
}

#[test]
fn a_lost_connection_fails_the_request_in_flight_with_the_runtime_cause() {
    let mut ua = Harness::alice_ua();
    ua.transport = Transport::Tcp;
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.register();
    let cause = Failure::new(FailureKind::Transport, "connection reset by the peer");
    h.reg.connection_lost(h.now, cause);
    h.drain();
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Transport);
    assert_eq!(f.detail, "connection reset by the peer");
}

#[test]
fn a_failed_resolution_is_a_dns_failure_naming_the_host() {
    let mut h = Harness::alice(no_retry());
    h.reg.resolve_targets();
    h.register();
    assert!(h.reg.poll_resolution().is_some());
    let cause = Failure::new(FailureKind::Dns, "A example.com: NXDOMAIN");
    h.reg.targets_resolved(h.now, Err(cause));
    h.drain();
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Dns);
    assert_eq!(f.status, Some(503));
    assert_eq!(
        f.detail,
        "cannot resolve example.com: A example.com: NXDOMAIN"
    );

    // Answers without a single target are a DNS failure too.
    let mut h = Harness::alice(no_retry());
    h.reg.resolve_targets();
    h.register();
    h.reg.poll_resolution();
    h.reg
        .targets_resolved(h.now, Ok(TargetList::new(Vec::new(), None)));
    h.drain();
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Dns);
    assert!(f.detail.contains("no usable SIP targets"), "{}", f.detail);
}

#[test]
fn failover_is_no_failure_until_every_target_failed() {
    let mut h = Harness::alice(no_retry());
    h.reg.resolve_targets();
    h.register();
    h.reg.poll_resolution();
    let t = |port| Target {
        transport: Transport::Udp,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    h.reg
        .targets_resolved(h.now, Ok(TargetList::new(vec![t(5071), t(5072)], None)));
    h.drain();
    let refused = |p: u16| Failure::new(FailureKind::Transport, format!("nothing listens on {p}"));
    h.reg.transport_error(h.now, refused(5071), false);
    h.drain();
    assert_eq!(failures(&h), [], "the next target is tried first");
    h.reg.transport_error(h.now, refused(5072), false);
    h.drain();
    let f = only_failure(&h);
    assert_eq!(
        f.detail, "nothing listens on 5072",
        "the last target's cause"
    );
}

#[test]
fn a_dead_flow_is_a_flow_failure_without_status_cleared_by_the_new_flow() {
    let mut ua = Harness::alice_ua();
    ua.transport = Transport::Tcp;
    let opts = RegistererOptions {
        instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
        reg_id: Some(1),
        ..no_retry()
    };
    let mut h = Harness::new(ua, opts);
    h.register();
    let ours = h.last().contact_uri();
    h.reply(
        200,
        "OK",
        &[
            format!("Contact: <{ours}>;reg-id=1;expires=600"),
            "Require: outbound".into(),
            "Flow-Timer: 20".into(),
        ],
    );
    assert_eq!(h.reg.state(), State::Registered);
    let due = h.reg.keepalive().poll_timeout().unwrap();
    h.advance(due - h.now);
    assert_eq!(h.reg.poll_ping(), Some(CRLF_PING.to_vec()));
    h.run_until_sent(secs(30))
        .expect("re-REGISTER on a new flow");
    let f = only_failure(&h);
    assert_eq!(f.kind, FailureKind::Flow);
    assert_eq!((f.status, f.reason.as_str()), (None, ""));
    assert!(f.detail.contains("no keep-alive answer"), "{}", f.detail);
    assert_eq!(
        h.reg.state(),
        State::Registered,
        "kept while re-registering"
    );
    let ours = h.last().contact_uri();
    h.reply(
        200,
        "OK",
        &[
            format!("Contact: <{ours}>;reg-id=1;expires=600"),
            "Require: outbound".into(),
        ],
    );
    assert_eq!(h.reg.failure(), None);
}

#[test]
fn a_successful_unregister_clears_the_failure() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(404, "Not Found", &[]);
    assert!(h.reg.failure().is_some());
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    h.reply(200, "OK", &[]);
    assert_eq!(h.reg.failure(), None);
}

#[test]
fn a_failed_unregister_is_a_failure_too() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.ok(600);
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    h.reply(500, "Server Internal Error", &[]);
    let f = only_failure(&h);
    assert_eq!((f.kind, f.status), (FailureKind::Rejected, Some(500)));
}
