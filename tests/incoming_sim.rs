//! Requests reaching our contacts, on the simulated clock and network: the
//! registrar's OPTIONS pings answered at once, routing by contact user,
//! GRUU and outbound flow, 404 / 405 / 400 / 416, the application's
//! listener with its answers and retransmissions, the answer budgets per
//! source, the contact users of user agents sharing a socket, and the
//! application's own messages on the registered flow.

mod support;

use std::net::SocketAddr;

use sipreg::core::endpoint::answer_limit::{SOURCE_BURST, SOURCE_RATE, TRUSTED_BURST};
use sipreg::core::endpoint::{FlowId, TransmitKind};
use sipreg::core::message::{Reply, Request};
use sipreg::core::options::{RegistererOptions, Transport, UserAgentConfig};
use sipreg::core::registerer::State;
use support::sim::{ms, secs, Behaviour, Sim};

const REGISTRAR: &str = "127.0.0.1:5060";

fn registrar() -> SocketAddr {
    REGISTRAR.parse().unwrap()
}

/// A request as a registrar or proxy sends it: `method` to `uri`, its Via
/// sent-by `sent_by` (with `rport` when asked), branch `branch`.
fn request(method: &str, uri: &str, sent_by: &str, branch: &str, extra: &str) -> Vec<u8> {
    let cseq_method = if method == "ACK" { "ACK" } else { method };
    format!(
        "{method} {uri} SIP/2.0\r\n\
Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:pinger@127.0.0.1>;tag=ping1\r\n\
To: <{uri}>\r\n\
Call-ID: {branch}@127.0.0.1\r\n\
CSeq: 10 {cseq_method}\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn options(uri: &str, branch: &str) -> Vec<u8> {
    request("OPTIONS", uri, REGISTRAR, branch, "")
}

/// One account for `aor` registered over UDP (or `transport`) with the
/// user agent settings `configure`; returns (sim, ua, registerer, flow, contact URI).
fn registered(
    aor: &str,
    transport: Option<&str>,
    configure: impl FnOnce(&mut UserAgentConfig),
) -> (Sim, u64, u64, FlowId, String) {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(2));
    let (ua, r) = account(
        &mut s,
        aor,
        transport,
        configure,
        RegistererOptions::default(),
    );
    let flow = s.ep.flow_of(r).expect("a flow");
    let contact = s.ep.registerer(r).unwrap().contact().unwrap();
    (s, ua, r, flow, contact)
}

fn account(
    s: &mut Sim,
    aor: &str,
    transport: Option<&str>,
    configure: impl FnOnce(&mut UserAgentConfig),
    opts: RegistererOptions,
) -> (u64, u64) {
    let mut config = UserAgentConfig::new(aor).unwrap();
    config.set_password(Some("pw")).unwrap();
    if let Some(t) = transport {
        config.transport = Transport::parse(t).unwrap();
        config.transport_chosen = true;
    }
    configure(&mut config);
    let cfg = config.clone();
    let ua = s.user_agent(aor, move |c| *c = cfg);
    let registrar = match transport {
        Some(t) => format!("sip:{REGISTRAR};transport={t}"),
        None => format!("sip:{REGISTRAR}"),
    };
    let r = s.registerer(
        ua,
        &config,
        RegistererOptions {
            registrar: Some(registrar),
            ..opts
        },
    );
    s.register(r);
    s.run(secs(1));
    assert_eq!(s.state(r), State::Registered);
    (ua, r)
}

/// Sets the user agent's settings in the endpoint (as the API does).
fn reconfigure(s: &mut Sim, ua: u64, aor: &str, f: impl FnOnce(&mut UserAgentConfig)) {
    let mut c = UserAgentConfig::new(aor).unwrap();
    c.set_password(Some("pw")).unwrap();
    f(&mut c);
    s.ep.set_user_agent_config(ua, std::sync::Arc::new(c));
}

