use super::*;

const RFC2617_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
const RFC7616_CHALLENGE: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
        algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

/// A challenge built directly, bypassing the parser.
fn challenge(realm: &str, nonce: &str, algorithm: Option<&str>, qop: &[&str]) -> Challenge {
    Challenge {
        realm: realm.to_owned(),
        nonce: nonce.to_owned(),
        opaque: None,
        algorithm: algorithm.map(str::to_owned),
        qop: qop.iter().map(|q| (*q).to_owned()).collect(),
        stale: false,
        domain: None,
    }
}

/// The RFC examples' GET of /dir/index.html by Mufasa.
fn mufasa<'a>(password: &'a str, cnonce: &'a str) -> Answer<'a> {
    Answer {
        username: "Mufasa",
        password: Some(password),
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        nc: 1,
        cnonce,
    }
}

/// A SIP REGISTER by alice, used for the python-computed vectors.
fn alice(nc: u32, body: &[u8]) -> Answer<'_> {
    Answer {
        username: "alice",
        password: Some("secret"),
        method: "REGISTER",
        uri: "sip:atlanta.com",
        body,
        nc,
        cnonce: "c1",
    }
}

/// The RFC 7616 §3.9.1 example answered with `alg` and qop=auth.
fn rfc7616_response(alg: Algorithm) -> String {
    let ch = parse_challenge(RFC7616_CHALLENGE).unwrap();
    let answer = mufasa("Circle of Life", RFC7616_CNONCE);
    response_hash(&ch, alg, Some(Qop::Auth), &answer).unwrap()
}

/// The value of `name=` in a header we built, quotes included.
fn header_param<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let body = header.strip_prefix("Digest ")?;
    body.split(", ")
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

// --- RFC vectors ---

