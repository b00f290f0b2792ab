//! SIP and SIPS URIs (RFC 3261 §19.1): parsing, printing and the §19.1.4
//! equivalence rules.
//!
//! Components are stored as written (including `%XX` escapes) so that a
//! parsed URI prints back to the same text; unescaping happens only when
//! comparing.

use std::error::Error;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (secure transport required on every hop).
    Sips,
}

impl Scheme {
    /// Lower-case scheme name without the colon.
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        }
    }
}

/// The host part of a URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A host name, as written (case preserved).
    Domain(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets inside URIs).
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::V4(addr) => f.write_str(V4Text::new(*addr).as_str()),
            Host::V6(addr) => write!(f, "[{addr}]"),
        }
    }
}

impl Host {
    /// Appends the host as [`Display`](fmt::Display) writes it.
    pub(crate) fn push_to(&self, out: &mut String) {
        match self {
            Host::Domain(name) => out.push_str(name),
            Host::V4(addr) => out.push_str(V4Text::new(*addr).as_str()),
            Host::V6(addr) => {
                use std::fmt::Write as _;
                let _ = write!(out, "[{addr}]");
            }
        }
    }
}

/// Decimal digits of a number in a stack buffer: messages are written on
/// every registration, and this skips the formatting machinery.
pub(crate) struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    /// The digits of `n`.
    pub(crate) fn new(mut n: u64) -> Decimal {
        let mut buf = [b'0'; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            if let Some(d) = buf.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        Decimal { buf, start }
    }

    /// The digits as text.
    pub(crate) fn as_str(&self) -> &str {
        self.buf
            .get(self.start..)
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or_default()
    }
}

/// An IPv4 address in dotted-quad text, in a stack buffer.
pub(crate) struct V4Text {
    buf: [u8; 15],
    len: usize,
}

impl V4Text {
    /// The text of `addr`, as `Ipv4Addr`'s `Display` gives it.
    pub(crate) fn new(addr: Ipv4Addr) -> V4Text {
        let mut out = V4Text {
            buf: [0; 15],
            len: 0,
        };
        for (i, octet) in addr.octets().into_iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            if octet >= 100 {
                out.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                out.push(b'0' + octet / 10 % 10);
            }
            out.push(b'0' + octet % 10);
        }
        out
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// The address as text.
    pub(crate) fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or_default()
    }
}

impl FromStr for Host {
    type Err = UriError;

    /// Parses a host name, an IPv4 address or a bracketed IPv6 reference.
    fn from_str(s: &str) -> Result<Host, UriError> {
        parse_host(s)
    }
}

/// A parsed `sip:` or `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// User part as written (may contain `%XX` escapes), e.g. `first.last`.
    pub user: Option<String>,
    /// Password as written; only printed when `user` is present.
    pub password: Option<String>,
    /// Host name or address.
    pub host: Host,
    /// Explicit port, if any (an absent port is not the same as 5060).
    pub port: Option<u16>,
    /// URI parameters (`;name=value` or `;flag`), in order, as written.
    pub params: Vec<(String, Option<String>)>,
    /// URI headers (`?name=value&...`), in order, as written.
    pub headers: Vec<(String, String)>,
}

/// Why a URI could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError(pub String);

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid SIP URI: {}", self.0)
    }
}

impl Error for UriError {}

/// Shorthand for building an error.
fn err(msg: impl Into<String>) -> UriError {
    UriError(msg.into())
}

/// Parameters that make two URIs differ when only one of them has it
/// (RFC 3261 §19.1.4).
const STRICT_PARAMS: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

/// Characters with a delimiting role; their escaped form is *not*
/// equivalent to the literal character when comparing.
const RESERVED: &[u8] = b";/?:@&=+$,";

/// Extra characters allowed in the user part (`user-unreserved`).
const USER_EXTRA: &[u8] = b"&=+$,;?/";
/// Extra characters allowed in the password.
const PASSWORD_EXTRA: &[u8] = b"&=+$,";
/// Extra characters allowed in parameter names and values (`param-unreserved`).
const PARAM_EXTRA: &[u8] = b"[]/:&+$";
/// Extra characters allowed in header names and values (`hnv-unreserved`).
const HEADER_EXTRA: &[u8] = b"[]/?:+$";

