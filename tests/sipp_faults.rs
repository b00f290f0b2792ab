//! Fault scenarios against a scripted registrar: SIPp 3.6 plays the registrar
//! (scenarios in tests/sipp/, see tests/sipp/README.md) and the library runs
//! through the C ABI. Every test checks both sides: the library's states and
//! events, and SIPp's verdict (exit status 0 = every expected request arrived,
//! in order, and nothing unexpected did), plus message details from SIPp's log.

mod support;

use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::free_port;
use support::sipp::{Msg, Sipp};

// ----- library side -----------------------------------------------------------

const WAIT: Duration = Duration::from_secs(10);
const AOR: &str = "sip:alice@127.0.0.1";
const PASSWORD: &str = "alicepw";

fn ua(tcp: bool) -> Ua {
    Ua::new(AOR)
        .password(PASSWORD)
        .transport(if tcp { "tcp" } else { "udp" })
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0)
}

fn opts(sipp: &Sipp, expires: u32) -> Opts {
    Opts {
        expires,
        registrar: Some(sipp.registrar()),
        retry: true,
        retry_base: 0.5,
        retry_max: 4.0,
        ..Default::default()
    }
}

fn states(r: &mut Reg) -> Vec<Ev> {
    r.events()
        .into_iter()
        .filter(|e| matches!(e, Ev::State(_)))
        .collect()
}

fn responses(r: &mut Reg) -> Vec<u16> {
    r.events()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Response(c, _) => Some(c),
            _ => None,
        })
        .collect()
}

/// Every backoff the library scheduled was at most `max` seconds (retry_max).
fn assert_backoff_within(events: &[Ev], max: f64) {
    let delays: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Ev::RetryScheduled(d, _) => Some(*d),
            _ => None,
        })
        .collect();
    assert!(!delays.is_empty(), "a backoff retry: {events:?}");
    assert!(
        delays.iter().all(|d| (0.0..=max).contains(d)),
        "backoff delays {delays:?} within retry_max {max} s"
    );
}

fn has_retry(r: &mut Reg) -> bool {
    r.events()
        .iter()
        .any(|e| matches!(e, Ev::RetryScheduled(..) | Ev::RetryStarted(..)))
}

/// Expires value a REGISTER asked for: (Contact `expires` param, Expires header).
fn asked_expires(m: &Msg) -> (Option<u32>, Option<u32>) {
    let contact = m.header("Contact").and_then(|c| {
        c.rsplit(';').find_map(|p| {
            p.trim()
                .strip_prefix("expires=")
                .and_then(|v| v.trim().parse().ok())
        })
    });
    let header = m.header("Expires").and_then(|v| v.parse().ok());
    (contact, header)
}

fn auth_nonce(m: &Msg, header: &str) -> Option<String> {
    let v = m.header(header)?;
    let i = v.find("nonce=\"")? + 7;
    Some(v[i..].split('"').next()?.to_owned())
}

// ----- scenarios ------------------------------------------------------------------

#[test]
fn challenge_401_then_200() {
    let sipp = Sipp::start("auth_401", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![401, 200]);
    assert_eq!(states(&mut r), vec![Ev::State(SIPREG_STATE_REGISTERED)]);
    assert_eq!(r.contacts().len(), 1, "{:?}", r.contacts());
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0].header("Authorization"), None);
    assert_eq!(
        auth_nonce(regs[1], "Authorization").as_deref(),
        Some("nonce401a")
    );
    assert_eq!(
        regs[0].header("Call-ID"),
        regs[1].header("Call-ID"),
        "one Call-ID for the registerer"
    );
    assert_eq!(
        regs[1].cseq(),
        regs[0].cseq() + 1,
        "CSeq increments for the credentialed retry"
    );
}

