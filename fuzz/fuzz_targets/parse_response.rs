//! Every response-side parser on the same untrusted bytes: only panics (and
//! sanitizer findings) count as failures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipreg::core::digest::{choose_challenge, parse_challenge};
use sipreg::core::message::{classify, frame, Frame, Kind, Response};
use sipreg::core::routing::RoutingFacts;
use sipreg::core::stun;
use sipreg::core::uri::Uri;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    for max in [0, 64, 4096, usize::MAX] {
        match frame(data, max) {
            Frame::Message(n) => {
                assert!(n <= data.len() && n <= max, "frame {n} > {max}");
                // A framed response is complete and parses on its own.
                if classify(data) == Kind::Response {
                    assert!(Response::parse(&data[..n]).is_ok(), "framed but unparsable");
                }
            }
            Frame::KeepAlive(n) => assert!(n > 0 && n <= data.len()),
            Frame::Incomplete | Frame::Invalid => {}
        }
    }

    if let Ok(r) = Response::parse(data) {
        assert!((100..=699).contains(&r.status));
        assert_eq!(classify(data), Kind::Response);
        let _ = r.header("Via");
        let _ = r.header("v");
        let _ = r.headers("contact").count();
        let _ = r.headers("m").count();
        let _ = (r.call_id(), r.cseq(), r.to_tag());
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
        let _ = (r.service_routes(), r.paths());
        if let Ok(contacts) = r.contacts() {
            // RFC 3261 19.1.4 equivalence is symmetric.
            for a in contacts.iter().take(8) {
                for b in contacts.iter().take(8) {
                    assert_eq!(a.uri.equivalent(&b.uri), b.uri.equivalent(&a.uri));
                }
            }
            let _ = RoutingFacts::from_response(&r, contacts.first());
            for c in &contacts {
                let _ = (c.expires(), c.param("+sip.instance"), c.param("reg-id"));
                // A parsed URI prints to text that parses back to the same URI.
                let printed = c.uri.to_string();
                assert_eq!(Uri::parse(&printed).as_ref(), Ok(&c.uri), "{printed}");
                assert!(c.uri.equivalent(&c.uri));
            }
        }
        let _ = (r.expires(), r.min_expires(), r.retry_after());
        for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
            let offered: Vec<_> = r
                .headers(name)
                .filter_map(|v| parse_challenge(v).ok())
                .collect();
            let _ = choose_challenge(&offered);
        }
    }

    // STUN shares the UDP socket: a decoded answer is always a STUN message.
    if let Some(ok) = stun::parse_binding_success(data) {
        assert!(stun::is_stun(data));
        let _ = ok.mapped;
    }

    let text = String::from_utf8_lossy(data);
    if let Ok(u) = Uri::parse(&text) {
        let printed = u.to_string();
        assert_eq!(Uri::parse(&printed).as_ref(), Ok(&u), "{printed}");
        assert!(u.equivalent(&u));
    }
    let _ = parse_challenge(&text);
});
