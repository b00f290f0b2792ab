//! Scenario tests of the sans-IO registerer with a simulated clock.

mod support;

use sipreg::core::failure::{Failure, FailureKind};
use sipreg::core::options::{RegistererOptions, RetryPolicy, Secret, UserAgentConfig};
use sipreg::core::registerer::{Event, State};
use sipreg::Error;
use support::harness::{ms, secs, Harness};

fn no_retry() -> RegistererOptions {
    RegistererOptions {
        retry: RetryPolicy {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn construction_sends_nothing() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.drain();
    assert!(h.sent.is_empty());
    assert!(h.events.is_empty());
    assert_eq!(h.reg.state(), State::Initial);
    assert_eq!(h.reg.poll_timeout(), None);
}

#[test]
fn first_register_without_auth_has_the_rfc_3261_shape() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    let r = h.last().clone();
    assert_eq!(r.request_line, "REGISTER sip:example.com SIP/2.0");
    assert!(r
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK"));
    assert!(r.header("Via").unwrap().ends_with(";rport"));
    assert_eq!(r.header("Max-Forwards"), Some("70"));
    assert_eq!(r.header("To"), Some("<sip:alice@example.com>"));
    assert!(r
        .header("From")
        .unwrap()
        .starts_with("<sip:alice@example.com>;tag="));
    assert_eq!(
        r.header("CSeq"),
        Some("2 REGISTER"),
        "SIP.js: initial cseq 1, incremented before sending"
    );
    assert_eq!(
        r.header("Contact"),
        Some("<sip:alice@127.0.0.1:5080>;expires=600")
    );
    assert_eq!(r.header("Expires"), Some("600"));
    assert_eq!(
        r.header("Allow"),
        Some("OPTIONS"),
        "only what the library answers itself"
    );
    assert_eq!(r.header("Supported"), None, "no extension used");
    assert!(r.header("User-Agent").unwrap().starts_with("sipreg/"));
    assert_eq!(r.header("Content-Length"), Some("0"));
    assert_eq!(
        r.header("Authorization"),
        None,
        "first REGISTER goes without credentials"
    );
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(h.responses(), vec![200]);
    assert_eq!(h.reg.contacts(), ["sip:alice@127.0.0.1:5080"]);
    assert_eq!(h.reg.last_response(), Some((200, "OK")));
}

#[test]
fn first_register_with_digest_auth() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    let first = h.last().clone();
    h.challenge("n1", false);
    assert_eq!(h.sent.len(), 2);
    let second = h.last().clone();
    assert_eq!(second.cseq(), first.cseq() + 1, "CSeq +1 on the auth retry");
    assert_ne!(
        second.branch(),
        first.branch(),
        "new transaction, new branch"
    );
    assert_eq!(second.header("Call-ID"), first.header("Call-ID"));
    let auth = second.header("Authorization").unwrap();
    assert!(auth.starts_with(
        "Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", uri=\"sip:example.com\""
    ));
    assert!(
        auth.contains("qop=auth") && auth.contains("nc=00000001") && auth.contains("cnonce=\"")
    );
    assert!(!auth.contains("pw"), "password never on the wire");
    assert_eq!(
        h.states(),
        Vec::<State>::new(),
        "the 401 is handled below the state machine"
    );
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(h.responses(), vec![401, 200]);
}

#[test]
fn refresh_at_99_percent_of_the_granted_expiry() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 600,
        ..Default::default()
    });
    h.register();
    h.ok(100); // registrar grants less than asked
    let sent = h.run_until_sent(secs(1000)).unwrap();
    assert_eq!(
        sent.at,
        h.refresh_after(100),
        "of the granted 100 s, not of the requested 600 s"
    );
    assert!(
        sent.at <= secs(95) && sent.at >= ms(85_500),
        "99 % of 100 s leaves at least 5 s, spread up to 10 % earlier: {:?}",
        sent.at
    );
    assert_eq!(
        sent.req.contact_expires(),
        Some(600),
        "a refresh asks for the configured value again"
    );
    assert_eq!(
        h.states(),
        vec![State::Registered],
        "refreshing emits nothing"
    );
}

#[test]
fn refresh_at_50_percent() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 60,
        refresh_frequency: 50,
        ..Default::default()
    });
    h.register();
    h.ok(60);
    let at = h.run_until_sent(secs(100)).unwrap().at;
    assert_eq!(at, h.refresh_after(60));
    assert!(at <= secs(30) && at >= secs(27), "{at:?}");
}

#[test]
fn granted_expiry_falls_back_to_expires_header_then_requested() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 300,
        refresh_frequency: 50,
        ..Default::default()
    });
    h.register();
    let c = format!("Contact: <{}>", h.last().contact_uri());
    h.reply(200, "OK", &[c.clone(), "Expires: 40".into()]);
    assert_eq!(
        h.run_until_sent(secs(1000)).unwrap().at,
        h.refresh_after(40)
    );
    let t = h.elapsed();
    h.reply(200, "OK", &[c]);
    assert_eq!(
        h.run_until_sent(secs(1000)).unwrap().at - t,
        h.refresh_after(300),
        "no expires anywhere: the requested value"
    );
}