#[test]
fn challenge_407_then_200() {
    let sipp = Sipp::start("auth_407", false, 1);
    let uri = sipp.registrar();
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![407, 200]);
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[1].header("Authorization"), None);
    let pa = regs[1]
        .header("Proxy-Authorization")
        .expect("Proxy-Authorization");
    assert!(pa.contains("username=\"alice\""), "{pa}");
    assert!(
        pa.contains("qop=auth") && pa.contains("nc=00000001"),
        "{pa}"
    );
    assert!(
        pa.contains(&format!("uri=\"{}\"", uri)),
        "digest-uri is the Request-URI: {pa}"
    );
}

/// Both challenges come with a nonce the library has not answered yet; with
/// stale=true or without, one credentialed attempt per nonce reaches 200.
fn renewed_nonce(scenario: &str, first: &str, second: &str) {
    let sipp = Sipp::start(scenario, false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![401, 401, 200]);
    assert_eq!(
        states(&mut r),
        vec![Ev::State(SIPREG_STATE_REGISTERED)],
        "no Unregistered on the way"
    );
    let regs = out.register_transactions();
    let nonces: Vec<Option<String>> = regs
        .iter()
        .map(|m| auth_nonce(m, "Authorization"))
        .collect();
    assert_eq!(nonces, vec![None, Some(first.into()), Some(second.into())]);
    for m in &regs[1..] {
        let a = m.header("Authorization").unwrap();
        assert!(a.contains("nc=00000001"), "a new nonce starts at nc=1: {a}");
    }
}

#[test]
fn stale_nonce_is_answered_with_the_new_nonce() {
    renewed_nonce("stale_nonce", "staleA", "staleB");
}

#[test]
fn new_nonce_without_stale_gets_one_more_try() {
    renewed_nonce("new_nonce", "freshA", "freshB");
}

/// A wrong password: the library stops after one attempt per nonce, ends
/// Unregistered with the 401, and schedules no automatic retry.
fn wrong_password(scenario: &str, expect_registers: usize) {
    let sipp = Sipp::start(scenario, false, 1);
    let ua = Ua::new(AOR)
        .password("not-alicepw")
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg, "events: {:?}", r.events());
    assert_eq!(
        out.register_transactions().len(),
        expect_registers,
        "{}",
        out.report()
    );
    assert_eq!(r.last_response().map(|x| x.0), Some(401));
    assert!(
        !has_retry(&mut r),
        "no automatic retry for rejected credentials: {:?}",
        r.events()
    );
    assert_eq!(r.next_retry(), None);
    assert_eq!(r.state(), SIPREG_STATE_UNREGISTERED);
    assert_eq!(states(&mut r), vec![Ev::State(SIPREG_STATE_UNREGISTERED)]);
}

#[test]
fn wrong_password_new_nonces_stop_after_three_401s() {
    wrong_password("wrong_password", 3);
}

#[test]
fn wrong_password_same_nonce_stops_after_one_credentialed_attempt() {
    wrong_password("wrong_password_same_nonce", 2);
}

#[test]
fn interval_too_brief_uses_min_expires_for_retry_and_refreshes() {
    let sipp = Sipp::start("min_expires_423", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 1));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    // SIPp exits once it has sent the refresh's 200: the library may read
    // it a moment later.
    assert!(r.wait_200s(2, WAIT), "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![423, 200, 200]);
    assert_eq!(
        states(&mut r),
        vec![Ev::State(SIPREG_STATE_REGISTERED)],
        "the refresh changes no state"
    );
    let asked: Vec<_> = out
        .register_transactions()
        .iter()
        .map(|m| asked_expires(m))
        .collect();
    assert_eq!(
        asked,
        vec![(Some(1), Some(1)), (Some(3), Some(3)), (Some(3), Some(3))]
    );
}

#[test]
fn interval_too_brief_without_min_expires_stops() {
    let sipp = Sipp::start("min_expires_missing", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 1));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![423]);
    assert!(!has_retry(&mut r), "{:?}", r.events());
    assert_eq!(r.next_retry(), None);
    assert_eq!(out.register_transactions().len(), 1);
    let (kind, detail) = r.failure();
    assert_eq!(kind, SIPREG_FAILURE_INTERVAL_TOO_BRIEF, "{detail}");
    assert_eq!(detail, "423 Interval Too Brief without a Min-Expires");
    assert_eq!(r.failure_response().0, 423);
}