#[test]
fn the_registrars_options_ping_gets_200_with_allow_at_once() {
    let (mut s, ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    assert!(contact.starts_with("sip:alice@127.0.0.1:"), "{contact}");
    let ping = options(&contact, "z9hG4bKping1");
    s.request_in(flow, registrar(), &ping);
    let a = s.answers_since(0).to_vec();
    assert_eq!(a.len(), 1, "one answer, at once (no timer ran)");
    let ok = &a[0];
    assert_eq!(
        (ok.status(), ok.kind, ok.flow),
        (200, TransmitKind::Response, flow)
    );
    assert_eq!(
        ok.dest,
        registrar(),
        "back to the Via sent-by (= the source)"
    );
    assert_eq!(ok.header("Allow").as_deref(), Some("OPTIONS"));
    assert_eq!(
        ok.header("Via").as_deref(),
        Some("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKping1")
    );
    assert_eq!(
        ok.header("Call-ID").as_deref(),
        Some("z9hG4bKping1@127.0.0.1")
    );
    assert_eq!(ok.header("CSeq").as_deref(), Some("10 OPTIONS"));
    assert_eq!(
        ok.header("From").as_deref(),
        Some("<sip:pinger@127.0.0.1>;tag=ping1")
    );
    let to = ok.header("To").unwrap();
    assert!(to.starts_with(&format!("<{contact}>;tag=")), "{to}");
    assert!(ok.header("Server").unwrap().starts_with("sipreg/"));
    // A retransmission gets the very same answer (stateless, identical).
    s.request_in(flow, registrar(), &ping);
    assert_eq!(s.answers.len(), 2);
    assert_eq!(s.answers[1].bytes, s.answers[0].bytes);
    // Nothing went to the application, and the counters say what happened.
    assert!(s.handed_up.is_empty());
    let st = &s.stats[&ua];
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(st.requests.load(Relaxed), 2);
    assert_eq!(st.answered.load(Relaxed), 2);
    assert_eq!(st.dropped.load(Relaxed), 0);
}

#[test]
fn allow_and_contact_user_shape_the_register_and_the_answers() {
    let (mut s, _ua, r, flow, contact) = registered("sip:alice@127.0.0.1", None, |c| {
        c.set_allow("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE")
            .unwrap();
        c.set_contact_user(Some("desk1")).unwrap();
    });
    let reg = &s.peers[&registrar()].requests()[0].clone();
    assert_eq!(
        reg.header("Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE")
    );
    assert!(
        reg.contact_uri().starts_with("sip:desk1@127.0.0.1:"),
        "{}",
        reg.contact_uri()
    );
    assert!(contact.starts_with("sip:desk1@"));
    assert_eq!(s.ep.registerer(r).unwrap().contact_user(), Some("desk1"));
    // Routed by the contact user, not the AOR user.
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKa"));
    s.request_in(
        flow,
        registrar(),
        &options(&contact.replace("desk1", "alice"), "z9hG4bKb"),
    );
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &contact, REGISTRAR, "z9hG4bKc", ""),
    );
    let a = s.answers_since(0);
    assert_eq!(
        a.iter().map(|x| x.status()).collect::<Vec<_>>(),
        [200, 404, 405]
    );
    assert_eq!(
        a[0].header("Allow").as_deref(),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE")
    );
    assert_eq!(
        a[2].header("Allow"),
        a[0].header("Allow"),
        "405 lists the same methods"
    );
}

#[test]
fn without_a_listener_requests_get_405_and_an_ack_nothing() {
    let (mut s, _ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    for (i, m) in ["MESSAGE", "INFO", "INVITE", "NOTIFY", "BYE", "REFER"]
        .iter()
        .enumerate()
    {
        s.request_in(
            flow,
            registrar(),
            &request(m, &contact, REGISTRAR, &format!("z9hG4bKm{i}"), ""),
        );
    }
    let statuses: Vec<u16> = s.answers.iter().map(|a| a.status()).collect();
    assert_eq!(statuses, vec![405; 6]);
    assert!(s
        .answers
        .iter()
        .all(|a| a.header("Allow").as_deref() == Some("OPTIONS")));
    s.request_in(
        flow,
        registrar(),
        &request("ACK", &contact, REGISTRAR, "z9hG4bKm2", ""),
    );
    assert_eq!(s.answers.len(), 6, "an ACK is never answered");
    // A CANCEL matches no transaction here (the INVITE was answered
    // statelessly): RFC 3261 9.2 says 481, and CANCEL is never "not allowed".
    s.request_in(
        flow,
        registrar(),
        &request("CANCEL", &contact, REGISTRAR, "z9hG4bKm2", ""),
    );
    let cancel = s.answers.last().unwrap();
    assert_eq!(s.answers.len(), 7);
    assert_eq!(cancel.status(), 481, "{}", cancel.text());
    assert_eq!(cancel.header("Allow"), None);
}

#[test]
fn an_options_that_requires_an_unknown_extension_gets_420_with_unsupported() {
    let (mut s, _ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    // RFC 3261 8.2.2.3: 420 Bad Extension, listing what is not understood.
    s.request_in(
        flow,
        registrar(),
        &request(
            "OPTIONS",
            &contact,
            REGISTRAR,
            "z9hG4bKreq1",
            "Require: 100rel\r\nRequire: foo, gruu\r\n",
        ),
    );
    let a = s.answers.last().unwrap().clone();
    assert_eq!(a.status(), 420, "{}", a.text());
    assert_eq!(
        a.header("Unsupported").as_deref(),
        Some("100rel, foo, gruu")
    );
    assert!(a.header("To").unwrap().contains(";tag="));
    // Proxy-Require is for proxies: a user agent server ignores it.
    s.request_in(
        flow,
        registrar(),
        &request(
            "OPTIONS",
            &contact,
            REGISTRAR,
            "z9hG4bKreq2",
            "Proxy-Require: foo\r\n",
        ),
    );
    assert_eq!(s.answers.last().unwrap().status(), 200);
}

#[test]
fn an_options_may_require_what_the_user_agent_supports() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(2));
    let (_ua, r) = account(
        &mut s,
        "sip:alice@127.0.0.1",
        Some("tcp"),
        |_| {},
        RegistererOptions {
            path_gruu: true,
            instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
            reg_id: Some(1),
            ..RegistererOptions::default()
        },
    );
    let flow = s.ep.flow_of(r).unwrap();
    let contact = s.ep.registerer(r).unwrap().contact().unwrap();
    s.request_in(
        flow,
        registrar(),
        &request(
            "OPTIONS",
            &contact,
            REGISTRAR,
            "z9hG4bKreq3",
            "Require: outbound,GRUU\r\n",
        ),
    );
    let a = s.answers.last().unwrap();
    assert_eq!(a.status(), 200, "{}", a.text());
    assert_eq!(a.header("Supported").as_deref(), Some("gruu, outbound"));
}

