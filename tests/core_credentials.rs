//! Credentials, the digest downgrade guard and per-request headers in the
//! sans-IO registerer, on the simulated clock: every Authorization is checked
//! by recomputing its response from the password the server would hold.
//!
//! cargo test --test core_credentials

mod support;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use sipreg::core::credentials::{Credential, SecretKind};
use sipreg::core::digest::{self, Algorithm, Answer, Qop};
use sipreg::core::failure::FailureKind;
use sipreg::core::options::{RegistererOptions, RetryPolicy, UserAgentConfig};
use sipreg::core::registerer::{Event, State};
use sipreg::Error;
use support::harness::{secs, Harness};
use support::wire::Request;

fn no_retry() -> RegistererOptions {
    RegistererOptions {
        retry: RetryPolicy {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ha1_md5(user: &str, realm: &str, pw: &str) -> String {
    hex(&Md5::digest(format!("{user}:{realm}:{pw}").as_bytes()))
}

fn ha1_sha256(user: &str, realm: &str, pw: &str) -> String {
    hex(&Sha256::digest(format!("{user}:{realm}:{pw}").as_bytes()))
}

/// alice@example.com with no password and `creds` added.
fn harness_with(password: Option<&str>, creds: Vec<Credential>) -> Harness {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_password(password).unwrap();
    for c in creds {
        ua.add_credential(c);
    }
    Harness::new(ua, no_retry())
}

fn cred(realm: Option<&str>, user: Option<&str>, secret: &str, kind: SecretKind) -> Credential {
    Credential::new(realm, user, secret, kind).unwrap()
}

fn www(realm: &str, nonce: &str, alg: Option<&str>) -> String {
    let alg = alg.map_or(String::new(), |a| format!(", algorithm={a}"));
    format!("WWW-Authenticate: Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\"{alg}")
}

/// The parameters of a credentials header we sent (`Digest a="b", c=d`).
fn param(header: &str, name: &str) -> Option<String> {
    header
        .strip_prefix("Digest ")?
        .split(", ")
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
}

/// Whether `header` is the right answer for `password`, recomputed as a
/// registrar holding that password would.
fn verifies(header: &str, password: &str) -> bool {
    let get = |n: &str| param(header, n).unwrap_or_default();
    let alg = Algorithm::parse(&get("algorithm")).expect("algorithm sent");
    let challenge = digest::parse_challenge(&format!(
        "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm={}",
        get("realm"),
        get("nonce"),
        alg.as_str()
    ))
    .unwrap();
    let (username, uri, cnonce) = (get("username"), get("uri"), get("cnonce"));
    let nc = u32::from_str_radix(&get("nc"), 16).unwrap();
    let answer = Answer {
        username: &username,
        password: Some(password),
        method: "REGISTER",
        uri: &uri,
        body: b"",
        nc,
        cnonce: &cnonce,
    };
    digest::response_hash(&challenge, alg, Some(Qop::Auth), &answer).unwrap() == get("response")
}

fn warnings(h: &Harness) -> Vec<String> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn failure_kind(h: &Harness) -> Option<FailureKind> {
    h.reg.failure().map(|f| f.kind)
}

// ----- credentials ---------------------------------------------------------

#[test]
fn an_md5_ha1_answers_without_the_password() {
    let h1 = ha1_md5("alice", "example.com", "pw");
    let mut h = harness_with(None, vec![cred(None, None, &h1, SecretKind::Ha1Md5)]);
    h.register();
    h.reply(401, "Unauthorized", &[www("example.com", "n1", None)]);
    let auth = h
        .last()
        .header("Authorization")
        .expect("answered")
        .to_owned();
    assert!(verifies(&auth, "pw"), "{auth}");
    assert!(!verifies(&auth, "other"), "the check can fail");
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
}

#[test]
fn a_sha256_ha1_answers_sha256_and_sha256_sess() {
    for alg in ["SHA-256", "SHA-256-sess"] {
        let h1 = ha1_sha256("alice", "example.com", "pw");
        let mut h = harness_with(
            None,
            vec![cred(Some("example.com"), None, &h1, SecretKind::Ha1Sha256)],
        );
        h.register();
        h.reply(401, "Unauthorized", &[www("example.com", "n1", Some(alg))]);
        let auth = h
            .last()
            .header("Authorization")
            .expect("answered")
            .to_owned();
        assert_eq!(param(&auth, "algorithm").as_deref(), Some(alg));
        assert!(verifies(&auth, "pw"), "{alg}: {auth}");
    }
}

#[test]
fn an_ha1_for_another_algorithm_is_skipped_for_one_that_fits() {
    let sha = ha1_sha256("alice", "example.com", "pw");
    let mut h = harness_with(None, vec![cred(None, None, &sha, SecretKind::Ha1Sha256)]);
    h.register();
    h.reply(
        401,
        "Unauthorized",
        &[
            www("example.com", "m", Some("MD5")),
            www("example.com", "s", Some("SHA-256")),
        ],
    );
    let auth = h
        .last()
        .header("Authorization")
        .expect("answered")
        .to_owned();
    assert_eq!(param(&auth, "nonce").as_deref(), Some("s"));
    assert!(verifies(&auth, "pw"));

    // Only MD5 offered, only a SHA-256 HA1 held: nothing fits.
    let mut h = harness_with(None, vec![cred(None, None, &sha, SecretKind::Ha1Sha256)]);
    h.register();
    h.reply(401, "Unauthorized", &[www("example.com", "m", Some("MD5"))]);
    assert_eq!(h.requests().len(), 1, "no answer was sent");
    assert_eq!(h.states(), vec![State::Unregistered]);
    let f = h.reg.failure().expect("a failure").clone();
    assert_eq!(f.kind, FailureKind::NoCredentials);
    assert_eq!(f.status, Some(401));
    assert!(
        f.detail.contains("\"example.com\"")
            && f.detail.contains("MD5")
            && f.detail.contains("HA1 SHA-256"),
        "{f}"
    );
    assert!(!f.detail.contains(&sha), "never the secret: {f}");
}

#[test]
fn the_realms_own_credential_wins_over_a_wrong_any_realm_password() {
    let mut h = harness_with(
        Some("wrong"),
        vec![cred(
            Some("example.com"),
            Some("alice-r"),
            "right",
            SecretKind::Password,
        )],
    );
    h.register();
    h.challenge("n1", false);
    let auth = h.last().header("Authorization").unwrap().to_owned();
    assert_eq!(param(&auth, "username").as_deref(), Some("alice-r"));
    assert!(
        verifies(&auth, "right") && !verifies(&auth, "wrong"),
        "{auth}"
    );

    // Another realm's credential does not apply: the any-realm password does.
    let mut h = harness_with(
        Some("wrong"),
        vec![cred(Some("elsewhere"), None, "right", SecretKind::Password)],
    );
    h.register();
    h.challenge("n1", false);
    let auth = h.last().header("Authorization").unwrap().to_owned();
    assert_eq!(param(&auth, "username").as_deref(), Some("alice"));
    assert!(verifies(&auth, "wrong"), "{auth}");
}

#[test]
fn a_proxy_and_a_registrar_realm_each_get_their_own_credential() {
    let mut h = harness_with(
        None,
        vec![
            cred(
                Some("proxy.example"),
                Some("p-user"),
                "p-pw",
                SecretKind::Password,
            ),
            cred(
                Some("example.com"),
                Some("r-user"),
                "r-pw",
                SecretKind::Password,
            ),
        ],
    );
    h.register();
    h.reply(
        407,
        "Proxy Authentication Required",
        &["Proxy-Authenticate: Digest realm=\"proxy.example\", nonce=\"p1\", qop=\"auth\"".into()],
    );
    let first = h.last().clone();
    let proxy = first.header("Proxy-Authorization").unwrap().to_owned();
    assert!(first.header("Authorization").is_none());
    assert_eq!(param(&proxy, "username").as_deref(), Some("p-user"));
    assert!(verifies(&proxy, "p-pw"));
    h.challenge("r1", false);
    let second = h.last().clone();
    let proxy = second.header("Proxy-Authorization").unwrap().to_owned();
    let reg = second.header("Authorization").unwrap().to_owned();
    assert_eq!(param(&proxy, "realm").as_deref(), Some("proxy.example"));
    assert_eq!(param(&proxy, "nc").as_deref(), Some("00000002"));
    assert!(verifies(&proxy, "p-pw"));
    assert_eq!(param(&reg, "username").as_deref(), Some("r-user"));
    assert!(verifies(&reg, "r-pw"), "{reg}");
    h.ok(600);
    assert_eq!(h.states(), vec![State::Registered]);
    assert_eq!(h.reg.failure(), None);
}

#[test]
fn a_changed_credential_list_is_followed_at_the_next_admission() {
    let mut h = harness_with(Some("old"), vec![]);
    h.register();
    h.challenge("n1", false);
    h.ok(60);
    let mut ua = h.reg.settings().ua.as_ref().clone();
    ua.add_credential(cred(Some("example.com"), None, "new", SecretKind::Password));
    h.reg.follow_credentials(&ua);
    // The refresh waits for a new challenge rather than answer the old one.
    let refresh = h.run_until_sent(secs(100)).unwrap();
    assert!(refresh.req.header("Authorization").is_none());
    h.challenge("n2", false);
    let auth = h.last().header("Authorization").unwrap().to_owned();
    assert!(verifies(&auth, "new"), "{auth}");
}

// ----- digest downgrade ---------------------------------------------------

/// Registered after a SHA-256 challenge for example.com; returns the harness.
fn registered_with_sha256(allow: bool) -> Harness {
    let mut ua = UserAgentConfig::new("sip:alice@example.com").unwrap();
    ua.set_password(Some("pw")).unwrap();
    ua.digest_downgrade = allow;
    let mut h = Harness::new(ua, no_retry());
    h.register();
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "s1", Some("SHA-256"))],
    );
    h.ok(60);
    assert_eq!(h.states(), vec![State::Registered]);
    h
}