#[test]
fn hours_of_refreshes_keep_call_id_and_grow_cseq() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 60,
        ..Default::default()
    });
    h.register();
    h.ok(60);
    for _ in 0..300 {
        h.run_until_sent(secs(120)).expect("refresh sent");
        h.ok(60);
    }
    assert_eq!(
        h.elapsed(),
        h.refresh_after(60) * 300,
        "each refresh 55 s or a little less after the last 2xx"
    );
    let reqs = h.requests();
    assert_eq!(reqs.len(), 301);
    let call_id = reqs[0].header("Call-ID").unwrap();
    let tag = reqs[0].header("From").unwrap();
    for w in reqs.windows(2) {
        assert_eq!(w[1].cseq(), w[0].cseq() + 1);
        assert_ne!(w[1].branch(), w[0].branch());
        assert_eq!(w[1].header("Call-ID").unwrap(), call_id);
        assert_eq!(w[1].header("From").unwrap(), tag);
    }
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn expiry_without_a_successful_refresh() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.ok(100);
    let at = h.run_until_sent(secs(100)).unwrap().at; // the refresh gets no answer yet
    h.advance(secs(100) - at - ms(1));
    assert_eq!(h.reg.state(), State::Registered);
    h.advance(ms(2));
    assert_eq!(
        h.reg.state(),
        State::Unregistered,
        "expired at the granted 100 s"
    );
    assert!(h.reg.is_waiting(), "the refresh is still in flight");
    h.ok(100);
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered, State::Registered]
    );
}

#[test]
fn interval_too_brief_then_success_keeps_min_expires() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 30,
        ..Default::default()
    });
    h.register();
    h.reply(423, "Interval Too Brief", &["Min-Expires: 120".into()]);
    assert_eq!(h.last().contact_expires(), Some(120));
    assert_eq!(h.last().header("Expires"), Some("120"));
    h.ok(120);
    assert_eq!(h.states(), vec![State::Registered]);
    let refresh = h.run_until_sent(secs(200)).unwrap();
    assert_eq!(
        refresh.req.contact_expires(),
        Some(120),
        "later refreshes keep Min-Expires"
    );
    assert_eq!(h.reg.requested_expires(), 120);
}

#[test]
fn interval_too_brief_loop_guard() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(423, "Interval Too Brief", &["Min-Expires: 700".into()]);
    assert_eq!(h.requests().len(), 2);
    // The server asks again for a value that is not larger than what we sent.
    h.reply(423, "Interval Too Brief", &["Min-Expires: 700".into()]);
    assert_eq!(h.requests().len(), 2, "no third REGISTER");
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert!(!h.reg.is_waiting());

    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(423, "Interval Too Brief", &[]);
    assert_eq!(h.requests().len(), 1, "no Min-Expires: give up");
    assert_eq!(h.states(), vec![State::Unregistered]);
}

#[test]
fn stale_nonce_is_retried_at_most_three_times_in_a_row() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.challenge("n1", false);
    for i in 2..=4 {
        h.challenge(&format!("n{i}"), true);
    }
    assert_eq!(h.requests().len(), 5, "1 + first answer + 3 stale retries");
    h.challenge("n5", true);
    assert_eq!(h.requests().len(), 5);
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert_eq!(h.reg.last_response().unwrap().0, 401);
}

#[test]
fn stale_nonce_then_success() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.challenge("n1", false);
    h.challenge("n2", true);
    assert!(h
        .last()
        .header("Authorization")
        .unwrap()
        .contains("nonce=\"n2\""));
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn wrong_password_costs_at_most_three_registers() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    for i in 1..=10 {
        if !h.reg.is_waiting() {
            break;
        }
        h.challenge(&format!("n{i}"), false);
    }
    assert_eq!(
        h.requests().len(),
        3,
        "none, creds for n1, creds for new nonce n2 (once), then stop"
    );
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert_eq!(
        h.reg.next_retry(h.now),
        None,
        "a rejected password is not retried automatically"
    );
    h.advance(secs(7200));
    assert_eq!(h.requests().len(), 3, "no storm later either");
}

#[test]
fn same_nonce_rechallenge_means_rejected() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.challenge("n1", false);
    h.challenge("n1", false);
    assert_eq!(h.requests().len(), 2);
    assert_eq!(h.states(), vec![State::Unregistered]);
}

#[test]
fn refresh_reuses_cached_credentials_with_growing_nc() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.challenge("n1", false);
    h.ok(60);
    let refresh = h.run_until_sent(secs(100)).unwrap();
    let auth = refresh.req.header("Authorization").unwrap();
    assert!(
        auth.contains("nonce=\"n1\"") && auth.contains("nc=00000002"),
        "{auth}"
    );
}

#[test]
fn missing_password_is_a_clear_failure() {
    let ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    let mut h = Harness::new(ua, no_retry());
    h.register();
    h.challenge("n1", false);
    assert_eq!(h.requests().len(), 1);
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert!(h
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Note(n) if n.contains("no password"))));
}

#[test]
fn proxy_challenge_is_answered_with_proxy_authorization() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(
        407,
        "Proxy Authentication Required",
        &["Proxy-Authenticate: Digest realm=\"proxy\", nonce=\"p1\", qop=\"auth\"".into()],
    );
    assert!(h
        .last()
        .header("Proxy-Authorization")
        .unwrap()
        .contains("realm=\"proxy\""));
    h.challenge("r1", false); // then the registrar's own realm: a first answer, not a rejection
    assert!(h.last().header("Authorization").is_some());
    assert!(h.last().header("Proxy-Authorization").is_some());
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn strongest_algorithm_is_chosen() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(401, "Unauthorized", &[
        "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"m\", qop=\"auth\", algorithm=MD5".into(),
        "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"s\", qop=\"auth\", algorithm=SHA-256".into(),
    ]);
    assert!(h
        .last()
        .header("Authorization")
        .unwrap()
        .contains("algorithm=SHA-256"));
}