impl Uri {
    /// Parses a SIP or SIPS URI. The scheme is case-insensitive and
    /// surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (scheme, rest) = parse_scheme(s)?;
        // '@' may appear nowhere after the userinfo, so the first one ends it.
        let (user, password, rest) = match rest.split_once('@') {
            Some((info, rest)) => {
                let (user, password) = parse_userinfo(info)?;
                (Some(user), password, rest)
            }
            None => (None, None, rest),
        };
        let hostport_end = rest.find([';', '?']).unwrap_or(rest.len());
        let (hostport, rest) = split_at(rest, hostport_end);
        let (host, port) = parse_hostport(hostport)?;
        let (params, headers) = match rest.split_once('?') {
            Some((params, headers)) => (params, Some(headers)),
            None => (rest, None),
        };
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params: parse_uri_params(params)?,
            headers: headers.map(parse_headers).transpose()?.unwrap_or_default(),
        })
    }

    /// Looks up a URI parameter by name (case-insensitive): `None` if absent,
    /// `Some(None)` for a flag such as `lr`, `Some(Some(value))` otherwise.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The `transport` parameter's value, if present.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// Compares two URIs with the rules of RFC 3261 §19.1.4.
    ///
    /// Userinfo is case-sensitive, everything else case-insensitive, and
    /// `%XX` escapes of non-reserved characters equal the character itself.
    /// Header values are compared case-sensitively.
    pub fn equivalent(&self, other: &Uri) -> bool {
        self.scheme == other.scheme
            && opt_eq(&self.user, &other.user, same_exact)
            && opt_eq(&self.password, &other.password, same_exact)
            && hosts_equivalent(&self.host, &other.host)
            && self.port == other.port
            && params_equivalent(self, other)
            && headers_contained(&self.headers, &other.headers)
            && headers_contained(&other.headers, &self.headers)
    }

    /// `host[:port]`, with IPv6 addresses in brackets.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Plain `write_str`s: URIs are printed on every registration.
        self.write_parts(|part| f.write_str(part))
    }
}

impl Uri {
    /// Appends the URI as [`Display`](fmt::Display) writes it, without the
    /// formatting machinery.
    pub(crate) fn push_to(&self, out: &mut String) {
        let _ = self.write_parts(|part| {
            out.push_str(part);
            Ok(())
        });
    }