#[test]
fn a_later_md5_only_challenge_is_refused_as_a_downgrade() {
    let mut h = registered_with_sha256(false);
    let refresh = h.run_until_sent(secs(100)).unwrap();
    assert!(refresh
        .req
        .header("Authorization")
        .unwrap()
        .contains("SHA-256"));
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "m1", Some("MD5"))],
    );
    assert_eq!(h.requests().len(), 3, "no MD5 answer was sent");
    assert_eq!(
        h.states(),
        vec![State::Registered, State::Unregistered],
        "the attempt ended"
    );
    let f = h.reg.failure().expect("a failure").clone();
    assert_eq!(f.kind, FailureKind::AuthDowngrade);
    assert_eq!(f.status, Some(401));
    let w = warnings(&h);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("MD5") && w[0].contains("SHA-256") && w[0].contains("example.com"));
    // A response offering SHA-256 again is fine: the next register() answers it.
    h.reg.register(h.now).unwrap();
    h.drain();
    h.reply(
        401,
        "Unauthorized",
        &[
            www("example.com", "m2", Some("MD5")),
            www("example.com", "s2", Some("SHA-256")),
        ],
    );
    let auth = h.last().header("Authorization").unwrap().to_owned();
    assert_eq!(param(&auth, "algorithm").as_deref(), Some("SHA-256"));
}

