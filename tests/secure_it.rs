//! TLS, WebSocket and secure WebSocket against a real Kamailio on loopback
//! (kamctl.sh "secure": certificates made at test time), through the C ABI.
//!
//! - TLS register / refresh / unregister with MD5 and SHA-256 digest, IPv4 and
//!   IPv6, SNI by name, `sips:` URIs; Kamailio's usrloc holds `transport=tls`.
//! - Wrong CA, wrong host name, an expired certificate, a plain-TCP port spoken to as TLS, a refused
//!   WebSocket upgrade: each ends Unregistered with a 503 and a log line that
//!   names the cause; `tls_verify=false` then succeeds against the wrong host.
//! - A failed handshake is retried by the backoff, not in a loop.
//! - WS and WSS: register, refresh, unregister; the server closing the socket
//!   re-registers at once on a new connection; the server's PINGs are answered.
//! - Registerers of one user agent share one connection; dispose closes it.

mod support;

use std::time::Duration;

use sipreg::ffi::sipreg_result::*;
use support::capi::*;
use support::kamailio::{fresh_user, secure, Secure};
use support::logs::{self, capture_logs, log_lines};
use support::nat_peers::{Seen, TcpWatch};
use support::wait;

const WAIT: Duration = wait::PATIENCE;

fn wait_log(containing: &str, also: &str) -> Vec<String> {
    logs::wait_log(containing, also, WAIT)
}

fn ua(user: &str, pw: &str, transport: &str, s: &Secure) -> Ua {
    Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(pw)
        .transport(transport)
        .tls_ca_file(&s.cert("ca.pem"))
}

fn opts(registrar: String, expires: u32) -> Opts {
    Opts {
        expires,
        registrar: Some(registrar),
        refresh_frequency: 90,
        retry: false,
        ..Default::default()
    }
}

/// Recovers by itself (backoff from 0.2 s) from a connection a loaded peer dropped.
fn retrying(o: Opts) -> Opts {
    Opts {
        retry: true,
        retry_base: 0.2,
        retry_max: 1.0,
        ..o
    }
}

/// Register, check Kamailio's binding, refresh once, unregister, check it is gone.
fn lifecycle(s: &Secure, transport: &str, registrar: String, user: &str, ua: Ua) {
    let mut r = Reg::new(&ua, &opts(registrar, 4));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{transport}: registered: {:?}",
        r.events()
    );
    assert!(
        r.events()
            .contains(&Ev::Response(401, "Unauthorized".into())),
        "{transport}: the digest challenge was answered"
    );
    assert!(
        r.flow().starts_with(&format!("{transport}:")),
        "flow {}",
        r.flow()
    );
    let bindings = s.k.lookup(user);
    assert_eq!(bindings.len(), 1, "{transport}: one binding: {bindings:?}");
    assert!(
        bindings[0].0.contains(&format!("transport={transport}")),
        "{transport}: usrloc holds the transport: {bindings:?}"
    );
    let flow = r.flow();
    let before = r.count_200();
    assert!(r.wait_200s(before + 1, WAIT), "{transport}: refreshed");
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(
        r.flow(),
        flow,
        "{transport}: the refresh used the same connection"
    );
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{transport}: unregistered"
    );
    assert!(s.k.lookup(user).is_empty(), "{transport}: binding removed");
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn tls_register_refresh_unregister_md5_ipv4() {
    let s = secure();
    let (user, pw) = fresh_user();
    let registrar = format!("sips:127.0.0.1:{}", s.tls_port);
    capture_logs();
    // Private: its own connection, so its "up" line comes after the capture started.
    let u = ua(&user, &pw, "tls", s).private_socket(true);
    lifecycle(s, "tls", registrar, &user, u);
    let up = wait_log(&format!("127.0.0.1:{}", s.tls_port), "up (TLSv1.3)");
    assert!(!up.is_empty(), "TLS 1.3 is negotiated where offered");
}

