//! The header section of a message: the start line, the header fields and
//! their names (compact and common names resolved once), and folded values
//! unfolded. Names and values are ranges of one buffer, not copies.

use super::frame::is_status_line;
use super::{err, ParseError};
use crate::core::lexer::{
    is_continuation, is_digits, is_token, is_token_byte, is_ws, parse_length, scan_line, split_str,
    LineEnds,
};

/// A header name the parser recognises: the compact forms (RFC 3261
/// §7.3.3 and later extensions), the long names they stand for, and the
/// names a registrar's responses carry. A field with one of these names
/// records which (no text compared when it is looked up); any other name is
/// a span of the text.
///
/// A name added here is added to [`Known::name`], [`candidate`] (whose
/// test says when two names clash), `Known::ALL`, and [`COMPACT_NAMES`] if
/// it has a compact form; a test fails for each one left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Known {
    To,
    Via,
    From,
    CSeq,
    Date,
    Path,
    Allow,
    Event,
    Server,
    CallId,
    Contact,
    Expires,
    Require,
    Warning,
    Subject,
    ReferTo,
    Identity,
    Supported,
    UserAgent,
    FlowTimer,
    MinExpires,
    RetryAfter,
    ReferredBy,
    ContentType,
    AllowEvents,
    ServiceRoute,
    IdentityInfo,
    ContentLength,
    AcceptContact,
    RejectContact,
    SessionExpires,
    WwwAuthenticate,
    ContentEncoding,
    ProxyAuthenticate,
    RequestDisposition,
}

impl Known {
    /// Every known name, in the order of the variants.
    #[cfg(test)]
    const ALL: [Known; 35] = [
        Known::To,
        Known::Via,
        Known::From,
        Known::CSeq,
        Known::Date,
        Known::Path,
        Known::Allow,
        Known::Event,
        Known::Server,
        Known::CallId,
        Known::Contact,
        Known::Expires,
        Known::Require,
        Known::Warning,
        Known::Subject,
        Known::ReferTo,
        Known::Identity,
        Known::Supported,
        Known::UserAgent,
        Known::FlowTimer,
        Known::MinExpires,
        Known::RetryAfter,
        Known::ReferredBy,
        Known::ContentType,
        Known::AllowEvents,
        Known::ServiceRoute,
        Known::IdentityInfo,
        Known::ContentLength,
        Known::AcceptContact,
        Known::RejectContact,
        Known::SessionExpires,
        Known::WwwAuthenticate,
        Known::ContentEncoding,
        Known::ProxyAuthenticate,
        Known::RequestDisposition,
    ];

    /// The lower-case long name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Known::To => "to",
            Known::Via => "via",
            Known::From => "from",
            Known::CSeq => "cseq",
            Known::Date => "date",
            Known::Path => "path",
            Known::Allow => "allow",
            Known::Event => "event",
            Known::Server => "server",
            Known::CallId => "call-id",
            Known::Contact => "contact",
            Known::Expires => "expires",
            Known::Require => "require",
            Known::Warning => "warning",
            Known::Subject => "subject",
            Known::ReferTo => "refer-to",
            Known::Identity => "identity",
            Known::Supported => "supported",
            Known::UserAgent => "user-agent",
            Known::FlowTimer => "flow-timer",
            Known::MinExpires => "min-expires",
            Known::RetryAfter => "retry-after",
            Known::ReferredBy => "referred-by",
            Known::ContentType => "content-type",
            Known::AllowEvents => "allow-events",
            Known::ServiceRoute => "service-route",
            Known::IdentityInfo => "identity-info",
            Known::ContentLength => "content-length",
            Known::AcceptContact => "accept-contact",
            Known::RejectContact => "reject-contact",
            Known::SessionExpires => "session-expires",
            Known::WwwAuthenticate => "www-authenticate",
            Known::ContentEncoding => "content-encoding",
            Known::ProxyAuthenticate => "proxy-authenticate",
            Known::RequestDisposition => "request-disposition",
        }
    }

    /// This name's bit in a [`KnownSet`].
    fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

// A KnownSet has a bit for every known name.
const _: () = assert!((Known::RequestDisposition as u8) < 64);

