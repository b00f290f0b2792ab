use super::*;
use crate::core::uri::{Host, Uri};
use std::net::Ipv6Addr;

/// Turns a readable fixture with `\n` line ends into wire format.
fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn parse(s: &str) -> Response {
    Response::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

/// A minimal response with the given extra header lines.
fn with_headers(lines: &str) -> Response {
    parse(&format!(
        "SIP/2.0 200 OK\r\n{lines}Content-Length: 0\r\n\r\n"
    ))
}

const KAMAILIO_200: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.168.1.50:5060;rport=49152;received=203.0.113.7;branch=z9hG4bK.Kx7fPq2sN
From: <sip:alice@sip.example.org>;tag=Vb3tUh1n8
To: <sip:alice@sip.example.org>;tag=a6a1c5f60faecf035a1ae5b6e96e979a-4b33
Call-ID: Xp3kq9Zt2C
CSeq: 20 REGISTER
Contact: <sip:alice@192.168.1.50:5060;transport=udp>;expires=3600;received=\"sip:203.0.113.7:49152\";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004132a3b4c>\";reg-id=1
Contact: <sip:alice@198.51.100.20:5060>;expires=1200
Server: kamailio (5.7.4 (x86_64/linux))
Content-Length: 0

";

const KAMAILIO_401: &str = "SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.168.1.50:5060;rport=49152;received=203.0.113.7;branch=z9hG4bK.Pz1rWq8aL
From: <sip:alice@sip.example.org>;tag=Vb3tUh1n8
To: <sip:alice@sip.example.org>;tag=a6a1c5f60faecf035a1ae5b6e96e979a-21f0
Call-ID: Xp3kq9Zt2C
CSeq: 19 REGISTER
WWW-Authenticate: Digest realm=\"sip.example.org\", nonce=\"ZmTQqGZk035z3a0kV8hYtxyqE0r8vV6Z\", qop=\"auth\"
Server: kamailio (5.7.4 (x86_64/linux))
Content-Length: 0

";

#[test]
fn kamailio_200_ok() {
    let r = parse(&crlf(KAMAILIO_200));
    assert_eq!((r.status, &*r.reason), (200, "OK"));
    assert_eq!(r.call_id(), Some("Xp3kq9Zt2C"));
    assert_eq!(r.cseq(), Some((20, "REGISTER")));
    assert_eq!(r.to_tag(), Some("a6a1c5f60faecf035a1ae5b6e96e979a-4b33"));
    assert_eq!(r.header("server"), Some("kamailio (5.7.4 (x86_64/linux))"));
    assert_eq!(r.expires(), None);

    let via = r.top_via().unwrap();
    assert_eq!(via.transport, "UDP");
    assert_eq!(via.host, "192.168.1.50");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.branch(), Some("z9hG4bK.Kx7fPq2sN"));
    assert_eq!(via.param("rport"), Some(Some("49152")));
    assert_eq!(via.param("received"), Some(Some("203.0.113.7")));

    let contacts = r.contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    let mine = &contacts[0];
    assert_eq!(
        mine.uri.to_string(),
        "sip:alice@192.168.1.50:5060;transport=udp"
    );
    assert_eq!(mine.expires(), Some(3600));
    assert_eq!(mine.param("received"), Some(Some("sip:203.0.113.7:49152")));
    assert_eq!(
        mine.param("+sip.instance"),
        Some(Some("<urn:uuid:00000000-0000-1000-8000-0004132a3b4c>"))
    );
    assert_eq!(mine.param("reg-id"), Some(Some("1")));
    assert_eq!(contacts[1].expires(), Some(1200));
}

#[test]
fn kamailio_401() {
    let r = parse(&crlf(KAMAILIO_401));
    assert_eq!((r.status, &*r.reason), (401, "Unauthorized"));
    assert_eq!(r.cseq(), Some((19, "REGISTER")));
    assert_eq!(r.to_tag(), Some("a6a1c5f60faecf035a1ae5b6e96e979a-21f0"));
    let auth = r.header("www-authenticate").unwrap();
    assert!(auth.starts_with("Digest realm=\"sip.example.org\""));
    assert_eq!(split_list(auth).len(), 3);
    assert_eq!(r.contacts(), Ok(Vec::new()));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK.Pz1rWq8aL"));
}