#[test]
fn service_unavailable_with_retry_after() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(503, "Service Unavailable", &["Retry-After: 7".into()]);
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert_eq!(h.reg.retry_after(), Some(7));
    assert_eq!(h.reg.next_retry(h.now), Some(secs(7)));
    assert!(h.events.iter().any(|(_, e)| *e
        == Event::RetryScheduled {
            delay: secs(7),
            failures: 1
        }));
    let retry = h.run_until_sent(secs(60)).unwrap();
    assert_eq!(retry.at, secs(7));
    h.ok(600);
    assert_eq!(h.states(), vec![State::Unregistered, State::Registered]);
    assert_eq!(h.reg.retry_after(), None);
    assert_eq!(h.reg.failure_count(), 0);
}

#[test]
fn retry_after_on_a_permanent_failure_is_reported_but_not_retried() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(403, "Forbidden", &["Retry-After: 5".into()]);
    assert_eq!(h.reg.retry_after(), Some(5));
    assert_eq!(h.reg.next_retry(h.now), None);
}

#[test]
fn udp_timeout_retransmits_then_reports_408() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.advance(secs(40));
    let retrans: Vec<_> = h
        .sent
        .iter()
        .filter(|s| s.retransmission)
        .map(|s| s.at.as_millis())
        .collect();
    assert_eq!(retrans.len(), 10);
    assert_eq!(&retrans[..4], &[500, 1500, 3500, 7500]);
    assert!(
        h.sent
            .iter()
            .all(|s| s.req.branch() == h.sent[0].req.branch()),
        "retransmissions are identical"
    );
    assert_eq!(h.reg.retransmissions(), 10);
    assert_eq!(h.responses(), vec![408]);
    assert_eq!(h.states(), vec![State::Unregistered]);
    let t408 = h
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Response { .. }))
        .unwrap()
        .0;
    assert_eq!(t408, secs(32));
    assert!(!h.reg.is_waiting());
}

/// The timers tests/sipp_faults.rs gives the library (T1 50 ms, T2 400 ms,
/// retry_base 0.5 s): Timer E doubles up to T2, Timer F ends the transaction
/// at 64 T1 = 3.2 s, then the backoff retry is a new transaction.
#[test]
fn short_timers_retransmit_up_to_t2_and_time_out_at_64_t1() {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_timers(ms(50), ms(400), ms(500)).unwrap();
    let opts = RegistererOptions {
        retry: RetryPolicy {
            base: ms(500),
            max: secs(4),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = Harness::new(ua, opts);
    h.register();
    h.advance(ms(3200));
    let at: Vec<u128> = h.sent.iter().map(|s| s.at.as_millis()).collect();
    assert_eq!(
        at,
        [0, 50, 150, 350, 750, 1150, 1550, 1950, 2350, 2750, 3150]
    );
    assert!(h.sent[1..]
        .iter()
        .all(|s| s.retransmission && s.req.raw == h.sent[0].req.raw));
    assert_eq!(h.responses(), vec![408]);
    let timed_out = h
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Response { .. }))
        .unwrap()
        .0;
    assert_eq!(timed_out, ms(3200));
    let delay = h.reg.next_retry(h.now).expect("a backoff retry");
    assert!(
        delay >= ms(500) && delay <= secs(1),
        "min(max, base * 2) * U[0.5, 1]: {delay:?}"
    );
    assert!(h
        .events
        .iter()
        .any(|(_, e)| *e == Event::RetryScheduled { delay, failures: 1 }));
    let retry = h.run_until_sent(secs(2)).expect("the retry");
    assert_eq!(retry.at, ms(3200) + delay);
    assert!(!retry.retransmission);
    assert_ne!(
        retry.req.branch(),
        h.sent[0].req.branch(),
        "a new transaction"
    );
    assert_eq!(retry.req.header("Call-ID"), h.sent[0].req.header("Call-ID"));
}

