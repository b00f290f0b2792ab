//! SIP responses (RFC 3261 §7, §20): parsing a response and reading the
//! headers a registering client needs, telling responses apart from
//! requests and keep-alives, and framing messages on a TCP stream.
//!
//! Everything here works on untrusted network input: malformed data yields
//! an error value, never a panic, and allocation is bounded by input size.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::str::FromStr;

use super::uri::{self, Host, Uri};

/// Why a message or header value could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for ParseError {}

/// Shorthand for building an error.
fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// Compact header names (RFC 3261 §7.3.3 and later extensions) and the
/// lower-case long names they stand for.
const COMPACT_NAMES: [(char, &str); 20] = [
    ('a', "accept-contact"),
    ('b', "referred-by"),
    ('c', "content-type"),
    ('d', "request-disposition"),
    ('e', "content-encoding"),
    ('f', "from"),
    ('i', "call-id"),
    ('j', "reject-contact"),
    ('k', "supported"),
    ('l', "content-length"),
    ('m', "contact"),
    ('n', "identity-info"),
    ('o', "event"),
    ('r', "refer-to"),
    ('s', "subject"),
    ('t', "to"),
    ('u', "allow-events"),
    ('v', "via"),
    ('x', "session-expires"),
    ('y', "identity"),
];

/// Header names a registrar's responses carry, stored without an allocation.
const COMMON_NAMES: [&str; 22] = [
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "content-length",
    "www-authenticate",
    "proxy-authenticate",
    "expires",
    "min-expires",
    "retry-after",
    "server",
    "user-agent",
    "allow",
    "supported",
    "date",
    "require",
    "path",
    "service-route",
    "warning",
    "flow-timer",
];

/// The canonical (lower-case long) name of a compact or common header name,
/// matched ignoring ASCII case; `None` for other names.
fn known_name(name: &str) -> Option<&'static str> {
    if let [c] = name.as_bytes() {
        let c = char::from(c.to_ascii_lowercase());
        return COMPACT_NAMES
            .iter()
            .find(|(short, _)| *short == c)
            .map(|(_, long)| *long);
    }
    COMMON_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
}

/// The name a lookup key stands for: a compact name expanded to its long
/// form, any other name as given. Names are compared ignoring ASCII case, so
/// no lower-cased copy is made.
fn lookup_name(name: &str) -> &str {
    let name = name.trim_matches(is_ws);
    if let [c] = name.as_bytes() {
        let c = char::from(c.to_ascii_lowercase());
        if let Some((_, long)) = COMPACT_NAMES.iter().find(|(short, _)| *short == c) {
            return long;
        }
    }
    name
}

/// Linear whitespace inside a line (SP or HT).
fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

/// True for a non-empty string made only of token characters.
fn is_token(s: &str) -> bool {
    // Bytes: token characters are ASCII, and no byte of a multi-byte
    // character is one.
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii() && is_token_char(char::from(b)))
}

/// A byte range of a response's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// A header's name: the canonical form of a compact or common name (no
/// lookup needs to read the text), or where the name is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldName {
    Known(&'static str),
    Written(Span),
}

/// One header field: its name and where its (trimmed, unfolded) value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    name: FieldName,
    value: Span,
}

/// The text of `span` in a header section `head` followed by `spill` (where
/// folded values are unfolded); empty for a span that is not there.
fn text_at<'a>(head: &'a str, spill: &'a str, span: Span) -> &'a str {
    if span.end <= head.len() {
        head.get(span.start..span.end)
    } else {
        let base = head.len();
        spill.get(span.start.saturating_sub(base)..span.end - base)
    }
    .unwrap_or_default()
}

/// Whether `field` is named `wanted` (a long name, any case).
fn field_is(head: &str, field: &Field, wanted: &str) -> bool {
    match field.name {
        FieldName::Known(name) => name.eq_ignore_ascii_case(wanted),
        FieldName::Written(span) => text_at(head, "", span).eq_ignore_ascii_case(wanted),
    }
}

/// A parsed SIP response. The body is not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase exactly as received (may be empty).
    pub reason: String,
    /// The header section as received, then any unfolded values: every
    /// header name and value is a range of this one buffer.
    text: String,
    /// The header fields in message order.
    fields: Vec<Field>,
    /// Where the top Via's branch is in `text`, found once at parse time
    /// because every response is routed by it.
    branch_at: Option<Span>,
}