#[test]
fn a_request_for_no_known_contact_gets_404_and_malformed_ones_400_or_nothing() {
    let (mut s, ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    let host = contact.split('@').nth(1).unwrap().to_owned();
    s.request_in(
        flow,
        registrar(),
        &options(&format!("sip:mallory@{host}"), "z9hG4bK1"),
    );
    s.request_in(
        flow,
        registrar(),
        &options(&format!("sip:{host}"), "z9hG4bK2"),
    );
    assert_eq!(
        s.answers.iter().map(|a| a.status()).collect::<Vec<_>>(),
        [404, 404]
    );
    // A CSeq that is not the request's method, a non-SIP Request-URI, a body
    // shorter than announced: answerable, refused.
    let bad_cseq = String::from_utf8(request("MESSAGE", &contact, REGISTRAR, "z9hG4bK3", ""))
        .unwrap()
        .replace("10 MESSAGE", "10 INFO");
    s.request_in(flow, registrar(), bad_cseq.as_bytes());
    let tel = String::from_utf8(options(&contact, "z9hG4bK4"))
        .unwrap()
        .replacen(&contact, "tel:+15551234", 1);
    s.request_in(flow, registrar(), tel.as_bytes());
    let short = String::from_utf8(request("MESSAGE", &contact, REGISTRAR, "z9hG4bK5", ""))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: 40");
    s.request_in(flow, registrar(), short.as_bytes());
    let statuses: Vec<u16> = s.answers.iter().map(|a| a.status()).collect();
    assert_eq!(statuses, [404, 404, 400, 416, 400]);
    // Without From (nothing to answer with) or garbled: dropped, counted, no answer.
    let dropped0 = s.stats[&ua]
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    let no_from = String::from_utf8(options(&contact, "z9hG4bK6"))
        .unwrap()
        .replace("From: <sip:pinger@127.0.0.1>;tag=ping1\r\n", "");
    s.request_in(flow, registrar(), no_from.as_bytes());
    s.request_in(
        flow,
        registrar(),
        b"OPTIONS sip:alice@x SIP/2.0\r\nVia broken\r\n\r\n",
    );
    assert_eq!(s.answers.len(), 5);
    let dropped = s.stats[&ua]
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(dropped - dropped0, 2);
}

#[test]
fn a_listener_gets_requests_and_its_answer_goes_back_and_is_repeated() {
    let (mut s, ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    let msg = request(
        "MESSAGE",
        &contact,
        "127.0.0.1:5060;rport",
        "z9hG4bKmsg1",
        "Content-Type: text/plain\r\n",
    );
    s.request_in(flow, registrar(), &msg);
    assert!(
        s.answers.is_empty(),
        "the application answers, not the library"
    );
    assert_eq!(s.handed_up.len(), 1);
    let up = s.handed_up[0].clone();
    assert_eq!(
        (up.ua, up.flow, up.remote, up.method.as_str()),
        (ua, flow, registrar(), "MESSAGE")
    );
    // The transport noted the source on the top Via (rport asked for it).
    assert!(
        up.text().contains(
            "Via: SIP/2.0/UDP 127.0.0.1:5060;rport=5060;branch=z9hG4bKmsg1;received=127.0.0.1"
        ) || up.text().contains(
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKmsg1;received=127.0.0.1;rport=5060"
        ),
        "{}",
        up.text()
    );
    // A retransmission before the answer is absorbed.
    s.request_in(flow, registrar(), &msg);
    assert_eq!((s.handed_up.len(), s.answers.len()), (1, 0));
    // The answer, some time after the request (after the callback).
    s.run(ms(300));
    let reply = Reply::new(200, "", "X-App: 1", b"").unwrap();
    s.ep.respond(s.now, ua, flow, &up.bytes, &reply).unwrap();
    s.pump();
    assert_eq!(s.answers.len(), 1);
    let ok = s.answers[0].clone();
    assert_eq!((ok.status(), ok.dest), (200, registrar()));
    assert_eq!(ok.header("X-App").as_deref(), Some("1"));
    assert!(ok.header("To").unwrap().contains(";tag="));
    // Now a retransmission gets that answer again, not the application.
    s.request_in(flow, registrar(), &msg);
    assert_eq!((s.handed_up.len(), s.answers.len()), (1, 2));
    assert_eq!(s.answers[1].bytes, ok.bytes);
    // A new request (new branch) goes up.
    s.request_in(
        flow,
        registrar(),
        &request("INFO", &contact, REGISTRAR, "z9hG4bKinfo", ""),
    );
    assert_eq!(s.handed_up.len(), 2);
    // The library still answers OPTIONS itself (answer_options is on).
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKo"));
    assert_eq!(s.handed_up.len(), 2);
    assert_eq!(s.answers.last().unwrap().status(), 200);
}

#[test]
fn answer_options_off_hands_options_to_the_listener() {
    let (mut s, ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |c| {
        c.listener = true;
        c.answer_options = false;
    });
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKo1"));
    assert_eq!(s.handed_up.len(), 1);
    assert_eq!(s.handed_up[0].method, "OPTIONS");
    assert!(s.answers.is_empty());
    // Without the listener again, the library answers them (never silence).
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |c| {
        c.answer_options = false
    });
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKo2"));
    assert_eq!(s.answers.len(), 1);
    assert_eq!(s.answers[0].status(), 200);
}

#[test]
fn a_request_whose_listener_went_away_gets_405() {
    let (mut s, ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKgone", "");
    s.request_in(flow, registrar(), &msg);
    let up = s.handed_up[0].clone();
    // The shell found no sink for it: answered as without a listener.
    s.ep.unheard(s.now, ua, flow, up.remote, &up.bytes, false);
    s.pump();
    assert_eq!(s.answers.len(), 1);
    assert_eq!(s.answers[0].status(), 405);
    // Its retransmission gets the same 405.
    s.request_in(flow, registrar(), &msg);
    assert_eq!(s.answers.len(), 2);
    assert_eq!(s.answers[1].bytes, s.answers[0].bytes);
    // A listener whose dispatcher's queue is full: 503, repeated the same way.
    let other = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKbusy", "");
    s.request_in(flow, registrar(), &other);
    let up = s.handed_up.last().unwrap().clone();
    s.ep.unheard(s.now, ua, flow, up.remote, &up.bytes, true);
    s.pump();
    assert_eq!(s.answers.last().unwrap().status(), 503);
    s.request_in(flow, registrar(), &other);
    assert_eq!(s.answers.last().unwrap().status(), 503);
    assert_eq!(s.handed_up.len(), 2);
}

#[test]
fn an_untrusted_source_gets_its_budget_and_the_registrar_its_own() {
    let (mut s, ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    let attacker: SocketAddr = "127.0.0.1:6666".parse().unwrap();
    for i in 0..200 {
        let ping = request(
            "OPTIONS",
            &contact,
            "127.0.0.1:6666",
            &format!("z9hG4bKf{i}"),
            "",
        );
        s.request_in(flow, attacker, &ping);
    }
    assert_eq!(
        s.answers.len(),
        SOURCE_BURST as usize,
        "a burst, then nothing"
    );
    let dropped = s.stats[&ua]
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(dropped, 200 - SOURCE_BURST as u64);
    // The registrar is not affected by that source's budget.
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKreg"));
    assert_eq!(s.answers.len(), SOURCE_BURST as usize + 1);
    // A second later the attacker's rate's worth again.
    s.run(secs(1));
    let before = s.answers.len();
    for i in 0..100 {
        let ping = request(
            "OPTIONS",
            &contact,
            "127.0.0.1:6666",
            &format!("z9hG4bKg{i}"),
            "",
        );
        s.request_in(flow, attacker, &ping);
    }
    assert_eq!(s.answers.len() - before, SOURCE_RATE as usize);
    // The refresh of our registration still went through meanwhile.
    s.run(secs(600));
    assert_eq!(s.state(_r), State::Registered);
}

#[test]
fn the_registrar_pings_ten_thousand_contacts_sharing_one_socket() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 3600 }, ms(1));
    let n = 10_000;
    let mut contacts = Vec::new();
    let mut regs = Vec::new();
    for i in 0..n {
        let aor = format!("sip:u{i}@127.0.0.1");
        let (_, r) = s.account(&aor, &format!("sip:{REGISTRAR}"), None, 3600);
        regs.push(r);
    }
    for r in &regs {
        s.ep.register(s.now, *r, &[]);
    }
    s.run(secs(30));
    assert!(regs.iter().all(|r| s.state(*r) == State::Registered));
    let flow = s.ep.flow_of(regs[0]).unwrap();
    assert!(
        regs.iter().all(|r| s.ep.flow_of(*r) == Some(flow)),
        "one socket"
    );
    for r in &regs {
        contacts.push(s.ep.registerer(*r).unwrap().contact().unwrap());
    }
    for (i, c) in contacts.iter().enumerate() {
        s.request_in(flow, registrar(), &options(c, &format!("z9hG4bKp{i}")));
    }
    assert_eq!(s.answers.len(), n);
    assert!(s.answers.iter().all(|a| a.status() == 200));
    // Each answer went to the contact it was for.
    for (a, c) in s.answers.iter().zip(&contacts) {
        assert!(a.header("To").unwrap().starts_with(&format!("<{c}>")));
    }
    assert!((n as f64) <= TRUSTED_BURST);
}

