//! Writes REGISTER requests (RFC 3261 §10.2) as bytes.

use std::net::{IpAddr, SocketAddr};

use super::lexer::push_quoted;
use super::options::{Settings, Transport};
use super::uri::{Decimal, Host, Scheme, Uri};

/// What the Contact header asks of the registrar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactSpec {
    /// Register (or refresh) our contact for this many seconds.
    Bind(u32),
    /// Remove our contact (`;expires=0`).
    Remove,
    /// Remove every binding of the AOR (`Contact: *`).
    RemoveAll,
}

/// Which credentials header a cached answer goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthHeader {
    /// Answer to a 401 `WWW-Authenticate`.
    Authorization,
    /// Answer to a 407 `Proxy-Authenticate`.
    ProxyAuthorization,
}

impl AuthHeader {
    /// The header name.
    pub fn name(self) -> &'static str {
        match self {
            AuthHeader::Authorization => "Authorization",
            AuthHeader::ProxyAuthorization => "Proxy-Authorization",
        }
    }
}

/// The varying parts of one REGISTER.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// Validated options.
    pub settings: &'a Settings,
    /// Local address of the socket the request leaves from (Via sent-by).
    pub local: SocketAddr,
    /// Address written in our Contact: `local`, or the public address the
    /// registrar reported (contact rewrite).
    pub contact_addr: SocketAddr,
    /// RFC 5626 outbound in use: `reg-id`, `;ob` and `Supported: outbound`.
    pub outbound: bool,
    /// Via branch (with the magic cookie).
    pub branch: &'a str,
    /// Call-ID (fixed for the registerer's life).
    pub call_id: &'a str,
    /// From tag (fixed for the registerer's life).
    pub from_tag: &'a str,
    /// CSeq number.
    pub cseq: u32,
    /// What to do with our contact.
    pub contact: ContactSpec,
    /// Earlier contact URIs of ours to remove in the same request (network change).
    pub stale_contacts: &'a [String],
    /// Credentials headers (name, value).
    pub auth: &'a [(AuthHeader, String)],
    /// Our contact URI for `local` (see [`contact_uri`]).
    pub contact_uri: &'a str,
    /// Headers of this request only (after the registerer's extra headers).
    pub request_headers: &'a [String],
}

/// Our contact URI at `local` with the user part `user` (`;ob` added when
/// RFC 5626 outbound is in use).
pub fn contact_uri(
    settings: &Settings,
    user: Option<&str>,
    local: SocketAddr,
    outbound: bool,
) -> String {
    let mut out = String::with_capacity(48 + user.map_or(0, str::len));
    // What `Uri`'s Display gives for this URI, written straight into the buffer.
    out.push_str(match settings.ua.aor_scheme() {
        Scheme::Sip => "sip:",
        Scheme::Sips => "sips:",
    });
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    push_host_port(&mut out, local);
    if settings.transport != Transport::Udp {
        out.push_str(";transport=");
        out.push_str(settings.transport.as_str());
    }
    if outbound {
        out.push_str(";ob");
    }
    out
}

/// Appends `host:port`, an IPv6 address in brackets.
fn push_host_port(out: &mut String, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(a) => Host::V4(a).push_to(out),
        IpAddr::V6(a) => Host::V6(a).push_to(out),
    }
    out.push(':');
    push_decimal(out, u64::from(addr.port()));
}

fn push_decimal(out: &mut String, n: u64) {
    out.push_str(Decimal::new(n).as_str());
}

/// Appends a name-addr: `"display" <uri>` or `<uri>`.
fn push_name_addr(out: &mut String, display: Option<&str>, uri: &str) {
    if let Some(d) = display {
        push_quoted(out, d);
        out.push(' ');
    }
    out.push('<');
    out.push_str(uri);
    out.push('>');
}

/// Appends our Contact value with its parameters and `expires`.
fn push_our_contact(out: &mut String, p: &RequestParts, expires: u32) {
    let s = p.settings;
    let x = s.extras();
    out.push('<');
    out.push_str(p.contact_uri);
    out.push('>');
    if let (Some(id), Some(urn), true) = (s.reg_id, &x.instance_urn, p.outbound) {
        out.push_str(";reg-id=");
        push_decimal(out, u64::from(id));
        push_instance(out, urn);
    } else if let Some(urn) = &x.instance_urn {
        push_instance(out, urn);
    }
    for param in &x.extra_contact_params {
        out.push(';');
        out.push_str(param);
    }
    out.push_str(";expires=");
    push_decimal(out, u64::from(expires));
}