#[test]
fn shorter_grant_is_refreshed_at_the_granted_interval() {
    shorter_grant("short_grant");
}

#[test]
fn shorter_grant_in_expires_header_is_refreshed_at_the_granted_interval() {
    shorter_grant("short_grant_header");
}

fn shorter_grant(scenario: &str) {
    let sipp = Sipp::start(scenario, false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    // SIPp exits once it has sent the refresh's 200: the library may read
    // it a moment later.
    assert!(r.wait_200s(2, WAIT), "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![200, 200]);
    // When the refresh comes (half of the 2 s grant) is the core's rule:
    // core_scenarios::shorter_grant_than_asked_is_refreshed_at_half_of_it.
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 2);
    assert_eq!(
        regs[1].header("Call-ID"),
        regs[0].header("Call-ID"),
        "the refresh keeps the Call-ID"
    );
    assert_eq!(regs[1].cseq(), regs[0].cseq() + 1);
    assert_eq!(
        asked_expires(regs[1]),
        (Some(60), Some(60)),
        "the refresh asks for the configured expiry again"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
}

#[test]
fn ok_without_contact_is_unregistered_and_register_is_accepted_again() {
    let sipp = Sipp::start("no_contact_200", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    if unreg {
        assert_eq!(r.last_response().map(|x| x.0), Some(200));
        assert!(r.contacts().is_empty(), "{:?}", r.contacts());
        assert_eq!(r.next_retry(), None, "no automatic retry after a 2xx");
        assert!(
            !has_retry(&mut r),
            "no automatic retry after a 2xx: {:?}",
            r.events()
        );
        assert_eq!(
            r.register(),
            SIPREG_OK,
            "not stuck: a new register() is accepted"
        );
    }
    let ok = unreg && r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg && ok, "events: {:?}", r.events());
    assert_eq!(
        states(&mut r),
        vec![
            Ev::State(SIPREG_STATE_UNREGISTERED),
            Ev::State(SIPREG_STATE_REGISTERED)
        ]
    );
    assert_eq!(r.contacts().len(), 1);
}

#[test]
fn interval_too_brief_loop_stops() {
    let sipp = Sipp::start("min_expires_loop", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 1));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![423, 423]);
    assert!(!has_retry(&mut r), "{:?}", r.events());
    assert_eq!(r.next_retry(), None);
    let (kind, detail) = r.failure();
    assert_eq!(kind, SIPREG_FAILURE_INTERVAL_TOO_BRIEF, "{detail}");
    assert!(detail.contains("Min-Expires"), "{detail}");
    assert!(
        r.events()
            .contains(&Ev::Failed(SIPREG_FAILURE_INTERVAL_TOO_BRIEF, 423, detail)),
        "{:?}",
        r.events()
    );
}

/// One final failure status from SIPp: the scenario's own status line, or a copy
/// with `status reason` in its place.
fn final_failure(scenario: &str, status: u16, reason: &str) -> (Sipp, Ua, Reg) {
    let default = if scenario == "permanent_failure" {
        "SIP/2.0 403 Forbidden"
    } else {
        "SIP/2.0 500 Server Internal Error"
    };
    let line = format!("SIP/2.0 {status} {reason}");
    let sipp = Sipp::start_edited(free_port(), scenario, false, 1, &[], Some((default, &line)));
    let ua = ua(false);
    let r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    (sipp, ua, r)
}

fn permanent(status: u16, reason: &str) {
    let (sipp, _ua, mut r) = final_failure("permanent_failure", status, reason);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg, "events: {:?}", r.events());
    assert_eq!(r.last_response(), Some((status, reason.to_owned())));
    assert!(
        !has_retry(&mut r),
        "{status} is permanent: {:?}",
        r.events()
    );
    assert_eq!(r.next_retry(), None);
    assert_eq!(r.failure_count(), 1);
    assert_rejected(&mut r, status, reason);
}