impl Response {
    /// Parses one response from a datagram or a framed stream message.
    ///
    /// Leading CR/LF bytes are skipped. Bytes after the body that
    /// `Content-Length` announces are ignored; a body shorter than announced
    /// is an error. Invalid UTF-8 in the header section is replaced with
    /// U+FFFD.
    pub fn parse(buf: &[u8]) -> Result<Response, ParseError> {
        let buf = buf.get(leading_crlf(buf)..).unwrap_or_default();
        let (head_len, lines) =
            header_end_and_lines(buf).ok_or_else(|| err("incomplete header section"))?;
        let (head, body) = split_bytes(buf, head_len);
        // Valid UTF-8 (the usual case) is checked by the fast validator.
        let head = match std::str::from_utf8(head) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(head),
        };
        let (start, fields, spill) = parse_head(&head, lines)?;
        let (status, reason) = parse_status_line(text_at(&head, "", start))?;
        let reason = reason.to_owned();
        // One buffer holds every name and value: the header section, then the
        // unfolded values (usually none).
        let text = match head {
            Cow::Borrowed(head) => {
                let mut text = String::with_capacity(head.len() + spill.len());
                text.push_str(head);
                text.push_str(&spill);
                text
            }
            Cow::Owned(mut head) => {
                head.push_str(&spill);
                head
            }
        };
        check_body_length(&text, &fields, body.len())?;
        let mut resp = Response {
            status,
            reason,
            text,
            fields,
            branch_at: None,
        };
        resp.branch_at = resp.find_top_branch();
        Ok(resp)
    }

    /// The first value of a header; `name` may be in any case and in long or
    /// compact form.
    pub fn header(&self, name: &str) -> Option<&str> {
        let wanted = lookup_name(name);
        self.fields
            .iter()
            .find(|f| field_is(&self.text, f, wanted))
            .map(|f| text_at(&self.text, "", f.value))
    }

    /// Every header line with that name (any case, long or compact form), in
    /// message order. Comma-separated lists on one line are not split.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let wanted = lookup_name(name);
        self.fields
            .iter()
            .filter(move |f| field_is(&self.text, f, wanted))
            .map(|f| text_at(&self.text, "", f.value))
    }

    /// The Call-ID header.
    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// The CSeq sequence number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut parts = self.header("cseq")?.split(is_ws).filter(|p| !p.is_empty());
        let (number, method) = (parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_token(method) || !is_digits(number) {
            return None;
        }
        Some((number.parse().ok()?, method))
    }

    /// The topmost Via value (first element of the first Via line).
    pub fn top_via(&self) -> Option<Via> {
        let first = first_list_item(self.header("via")?)?;
        first.parse().ok()
    }

    /// The topmost Via's [`public_address`](Via::public_address), read in place
    /// (no [`Via`] is built; every 2xx is asked this).
    pub fn top_via_public_address(&self) -> Option<std::net::SocketAddr> {
        let (host, port, params) = self.top_via_sent_by()?;
        let (mut received, mut rport) = (None, None);
        for_each_raw_param(params, |name, value| {
            if received.is_none() && name.eq_ignore_ascii_case("received") {
                received = Some(value);
            }
            if rport.is_none() && name.eq_ignore_ascii_case("rport") {
                rport = Some(value);
            }
        })
        .ok()?;
        // Values unquoted as `Via` stores them (quotes are rare: no copy otherwise).
        fn unquoted(v: &str) -> Cow<'_, str> {
            if v.starts_with('"') {
                Cow::Owned(unquote(v))
            } else {
                Cow::Borrowed(v)
            }
        }
        let received = received.flatten().map(unquoted);
        let rport = rport
            .flatten()
            .map(unquoted)
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        if received.is_none() && rport.is_none() {
            return None;
        }
        let ip: std::net::IpAddr = match (received, &host) {
            (Some(text), _) => text.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
            (None, Host::V4(addr)) => (*addr).into(),
            (None, Host::V6(addr)) => (*addr).into(),
            (None, Host::Domain(name)) => {
                name.trim_matches(|c| c == '[' || c == ']').parse().ok()?
            }
        };
        Some(std::net::SocketAddr::new(
            ip,
            rport.or(port).unwrap_or(5060),
        ))
    }

    /// The `branch` of the topmost Via, as [`top_via`](Self::top_via) would give
    /// it, read in place (the per-response routing path: no Via is built).
    /// A quoted branch (never one of ours) gives `None`.
    pub fn top_branch(&self) -> Option<&str> {
        let span = self.branch_at?;
        self.text.get(span.start..span.end)
    }

    /// The top Via's sent-by (checked) and the raw `;` parameters after it,
    /// read in place.
    fn top_via_sent_by(&self) -> Option<(Host, Option<u16>, &str)> {
        let first = first_list_item(self.header("via")?)?;
        let s = first.trim_matches(is_ws);
        let (_, rest) = sent_protocol(s).ok()?;
        let sent_by_start = rest.trim_start_matches(is_ws);
        if sent_by_start.len() == rest.len() {
            return None;
        }
        let (sent_by, params) = split_before(sent_by_start, ';');
        let (host, port) = uri::parse_hostport(sent_by.trim_end_matches(is_ws)).ok()?;
        Some((host, port, params))
    }

    /// Locates the top Via's branch for [`top_branch`](Self::top_branch).
    fn find_top_branch(&self) -> Option<Span> {
        let (_, _, params) = self.top_via_sent_by()?;
        let value = find_raw_param(params, "branch").ok()??;
        let value = value.filter(|v| !v.starts_with('"'))?;
        // `value` is a slice of `text`: its offset locates it.
        let start = (value.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        Some(Span {
            start,
            end: start + value.len(),
        })
    }

    /// Every Contact value of every Contact line, in order. A `*` contact
    /// is an error here because it is only meaningful in requests.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for line in self.headers("contact") {
            for item in list_items(line) {
                if item == "*" {
                    return Err(err("wildcard Contact in response"));
                }
                out.push(item.parse()?);
            }
        }
        Ok(out)
    }

    /// The Expires header in seconds (values above `u32::MAX` clamp).
    pub fn expires(&self) -> Option<u32> {
        parse_delta(self.header("expires")?)
    }

    /// The Min-Expires header in seconds (values above `u32::MAX` clamp).
    pub fn min_expires(&self) -> Option<u32> {
        parse_delta(self.header("min-expires")?)
    }

    /// The Retry-After delay in seconds, ignoring any comment and parameters
    /// (`120 (in a meeting);duration=60` gives 120).
    pub fn retry_after(&self) -> Option<u32> {
        let value = self.header("retry-after")?;
        let digits_end = value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len());
        let (digits, rest) = split_str(value, digits_end);
        let rest = rest.trim_start_matches(is_ws);
        if rest.is_empty() || rest.starts_with('(') || rest.starts_with(';') {
            parse_delta(digits)
        } else {
            None
        }
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<&str> {
        let parts = split_name_addr(self.header("to")?).ok()?;
        let tag = find_raw_param(parts.params, "tag").ok()??;
        // Tags are tokens; a quoted or empty one is malformed.
        tag.filter(|t| is_token(t))
    }
}