#[test]
fn timeout_with_retry_policy_backs_off_per_rfc_5626() {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_timers(ms(10), ms(40), ms(50)).unwrap();
    let opts = RegistererOptions {
        retry: RetryPolicy {
            base: secs(30),
            max: secs(1800),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = Harness::new(ua, opts);
    h.register();
    let mut delays = Vec::new();
    for _ in 0..8 {
        h.advance(ms(700)); // Timer F = 640 ms
        let d = h.reg.next_retry(h.now).expect("retry scheduled");
        delays.push(d);
        h.advance(d);
    }
    for (i, d) in delays.iter().enumerate() {
        let cap = (30u64 << (i + 1)).min(1800) as f64;
        let s = d.as_secs_f64();
        assert!(
            s >= cap * 0.5 - 1.0 && s <= cap,
            "failure {}: {s} not in [{}, {cap}]",
            i + 1,
            cap * 0.5
        );
    }
    assert_eq!(h.reg.failure_count(), 8);
}

#[test]
fn request_pending_and_terminated_errors() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    assert_eq!(h.reg.register(h.now), Err(Error::RequestPending));
    assert_eq!(h.reg.unregister(h.now, false), Err(Error::RequestPending));
    assert_eq!(h.requests().len(), 1, "never queued silently");
    h.ok(600);
    h.reg.dispose(h.now);
    assert_eq!(h.reg.register(h.now), Err(Error::Terminated));
    assert_eq!(h.reg.unregister(h.now, true), Err(Error::Terminated));
}

#[test]
fn register_again_while_registered_is_a_refresh_without_event() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.register();
    assert_eq!(h.last().cseq(), 3);
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn unregister_sends_expires_zero_and_keeps_extra_headers() {
    let mut h = Harness::alice(RegistererOptions {
        extra_headers: vec!["X-Tenant: blue".into()],
        ..Default::default()
    });
    h.register();
    h.ok(600);
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    let r = h.last().clone();
    assert_eq!(
        r.header("Contact"),
        Some("<sip:alice@127.0.0.1:5080>;expires=0")
    );
    assert_eq!(r.header("Expires"), Some("0"));
    assert_eq!(r.header("X-Tenant"), Some("blue"));
    h.reply(200, "OK", &[]);
    assert_eq!(h.states(), vec![State::Registered, State::Unregistered]);
    assert!(h.reg.contacts().is_empty());
    h.advance(secs(3600));
    assert_eq!(h.requests().len(), 2, "no refresh after unregister");
}

#[test]
fn unregister_all_sends_star() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.reg.unregister(h.now, true).unwrap();
    h.drain();
    assert_eq!(h.last().header("Contact"), Some("*"));
    assert_eq!(h.last().header("Expires"), Some("0"));
    h.reply(200, "OK", &[]);
    assert_eq!(h.states(), vec![State::Unregistered]);
}

#[test]
fn unregister_rejected_still_ends_unregistered_without_retry() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.unregister(h.now, false).unwrap();
    h.drain();
    h.reply(500, "Server Error", &[]);
    assert_eq!(h.states(), vec![State::Registered, State::Unregistered]);
    assert_eq!(h.reg.next_retry(h.now), None);
}

#[test]
fn ok_without_contact_or_with_foreign_contacts_is_unregistered_and_not_stuck() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(200, "OK", &[]);
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert!(
        !h.reg.is_waiting(),
        "SIP.js leaves waiting set here; we do not"
    );
    h.register();
    h.reply(
        200,
        "OK",
        &["Contact: <sip:alice@10.0.0.9:5060>;expires=600".into()],
    );
    assert_eq!(h.states(), vec![State::Unregistered]);
    assert_eq!(h.reg.contacts(), ["sip:alice@10.0.0.9:5060"]);
    h.register();
    assert!(h.reg.is_waiting());
}

#[test]
fn our_contact_found_among_many_on_one_line_by_instance_id() {
    let opts = RegistererOptions {
        instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
        reg_id: Some(1),
        ..Default::default()
    };
    let mut h = Harness::alice(opts);
    h.register();
    let c = h.last().header("Contact").unwrap().to_owned();
    assert_eq!(
        c,
        "<sip:alice@127.0.0.1:5080;ob>;reg-id=1;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=600"
    );
    assert_eq!(h.last().header("Supported"), Some("outbound"));
    // NAT rewrote our contact, so only +sip.instance identifies it.
    h.reply(200, "OK", &[
        "Contact: <sip:alice@10.1.1.1:5060>;expires=3600, <sip:alice@203.0.113.7:40000>;reg-id=1;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=90, \"Bob, M\" <sip:bob@10.2.2.2>;expires=60".into(),
    ]);
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(h.reg.contacts().len(), 3);
    assert_eq!(h.run_until_sent(secs(200)).unwrap().at, h.refresh_after(90));
}

#[test]
fn granted_zero_for_our_contact_is_unregistered() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.ok(0);
    assert_eq!(h.states(), vec![State::Unregistered]);
}

#[test]
fn refresh_waits_for_a_request_in_flight() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 100,
        ..Default::default()
    });
    h.register();
    h.ok(100);
    h.advance(h.refresh_after(100) - ms(500));
    h.register(); // application-initiated, in flight when the refresh timer fires
    h.advance(secs(100) - h.elapsed());
    assert_eq!(h.requests().len(), 2, "no colliding refresh (SIP.js #1071)");
    h.ok(100);
    assert_eq!(
        h.run_until_sent(secs(200)).unwrap().at,
        secs(100) + h.refresh_after(100),
        "the refresh counts from the 2xx that arrived at 100 s"
    );
}

#[test]
fn dispose_in_each_state() {
    // Initial: nothing sent.
    let mut h = Harness::alice(RegistererOptions::default());
    h.reg.dispose(h.now);
    h.drain();
    assert!(h.sent.is_empty());
    assert_eq!(h.states(), vec![State::Terminated]);
    h.reg.dispose(h.now); // idempotent
    h.drain();
    assert_eq!(h.states(), vec![State::Terminated]);

    // Registered: un-REGISTER, then Unregistered, Terminated.
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.dispose(h.now);
    h.drain();
    assert_eq!(h.last().contact_expires(), Some(0));
    h.reply(200, "OK", &[]);
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered, State::Terminated]
    );

    // Unregistered: straight to Terminated.
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(403, "Forbidden", &[]);
    h.reg.dispose(h.now);
    h.drain();
    assert_eq!(h.requests().len(), 1);
    assert_eq!(h.states(), vec![State::Unregistered, State::Terminated]);

    // While a REGISTER is in flight: wait for it, then unregister.
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reg.dispose(h.now);
    h.drain();
    assert_eq!(h.requests().len(), 1);
    h.ok(600);
    assert_eq!(h.last().contact_expires(), Some(0));
    h.reply(200, "OK", &[]);
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered, State::Terminated]
    );
}

