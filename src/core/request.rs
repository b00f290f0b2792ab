//! Writes REGISTER requests (RFC 3261 §10.2) as bytes.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::options::{Settings, Transport};
use super::uri::{Host, Uri};

/// Methods our contact accepts, advertised like SIP.js does.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, MESSAGE";

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
}

/// Our contact URI at `local` (`;ob` added when RFC 5626 outbound is in use).
pub fn contact_uri(settings: &Settings, local: SocketAddr, outbound: bool) -> String {
    let host = match local.ip() {
        std::net::IpAddr::V4(a) => Host::V4(a),
        std::net::IpAddr::V6(a) => Host::V6(a),
    };
    let mut params = Vec::new();
    if settings.transport != Transport::Udp {
        params.push((
            "transport".to_owned(),
            Some(settings.transport.as_str().to_owned()),
        ));
    }
    if outbound {
        params.push(("ob".to_owned(), None));
    }
    Uri {
        scheme: settings.ua.aor.scheme,
        user: settings.ua.aor.user.clone(),
        password: None,
        host,
        port: Some(local.port()),
        params,
        headers: Vec::new(),
    }
    .to_string()
}

/// Writes `s` as a quoted-string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn name_addr(display: Option<&str>, uri: &str) -> String {
    match display {
        Some(d) => format!("{} <{uri}>", quoted(d)),
        None => format!("<{uri}>"),
    }
}

/// Our Contact value with its parameters and `expires`.
fn our_contact(p: &RequestParts, expires: u32) -> String {
    let s = p.settings;
    let mut c = format!("<{}>", p.contact_uri);
    if let (Some(id), Some(urn), true) = (s.reg_id, &s.instance_urn, p.outbound) {
        let _ = write!(c, ";reg-id={id};+sip.instance=\"<{urn}>\"");
    } else if let Some(urn) = &s.instance_urn {
        let _ = write!(c, ";+sip.instance=\"<{urn}>\"");
    }
    for param in &s.extra_contact_params {
        c.push(';');
        c.push_str(param);
    }
    let _ = write!(c, ";expires={expires}");
    c
}

fn sent_by(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

fn route_value(proxy: &Uri) -> String {
    let mut uri = proxy.clone();
    if uri.param("lr").is_none() {
        uri.params.push(("lr".to_owned(), None));
    }
    format!("<{uri}>")
}

/// Builds the complete REGISTER message.
pub fn build_register(p: &RequestParts) -> Vec<u8> {
    let s = p.settings;
    let mut m = String::with_capacity(768);
    let _ = write!(m, "REGISTER {} SIP/2.0\r\n", s.registrar_text);
    let _ = write!(
        m,
        "Via: SIP/2.0/{} {};branch={};rport\r\n",
        s.transport.via_token(),
        sent_by(p.local),
        p.branch
    );
    m.push_str("Max-Forwards: 70\r\n");
    if let Some(proxy) = &s.ua.outbound_proxy {
        let _ = write!(m, "Route: {}\r\n", route_value(proxy));
    }
    let _ = write!(
        m,
        "To: {}\r\n",
        name_addr(s.to_display_name.as_deref(), &s.to_text)
    );
    let _ = write!(
        m,
        "From: {};tag={}\r\n",
        name_addr(s.from_display_name.as_deref(), &s.aor_text),
        p.from_tag
    );
    let _ = write!(m, "Call-ID: {}\r\n", p.call_id);
    let _ = write!(m, "CSeq: {} REGISTER\r\n", p.cseq);
    let expires = match p.contact {
        ContactSpec::Bind(e) => {
            let _ = write!(m, "Contact: {}\r\n", our_contact(p, e));
            e
        }
        ContactSpec::Remove => {
            let _ = write!(m, "Contact: {}\r\n", our_contact(p, 0));
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
    let _ = write!(m, "Allow: {ALLOW}\r\n");
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
    let _ = write!(m, "User-Agent: {}\r\n", s.ua.user_agent);
    for h in &s.extra_headers {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m.into_bytes()
}
