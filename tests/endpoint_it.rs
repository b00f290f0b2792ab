//! Sockets belong to the endpoint, not to user agents: user agents with the
//! same transport, family and local address share one UDP socket and one
//! stream connection per target, each AOR stays its own binding at the
//! registrar, a private socket is an account's own, and a network change on
//! one user agent re-binds everyone on the shared socket.

mod support;

use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, shared};

const WAIT: Duration = support::wait::PATIENCE;

/// The tests share the process's sockets: one at a time, so a network change
/// in one does not move the other's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn registered(transport: &str, private: bool) -> (String, Ua, Reg) {
    let (user, pw) = fresh_user();
    let (ua, r) = registered_as(&user, &pw, transport, private);
    (user, ua, r)
}

/// A user agent for `user` and its registerer, Registered.
fn registered_as(user: &str, pw: &str, transport: &str, private: bool) -> (Ua, Reg) {
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(pw)
        .transport(transport)
        .private_socket(private);
    let mut r = Reg::new(
        &ua,
        &Opts {
            expires: 120,
            registrar: Some(shared().registrar(transport)),
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    (ua, r)
}

#[test]
fn user_agents_share_sockets_and_stay_separate_bindings() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for transport in ["udp", "tcp"] {
        let (u1, _ua1, mut r1) = registered(transport, false);
        let (u2, _ua2, mut r2) = registered(transport, false);
        assert_eq!(r1.flow(), r2.flow(), "{transport}: one shared socket");
        let b1 = shared().lookup(&u1);
        let b2 = shared().lookup(&u2);
        assert_eq!((b1.len(), b2.len()), (1, 1), "{transport}: {b1:?} {b2:?}");
        assert_eq!(
            b1[0].0.replace(&u1, ""),
            b2[0].0.replace(&u2, ""),
            "same contact address"
        );
        // A private socket is an account's own source port.
        let (u3, _ua3, mut r3) = registered(transport, true);
        assert_ne!(r3.flow(), r1.flow(), "{transport}: private socket");
        assert_eq!(shared().lookup(&u3).len(), 1);
        for r in [&mut r1, &mut r2, &mut r3] {
            assert_eq!(r.dispose(), SIPREG_OK);
            assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
        }
        for u in [&u1, &u2, &u3] {
            assert!(
                shared().lookup(u).is_empty(),
                "{transport}: {u} unregistered"
            );
        }
    }
}

#[test]
fn user_agents_of_the_same_aor_get_their_own_sockets() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (user, pw) = fresh_user();
    let (_ua1, mut r1) = registered_as(&user, &pw, "udp", false);
    let (_ua2, mut r2) = registered_as(&user, &pw, "udp", false);
    assert_ne!(r1.flow(), r2.flow(), "one contact each, so two bindings");
    assert_eq!(shared().lookup(&user).len(), 2);
    for r in [&mut r1, &mut r2] {
        assert_eq!(r.dispose(), SIPREG_OK);
        assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    }
    assert!(shared().lookup(&user).is_empty());
}

#[test]
fn network_change_rebinds_every_user_agent_on_the_shared_socket() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (u1, ua1, mut r1) = registered("udp", false);
    let (u2, _ua2, mut r2) = registered("udp", false);
    let flow = r1.flow();
    assert_eq!(flow, r2.flow());
    ua1.network_changed();
    r1.wait_200s(2, WAIT);
    r2.wait_200s(2, WAIT);
    assert!(r1.count_200() >= 2, "{:?}", r1.events());
    assert!(
        r2.count_200() >= 2,
        "the other user agent moved too: {:?}",
        r2.events()
    );
    assert_ne!(r1.flow(), flow, "a new socket");
    assert_eq!(r1.flow(), r2.flow(), "still shared");
    for u in [&u1, &u2] {
        let b = shared().lookup(u);
        assert_eq!(b.len(), 1, "old contact removed: {b:?}");
    }
    for r in [&mut r1, &mut r2] {
        assert_eq!(r.dispose(), SIPREG_OK);
        assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    }
}