#[test]
fn dispose_answers_challenges_on_the_unregister() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.dispose(h.now);
    h.drain();
    h.challenge("d1", false);
    assert!(h.last().header("Authorization").is_some());
    assert_eq!(h.last().contact_expires(), Some(0));
    h.reply(200, "OK", &[]);
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered, State::Terminated]
    );
}

#[test]
fn dispose_is_bounded_when_the_unregister_gets_no_answer() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.dispose(h.now);
    h.drain();
    h.advance(secs(3));
    assert_eq!(h.reg.state(), State::Registered);
    h.advance(ms(1001));
    assert_eq!(
        h.reg.state(),
        State::Terminated,
        "terminated after the 4 s bound"
    );
    assert_eq!(h.reg.poll_timeout(), None);
    let n = h.sent.len();
    h.advance(secs(100));
    assert_eq!(h.sent.len(), n, "nothing after Terminated");
}

#[test]
fn responses_that_are_not_ours_are_dropped() {
    use sipreg::core::registerer::Unmatched;
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    let good = String::from_utf8(h.last().response(200, "OK", &[])).unwrap();
    let bad_callid = good.replace(h.last().header("Call-ID").unwrap(), "other");
    assert_eq!(
        h.deliver(bad_callid.as_bytes()),
        Err(Unmatched::WrongDialogue)
    );
    let bad_cseq = good.replace("CSeq: 2 REGISTER", "CSeq: 9 REGISTER");
    assert_eq!(
        h.deliver(bad_cseq.as_bytes()),
        Err(Unmatched::WrongDialogue)
    );
    let bad_branch = good.replace(&h.last().branch(), "z9hG4bKnope");
    assert_eq!(
        h.deliver(bad_branch.as_bytes()),
        Err(Unmatched::UnknownBranch)
    );
    assert!(h.reg.is_waiting());
    assert_eq!(h.states(), Vec::<State>::new());
}

#[test]
fn provisional_responses_change_nothing_and_retransmitted_finals_are_absorbed() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(100, "Trying", &[]);
    assert_eq!(h.states(), Vec::<State>::new());
    assert!(h.responses().is_empty());
    let ok = h.last().response(
        200,
        "OK",
        &[format!("Contact: <{}>;expires=600", h.last().contact_uri())],
    );
    h.deliver(&ok).unwrap();
    h.deliver(&ok).unwrap();
    assert_eq!(
        h.responses(),
        vec![200],
        "the retransmitted 200 is absorbed"
    );
}

#[test]
fn redirect_and_other_failures_are_unregistered() {
    for (status, transient) in [
        (302, false),
        (404, false),
        (480, true),
        (500, true),
        (603, false),
        (600, true),
    ] {
        let mut h = Harness::alice(RegistererOptions::default());
        h.register();
        h.reply(status, "X", &[]);
        assert_eq!(h.states(), vec![State::Unregistered], "{status}");
        assert_eq!(h.reg.next_retry(h.now).is_some(), transient, "{status}");
    }
}

#[test]
fn local_address_change_removes_the_old_binding_in_the_same_register() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    let call_id = h.last().header("Call-ID").unwrap().to_owned();
    h.reg.set_local_addr("127.0.0.2:6000".parse().unwrap());
    h.reg.network_changed(h.now);
    h.drain();
    let r = h.last().clone();
    assert_eq!(
        r.all("Contact"),
        vec![
            "<sip:alice@127.0.0.2:6000>;expires=600",
            "<sip:alice@127.0.0.1:5080>;expires=0"
        ]
    );
    assert_eq!(r.header("Call-ID").unwrap(), call_id);
    assert!(r.header("Via").unwrap().contains("127.0.0.2:6000"));
    h.ok(600);
    h.run_until_sent(secs(700)).unwrap();
    assert_eq!(
        h.last().all("Contact").len(),
        1,
        "the old contact is removed only once"
    );
}

#[test]
fn connection_lost_while_registered_re_registers_at_once() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    // The flow lived past retry_base (30 s): not a quick loss.
    h.advance(secs(31));
    h.reg.connection_lost(
        h.now,
        Failure::new(FailureKind::Transport, "connection closed"),
    );
    h.drain();
    assert_eq!(h.requests().len(), 2);
    // And a request in flight that loses its connection is retried at once.
    h.reg.connection_lost(
        h.now,
        Failure::new(FailureKind::Transport, "connection closed"),
    );
    h.drain();
    assert_eq!(h.responses().last(), Some(&503));
    assert_eq!(h.reg.next_retry(h.now), Some(std::time::Duration::ZERO));
    h.advance(ms(1));
    assert_eq!(h.requests().len(), 3);
}