#[test]
fn two_user_agents_with_one_user_on_one_socket_get_distinct_contacts() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(2));
    let (ua_a, ra) = account(
        &mut s,
        "sip:alice@a.example",
        None,
        |c| c.listener = true,
        RegistererOptions::default(),
    );
    let (ua_b, rb) = account(
        &mut s,
        "sip:alice@b.example",
        None,
        |c| c.listener = true,
        RegistererOptions::default(),
    );
    let (ca, cb) = (
        s.ep.registerer(ra).unwrap().contact().unwrap(),
        s.ep.registerer(rb).unwrap().contact().unwrap(),
    );
    let flow = s.ep.flow_of(ra).unwrap();
    assert_eq!(s.ep.flow_of(rb), Some(flow), "one shared socket");
    assert!(ca.starts_with("sip:alice@"), "{ca}");
    assert!(cb.starts_with("sip:alice-2@"), "{cb}");
    // The REGISTER said so too.
    let regs = s.peers[&registrar()].requests();
    assert!(regs.iter().any(|q| q.contact_uri() == cb));
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &ca, REGISTRAR, "z9hG4bKa", ""),
    );
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &cb, REGISTRAR, "z9hG4bKb", ""),
    );
    let who: Vec<u64> = s.handed_up.iter().map(|h| h.ua).collect();
    assert_eq!(who, [ua_a, ua_b]);
}