#[test]
fn compact_header_names() {
    let r = with_headers(
        "v: SIP/2.0/TCP h;branch=z9hG4bKc\r\nf: <sip:a@h>;tag=1\r\nt: <sip:a@h>;tag=2\r\n\
             i: cid\r\nm: <sip:a@h>\r\nk: path\r\nc: application/sdp\r\ne: gzip\r\ns: hi\r\n",
    );
    assert_eq!(r.top_via().unwrap().transport, "TCP");
    assert_eq!(r.header("From"), Some("<sip:a@h>;tag=1"));
    assert_eq!(r.header("f"), Some("<sip:a@h>;tag=1"));
    assert_eq!(r.to_tag(), Some("2"));
    assert_eq!(r.call_id(), Some("cid"));
    assert_eq!(r.header("I"), Some("cid"));
    assert_eq!(r.contacts().unwrap().len(), 1);
    assert_eq!(r.header("supported"), Some("path"));
    assert_eq!(r.header("Content-Type"), Some("application/sdp"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("Subject"), Some("hi"));
    assert_eq!(r.header("content-length"), Some("0"));

    let r = parse("SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
    assert_eq!(r.header("Content-Length"), Some("0"));
}

#[test]
fn mixed_case_names_and_space_before_colon() {
    let r = with_headers("cALL-iD: abc\r\nVia : SIP/2.0/UDP h\r\nCSEQ\t: 7 REGISTER\r\n");
    assert_eq!(r.call_id(), Some("abc"));
    assert_eq!(r.header("CALL-ID"), Some("abc"));
    assert_eq!(r.top_via().unwrap().host, "h");
    assert_eq!(r.cseq(), Some((7, "REGISTER")));
}

#[test]
fn folded_header_lines() {
    let r =
        with_headers("Subject: I know you're there,\r\n   pick up the phone\r\n\t and talk\r\n");
    assert_eq!(
        r.header("subject"),
        Some("I know you're there, pick up the phone and talk")
    );
    let r = with_headers("Contact:\r\n <sip:a@h>;expires=5\r\n");
    assert_eq!(r.contacts().unwrap()[0].expires(), Some(5));
    // Several folded fields, each unfolded on its own, and names kept as written.
    let r = with_headers(
        "X-Odd: one\r\n two\r\nX-Other: three\r\n\tfour\r\n five\r\nCall-ID: c\r\nX-Odd:\r\n \r\n",
    );
    assert_eq!(r.header("x-odd"), Some("one two"));
    assert_eq!(r.headers("X-ODD").collect::<Vec<_>>(), ["one two", ""]);
    assert_eq!(r.header("x-other"), Some("three four five"));
    assert_eq!(r.call_id(), Some("c"));
    let folded_length = "SIP/2.0 200 OK\r\nl:\r\n 2\r\n\r\nhi";
    assert_eq!(
        frame(folded_length.as_bytes(), 512),
        Frame::Message(folded_length.len())
    );
    assert_eq!(parse(folded_length).header("content-length"), Some("2"));
    let bad = "SIP/2.0 200 OK\r\n folded: first\r\nContent-Length: 0\r\n\r\n";
    assert!(Response::parse(bad.as_bytes()).is_err());
}

#[test]
fn lf_only_line_endings() {
    let r = parse(KAMAILIO_200);
    assert_eq!(r.status, 200);
    assert_eq!(r.contacts().unwrap().len(), 2);
    assert_eq!(r.header("content-length"), Some("0"));
    // Mixed endings too.
    let r = parse("SIP/2.0 180 Ringing\nCall-ID: x\r\nContent-Length: 0\n\r\n");
    assert_eq!(r.call_id(), Some("x"));
}

#[test]
fn contacts_across_lines_and_commas() {
    let r = with_headers(
        "Contact: <sip:a@h>;expires=3600, \"Bob, M\" <sip:b@h>;expires=60\r\n\
             m: sip:c@h;expires=30\r\n",
    );
    let c = r.contacts().unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].uri.user.as_deref(), Some("a"));
    assert_eq!(c[0].expires(), Some(3600));
    assert_eq!(c[1].display_name.as_deref(), Some("Bob, M"));
    assert_eq!(c[1].uri.user.as_deref(), Some("b"));
    assert_eq!(c[1].expires(), Some(60));
    assert_eq!(c[2].uri.user.as_deref(), Some("c"));
    assert_eq!(c[2].expires(), Some(30));
    assert_eq!(r.headers("contact").count(), 2);
    assert_eq!(
        r.headers("M").collect::<Vec<_>>(),
        [
            "<sip:a@h>;expires=3600, \"Bob, M\" <sip:b@h>;expires=60",
            "sip:c@h;expires=30"
        ]
    );
}