#[test]
fn flows_that_die_right_after_each_200_back_off() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    // Lost 1 s after the 200: the first time, re-registered at once...
    h.advance(secs(1));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    assert_eq!(h.requests().len(), 2);
    assert_eq!(h.reg.failure_count(), 1, "a quick loss counts as a failure");
    h.ok(600);
    assert_eq!(h.reg.failure_count(), 0);
    // ...the second time in a row, after the backoff (base·2^2, 50-100 %).
    h.advance(secs(1));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    assert_eq!(h.requests().len(), 2, "nothing sent at once");
    assert_eq!(h.reg.failure_count(), 2);
    let wait = h.reg.next_retry(h.now).expect("a retry is scheduled");
    assert!(wait >= secs(60) && wait <= secs(120), "{wait:?}");
    assert_eq!(
        h.states(),
        vec![State::Registered],
        "still registered meanwhile"
    );
    let sent = h.run_until_sent(secs(121)).expect("the retry goes out");
    assert!(sent.at >= secs(62));
    h.ok(600);
    // A third quick loss waits longer still; a flow that lives past the
    // base time is lost "for the first time" again.
    h.advance(secs(1));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    let wait = h.reg.next_retry(h.now).expect("a retry is scheduled");
    assert!(wait >= secs(120) && wait <= secs(240), "{wait:?}");
    h.run_until_sent(secs(241)).unwrap();
    h.ok(600);
    h.advance(secs(40));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    assert_eq!(h.reg.next_retry(h.now), None, "re-registered at once");
}

#[test]
fn a_refresh_during_a_flow_loss_backoff_ends_the_backoff() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.advance(secs(1));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    h.ok(60); // a short grant: its refresh comes before the backoff ends
    h.advance(secs(1));
    h.reg.connection_lost(h.now, closed());
    h.drain();
    let wait = h.reg.next_retry(h.now).expect("a retry is scheduled");
    assert!(wait >= secs(60), "{wait:?}");
    let refresh = h.run_until_sent(secs(59)).expect("the refresh goes out");
    assert!(refresh.at < secs(60));
    h.ok(600);
    assert_eq!(
        h.reg.next_retry(h.now),
        None,
        "registered again: the scheduled recovery has nothing left to do"
    );
    let sent = h.requests().len();
    h.advance(secs(250));
    assert_eq!(h.requests().len(), sent, "no REGISTER from the stale retry");
}

#[test]
fn network_change_while_a_refresh_is_in_flight_keeps_the_registration() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.register(h.now).unwrap(); // refresh in flight, carrying contact :5080
    h.drain();
    let in_flight = h.last().clone();
    h.reg.set_local_addr("127.0.0.1:6001".parse().unwrap());
    h.reg.network_changed(h.now);
    h.drain();
    assert_eq!(
        h.requests().len(),
        2,
        "UDP: the request in flight is left to finish"
    );
    // The registrar answers the request that was sent, listing the old contact.
    let ok = in_flight.response(
        200,
        "OK",
        &[format!(
            "Contact: <{}>;expires=600",
            in_flight.contact_uri()
        )],
    );
    h.deliver(&ok).unwrap();
    assert_eq!(
        h.reg.state(),
        State::Registered,
        "matched against the contact it carried"
    );
    let rebind = h.last().clone();
    assert_eq!(
        h.requests().len(),
        3,
        "then re-registers at once from the new address"
    );
    assert_eq!(
        rebind.all("Contact"),
        vec![
            "<sip:alice@127.0.0.1:6001>;expires=600",
            "<sip:alice@127.0.0.1:5080>;expires=0"
        ]
    );
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn stream_network_change_resends_the_request_in_flight_at_once() {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.transport = sipreg::core::options::Transport::Tcp;
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.register();
    let first = h.last().clone();
    h.reg.set_local_addr("127.0.0.1:6002".parse().unwrap());
    h.reg.network_changed(h.now);
    h.drain();
    let second = h.last().clone();
    assert_eq!(h.requests().len(), 2);
    assert_eq!(second.cseq(), first.cseq() + 1);
    assert!(second.header("Via").unwrap().contains("127.0.0.1:6002"));
    assert!(h.responses().is_empty(), "no failure reported for the move");
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn retry_after_zero_backs_off_instead_of_storming() {
    let mut h = Harness::alice(RegistererOptions::default());
    h.register();
    h.reply(503, "Service Unavailable", &["Retry-After: 0".into()]);
    let d = h.reg.next_retry(h.now).unwrap();
    assert!(
        d >= secs(30),
        "RFC 5626 backoff, not an immediate retry: {d:?}"
    );
    assert_eq!(h.reg.retry_after(), Some(0));
}

#[test]
fn ever_growing_min_expires_is_a_loop_too() {
    let mut h = Harness::alice(no_retry());
    h.register();
    for i in 0..10 {
        if !h.reg.is_waiting() {
            break;
        }
        h.reply(
            423,
            "Interval Too Brief",
            &[format!("Min-Expires: {}", 601 + i)],
        );
    }
    assert_eq!(
        h.requests().len(),
        4,
        "one REGISTER and three 423 resends at most"
    );
    assert_eq!(h.states(), vec![State::Unregistered]);
}

#[test]
fn dispose_unregister_is_resent_once_when_its_connection_drops() {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.transport = sipreg::core::options::Transport::Tcp;
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.register();
    h.ok(600);
    h.reg.dispose(h.now);
    h.drain();
    h.reg.connection_lost(
        h.now,
        Failure::new(FailureKind::Transport, "connection closed"),
    );
    h.drain();
    assert_eq!(
        h.requests().len(),
        3,
        "un-REGISTER sent again on the new connection"
    );
    assert_eq!(h.last().contact_expires(), Some(0));
    h.reg.connection_lost(
        h.now,
        Failure::new(FailureKind::Transport, "connection closed"),
    );
    h.drain();
    assert_eq!(h.requests().len(), 3, "only once");
    assert_eq!(h.reg.state(), State::Terminated);
}

#[test]
fn short_grant_refresh_leaves_five_seconds_and_is_spread_per_registerer() {
    // SIP.js's 99 % of 30 s would leave 0.3 s (less than T1) for the answer.
    let mut times = Vec::new();
    for i in 0..200 {
        let mut h = Harness::alice(RegistererOptions {
            expires: 30,
            call_id: Some(format!("call-{i}@fleet")),
            ..Default::default()
        });
        h.register();
        h.ok(30);
        let at = h.run_until_sent(secs(60)).unwrap().at;
        assert!(
            at <= secs(25) && at >= ms(22_500),
            "refresh of a 30 s grant at {at:?}: must leave 5 s and be at most 10 % early"
        );
        h.ok(30);
        let again = h.run_until_sent(secs(60)).unwrap().at - at;
        assert_eq!(again, at, "the offset is stable for one registerer");
        times.push(at);
    }
    times.sort();
    let spread = *times.last().unwrap() - times[0];
    assert!(
        spread > secs(2),
        "200 registerers spread over {spread:?} only"
    );
    let distinct = times.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        distinct > 150,
        "not in lockstep: {distinct} distinct instants"
    );
}