#[test]
fn tls_register_refresh_unregister_sha256() {
    let s = Secure::start(true);
    let (user, pw) = fresh_user();
    let registrar = format!("sip:127.0.0.1:{};transport=tls", s.tls_port);
    lifecycle(&s, "tls", registrar, &user, ua(&user, &pw, "tls", &s));
}

#[test]
fn tls_over_ipv6() {
    let s = secure();
    let (user, pw) = fresh_user();
    let registrar = format!("sips:[::1]:{}", s.tls_port);
    let u = ua(&user, &pw, "tls", s);
    let mut r = Reg::new(&u, &opts(registrar, 60));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert!(r.flow().starts_with("tls:[::1]:"), "flow {}", r.flow());
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn tls_sni_by_name_and_sips_aor() {
    let s = secure();
    let (user, pw) = fresh_user();
    // The host name is the name checked (and sent as SNI).
    let u = Ua::new(&format!("sips:{user}@127.0.0.1"))
        .password(&pw)
        .tls_ca_file(&s.cert("ca.pem"));
    let mut r = Reg::new(&u, &opts(format!("sips:localhost:{}", s.tls_port), 60));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert!(
        r.flow().starts_with("tls:"),
        "sips: implies tls: {}",
        r.flow()
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));

    // An IP registrar with the server name set: the certificate's DNS name is checked.
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "tls", s).tls_server_name("localhost");
    let mut r = Reg::new(&u, &opts(format!("sips:127.0.0.1:{}", s.tls_port), 60));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));

    // A server name the certificate does not carry fails.
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "tls", s).tls_server_name("sip.example.invalid");
    expect_failure(
        &u,
        format!("sips:127.0.0.1:{}", s.tls_port),
        "not valid for the server name",
        SIPREG_FAILURE_TLS,
    );
}