    /// The text of the URI, piece by piece, in order.
    fn write_parts(&self, mut put: impl FnMut(&str) -> fmt::Result) -> fmt::Result {
        put(self.scheme.as_str())?;
        put(":")?;
        if let Some(user) = &self.user {
            put(user)?;
            if let Some(password) = &self.password {
                put(":")?;
                put(password)?;
            }
            put("@")?;
        }
        match &self.host {
            Host::Domain(name) => put(name)?,
            Host::V4(addr) => put(V4Text::new(*addr).as_str())?,
            Host::V6(addr) => {
                let mut text = String::with_capacity(48);
                Host::V6(*addr).push_to(&mut text);
                put(&text)?;
            }
        }
        if let Some(port) = self.port {
            put(":")?;
            put(Decimal::new(u64::from(port)).as_str())?;
        }
        for (name, value) in &self.params {
            put(";")?;
            put(name)?;
            if let Some(value) = value {
                put("=")?;
                put(value)?;
            }
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            put(if i == 0 { "?" } else { "&" })?;
            put(name)?;
            put("=")?;
            put(value)?;
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = UriError;

    /// Same as [`Uri::parse`].
    fn from_str(s: &str) -> Result<Uri, UriError> {
        Uri::parse(s)
    }
}

/// Splits `s` at byte `i`, never panicking (an invalid index keeps all of `s`).
fn split_at(s: &str, i: usize) -> (&str, &str) {
    match (s.get(..i), s.get(i..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (s, ""),
    }
}

/// Reads the `sip:` / `sips:` prefix.
fn parse_scheme(s: &str) -> Result<(Scheme, &str), UriError> {
    let (name, rest) = s.split_once(':').ok_or_else(|| err("missing scheme"))?;
    if name.eq_ignore_ascii_case("sip") {
        Ok((Scheme::Sip, rest))
    } else if name.eq_ignore_ascii_case("sips") {
        Ok((Scheme::Sips, rest))
    } else {
        Err(err("scheme is not sip or sips"))
    }
}

/// Splits `user[:password]` and checks both character sets.
fn parse_userinfo(info: &str) -> Result<(String, Option<String>), UriError> {
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    if user.is_empty() {
        return Err(err("empty user"));
    }
    check_chars(user, USER_EXTRA, "user")?;
    if let Some(password) = password {
        check_chars(password, PASSWORD_EXTRA, "password")?;
    }
    Ok((user.to_owned(), password.map(str::to_owned)))
}

/// Parses `host[:port]`, where host may be a bracketed IPv6 reference.
pub(super) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let host_end = if s.starts_with('[') {
        s.find(']')
            .map(|i| i + 1)
            .ok_or_else(|| err("unbalanced '[' in host"))?
    } else {
        s.find(':').unwrap_or(s.len())
    };
    let (host, rest) = split_at(s, host_end);
    let host = parse_host(host)?;
    if rest.is_empty() {
        return Ok((host, None));
    }
    let port = rest
        .strip_prefix(':')
        .ok_or_else(|| err("unexpected text after host"))?;
    let port = parse_port(port).ok_or_else(|| err("invalid port"))?;
    Ok((host, Some(port)))
}

/// Parses a decimal port number (leading zeros allowed, at most 65535).
pub(super) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Checked arithmetic so that absurdly long digit strings cannot overflow.
    s.bytes().try_fold(0u16, |acc, b| {
        acc.checked_mul(10)?.checked_add(u16::from(b - b'0'))
    })
}

/// Parses a host name, IPv4 address or bracketed IPv6 address.
fn parse_host(s: &str) -> Result<Host, UriError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| err("unbalanced '[' in host"))?;
        return inner
            .parse()
            .map(Host::V6)
            .map_err(|_| err("invalid IPv6 address"));
    }
    if s.is_empty() {
        return Err(err("empty host"));
    }
    // Underscores are not in the RFC grammar but do occur in real host names.
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(err("invalid character in host"));
    }
    if has_empty_label(s) {
        return Err(err("empty label in host name"));
    }
    // An all-numeric name can only be meant as an IPv4 address.
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s
            .parse()
            .map(Host::V4)
            .map_err(|_| err("invalid IPv4 address"));
    }
    Ok(Host::Domain(s.to_owned()))
}

/// True for `a..b` or `.a`; a single trailing dot (FQDN form) is fine.
fn has_empty_label(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.split('.').any(str::is_empty)
}

/// Parses `;name[=value]...` (the text between host and `?`).
fn parse_uri_params(s: &str) -> Result<Vec<(String, Option<String>)>, UriError> {
    let Some(s) = s.strip_prefix(';') else {
        return if s.is_empty() {
            Ok(Vec::new())
        } else {
            Err(err("expected ';' before parameters"))
        };
    };
    s.split(';').map(parse_uri_param).collect()
}

/// Parses one `name[=value]` URI parameter.
fn parse_uri_param(p: &str) -> Result<(String, Option<String>), UriError> {
    let (name, value) = match p.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (p, None),
    };
    if name.is_empty() {
        return Err(err("empty parameter name"));
    }
    check_chars(name, PARAM_EXTRA, "parameter")?;
    if let Some(value) = value {
        check_chars(value, PARAM_EXTRA, "parameter")?;
    }
    Ok((name.to_owned(), value.map(str::to_owned)))
}

/// Parses `name=value&...` (the text after `?`).
fn parse_headers(s: &str) -> Result<Vec<(String, String)>, UriError> {
    s.split('&').map(parse_uri_header).collect()
}

/// Parses one `name=value` URI header.
fn parse_uri_header(h: &str) -> Result<(String, String), UriError> {
    let (name, value) = h
        .split_once('=')
        .ok_or_else(|| err("URI header without '='"))?;
    if name.is_empty() {
        return Err(err("empty header name"));
    }
    check_chars(name, HEADER_EXTRA, "header")?;
    check_chars(value, HEADER_EXTRA, "header")?;
    Ok((name.to_owned(), value.to_owned()))
}