#[test]
fn quoted_instance_param() {
    let r = with_headers(
            "Contact: <sip:a@h;ob>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=600\r\n",
        );
    let c = &r.contacts().unwrap()[0];
    assert_eq!(
        c.param("+SIP.INSTANCE"),
        Some(Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"))
    );
    assert_eq!(c.uri.param("ob"), Some(None));
    assert_eq!(c.expires(), Some(600));
}

#[test]
fn addr_spec_contact_params_belong_to_header() {
    let c: NameAddr = "sip:a@h;expires=30".parse().unwrap();
    assert!(c.uri.params.is_empty());
    assert_eq!(c.uri.to_string(), "sip:a@h");
    assert_eq!(c.expires(), Some(30));
    assert_eq!(c.display_name, None);
}

#[test]
fn display_names() {
    let c: NameAddr = "Bob <sip:bob@h>".parse().unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Bob"));
    let c: NameAddr = "Bob  Smith<sip:bob@h>;q=0.5".parse().unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Bob  Smith"));
    assert_eq!(c.param("q"), Some(Some("0.5")));
    let c: NameAddr = r#""Bob \"the <Builder>\"" <sip:bob@h>"#.parse().unwrap();
    assert_eq!(c.display_name.as_deref(), Some(r#"Bob "the <Builder>""#));
    let c: NameAddr = "\"Zoë\"<sip:z@h>".parse().unwrap();
    assert_eq!(c.display_name.as_deref(), Some("Zoë"));
    let c: NameAddr = "\"\" <sip:bob@h>".parse().unwrap();
    assert_eq!(c.display_name, None);
    let c: NameAddr = "<sip:bob@h>".parse().unwrap();
    assert_eq!(c.display_name, None);
    for bad in [
        "Bob sip:bob@h",
        "\"Bob <sip:bob@h>",
        "<sip:bob@h",
        "Bob",
        "<tel:1>",
        "",
    ] {
        assert!(bad.parse::<NameAddr>().is_err(), "accepted {bad:?}");
    }
}

#[test]
fn ipv6_in_via_and_contact() {
    let r = with_headers(
        "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK776;rport=5060;received=2001:db8::9\r\n\
             Contact: <sip:first.last@[2001:db8::1]:5062;transport=tcp>;expires=60\r\n",
    );
    let via = r.top_via().unwrap();
    assert_eq!(via.host, "2001:db8::1");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.branch(), Some("z9hG4bK776"));
    assert_eq!(via.param("rport"), Some(Some("5060")));
    assert_eq!(via.param("received"), Some(Some("2001:db8::9")));
    let c = &r.contacts().unwrap()[0];
    assert_eq!(
        c.uri.host,
        Host::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(c.uri.port, Some(5062));
    assert_eq!(c.uri.user.as_deref(), Some("first.last"));
    assert_eq!(c.uri.transport(), Some("tcp"));
}

/// A quoted branch is the one case where `top_branch` says `None` on purpose.
fn text_has_quoted_branch(buf: &[u8], v: &str) -> bool {
    String::from_utf8_lossy(buf).contains(&format!("\"{v}"))
}

#[test]
fn top_branch_reads_the_first_via_in_place() {
    let r = with_headers(
            "v: SIP/2.0/udp 10.0.0.1:5060 ;received=1.2.3.4; BRANCH=z9hG4bKabc;rport, SIP/2.0/UDP b;branch=x\r\n\
             Via: SIP/2.0/UDP c;branch=y\r\n",
        );
    assert_eq!(r.top_branch(), Some("z9hG4bKabc"));
    assert_eq!(r.top_branch(), r.top_via().unwrap().branch());
    for bad in [
        "Via: SIP/2.0/UDP\r\n",
        "Via: SIP/3.0/UDP h;branch=a\r\n",
        "Via: SIP/2.0/UDP h:99999;branch=a\r\n",
        "Via: SIP/2.0/UDP h;branch\r\n",
        "Via: SIP/2.0/UDP h;branch=\"q\"\r\n",
        "X: y\r\n",
    ] {
        assert_eq!(with_headers(bad).top_branch(), None, "{bad}");
    }
}

#[test]
fn via_details() {
    let v: Via = "SIP / 2.0 / tls h.example.com;branch=z9hG4bK1;rport"
        .parse()
        .unwrap();
    assert_eq!(v.transport, "TLS");
    assert_eq!(v.host, "h.example.com");
    assert_eq!(v.port, None);
    assert_eq!(v.param("rport"), Some(None));
    assert_eq!(v.param("RPORT"), Some(None));
    let r = with_headers("Via: SIP/2.0/UDP a:1;branch=z9hG4bKa, SIP/2.0/UDP b:2;branch=z9hG4bKb\r\nVia: SIP/2.0/UDP c\r\n");
    assert_eq!(r.top_via().unwrap().host, "a");
    for bad in [
        "SIP/2.0/UDP",
        "SIP/2.0/UDPhost",
        "SIP/3.0/UDP h",
        "SIP/2.0 h",
        "SIP/2.0/UDP h:x",
        "SIP/2.0/UDP [::1",
    ] {
        assert!(bad.parse::<Via>().is_err(), "accepted {bad:?}");
    }
}

#[test]
fn content_length_and_body() {
    let with_body = "SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbodyTRAILING";
    assert_eq!(Response::parse(with_body.as_bytes()).unwrap().status, 200);
    let exact = "SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    assert!(Response::parse(exact.as_bytes()).is_ok());
    let short = "SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nbody";
    assert!(Response::parse(short.as_bytes()).is_err());
    let huge = "SIP/2.0 200 OK\r\nl: 99999999999999999999999999\r\n\r\n";
    assert!(Response::parse(huge.as_bytes()).is_err());
    let bad = "SIP/2.0 200 OK\r\nContent-Length: four\r\n\r\nbody";
    assert!(Response::parse(bad.as_bytes()).is_err());
    // Without Content-Length (allowed on UDP) the rest is the body.
    let none = "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\nwhatever";
    assert!(Response::parse(none.as_bytes()).is_ok());
}

#[test]
fn reason_phrases() {
    assert_eq!(&*parse("SIP/2.0 200 Alles Gut\r\n\r\n").reason, "Alles Gut");
    assert_eq!(
        &*parse("SIP/2.0 200  two  spaces \r\n\r\n").reason,
        " two  spaces "
    );
    assert_eq!(&*parse("SIP/2.0 200 \r\n\r\n").reason, "");
    assert_eq!(&*parse("SIP/2.0 200\r\n\r\n").reason, "");
    assert_eq!(parse("SIP/2.0 100 Trying\r\n\r\n").status, 100);
    assert_eq!(parse("SIP/2.0 699 Custom\r\n\r\n").status, 699);
    assert_eq!(parse("sip/2.0 486 Busy Here\r\n\r\n").status, 486);
    assert_eq!(parse("\r\n\r\nSIP/2.0 202 Accepted\r\n\r\n").status, 202);
}

#[test]
fn rejects_bad_status_lines() {
    let bad = [
        "SIP/2.0 099 Low\r\n\r\n",
        "SIP/2.0 700 High\r\n\r\n",
        "SIP/2.0 20 OK\r\n\r\n",
        "SIP/2.0 2000 OK\r\n\r\n",
        "SIP/2.0 2x0 OK\r\n\r\n",
        "SIP/1.0 200 OK\r\n\r\n",
        "SIP/2.0  200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        " SIP/2.0 200 OK\r\n\r\n",
        "SIP/2.0 200 OK\r\nNoColon\r\n\r\n",
        "SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n",
        "SIP/2.0 200 OK\r\n: x\r\n\r\n",
        "SIP/2.0 200 OK\r\nX: a\0b\r\n\r\n",
        "SIP/2.0 200 OK\r\nX: a\rb\r\n\r\n",
        "SIP/2.0 200 OK\r\n",
        "",
        "\r\n\r\n",
    ];
    for s in bad {
        assert!(Response::parse(s.as_bytes()).is_err(), "accepted {s:?}");
    }
}

#[test]
fn request_is_not_a_response() {
    let req = b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(classify(req), Kind::Request);
    assert!(Response::parse(req).is_err());
}

#[test]
fn retry_after_forms() {
    let cases = [
        ("120", Some(120)),
        ("120 (I'm in a meeting);duration=60", Some(120)),
        ("120;duration=60", Some(120)),
        ("120 ;duration=60", Some(120)),
        ("99999999999999999999", Some(u32::MAX)),
        ("soon", None),
        ("12x", None),
        ("", None),
    ];
    for (value, want) in cases {
        let r = with_headers(&format!("Retry-After: {value}\r\n"));
        assert_eq!(r.retry_after(), want, "{value:?}");
    }
    assert_eq!(with_headers("").retry_after(), None);
}

#[test]
fn expires_values() {
    assert_eq!(with_headers("Expires: 0\r\n").expires(), Some(0));
    assert_eq!(with_headers("Expires: 3600\r\n").expires(), Some(3600));
    assert_eq!(
        with_headers("Expires: 4294967295\r\n").expires(),
        Some(u32::MAX)
    );
    assert_eq!(
        with_headers("Expires: 4294967296\r\n").expires(),
        Some(u32::MAX)
    );
    assert_eq!(
        with_headers("Expires: 123456789012345678901234567890\r\n").expires(),
        Some(u32::MAX)
    );
    assert_eq!(with_headers("Expires: -1\r\n").expires(), None);
    assert_eq!(with_headers("Expires: never\r\n").expires(), None);
    assert_eq!(with_headers("Expires: 1 2\r\n").expires(), None);
    assert_eq!(with_headers("Min-Expires: 60\r\n").min_expires(), Some(60));
    assert_eq!(with_headers("").min_expires(), None);
    let c: NameAddr = "<sip:a@h>;expires=99999999999".parse().unwrap();
    assert_eq!(c.expires(), Some(u32::MAX));
    let c: NameAddr = "<sip:a@h>;expires".parse().unwrap();
    assert_eq!(c.expires(), None);
}

#[test]
fn cseq_and_to_tag_edge_cases() {
    assert_eq!(with_headers("CSeq: 1\r\n").cseq(), None);
    assert_eq!(with_headers("CSeq: x REGISTER\r\n").cseq(), None);
    assert_eq!(with_headers("CSeq: 99999999999 REGISTER\r\n").cseq(), None);
    assert_eq!(with_headers("CSeq: 1 REGISTER extra\r\n").cseq(), None);
    assert_eq!(with_headers("To: <sip:a@h>\r\n").to_tag(), None);
    assert_eq!(
        with_headers("To: sip:a@h;tag=abc\r\n").to_tag(),
        Some("abc")
    );
    assert_eq!(
        with_headers("To: \"A;tag=no\" <sip:a@h>;TAG=yes\r\n").to_tag(),
        Some("yes")
    );
    assert_eq!(with_headers("To: <sip:a@h;tag=uri>\r\n").to_tag(), None);
    assert_eq!(with_headers("").to_tag(), None);
    assert_eq!(with_headers("").call_id(), None);
    assert_eq!(with_headers("").top_via(), None);
}

#[test]
fn wildcard_and_bad_contacts_are_errors() {
    assert!(with_headers("Contact: *\r\n").contacts().is_err());
    assert!(with_headers("Contact: <sip:a@h>, <http://x>\r\n")
        .contacts()
        .is_err());
    assert!(with_headers("Contact: <sip:a@h>;expires=\"60\r\n")
        .contacts()
        .is_err());
    // Empty list elements are skipped.
    assert_eq!(
        with_headers("Contact: <sip:a@h>, ,\r\n")
            .contacts()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn split_list_respects_quotes_and_brackets() {
    assert_eq!(split_list("a, b ,c"), ["a", "b", "c"]);
    assert_eq!(
        split_list(r#""x, \"y," <sip:a@h;p=1,2>;q=1, <sip:b@h>"#),
        [r#""x, \"y," <sip:a@h;p=1,2>;q=1"#, "<sip:b@h>"]
    );
    assert_eq!(split_list(""), Vec::<&str>::new());
    assert_eq!(split_list(" , ,"), Vec::<&str>::new());
    assert_eq!(split_list("\"unterminated, x"), ["\"unterminated, x"]);
}

#[test]
fn parse_params_cases() {
    let p = parse_params(";a=b;c;d=\"q;x\" ; e = \"\\\"z\\\\\"").unwrap();
    let want = [
        ("a", Some("b")),
        ("c", None),
        ("d", Some("q;x")),
        ("e", Some("\"z\\")),
    ];
    assert_eq!(p.len(), want.len());
    for ((name, value), (wn, wv)) in p.iter().zip(want) {
        assert_eq!((name.as_str(), value.as_deref()), (wn, wv));
    }
    assert_eq!(parse_params(""), Ok(Vec::new()));
    assert_eq!(parse_params("  "), Ok(Vec::new()));
    assert_eq!(
        parse_params(";a="),
        Ok(vec![("a".to_owned(), Some(String::new()))])
    );
    for bad in [
        "a=b",
        ";",
        ";;a",
        ";a=\"open",
        ";a=b c",
        ";a=\"x\"y",
        "; =x",
        ";a b",
        ";a=b\"",
        ";a=\u{7}",
    ] {
        assert!(parse_params(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn classify_kinds() {
    assert_eq!(classify(KAMAILIO_200.as_bytes()), Kind::Response);
    assert_eq!(classify(b"\r\nSIP/2.0 200 OK\r\n"), Kind::Response);
    assert_eq!(classify(b"SIP/2.0 200"), Kind::Response);
    assert_eq!(classify(b"OPTIONS sip:a@h SIP/2.0\r\n"), Kind::Request);
    assert_eq!(classify(b"\r\n\r\n"), Kind::KeepAlive);
    assert_eq!(classify(b"\r\n"), Kind::KeepAlive);
    assert_eq!(classify(b""), Kind::Junk);
    assert_eq!(classify(b"\0\x01\x02"), Kind::Junk);
    assert_eq!(classify(b"SIP/2.0 7000 OK\r\n"), Kind::Junk);
    assert_eq!(classify(b"HTTP/1.1 200 OK\r\n"), Kind::Junk);
    assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Kind::Junk);
    assert_eq!(classify(b"REGISTER sip:x SIP/2.0 extra\r\n"), Kind::Junk);
    assert_eq!(classify(b"SIP/2.0 200 \xff\xfe\r\n"), Kind::Response);
}

#[test]
fn frame_stream() {
    let msg = crlf(KAMAILIO_200);
    let len = msg.len();
    let max = 4096;
    assert_eq!(frame(msg.as_bytes(), max), Frame::Message(len));
    let two = format!("{msg}{msg}");
    assert_eq!(frame(two.as_bytes(), max), Frame::Message(len));
    assert_eq!(frame(b"", max), Frame::Incomplete);
    assert_eq!(frame(b"SIP/2.0 2", max), Frame::Incomplete);
    assert_eq!(frame(b"\r\n\r\nSIP/2.0", max), Frame::KeepAlive(4));
    assert_eq!(frame(b"\r\n", max), Frame::KeepAlive(2));

    let body = "SIP/2.0 200 OK\r\nl: 5\r\n\r\nhello";
    assert_eq!(frame(body.as_bytes(), max), Frame::Message(body.len()));
    assert_eq!(
        frame(&body.as_bytes()[..body.len() - 1], max),
        Frame::Incomplete
    );
    let req = "NOTIFY sip:a@h SIP/2.0\r\nContent-Length: 2\r\n\r\nhiNEXT";
    assert_eq!(frame(req.as_bytes(), max), Frame::Message(req.len() - 4));
}

#[test]
fn frame_rejects_bad_streams() {
    let max = 256;
    let cases: [&[u8]; 6] = [
        b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"\x16\x03\x01\x02\x00",
        b"SIP/2.0 200 OK\r\nbad line\r\nContent-Length: 0\r\n\r\n",
    ];
    for buf in cases {
        assert_eq!(
            frame(buf, max),
            Frame::Invalid,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    // Over the limit: the size when Content-Length says it.
    let big = "SIP/2.0 200 OK\r\nContent-Length: 300\r\n\r\n";
    assert_eq!(
        frame(big.as_bytes(), max),
        Frame::TooLarge(Some(big.len() + 300))
    );
    let long_header = format!("SIP/2.0 200 OK\r\nX: {}\r\n", "a".repeat(300));
    assert_eq!(frame(long_header.as_bytes(), max), Frame::TooLarge(None));
    let ends_late = format!("{long_header}Content-Length: 0\r\n\r\n");
    assert_eq!(frame(ends_late.as_bytes(), max), Frame::TooLarge(None));
    // Exactly max_len bytes is fine.
    let exact = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        frame(exact.as_bytes(), exact.len()),
        Frame::Message(exact.len())
    );
    assert_eq!(
        frame(exact.as_bytes(), exact.len() - 1),
        Frame::TooLarge(None)
    );
}

#[test]
fn non_utf8_header_value_does_not_panic() {
    let mut buf =
        b"SIP/2.0 200 OK\r\nSubject: caf\xe9 \xff\r\nContact: \"\xc3\" <sip:a@h>\r\n".to_vec();
    buf.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let r = Response::parse(&buf).unwrap();
    assert_eq!(r.header("subject"), Some("caf\u{fffd} \u{fffd}"));
    assert_eq!(
        r.contacts().unwrap()[0].display_name.as_deref(),
        Some("\u{fffd}")
    );
    let reason = Response::parse(b"SIP/2.0 200 \xffOK\r\n\r\n").unwrap();
    assert_eq!(&*reason.reason, "\u{fffd}OK");
}

/// xorshift64*: deterministic pseudo-random bytes without dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// Runs every entry point on `buf`; only panics matter.
/// Everything the contact does with a request it received, on any bytes.
fn exercise_request(buf: &[u8]) {
    let Ok(r) = Request::parse(buf) else {
        return;
    };
    let _ = (
        r.method(),
        r.uri(),
        r.call_id(),
        r.cseq(),
        r.from_tag(),
        r.to_tag(),
    );
    let _ = (r.answerable(), r.refusal(buf.len()), r.fields().count());
    assert!(r.body_range().end <= buf.len() && r.head_range().end <= buf.len());
    if let Some(via) = r.top_via_range() {
        assert!(via.end <= buf.len());
    }
    let src: std::net::SocketAddr = "192.0.2.1:5070".parse().unwrap();
    if let Some(v) = r.top_via_text().and_then(|v| annotated_via(v, src)) {
        assert!(v.parse::<Via>().is_ok(), "an annotated Via parses: {v}");
    }
    if r.answerable() {
        let out = write_response(&r, &Reply::library(405, vec!["Allow: OPTIONS".into()]), "t");
        assert!(Response::parse(&out).is_ok(), "our answer parses");
    }
}

fn exercise(buf: &[u8]) {
    let _ = classify(buf);
    let _ = frame(buf, 512);
    let _ = frame(buf, 0);
    if let Ok(r) = Response::parse(buf) {
        let _ = (r.call_id(), r.cseq(), r.top_via(), r.contacts(), r.to_tag());
        let _ = (r.expires(), r.min_expires(), r.retry_after());
        let via = r.top_via();
        let slow = via.as_ref().and_then(|v| v.branch());
        let quoted = via
            .as_ref()
            .and_then(|v| {
                v.params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("branch"))
            })
            .and_then(|(_, v)| v.as_deref())
            .is_some_and(|v| text_has_quoted_branch(buf, v));
        if !quoted {
            assert_eq!(r.top_branch(), slow, "top_branch agrees with top_via");
        }
        assert_eq!(
            r.top_via_public_address(),
            via.as_ref().and_then(Via::public_address),
            "top_via_public_address agrees with top_via"
        );
    }
    exercise_request(buf);
    let mut as_request = b"OPTIONS sip:a@h SIP/2.0\r\n".to_vec();
    as_request.extend_from_slice(buf);
    exercise_request(&as_request);
    let text = String::from_utf8_lossy(buf);
    let _ = split_list(&text);
    let _ = parse_params(&text);
    let _ = text.parse::<NameAddr>();
    let _ = text.parse::<Via>();
    let _ = Uri::parse(&text);
}

#[test]
fn random_buffers_never_panic() {
    let alphabet = b"SIP/2.0 1234567890:;,<>\"\\@[]?=&%\r\n\t abcsipvmlxXyYzZ\xff\xc3\x00";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..4000 {
        let len = rng.below(160);
        let buf: Vec<u8> = if round % 2 == 0 {
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        };
        exercise(&buf);
        let mut framed = b"SIP/2.0 200 OK\r\n".to_vec();
        framed.extend_from_slice(&buf);
        exercise(&framed);
    }
}

#[test]
fn prefixes_and_mutations_never_panic() {
    let full = crlf(&format!(
        "{}{}",
        KAMAILIO_200.replace("Content-Length: 0", "Content-Length: 3"),
        "abc"
    ));
    let bytes = full.as_bytes();
    assert!(Response::parse(bytes).is_ok());
    assert_eq!(frame(bytes, 4096), Frame::Message(bytes.len()));
    for end in 0..bytes.len() {
        let prefix = &bytes[..end];
        assert!(Response::parse(prefix).is_err(), "prefix {end} parsed");
        assert_eq!(frame(prefix, 4096), Frame::Incomplete, "prefix {end}");
        exercise(prefix);
    }
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let mut copy = bytes.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(copy.len());
            copy[at] = rng.next() as u8;
        }
        exercise(&copy);
    }
}

#[test]
fn nat_and_routing_facts_of_a_2xx() {
    let raw = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKx;rport=40001;received=203.0.113.7\r\n\
Require: outbound\r\nSupported: path, OutBound\r\nFlow-Timer: 25\r\n\
Service-Route: <sip:orig@scscf.example.com;lr>, <sip:pcscf.example.com;lr>\r\n\
Service-Route: <sip:third.example.com;lr>\r\n\
Path: <sip:edge.example.com;lr;ob>\r\nContent-Length: 0\r\n\r\n";
    let r = Response::parse(raw.as_bytes()).unwrap();
    let via = r.top_via().unwrap();
    assert_eq!(
        via.public_address(),
        Some("203.0.113.7:40001".parse().unwrap())
    );
    assert!(r.lists_option("require", "outbound"));
    assert!(r.lists_option("k", "outbound"));
    assert!(!r.lists_option("require", "path"));
    assert_eq!(r.flow_timer(), Some(25));
    assert_eq!(
        r.service_routes(),
        [
            "sip:orig@scscf.example.com;lr",
            "sip:pcscf.example.com;lr",
            "sip:third.example.com;lr"
        ]
    );
    assert_eq!(r.paths(), ["sip:edge.example.com;lr;ob"]);
}

#[test]
fn top_via_public_address_agrees_with_via() {
    for via in [
        "SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKx;rport=40001;received=203.0.113.7",
        "SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKx;rport",
        "SIP/2.0/UDP 10.0.0.2:5080;RPORT=7;branch=b;rport=8",
        "SIP/2.0/TCP [::1]:5080;received=::2",
        "SIP/2.0/TCP [::1];rport=9",
        "SIP/2.0/UDP h.example;received=not-an-ip;rport=9",
        "SIP/2.0/UDP h.example;rport=9",
        "SIP/2.0/UDP h.example;received=\"192.0.2.1\";rport=\"77\"",
        "SIP/2.0/UDP h.example;received=[2001:db8::5];rport=0",
        "SIP/2.0/UDP 10.0.0.2;received=192.0.2.9;bad param",
        "SIP/2.0/UDP 10.0.0.2;received=192.0.2.9, SIP/2.0/UDP 10.9.9.9;received=192.0.2.8",
        "SIP/2.0/UDP h;rport;received=1.2.3.4;RPORT=5;Received=5.6.7.8",
        "SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bKa;received=10.9.9.9",
        "SIP/2.0/UDP 10.0.0.2:99999;rport=5",
        "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKa",
    ] {
        let r = with_headers(&format!("Via: {via}\r\n"));
        let slow = r.top_via().and_then(|v| v.public_address());
        assert_eq!(r.top_via_public_address(), slow, "{via}");
    }
    assert_eq!(with_headers("").top_via_public_address(), None);
}

#[test]
fn via_public_address_variants() {
    let v: Via = "SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKx;rport"
        .parse()
        .unwrap();
    assert_eq!(v.public_address(), None);
    let v: Via = "SIP/2.0/UDP 10.0.0.2:5080;rport=7;branch=b"
        .parse()
        .unwrap();
    assert_eq!(v.public_address(), Some("10.0.0.2:7".parse().unwrap()));
    let v: Via = "SIP/2.0/TCP [::1]:5080;received=::2".parse().unwrap();
    assert_eq!(v.public_address(), Some("[::2]:5080".parse().unwrap()));
    let v: Via = "SIP/2.0/UDP h.example;received=not-an-ip;rport=9"
        .parse()
        .unwrap();
    assert_eq!(v.public_address(), None);
}

/// A message framed on a stream is parsed once: the response built from the
/// framing's parse of its head is the one parsing the bytes gives.
#[test]
fn a_framed_head_gives_the_response_parsing_gives() {
    let cases = [
        crlf(KAMAILIO_200),
        crlf(KAMAILIO_401),
        "SIP/2.0 200 OK\r\nl:\r\n 2\r\nX-Odd: one\r\n two\r\n\r\nhi".to_owned(),
        "SIP/2.0 486 Busy Here\r\nv: SIP/2.0/TCP h;branch=z9hG4bKx\r\ni: c\r\nl: 5\r\n\r\nhello"
            .to_owned(),
        "SIP/2.0 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n".to_owned(),
    ];
    for msg in &cases {
        let bytes = msg.as_bytes();
        let (framed, head) = frame_with_head(bytes, 4096);
        assert_eq!(framed, Frame::Message(bytes.len()), "{msg:?}");
        let head = head.unwrap_or_else(|| panic!("no head kept: {msg:?}"));
        assert_eq!(
            Response::parse_framed(bytes, head),
            Response::parse(bytes),
            "{msg:?}"
        );
    }
    // Only a complete message's head is kept, and only one read as it is.
    let whole = crlf(KAMAILIO_200);
    let (framed, head) = frame_with_head(&whole.as_bytes()[..whole.len() - 1], 4096);
    assert_eq!(framed, Frame::Incomplete);
    assert!(head.is_none());
    let lossy: &[u8] = b"SIP/2.0 200 \xff\r\nl: 0\r\n\r\n";
    let (framed, head) = frame_with_head(lossy, 4096);
    assert_eq!(framed, Frame::Message(lossy.len()));
    assert!(head.is_none(), "a lossy copy's spans are not the message's");
    // A head given with bytes it does not fit is refused.
    let long = crlf(KAMAILIO_401);
    let short = "SIP/2.0 200 OK\r\nl: 0\r\n\r\n";
    let (_, head) = frame_with_head(long.as_bytes(), 4096);
    assert!(Response::parse_framed(short.as_bytes(), head.unwrap()).is_err());
    let (_, head) = frame_with_head(short.as_bytes(), 4096);
    assert!(Response::parse_framed(long.as_bytes(), head.unwrap()).is_err());
}

/// As for responses: a request framed on a stream is read from the
/// framing's parse of its head, and is the request parsing gives.
#[test]
fn a_framed_head_gives_the_request_parsing_gives() {
    let cases = [
        "OPTIONS sip:alice@127.0.0.1:5070;transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKping\r\n\
         From: <sip:ping@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\n\
         Call-ID: p1\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        "MESSAGE sip:a@h SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bKm\r\nf: <sip:b@h>;tag=2\r\n\
         t: <sip:a@h>\r\ni: m1\r\nCSeq: 1 MESSAGE\r\nX-Odd: one\r\n two\r\nl: 5\r\n\r\nhello",
        "NOTIFY sip:a@h SIP/2.0\r\nContent-Length: 2\r\n\r\nhi",
    ];
    for msg in cases {
        let bytes = msg.as_bytes();
        let (framed, head) = frame_with_head(bytes, 4096);
        assert_eq!(framed, Frame::Message(bytes.len()), "{msg:?}");
        let head = head.unwrap_or_else(|| panic!("no head kept: {msg:?}"));
        let spare = Request::parse(cases[0].as_bytes()).unwrap();
        assert_eq!(
            Request::parse_framed(bytes, head, spare),
            Request::parse(bytes),
            "{msg:?}"
        );
    }
}

#[test]
fn a_name_addr_read_in_place_finds_the_parameters_the_parsed_list_holds() {
    // (value, whether it parses)
    for (value, good) in [
        ("<sip:u1@127.0.0.1:5060>;expires=600", true),
        (
            "\"Bob \\\"B\\\"\" <sips:bob@[::1]:5061;transport=tls>;q=0.5;expires=\"30\"",
            true,
        ),
        (
            "<sip:a@h>;expires=30;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1",
            true,
        ),
        // Unbracketed, the '<' in the quoted value is taken for the URI's
        // (registrars bracket their contacts).
        (
            "sip:a@h;expires=30;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"",
            false,
        ),
        (
            "<sip:a@b;lr>;pub-gruu=\"sip:a@example.com;gr=urn:uuid:1\";temp-gruu=\"sip:t@example.com;gr\"",
            true,
        ),
        ("Anon <sip:x@y.z?subject=hi>;flag;EXPIRES=4294967296", true),
        (" < sip:spaced@127.0.0.1 > ;expires=1", true),
        ("<sip:bad host>;expires=1", false),
        ("<sip:a@b>;expires=\"open", false),
        ("<sip:a@b>;=x", false),
        ("\"open <sip:a@b>", false),
        ("<sip:a@b", false),
        ("Name sip:a@b", false),
    ] {
        let Ok(read) = NameAddrRef::parse(value) else {
            assert!(!good, "{value:?} must parse");
            continue;
        };
        assert!(good, "{value:?} must not parse");
        // The parameters looked up in place (`lexer::find_param`, unquoted)
        // and in the parsed list (`parse_params`) agree.
        let owned = read.to_owned();
        assert_eq!(read.expires(), owned.expires(), "{value:?}");
        for name in ["expires", "q", "+sip.instance", "reg-id", "pub-gruu", "flag", "none"] {
            assert_eq!(
                read.param(name).map(|v| v.map(|v| v.into_owned())),
                owned.param(name).map(|v| v.map(str::to_owned)),
                "{value:?} {name}"
            );
        }
    }
    let bob = NameAddrRef::parse(
        "\"Bob \\\"B\\\"\" <sips:bob@[::1]:5061;transport=tls>;q=0.5;expires=\"30\"",
    )
    .unwrap();
    assert_eq!(bob.uri_text, "sips:bob@[::1]:5061;transport=tls");
    assert_eq!(bob.expires(), Some(30));
    assert_eq!(bob.to_owned().display_name.as_deref(), Some("Bob \"B\""));
    let big = NameAddrRef::parse("Anon <sip:x@y.z?subject=hi>;flag;EXPIRES=4294967296").unwrap();
    assert_eq!(big.param("flag"), Some(None));
    assert_eq!(big.expires(), Some(u32::MAX));
}

#[test]
fn a_response_read_into_reused_buffers_is_the_response_read_afresh() {
    // One set of buffers through responses of every shape: long, short,
    // folded, LF-only, with invalid UTF-8, refused; each read equals the
    // same bytes read afresh.
    let folded = crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bKf\nSubject: a\n  b\nContent-Length: 0\n\n");
    let lf_only = "SIP/2.0 401 Unauthorized\nVia: SIP/2.0/UDP h;branch=z9hG4bKl\n\n".to_string();
    let mut lossy =
        crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bKu\nServer: x\n\n").into_bytes();
    let at = lossy.len() - 5;
    lossy[at] = 0xff;
    let inputs: Vec<Vec<u8>> = vec![
        crlf(KAMAILIO_200).into_bytes(),
        crlf(KAMAILIO_401).into_bytes(),
        folded.into_bytes(),
        b"SIP/2.0 200 OK\r\nVia: x\r\n".to_vec(),
        lf_only.into_bytes(),
        lossy,
        crlf(KAMAILIO_200).into_bytes(),
        b"SIP/2.0 99 Too Low\r\n\r\n".to_vec(),
        crlf(KAMAILIO_401).into_bytes(),
    ];
    let mut spare = ResponseBuffers::default();
    for bytes in &inputs {
        let reused = Response::parse_reusing(bytes, std::mem::take(&mut spare));
        assert_eq!(
            reused,
            Response::parse(bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        if let Ok(r) = reused {
            spare = r.into_buffers();
            assert!(spare.capacity() > 0);
        }
    }
}
