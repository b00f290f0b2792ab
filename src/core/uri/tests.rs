use super::*;

#[test]
fn stack_text_matches_the_std_printers() {
    for n in [0u64, 7, 10, 99, 100, 65_535, 4_294_967_295, u64::MAX] {
        assert_eq!(Decimal::new(n).as_str(), n.to_string());
    }
    for octets in [
        [0, 0, 0, 0],
        [127, 0, 0, 1],
        [9, 10, 99, 100],
        [255, 250, 199, 200],
    ] {
        let addr = Ipv4Addr::from(octets);
        assert_eq!(V4Text::new(addr).as_str(), addr.to_string());
    }
}

fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn domain(s: &str) -> Host {
    Host::Domain(s.to_owned())
}

#[test]
fn parses_user_at_domain() {
    let u = uri("sip:alice@example.com");
    assert_eq!(u.scheme, Scheme::Sip);
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password, None);
    assert_eq!(u.host, domain("example.com"));
    assert_eq!(u.port, None);
    assert!(u.params.is_empty());
    assert!(u.headers.is_empty());
}

#[test]
fn parses_sips_and_upper_case_scheme() {
    assert_eq!(uri("sips:alice@example.com").scheme, Scheme::Sips);
    assert_eq!(uri("SIP:alice@example.com").scheme, Scheme::Sip);
    assert_eq!(uri("SiPs:alice@example.com").scheme, Scheme::Sips);
}

#[test]
fn parses_uri_without_user() {
    let u = uri("sip:example.com");
    assert_eq!(u.user, None);
    assert_eq!(u.host, domain("example.com"));
}

#[test]
fn parses_dotted_user_and_password() {
    assert_eq!(
        uri("sip:first.last@example.com").user.as_deref(),
        Some("first.last")
    );
    let u = uri("sip:alice:secret@host");
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password.as_deref(), Some("secret"));
    assert_eq!(u.host, domain("host"));
    assert_eq!(uri("sip:alice:@host").password.as_deref(), Some(""));
}

#[test]
fn parses_ipv4_port_and_transport() {
    let u = uri("sip:bob@127.0.0.1:5070;transport=tcp");
    assert_eq!(u.host, Host::V4(Ipv4Addr::new(127, 0, 0, 1)));
    assert_eq!(u.port, Some(5070));
    assert_eq!(u.transport(), Some("tcp"));
    assert_eq!(u.host_port(), "127.0.0.1:5070");
}