fn push_instance(out: &mut String, urn: &str) {
    out.push_str(";+sip.instance=\"<");
    out.push_str(urn);
    out.push_str(">\"");
}

/// Appends the Route value for the outbound proxy (`;lr` added if missing).
fn push_route(out: &mut String, proxy: &Uri) {
    out.push('<');
    if proxy.param("lr").is_some() {
        proxy.push_to(out);
    } else if proxy.headers.is_empty() {
        // Parameters are printed last, so `lr` simply follows the URI.
        proxy.push_to(out);
        out.push_str(";lr");
    } else {
        let mut uri = proxy.clone();
        uri.params.push(("lr".to_owned(), None));
        uri.push_to(out);
    }
    out.push('>');
}

/// Room left in a request written without credentials for the
/// Authorization header of the request that answers its challenge (an MD5
/// or SHA-256 answer with a nonce of up to some 60 characters), so that the
/// answer is written into the first request's buffer.
pub const ANSWER_ROOM: usize = 384;

/// Builds the complete REGISTER message, written into one buffer sized for it.
pub fn build_register(p: &RequestParts) -> Vec<u8> {
    build_register_into(p, Vec::new())
}

/// [`build_register`] into `room` (emptied) when it is large enough, else
/// into a new buffer. A request without credentials over UDP (whose bytes
/// are kept for retransmission) leaves [`ANSWER_ROOM`] more, for the answer
/// to its challenge.
pub fn build_register_into(p: &RequestParts, room: Vec<u8>) -> Vec<u8> {
    let s = p.settings;
    let x = s.extras();
    let variable = s.registrar_text.len()
        + p.branch.len()
        + s.to_text.len()
        + x.to_display_name.as_ref().map_or(0, |d| d.len() * 2 + 3)
        + s.aor_text().len()
        + x.from_display_name.as_ref().map_or(0, |d| d.len() * 2 + 3)
        + p.from_tag.len()
        + p.call_id.len()
        + p.contact_uri.len()
        + x.instance_urn.as_ref().map_or(0, |u| u.len() + 40)
        + x.extra_contact_params
            .iter()
            .map(|c| c.len() + 1)
            .sum::<usize>()
        + p.stale_contacts.iter().map(|c| c.len() + 24).sum::<usize>()
        + p.auth.iter().map(|(_, v)| v.len() + 24).sum::<usize>()
        + s.ua.extras().user_agent.len()
        + s.ua.extras().allow.len()
        + x.extra_headers.iter().map(|h| h.len() + 2).sum::<usize>()
        + p.request_headers.iter().map(|h| h.len() + 2).sum::<usize>()
        + s.ua.extras().outbound_proxy.as_ref().map_or(0, |_| 128);
    // The fixed text (names, Allow, Supported, numbers, addresses) fits in 400.
    let need = variable + 400;
    let mut room = room;
    room.clear();
    // Over a stream the bytes are handed over whole and nothing is kept to
    // write the answer into: no room is left for it there.
    let answer_room = if p.auth.is_empty() && !s.transport.reliable() {
        ANSWER_ROOM
    } else {
        0
    };
    let mut m = match String::from_utf8(room) {
        Ok(room) if room.capacity() >= need => room,
        _ => String::with_capacity(need + answer_room),
    };
    m.push_str("REGISTER ");
    m.push_str(&s.registrar_text);
    m.push_str(" SIP/2.0\r\nVia: SIP/2.0/");
    m.push_str(s.transport.via_token());
    m.push(' ');
    push_host_port(&mut m, p.local);
    m.push_str(";branch=");
    m.push_str(p.branch);
    m.push_str(";rport\r\nMax-Forwards: 70\r\n");
    if let Some(proxy) = &s.ua.extras().outbound_proxy {
        m.push_str("Route: ");
        push_route(&mut m, proxy);
        m.push_str("\r\n");
    }
    m.push_str("To: ");
    push_name_addr(&mut m, x.to_display_name.as_deref(), &s.to_text);
    m.push_str("\r\nFrom: ");
    push_name_addr(&mut m, x.from_display_name.as_deref(), s.aor_text());
    m.push_str(";tag=");
    m.push_str(p.from_tag);
    m.push_str("\r\nCall-ID: ");
    m.push_str(p.call_id);
    m.push_str("\r\nCSeq: ");
    push_decimal(&mut m, u64::from(p.cseq));
    m.push_str(" REGISTER\r\n");
    let expires = match p.contact {
        ContactSpec::Bind(e) => e,
        ContactSpec::Remove | ContactSpec::RemoveAll => 0,
    };
    if p.contact == ContactSpec::RemoveAll {
        m.push_str("Contact: *\r\n");
    } else {
        m.push_str("Contact: ");
        push_our_contact(&mut m, p, expires);
        m.push_str("\r\n");
        for old in p.stale_contacts {
            m.push_str("Contact: <");
            m.push_str(old);
            m.push_str(">;expires=0\r\n");
        }
    }
    m.push_str("Expires: ");
    push_decimal(&mut m, u64::from(expires));
    m.push_str("\r\n");
    for (kind, value) in p.auth {
        m.push_str(kind.name());
        m.push_str(": ");
        m.push_str(value);
        m.push_str("\r\n");
    }
    m.push_str("Allow: ");
    m.push_str(&s.ua.extras().allow);
    m.push_str("\r\n");
    let supported: &[&str] = match (s.path_gruu, p.outbound) {
        (true, true) => &["path", "gruu", "outbound"],
        (true, false) => &["path", "gruu"],
        (false, true) => &["outbound"],
        (false, false) => &[],
    };
    if let Some((first, rest)) = supported.split_first() {
        m.push_str("Supported: ");
        m.push_str(first);
        for tag in rest {
            m.push_str(", ");
            m.push_str(tag);
        }
        m.push_str("\r\n");
    }
    m.push_str("User-Agent: ");
    m.push_str(&s.ua.extras().user_agent);
    m.push_str("\r\n");
    for h in x.extra_headers.iter().chain(p.request_headers) {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::options::{RegistererOptions, UserAgentConfig};
    use std::fmt::Write as _;

    /// The REGISTER as the earlier `format!`-based writer produced it: the
    /// buffer-writing version must give the very same bytes.
    fn reference(p: &RequestParts) -> String {
        let s = p.settings;
        let x = s.extras();
        let q = |d: &str| {
            let mut out = String::new();
            push_quoted(&mut out, d);
            out
        };
        let na = |d: Option<&str>, uri: &str| match d {
            Some(d) => format!("{} <{uri}>", q(d)),
            None => format!("<{uri}>"),
        };
        let contact = |e: u32| {
            let mut c = format!("<{}>", p.contact_uri);
            if let (Some(id), Some(urn), true) = (s.reg_id, &x.instance_urn, p.outbound) {
                let _ = write!(c, ";reg-id={id};+sip.instance=\"<{urn}>\"");
            } else if let Some(urn) = &x.instance_urn {
                let _ = write!(c, ";+sip.instance=\"<{urn}>\"");
            }
            for param in &x.extra_contact_params {
                let _ = write!(c, ";{param}");
            }
            let _ = write!(c, ";expires={e}");
            c
        };
        let sent_by = match p.local {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let mut m = String::new();
        let _ = write!(m, "REGISTER {} SIP/2.0\r\n", s.registrar_text);
        let _ = write!(
            m,
            "Via: SIP/2.0/{} {sent_by};branch={};rport\r\nMax-Forwards: 70\r\n",
            s.transport.via_token(),
            p.branch
        );
        if let Some(proxy) = &s.ua.extras().outbound_proxy {
            let mut uri = proxy.clone();
            if uri.param("lr").is_none() {
                uri.params.push(("lr".to_owned(), None));
            }
            let _ = write!(m, "Route: <{uri}>\r\n");
        }
        let _ = write!(
            m,
            "To: {}\r\n",
            na(x.to_display_name.as_deref(), &s.to_text)
        );
        let _ = write!(
            m,
            "From: {};tag={}\r\n",
            na(x.from_display_name.as_deref(), s.aor_text()),
            p.from_tag
        );
        let _ = write!(m, "Call-ID: {}\r\nCSeq: {} REGISTER\r\n", p.call_id, p.cseq);
        let expires = match p.contact {
            ContactSpec::Bind(e) => {
                let _ = write!(m, "Contact: {}\r\n", contact(e));
                e
            }
            ContactSpec::Remove => {
                let _ = write!(m, "Contact: {}\r\n", contact(0));
                0
            }
            ContactSpec::RemoveAll => {
                m.push_str("Contact: *\r\n");
                0
            }
        };
        if p.contact != ContactSpec::RemoveAll {
            for old in p.stale_contacts {
                let _ = write!(m, "Contact: <{old}>;expires=0\r\n");
            }
        }
        let _ = write!(m, "Expires: {expires}\r\n");
        for (kind, value) in p.auth {
            let _ = write!(m, "{}: {}\r\n", kind.name(), value);
        }
        let _ = write!(m, "Allow: {}\r\n", s.ua.extras().allow);
        let mut supported = Vec::new();
        if s.path_gruu {
            supported.extend(["path", "gruu"]);
        }
        if p.outbound {
            supported.push("outbound");
        }
        if !supported.is_empty() {
            let _ = write!(m, "Supported: {}\r\n", supported.join(", "));
        }
        let _ = write!(m, "User-Agent: {}\r\n", s.ua.extras().user_agent);
        for h in x.extra_headers.iter().chain(p.request_headers) {
            let _ = write!(m, "{h}\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }

    #[test]
    fn written_requests_match_the_reference_writer() {
        let mut plain = UserAgentConfig::new("sip:alice@example.com").unwrap();
        plain.set_password(Some("pw")).unwrap();
        let mut rich = UserAgentConfig::new("sips:bob%20b@[2001:db8::1]:5061").unwrap();
        rich.set_outbound_proxy(Some("sip:proxy.example.com;transport=tcp?h=v"))
            .unwrap();
        rich.transport = Transport::Tcp;
        let mut lr = UserAgentConfig::new("sip:carol@10.1.2.3").unwrap();
        lr.set_outbound_proxy(Some("sip:10.0.0.1:5070;lr")).unwrap();
        let full = RegistererOptions {
            registrar: Some("sip:registrar.example.com:5080".into()),
            extra_headers: vec!["X-A: 1".into(), "X-B: two".into()],
            extra_contact_params: vec!["p".into(), "q=1".into()],
            instance_id: Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into()),
            reg_id: Some(3),
            from_display_name: Some("Al \"the\" \\ Ice".into()),
            to_display_name: Some("Zoë".into()),
            path_gruu: true,
            ..Default::default()
        };
        let bare = RegistererOptions::default();
        let stale = ["sip:alice@192.0.2.1:5060".to_owned()];
        let once = ["X-Once: 1".to_owned(), "X-Trace: abc".to_owned()];
        let auth = [
            (
                AuthHeader::Authorization,
                "Digest username=\"a\"".to_owned(),
            ),
            (AuthHeader::ProxyAuthorization, "Digest x=y".to_owned()),
        ];
        let locals: [SocketAddr; 2] = [
            "127.0.0.1:40000".parse().unwrap(),
            "[::1]:5062".parse().unwrap(),
        ];
        let mut checked = 0;
        for ua in [plain, rich, lr] {
            for opts in [&bare, &full] {
                let Ok(settings) = opts.validate(&ua) else {
                    continue;
                };
                for local in locals {
                    for outbound in [false, true] {
                        for contact in [
                            ContactSpec::Bind(3600),
                            ContactSpec::Remove,
                            ContactSpec::RemoveAll,
                        ] {
                            let uri = contact_uri(
                                &settings,
                                settings.ua.default_contact_user(),
                                local,
                                outbound,
                            );
                            let parts = RequestParts {
                                settings: &settings,
                                local,
                                contact_addr: local,
                                outbound,
                                branch: "z9hG4bKabc",
                                call_id: "cid",
                                from_tag: "tag",
                                cseq: 4_000_000_000,
                                contact,
                                stale_contacts: if outbound { &stale } else { &[] },
                                auth: if outbound { &auth } else { &[] },
                                contact_uri: &uri,
                                request_headers: if outbound { &once } else { &[] },
                            };
                            let got = String::from_utf8(build_register(&parts)).unwrap();
                            assert_eq!(got, reference(&parts));
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 72);
    }

    #[test]
    fn contact_uri_matches_the_uri_printer() {
        let ua = UserAgentConfig::new("sip:a%41b@example.com").unwrap();
        let settings = RegistererOptions::default().validate(&ua).unwrap();
        for local in ["127.0.0.1:1", "[fe80::1]:65535", "0.0.0.0:0"] {
            let local: SocketAddr = local.parse().unwrap();
            for outbound in [false, true] {
                let got = contact_uri(&settings, Some("a%41b"), local, outbound);
                let parsed = Uri::parse(&got).unwrap();
                assert_eq!(parsed.to_string(), got);
                assert_eq!(parsed.port, Some(local.port()));
                assert_eq!(parsed.param("ob").is_some(), outbound);
            }
        }
    }
}