/// Which known names a message's fields carry, found once at parse time:
/// asking for a header the message lacks (most of what a 2xx is asked)
/// reads no field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct KnownSet(u64);

impl KnownSet {
    /// The known names among `fields`.
    pub(super) fn of(fields: &[Field]) -> KnownSet {
        KnownSet(fields.iter().fold(0, |set, f| match f.name {
            FieldName::Known(k) => set | k.bit(),
            FieldName::Written(_) => set,
        }))
    }

    /// Whether a field is named `k`.
    pub(super) fn has(self, k: Known) -> bool {
        self.0 & k.bit() != 0
    }
}

/// The one known name a name of this length, first and last letter
/// (lower case) can be: no two known names share all three, so one compare
/// of the whole name decides.
fn candidate(len: usize, first: u8, last: u8) -> Option<Known> {
    Some(match (len, first, last) {
        (2, b't', b'o') => Known::To,
        (3, b'v', b'a') => Known::Via,
        (4, b'f', b'm') => Known::From,
        (4, b'c', b'q') => Known::CSeq,
        (4, b'd', b'e') => Known::Date,
        (4, b'p', b'h') => Known::Path,
        (5, b'a', b'w') => Known::Allow,
        (5, b'e', b't') => Known::Event,
        (6, b's', b'r') => Known::Server,
        (7, b'c', b'd') => Known::CallId,
        (7, b'c', b't') => Known::Contact,
        (7, b'e', b's') => Known::Expires,
        (7, b'r', b'e') => Known::Require,
        (7, b'w', b'g') => Known::Warning,
        (7, b's', b't') => Known::Subject,
        (8, b'r', b'o') => Known::ReferTo,
        (8, b'i', b'y') => Known::Identity,
        (9, b's', b'd') => Known::Supported,
        (10, b'u', b't') => Known::UserAgent,
        (10, b'f', b'r') => Known::FlowTimer,
        (11, b'm', b's') => Known::MinExpires,
        (11, b'r', b'r') => Known::RetryAfter,
        (11, b'r', b'y') => Known::ReferredBy,
        (12, b'c', b'e') => Known::ContentType,
        (12, b'a', b's') => Known::AllowEvents,
        (13, b's', b'e') => Known::ServiceRoute,
        (13, b'i', b'o') => Known::IdentityInfo,
        (14, b'c', b'h') => Known::ContentLength,
        (14, b'a', b't') => Known::AcceptContact,
        (14, b'r', b't') => Known::RejectContact,
        (15, b's', b's') => Known::SessionExpires,
        (16, b'w', b'e') => Known::WwwAuthenticate,
        (16, b'c', b'g') => Known::ContentEncoding,
        (18, b'p', b'e') => Known::ProxyAuthenticate,
        (19, b'r', b'n') => Known::RequestDisposition,
        _ => return None,
    })
}

/// Compact header names and the names they stand for.
const COMPACT_NAMES: [(u8, Known); 20] = [
    (b'a', Known::AcceptContact),
    (b'b', Known::ReferredBy),
    (b'c', Known::ContentType),
    (b'd', Known::RequestDisposition),
    (b'e', Known::ContentEncoding),
    (b'f', Known::From),
    (b'i', Known::CallId),
    (b'j', Known::RejectContact),
    (b'k', Known::Supported),
    (b'l', Known::ContentLength),
    (b'm', Known::Contact),
    (b'n', Known::IdentityInfo),
    (b'o', Known::Event),
    (b'r', Known::ReferTo),
    (b's', Known::Subject),
    (b't', Known::To),
    (b'u', Known::AllowEvents),
    (b'v', Known::Via),
    (b'x', Known::SessionExpires),
    (b'y', Known::Identity),
];

/// The known name `name` is (compact or long, any ASCII case); `None` for
/// other names. Every message's every line comes through here.
fn known_name(name: &str) -> Option<Known> {
    let b = name.as_bytes();
    if let [c] = b {
        let c = c.to_ascii_lowercase();
        return COMPACT_NAMES
            .iter()
            .find(|(short, _)| *short == c)
            .map(|(_, long)| *long);
    }
    let (first, last) = (b.first()? | 0x20, b.last()? | 0x20);
    candidate(b.len(), first, last).filter(|k| token_is(b, k.name()))
}