/// Facts of a 2xx that RFC 3581 (rport), RFC 5626 (outbound), RFC 3608
/// (Service-Route) and RFC 3327 (Path) define.
impl Response {
    /// Whether an option tag is listed in any line of `header` (e.g.
    /// `Require`, `Supported`); case-insensitive.
    pub fn lists_option(&self, header: &str, tag: &str) -> bool {
        self.headers(header)
            .flat_map(list_items)
            .any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// The `Flow-Timer` header (RFC 5626 §11.4) in seconds.
    pub fn flow_timer(&self) -> Option<u32> {
        parse_delta(self.header("flow-timer")?.trim_matches(is_ws))
    }

    /// URIs of every `Service-Route` value, in order (unparsable ones skipped).
    pub fn service_routes(&self) -> Vec<String> {
        self.route_list("service-route")
    }

    /// URIs of every `Path` value, in order (unparsable ones skipped).
    pub fn paths(&self) -> Vec<String> {
        self.route_list("path")
    }

    fn route_list(&self, name: &str) -> Vec<String> {
        self.headers(name)
            .flat_map(list_items)
            .filter_map(|v| v.parse::<NameAddr>().ok())
            .map(|n| n.uri.to_string())
            .collect()
    }
}

/// One Via header value, e.g. `SIP/2.0/UDP host:5060;branch=z9hG4bK...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport in upper case (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// Host name or address; IP addresses are in their standard text form,
    /// IPv6 without brackets (so it parses as `IpAddr`).
    pub host: String,
    /// Port, if one was given.
    pub port: Option<u16>,
    /// Parameters in order (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Looks up a parameter by name (case-insensitive): `None` if absent,
    /// `Some(None)` for a flag such as `rport`, `Some(Some(value))` otherwise.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The address the server saw this request come from (RFC 3581):
    /// `received` (else the sent-by host) with `rport` (else the sent-by port,
    /// else 5060). `None` when the server set neither or `received` is not an IP.
    pub fn public_address(&self) -> Option<std::net::SocketAddr> {
        let received = self.param("received").flatten();
        let rport = self
            .param("rport")
            .flatten()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        if received.is_none() && rport.is_none() {
            return None;
        }
        let ip: std::net::IpAddr = received
            .unwrap_or(&self.host)
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .ok()?;
        let port = rport.or(self.port).unwrap_or(5060);
        Some(std::net::SocketAddr::new(ip, port))
    }
}