#[test]
fn a_stream_flow_answers_on_the_connection_and_routes_an_outbound_flow() {
    let mut s = Sim::new();
    s.peer(
        REGISTRAR,
        Behaviour::OkWith {
            expires: 600,
            params: String::new(),
            headers: vec!["Require: outbound".into(), "Flow-Timer: 30".into()],
        },
        ms(2),
    );
    let opts = RegistererOptions {
        instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
        reg_id: Some(1),
        ..Default::default()
    };
    let (ua, r) = account(
        &mut s,
        "sip:alice@127.0.0.1",
        Some("tcp"),
        |c| c.listener = true,
        opts,
    );
    let flow = s.ep.flow_of(r).unwrap();
    let contact = s.ep.registerer(r).unwrap().contact().unwrap();
    assert!(contact.ends_with(";transport=tcp;ob"), "{contact}");
    assert!(s.ep.registerer(r).unwrap().outbound_in_use());
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKt1"));
    assert_eq!(s.answers.len(), 1);
    let ok = &s.answers[0];
    assert_eq!((ok.status(), ok.flow, ok.dest), (200, flow, registrar()));
    assert_eq!(ok.header("Supported").as_deref(), Some("outbound"));
    // A Request-URI that names no user of ours: the outbound flow it came
    // over names the user agent (RFC 5626 5.3).
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", "sip:127.0.0.1", REGISTRAR, "z9hG4bKt2", ""),
    );
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", "sip:x@127.0.0.1", REGISTRAR, "z9hG4bKt3", ""),
    );
    assert_eq!(s.handed_up.len(), 2);
    assert!(s.handed_up.iter().all(|h| h.ua == ua && h.flow == flow));
    assert_eq!(s.answers.len(), 1);
}

#[test]
fn a_stream_without_outbound_routes_by_user_only() {
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(2));
    let (_ua, r) = account(
        &mut s,
        "sip:alice@127.0.0.1",
        Some("tcp"),
        |c| c.listener = true,
        RegistererOptions::default(),
    );
    let flow = s.ep.flow_of(r).unwrap();
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", "sip:127.0.0.1", REGISTRAR, "z9hG4bKu1", ""),
    );
    assert_eq!(s.answers.len(), 1);
    assert_eq!((s.answers[0].status(), s.answers[0].flow), (404, flow));
    assert!(s.handed_up.is_empty());
}