#[test]
fn rfc2617_section_3_5_example() {
    let ch = challenge("testrealm@host.com", RFC2617_NONCE, None, &["auth"]);
    let answer = mufasa("Circle Of Life", "0a4f113b");
    let got = response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer).unwrap();
    assert_eq!(got, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc2069_example_without_qop() {
    // RFC 2069 §2.4 example (password "CircleOfLife", no qop).
    let ch = challenge("testrealm@host.com", RFC2617_NONCE, None, &[]);
    let answer = mufasa("CircleOfLife", "unused");
    let got = response_hash(&ch, Algorithm::Md5, None, &answer).unwrap();
    assert_eq!(got, "1949323746fe6a43ef61f9606e7febea");
}

#[test]
fn rfc7616_md5_example() {
    assert_eq!(
        rfc7616_response(Algorithm::Md5),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn rfc7616_sha256_example() {
    assert_eq!(
        rfc7616_response(Algorithm::Sha256),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn rfc7616_example_through_authorization() {
    let ch = parse_challenge(RFC7616_CHALLENGE).unwrap();
    let header = authorization(&ch, &mufasa("Circle of Life", RFC7616_CNONCE)).unwrap();
    assert_eq!(
        header_param(&header, "response"),
        Some("\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"")
    );
    assert_eq!(header_param(&header, "algorithm"), Some("SHA-256"));
}

// Expected values below were computed independently with python3 hashlib, e.g.
// H = lambda s: hashlib.new('sha512_256', s.encode()).hexdigest()
// (python's sha512_256 checked against the FIPS 180-4 "abc" vector), then
// H(HA1:nonce:nc:cnonce:qop:HA2) with the RFC 2617 definitions of HA1 and HA2.

#[test]
fn sha512_256_rfc7616_inputs() {
    assert_eq!(
        rfc7616_response(Algorithm::Sha512_256),
        "430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0"
    );
}

#[test]
fn md5_sess_rfc7616_inputs() {
    assert_eq!(
        rfc7616_response(Algorithm::Md5Sess),
        "e783283f46242139c486a698fec7211d"
    );
}

#[test]
fn sha256_sess_rfc7616_inputs() {
    assert_eq!(
        rfc7616_response(Algorithm::Sha256Sess),
        "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
    );
}

#[test]
fn sha512_256_sess_rfc7616_inputs() {
    assert_eq!(
        rfc7616_response(Algorithm::Sha512_256Sess),
        "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e"
    );
}

#[test]
fn sha512_256_sess_auth_int_with_body() {
    let ch = challenge("atlanta.com", "n1", Some("SHA-512-256-sess"), &["auth-int"]);
    let answer = alice(2, b"hello");
    let got = response_hash(&ch, Algorithm::Sha512_256Sess, Some(Qop::AuthInt), &answer);
    assert_eq!(
        got.unwrap(),
        "0e3bc0273f0979480f9438c7d039c82755756ef6bb90fe735bf8463ff10e8945"
    );
}

// --- qop modes, nc, password ---

#[test]
fn auth_int_empty_body() {
    let ch = challenge("atlanta.com", "n1", None, &["auth-int"]);
    let header = authorization(&ch, &alice(1, b"")).unwrap();
    assert_eq!(header_param(&header, "qop"), Some("auth-int"));
    // python3: MD5 auth-int with HA2 = H("REGISTER:sip:atlanta.com:" + md5(b"")).
    assert_eq!(
        header_param(&header, "response"),
        Some("\"221591e3a7c028c42aa36e27d0bcfe1d\"")
    );
}

#[test]
fn auth_int_non_empty_body() {
    let ch = challenge("atlanta.com", "n1", Some("SHA-256"), &["auth-int"]);
    let got = response_hash(
        &ch,
        Algorithm::Sha256,
        Some(Qop::AuthInt),
        &alice(1, b"v=0\r\n"),
    );
    // python3: SHA-256 auth-int over the 5-byte body "v=0\r\n".
    assert_eq!(
        got.unwrap(),
        "fa923b27e57e5326e7881182e74c23b8b72a4a9378f92d43e3c009d20d0333fa"
    );
}

#[test]
fn auth_preferred_over_auth_int() {
    let ch = challenge("r", "n", None, &["auth-int", "auth"]);
    let header = authorization(&ch, &alice(1, b"")).unwrap();
    assert_eq!(header_param(&header, "qop"), Some("auth"));
}

#[test]
fn rfc2069_mode_sends_no_qop_nc_or_cnonce() {
    let ch = challenge("atlanta.com", "n1", Some("SHA-256"), &[]);
    let header = authorization(&ch, &alice(1, b"")).unwrap();
    assert!(!header.contains("qop="), "{header}");
    assert!(!header.contains("nc="), "{header}");
    assert!(!header.contains("cnonce="), "{header}");
    // python3: SHA-256 H(HA1:nonce:HA2).
    assert_eq!(
        header_param(&header, "response"),
        Some("\"6586bba5c498ff5648a869d009206e2db294e48efee5006f102936989ef8a08b\"")
    );
}

#[test]
fn unsupported_qop_is_refused() {
    let ch = challenge("r", "n", None, &["auth-conf"]);
    assert_eq!(
        authorization(&ch, &alice(1, b"")),
        Err(DigestError::UnsupportedQop("auth-conf".into()))
    );
}

#[test]
fn sess_without_qop_is_refused() {
    let ch = challenge("r", "n", Some("MD5-sess"), &[]);
    assert!(matches!(
        authorization(&ch, &alice(1, b"")),
        Err(DigestError::UnsupportedQop(_))
    ));
    assert!(matches!(
        response_hash(&ch, Algorithm::Md5Sess, None, &alice(1, b"")),
        Err(DigestError::UnsupportedQop(_))
    ));
}

#[test]
fn nc_is_eight_lower_hex_digits() {
    let ch = challenge("atlanta.com", "n1", None, &["auth"]);
    let ten = authorization(&ch, &alice(10, b"")).unwrap();
    assert_eq!(header_param(&ten, "nc"), Some("0000000a"));
    // python3: MD5 auth with nc 0000000a.
    assert_eq!(
        header_param(&ten, "response"),
        Some("\"442764a720d81efe4e80990739c626ee\"")
    );
    let max = authorization(&ch, &alice(u32::MAX, b"")).unwrap();
    assert_eq!(header_param(&max, "nc"), Some("ffffffff"));
    // python3: MD5 auth with nc ffffffff.
    assert_eq!(
        header_param(&max, "response"),
        Some("\"e5e7ab1b3a296d0d25787a2fa04b5146\"")
    );
}

#[test]
fn missing_password_is_refused() {
    let ch = challenge("r", "n", None, &["auth"]);
    let mut answer = alice(1, b"");
    answer.password = None;
    assert_eq!(
        authorization(&ch, &answer),
        Err(DigestError::MissingPassword)
    );
    assert_eq!(
        response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer),
        Err(DigestError::MissingPassword)
    );
}

#[test]
fn empty_password_is_a_real_password() {
    let ch = challenge("atlanta.com", "n1", None, &["auth"]);
    let mut answer = alice(1, b"");
    answer.password = Some("");
    // python3: MD5 auth with HA1 = H("alice:atlanta.com:").
    assert_eq!(
        response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer).unwrap(),
        "3e2e6fae9db99cfcb492fe256b4e9f7b"
    );
}

#[test]
fn answer_debug_hides_password() {
    let shown = format!("{:?}", alice(1, b""));
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

// --- algorithms ---

#[test]
fn algorithm_tokens_round_trip_ignoring_case() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
        assert_eq!(Algorithm::parse(&alg.as_str().to_lowercase()), Some(alg));
    }
    assert_eq!(
        Algorithm::parse("sha-512-256-SESS"),
        Some(Algorithm::Sha512_256Sess)
    );
    assert_eq!(Algorithm::parse("SHA-1"), None);
    assert_eq!(Algorithm::parse(""), None);
}

#[test]
fn algorithm_strength_order() {
    assert!(Algorithm::Sha512_256.strength() > Algorithm::Sha256.strength());
    assert!(Algorithm::Sha256.strength() > Algorithm::Md5.strength());
    assert_eq!(Algorithm::Md5Sess.strength(), Algorithm::Md5.strength());
    assert_eq!(
        Algorithm::Sha256Sess.strength(),
        Algorithm::Sha256.strength()
    );
    assert_eq!(
        Algorithm::Sha512_256Sess.strength(),
        Algorithm::Sha512_256.strength()
    );
}

#[test]
fn unknown_algorithm_is_refused() {
    let ch = challenge("r", "n", Some("SHA3-256"), &["auth"]);
    assert_eq!(ch.supported_algorithm(), None);
    assert_eq!(
        authorization(&ch, &alice(1, b"")),
        Err(DigestError::UnsupportedAlgorithm("SHA3-256".into()))
    );
    let absent = challenge("r", "n", None, &["auth"]);
    assert_eq!(absent.supported_algorithm(), Some(Algorithm::Md5));
}

#[test]
fn choose_prefers_sha256_in_any_order() {
    let md5 = parse_challenge("Digest realm=\"a\", nonce=\"1\", qop=\"auth\"").unwrap();
    let sha = parse_challenge("Digest realm=\"a\", nonce=\"2\", qop=\"auth\", algorithm=SHA-256")
        .unwrap();
    let pair = [md5.clone(), sha.clone()];
    assert_eq!(choose_challenge(&pair), Some(&sha));
    let swapped = [sha.clone(), md5];
    assert_eq!(choose_challenge(&swapped), Some(&sha));
}

#[test]
fn choose_skips_unusable_and_breaks_ties_by_order() {
    let unknown = challenge("a", "0", Some("SHA3-512"), &["auth"]);
    let conf_only = challenge("a", "1", Some("SHA-512-256"), &["auth-conf"]);
    let first = challenge("a", "2", Some("SHA-256"), &["auth"]);
    let second = challenge("b", "3", Some("sha-256-sess"), &["auth"]);
    let list = [unknown.clone(), conf_only, first.clone(), second];
    assert_eq!(choose_challenge(&list), Some(&first));
    assert_eq!(choose_challenge(&[unknown]), None);
    assert_eq!(choose_challenge(&[]), None);
}

// --- header ---

#[test]
fn full_header_string() {
    let mut ch = challenge("atlanta.com", "n1", Some("md5"), &["auth"]);
    ch.opaque = Some("op".into());
    let header = authorization(&ch, &alice(1, b"")).unwrap();
    let response = response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &alice(1, b"")).unwrap();
    let expected = format!(
        "Digest username=\"alice\", realm=\"atlanta.com\", nonce=\"n1\", \
             uri=\"sip:atlanta.com\", response=\"{response}\", algorithm=MD5, opaque=\"op\", \
             qop=auth, nc=00000001, cnonce=\"c1\""
    );
    assert_eq!(header, expected);
    assert_eq!(header_param(&header, "uri"), Some("\"sip:atlanta.com\""));
    assert_eq!(header_param(&header, "qop"), Some("auth"));
    assert_eq!(header_param(&header, "nc"), Some("00000001"));
}

#[test]
fn header_names_md5_when_challenge_did_not() {
    let ch = challenge("r", "n", None, &[]);
    let header = authorization(&ch, &alice(1, b"")).unwrap();
    assert_eq!(header_param(&header, "algorithm"), Some("MD5"));
    assert_eq!(header_param(&header, "opaque"), None);
}

#[test]
fn header_escapes_quotes_and_backslashes() {
    let ch = parse_challenge(r#"Digest realm="a\"b\\c", nonce="n""#).unwrap();
    let mut answer = alice(1, b"");
    answer.username = "x\"y";
    let header = authorization(&ch, &answer).unwrap();
    assert!(header.contains(r#"realm="a\"b\\c""#), "{header}");
    assert!(header.contains(r#"username="x\"y""#), "{header}");
}

#[test]
fn header_refuses_control_characters() {
    let ch = challenge("r", "n", None, &["auth"]);
    let mut answer = alice(1, b"");
    answer.uri = "sip:a\r\nVia: evil";
    assert!(matches!(
        authorization(&ch, &answer),
        Err(DigestError::Malformed(_))
    ));
    let evil = challenge("r\n", "n", None, &["auth"]);
    assert!(matches!(
        authorization(&evil, &alice(1, b"")),
        Err(DigestError::Malformed(_))
    ));
}

// --- parsing ---

#[test]
fn parses_full_challenge() {
    let ch = parse_challenge(
        "Digest realm=\"atlanta.com\", nonce=\"abc\", qop=\"auth,auth-int\", \
             algorithm=SHA-256, stale=TRUE, opaque=\"x\", domain=\"sip:a sip:b\"",
    )
    .unwrap();
    let expected = Challenge {
        realm: "atlanta.com".into(),
        nonce: "abc".into(),
        opaque: Some("x".into()),
        algorithm: Some("SHA-256".into()),
        qop: vec!["auth".into(), "auth-int".into()],
        stale: true,
        domain: Some("sip:a sip:b".into()),
    };
    assert_eq!(ch, expected);
}

#[test]
fn tolerates_spacing_case_and_empty_elements() {
    let ch =
        parse_challenge("  dIgEsT \t,REALM = \"r\" ,, NoNcE\t=\tabc/d+e==  , ALGORITHM=sha-256 ,")
            .unwrap();
    assert_eq!(ch.realm, "r");
    assert_eq!(ch.nonce, "abc/d+e==");
    assert_eq!(ch.algorithm.as_deref(), Some("sha-256"));
    assert_eq!(ch.supported_algorithm(), Some(Algorithm::Sha256));
    assert!(ch.qop.is_empty());
}

#[test]
fn qop_lists() {
    let qop = |v: &str| {
        parse_challenge(&format!("Digest realm=r, nonce=n, qop={v}"))
            .unwrap()
            .qop
    };
    assert_eq!(qop("\" auth-int , auth ,\""), vec!["auth-int", "auth"]);
    assert_eq!(qop("auth"), vec!["auth"]);
    assert!(qop("\"\"").is_empty());
}

#[test]
fn stale_variants() {
    let stale = |v: &str| {
        parse_challenge(&format!("Digest realm=r, nonce=n, stale={v}"))
            .unwrap()
            .stale
    };
    assert!(stale("true"));
    assert!(stale("TRUE"));
    assert!(stale("\"true\""));
    assert!(!stale("false"));
    assert!(!stale("\"FALSE\""));
    assert!(!stale("yes"));
    assert!(!parse_challenge("Digest realm=r, nonce=n").unwrap().stale);
}

#[test]
fn quoted_values_keep_escapes_and_commas() {
    let ch = parse_challenge(r#"Digest realm="say \"hi\", \\ok", nonce="a,b""#).unwrap();
    assert_eq!(ch.realm, r#"say "hi", \ok"#);
    assert_eq!(ch.nonce, "a,b");
}

#[test]
fn duplicates_first_wins_and_unknown_ignored() {
    let ch =
        parse_challenge("Digest realm=first, foo=\"bar\", nonce=n, realm=second, x=y").unwrap();
    assert_eq!(ch.realm, "first");
}

#[test]
fn missing_required_params() {
    assert_eq!(
        parse_challenge("Digest realm=\"r\""),
        Err(DigestError::MissingParam("nonce"))
    );
    assert_eq!(
        parse_challenge("Digest nonce=\"n\""),
        Err(DigestError::MissingParam("realm"))
    );
    assert_eq!(
        parse_challenge("Digest"),
        Err(DigestError::MissingParam("realm"))
    );
}

#[test]
fn other_schemes_are_not_digest() {
    assert_eq!(
        parse_challenge("Basic realm=\"x\""),
        Err(DigestError::NotDigest)
    );
    assert_eq!(
        parse_challenge("Bearer realm=\"x\""),
        Err(DigestError::NotDigest)
    );
    assert_eq!(
        parse_challenge("Digestive realm=x"),
        Err(DigestError::NotDigest)
    );
}

#[test]
fn syntax_errors_are_malformed() {
    let bad = [
        "",
        "   ",
        "Digest realm=\"unterminated, nonce=n",
        "Digest realm=\"r\" nonce=\"n\"",
        "Digest realm, nonce=n",
        "Digest realm=, nonce=n",
        "Digest =r, nonce=n",
        "Digest realm=\"a\rb\", nonce=n",
        "Digest realm=\"a\\",
        "Digest\"realm=r",
        "Digest realm=r,\nnonce=n",
        "Digest realm=r, nonce=é",
    ];
    for input in bad {
        assert!(
            matches!(parse_challenge(input), Err(DigestError::Malformed(_))),
            "{input:?} gave {:?}",
            parse_challenge(input)
        );
    }
}

#[test]
fn error_messages_stay_short() {
    let huge = format!("Digest realm=\"{}", "x".repeat(10_000));
    let err = parse_challenge(&huge).unwrap_err();
    assert!(err.to_string().len() < 150, "{err}");
    let ch = challenge("r", "n", Some(&"z".repeat(10_000)), &["auth"]);
    let err = authorization(&ch, &alice(1, b"")).unwrap_err();
    assert!(err.to_string().len() < 150, "{err}");
}

#[test]
fn ten_kilobytes_of_garbage_do_not_panic() {
    // Deterministic pseudo-random text biased toward the parser's special characters.
    let alphabet: Vec<char> = "Digest =,\"\\ \tabc\r\né\u{0}".chars().collect();
    let mut state: u32 = 0x2545_f491;
    let mut next = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        state >> 8
    };
    for round in 0..20 {
        let mut text = String::from(if round % 2 == 0 { "Digest " } else { "" });
        for _ in 0..10_240 {
            let pick = usize::try_from(next()).unwrap_or(0) % alphabet.len();
            text.push(alphabet.get(pick).copied().unwrap_or('x'));
        }
        assert!(parse_challenge(&text).is_err());
    }
    for filler in ["\"", "\\", ",", "a=", "=", "Digest "] {
        let _ = parse_challenge(&filler.repeat(10_240 / filler.len()));
    }
}

#[test]
fn every_prefix_parses_without_panic() {
    let full = "Digest realm=\"é\\\"x\", nonce=n, qop=\"auth\", stale=true, opaque=\"ö\"";
    for (i, _) in full.char_indices() {
        let _ = parse_challenge(full.get(..i).unwrap_or_default());
    }
    assert!(parse_challenge(full).is_ok());
}

#[test]
fn errors_display() {
    assert_eq!(
        DigestError::MissingParam("nonce").to_string(),
        "Digest challenge lacks required parameter `nonce`"
    );
    assert_eq!(
        DigestError::NotDigest.to_string(),
        "authentication scheme is not Digest"
    );
}