#[test]
fn a_downgrade_inside_one_attempt_is_refused_too() {
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "s1", Some("SHA-256"))],
    );
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "m1", Some("MD5"))],
    );
    assert_eq!(h.requests().len(), 2);
    assert_eq!(failure_kind(&h), Some(FailureKind::AuthDowngrade));
    // Another realm is not compared with this one.
    let mut h = Harness::alice(no_retry());
    h.register();
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "s1", Some("SHA-256"))],
    );
    h.reply(
        407,
        "Proxy Authentication Required",
        &[
            "Proxy-Authenticate: Digest realm=\"proxy\", nonce=\"p\", qop=\"auth\", algorithm=MD5"
                .into(),
        ],
    );
    assert_eq!(h.requests().len(), 3, "the proxy's MD5 was answered");
}

#[test]
fn digest_downgrade_allows_it_with_a_warning() {
    let mut h = registered_with_sha256(true);
    h.run_until_sent(secs(100)).unwrap();
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "m1", Some("MD5"))],
    );
    let auth = h.last().header("Authorization").unwrap().to_owned();
    assert_eq!(param(&auth, "algorithm").as_deref(), Some("MD5"));
    assert!(verifies(&auth, "pw"));
    h.ok(60);
    assert_eq!(h.reg.state(), State::Registered);
    assert_eq!(h.reg.failure(), None);
    let w = warnings(&h);
    assert!(
        w.len() == 1 && w[0].contains("MD5") && w[0].contains("SHA-256"),
        "{w:?}"
    );
}

