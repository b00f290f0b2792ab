//! SIP and SIPS URIs (RFC 3261 §19.1): parsing, printing and the §19.1.4
//! equivalence rules.
//!
//! Components are stored as written (including `%XX` escapes) so that a
//! parsed URI prints back to the same text; unescaping happens only when
//! comparing. The parts: `equiv` (the equivalence rules) and `text` (the
//! stack-buffer writers for numbers and IPv4 addresses); the scanning
//! helpers are the shared `core::lexer`.

use std::error::Error;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::lexer::{find_char, hex_pair, parse_port, split_once_char, split_once_opt, split_str};

mod equiv;
mod text;

pub(crate) use text::{Decimal, V4Text};

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
    pub password: Option<Box<str>>,
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

/// Extra characters allowed in the user part (`user-unreserved`).
const USER_EXTRA: &[u8] = b"&=+$,;?/";
/// Extra characters allowed in the password.
const PASSWORD_EXTRA: &[u8] = b"&=+$,";
/// Extra characters allowed in parameter names and values (`param-unreserved`).
const PARAM_EXTRA: &[u8] = b"[]/:&+$";
/// Extra characters allowed in header names and values (`hnv-unreserved`).
const HEADER_EXTRA: &[u8] = b"[]/?:+$";

/// A SIP or SIPS URI checked as [`Uri::parse`] checks it but read in
/// place, nothing copied: what a request's routing and refusal need of its
/// Request-URI (every request that reaches a contact comes through here).
#[derive(Clone, Copy, Debug)]
pub struct UriRef<'a> {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// User part as written.
    pub user: Option<&'a str>,
    /// Password as written.
    pub password: Option<&'a str>,
    /// The host as written.
    pub host_text: &'a str,
    /// What the host is.
    host: HostKind,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// The parameters as written (`;a=b;c`, or empty).
    pub params: &'a str,
    /// The headers as written (after `?`), if any.
    pub headers: Option<&'a str>,
}

impl<'a> UriRef<'a> {
    /// Reads a SIP or SIPS URI. The scheme is case-insensitive and
    /// surrounding whitespace is ignored.
    pub fn parse(s: &'a str) -> Result<UriRef<'a>, UriError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (scheme, rest) = parse_scheme(s)?;
        // '@' may appear nowhere after the userinfo, so the first one ends it.
        let (user, password, rest) = match split_once_char(rest, '@') {
            Some((info, rest)) => {
                let (user, password) = check_userinfo(info)?;
                (Some(user), password, rest)
            }
            None => (None, None, rest),
        };
        let hostport_end = rest
            .bytes()
            .position(|b| b == b';' || b == b'?')
            .unwrap_or(rest.len());
        let (hostport, rest) = split_str(rest, hostport_end);
        let (host_text, host, port) = read_hostport(hostport)?;
        let (params, headers) = match split_once_char(rest, '?') {
            Some((params, headers)) => (params, Some(headers)),
            None => (rest, None),
        };
        check_uri_params(params)?;
        if let Some(h) = headers {
            h.split('&').try_for_each(check_uri_header)?;
        }
        Ok(UriRef {
            scheme,
            user,
            password,
            host_text,
            host,
            port,
            params,
            headers,
        })
    }

    /// The host, owned.
    pub fn host(&self) -> Host {
        self.host.owned(self.host_text)
    }

    /// Appends the URI as [`to_uri`](Self::to_uri)'s [`Display`](fmt::Display)
    /// writes it, without building it: the parameters as written (splitting
    /// and joining them again gives the same text), the host and port in
    /// their canonical form. A URI with headers is written through
    /// [`to_uri`](Self::to_uri) (a header without `=` is dropped there).
    pub(crate) fn push_to(&self, out: &mut String) {
        if self.headers.is_some() {
            self.to_uri().push_to(out);
            return;
        }
        out.push_str(self.scheme.as_str());
        out.push(':');
        if let Some(user) = self.user {
            out.push_str(user);
            if let Some(password) = self.password {
                out.push(':');
                out.push_str(password);
            }
            out.push('@');
        }
        match self.host {
            HostKind::Domain => out.push_str(self.host_text),
            HostKind::V4(addr) => out.push_str(V4Text::new(addr).as_str()),
            HostKind::V6(addr) => Host::V6(addr).push_to(out),
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(Decimal::new(u64::from(port)).as_str());
        }
        out.push_str(self.params);
    }