/// The attempt failed as REJECTED with the registrar's status, told by a
/// FAILED event and kept by the accessors.
fn assert_rejected(r: &mut Reg, status: u16, reason: &str) {
    let detail = format!("the registrar answered {status} {reason}");
    assert!(
        r.events()
            .contains(&Ev::Failed(SIPREG_FAILURE_REJECTED, status, detail.clone())),
        "{status}: {:?}",
        r.events()
    );
    if r.state() == SIPREG_STATE_UNREGISTERED {
        assert_eq!(r.failure(), (SIPREG_FAILURE_REJECTED, detail));
        assert_eq!(r.failure_response(), (status, reason.to_owned()));
    }
}

fn transient(status: u16, reason: &str) {
    let (sipp, _ua, mut r) = final_failure("transient_failure", status, reason);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let scheduled = r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)));
    let waiting = (r.next_retry(), r.failure_count(), r.retry_after());
    let failed_then = r.failure();
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg && ok, "events: {:?}", r.events());
    match scheduled {
        Some(Ev::RetryScheduled(d, 1)) => {
            assert!((0.5..=1.0).contains(&d), "{status}: backoff {d}")
        }
        other => panic!("{status}: no RetryScheduled(_, 1): {other:?}"),
    }
    assert!(
        waiting.0.is_some_and(|s| s <= 1.0),
        "{status}: next_retry {waiting:?}"
    );
    assert_eq!(
        (waiting.1, waiting.2),
        (1, None),
        "{status}: failure_count, retry_after"
    );
    assert_eq!(responses(&mut r), vec![status, 200]);
    assert_eq!(r.failure_count(), 0, "reset by the 200");
    // A real 503 (or 5xx) from the registrar is the registrar's answer, not
    // "unreachable": REJECTED with its status, until the 200 cleared it.
    assert_eq!(failed_then.0, SIPREG_FAILURE_REJECTED, "{status}");
    assert_rejected(&mut r, status, reason);
    assert_eq!(r.failure(), (SIPREG_FAILURE_NONE, String::new()));
}

#[test]
fn forbidden_403_is_permanent() {
    permanent(403, "Forbidden");
}

#[test]
fn not_found_404_is_permanent() {
    permanent(404, "Not Found");
}

#[test]
fn decline_603_is_permanent() {
    permanent(603, "Declined");
}

#[test]
fn request_timeout_408_response_is_transient() {
    transient(408, "Request Timeout");
}

#[test]
fn temporarily_unavailable_480_is_transient() {
    transient(480, "Temporarily Unavailable");
}

#[test]
fn server_error_500_is_transient() {
    transient(500, "Server Internal Error");
}

#[test]
fn bad_gateway_502_is_transient() {
    transient(502, "Bad Gateway");
}

#[test]
fn gateway_timeout_504_is_transient() {
    transient(504, "Server Time-out");
}

#[test]
fn service_unavailable_503_is_transient_and_rejected_not_unreachable() {
    transient(503, "Service Unavailable");
}

#[test]
fn busy_everywhere_600_is_transient() {
    transient(600, "Busy Everywhere");
}

const INSTANCE: &str = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