#[test]
fn the_application_sends_on_the_registered_flow() {
    let (mut s, ua, r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    assert_eq!(
        s.view(r).unwrap().flow_id,
        Some(flow),
        "the flow id is published"
    );
    let invite = format!(
        "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKapp1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: app1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        contact.split('@').nth(1).unwrap()
    );
    s.ep.send_message(s.now, ua, flow, invite.as_bytes())
        .unwrap();
    s.pump();
    assert_eq!(s.answers.len(), 1);
    let m = &s.answers[0];
    assert_eq!(
        (m.kind, m.flow, m.dest),
        (TransmitKind::Message, flow, registrar())
    );
    assert_eq!(m.bytes, invite.as_bytes());
    // The answer to it comes back on the flow: to the listener, not dropped.
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKapp1;rport=1\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=b9\r\nCall-ID: app1\r\n\
CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    s.request_in(flow, registrar(), ok.as_bytes());
    assert_eq!(s.handed_up.len(), 1);
    assert_eq!(s.handed_up[0].method, "MESSAGE");
    assert_eq!(s.handed_up[0].bytes, ok.as_bytes());
    let stray = ok.replace("z9hG4bKapp1", "z9hG4bKother");
    s.request_in(flow, registrar(), stray.as_bytes());
    assert_eq!(
        s.handed_up.len(),
        1,
        "a response to nothing of ours is dropped"
    );
    // A response the application wrote goes to its top Via.
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKx\r\n\
From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    s.ep.send_message(s.now, ua, flow, resp.as_bytes()).unwrap();
    s.pump();
    assert_eq!(
        s.answers[1].dest,
        "127.0.0.1:5099".parse::<SocketAddr>().unwrap()
    );
    // Refused: junk, another user agent's flow, a closed flow.
    assert!(s.ep.send_message(s.now, ua, flow, b"hello").is_err());
    assert!(s
        .ep
        .send_message(s.now, ua + 1000, flow, invite.as_bytes())
        .is_err());
    assert!(s
        .ep
        .send_message(s.now, ua, FlowId(9999), invite.as_bytes())
        .is_err());
    let reply = Reply::new(200, "", "", b"").unwrap();
    assert!(s
        .ep
        .respond(s.now, ua, FlowId(9999), invite.as_bytes(), &reply)
        .is_err());
    assert!(s
        .ep
        .respond(s.now, ua, flow, b"not a request", &reply)
        .is_err());
}

#[test]
fn the_via_notes_where_a_request_came_from_and_the_answer_goes_there() {
    let (mut s, _ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    // Sent-by says one address, the packet came from another port (a NAT).
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let ping = request("OPTIONS", &contact, "10.9.9.9:5070;rport", "z9hG4bKnat", "");
    s.request_in(flow, from, &ping);
    let ok = &s.answers[0];
    assert_eq!(ok.dest, from, "received + rport");
    let via = ok.header("Via").unwrap();
    assert!(
        via.contains(";received=127.0.0.1") && via.contains(";rport=5060"),
        "{via}"
    );
    // Without rport: to received at the sent-by port.
    let ping = request("OPTIONS", &contact, "10.9.9.9:5070", "z9hG4bKnat2", "");
    s.request_in(flow, from, &ping);
    assert_eq!(
        s.answers[1].dest,
        "127.0.0.1:5070".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn a_gruu_routes_to_its_user_agent() {
    let mut s = Sim::new();
    // A registrar handing out GRUUs (RFC 5627).
    s.peer(
        REGISTRAR,
        Behaviour::OkWith {
            expires: 600,
            params: ";pub-gruu=\"sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\";temp-gruu=\"sip:tgruu.7x9@example.com;gr\"".into(),
            headers: vec![],
        },
        ms(2),
    );
    let opts = RegistererOptions {
        instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
        path_gruu: true,
        ..Default::default()
    };
    let (ua, r) = account(
        &mut s,
        "sip:alice@127.0.0.1",
        None,
        |c| c.listener = true,
        opts,
    );
    let flow = s.ep.flow_of(r).unwrap();
    let routing = s.ep.registerer(r).unwrap().routing().clone();
    assert!(routing.temp_gruu.is_some(), "{routing:?}");
    // The public GRUU, the temporary one (its user part with `gr`), and the
    // instance URN in `gr` all name it.
    for (i, gruu) in [
        "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "sip:tgruu.7x9@example.com;gr",
        "sip:someone@127.0.0.1;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ]
    .iter()
    .enumerate()
    {
        s.request_in(
            flow,
            registrar(),
            &request("MESSAGE", gruu, REGISTRAR, &format!("z9hG4bKg1{i}"), ""),
        );
        assert_eq!(s.handed_up.len(), i + 1, "{gruu}");
        assert_eq!(s.handed_up[i].ua, ua);
    }
    s.request_in(
        flow,
        registrar(),
        &request(
            "MESSAGE",
            "sip:tgruu.other@example.com;gr",
            REGISTRAR,
            "z9hG4bKg3",
            "",
        ),
    );
    assert_eq!(s.answers.last().unwrap().status(), 404);
    let other = "sip:nobody@127.0.0.1;gr=urn:uuid:00000000-0000-0000-0000-000000000000";
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", other, REGISTRAR, "z9hG4bKg2", ""),
    );
    assert_eq!(s.answers.last().unwrap().status(), 404);
}

#[test]
fn a_freed_user_agent_gets_nothing_more() {
    let (mut s, ua, r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    // Another account keeps the shared socket open.
    let (_ub, rb) = account(
        &mut s,
        "sip:bob@127.0.0.1",
        None,
        |_| {},
        RegistererOptions::default(),
    );
    assert_eq!(s.ep.flow_of(rb), Some(flow));
    // Requests while it is being freed still go up (the shell then finds no
    // sink and answers 405: a_request_whose_listener_went_away_gets_405).
    s.ep.free_user_agent(s.now, ua);
    s.pump();
    s.run(secs(2));
    assert!(s.freed_uas.contains(&ua));
    assert!(s.removed.contains(&r));
    let before = s.handed_up.len();
    assert!(s.open_flows().contains(&flow));
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &contact, REGISTRAR, "z9hG4bKf", ""),
    );
    assert_eq!(
        s.answers.last().map(|a| a.status()),
        Some(404),
        "its contact is gone"
    );
    assert_eq!(s.handed_up.len(), before);
}

#[test]
fn the_request_reader_agrees_with_what_is_handed_up() {
    let (mut s, _ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    let body = "hello from bob";
    let msg = format!(
        "MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKr\r\n\
From: <sip:bob@127.0.0.1>;tag=b\r\nTo: <{contact}>\r\nCall-ID: r1\r\nCSeq: 2 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.request_in(flow, registrar(), msg.as_bytes());
    let up = &s.handed_up[0];
    assert_eq!(
        up.bytes,
        msg.as_bytes(),
        "nothing to note: sent-by is the source"
    );
    let req = Request::parse(&up.bytes).unwrap();
    assert_eq!(&up.bytes[req.body_range()], body.as_bytes());
    assert_eq!(req.header("content-type"), Some("text/plain"));
}

#[test]
fn an_invite_handed_up_gets_100_trying_at_once_and_its_retransmissions_too() {
    let (mut s, ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    // RFC 3261 17.2.1: the server transaction sends 100 (Trying) unless it
    // knows the TU answers within 200 ms (the library cannot know); 8.2.6.1:
    // it copies Timestamp, and a 100 has no To tag.
    let invite = request(
        "INVITE",
        &contact,
        REGISTRAR,
        "z9hG4bKinv1",
        "Timestamp: 54\r\n",
    );
    s.request_in(flow, registrar(), &invite);
    assert_eq!(s.handed_up.len(), 1);
    assert_eq!(s.answers.len(), 1, "100 Trying at once");
    let trying = s.answers[0].clone();
    assert_eq!(trying.status(), 100, "{}", trying.text());
    assert_eq!(trying.header("To"), Some(format!("<{contact}>")));
    assert_eq!(trying.header("Timestamp").as_deref(), Some("54"));
    // A retransmission before the application answers gets the 100 again
    // (17.2.1: Proceeding) and is not handed up.
    s.request_in(flow, registrar(), &invite);
    assert_eq!((s.handed_up.len(), s.answers.len()), (1, 2));
    assert_eq!(s.answers[1].bytes, trying.bytes);
    let up = s.handed_up[0].clone();
    let busy = Reply::new(486, "", "", b"").unwrap();
    s.ep.respond(s.now, ua, flow, &up.bytes, &busy).unwrap();
    s.pump();
    assert_eq!(s.answers.last().unwrap().status(), 486);
    // Its ACK is absorbed; a non-INVITE gets no 100.
    s.request_in(
        flow,
        registrar(),
        &request("ACK", &contact, REGISTRAR, "z9hG4bKinv1", ""),
    );
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &contact, REGISTRAR, "z9hG4bKm100", ""),
    );
    assert_eq!((s.handed_up.len(), s.answers.len()), (2, 3));
}

#[test]
fn a_final_answer_is_not_replaced_by_another() {
    let (mut s, ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKfin1", "");
    s.request_in(flow, registrar(), &msg);
    let up = s.handed_up[0].clone();
    let ok = Reply::new(200, "", "", b"").unwrap();
    s.ep.respond(s.now, ua, flow, &up.bytes, &ok).unwrap();
    s.pump();
    assert_eq!(s.answers.len(), 1);
    // RFC 3261 17.2.2 (17.2.1 alike): once a final response went, the
    // transaction discards any other the TU passes, a provisional one too.
    for status in [180, 486] {
        let other = Reply::new(status, "", "", b"").unwrap();
        let e = s.ep.respond(s.now, ua, flow, &up.bytes, &other);
        assert!(e.is_err(), "{status} after 200 was accepted");
    }
    s.pump();
    assert_eq!(s.answers.len(), 1, "nothing more was sent");
    // The same final again is sent (a UAS core retransmits its 2xx, 13.3.1.4).
    s.ep.respond(s.now, ua, flow, &up.bytes, &ok).unwrap();
    s.pump();
    assert_eq!(s.answers.len(), 2);
    // Retransmissions of the request still get the 200.
    s.request_in(flow, registrar(), &msg);
    assert_eq!(s.answers.last().unwrap().status(), 200);
    assert_eq!(s.answers.last().unwrap().bytes, s.answers[0].bytes);
}

#[test]
fn a_retransmission_after_the_listener_went_away_gets_the_answer_given() {
    let (mut s, ua, _r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKaway1", "");
    s.request_in(flow, registrar(), &msg);
    let up = s.handed_up[0].clone();
    let ok = Reply::new(200, "", "", b"").unwrap();
    s.ep.respond(s.now, ua, flow, &up.bytes, &ok).unwrap();
    s.pump();
    // The listener is removed; the request is retransmitted (its 200 was
    // lost). RFC 3261 17.2.2: the transaction repeats its final response,
    // not a different one (405).
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |_| {});
    s.request_in(flow, registrar(), &msg);
    assert_eq!(s.answers.len(), 2);
    assert_eq!(s.answers[1].status(), 200, "{}", s.answers[1].text());
    assert_eq!(s.answers[1].bytes, s.answers[0].bytes);
    // A new request gets 405 as usual.
    s.request_in(
        flow,
        registrar(),
        &request("MESSAGE", &contact, REGISTRAR, "z9hG4bKaway2", ""),
    );
    assert_eq!(s.answers.last().unwrap().status(), 405);
    // An INVITE that got only the library's 100 before the listener went
    // away: its retransmission gets a final answer (never 100 forever).
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |c| c.listener = true);
    let invite = request("INVITE", &contact, REGISTRAR, "z9hG4bKaway3", "");
    s.request_in(flow, registrar(), &invite);
    assert_eq!(s.answers.last().unwrap().status(), 100);
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |_| {});
    s.request_in(flow, registrar(), &invite);
    assert_eq!(s.answers.last().unwrap().status(), 405);
}

#[test]
fn settings_changed_after_registering_reach_the_answers_at_once() {
    let (mut s, ua, _r, flow, contact) = registered("sip:alice@127.0.0.1", None, |_| {});
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKs1"));
    assert_eq!(s.answers[0].header("Allow").as_deref(), Some("OPTIONS"));
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |c| {
        c.set_allow("OPTIONS, MESSAGE").unwrap();
        c.set_user_agent("phone/2").unwrap();
    });
    s.request_in(flow, registrar(), &options(&contact, "z9hG4bKs2"));
    assert_eq!(
        s.answers[1].header("Allow").as_deref(),
        Some("OPTIONS, MESSAGE")
    );
    assert_eq!(s.answers[1].header("Server").as_deref(), Some("phone/2"));
    // A listener set later gets the next MESSAGE; back to the defaults, 405 again.
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |c| c.listener = true);
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKs3", "");
    s.request_in(flow, registrar(), &msg);
    assert_eq!(s.handed_up.len(), 1);
    reconfigure(&mut s, ua, "sip:alice@127.0.0.1", |_| {});
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKs4", "");
    s.request_in(flow, registrar(), &msg);
    assert_eq!(s.answers.last().map(|a| a.status()), Some(405));
    assert_eq!(
        s.answers.last().unwrap().header("Allow").as_deref(),
        Some("OPTIONS")
    );
}

#[test]
fn a_registerer_added_later_with_gruu_reaches_the_answers_for_contacts_already_registered() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut s = Sim::new();
    s.peer(REGISTRAR, Behaviour::Ok { expires: 600 }, ms(2));
    let (ua_a, ra) = account(
        &mut s,
        "sip:alice@127.0.0.1",
        None,
        |_| {},
        RegistererOptions::default(),
    );
    let (ua_b, rb) = account(
        &mut s,
        "sip:bob@127.0.0.1",
        None,
        |_| {},
        RegistererOptions::default(),
    );
    let flow = s.ep.flow_of(ra).unwrap();
    assert_eq!(s.ep.flow_of(rb), Some(flow), "one shared socket");
    let (ca, cb) = (
        s.ep.registerer(ra).unwrap().contact().unwrap(),
        s.ep.registerer(rb).unwrap().contact().unwrap(),
    );
    let require_gruu =
        |uri: &str, branch: &str| request("OPTIONS", uri, REGISTRAR, branch, "Require: gruu\r\n");
    s.request_in(flow, registrar(), &require_gruu(&ca, "z9hG4bKc1"));
    assert_eq!(s.answers.last().unwrap().status(), 420);
    // A second registerer of alice's asks for GRUUs: her contact on the
    // shared socket supports gruu from now on, bob's does not.
    let mut config = UserAgentConfig::new("sip:alice@127.0.0.1").unwrap();
    config.set_password(Some("pw")).unwrap();
    let r2 = s.registerer(
        ua_a,
        &config,
        RegistererOptions {
            registrar: Some(format!("sip:{REGISTRAR}")),
            path_gruu: true,
            instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
            ..RegistererOptions::default()
        },
    );
    s.register(r2);
    s.run(secs(1));
    s.request_in(flow, registrar(), &require_gruu(&ca, "z9hG4bKc2"));
    let a = s.answers.last().unwrap();
    assert_eq!(a.status(), 200, "{}", a.text());
    assert_eq!(a.header("Supported").as_deref(), Some("gruu"));
    s.request_in(flow, registrar(), &require_gruu(&cb, "z9hG4bKc3"));
    assert_eq!(s.answers.last().unwrap().status(), 420);
    // Bob's settings change; alice's answers keep gruu.
    reconfigure(&mut s, ua_b, "sip:bob@127.0.0.1", |c| {
        c.set_user_agent("bob/2").unwrap();
    });
    s.request_in(flow, registrar(), &require_gruu(&ca, "z9hG4bKc4"));
    let a = s.answers.last().unwrap();
    assert_eq!(a.status(), 200, "{}", a.text());
    assert_eq!(
        a.header("Server").as_deref(),
        Some(&*format!("sipreg/{}", env!("CARGO_PKG_VERSION")))
    );
    s.request_in(flow, registrar(), &options(&cb, "z9hG4bKc5"));
    assert_eq!(
        s.answers.last().unwrap().header("Server").as_deref(),
        Some("bob/2")
    );
    // Every request counted once on its own user agent, every answer too.
    let count = |ua: u64| {
        let st = &s.stats[&ua];
        (st.requests.load(Relaxed), st.answered.load(Relaxed))
    };
    assert_eq!(count(ua_a), (3, 3));
    assert_eq!(count(ua_b), (2, 2));
}

