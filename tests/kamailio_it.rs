//! Integration tests against a real Kamailio registrar on loopback, through the C ABI.

mod support;

use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, private, shared};

const WAIT: Duration = support::wait::PATIENCE;

/// Waits for `n` more 200s (refreshes) than there are now.
fn wait_refreshes(r: &mut Reg, n: usize) -> bool {
    let want = r.count_200() + n;
    r.wait_200s(want, WAIT)
}

fn ua_for(user: &str, pw: &str, transport: &str) -> Ua {
    Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(pw)
        .transport(transport)
}

fn opts(transport: &str, expires: u32) -> Opts {
    Opts {
        expires,
        registrar: Some(shared().registrar(transport)),
        retry: false,
        ..Default::default()
    }
}

/// Register, see Kamailio hold the binding, refresh, unregister, see it gone.
fn lifecycle(transport: &str) {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_for(&user, &pw, transport);
    let mut r = Reg::new(
        &ua,
        &Opts {
            refresh_frequency: 90,
            ..opts(transport, 5)
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "events: {:?}",
        r.events()
    );
    let ev = r.events();
    assert!(
        ev.contains(&Ev::Response(401, "Unauthorized".into())),
        "digest challenge answered: {ev:?}"
    );
    let contacts = r.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let bindings = k.lookup(&user);
    assert_eq!(
        bindings.len(),
        1,
        "kamailio holds one binding: {bindings:?}"
    );
    assert!(
        bindings[0].0.starts_with(&format!("sip:{user}@127.0.0.1:")),
        "{bindings:?}"
    );
    assert!(bindings[0].1 <= 5);
    if transport == "tcp" {
        assert!(bindings[0].0.contains("transport=tcp"), "{bindings:?}");
    }

    // The automatic refresh of the 5 s grant: a 200 without a state change,
    // the binding renewed (when it is due: core_scenarios::tiny_grant_refreshes_at_half).
    assert!(
        wait_refreshes(&mut r, 1),
        "a refresh was accepted: {:?}",
        r.events()
    );
    let ev = r.events();
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(
        ev.iter()
            .filter(|e| **e == Ev::State(SIPREG_STATE_REGISTERED))
            .count(),
        1,
        "refresh emits no state change"
    );
    assert_eq!(
        k.lookup(&user).len(),
        1,
        "the refresh renewed the one binding"
    );

    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    assert!(k.lookup(&user).is_empty(), "binding removed");
    assert!(r.contacts().is_empty());
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn udp_register_refresh_unregister() {
    lifecycle("udp");
}

#[test]
fn tcp_register_refresh_unregister() {
    lifecycle("tcp");
}

#[test]
fn unregister_all_removes_every_binding_of_the_aor() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua1 = ua_for(&user, &pw, "udp");
    let ua2 = ua_for(&user, &pw, "tcp");
    let mut r1 = Reg::new(&ua1, &opts("udp", 300));
    let mut r2 = Reg::new(&ua2, &opts("tcp", 300));
    // One after the other, so r2's 2xx is sure to list r1's binding too.
    r1.register();
    assert!(r1.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    r2.register();
    assert!(r2.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    assert_eq!(k.lookup(&user).len(), 2);
    assert_eq!(r2.contacts().len(), 2, "the 2xx lists both bindings");
    assert_eq!(r1.unregister(true), SIPREG_OK);
    assert!(r1.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    assert!(k.lookup(&user).is_empty(), "Contact: * removed both");
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_for(&user, &pw, "udp");
    // Min-Expires is 2 s: refresh at half of it so a loaded machine keeps up.
    let mut r = Reg::new(
        &ua,
        &Opts {
            refresh_frequency: 50,
            ..opts("udp", 1)
        },
    );
    r.register();
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert!(r.events().iter().any(|e| matches!(e, Ev::Response(423, _))));
    let b = k.lookup(&user);
    assert_eq!(b.len(), 1);
    assert!(b[0].1 <= 2, "registered with Min-Expires 2: {b:?}");
    // Refreshes (asking Min-Expires again) keep it alive past the first 2 s grant.
    assert!(wait_refreshes(&mut r, 2), "refreshes: {:?}", r.events());
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(k.lookup(&user).len(), 1);
    assert!(r
        .events()
        .iter()
        .all(|e| !matches!(e, Ev::State(SIPREG_STATE_UNREGISTERED))));
}

#[test]
fn wrong_password_ends_unregistered_without_a_storm() {
    let k = shared();
    let (user, _) = fresh_user();
    let ua = ua_for(&user, "not-the-password", "udp");
    let mut r = Reg::new(
        &ua,
        &Opts {
            retry: true,
            ..opts("udp", 60)
        },
    );
    r.register();
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    let (code, _) = r.last_response().unwrap();
    assert!(code == 401 || code == 403, "{code}");
    assert!(
        !r.events()
            .iter()
            .any(|e| matches!(e, Ev::RetryScheduled(..))),
        "{:?}",
        r.events()
    );
    let sent = ua.stats().sent;
    assert!(
        sent <= 3,
        "at most 3 REGISTERs for a wrong password, sent {sent}"
    );
    assert_eq!(
        r.next_retry(),
        None,
        "no automatic retry for rejected credentials"
    );
    assert!(k.lookup(&user).is_empty());
}

#[test]
fn dispose_while_registered_unregisters_then_terminates() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_for(&user, &pw, "tcp");
    let mut r = Reg::new(&ua, &opts("tcp", 300));
    r.register();
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    let states: Vec<Ev> = r
        .events()
        .into_iter()
        .filter(|e| matches!(e, Ev::State(_)))
        .collect();
    assert_eq!(
        states,
        vec![
            Ev::State(SIPREG_STATE_REGISTERED),
            Ev::State(SIPREG_STATE_UNREGISTERED),
            Ev::State(SIPREG_STATE_TERMINATED)
        ]
    );
    assert!(k.lookup(&user).is_empty());
    assert_eq!(r.register(), SIPREG_ERR_TERMINATED);
    assert_eq!(r.dispose(), SIPREG_ERR_TERMINATED);
}

#[test]
fn request_pending_while_in_flight() {
    // A registrar that never answers keeps the REGISTER in flight until Timer F,
    // so the checks below cannot race with a fast reply.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let ua = Ua::new("sip:alice@127.0.0.1").timers(0.02, 0.08, 0.1);
    let o = Opts {
        registrar: Some(format!("sip:127.0.0.1:{port}")),
        retry: false,
        ..Default::default()
    };
    let mut r = Reg::new(&ua, &o);
    assert_eq!(r.register(), SIPREG_OK);
    assert_eq!(r.register(), SIPREG_ERR_REQUEST_PENDING);
    assert_eq!(r.unregister(false), SIPREG_ERR_REQUEST_PENDING);
    assert_eq!(r.unregister(true), SIPREG_ERR_REQUEST_PENDING);
    assert!(
        r.wait_for(WAIT, |e| matches!(e, Ev::Response(408, _)))
            .is_some(),
        "Timer F = 64*T1 = 1.28 s"
    );
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    assert!(
        r.retransmissions() > 0,
        "Timer E resent the request over UDP"
    );
    assert_eq!(
        r.register(),
        SIPREG_OK,
        "accepted again once the request ended"
    );
    drop(silent);
}

#[test]
fn user_agent_free_disposes_registered_registerers() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_for(&user, &pw, "udp");
    let mut r = Reg::new(&ua, &opts("udp", 300));
    r.register();
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    // How long the free may wait (the shutdown timeout) is the runtime's rule.
    drop(ua);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    assert!(
        k.lookup(&user).is_empty(),
        "the user agent's free un-REGISTERed"
    );
    assert_eq!(r.register(), SIPREG_ERR_TERMINATED);
}

#[test]
fn sha256_digest_against_kamailio() {
    let k = private(true);
    let (user, pw) = fresh_user();
    let ua = ua_for(&user, &pw, "udp");
    let mut r = Reg::new(
        &ua,
        &Opts {
            registrar: Some(k.registrar("udp")),
            retry: false,
            expires: 60,
            ..Default::default()
        },
    );
    r.register();
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(k.lookup(&user).len(), 1);
}