#[test]
fn many_contacts_on_one_line_with_ours_in_the_middle() {
    let sipp = Sipp::start("many_contacts", false, 1);
    let ua = ua(false);
    let o = Opts {
        instance_id: Some(INSTANCE.into()),
        reg_id: 1,
        ..opts(&sipp, 60)
    };
    let mut r = Reg::new(&ua, &o);
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    let contacts = r.contacts();
    assert_eq!(contacts.len(), 4, "{contacts:?}");
    assert_eq!(contacts[0], "sip:bob@192.0.2.10:5060");
    assert_eq!(contacts[1], "sip:carol@192.0.2.11:5062;transport=tcp");
    assert!(
        contacts[2].starts_with("sip:alice@127.0.0.1:"),
        "{contacts:?}"
    );
    assert_eq!(contacts[3], "sip:alice@127.0.0.1:9");
    let sent = out.registers()[0].header("Contact").unwrap();
    assert!(
        sent.contains(&format!(";+sip.instance=\"<urn:uuid:{INSTANCE}>\"")),
        "{sent}"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(
        responses(&mut r),
        vec![200],
        "no early refresh from a foreign binding's expires"
    );
}

#[test]
fn binding_recognised_by_instance_after_uri_rewrite() {
    let sipp = Sipp::start("instance_match", false, 1);
    let ua = ua(false);
    let o = Opts {
        instance_id: Some(INSTANCE.into()),
        reg_id: 1,
        ..opts(&sipp, 60)
    };
    let mut r = Reg::new(&ua, &o);
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    assert_eq!(
        r.contacts(),
        vec!["sip:alice@203.0.113.5:40000".to_string()]
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
}

#[test]
fn service_unavailable_with_retry_after_is_retried_after_that_delay() {
    let sipp = Sipp::start("retry_after_503", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let scheduled = r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)));
    let (retry_after, next_retry) = (r.retry_after(), r.next_retry());
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(unreg && ok, "events: {:?}", r.events());
    match scheduled {
        Some(Ev::RetryScheduled(delay, failures)) => {
            assert!((delay - 2.0).abs() < 0.01, "delay {delay}");
            assert_eq!(failures, 1);
        }
        other => panic!("no RetryScheduled: {other:?} / {:?}", r.events()),
    }
    assert_eq!(retry_after, Some(2), "retry_after() while waiting");
    let nr = next_retry.expect("next_retry() while waiting");
    assert!(nr > 0.0 && nr <= 2.0, "next_retry {nr}");
    assert!(r.events().iter().any(|e| matches!(e, Ev::RetryStarted(1))));
    assert_eq!(responses(&mut r), vec![503, 200]);
    assert_eq!(r.retry_after(), None, "cleared by the 200");
    // The retry goes out exactly Retry-After later: core_scenarios::service_unavailable_with_retry_after.
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 2, "one retry");
    assert_eq!(regs[1].header("Call-ID"), regs[0].header("Call-ID"));
}

#[test]
fn no_response_times_out_with_retransmissions_then_backoff_retry() {
    let sipp = Sipp::start("no_response", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let unreg = r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let scheduled = r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)));
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(Duration::from_secs(15));
    out.assert_passed();
    assert!(unreg && ok, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![408, 200]);
    match scheduled {
        Some(Ev::RetryScheduled(delay, 1)) => {
            assert!((0.25..=1.0).contains(&delay), "backoff {delay}")
        }
        other => panic!("no RetryScheduled(_, 1): {other:?}"),
    }
    let regs = out.registers();
    let first = regs[0].branch();
    let copies: Vec<&&Msg> = regs.iter().filter(|m| m.branch() == first).collect();
    let retrans = r.retransmissions();
    assert!(retrans > 0, "Timer E retransmitted");
    assert_eq!(
        copies.len() as u64,
        retrans + 1,
        "SIPp saw the REGISTER and every retransmission"
    );
    // Timer E doubles from T1 = 50 ms up to T2 = 400 ms until Timer F (3.2 s):
    // at most 10 copies. The instants are the core's rule:
    // core_scenarios::short_timers_retransmit_up_to_t2_and_time_out_at_64_t1.
    assert!(retrans <= 10, "retransmissions stop at Timer F: {retrans}");
    assert!(
        copies.iter().all(|m| m.raw == copies[0].raw),
        "every retransmission is the same request"
    );
    let tx = out.register_transactions();
    assert_eq!(tx.len(), 2, "one retry after the timeout");
    assert_eq!(tx[1].header("Call-ID"), tx[0].header("Call-ID"));
}