/// Whether `token` (RFC 3261 token characters only, as every header name
/// is checked to be first) is `lower`, a name of lower-case letters and
/// `-`, ignoring case. Setting bit 0x20 lower-cases a letter and leaves `-`
/// and every other token character as it is, and no other token character
/// becomes a letter or `-` that way: one OR and one compare a byte.
///
/// Eight bytes at a time, the last eight overlapping the ones before when
/// the length is not a multiple of eight (a name is 2 to 19 bytes).
fn token_is(token: &[u8], lower: &str) -> bool {
    let lower = lower.as_bytes();
    let n = token.len();
    if n != lower.len() {
        return false;
    }
    if n < 8 {
        return token.iter().zip(lower).all(|(t, l)| t | 0x20 == *l);
    }
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let mut at = 0;
    loop {
        let from = at.min(n - 8);
        if word(token, from) | 0x2020_2020_2020_2020 != word(lower, from) {
            return false;
        }
        if from == n - 8 {
            return true;
        }
        at += 8;
    }
}

/// A header name to look up: a known one by what it is, any other by its
/// text (compared ignoring ASCII case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wanted<'a> {
    Known(Known),
    Other(&'a str),
}

/// What a lookup key stands for: a compact or long known name (any case),
/// or another name as given (blanks around it trimmed).
pub(super) fn wanted(name: &str) -> Wanted<'_> {
    let name = name.trim_matches(is_ws);
    // A key need not be a token (a field's name is): such a key matches no
    // field, and known_name only reads tokens.
    match known_name(name).filter(|_| is_token(name)) {
        Some(k) => Wanted::Known(k),
        None => Wanted::Other(name),
    }
}

/// A byte range of a response's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

/// A header's name: which known name it is (no lookup needs to read the
/// text), or where any other name is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FieldName {
    Known(Known),
    Written(Span),
}

/// One header field: its name and where its (trimmed, unfolded) value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Field {
    pub(super) name: FieldName,
    pub(super) value: Span,
}

/// The text of `span` in a header section `head` followed by `spill` (where
/// folded values are unfolded); empty for a span that is not there.
pub(super) fn text_at<'a>(head: &'a str, spill: &'a str, span: Span) -> &'a str {
    if span.end <= head.len() {
        head.get(span.start..span.end)
    } else {
        let base = head.len();
        spill.get(span.start.saturating_sub(base)..span.end - base)
    }
    .unwrap_or_default()
}

/// Whether `field` is named `wanted`. A known name is never written out,
/// so only a known key can match a known field and only another name a
/// written one.
pub(super) fn field_is(head: &str, field: &Field, wanted: Wanted<'_>) -> bool {
    match (field.name, wanted) {
        (FieldName::Known(name), Wanted::Known(k)) => name == k,
        (FieldName::Written(span), Wanted::Other(w)) => {
            text_at(head, "", span).eq_ignore_ascii_case(w)
        }
        _ => false,
    }
}

/// Splits the header section into the start line and the header fields,
/// unfolding continuation lines. Spans point into `head`, or past its end
/// into the returned spill text where a folded value was unfolded.
///
/// `lines` (the start line and the header lines, as the scan that found
/// the section's end saw them) sizes the field list once and spares a
/// second scan of the bytes.
pub(super) fn parse_head(
    head: &str,
    lines: &LineEnds,
) -> Result<(Span, Vec<Field>, String), ParseError> {
    let mut fields = Vec::new();
    let (start, spill) = parse_head_into(head, lines, &mut fields)?;
    Ok((start, fields, spill))
}

