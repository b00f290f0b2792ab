use super::*;

fn ua() -> UserAgentConfig {
    UserAgentConfig::new("sip:alice@example.com").unwrap()
}

fn invalid(o: RegistererOptions) -> String {
    match o.validate(&ua()) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn defaults_follow_sipjs() {
    let s = RegistererOptions::default().validate(&ua()).unwrap();
    assert_eq!(s.expires, 600);
    assert_eq!(s.refresh_frequency, 99);
    assert_eq!(&*s.registrar_text, "sip:example.com");
    assert_eq!(&*s.to_text, "sip:alice@example.com");
    assert_eq!(s.transport, Transport::Udp);
    assert_eq!(s.target_port, 5060);
    assert!(s.retry().enabled);
}

#[test]
fn expires_zero_and_frequency_out_of_range_are_errors() {
    assert!(invalid(RegistererOptions {
        expires: 0,
        ..Default::default()
    })
    .contains("expires"));
    for f in [0, 49, 100, 1000] {
        let m = invalid(RegistererOptions {
            refresh_frequency: f,
            ..Default::default()
        });
        assert!(m.contains("refresh_frequency"), "{m}");
    }
    for f in [50, 75, 99] {
        RegistererOptions {
            refresh_frequency: f,
            ..Default::default()
        }
        .validate(&ua())
        .unwrap();
    }
}

#[test]
fn bad_uris_and_header_injection_are_errors() {
    invalid(RegistererOptions {
        registrar: Some("http://x".into()),
        ..Default::default()
    });
    invalid(RegistererOptions {
        registrar: Some("sip:bob@x".into()),
        ..Default::default()
    });
    invalid(RegistererOptions {
        registrar: Some("sip:x\r\nVia: evil".into()),
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_headers: vec!["X-A: b\r\nVia: c".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_headers: vec!["NoColon".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_headers: vec!["Call-ID: x".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_headers: vec!["Bad Name: x".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_contact_params: vec!["a;b".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        extra_contact_params: vec!["expires=5".into()],
        ..Default::default()
    });
    invalid(RegistererOptions {
        from_display_name: Some("A\nB".into()),
        ..Default::default()
    });
    invalid(RegistererOptions {
        call_id: Some("has space".into()),
        ..Default::default()
    });
    invalid(RegistererOptions {
        from_tag: Some("a;b".into()),
        ..Default::default()
    });
    let ok = RegistererOptions {
        extra_headers: vec!["X-Custom: 1".into()],
        extra_contact_params: vec!["ob".into(), "x-y=z".into(), "q=\"0.5\"".into()],
        ..Default::default()
    };
    ok.validate(&ua()).unwrap();
}

#[test]
fn contact_param_values_are_whole_quoted_strings_or_plain() {
    let mut o = RegistererOptions::default();
    for good in [
        "a",
        "a=b",
        "a=\"x y\"",
        "a=\"x\\\"y\"",
        "a=\"\"",
        "a=[::1]:5",
    ] {
        o.add_extra_contact_param(good)
            .unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
    // `"x\"` ends in an escaped quote: on the wire it would never close.
    for bad in [
        "a=\"x\\\"",
        "a=\"\\\"",
        "a=\"x\"y",
        "a=\"x",
        "a=",
        "=b",
        "a=<x>",
    ] {
        assert!(o.add_extra_contact_param(bad).is_err(), "accepted {bad:?}");
    }
    assert_eq!(o.extra_contact_params.len(), 6);
    o.validate(&ua()).unwrap();
}

#[test]
fn setters_check_their_value_as_validate_does() {
    let mut o = RegistererOptions::default();
    let msg = |r: Result<(), Error>| r.unwrap_err().to_string();
    assert!(msg(o.set_expires(0)).contains("expires must be at least 1"));
    assert!(msg(o.set_refresh_frequency(49)).contains("between 50 and 99, not 49"));
    assert!(o.set_refresh_frequency(100).is_err());
    assert!(msg(o.set_cseq(1 << 31)).contains("below 2^31"));
    assert!(o.add_extra_header("Contact: *").is_err());
    assert!(o.add_extra_header("X-A:  ").is_err());
    let day = Duration::from_secs(86_400);
    assert!(msg(o.set_retry_base(Duration::ZERO)).contains("retry_base"));
    assert!(msg(o.set_retry_max(day + Duration::from_millis(1))).contains("retry_max"));
    assert!(msg(o.set_retry_after_max(Duration::MAX)).contains("retry_after_max"));
    // Nothing refused was stored.
    assert_eq!(o, RegistererOptions::default());
    o.set_expires(u32::MAX).unwrap();
    o.set_refresh_frequency(50).unwrap();
    o.set_cseq((1 << 31) - 1).unwrap();
    o.add_extra_header("X-A: b").unwrap();
    o.set_retry_base(day).unwrap();
    o.set_retry_max(day).unwrap();
    o.set_retry_after_max(Duration::ZERO).unwrap();
    assert_eq!(
        (o.expires, o.refresh_frequency, o.cseq),
        (u32::MAX, 50, (1 << 31) - 1)
    );
    assert_eq!(o.extra_headers, ["X-A: b"]);
    o.validate(&ua()).unwrap();
    // A combination is still only checked by validate.
    o.set_retry_max(Duration::from_secs(1)).unwrap();
    assert!(invalid(o).contains("retry_max must be >= retry_base"));
}

#[test]
fn reg_id_needs_instance_id_and_instance_id_must_be_uuid() {
    assert!(invalid(RegistererOptions {
        reg_id: Some(1),
        ..Default::default()
    })
    .contains("instance_id"));
    invalid(RegistererOptions {
        instance_id: Some("not-a-uuid".into()),
        ..Default::default()
    });
    let s = RegistererOptions {
        instance_id: Some("F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6".into()),
        reg_id: Some(1),
        ..Default::default()
    }
    .validate(&ua())
    .unwrap();
    assert_eq!(
        s.extras().instance_urn.as_deref(),
        Some("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    );
    let s = RegistererOptions {
        instance_id: Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".into()),
        ..Default::default()
    }
    .validate(&ua())
    .unwrap();
    assert!(s.extras().instance_urn.is_some());
}

#[test]
fn transport_comes_from_the_registrar_uri_then_the_user_agent() {
    let s = RegistererOptions {
        registrar: Some("sip:127.0.0.1:5070;transport=tcp".into()),
        ..Default::default()
    }
    .validate(&ua())
    .unwrap();
    assert_eq!(s.transport, Transport::Tcp);
    assert_eq!(s.target_port, 5070);
    let mut u = ua();
    u.transport = Transport::Tcp;
    u.set_outbound_proxy(Some("sip:[::1]:5080")).unwrap();
    let s = RegistererOptions::default().validate(&u).unwrap();
    assert_eq!(s.transport, Transport::Tcp);
    assert_eq!(s.target_host, Host::V6("::1".parse().unwrap()));
    assert_eq!(s.target_port, 5080);
}

#[test]
fn user_agent_settings_are_checked() {
    let mut u = ua();
    assert!(UserAgentConfig::new("sip:example.com").is_err());
    assert!(UserAgentConfig::new("not a uri").is_err());
    assert!(u.set_user_agent("x\r\ny").is_err());
    assert!(u
        .set_timers(
            Duration::ZERO,
            Duration::from_secs(4),
            Duration::from_secs(5)
        )
        .is_err());
    assert!(u
        .set_timers(
            Duration::from_secs(5),
            Duration::from_secs(4),
            Duration::from_secs(5)
        )
        .is_err());
    u.set_local_address(Some("127.0.0.1")).unwrap();
    assert_eq!(
        u.extras().local_address,
        Some("127.0.0.1:0".parse().unwrap())
    );
    u.set_local_address(Some("[::1]:5099")).unwrap();
    u.set_local_address(Some("[::1]")).unwrap();
    assert!(u.set_local_address(Some("[::1")).is_err());
    let e = UserAgentConfig::new("sip:alice:Zq9Secret@")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("Zq9Secret"), "{e}");
    let e = UserAgentConfig::new("sip:alice:Zq9Secret@example.com")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("Zq9Secret") && e.contains("password"), "{e}");
    assert!(u.set_local_address(Some("localhost")).is_err());
    assert_eq!(u.effective_auth_username(), "alice");
    u.set_auth_username(Some("a1")).unwrap();
    assert_eq!(u.effective_auth_username(), "a1");
    u.set_password(Some("pw")).unwrap();
    assert!(!format!("{u:?}").contains("pw\""));
    assert!(Transport::parse("sctp").is_err());
    for (text, t) in [
        ("udp", Transport::Udp),
        ("TCP", Transport::Tcp),
        ("Tls", Transport::Tls),
        ("wS", Transport::Ws),
        ("WSS", Transport::Wss),
    ] {
        assert_eq!(Transport::parse(text).unwrap(), t);
    }
    for bad in ["", "ud", "udpx", "w", "wss "] {
        assert!(Transport::parse(bad).is_err(), "{bad:?}");
    }
    assert!(RetryPolicy {
        base: Duration::ZERO,
        ..Default::default()
    }
    .validate()
    .is_err());
}

#[test]
fn contact_user_allow_and_ws_origin_are_checked() {
    let mut u = ua();
    assert_eq!(u.default_contact_user(), Some("alice"));
    u.set_contact_user(Some("desk-1.a%41;x=y")).unwrap();
    assert_eq!(u.default_contact_user(), Some("desk-1.a%41;x=y"));
    for bad in [
        "",
        "a@b",
        "a b",
        "a:b",
        "a%4",
        "a\r\nVia: x",
        &"x".repeat(129),
    ] {
        assert!(u.set_contact_user(Some(bad)).is_err(), "{bad:?}");
    }
    assert_eq!(
        u.extras().contact_user.as_deref(),
        Some("desk-1.a%41;x=y"),
        "a refused value changes nothing"
    );
    u.set_contact_user(None).unwrap();
    assert_eq!(u.default_contact_user(), Some("alice"));

    assert_eq!(u.extras().allow, DEFAULT_ALLOW);
    u.set_allow("INVITE,ACK ,  BYE,CANCEL, OPTIONS,MESSAGE")
        .unwrap();
    assert_eq!(
        u.extras().allow,
        "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE"
    );
    for bad in ["", "INVITE,", "IN VITE", "INVITE\r\nX: y", "A,,B"] {
        assert!(u.set_allow(bad).is_err(), "{bad:?}");
    }

    u.set_ws_origin(Some("https://app.example.com:8443"))
        .unwrap();
    u.set_ws_origin(Some("null")).unwrap();
    for bad in [
        "",
        "app.example.com",
        "http://",
        "http://a b",
        "http://a\r\nX: y",
        "://x",
    ] {
        assert!(u.set_ws_origin(Some(bad)).is_err(), "{bad:?}");
    }
    u.set_ws_origin(None).unwrap();
    assert_eq!(u.extras().ws_origin, None);
}

#[test]
fn the_recovery_policy_comes_back_as_set_and_turning_it_off_boxes_nothing() {
    let mut o = RegistererOptions::default();
    o.retry.enabled = false;
    let s = o.validate(&ua()).unwrap();
    assert!(s.extras.is_none());
    assert_eq!(
        s.retry(),
        RetryPolicy {
            enabled: false,
            ..RetryPolicy::DEFAULT
        }
    );
    o.set_retry_base(Duration::from_secs(7)).unwrap();
    let s = o.validate(&ua()).unwrap();
    assert!(s.extras.is_some());
    assert_eq!(
        (s.retry().enabled, s.retry().base),
        (false, Duration::from_secs(7))
    );
}

#[test]
fn the_aor_text_is_the_parsed_uris_text() {
    // The AOR is read in place; its text must be what the parsed URI writes,
    // and what is refused must be refused as the parsed URI refuses it.
    for given in [
        "sip:alice@example.com",
        "SIP:Alice@Example.COM",
        "sip:bob@127.0.0.1:05080",
        "sips:carol@[0:0::1]:5061;transport=tcp;lr",
        "sip:dave@host?",
        "sip:eve@host?subject=hi",
        "sip:frank@host;maddr=127.0.0.1?",
        "  sip:grace@host  ",
        "sip:host",
        "sip:heidi:secret@host",
        "sip:ivan@",
        "tel:+15551234",
        "sip:judy@ho\u{7}st",
    ] {
        let owned = checks::parse_uri("aor", given).and_then(|u| {
            if u.user.is_none() || !u.headers.is_empty() {
                Err(Error::invalid("refused"))
            } else {
                Ok(u.text())
            }
        });
        let ua = UserAgentConfig::new(given);
        match (owned, ua) {
            (Ok(text), Ok(ua)) => assert_eq!(&**ua.aor_text(), text, "{given:?}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "{given:?}: parsed {a:?}, in place {:?}",
                b.map(|u| u.aor_text().clone())
            ),
        }
    }
}

#[test]
fn the_aor_is_kept_as_text_and_its_parts_read_from_it() {
    use crate::core::uri::Scheme;
    for (given, user, scheme, host, port) in [
        (
            "sip:alice@example.com",
            "alice",
            Scheme::Sip,
            "example.com",
            None,
        ),
        (
            "SIPS:first.last%40x@[::1]:5061;transport=tcp",
            "first.last%40x",
            Scheme::Sips,
            "[::1]",
            Some(5061),
        ),
        (
            "sip:bob@127.0.0.1:5080",
            "bob",
            Scheme::Sip,
            "127.0.0.1",
            Some(5080),
        ),
    ] {
        let ua = UserAgentConfig::new(given).unwrap();
        assert_eq!(ua.aor_user(), user, "{given}");
        assert_eq!(ua.aor_scheme(), scheme, "{given}");
        let aor = ua.aor().unwrap();
        assert_eq!(
            (aor.host_text, aor.port, aor.user),
            (host, port, Some(user)),
            "{given}"
        );
        // The digest username and the Contact's user default to the AOR's user.
        assert_eq!(ua.effective_auth_username(), user);
        assert_eq!(ua.default_contact_user(), Some(user));
        // The registrar defaults to the AOR's host and port, with its scheme.
        let s = RegistererOptions::default().validate(&ua).unwrap();
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        let scheme_text = if scheme == Scheme::Sips {
            "sips"
        } else {
            "sip"
        };
        assert_eq!(
            &*s.registrar_text,
            format!("{scheme_text}:{host}{port_text}"),
            "{given}"
        );
        assert_eq!(&**s.aor_text(), &**ua.aor_text());
    }
}

#[test]
fn a_registrar_named_again_is_parsed_once_and_gives_the_same_settings() {
    let with = |r: &str| RegistererOptions {
        registrar: Some(r.into()),
        ..Default::default()
    };
    let first = with("sip:registrar.example.com:5070;transport=tcp")
        .validate(&ua())
        .unwrap();
    let again = with("sip:registrar.example.com:5070;transport=tcp")
        .validate(&ua())
        .unwrap();
    assert_eq!(
        &*first.registrar_text,
        "sip:registrar.example.com:5070;transport=tcp"
    );
    assert!(Arc::ptr_eq(&first.registrar_text, &again.registrar_text));
    for s in [&first, &again] {
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!((s.target_port, s.target_port_given), (5070, true));
        assert_eq!(s.target_host, Host::Domain("registrar.example.com".into()));
    }
    // Another text is parsed for itself; a bad one is an error each time
    // and leaves the last good one in place.
    let other = with("sip:127.0.0.1").validate(&ua()).unwrap();
    assert_eq!(
        (&*other.registrar_text, other.transport, other.target_port),
        ("sip:127.0.0.1", Transport::Udp, 5060)
    );
    for _ in 0..2 {
        assert!(invalid(with("sip:bob@127.0.0.1")).contains("user part"));
        assert!(invalid(with("sip:[::1")).contains("registrar"));
    }
    let back = with("sip:127.0.0.1").validate(&ua()).unwrap();
    assert!(Arc::ptr_eq(&back.registrar_text, &other.registrar_text));
    assert_eq!(back.target_host, Host::V4(std::net::Ipv4Addr::LOCALHOST));
}