#[test]
fn unregister_challenged_is_answered_with_credentials() {
    let sipp = Sipp::start("unregister_401", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    if ok {
        assert_eq!(r.dispose(), SIPREG_OK);
    }
    let term = ok && r.wait_state(SIPREG_STATE_TERMINATED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok && term, "events: {:?}", r.events());
    assert_eq!(
        states(&mut r),
        vec![
            Ev::State(SIPREG_STATE_REGISTERED),
            Ev::State(SIPREG_STATE_UNREGISTERED),
            Ev::State(SIPREG_STATE_TERMINATED)
        ]
    );
    assert_eq!(responses(&mut r), vec![200, 401, 200]);
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 3);
    assert_eq!(asked_expires(regs[2]), (Some(0), Some(0)));
    assert_eq!(
        auth_nonce(regs[2], "Authorization").as_deref(),
        Some("unregN")
    );
}

// ----- TCP: the connection closes under a Registered registerer -------------------

/// A byte relay between the library (downstream, any number of connections in
/// turn) and SIPp (one upstream connection for the whole test). It lets the
/// test close the library's connection the way a registrar does (FIN) while
/// SIPp keeps a single socket, on which it answers the re-REGISTER as part of
/// the same scenario. (SIPp answers a call on the socket it started on, so a
/// REGISTER arriving on a second connection to SIPp itself would be answered
/// on the first, dead one.)
struct Relay {
    port: u16,
    current: std::sync::Arc<std::sync::Mutex<Option<std::net::TcpStream>>>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    fn new(upstream_port: u16) -> Relay {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = TcpStream::connect(("127.0.0.1", upstream_port)).expect("connect to sipp");
        upstream.set_nodelay(true).unwrap();
        let current: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
        let accepted = Arc::new(AtomicUsize::new(0));

        // SIPp -> whichever library connection is current.
        let mut up_read = upstream.try_clone().unwrap();
        let cur = current.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = up_read.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(d) = cur.lock().unwrap().as_mut() {
                    let _ = d.write_all(&buf[..n]);
                }
            }
        });
        // Library connections -> SIPp.
        let (cur, acc) = (current.clone(), accepted.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut down) = conn else { break };
                down.set_nodelay(true).unwrap();
                acc.fetch_add(1, Ordering::SeqCst);
                *cur.lock().unwrap() = Some(down.try_clone().unwrap());
                let mut up = upstream.try_clone().unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = down.read(&mut buf) {
                        if n == 0 || up.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Relay {
            port,
            current,
            accepted,
        }
    }

    /// Closes the library's current connection (FIN), as a registrar would.
    fn close_downstream(&self) {
        if let Some(d) = self.current.lock().unwrap().take() {
            let _ = d.shutdown(std::net::Shutdown::Both);
        }
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Port of the Via sent-by (our end of the connection) and of the first Contact.
fn via_and_contact_ports(m: &Msg) -> (u16, u16) {
    let via = m.header("Via").unwrap();
    let sent_by = via
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let vp = sent_by.rsplit(':').next().unwrap().parse().unwrap();
    let c = m.header("Contact").unwrap();
    let hostport = c.split('>').next().unwrap().split(';').next().unwrap();
    let cp = hostport.rsplit(':').next().unwrap().parse().unwrap();
    (vp, cp)
}

#[test]
fn tcp_connection_closed_by_registrar_reregisters_at_once() {
    let sipp = Sipp::start("tcp_reconnect", true, 1);
    let relay = Relay::new(sipp.port);
    let ua = ua(true);
    // A large retry_base: had the close gone through the backoff, the events
    // would show it (RetryScheduled) and the re-REGISTER would wait >= 2.5 s.
    let o = Opts {
        registrar: Some(format!("sip:127.0.0.1:{};transport=tcp", relay.port)),
        retry_base: 5.0,
        retry_max: 10.0,
        ..opts(&sipp, 60)
    };
    let mut r = Reg::new(&ua, &o);
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    relay.close_downstream();
    let again = ok
        && r.wait_for(WAIT, |e| matches!(e, Ev::Response(200, _)))
            .is_some();
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok && again, "events: {:?}", r.events());
    assert_eq!(r.failure_count(), 0, "the close was no failure");
    assert_eq!(
        relay.connections(),
        2,
        "the re-REGISTER came on a new connection"
    );
    assert_eq!(
        states(&mut r),
        vec![Ev::State(SIPREG_STATE_REGISTERED)],
        "stays Registered throughout"
    );
    assert!(!has_retry(&mut r), "no backoff involved: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![200, 200]);
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 2);
    let (v0, c0) = via_and_contact_ports(regs[0]);
    let (v1, c1) = via_and_contact_ports(regs[1]);
    assert_eq!(
        (v0, v1),
        (c0, c1),
        "Contact follows the connection's local port"
    );
    assert_ne!(v0, v1, "a new connection");
    // The binding of the dead connection is removed in the same REGISTER.
    let contacts = regs[1].all("Contact");
    assert!(
        contacts
            .iter()
            .any(|c| c.contains(&format!(":{c0};transport=tcp>;expires=0"))),
        "old contact removed: {contacts:?}"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
}

#[test]
fn tcp_registrar_exits_and_the_library_recovers_when_it_is_back() {
    let port = free_port();
    let first = Sipp::start_on(port, "tcp_register_once", true, 1, &[]);
    let ua = ua(true);
    let mut r = Reg::new(&ua, &opts(&first, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    // SIPp exits right after its 200 (-m 1): its end of the connection closes.
    let out1 = first.finish(WAIT);
    let second = Sipp::start_on(port, "tcp_register_again", true, 1, &[]);
    let back = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let after = r.events();
    // Checked before SIPp ends: its exit closes this connection too.
    let state = r.state();
    let out2 = second.finish(WAIT);
    out1.assert_passed();
    out2.assert_passed();
    assert!(ok && back, "events: {after:?}");
    assert_eq!(state, SIPREG_STATE_REGISTERED, "events: {after:?}");
    assert!(
        after.contains(&Ev::State(SIPREG_STATE_UNREGISTERED)),
        "the refused reconnect makes it Unregistered until the registrar is back: {after:?}"
    );
    assert_backoff_within(&after, 4.0);
    // In between, the reconnects were refused: each failure is a synthetic 503.
    let codes: Vec<u16> = after
        .iter()
        .filter_map(|e| match e {
            Ev::Response(c, _) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(codes.first(), Some(&200));
    assert_eq!(codes.last(), Some(&200));
    assert!(
        codes[1..codes.len() - 1].iter().all(|c| *c == 503),
        "{codes:?}"
    );
}

// ----- registrar restart (a real Kamailio, not SIPp) --------------------------------

#[test]
fn registrar_restart_is_recovered_by_the_backoff_retry() {
    use support::kamailio::{fresh_user, private};
    let k = private(false);
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0);
    // Expires 3 s, so the refresh (at 2.97 s) happens while Kamailio is down.
    let o = Opts {
        expires: 3,
        registrar: Some(k.registrar("udp")),
        retry: true,
        retry_base: 0.5,
        retry_max: 2.0,
        ..Default::default()
    };
    let mut r = Reg::new(&ua, &o);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(k.lookup(&user).len(), 1);

    k.stop();
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "refresh failed while down: {:?}",
        r.events()
    );
    assert!(
        r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)))
            .is_some(),
        "{:?}",
        r.events()
    );
    // Let a retry fail against the dead port too.
    assert!(
        r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)))
            .is_some(),
        "a second retry scheduled: {:?}",
        r.events()
    );
    assert_eq!(r.state(), SIPREG_STATE_UNREGISTERED);
    assert!(r.failure_count() >= 2, "{:?}", r.events());
    assert!(
        r.next_retry().is_some()
            || r.events()
                .last()
                .is_some_and(|e| matches!(e, Ev::RetryStarted(_)))
    );

    // restart() = stop (already stopped) + start, with an empty location table.
    k.restart();
    let back = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    assert!(back, "{:?}", r.events());
    // retry_max 2 s caps every wait (the delays are the core's:
    // core_scenarios::timeout_with_retry_policy_backs_off_per_rfc_5626).
    assert_backoff_within(&r.events(), 2.0);
    assert_eq!(r.failure_count(), 0);
    assert_eq!(
        k.lookup(&user).len(),
        1,
        "the restarted registrar holds the binding again"
    );
    let ev = r.events();
    assert!(
        ev.iter().any(|e| matches!(e, Ev::RetryStarted(_))),
        "recovered by the automatic retry: {ev:?}"
    );
}