/// [`parse_head`] appending the fields to `fields` (a reused buffer).
pub(super) fn parse_head_into(
    head: &str,
    lines: &LineEnds,
    fields: &mut Vec<Field>,
) -> Result<(Span, String), ParseError> {
    fields.reserve(lines.count().saturating_sub(1));
    let mut spill = String::new();
    let mut start = None;
    let bytes = head.as_bytes();
    let mut at = 0;
    let mut k = 0;
    // Line by line as `split('\n')` would go: where the scan that found the
    // section's end recorded the line, else with a plain byte scan.
    while at <= bytes.len() {
        let (raw_len, control) = match lines.get(k).filter(|(end, _)| *end >= at) {
            Some((end, bad)) => (end - at, bad),
            None => scan_line(bytes.get(at..).unwrap_or_default()),
        };
        k += 1;
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
        if is_continuation(line) {
            let field = fields
                .last_mut()
                .ok_or_else(|| err("continuation line before any header"))?;
            fold(head, &mut spill, field, line.trim_matches(is_ws));
        } else {
            fields.push(parse_header_line(line, line_at)?);
        }
    }
    let start = start.ok_or_else(|| err("missing start line"))?;
    Ok((start, spill))
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
    // By bytes: ':', SP and HT are ASCII, so every offset found is a char boundary.
    let b = line.as_bytes();
    let is_blank = |c: &u8| *c == b' ' || *c == b'\t';
    // One pass over the name: token bytes, then blanks, then the ':'.
    let name_len = b.iter().position(|&c| !is_token_byte(c)).unwrap_or(b.len());
    let colon = name_len
        + b.get(name_len..)
            .unwrap_or_default()
            .iter()
            .position(|c| !is_blank(c))
            .unwrap_or(b.len() - name_len);
    if name_len == 0 || b.get(colon) != Some(&b':') {
        return Err(if b.contains(&b':') {
            err("bad header name")
        } else {
            err("header line without ':'")
        });
    }
    let name = line.get(..name_len).unwrap_or_default();
    let name = match known_name(name) {
        Some(known) => FieldName::Known(known),
        None => FieldName::Written(Span {
            start: line_at,
            end: line_at + name.len(),
        }),
    };
    let value = b.get(colon + 1..).unwrap_or_default();
    let lead = value
        .iter()
        .position(|c| !is_blank(c))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|c| !is_blank(c))
        .map_or(lead, |i| i + 1);
    // The value starts after the name part, the ':' and any blanks.
    let value_start = line_at + colon + 1 + lead;
    Ok(Field {
        name,
        value: Span {
            start: value_start,
            end: value_start + (end - lead),
        },
    })
}

/// `SIP/2.0 NNN reason` → (status, reason); the reason may be empty.
pub(super) fn parse_status_line(line: &str) -> Result<(u16, &str), ParseError> {
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
pub(super) fn check_body_length(
    text: &str,
    fields: &[Field],
    available: usize,
) -> Result<(), ParseError> {
    let Some(value) = first_value(text, "", fields, Wanted::Known(Known::ContentLength)) else {
        return Ok(());
    };
    match parse_length(value) {
        Some(len) if len <= available => Ok(()),
        Some(_) => Err(err("body shorter than Content-Length")),
        None => Err(err("bad Content-Length")),
    }
}

/// Every value of a header, in message order (a parsed message's text
/// holds its spill: see [`text_at`]).
pub(super) fn all_values<'a>(
    text: &'a str,
    fields: &'a [Field],
    name: Wanted<'a>,
) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .filter(move |f| field_is(text, f, name))
        .map(move |f| text_at(text, "", f.value))
}

/// A CSeq value: its sequence number and method (`None` unless it is
/// exactly digits and a token).
pub(super) fn parse_cseq(value: &str) -> Option<(u32, &str)> {
    // Two parts between blanks, read off the bytes (SP and HT are ASCII,
    // so every offset is a char boundary; a token holds no blank, so a
    // third part fails the token check).
    let value = value.trim_matches(is_ws);
    let gap = value.bytes().position(|b| b == b' ' || b == b'\t')?;
    let (number, rest) = split_str(value, gap);
    let method = rest.trim_start_matches(is_ws);
    if !is_token(method) || !is_digits(number) {
        return None;
    }
    Some((number.parse().ok()?, method))
}

