//! The header section of a message: the start line, the header fields and
//! their names (compact and common names resolved once), and folded values
//! unfolded. Names and values are ranges of one buffer, not copies.

use super::frame::is_status_line;
use super::{err, ParseError};
use crate::core::lexer::{
    is_continuation, is_digits, is_token, is_token_byte, is_ws, parse_length, scan_line, split_str,
    LineEnds,
};

/// Header names a registrar's responses carry (stored without an
/// allocation), grouped by length, shortest first.
const COMMON_NAMES_BY_LEN: [(usize, &[&str]); 13] = [
    (2, &["to"]),
    (3, &["via"]),
    (4, &["from", "cseq", "date", "path"]),
    (5, &["allow"]),
    (6, &["server"]),
    (7, &["call-id", "contact", "expires", "require", "warning"]),
    (9, &["supported"]),
    (10, &["user-agent", "flow-timer"]),
    (11, &["min-expires", "retry-after"]),
    (13, &["service-route"]),
    (14, &["content-length"]),
    (16, &["www-authenticate"]),
    (18, &["proxy-authenticate"]),
];

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
    // Only the names of the same length are compared (every message's every
    // line comes through here): the common names grouped by length.
    let len = name.len();
    COMMON_NAMES_BY_LEN
        .iter()
        .find(|(l, _)| *l == len)
        .and_then(|(_, names)| names.iter().find(|n| token_is(name.as_bytes(), n)))
        .copied()
}

/// Whether `token` (RFC 3261 token characters only, as every header name
/// is checked to be first) is `lower`, a name of lower-case letters and
/// `-`, ignoring case. Setting bit 0x20 lower-cases a letter and leaves `-`
/// and every other token character as it is, and no other token character
/// becomes a letter or `-` that way: one OR and one compare a byte.
fn token_is(token: &[u8], lower: &str) -> bool {
    token.len() == lower.len()
        && token
            .iter()
            .zip(lower.as_bytes())
            .all(|(t, l)| t | 0x20 == *l)
}

/// The name a lookup key stands for: a compact name expanded to its long
/// form, any other name as given. Names are compared ignoring ASCII case, so
/// no lower-cased copy is made.
pub(super) fn lookup_name(name: &str) -> &str {
    let name = name.trim_matches(is_ws);
    if let [c] = name.as_bytes() {
        let c = char::from(c.to_ascii_lowercase());
        if let Some((_, long)) = COMPACT_NAMES.iter().find(|(short, _)| *short == c) {
            return long;
        }
    }
    name
}

/// A byte range of a response's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

/// A header's name: the canonical form of a compact or common name (no
/// lookup needs to read the text), or where the name is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FieldName {
    Known(&'static str),
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

/// Whether `field` is named `wanted` (a long name, any case).
pub(super) fn field_is(head: &str, field: &Field, wanted: &str) -> bool {
    match field.name {
        FieldName::Known(name) => name.eq_ignore_ascii_case(wanted),
        FieldName::Written(span) => text_at(head, "", span).eq_ignore_ascii_case(wanted),
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
    let Some(value) = first_value(text, "", fields, "content-length") else {
        return Ok(());
    };
    match parse_length(value) {
        Some(len) if len <= available => Ok(()),
        Some(_) => Err(err("body shorter than Content-Length")),
        None => Err(err("bad Content-Length")),
    }
}

/// Every value of a header given its long name, in message order (a
/// parsed message's text holds its spill: see [`text_at`]).
pub(super) fn all_values<'a>(
    text: &'a str,
    fields: &'a [Field],
    name: &'a str,
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

/// First value of a header given its long name, in `head` and its `spill`.
pub(super) fn first_value<'a>(
    head: &'a str,
    spill: &'a str,
    fields: &[Field],
    name: &str,
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
    fn the_common_names_are_grouped_by_their_length_in_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for (len, names) in COMMON_NAMES_BY_LEN {
            for n in names {
                assert_eq!(n.len(), len, "{n}");
                assert_eq!(n.to_ascii_lowercase(), *n);
                assert!(seen.insert(*n), "{n} twice");
                assert_eq!(known_name(&n.to_ascii_uppercase()), Some(*n));
            }
        }
        assert_eq!(known_name("X-Custom"), None);
        for other in [
            "Tx",
            "Vias",
            "xseq",
            "Contacts",
            "content-lengths",
            "a-name-longer-than-any-common",
        ] {
            assert_eq!(known_name(other), None, "{other}");
        }
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
        let mut lines = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = lines
                .iter()
                .flat_map(|l| alphabet.iter().map(move |c| format!("{l}{c}")))
                .collect();
            lines.extend(longer);
        }
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
        for (_, names) in COMMON_NAMES_BY_LEN {
            for name in names {
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