#[test]
fn parses_ipv6_hosts() {
    let u = uri("sip:bob@[2001:db8::1]:5060;transport=udp");
    assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
    assert_eq!(u.port, Some(5060));
    assert_eq!(u.transport(), Some("udp"));
    assert_eq!(u.host_port(), "[2001:db8::1]:5060");

    let u = uri("sip:[::1]");
    assert_eq!(u.user, None);
    assert_eq!(u.host, Host::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(u.host_port(), "[::1]");
}

#[test]
fn keeps_param_values_with_colons() {
    let u = uri("sip:bob@ex.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    assert_eq!(
        u.param("gr"),
        Some(Some("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))
    );
    assert_eq!(u.host, domain("ex.com"));
}

#[test]
fn parses_flag_params_case_insensitively() {
    let u = uri("sip:bob@host;lr;Transport=TCP;maddr=[::1]");
    assert_eq!(u.param("lr"), Some(None));
    assert_eq!(u.param("LR"), Some(None));
    assert_eq!(u.param("transport"), Some(Some("TCP")));
    assert_eq!(u.transport(), Some("TCP"));
    assert_eq!(u.param("maddr"), Some(Some("[::1]")));
    assert_eq!(u.param("ttl"), None);
}

#[test]
fn parses_headers() {
    let u = uri("sip:alice@example.com?subject=x");
    assert_eq!(u.headers, vec![("subject".to_owned(), "x".to_owned())]);
    let u = uri("sip:bob@h;lr?to=sip:bob%40biloxi.com&priority=urgent&empty=");
    assert_eq!(u.param("lr"), Some(None));
    assert_eq!(
        u.headers,
        vec![
            ("to".to_owned(), "sip:bob%40biloxi.com".to_owned()),
            ("priority".to_owned(), "urgent".to_owned()),
            ("empty".to_owned(), String::new()),
        ]
    );
}

#[test]
fn keeps_escapes_in_user_as_written() {
    let u = uri("sip:%61lice%20b@example.com");
    assert_eq!(u.user.as_deref(), Some("%61lice%20b"));
    assert_eq!(u.to_string(), "sip:%61lice%20b@example.com");
}

#[test]
fn trims_surrounding_whitespace() {
    assert_eq!(
        uri("  sip:alice@example.com \r\n"),
        uri("sip:alice@example.com")
    );
}

#[test]
fn parses_with_from_str() {
    let u: Uri = "sip:alice@example.com".parse().unwrap();
    assert_eq!(u.user.as_deref(), Some("alice"));
    let h: Host = "[::1]".parse().unwrap();
    assert_eq!(h, Host::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(
        "10.0.0.1".parse::<Host>(),
        Ok(Host::V4(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert!("".parse::<Host>().is_err());
}

#[test]
fn accepts_port_edge_values() {
    assert_eq!(uri("sip:h:0").port, Some(0));
    assert_eq!(uri("sip:h:65535").port, Some(65535));
    assert_eq!(uri("sip:h:05060").port, Some(5060));
}

#[test]
fn rejects_malformed_uris() {
    let bad = [
        "",
        "   ",
        "alice@example.com",
        "example.com",
        "tel:+15551234",
        "http://example.com",
        "sip:",
        "sip:alice@",
        "sip:@example.com",
        "sip:;lr",
        "sip:host:",
        "sip:host:65536",
        "sip:host:99999999999999999999",
        "sip:host:50a0",
        "sip:host:-1",
        "sip:[::1",
        "sip:::1]",
        "sip:[::1]x",
        "sip:[::1]:",
        "sip:[not-v6]",
        "sip:2001:db8::1",
        "sip:alice@exa mple.com",
        "sip:ali ce@example.com",
        "sip:alice@example.com\r\n;lr",
        "sip:alice@exam\nple.com",
        "sip:alice@example.com;tr\u{0}",
        "sip:al\tice@example.com",
        "sip:alice@example.com;",
        "sip:alice@example.com;=x",
        "sip:alice@example.com?",
        "sip:alice@example.com?novalue",
        "sip:alice@example.com?=v",
        "sip:%zzlice@example.com",
        "sip:alice%4@example.com",
        "sip:alïce@example.com",
        "sip:alice@exämple.com",
        "sip:alice@ex..com",
        "sip:alice@.com",
        "sip:alice@1.2.3",
        "sip:alice@256.1.1.1",
        "sip:<alice@example.com>",
        "sip:\"alice\"@example.com",
    ];
    for s in bad {
        assert!(Uri::parse(s).is_err(), "accepted {s:?}");
    }
}

#[test]
fn display_round_trips() {
    let samples = [
        "sip:alice@example.com",
        "sips:alice@example.com",
        "sip:example.com",
        "sip:first.last@example.com",
        "sip:alice:secret@host",
        "sip:bob@127.0.0.1:5070;transport=tcp",
        "sip:bob@[2001:db8::1]:5060;transport=udp",
        "sip:[::1]",
        "sip:bob@ex.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "sip:bob@host;lr",
        "sip:alice@example.com?subject=x&priority=urgent",
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:host.example.com.;lr;ttl=5?h=",
    ];
    for s in samples {
        let u = uri(s);
        assert_eq!(u.to_string(), s);
        assert_eq!(uri(&u.to_string()), u);
    }
    // The scheme is printed in lower case.
    assert_eq!(
        uri("SIPS:Bob@Example.COM").to_string(),
        "sips:Bob@Example.COM"
    );
}

#[test]
fn host_display_brackets_ipv6() {
    assert_eq!(Host::V6(Ipv6Addr::LOCALHOST).to_string(), "[::1]");
    assert_eq!(Host::V4(Ipv4Addr::LOCALHOST).to_string(), "127.0.0.1");
    assert_eq!(domain("Example.com").to_string(), "Example.com");
}

#[test]
fn random_strings_never_panic() {
    let alphabet = "sip:SIPS@[]:;=?&%0123456789abcdefABCDEF.-_ \t\r\n\"<>ü\u{0}";
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 40) as usize;
        let s: String = (0..len)
            .map(|i| chars[((state >> (i % 50)) as usize + i * 7) % chars.len()])
            .collect();
        let candidate = format!("sip:{s}");
        for text in [s.as_str(), candidate.as_str()] {
            if let Ok(u) = Uri::parse(text) {
                // Whatever parses must print back to something equal.
                assert_eq!(Uri::parse(&u.to_string()).as_ref(), Ok(&u), "{text:?}");
                assert!(u.equivalent(&u));
            }
        }
    }
}

fn assert_equivalent(a: &str, b: &str) {
    let (a, b) = (uri(a), uri(b));
    assert!(a.equivalent(&b), "{a} should equal {b}");
    assert!(b.equivalent(&a), "{b} should equal {a}");
}

fn assert_different(a: &str, b: &str) {
    let (a, b) = (uri(a), uri(b));
    assert!(!a.equivalent(&b), "{a} should differ from {b}");
    assert!(!b.equivalent(&a), "{b} should differ from {a}");
}

#[test]
fn rfc3261_equivalent_examples() {
    assert_equivalent(
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:alice@AtLanTa.CoM;Transport=tcp",
    );
    let carols = [
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;newparam=5",
        "sip:carol@chicago.com;security=on",
    ];
    for a in carols {
        for b in carols {
            assert_equivalent(a, b);
        }
    }
    assert_equivalent(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    );
    assert_equivalent(
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    );
}

#[test]
fn rfc3261_non_equivalent_examples() {
    // Different user names (userinfo is case-sensitive).
    assert_different(
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:alice@AtLanTa.CoM;Transport=UDP",
    );
    // Can resolve to different ports.
    assert_different("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060");
    // Can resolve to different transports.
    assert_different("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp");
    // Can resolve to different port and transports.
    assert_different(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com:6000;transport=tcp",
    );
    // Different header component.
    assert_different(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com?Subject=next%20meeting",
    );
    // Even though that's what phone21.boxesbybob.com resolves to.
    assert_different("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4");
}

#[test]
fn rfc3261_equivalence_is_not_transitive() {
    assert_equivalent("sip:carol@chicago.com", "sip:carol@chicago.com;security=on");
    assert_equivalent(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;security=off",
    );
    assert_different(
        "sip:carol@chicago.com;security=on",
        "sip:carol@chicago.com;security=off",
    );
}

#[test]
fn equivalence_details() {
    assert_different("sip:alice@example.com", "sips:alice@example.com");
    assert_different("sip:alice@example.com", "sip:example.com");
    assert_equivalent("sip:a:pw@h", "sip:a:%70w@h");
    assert_different("sip:a:pw@h", "sip:a:PW@h");
    assert_different("sip:a:pw@h", "sip:a@h");
    assert_equivalent("sip:bob@[2001:db8::1]", "sip:bob@[2001:DB8:0:0::1]");
    assert_different("sip:bob@[::1]", "sip:bob@127.0.0.1");
    assert_different("sip:bob@h;maddr=10.0.0.1", "sip:bob@h");
    assert_different("sip:bob@h;ttl=5", "sip:bob@h");
    assert_different("sip:bob@h;user=phone", "sip:bob@h");
    assert_different("sip:bob@h;method=INVITE", "sip:bob@h");
    assert_different("sip:bob@h;lr", "sip:bob@h;lr=on");
    assert_equivalent("sip:bob@h;lr", "sip:bob@h");
    // Escaped reserved characters are not the same as literal ones.
    assert_different("sip:a%3Bb@h", "sip:a;b@h");
    assert_equivalent("sip:a%3bb@h", "sip:a%3Bb@h");
    // Header names are case-insensitive.
    assert_equivalent("sip:biloxi.com?to=x", "sip:biloxi.com?TO=x");
    assert_different("sip:biloxi.com?to=x", "sip:biloxi.com?to=X");
    assert_different("sip:h?a=1", "sip:h?a=1&b=2");
}

#[test]
fn repeated_parameter_is_equivalent_to_itself() {
    // Found by the parse_response fuzz target: the second `x` was compared
    // with the first one, so the URI did not equal itself.
    let u = uri("sip:alice:secret@example.co06t;5m:0ranoritu=yco06t;5m:0ranoritu=y(r(e(r(ent");
    assert!(u.equivalent(&u));
    assert_equivalent("sip:h;x=1;x=2", "sip:h;x=1");
    assert_equivalent("sip:h;x=1;x=2", "sip:h;x=1;x=3");
    assert_different("sip:h;x=2;x=1", "sip:h;x=1");
}

/// The byte checks find an empty label exactly where splitting on '.' does,
/// for every host of up to five characters from `a`, `.` and `_`.
#[test]
fn empty_labels_as_splitting_finds_them() {
    let by_split = |s: &str| {
        let s = s.strip_suffix('.').unwrap_or(s);
        s.split('.').any(str::is_empty)
    };
    let mut hosts = vec![String::new()];
    for _ in 0..5 {
        let longer: Vec<String> = hosts
            .iter()
            .flat_map(|h| ['a', '.', '_'].map(|c| format!("{h}{c}")))
            .collect();
        hosts.extend(longer);
    }
    for host in &hosts {
        assert_eq!(has_empty_label(host), by_split(host), "{host:?}");
    }
}

/// `Uri::text` (sized once) and `push_to` write what `Display` writes.
#[test]
fn uri_text_is_its_display() {
    for text in [
        "sip:alice@127.0.0.1:5060;transport=udp;ob",
        "sips:bob:pw@[2001:db8::1]:5061;lr?subject=hi&x=y",
        "sip:h.example.com",
        "tel:+15551234",
        "sip:%61lice@h;maddr=10.0.0.1",
    ] {
        let Ok(uri) = Uri::parse(text) else { continue };
        let mut pushed = String::from(">");
        uri.push_to(&mut pushed);
        assert_eq!(uri.text(), uri.to_string(), "{text}");
        assert_eq!(pushed, format!(">{uri}"), "{text}");
    }
    let uri = Uri::parse("sip:a@h;x=1").unwrap();
    assert_eq!(uri.text(), "sip:a@h;x=1");
}

#[test]
fn dotted_quads_are_read_as_the_standard_parser_reads_them() {
    for s in [
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1..2.3",
        "1.2.3.",
        "",
        "1.2.3.4a",
        "1000.1.1.1",
        "00.1.1.1",
        "0.10.100.200",
        "9.99.199.249",
    ] {
        assert_eq!(
            super::dotted_quad(s.as_bytes()),
            s.parse::<std::net::Ipv4Addr>().ok(),
            "{s:?}"
        );
    }
}

/// The one-pass host reader says what the separate rules say: the
/// character set, empty labels and dotted quads, over every host of up to
/// six characters from a small alphabet.
#[test]
fn the_one_pass_host_reader_follows_the_separate_rules() {
    let alphabet = [b'a', b'1', b'.', b'-', b'0', b'_', b'!'];
    let mut checked = 0;
    for len in 1..=6u32 {
        for n in 0..alphabet.len().pow(len) {
            let mut k = n;
            let host: Vec<u8> = (0..len)
                .map(|_| {
                    let b = alphabet[k % alphabet.len()];
                    k /= alphabet.len();
                    b
                })
                .collect();
            let host = std::str::from_utf8(&host).unwrap();
            let valid_chars = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            let expected = if !valid_chars {
                Err("invalid character in host")
            } else if has_empty_label(host) {
                Err("empty label in host name")
            } else if numeric {
                host.parse::<std::net::Ipv4Addr>()
                    .map(|_| ())
                    .map_err(|_| "invalid IPv4 address")
            } else {
                Ok(())
            };
            let got = read_host(host).map(|_| ()).map_err(|e| e.0.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{host:?}");
            checked += 1;
        }
    }
    assert!(checked > 100_000);
}

#[test]
fn a_uri_read_in_place_is_written_as_the_parsed_one() {
    let mut written_some = 0;
    for text in [
        "sip:alice@example.com",
        "SIP:Alice@Example.COM:5070",
        "sips:bob:secret@10.0.0.1:05061;transport=tcp;lr",
        "sip:127.0.0.1",
        "sip:u%41@[2001:DB8:0:0:0:0:0:1]:5060;maddr=[::1];x",
        "sip:[::ffff:10.0.0.1];a=b;c",
        "sip:h;transport=ws?subject=hi&priority=urgent",
        "sip:h?flag",
        "  sip:trimmed@host  ",
        "sip:a@b.c;ob;+sip.instance=x;reg-id=1",
    ] {
        let Ok(r) = UriRef::parse(text) else {
            assert!(Uri::parse(text).is_err(), "{text:?}");
            continue;
        };
        let mut written = String::new();
        r.push_to(&mut written);
        assert_eq!(written, Uri::parse(text).unwrap().text(), "{text:?}");
        written_some += 1;
    }
    assert!(written_some >= 9, "only {written_some} parsed");
}

#[test]
fn the_one_pass_dotted_quad_is_the_checked_one() {
    // Every text of up to seven characters from digits, dots and a letter:
    // the one-pass reader takes exactly the dotted quads the checks take
    // (no empty label, then `dotted_quad`), with the same address.
    let alphabet = b"01259.a";
    let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
    let mut all = Vec::new();
    for _ in 0..7 {
        texts = texts
            .iter()
            .flat_map(|t| {
                alphabet.iter().map(move |c| {
                    let mut t = t.clone();
                    t.push(*c);
                    t
                })
            })
            .collect();
        all.extend(texts.iter().cloned());
    }
    for t in [
        "255.255.255.255",
        "256.1.1.1",
        "1.2.3.4.5",
        "01.2.3.4",
        "127.0.0.1",
        "0.0.0.0",
        "1.2.3.04",
        "1.2.3.",
        ".1.2.3",
        "999.1.1.1",
    ] {
        all.push(t.as_bytes().to_vec());
    }
    for t in &all {
        let text = std::str::from_utf8(t).unwrap();
        let numeric = t.iter().all(|b| b.is_ascii_digit() || *b == b'.');
        let checked = (numeric && !has_empty_label(text))
            .then(|| dotted_quad(t))
            .flatten();
        assert_eq!(plain_dotted_quad(t), checked, "{text:?}");
        if let Some(a) = checked {
            assert!(
                matches!(read_host(text), Ok(HostKind::V4(b)) if b == a),
                "{text:?}"
            );
        }
    }
}