/// `unreserved` from RFC 3261: alphanumerics and marks.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Checks that `s` only holds unreserved characters, `extra` and valid
/// `%XX` escapes. This also rejects spaces, controls and non-ASCII.
fn check_chars(s: &str, extra: &[u8], what: &str) -> Result<(), UriError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            if hex_pair(bytes.get(i + 1..i + 3)).is_none() {
                return Err(err(format!("bad %-escape in {what}")));
            }
            i += 3;
        } else if is_unreserved(b) || extra.contains(&b) {
            i += 1;
        } else {
            return Err(err(format!("invalid character in {what}")));
        }
    }
    Ok(())
}

/// Decodes two hex digits, if that is what `pair` holds.
fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    match pair? {
        [hi, lo] => {
            let hi = char::from(*hi).to_digit(16)?;
            let lo = char::from(*lo).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        }
        _ => None,
    }
}

/// Canonical form for comparison: escapes of non-reserved characters are
/// decoded, escapes of reserved ones are kept (with upper-case hex) because
/// RFC 3261 treats them as different from the literal character.
fn normalize(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let pair = bytes.get(i + 1..i + 3);
        match (b, hex_pair(pair), pair) {
            (b'%', Some(v), _) if !RESERVED.contains(&v) => {
                out.push(v);
                i += 3;
            }
            (b'%', Some(_), Some(pair)) => {
                out.push(b'%');
                out.extend(pair.iter().map(u8::to_ascii_uppercase));
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Case-sensitive comparison after normalizing escapes.
fn same_exact(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// Case-insensitive comparison after normalizing escapes.
fn same_folded(a: &str, b: &str) -> bool {
    normalize(a).eq_ignore_ascii_case(&normalize(b))
}

/// Both absent, or both present and equal under `eq`.
fn opt_eq<A, B>(a: &Option<A>, b: &Option<B>, eq: fn(&str, &str) -> bool) -> bool
where
    A: AsRef<str>,
    B: AsRef<str>,
{
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => eq(a.as_ref(), b.as_ref()),
        _ => false,
    }
}

/// Host names compare case-insensitively; addresses compare as addresses,
/// and a name never equals an address.
fn hosts_equivalent(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Domain(a), Host::Domain(b)) => same_folded(a, b),
        (Host::V4(a), Host::V4(b)) => a == b,
        (Host::V6(a), Host::V6(b)) => a == b,
        _ => false,
    }
}

/// RFC 3261 §19.1.4 parameter rules: the strict parameters must match when
/// either side has them; any other parameter only when both sides have it.
fn params_equivalent(a: &Uri, b: &Uri) -> bool {
    let strict_ok = STRICT_PARAMS
        .iter()
        .all(|name| match (a.param(name), b.param(name)) {
            (None, None) => true,
            (Some(x), Some(y)) => param_values_equal(x, y),
            _ => false,
        });
    // A repeated parameter counts with its first value on both sides, as in
    // `Uri::param` and the strict check above, so that a URI always equals itself.
    let others_ok = a
        .params
        .iter()
        .filter(|(name, _)| !is_strict_param(name))
        .all(|(name, _)| match (a.param(name), b.param(name)) {
            (Some(mine), Some(other)) => param_values_equal(mine, other),
            _ => true,
        });
    strict_ok && others_ok
}

/// Flag vs value differ; two values compare case-insensitively.
fn param_values_equal(a: Option<&str>, b: Option<&str>) -> bool {
    opt_eq(&a, &b, same_folded)
}

/// Whether `name` is one of [`STRICT_PARAMS`].
fn is_strict_param(name: &str) -> bool {
    STRICT_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Every header of `a` has a counterpart in `b` (names case-insensitive,
/// values case-sensitive after normalizing escapes).
fn headers_contained(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.iter().all(|(name, value)| {
        b.iter()
            .any(|(n, v)| same_folded(name, n) && same_exact(value, v))
    })
}

#[cfg(test)]
mod tests {
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
}