impl FromStr for Via {
    type Err = ParseError;

    /// Parses a single Via value (not a comma-separated list).
    fn from_str(s: &str) -> Result<Via, ParseError> {
        let s = s.trim_matches(is_ws);
        let (transport, rest) = parse_sent_protocol(s)?;
        let sent_by_start = rest.trim_start_matches(is_ws);
        if sent_by_start.len() == rest.len() {
            return Err(err("Via: missing space after protocol"));
        }
        let (sent_by, params) = split_before(sent_by_start, ';');
        let (host, port) = uri::parse_hostport(sent_by.trim_end_matches(is_ws))
            .map_err(|_| err("Via: bad sent-by"))?;
        Ok(Via {
            transport,
            host: host_without_brackets(&host),
            port,
            params: parse_params(params)?,
        })
    }
}

/// Host text as it appears in Via, but with IPv6 brackets dropped.
fn host_without_brackets(host: &Host) -> String {
    match host {
        Host::Domain(name) => name.clone(),
        Host::V4(addr) => addr.to_string(),
        Host::V6(addr) => addr.to_string(),
    }
}

/// Reads `SIP / 2.0 / transport` and returns the upper-cased transport and
/// the remaining text.
fn parse_sent_protocol(s: &str) -> Result<(String, &str), ParseError> {
    let (transport, rest) = sent_protocol(s)?;
    Ok((transport.to_ascii_uppercase(), rest))
}

/// Reads `SIP / 2.0 / transport`: the transport as written and the rest.
fn sent_protocol(s: &str) -> Result<(&str, &str), ParseError> {
    let (name, rest) = take_token(s);
    let (version, rest) = take_token(expect_slash(rest)?);
    let (transport, rest) = take_token(expect_slash(rest)?);
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || transport.is_empty() {
        return Err(err("Via: bad sent-protocol"));
    }
    Ok((transport, rest))
}

/// Splits off the leading run of token characters.
fn take_token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    split_str(s, end)
}

/// Consumes `SWS "/" SWS`.
fn expect_slash(s: &str) -> Result<&str, ParseError> {
    s.trim_start_matches(is_ws)
        .strip_prefix('/')
        .map(|rest| rest.trim_start_matches(is_ws))
        .ok_or_else(|| err("Via: expected '/'"))
}

/// A `name-addr` or `addr-spec` header value (Contact, To, From).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name with quotes removed and escapes resolved; `None` if
    /// absent or empty.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI, values unquoted and unescaped.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Looks up a header parameter by name (case-insensitive): `None` if
    /// absent, `Some(None)` for a flag, `Some(Some(value))` otherwise.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `expires` parameter in seconds (values above `u32::MAX` clamp).
    pub fn expires(&self) -> Option<u32> {
        parse_delta(self.param("expires")??)
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    /// Parses one value such as `"Bob" <sip:b@h>;expires=60` or
    /// `sip:a@h;expires=30` (here `expires` is a header parameter, RFC 3261
    /// §20).
    fn from_str(s: &str) -> Result<NameAddr, ParseError> {
        let parts = split_name_addr(s)?;
        let display_name = Some(unquote(parts.display)).filter(|d| !d.is_empty());
        let uri = Uri::parse(parts.uri).map_err(|e| err(e.to_string()))?;
        Ok(NameAddr {
            display_name,
            uri,
            params: parse_params(parts.params)?,
        })
    }
}

/// The three raw parts of a name-addr / addr-spec value.
struct NameAddrParts<'a> {
    /// Display name as written (possibly quoted, possibly empty).
    display: &'a str,
    /// URI text.
    uri: &'a str,
    /// Parameter text, starting at `;` or empty.
    params: &'a str,
}

/// Splits a name-addr into display name, URI and parameters without
/// unquoting anything.
fn split_name_addr(s: &str) -> Result<NameAddrParts<'_>, ParseError> {
    let s = s.trim_matches(is_ws);
    let display_len = if s.starts_with('"') {
        quoted_len(s).ok_or_else(|| err("unterminated quoted display name"))?
    } else {
        s.find('<').unwrap_or(0)
    };
    let (display, rest) = split_str(s, display_len);
    let rest = rest.trim_start_matches(is_ws);
    if let Some(inner) = rest.strip_prefix('<') {
        let (uri, params) = inner.split_once('>').ok_or_else(|| err("missing '>'"))?;
        return Ok(NameAddrParts {
            display: display.trim_matches(is_ws),
            uri,
            params,
        });
    }
    if !display.is_empty() {
        return Err(err("display name without <URI>"));
    }
    // Without brackets the URI cannot hold ';', so the first one starts
    // the header parameters.
    let (uri, params) = split_before(rest, ';');
    Ok(NameAddrParts {
        display: "",
        uri,
        params,
    })
}

