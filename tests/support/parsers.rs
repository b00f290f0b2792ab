//! Every response-side parser on the same untrusted bytes, and the properties
//! that must hold whatever the input.
//!
//! Shared by `tests/core_props.rs` (proptest, the fuzz seeds) and the
//! `parse_response` fuzz target (which includes this file by path), so it
//! depends on `sipreg` and `std` only. Every violation is a panic.

use sipreg::core::contact_list::ContactList;
use sipreg::core::digest::{choose_challenge, parse_challenge};
use sipreg::core::message::{classify, frame, Frame, Kind, NameAddr, Response};
use sipreg::core::routing::RoutingFacts;
use sipreg::core::stun;
use sipreg::core::uri::Uri;

/// Runs every parser entry point on `buf` and checks what must hold.
pub fn exercise(buf: &[u8]) {
    let _ = classify(buf);
    for max in [0, 32, 64, 4096, usize::MAX] {
        match frame(buf, max) {
            Frame::Message(n) => {
                assert!(n <= buf.len() && n <= max, "frame {n} > {max}");
                // A framed response is complete and parses on its own.
                if classify(buf) == Kind::Response {
                    let r = Response::parse(&buf[..n]);
                    assert!(r.is_ok(), "framed but unparsable: {r:?}");
                }
            }
            Frame::KeepAlive(n) => assert!(n >= 1 && n <= buf.len()),
            Frame::TooLarge(Some(n)) => assert!(n > max, "too large {n} <= {max}"),
            // The header section alone did not fit.
            Frame::TooLarge(None) => assert!(buf.len() > max, "header over {max}"),
            Frame::Incomplete | Frame::Invalid => {}
        }
    }

    if let Ok(r) = Response::parse(buf) {
        response(&r);
        assert_eq!(classify(buf), Kind::Response);
    }

    // STUN shares the UDP socket: a decoded answer is always a STUN message.
    if stun::parse_binding_success(buf).is_some() {
        assert!(stun::is_stun(buf));
    }

    let text = String::from_utf8_lossy(buf);
    if let Ok(u) = Uri::parse(&text) {
        round_trips(&u);
    }
    let _ = parse_challenge(&text);
    let _ = text.parse::<NameAddr>();
}

fn response(r: &Response) {
    assert!((100..=699).contains(&r.status));
    let _ = (r.header("Via"), r.header("v"));
    let _ = (r.headers("contact").count(), r.headers("m").count());
    let _ = (r.call_id(), r.cseq(), r.to_tag());
    let _ = (r.expires(), r.min_expires(), r.retry_after());
    let top = r.top_via();
    if let Some(via) = &top {
        let _ = (via.branch(), via.param("rport"), via.param("received"));
    }
    // The in-place readers of the per-response path agree with a parsed Via.
    if let Some(b) = r.top_branch() {
        assert_eq!(top.as_ref().and_then(|v| v.branch()), Some(b), "top_branch");
    }
    assert_eq!(
        r.top_via_public_address(),
        top.as_ref().and_then(|v| v.public_address()),
        "top_via_public_address"
    );
    let _ = (r.flow_timer(), r.lists_option("require", "outbound"));
    let contacts = r.contacts();
    // The in-place read of the contacts (the registration path; `contacts`
    // is its owned form) finds the parameters the parsed lists hold, and
    // writes each URI as the parsed URI prints.
    let refs = r.contact_refs();
    if let (Ok(refs), Ok(contacts)) = (&refs, &contacts) {
        for (c, parsed) in refs.iter().zip(contacts) {
            assert_eq!(c.expires(), parsed.expires(), "expires");
            for name in ["+sip.instance", "reg-id", "pub-gruu"] {
                assert_eq!(
                    c.param(name).map(|v| v.map(|v| v.into_owned())),
                    parsed.param(name).map(|v| v.map(str::to_owned)),
                    "{name}"
                );
            }
        }
        let texts = ContactList::of_uris(refs.iter().map(|c| &c.uri)).map(|l| l.to_vec());
        let parsed: Vec<String> = contacts.iter().map(|c| c.uri.to_string()).collect();
        assert_eq!(texts.unwrap_or_default(), parsed, "contact texts");
    }
    let ours = refs.as_ref().ok().and_then(|c| c.first());
    let _ = RoutingFacts::from_response(r, ours);
    if let Ok(contacts) = &contacts {
        for a in contacts {
            let _ = (a.expires(), a.param("+sip.instance"), a.param("reg-id"));
            round_trips(&a.uri);
            // RFC 3261 19.1.4 equivalence is symmetric.
            for b in contacts {
                assert_eq!(a.uri.equivalent(&b.uri), b.uri.equivalent(&a.uri));
            }
        }
    }
    for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
        let offered: Vec<_> = r
            .headers(name)
            .filter_map(|v| parse_challenge(v).ok())
            .collect();
        let _ = choose_challenge(&offered);
    }
}

/// A parsed URI is equivalent to itself and prints to text that parses back
/// to the same URI.
fn round_trips(u: &Uri) {
    assert!(u.equivalent(u), "{u} not equivalent to itself");
    let printed = u.to_string();
    assert_eq!(Uri::parse(&printed).as_ref(), Ok(u), "{printed}");
}