#[test]
fn same_call_id_same_refresh_instant() {
    let run = || {
        let mut h = Harness::alice(RegistererOptions {
            call_id: Some("fixed@host".into()),
            ..Default::default()
        });
        h.register();
        h.ok(600);
        h.run_until_sent(secs(1000)).unwrap().at
    };
    let at = run();
    assert_eq!(at, run());
    assert!(at <= secs(594) && at >= ms(534_600), "{at:?}");
}

/// tests/sipp/short_grant*.xml: 60 s asked, 2 s granted (in the Contact or in
/// the Expires header): the refresh comes at half of the grant (up to 10 %
/// earlier) and asks for the configured 60 s again.
#[test]
fn shorter_grant_than_asked_is_refreshed_at_half_of_it() {
    for in_header in [false, true] {
        let mut h = Harness::alice(RegistererOptions {
            expires: 60,
            ..Default::default()
        });
        h.register();
        let uri = h.last().contact_uri();
        let grant = if in_header {
            vec![format!("Contact: <{uri}>"), "Expires: 2".into()]
        } else {
            vec![format!("Contact: <{uri}>;expires=2")]
        };
        h.reply(200, "OK", &grant);
        let at = h.run_until_sent(secs(120)).expect("a refresh").at;
        assert_eq!(at, h.refresh_after(2));
        assert!(
            at <= secs(1) && at >= ms(900),
            "half of the 2 s grant, up to 10 % early: {at:?}"
        );
        assert_eq!(h.last().contact_expires(), Some(60));
        assert_eq!(h.last().header("Expires"), Some("60"));
        assert_eq!(h.states(), vec![State::Registered]);
    }
}

#[test]
fn tiny_grant_refreshes_at_half() {
    let mut h = Harness::alice(RegistererOptions {
        expires: 4,
        ..Default::default()
    });
    h.register();
    h.ok(4);
    let at = h.run_until_sent(secs(10)).unwrap().at;
    assert!(at <= secs(2) && at >= ms(1_800), "{at:?}");
    assert_eq!(h.reg.state(), State::Registered);
}

#[test]
fn paced_transaction_waits_for_admission_then_starts_its_timers() {
    let mut h = Harness::alice(no_retry());
    h.reg.set_paced(true);
    h.reg.register(h.now).unwrap();
    h.drain();
    assert!(h.sent.is_empty(), "nothing goes out before admission");
    assert!(h.reg.wants_admission() && !h.reg.in_transaction());
    assert!(h.reg.is_waiting(), "a queued request counts as in flight");
    assert_eq!(h.reg.register(h.now), Err(Error::RequestPending));
    assert_eq!(h.reg.poll_timeout(), None, "no Timer E/F while queued");
    h.reg.transport_error(
        h.now,
        Failure::new(FailureKind::Transport, "icmp for someone else's datagram"),
        false,
    );
    h.reg.connection_lost(
        h.now,
        Failure::new(FailureKind::Transport, "connection closed"),
    );
    assert!(h.reg.wants_admission(), "never sent, so not failed");
    h.advance(secs(40)); // longer than Timer F
    assert_eq!(h.reg.state(), State::Initial);
    h.reg.admit(h.now);
    h.drain();
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].at, secs(40));
    assert!(h.reg.in_transaction() && !h.reg.wants_admission());
    assert_eq!(
        h.reg.poll_timeout(),
        Some(h.now + ms(500)),
        "Timer E from admission"
    );
    h.challenge("n1", false);
    assert!(
        h.reg.wants_admission(),
        "the authenticated resend is a new transaction"
    );
    assert_eq!(h.sent.len(), 1);
    h.reg.admit(h.now);
    h.drain();
    assert_eq!(h.sent.len(), 2);
    assert!(h.last().header("Authorization").is_some());
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
    // The refresh waits for admission too.
    h.advance(h.refresh_after(600) + ms(1));
    assert!(h.reg.wants_admission());
    assert_eq!(h.sent.len(), 2);
}