/// Length in bytes of the quoted string that starts `s` (including both
/// quotes), or `None` if it is not terminated.
fn quoted_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Removes surrounding quotes and resolves `\` escapes; unquoted text is
/// returned unchanged.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

/// Finds a parameter by case-insensitive name.
fn find_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Splits a header value on commas that are outside quotes and outside
/// `<...>`. Elements are trimmed; empty elements are dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    list_items(value).collect()
}

/// The first element of a comma-separated list (see [`split_list`]).
fn first_list_item(value: &str) -> Option<&str> {
    list_items(value).next()
}

/// The elements of a comma-separated list, lazily (see [`split_list`]).
fn list_items(value: &str) -> impl Iterator<Item = &str> {
    ListItems { rest: Some(value) }
        .map(|item| item.trim_matches(is_ws))
        .filter(|item| !item.is_empty())
}

/// Iterator behind [`list_items`]: untrimmed elements, empty ones included.
struct ListItems<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let value = self.rest?;
        let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
        // Bytes: the delimiters are ASCII, so `i` is always a char boundary. An
        // escaped multi-byte character clears `escaped` on its first byte; the
        // others (all >= 0x80) change nothing.
        for (i, c) in value.bytes().enumerate() {
            if in_quotes {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_quotes = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' if !in_angle => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    self.rest = value.get(i + 1..);
                    return Some(value.get(..i).unwrap_or_default());
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(value)
    }
}

/// Parses ";a=b;c;d="q;x"" style parameter lists (quotes respected).
///
/// Leading whitespace is allowed; an empty string gives an empty list.
/// Quoted values are returned with the quotes removed and `\` escapes
/// resolved. Names must be tokens.
pub fn parse_params(s: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let mut out = Vec::new();
    for_each_raw_param(s, |name, value| {
        out.push((name.to_owned(), value.map(unquote)));
    })?;
    Ok(out)
}

/// The first parameter named `name` (ignoring case), value still quoted;
/// an error if any parameter of the list is malformed (as [`parse_params`]).
fn find_raw_param<'a>(s: &'a str, name: &str) -> Result<Option<Option<&'a str>>, ParseError> {
    let mut found = None;
    for_each_raw_param(s, |n, value| {
        if found.is_none() && n.eq_ignore_ascii_case(name) {
            found = Some(value);
        }
    })?;
    Ok(found)
}

/// Calls `each` with the slices (name, value still quoted) of every
/// parameter in order, without collecting them; stops at the first malformed one.
fn for_each_raw_param<'a>(
    s: &'a str,
    mut each: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), ParseError> {
    let mut rest = s.trim_start_matches(is_ws);
    while !rest.is_empty() {
        let body = rest
            .strip_prefix(';')
            .ok_or_else(|| err("expected ';' before parameter"))?;
        let end = param_end(body).ok_or_else(|| err("unterminated quoted parameter"))?;
        let (param, tail) = split_str(body, end);
        let (name, value) = parse_param(param)?;
        each(name, value);
        rest = tail;
    }
    Ok(())
}

/// Byte offset of the `;` that ends the first parameter (or the length),
/// skipping quoted strings. `None` if a quote is left open.
fn param_end(s: &str) -> Option<usize> {
    // Bytes: the delimiters are ASCII and never part of a multi-byte character.
    let mut bytes = s.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        match b {
            b';' => return Some(i),
            b'"' => skip_quoted(&mut bytes)?,
            _ => {}
        }
    }
    Some(s.len())
}

/// Advances past the closing quote of a quoted string whose opening quote
/// was just consumed.
fn skip_quoted(bytes: &mut impl Iterator<Item = (usize, u8)>) -> Option<()> {
    while let Some((_, b)) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next()?;
            }
            b'"' => return Some(()),
            _ => {}
        }
    }
    None
}

/// Parses one `name[=value]` parameter, value left as written.
fn parse_param(p: &str) -> Result<(&str, Option<&str>), ParseError> {
    let (name, value) = match p.bytes().position(|b| b == b'=') {
        Some(at) => {
            let (name, value) = split_str(p, at);
            (
                name,
                Some(value.get(1..).unwrap_or_default().trim_matches(is_ws)),
            )
        }
        None => (p, None),
    };
    let name = name.trim_matches(is_ws);
    if !is_token(name) {
        return Err(err("bad parameter name"));
    }
    if let Some(value) = value {
        check_param_value(value)?;
    }
    Ok((name, value))
}

/// A value is one whole quoted string, or text without blanks, quotes or
/// control characters.
fn check_param_value(v: &str) -> Result<(), ParseError> {
    let ok = if v.starts_with('"') {
        quoted_len(v) == Some(v.len()) && !v.chars().any(|c| c.is_ascii_control() && c != '\t')
    } else if v.is_ascii() {
        // The usual case, by bytes: ASCII whitespace other than SP is all control.
        !v.bytes()
            .any(|b| b == b'"' || b == b' ' || b < 0x20 || b == 0x7f)
    } else {
        !v.chars()
            .any(|c| c == '"' || c.is_whitespace() || c.is_control())
    };
    if ok {
        Ok(())
    } else {
        Err(err("bad parameter value"))
    }
}

/// What kind of message a buffer starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Starts with a `SIP/2.0 NNN` status line (after any leading CR/LF).
    Response,
    /// Starts with a `METHOD uri SIP/2.0` request line.
    Request,
    /// Only CR/LF bytes (RFC 5626 keep-alive ping or pong).
    KeepAlive,
    /// Anything else, including an empty buffer.
    Junk,
}

/// Classifies a buffer by its first line; leading CR/LF bytes are skipped.
pub fn classify(buf: &[u8]) -> Kind {
    let skip = leading_crlf(buf);
    if buf.is_empty() {
        return Kind::Junk;
    }
    if skip == buf.len() {
        return Kind::KeepAlive;
    }
    start_line_kind(first_line(buf.get(skip..).unwrap_or_default()))
}

/// Result of [`frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// The buffer starts with this many CR/LF keep-alive bytes to skip.
    KeepAlive(usize),
    /// The first message is this many bytes long (headers and body).
    Message(usize),
    /// The stream cannot be framed; the connection should be dropped.
    Invalid,
}