    /// The URI, owned.
    pub fn to_uri(&self) -> Uri {
        // Every part was checked when read: only splitting is left.
        let params = self
            .params
            .strip_prefix(';')
            .map(|p| {
                p.split(';')
                    .map(|p| {
                        let (name, value) = split_once_opt(p, '=');
                        (name.to_owned(), value.map(str::to_owned))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let headers = self
            .headers
            .map(|h| {
                h.split('&')
                    .filter_map(|h| h.split_once('='))
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Uri {
            scheme: self.scheme,
            user: self.user.map(str::to_owned),
            password: self.password.map(Box::from),
            host: self.host(),
            port: self.port,
            params,
            headers,
        }
    }
}

impl Uri {
    /// Parses a SIP or SIPS URI. The scheme is case-insensitive and
    /// surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        UriRef::parse(s).map(|u| u.to_uri())
    }

    /// The user part (as written) and the `;` parameters (`;a=b;c`, up to any
    /// `?`) of the SIP URI `s`, read in place without parsing the rest: the
    /// routing of a request to a contact needs no more. `None` when `s` is
    /// not a `sip:`/`sips:` URI.
    pub fn user_and_params(s: &str) -> Option<(Option<&str>, &str)> {
        let s = s.trim();
        let (_, rest) = parse_scheme(s).ok()?;
        let (user, rest) = match rest.split_once('@') {
            Some((info, rest)) => (Some(info.split(':').next().unwrap_or(info)), rest),
            None => (None, rest),
        };
        let rest = rest.split('?').next().unwrap_or(rest);
        let params = rest.find(';').map_or("", |at| split_str(rest, at).1);
        Some((user, params))
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

    /// The URI as [`Display`](fmt::Display) writes it, in a string sized
    /// once (`to_string` grows it piece by piece).
    pub(crate) fn text(&self) -> String {
        let mut len = 0;
        let _ = self.write_parts(|part| {
            len += part.len();
            Ok(())
        });
        let mut out = String::with_capacity(len);
        self.push_to(&mut out);
        out
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

/// Reads the `sip:` / `sips:` prefix.
fn parse_scheme(s: &str) -> Result<(Scheme, &str), UriError> {
    let (name, rest) = split_once_char(s, ':').ok_or_else(|| err("missing scheme"))?;
    if name.eq_ignore_ascii_case("sip") {
        Ok((Scheme::Sip, rest))
    } else if name.eq_ignore_ascii_case("sips") {
        Ok((Scheme::Sips, rest))
    } else {
        Err(err("scheme is not sip or sips"))
    }
}

/// Splits `user[:password]` and checks both character sets.
fn check_userinfo(info: &str) -> Result<(&str, Option<&str>), UriError> {
    let (user, password) = split_once_opt(info, ':');
    if user.is_empty() {
        return Err(err("empty user"));
    }
    check_chars(user, USER_EXTRA, "user")?;
    if let Some(password) = password {
        check_chars(password, PASSWORD_EXTRA, "password")?;
    }
    Ok((user, password))
}

/// Parses `host[:port]`, where host may be a bracketed IPv6 reference.
pub(super) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (text, host, port) = read_hostport(s)?;
    Ok((host.owned(text), port))
}

/// Reads `host[:port]` in place: the host as written, what it is, the port.
fn read_hostport(s: &str) -> Result<(&str, HostKind, Option<u16>), UriError> {
    let host_end = if s.starts_with('[') {
        find_char(s, ']')
            .map(|i| i + 1)
            .ok_or_else(|| err("unbalanced '[' in host"))?
    } else {
        find_char(s, ':').unwrap_or(s.len())
    };
    let (text, rest) = split_str(s, host_end);
    let host = read_host(text)?;
    if rest.is_empty() {
        return Ok((text, host, None));
    }
    let port = rest
        .strip_prefix(':')
        .ok_or_else(|| err("unexpected text after host"))?;
    let port = parse_port(port).ok_or_else(|| err("invalid port"))?;
    Ok((text, host, Some(port)))
}

/// What a host is, read without copying its name.
#[derive(Clone, Copy, Debug)]
enum HostKind {
    Domain,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostKind {
    /// The host whose text is `text`.
    fn owned(self, text: &str) -> Host {
        match self {
            HostKind::Domain => Host::Domain(text.to_owned()),
            HostKind::V4(a) => Host::V4(a),
            HostKind::V6(a) => Host::V6(a),
        }
    }
}

/// Parses a host name, IPv4 address or bracketed IPv6 address.
fn parse_host(s: &str) -> Result<Host, UriError> {
    read_host(s).map(|h| h.owned(s))
}

/// Checks a host name, IPv4 address or bracketed IPv6 address.
fn read_host(s: &str) -> Result<HostKind, UriError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| err("unbalanced '[' in host"))?;
        return inner
            .parse()
            .map(HostKind::V6)
            .map_err(|_| err("invalid IPv6 address"));
    }
    if s.is_empty() {
        return Err(err("empty host"));
    }
    // The usual host of a Via or a contact: a well-formed dotted quad, read
    // in one pass (what the checks below would accept as the same address;
    // anything else goes through them, for their answer and error).
    if let Some(addr) = plain_dotted_quad(s.as_bytes()) {
        return Ok(HostKind::V4(addr));
    }
    // One pass over the bytes (every URI and Via host comes through here):
    // the character set by table, whether it is all digits and dots, and
    // empty labels (see [`has_empty_label`]: a leading dot or two in a row).
    let bytes = s.as_bytes();
    let mut numeric = true;
    let mut empty_label = bytes.first() == Some(&b'.');
    let mut after_dot = false;
    for &b in bytes {
        let class = HOST_BYTES[usize::from(b)];
        if class == 0 {
            return Err(err("invalid character in host"));
        }
        numeric &= class == HOST_NUMERIC;
        let dot = b == b'.';
        empty_label |= dot && after_dot;
        after_dot = dot;
    }
    debug_assert_eq!(empty_label, has_empty_label(s));
    if empty_label {
        return Err(err("empty label in host name"));
    }
    // An all-numeric name can only be meant as an IPv4 address.
    if numeric {
        return dotted_quad(s.as_bytes())
            .map(HostKind::V4)
            .ok_or_else(|| err("invalid IPv4 address"));
    }
    Ok(HostKind::Domain)
}

/// A byte allowed in a host name ([`HOST_NUMERIC`]: a digit or a dot).
/// Underscores are not in the RFC grammar but do occur in real host names.
const HOST_NAME: u8 = 1;
/// A byte of a dotted quad (and of a host name).
const HOST_NUMERIC: u8 = 3;

/// The class of every byte in a host: 0 (not allowed), [`HOST_NAME`] or
/// [`HOST_NUMERIC`].
const HOST_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_digit() || c == b'.' {
            HOST_NUMERIC
        } else if c.is_ascii_alphabetic() || c == b'-' || c == b'_' {
            HOST_NAME
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Four decimal octets of at most 255 without leading zeros, joined by
/// dots (what `Ipv4Addr`'s parser takes), read in one pass.
fn dotted_quad(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for o in &mut octets {
        let part = parts.next()?;
        let leading_zero = part.len() > 1 && part.first() == Some(&b'0');
        if part.is_empty() || part.len() > 3 || leading_zero {
            return None;
        }
        let mut v: u16 = 0;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(b - b'0');
        }
        *o = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// `s` as an IPv4 address if it is exactly four decimal octets of at most
/// 255 without leading zeros, joined by dots; `None` for anything else
/// (which may still be a host name, or an error the full checks name).
fn plain_dotted_quad(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut k, mut v, mut digits) = (0usize, 0u16, 0u8);
    for &b in s {
        match b {
            b'0'..=b'9' => {
                if digits == 1 && v == 0 {
                    return None; // a leading zero
                }
                v = v * 10 + u16::from(b - b'0');
                digits += 1;
                if digits > 3 || v > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && k < 3 => {
                octets[k] = u8::try_from(v).ok()?;
                k += 1;
                v = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if k != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(v).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// True for `a..b` or `.a`; a single trailing dot (FQDN form) is fine.
fn has_empty_label(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    // What splitting on '.' would find empty, read off the bytes (every URI
    // and Via host comes through here).
    s.is_empty()
        || s.starts_with('.')
        || s.ends_with('.')
        || s.as_bytes().windows(2).any(|pair| pair == b"..")
}

/// Checks `;name[=value]...` (the text between host and `?`).
fn check_uri_params(s: &str) -> Result<(), UriError> {
    let Some(s) = s.strip_prefix(';') else {
        return if s.is_empty() {
            Ok(())
        } else {
            Err(err("expected ';' before parameters"))
        };
    };
    s.split(';').try_for_each(check_uri_param)
}

/// Checks one `name[=value]` URI parameter.
fn check_uri_param(p: &str) -> Result<(), UriError> {
    let (name, value) = split_once_opt(p, '=');
    if name.is_empty() {
        return Err(err("empty parameter name"));
    }
    check_chars(name, PARAM_EXTRA, "parameter")?;
    if let Some(value) = value {
        check_chars(value, PARAM_EXTRA, "parameter")?;
    }
    Ok(())
}

/// Checks one `name=value` URI header (of the text after `?`).
fn check_uri_header(h: &str) -> Result<(), UriError> {
    let (name, value) = h
        .split_once('=')
        .ok_or_else(|| err("URI header without '='"))?;
    if name.is_empty() {
        return Err(err("empty header name"));
    }
    check_chars(name, HEADER_EXTRA, "header")?;
    check_chars(value, HEADER_EXTRA, "header")
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

#[cfg(test)]
mod tests;
