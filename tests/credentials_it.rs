//! Credentials as deployments hold them, against a real Kamailio registrar
//! through the C ABI: an HA1 instead of the password (MD5 on the shared
//! instance, SHA-256 on a second one: Kamailio's algorithm is module-wide),
//! an HA1 of the wrong algorithm skipped, and a realm's own credential
//! winning over a wrong any-realm password. Kamailio's realm is the To
//! domain, 127.0.0.1; its users are `user<N>` / `pw-user<N>`.
//!
//! source tests/kamailio/ensure.sh && cargo test --test credentials_it

mod support;

use std::time::Duration;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use sipreg::ffi::credentials::sipreg_secret::{self, *};
use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, private, shared, Kamailio};

const WAIT: Duration = Duration::from_secs(10);
const REALM: &str = "127.0.0.1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ha1(kind: sipreg_secret, user: &str, pw: &str) -> String {
    let text = format!("{user}:{REALM}:{pw}");
    match kind {
        SIPREG_SECRET_HA1_MD5 => hex(&Md5::digest(text.as_bytes())),
        SIPREG_SECRET_HA1_SHA256 => hex(&Sha256::digest(text.as_bytes())),
        other => panic!("no HA1 helper for {other:?}"),
    }
}

fn opts(k: &Kamailio) -> Opts {
    Opts {
        expires: 60,
        registrar: Some(k.registrar("udp")),
        retry: false,
        ..Default::default()
    }
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

/// Registers `ua` with `k`; true when Kamailio holds the binding.
fn registers(k: &Kamailio, ua: &Ua, user: &str) -> (bool, Vec<u16>) {
    let mut r = Reg::new(ua, &opts(k));
    assert_eq!(r.register(), SIPREG_OK);
    let ok = r.wait_for(WAIT, |e| {
        matches!(
            e,
            Ev::State(SIPREG_STATE_REGISTERED) | Ev::State(SIPREG_STATE_UNREGISTERED)
        )
    }) == Some(Ev::State(SIPREG_STATE_REGISTERED));
    let held = k.lookup(user).len() == 1;
    assert_eq!(ok, held, "state and Kamailio's bindings agree");
    (ok, responses(&mut r))
}

fn ua_of(user: &str) -> Ua {
    Ua::new(&format!("sip:{user}@127.0.0.1"))
}

#[test]
fn an_md5_ha1_registers_with_kamailio_without_the_password() {
    let k = shared();
    let (user, pw) = fresh_user();
    let h = ha1(SIPREG_SECRET_HA1_MD5, &user, &pw);
    let ua = ua_of(&user).credential(None, None, &h, SIPREG_SECRET_HA1_MD5);
    let (ok, resp) = registers(k, &ua, &user);
    assert!(ok, "{resp:?}");
    assert_eq!(resp, vec![401, 200]);

    // The check can fail: the HA1 of another password is refused by Kamailio.
    let (user, _) = fresh_user();
    let wrong = ha1(SIPREG_SECRET_HA1_MD5, &user, "not-the-password");
    let ua = ua_of(&user).credential(Some(REALM), None, &wrong, SIPREG_SECRET_HA1_MD5);
    let (ok, resp) = registers(k, &ua, &user);
    assert!(!ok, "{resp:?}");
}

#[test]
fn a_sha256_ha1_registers_with_the_sha256_kamailio_and_an_md5_one_is_skipped() {
    let k = private(true);
    let (user, pw) = fresh_user();
    let h = ha1(SIPREG_SECRET_HA1_SHA256, &user, &pw);
    // An MD5 HA1 of the same password is held too: SHA-256 challenges skip it.
    let md5 = ha1(SIPREG_SECRET_HA1_MD5, &user, &pw);
    let ua = ua_of(&user)
        .credential(Some(REALM), None, &md5, SIPREG_SECRET_HA1_MD5)
        .credential(None, None, &h, SIPREG_SECRET_HA1_SHA256);
    let (ok, resp) = registers(&k, &ua, &user);
    assert!(ok, "{resp:?}");

    // Only the MD5 HA1: nothing answers SHA-256, so no answer is sent.
    let (user, pw) = fresh_user();
    let md5 = ha1(SIPREG_SECRET_HA1_MD5, &user, &pw);
    let ua = ua_of(&user).credential(None, None, &md5, SIPREG_SECRET_HA1_MD5);
    let (ok, resp) = registers(&k, &ua, &user);
    assert!(!ok);
    assert_eq!(resp, vec![401], "one challenge, no answer");
}

#[test]
fn the_realms_own_password_wins_over_a_wrong_any_realm_one() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_of(&user).password("wrong").credential(
        Some(REALM),
        Some(&user),
        &pw,
        SIPREG_SECRET_PASSWORD,
    );
    let (ok, resp) = registers(k, &ua, &user);
    assert!(ok, "{resp:?}");
    assert_eq!(resp, vec![401, 200]);

    // Another realm's right password does not apply: the wrong one is used.
    let (user, pw) = fresh_user();
    let ua = ua_of(&user).password("wrong").credential(
        Some("another.realm"),
        None,
        &pw,
        SIPREG_SECRET_PASSWORD,
    );
    let (ok, resp) = registers(k, &ua, &user);
    assert!(!ok, "{resp:?}");
}

#[test]
fn a_credential_added_later_is_used_by_the_next_register() {
    let k = shared();
    let (user, pw) = fresh_user();
    let ua = ua_of(&user).password("wrong");
    let mut r = Reg::new(&ua, &opts(k));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    let ua = ua.credential(Some(REALM), None, &pw, SIPREG_SECRET_PASSWORD);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(k.lookup(&user).len(), 1);
    drop(r);
    drop(ua);
}

#[test]
fn bad_credentials_are_refused_at_the_call() {
    let (user, _) = fresh_user();
    let ua = ua_of(&user);
    let md5 = ha1(SIPREG_SECRET_HA1_MD5, &user, "pw");
    for (secret, kind) in [
        (&md5[..31], SIPREG_SECRET_HA1_MD5),
        (md5.as_str(), SIPREG_SECRET_HA1_SHA256),
        ("not hex at all, not hex at all!!", SIPREG_SECRET_HA1_MD5),
        ("pw\r\nX: y", SIPREG_SECRET_PASSWORD),
    ] {
        assert_eq!(
            ua.try_credential(None, None, Some(secret), kind),
            SIPREG_ERR_INVALID_ARGUMENT,
            "{secret:?}"
        );
        assert!(
            !last_error().contains(secret),
            "the secret is not echoed: {}",
            last_error()
        );
    }
    assert_eq!(
        ua.try_credential(None, Some(""), Some("pw"), SIPREG_SECRET_PASSWORD),
        SIPREG_ERR_INVALID_ARGUMENT
    );
    // A NULL secret removes the credential of that realm, user and kind.
    assert_eq!(
        ua.try_credential(Some(REALM), None, None, SIPREG_SECRET_PASSWORD),
        SIPREG_OK
    );
}