/// Stream framing for TCP: given the bytes received so far, how long is the
/// first message?
///
/// Uses `Content-Length` (or compact `l`), which is mandatory on streams.
/// Gives `Invalid` if the start line is not SIP, the header section does
/// not end within `max_len` bytes, `Content-Length` is missing or not a
/// number, or the whole message would exceed `max_len`.
pub fn frame(buf: &[u8], max_len: usize) -> Frame {
    let skip = leading_crlf(buf);
    if skip > 0 {
        return Frame::KeepAlive(skip);
    }
    let Some(&first) = buf.first() else {
        return Frame::Incomplete;
    };
    // Both start lines begin with a letter; anything else (TLS records,
    // binary junk) can be rejected without waiting for more data.
    if !first.is_ascii_alphabetic() || !start_line_plausible(buf) {
        return Frame::Invalid;
    }
    let Some((head_len, lines)) = header_end_and_lines(buf) else {
        return if buf.len() > max_len {
            Frame::Invalid
        } else {
            Frame::Incomplete
        };
    };
    if head_len > max_len {
        return Frame::Invalid;
    }
    let head = String::from_utf8_lossy(buf.get(..head_len).unwrap_or_default());
    let Ok((_, fields, spill)) = parse_head(&head, lines) else {
        return Frame::Invalid;
    };
    let Some(body_len) =
        first_value(&head, &spill, &fields, "content-length").and_then(parse_length)
    else {
        return Frame::Invalid;
    };
    match head_len.checked_add(body_len) {
        Some(total) if total > max_len => Frame::Invalid,
        Some(total) if buf.len() >= total => Frame::Message(total),
        Some(_) => Frame::Incomplete,
        None => Frame::Invalid,
    }
}

/// False once a complete first line is known not to be a SIP start line.
fn start_line_plausible(buf: &[u8]) -> bool {
    if !buf.contains(&b'\n') {
        return true;
    }
    start_line_kind(first_line(buf)) != Kind::Junk
}

/// Number of leading CR and LF bytes.
fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// The first line without its line ending (the whole buffer if no LF).
fn first_line(buf: &[u8]) -> &[u8] {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether a start line looks like a status line, a request line or neither.
fn start_line_kind(line: &[u8]) -> Kind {
    if is_status_line(line) {
        Kind::Response
    } else if is_request_line(line) {
        Kind::Request
    } else {
        Kind::Junk
    }
}

/// `SIP/2.0 NNN[ reason]`, checked on raw bytes so that a non-UTF-8 reason
/// does not matter.
fn is_status_line(line: &[u8]) -> bool {
    let Some(rest) = strip_prefix_ci(line, b"SIP/2.0 ") else {
        return false;
    };
    match rest {
        [a, b, c, tail @ ..] => {
            (b'1'..=b'6').contains(a)
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && (tail.is_empty() || tail.first() == Some(&b' '))
        }
        _ => false,
    }
}

/// `METHOD SP Request-URI SP SIP/2.0`.
fn is_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.iter().all(|&b| is_token_char(char::from(b)))
        && !uri.is_empty()
        && uri.iter().all(|b| b.is_ascii_graphic())
        && version.eq_ignore_ascii_case(b"SIP/2.0")
}