// ----- credentials per realm and the digest downgrade guard --------------------

/// Whether a credentials header we sent (`Digest username="u", ...`) is the
/// right answer for `password`, recomputed as the realm's server would.
fn digest_verifies(header: &str, password: &str) -> bool {
    use sipreg::core::digest::{self, Algorithm, Answer, Qop};
    let get = |name: &str| {
        header
            .strip_prefix("Digest ")
            .and_then(|b| {
                b.split(", ")
                    .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            })
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let Some(alg) = Algorithm::parse(&get("algorithm")) else {
        return false;
    };
    let Ok(challenge) = digest::parse_challenge(&format!(
        "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm={}",
        get("realm"),
        get("nonce"),
        alg.as_str()
    )) else {
        return false;
    };
    let (username, uri, cnonce) = (get("username"), get("uri"), get("cnonce"));
    let nc = u32::from_str_radix(&get("nc"), 16).unwrap_or(0);
    let answer = Answer {
        username: &username,
        password: Some(password),
        method: "REGISTER",
        uri: &uri,
        body: b"",
        nc,
        cnonce: &cnonce,
    };
    digest::response_hash(&challenge, alg, Some(Qop::Auth), &answer).ok() == Some(get("response"))
}

#[test]
fn proxy_407_then_registrar_401_each_realm_with_its_own_credential() {
    use md5::{Digest as _, Md5};
    use sipreg::ffi::credentials::sipreg_secret::*;
    let sipp = Sipp::start("double_challenge", false, 1);
    let registrar_ha1: String = Md5::digest(b"r-user:registrar.sipp.test:r-pw")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // A wrong any-realm password too: each realm's own credential must win.
    let ua = Ua::new(AOR)
        .password("wrong")
        .credential(
            Some("proxy.sipp.test"),
            Some("p-user"),
            "p-pw",
            SIPREG_SECRET_PASSWORD,
        )
        .credential(
            Some("registrar.sipp.test"),
            Some("r-user"),
            &registrar_ha1,
            SIPREG_SECRET_HA1_MD5,
        )
        .timers(0.05, 0.4, 0.5)
        .shutdown_timeout(1.0);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ok, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![407, 401, 200]);
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 3);
    for (m, nc) in [(regs[1], "nc=00000001"), (regs[2], "nc=00000002")] {
        let pa = m
            .header("Proxy-Authorization")
            .expect("Proxy-Authorization");
        assert!(pa.contains(nc), "{pa}");
        assert!(digest_verifies(pa, "p-pw"), "proxy answer: {pa}");
        assert!(!digest_verifies(pa, "wrong"));
    }
    let wa = regs[2].header("Authorization").expect("Authorization");
    assert!(digest_verifies(wa, "r-pw"), "registrar answer: {wa}");
}

#[test]
fn a_realm_that_offered_sha256_is_refused_when_it_later_offers_only_md5() {
    support::logs::capture_logs();
    let sipp = Sipp::start("digest_downgrade", false, 1);
    let ua = ua(false);
    let mut r = Reg::new(&ua, &opts(&sipp, 60));
    assert_eq!(r.register(), SIPREG_OK);
    let registered = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    // The refresh (a 2 s grant) meets the MD5-only challenge.
    let ended = registered && r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT);
    let out = sipp.finish(WAIT);
    out.assert_passed();
    assert!(ended, "events: {:?}", r.events());
    assert_eq!(responses(&mut r), vec![401, 200, 401]);
    assert!(!has_retry(&mut r), "a refused downgrade is not retried");
    let regs = out.register_transactions();
    assert_eq!(regs.len(), 3, "no REGISTER answered the MD5 challenge");
    let warned = support::logs::warning_lines("downgrade.sipp.test");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("only MD5") && l.contains("SHA-256")),
        "a warning names both algorithms: {warned:?}"
    );
}