#[test]
fn the_strongest_algorithm_is_remembered_across_a_credentials_change() {
    let mut h = registered_with_sha256(false);
    h.reg
        .set_credentials(None, Some(sipreg::core::options::Secret::new("pw2")));
    h.run_until_sent(secs(100)).unwrap();
    h.reply(
        401,
        "Unauthorized",
        &[www("example.com", "m1", Some("MD5"))],
    );
    assert_eq!(failure_kind(&h), Some(FailureKind::AuthDowngrade));
}

// ----- per-request headers --------------------------------------------------

#[test]
fn request_headers_ride_on_the_request_and_its_retry_only() {
    let mut h = Harness::alice(no_retry());
    h.reg
        .register_with_headers(h.now, &["X-Once: 1", "  X-Trace: abc  "])
        .unwrap();
    h.drain();
    let has = |r: &Request| r.header("X-Once") == Some("1") && r.header("X-Trace") == Some("abc");
    assert!(has(h.last()), "the first REGISTER");
    h.challenge("n1", false);
    assert!(has(h.last()), "its authenticated retry");
    h.reply(423, "Interval Too Brief", &["Min-Expires: 900".into()]);
    assert!(has(h.last()), "its 423 resend (same request)");
    h.ok(900);
    let refresh = h.run_until_sent(secs(1000)).unwrap();
    assert!(refresh.req.header("X-Once").is_none(), "not the refresh");
    h.ok(900);
    h.reg.register(h.now).unwrap();
    h.drain();
    assert!(
        h.last().header("X-Once").is_none(),
        "not a later register()"
    );
    h.ok(900);
    h.reg
        .unregister_with_headers(h.now, true, &["X-Bye: now"])
        .unwrap();
    h.drain();
    assert_eq!(h.last().header("X-Bye"), Some("now"));
    assert_eq!(h.last().header("Contact"), Some("*"));
    h.challenge("n2", false);
    assert_eq!(
        h.last().header("X-Bye"),
        Some("now"),
        "the unregister's retry"
    );
}

#[test]
fn bad_request_headers_are_refused_and_nothing_is_sent() {
    let mut h = Harness::alice(no_retry());
    for bad in [
        "no colon",
        "Contact: <sip:x@y>",
        "Authorization: Digest x",
        "X-Empty:  ",
        "X-Inject: a\r\nVia: b",
        "Bad Name: v",
    ] {
        match h.reg.register_with_headers(h.now, &[bad]) {
            Err(Error::InvalidArgument(m)) => assert!(!m.is_empty()),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    h.drain();
    assert!(h.sent.is_empty());
    assert_eq!(h.reg.state(), State::Initial);
    h.register();
    assert!(matches!(
        h.reg.register_with_headers(h.now, &["X-A: 1"]),
        Err(Error::RequestPending)
    ));
}