/// Case-insensitive ASCII prefix removal on bytes.
fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Offset just past the empty line that ends the header section (LF or
/// CRLF line endings), if the buffer contains one, and the number of lines
/// before it (a bound on the header fields, so their list is sized once).
fn header_end_and_lines(buf: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    let mut lines = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = buf.get(line_start..i)?;
        if line.is_empty() || line == b"\r" {
            return Some((i + 1, lines));
        }
        lines += 1;
        line_start = i + 1;
    }
    None
}

/// Splits the header section into the start line and the header fields,
/// unfolding continuation lines. Spans point into `head`, or past its end
/// into the returned spill text where a folded value was unfolded.
///
/// `lines` (the start line and the header lines) sizes the field list once.
fn parse_head(head: &str, lines: usize) -> Result<(Span, Vec<Field>, String), ParseError> {
    let mut fields = Vec::with_capacity(lines.saturating_sub(1));
    let mut spill = String::new();
    let mut start = None;
    let bytes = head.as_bytes();
    let mut at = 0;
    // Line by line as `split('\n')` would go, with a plain byte scan.
    while at <= bytes.len() {
        let (raw_len, control) = scan_line(bytes.get(at..).unwrap_or_default());
        let line_at = at;
        at += raw_len + 1;
        let raw = head.get(line_at..line_at + raw_len).unwrap_or_default();
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let span = Span {
            start: line_at,
            end: line_at + line.len(),
        };
        if start.is_none() {
            if line.is_empty() {
                return Err(err("missing start line"));
            }
            check_line(control)?;
            start = Some(span);
            continue;
        }
        if line.is_empty() {
            break;
        }
        check_line(control)?;
        if line.starts_with(is_ws) {
            let field = fields
                .last_mut()
                .ok_or_else(|| err("continuation line before any header"))?;
            fold(head, &mut spill, field, line.trim_matches(is_ws));
        } else {
            fields.push(parse_header_line(line, line_at)?);
        }
    }
    let start = start.ok_or_else(|| err("missing start line"))?;
    Ok((start, fields, spill))
}

/// Length of the first line of `rest` (up to its LF, or all of it) and
/// whether it holds a control character other than HT and a CR just before
/// the line end: one pass over the bytes for both.
fn scan_line(rest: &[u8]) -> (usize, bool) {
    let mut control = false;
    for (i, &b) in rest.iter().enumerate() {
        // Control characters are ASCII, and UTF-8 continuation bytes are all >= 0x80.
        if b < 0x20 || b == 0x7f {
            match b {
                b'\n' => return (i, control),
                b'\t' => {}
                b'\r' if rest.get(i + 1).is_none_or(|&next| next == b'\n') => {}
                _ => control = true,
            }
        }
    }
    (rest.len(), control)
}

/// Rejects a line with control characters (other than HT), including a stray CR.
fn check_line(control: bool) -> Result<(), ParseError> {
    if control {
        Err(err("control character in header section"))
    } else {
        Ok(())
    }
}

/// Joins a folded continuation onto the field's value with one space. The
/// value moves to the end of `spill` the first time (it then stays last there,
/// since only the last field can be continued) and grows in place.
fn fold(head: &str, spill: &mut String, field: &mut Field, continuation: &str) {
    if continuation.is_empty() {
        return;
    }
    let base = head.len();
    let at_spill_end = field.value.start >= base && field.value.end == base + spill.len();
    if !at_spill_end {
        let start = base + spill.len();
        // Only the last field is continued, so a spilled value is always at
        // the end; anything else is still in `head`.
        spill.push_str(text_at(head, "", field.value));
        field.value = Span {
            start,
            end: base + spill.len(),
        };
    }
    if field.value.start != field.value.end {
        spill.push(' ');
    }
    spill.push_str(continuation);
    field.value.end = base + spill.len();
}