#[test]
fn only_the_librarys_own_answers_may_wait_to_go_out_together() {
    let (mut s, ua, r, flow, contact) =
        registered("sip:alice@127.0.0.1", None, |c| c.listener = true);
    assert!(!s.ep.has_transmits());
    // Two pings: their 200s may wait for more.
    s.ep.datagram(s.now, flow, registrar(), &options(&contact, "z9hG4bKw1"));
    s.ep.datagram(s.now, flow, registrar(), &options(&contact, "z9hG4bKw2"));
    assert_eq!(s.ep.queued_transmits(), 2);
    assert!(s.ep.transmits_may_wait());
    // The application's response is not the library's: everything goes now.
    let msg = request("MESSAGE", &contact, REGISTRAR, "z9hG4bKw3", "");
    s.ep.datagram(s.now, flow, registrar(), &msg);
    let up = s.ep.poll_action();
    let Some(sipreg::core::endpoint::Action::Request { bytes, .. }) = up else {
        panic!("handed up: {up:?}");
    };
    let reply = Reply::new(200, "", "", b"").unwrap();
    s.ep.respond(s.now, ua, flow, &bytes, &reply).unwrap();
    assert!(!s.ep.transmits_may_wait());
    // Sent in order: both 200s to the pings, then the application's 200.
    let sent: Vec<_> = std::iter::from_fn(|| s.ep.poll_transmit()).collect();
    let cseqs: Vec<_> = sent
        .iter()
        .map(|t| {
            let text = String::from_utf8_lossy(&t.bytes).into_owned();
            let line = text
                .lines()
                .find(|l| l.starts_with("CSeq:"))
                .unwrap_or("")
                .to_owned();
            (text.starts_with("SIP/2.0 200"), line)
        })
        .collect();
    assert_eq!(
        cseqs,
        vec![
            (true, "CSeq: 10 OPTIONS".to_owned()),
            (true, "CSeq: 10 OPTIONS".to_owned()),
            (true, "CSeq: 10 MESSAGE".to_owned()),
        ]
    );
    assert!(s.ep.transmits_may_wait(), "nothing left");
    // A REGISTER (a refresh) does not wait either.
    s.ep.datagram(s.now, flow, registrar(), &options(&contact, "z9hG4bKw4"));
    assert!(s.ep.transmits_may_wait());
    s.ep.register(s.now, r, &[]);
    assert!(!s.ep.transmits_may_wait());
    s.pump();
}