#[test]
fn paced_request_computes_its_credentials_when_admitted() {
    let mut h = Harness::alice(no_retry());
    h.reg.set_paced(true);
    h.reg.register(h.now).unwrap();
    h.reg.admit(h.now);
    h.drain();
    h.challenge("n1", false);
    // The password changes while the authenticated resend waits for the
    // window: what goes out is decided at admission, so no stale answer
    // computed from the old password leaves.
    h.reg
        .set_credentials(None, Some(Secret::new("the new password")));
    h.reg.admit(h.now);
    h.drain();
    assert_eq!(h.sent.len(), 2);
    assert!(h.last().header("Authorization").is_none());
    // Admitted without the forgotten challenge: the next 401 is answered with
    // the new password, nc counting from 1.
    h.challenge("n2", false);
    h.reg.admit(h.now);
    h.drain();
    let auth = h
        .last()
        .header("Authorization")
        .expect("answered")
        .to_owned();
    assert!(
        auth.contains("nonce=\"n2\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
}

#[test]
fn paced_timers_and_expiry_still_run_while_queued() {
    let mut h = Harness::alice(no_retry());
    h.reg.set_paced(true);
    h.reg.register(h.now).unwrap();
    h.reg.admit(h.now);
    h.drain();
    h.ok(30);
    h.advance(secs(30)); // refresh due and queued; the window never opens
    assert!(h.reg.wants_admission());
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered],
        "the binding expires visibly"
    );
    h.reg.dispose(h.now);
    h.advance(secs(60));
    assert_eq!(
        h.reg.state(),
        State::Terminated,
        "dispose is bounded while queued"
    );
    h.reg.set_paced(false);
    assert!(h.sent.len() == 1);
}

#[test]
fn unpaced_by_default_and_unpacing_admits() {
    let mut h = Harness::alice(no_retry());
    h.register();
    assert_eq!(h.sent.len(), 1, "the harness needs no admission");
    let mut h = Harness::alice(no_retry());
    h.reg.set_paced(true);
    h.reg.register(h.now).unwrap();
    h.reg.set_paced(false);
    h.drain();
    assert_eq!(h.sent.len(), 1);
}

#[test]
fn timer_k_absorbs_retransmitted_finals_without_a_wake_up_of_its_own() {
    let mut h = Harness::alice(no_retry());
    h.register();
    let first = h.last().clone();
    let ok = first.response(
        200,
        "OK",
        &[format!("Contact: <{}>;expires=600", first.contact_uri())],
    );
    h.deliver(&ok).unwrap();
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(
        h.reg.poll_timeout(),
        Some(h.now + h.refresh_after(600)),
        "the next wake-up is the refresh, not Timer K"
    );
    h.advance(secs(4));
    assert_eq!(
        h.deliver(&ok),
        Ok(()),
        "a retransmitted 200 within T4 is absorbed"
    );
    h.advance(secs(2));
    assert_eq!(
        h.deliver(&ok),
        Err(sipreg::core::registerer::Unmatched::UnknownBranch),
        "after Timer K the transaction is gone"
    );
    assert_eq!(h.states(), vec![State::Registered]);
}

/// What the endpoint reports when a peer closes a connection.
fn closed() -> Failure {
    Failure::new(FailureKind::Transport, "connection closed by peer")
}

#[test]
fn drain_events_gives_what_poll_event_gives() {
    // Two registerers alike through register, a challenge, a 200, a refresh
    // and an unregister: one read event by event, one in bulk.
    let run = |bulk: bool| {
        let mut h = Harness::alice(RegistererOptions::default());
        h.bulk_events = bulk;
        h.register();
        h.challenge("n1", false);
        h.ok(600);
        let refresh = h.refresh_after(600);
        h.advance(refresh);
        h.challenge("n2", true);
        h.ok(600);
        h.reg.unregister(h.now, false).expect("unregister");
        h.drain();
        h.ok(0);
        h.events
    };
    let one_by_one = run(false);
    assert!(one_by_one.len() >= 6, "{one_by_one:?}");
    assert_eq!(run(true), one_by_one);
}

#[test]
fn over_a_stream_a_request_is_handed_over_once_and_answered_as_usual() {
    use sipreg::core::options::Transport;
    let mut ua = Harness::alice_ua();
    ua.transport = Transport::Tcp;
    let mut h = Harness::new(ua, RegistererOptions::default());
    h.register();
    assert_eq!(h.sent.len(), 1);
    assert!(h.last().header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert!(h.reg.poll_transmit().is_none(), "a request goes out once");
    // Timer E does not run over a stream: nothing is sent again meanwhile.
    h.advance(secs(20));
    assert_eq!(h.sent.len(), 1);
    h.challenge("n1", false);
    assert_eq!(h.sent.len(), 2);
    assert!(h
        .last()
        .header("Authorization")
        .unwrap()
        .contains("nonce=\"n1\""));
    assert!(h.reg.poll_transmit().is_none());
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(h.responses(), vec![401, 200]);
}