/// Parses `Name SWS ":" value` (the line starting at `line_at` in the header
/// section) into a field.
fn parse_header_line(line: &str, line_at: usize) -> Result<Field, ParseError> {
    let colon = line
        .bytes()
        .position(|b| b == b':')
        .ok_or_else(|| err("header line without ':'"))?;
    let (name, value) = split_str(line, colon);
    let value = value.get(1..).unwrap_or_default();
    let name = name.trim_end_matches(is_ws);
    if !is_token(name) {
        return Err(err("bad header name"));
    }
    let name = match known_name(name) {
        Some(known) => FieldName::Known(known),
        None => FieldName::Written(Span {
            start: line_at,
            end: line_at + name.len(),
        }),
    };
    let trimmed = value.trim_start_matches(is_ws);
    // The value starts after the name part, the ':' and any blanks.
    let value_start = line_at + (line.len() - value.len()) + (value.len() - trimmed.len());
    let trimmed = trimmed.trim_end_matches(is_ws);
    Ok(Field {
        name,
        value: Span {
            start: value_start,
            end: value_start + trimmed.len(),
        },
    })
}

/// `SIP/2.0 NNN reason` → (status, reason); the reason may be empty.
fn parse_status_line(line: &str) -> Result<(u16, &str), ParseError> {
    if !is_status_line(line.as_bytes()) {
        return Err(err("not a SIP/2.0 status line"));
    }
    let rest = line.get("SIP/2.0 ".len()..).unwrap_or_default();
    let (code, reason) = split_str(rest, 3);
    let status: u16 = code.parse().map_err(|_| err("bad status code"))?;
    if !(100..=699).contains(&status) {
        return Err(err("status code out of range"));
    }
    Ok((status, reason.strip_prefix(' ').unwrap_or(reason)))
}

/// A body shorter than `Content-Length` announces means truncation.
fn check_body_length(text: &str, fields: &[Field], available: usize) -> Result<(), ParseError> {
    let Some(value) = first_value(text, "", fields, "content-length") else {
        return Ok(());
    };
    match parse_length(value) {
        Some(len) if len <= available => Ok(()),
        Some(_) => Err(err("body shorter than Content-Length")),
        None => Err(err("bad Content-Length")),
    }
}

/// First value of a header given its long name, in `head` and its `spill`.
fn first_value<'a>(head: &'a str, spill: &'a str, fields: &[Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| field_is(head, f, name))
        .map(|f| text_at(head, spill, f.value))
}

/// True for a non-empty run of ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a Content-Length; `None` if not a number or too large for usize.
fn parse_length(s: &str) -> Option<usize> {
    let s = s.trim_matches(is_ws);
    if !is_digits(s) {
        return None;
    }
    s.bytes().try_fold(0usize, |acc, b| {
        acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

/// Parses delta-seconds, clamping huge values to `u32::MAX`.
fn parse_delta(s: &str) -> Option<u32> {
    let s = s.trim_matches(is_ws);
    if !is_digits(s) {
        return None;
    }
    Some(s.bytes().fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}

/// Splits `s` at byte `i` without panicking (a bad index keeps all of `s`).
fn split_str(s: &str, i: usize) -> (&str, &str) {
    match (s.get(..i), s.get(i..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (s, ""),
    }
}

/// Splits before the first `c`; the second part starts with `c` or is empty.
fn split_before(s: &str, c: char) -> (&str, &str) {
    split_str(s, s.find(c).unwrap_or(s.len()))
}

/// Splits a byte slice at `i` without panicking.
fn split_bytes(buf: &[u8], i: usize) -> (&[u8], &[u8]) {
    match (buf.get(..i), buf.get(i..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (buf, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
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
        assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
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
        let r = with_headers(
            "Subject: I know you're there,\r\n   pick up the phone\r\n\t and talk\r\n",
        );
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
        assert_eq!(parse("SIP/2.0 200 Alles Gut\r\n\r\n").reason, "Alles Gut");
        assert_eq!(
            parse("SIP/2.0 200  two  spaces \r\n\r\n").reason,
            " two  spaces "
        );
        assert_eq!(parse("SIP/2.0 200 \r\n\r\n").reason, "");
        assert_eq!(parse("SIP/2.0 200\r\n\r\n").reason, "");
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
        let cases: [&[u8]; 7] = [
            b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: 300\r\n\r\n",
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
        let long_header = format!("SIP/2.0 200 OK\r\nX: {}\r\n", "a".repeat(300));
        assert_eq!(frame(long_header.as_bytes(), max), Frame::Invalid);
        let ends_late = format!("{long_header}Content-Length: 0\r\n\r\n");
        assert_eq!(frame(ends_late.as_bytes(), max), Frame::Invalid);
        // Exactly max_len bytes is fine.
        let exact = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            frame(exact.as_bytes(), exact.len()),
            Frame::Message(exact.len())
        );
        assert_eq!(frame(exact.as_bytes(), exact.len() - 1), Frame::Invalid);
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
        assert_eq!(reason.reason, "\u{fffd}OK");
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
}