/// Registering fails with a 503 and a failure of `kind` whose detail names
/// `cause`, and a log line for this connection names it too.
fn expect_failure(u: &Ua, registrar: String, cause: &str, kind: sipreg_failure) {
    capture_logs();
    let port = registrar
        .rsplit(':')
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut r = Reg::new(u, &opts(registrar, 60));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, Duration::from_secs(15)),
        "{cause}: {:?}",
        r.events()
    );
    assert!(
        r.events()
            .contains(&Ev::Response(503, "Service Unavailable".into())),
        "{cause}: a 503 response event: {:?}",
        r.events()
    );
    // Why, without reading logs: a TLS failure whose detail names the cause.
    let (got, detail) = r.failure();
    assert_eq!(got, kind, "{cause}: {detail}");
    assert!(detail.contains(cause), "{cause}: {detail}");
    assert!(
        r.events()
            .iter()
            .any(|e| matches!(e, Ev::Failed(k, 503, d) if *k == kind && *d == detail)),
        "{cause}: a FAILED event: {:?}",
        r.events()
    );
    let lines = wait_log(&format!("127.0.0.1:{port}"), cause);
    assert!(
        !lines.is_empty(),
        "a log line names {cause:?}: {:?}",
        log_lines(&port)
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn tls_failures_say_why_and_insecure_mode_connects() {
    let s = secure();
    let (user, pw) = fresh_user();
    let wrong_ca = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .transport("tls")
        .tls_ca_file(&s.cert("other-ca.pem"));
    expect_failure(
        &wrong_ca,
        format!("sips:127.0.0.1:{}", s.tls_port),
        "not signed by a trusted CA",
        SIPREG_FAILURE_TLS,
    );

    let wrong_host = ua(&user, &pw, "tls", s);
    expect_failure(
        &wrong_host,
        format!("sips:127.0.0.1:{}", s.wrong_port),
        "not valid for the server name",
        SIPREG_FAILURE_TLS,
    );

    let expired = ua(&user, &pw, "tls", s);
    expect_failure(
        &expired,
        format!("sips:127.0.0.1:{}", s.expired_port),
        "it has expired",
        SIPREG_FAILURE_TLS,
    );

    // A plain SIP/TCP port never answers the ClientHello: the handshake times
    // out (T1 = 20 ms makes the deadline about 1.3 s).
    let plain = ua(&user, &pw, "tls", s).timers(0.02, 4.0, 5.0);
    expect_failure(
        &plain,
        format!("sips:127.0.0.1:{}", s.k.port),
        "TLS handshake timed out",
        SIPREG_FAILURE_TLS,
    );

    // Verification off: the wrongly named certificate is accepted, with a
    // warning. That port speaks TLS 1.2 only; the others negotiate 1.3.
    let insecure = ua(&user, &pw, "tls", s).tls_verify(false);
    let mut r = Reg::new(
        &insecure,
        &opts(format!("sips:127.0.0.1:{}", s.wrong_port), 60),
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    let up = wait_log(&format!("127.0.0.1:{}", s.wrong_port), "up (TLSv1.2)");
    assert!(
        !up.is_empty(),
        "TLS 1.2: {:?}",
        log_lines(&s.wrong_port.to_string())
    );
    let warnings = log_lines("tls_verify=false");
    assert!(
        warnings.iter().any(|l| l.contains(&user)),
        "a warning names the user agent: {warnings:?}"
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn a_failed_handshake_is_retried_by_the_backoff_not_in_a_loop() {
    let s = secure();
    let (user, pw) = fresh_user();
    let u = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .transport("tls")
        .tls_ca_file(&s.cert("other-ca.pem"));
    let mut r = Reg::new(
        &u,
        &Opts {
            expires: 60,
            registrar: Some(format!("sips:127.0.0.1:{}", s.tls_port)),
            retry: true,
            retry_base: 1.0,
            retry_max: 2.0,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    let failures = |r: &mut Reg| {
        r.events()
            .iter()
            .filter(|e| matches!(e, Ev::Response(503, _)))
            .count()
    };
    assert!(
        wait::until(WAIT, || failures(&mut r) >= 3),
        "three failed handshakes: {:?}",
        r.events()
    );
    // Each failure goes through the backoff: scheduled (within retry_max),
    // started, then the next attempt. A reconnect loop would show failures
    // back to back. (The delays are the core's: core_scenarios::
    // timeout_with_retry_policy_backs_off_per_rfc_5626.)
    let ev = r.events();
    let steps: Vec<&Ev> = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                Ev::Response(..) | Ev::RetryScheduled(..) | Ev::RetryStarted(_)
            )
        })
        .take_while(|e| !matches!(e, Ev::Response(c, _) if *c != 503))
        .collect();
    for (i, pair) in steps.windows(2).enumerate() {
        let ok = match pair {
            [Ev::Response(503, _), next] => {
                matches!(next, Ev::RetryScheduled(d, _) if *d > 0.0 && *d <= 2.0)
            }
            [Ev::RetryScheduled(..), next] => matches!(next, Ev::RetryStarted(_)),
            [Ev::RetryStarted(_), next] => matches!(next, Ev::Response(503, _)),
            _ => false,
        };
        assert!(ok, "step {i}: {pair:?} in {ev:?}");
    }
    assert_eq!(r.state(), SIPREG_STATE_UNREGISTERED);
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn ws_register_refresh_unregister() {
    let s = secure();
    let (user, pw) = fresh_user();
    let registrar = format!("sip:127.0.0.1:{};transport=ws", s.ws_port);
    lifecycle(s, "ws", registrar, &user, ua(&user, &pw, "ws", s));
}

#[test]
fn wss_register_refresh_unregister() {
    let s = secure();
    let (user, pw) = fresh_user();
    let registrar = format!("sip:127.0.0.1:{};transport=wss", s.wss_port);
    // Kamailio stores wss bindings with transport=ws (its quirk).
    let u = ua(&user, &pw, "wss", s);
    let mut r = Reg::new(&u, &opts(registrar, 4));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert!(r.flow().starts_with("wss:"), "flow {}", r.flow());
    assert_eq!(s.k.lookup(&user).len(), 1);
    let before = r.count_200();
    assert!(r.wait_200s(before + 1, WAIT), "wss: refreshed");
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    assert!(s.k.lookup(&user).is_empty(), "binding removed");
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn ws_upgrade_refused_names_the_http_status() {
    let s = secure();
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "ws", s).ws_path("/no-such-path");
    expect_failure(
        &u,
        format!("sip:127.0.0.1:{};transport=ws", s.ws_port),
        "HTTP 404",
        SIPREG_FAILURE_TRANSPORT,
    );
}

/// The WebSocket connection ids Kamailio lists (`ws.dump`) for our local port.
fn ws_ids(s: &Secure, local_port: &str) -> Vec<String> {
    s.kamcmd(&["ws.dump"])
        .lines()
        .filter(|l| l.contains(&format!("ws:127.0.0.1:{local_port} ->")))
        .filter_map(|l| l.trim().split(':').next().map(str::to_owned))
        .collect()
}

fn local_port(flow: &str) -> String {
    // "ws:127.0.0.1:PORT -> ..."
    flow.split(" -> ")
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap_or_default()
        .to_owned()
}

/// A registerer on a WebSocket connection of its own (closing or idling a
/// shared one would disturb the other tests): its user, user agent and itself.
fn registered_private_ws(s: &Secure) -> (String, Ua, Reg) {
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "ws", s).private_socket(true);
    capture_logs();
    let mut r = Reg::new(
        &u,
        &opts(format!("sip:127.0.0.1:{};transport=ws", s.ws_port), 120),
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    (user, u, r)
}

#[test]
fn ws_server_pings_are_answered() {
    let s = secure();
    // Through a relay that sees both directions: Kamailio PINGs an idle
    // WebSocket (keepalive_timeout 3 s; its timer comes round irregularly,
    // now and then only after 15 s or more); each of its PINGs must get our
    // PONG, on the same connection.
    let watch = TcpWatch::new(std::net::SocketAddr::from(([127, 0, 0, 1], s.ws_port)));
    let (user, pw) = fresh_user();
    let u = ua(&user, &pw, "ws", s).private_socket(true);
    // The registrar sees the relay's port: no rewrite to it.
    support::nat_capi::contact_rewrite(&u, false);
    let mut r = Reg::new(
        &u,
        &opts(
            format!("sip:127.0.0.1:{};transport=ws", watch.addr.port()),
            120,
        ),
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    let pongs = || {
        watch
            .seen()
            .iter()
            .filter(|x| x.via == 1 && x.is_ws_pong())
            .count()
    };
    let answered = wait::until(WAIT * 2, || {
        let pings = watch.server_pings_on(1);
        pings >= 1 && pongs() >= pings
    });
    assert!(
        answered,
        "{} server PINGs, {} PONGs",
        watch.server_pings_on(1),
        pongs()
    );
    assert_eq!(watch.connections(), 1, "the connection kept");
    assert!(
        !watch.seen().iter().any(Seen::is_ws_ping),
        "outbound is off: no PINGs of our own"
    );
    assert_eq!(r.count_200(), 1, "no SIP traffic meanwhile");
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn ws_server_close_reregisters_at_once() {
    let s = secure();
    let (user, _u, mut r) = registered_private_ws(s);
    let flow = r.flow();
    let port = local_port(&flow);
    // The server closes the socket: a new connection and a REGISTER at once
    // (not through the backoff: no retry, no failure, never Unregistered).
    let ids = wait::until_some(WAIT, || Some(ws_ids(s, &port)).filter(|i| !i.is_empty()))
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{ids:?}");
    s.kamcmd(&["ws.close", &ids[0]]);
    assert!(r.wait_200s(2, WAIT), "re-registered: {:?}", r.events());
    assert_eq!(r.count_200(), 2, "{:?}", r.events());
    let ev = r.events();
    assert!(
        ev.iter()
            .all(|e| matches!(e, Ev::Response(..) | Ev::State(SIPREG_STATE_REGISTERED))),
        "straight to a new REGISTER: {ev:?}"
    );
    assert_ne!(r.flow(), flow, "on a new connection");
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    let bindings = s.k.lookup(&user);
    assert_eq!(
        bindings.len(),
        1,
        "the old contact was removed in the same request: {bindings:?}"
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

#[test]
fn registerers_of_one_user_agent_share_the_connection_and_dispose_closes_it() {
    let s = secure();
    let (user, pw) = fresh_user();
    for (transport, registrar) in [
        ("tls", format!("sips:127.0.0.1:{}", s.tls_port)),
        ("wss", format!("sip:127.0.0.1:{};transport=wss", s.wss_port)),
    ] {
        // Private: other tests' user agents would share (and keep) a shared connection.
        let u = ua(&user, &pw, transport, s).private_socket(true);
        capture_logs();
        let mut a = Reg::new(
            &u,
            &Opts {
                instance_id: Some("5e0f5a3c-0c58-4a6e-9a4e-2f6b1f7a0001".into()),
                reg_id: 1,
                ..retrying(opts(registrar.clone(), 60))
            },
        );
        let mut b = Reg::new(
            &u,
            &Opts {
                instance_id: Some("5e0f5a3c-0c58-4a6e-9a4e-2f6b1f7a0002".into()),
                reg_id: 1,
                ..retrying(opts(registrar, 60))
            },
        );
        assert_eq!(a.register(), SIPREG_OK);
        assert_eq!(b.register(), SIPREG_OK);
        assert!(
            a.wait_state(SIPREG_STATE_REGISTERED, WAIT),
            "{:?}",
            a.events()
        );
        assert!(
            b.wait_state(SIPREG_STATE_REGISTERED, WAIT),
            "{:?} log: {:#?}",
            b.events(),
            log_lines("")
        );
        assert_eq!(a.flow(), b.flow(), "{transport}: one connection");
        let port = local_port(&a.flow());
        let listed = |s: &Secure| {
            s.kamcmd(&["core.tcp_list"])
                .contains(&format!("src_port: {port}"))
        };
        assert!(listed(s), "{transport}: Kamailio lists the connection");
        assert_eq!(a.dispose(), SIPREG_OK);
        assert_eq!(b.dispose(), SIPREG_OK);
        assert!(a.wait_state(SIPREG_STATE_TERMINATED, WAIT));
        assert!(b.wait_state(SIPREG_STATE_TERMINATED, WAIT));
        drop(a);
        drop(b);
        drop(u);
        assert!(
            wait::until(WAIT, || !listed(s)),
            "{transport}: the connection was closed"
        );
        assert!(
            s.k.lookup(&user).is_empty(),
            "{transport}: both unregistered"
        );
    }
}

#[test]
fn network_changed_moves_a_tls_binding_to_a_new_connection() {
    let s = secure();
    let (user, pw) = fresh_user();
    // Private: a network change re-binds everyone on a shared connection.
    let u = ua(&user, &pw, "tls", s).private_socket(true);
    let mut r = Reg::new(&u, &opts(format!("sips:127.0.0.1:{}", s.tls_port), 120));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    let flow = r.flow();
    u.network_changed();
    assert!(r.wait_200s(2, WAIT), "re-registered: {:?}", r.events());
    assert_eq!(r.count_200(), 2, "{:?}", r.events());
    assert_ne!(r.flow(), flow, "a new connection");
    let bindings = s.k.lookup(&user);
    assert_eq!(
        bindings.len(),
        1,
        "the old contact went in the same request: {bindings:?}"
    );
    assert!(
        bindings[0].0.contains(&local_port(&r.flow())),
        "{bindings:?}"
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}