/// First value of a header, in `head` and its `spill`.
pub(super) fn first_value<'a>(
    head: &'a str,
    spill: &'a str,
    fields: &[Field],
    name: Wanted<'_>,
) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| field_is(head, f, name))
        .map(|f| text_at(head, spill, f.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_is_found_by_its_long_and_compact_forms_in_any_case() {
        let mut seen = std::collections::HashSet::new();
        let known = Known::ALL;
        for (i, k) in known.iter().enumerate() {
            assert_eq!(*k as usize, i, "ALL in the order of the variants");
            let n = k.name();
            assert_eq!(n.to_ascii_lowercase(), n);
            assert!(seen.insert(n), "{n} twice");
            assert_eq!(known_name(n), Some(*k));
            assert_eq!(known_name(&n.to_ascii_uppercase()), Some(*k));
            assert_eq!(wanted(&format!(" {n}\t")), Wanted::Known(*k));
            // Its candidate is itself, and no other name's is it.
            let (b, last) = (n.as_bytes(), n.len() - 1);
            assert_eq!(candidate(n.len(), b[0], b[last]), Some(*k));
        }
        let keys: std::collections::HashSet<_> = known
            .iter()
            .map(|k| {
                let b = k.name().as_bytes();
                (b.len(), b[0], b[b.len() - 1])
            })
            .collect();
        assert_eq!(keys.len(), known.len(), "length, first and last tell apart");
        // Every compact form stands for a known long name.
        for (c, k) in COMPACT_NAMES {
            assert!(known.contains(&k), "{k:?}");
            let c = char::from(c).to_string();
            assert_eq!(known_name(&c.to_ascii_uppercase()), Some(k));
            assert_eq!(wanted(&c), Wanted::Known(k));
        }
        assert_eq!(known_name("X-Custom"), None);
        for other in [
            "Tx",
            "Vias",
            "xseq",
            "Contacts",
            "content-lengths",
            "a-name-longer-than-any-common",
            "q",
            "Cal-lid",
            "Contant",
        ] {
            assert_eq!(known_name(other), None, "{other}");
            assert_eq!(wanted(other), Wanted::Other(other));
        }
        // A key that is not a token is never taken for a known name (CR
        // with bit 0x20 set reads as '-').
        assert_eq!(wanted("call\rid"), Wanted::Other("call\rid"));
    }

    #[test]
    fn a_set_of_known_names_holds_those_of_the_fields() {
        let head = "SIP/2.0 200 OK\r\nv: a\r\nX-A: 1\r\nContact: <sip:a@h>\r\n";
        let (_, fields, _) = parse_head(head, &LineEnds::count_only(0)).unwrap();
        let set = KnownSet::of(&fields);
        for k in Known::ALL {
            assert_eq!(
                set.has(k),
                matches!(k, Known::Via | Known::Contact),
                "{k:?}"
            );
        }
        assert_eq!(
            first_value(head, "", &fields, Wanted::Known(Known::Via)),
            Some("a")
        );
        assert_eq!(first_value(head, "", &fields, wanted("x-a")), Some("1"));
        assert_eq!(first_value(head, "", &fields, wanted("via ")), Some("a"));
        assert_eq!(first_value(head, "", &fields, wanted("X")), None);
    }

    /// The header line reader as first written (the colon found first,
    /// then the name checked): the one-pass reader must agree with it.
    fn header_line_by_parts(line: &str, line_at: usize) -> Result<Field, ParseError> {
        let colon = line
            .find(':')
            .ok_or_else(|| err("header line without ':'"))?;
        let name = line[..colon].trim_end_matches(is_ws);
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
        let after = &line[colon + 1..];
        let value = after.trim_matches(is_ws);
        let start = line_at + colon + 1 + (after.len() - after.trim_start_matches(is_ws).len());
        Ok(Field {
            name,
            value: Span {
                start,
                end: start + value.len(),
            },
        })
    }

    #[test]
    fn the_one_pass_header_line_reader_agrees_with_the_reader_by_parts() {
        // Every line of up to five symbols from an alphabet of name, blank,
        // separator and non-ASCII characters, at two offsets.
        let alphabet = ["a", "V", " ", "\t", ":", ";", "-", "\u{e9}", "x"];
        let mut lines = super::super::joinings(&alphabet, 5);
        lines.extend(
            [
                "Via: SIP/2.0/UDP h",
                "CSeq :1 REGISTER",
                "To\t:\t<sip:a@b> ",
                "v:x",
            ]
            .map(String::from),
        );
        for line in &lines {
            for at in [0, 17] {
                assert_eq!(
                    parse_header_line(line, at),
                    header_line_by_parts(line, at),
                    "{line:?}"
                );
            }
        }
    }

    #[test]
    fn a_token_is_matched_to_a_name_as_ignoring_case_would() {
        // Every token character in every place of every common name, and
        // every case of each name: the OR-and-compare agrees with
        // eq_ignore_ascii_case.
        let tokens: Vec<u8> = (0..=255u8)
            .filter(|b| is_token(&char::from(*b).to_string()))
            .collect();
        for k in Known::ALL {
            let name = k.name();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            for at in 0..name.len() {
                for t in &tokens {
                    let mut probe = name.as_bytes().to_vec();
                    probe[at] = *t;
                    let want =
                        std::str::from_utf8(&probe).is_ok_and(|p| p.eq_ignore_ascii_case(name));
                    assert_eq!(token_is(&probe, name), want, "{name} with {t:#04x} at {at}");
                }
            }
            assert!(token_is(name.to_ascii_uppercase().as_bytes(), name));
            assert!(!token_is(&name.as_bytes()[1..], name));
        }
    }

    #[test]
    fn a_cseq_is_a_number_and_a_method_between_blanks() {
        fn by_parts(v: &str) -> Option<(u32, &str)> {
            let mut parts = v.split(is_ws).filter(|p| !p.is_empty());
            let (n, m) = (parts.next()?, parts.next()?);
            if parts.next().is_some() || !is_token(m) || !is_digits(n) {
                return None;
            }
            Some((n.parse::<u32>().ok()?, m))
        }
        for v in [
            "1 OPTIONS",
            " 1\t OPTIONS ",
            "1 OPTIONS x",
            "1OPTIONS",
            "x OPTIONS",
            "",
            " ",
            "1 ",
            " OPTIONS",
            "4294967296 REGISTER",
            "4294967295 REGISTER",
            "1 OPT IONS",
            "1 é",
            "+1 A",
        ] {
            assert_eq!(parse_cseq(v), by_parts(v), "{v:?}");
        }
    }

    /// The lines recorded by the scan that found the end, and the lines
    /// found again byte by byte, read the same: over generated header
    /// sections with stray control characters, folding, CR without LF,
    /// multi-byte text and more lines than are recorded.
    #[test]
    fn recorded_line_ends_read_as_a_second_scan_would() {
        use crate::core::lexer::header_end_and_lines;
        let pieces: [&[u8]; 16] = [
            b"Via: SIP/2.0/UDP h;branch=z9",
            b"\r\n",
            b"\n",
            b"To: <sip:a@h>",
            b" folded",
            b"\t",
            b"\r",
            b"\x01",
            b"\x7f",
            b"X:",
            b"caf\xc3\xa9",
            b":",
            b"Name : v",
            b"\r\n\r\n",
            b"a",
            b"\xff",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut compared = 0;
        for round in 0..20_000 {
            let mut buf = b"OPTIONS sip:a@h SIP/2.0\r\n".to_vec();
            let parts = if round % 50 == 0 { 120 } else { next(24) };
            for _ in 0..parts {
                buf.extend_from_slice(pieces[next(pieces.len())]);
                if next(3) == 0 {
                    buf.extend_from_slice(b"\r\n");
                }
            }
            buf.extend_from_slice(b"\r\n\r\n");
            let Some((end, lines)) = header_end_and_lines(&buf) else {
                continue;
            };
            let Ok(head) = std::str::from_utf8(&buf[..end]) else {
                continue;
            };
            let recorded = parse_head(head, &lines);
            let scanned = parse_head(head, &LineEnds::count_only(lines.count()));
            assert_eq!(recorded, scanned, "{:?}", String::from_utf8_lossy(&buf));
            compared += 1;
        }
        assert!(compared > 10_000, "{compared}");
    }
}
