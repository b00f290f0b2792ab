//! Telling what a buffer holds ([`classify`]) and framing messages on a
//! stream ([`frame`], RFC 3261 §18.3).

use std::borrow::Cow;

use super::head::{first_value, parse_head, Field, Known, Span, Wanted};
use super::{err, ParseError};
use crate::core::lexer::{
    first_line, header_end_and_lines, is_token_byte, leading_crlf, parse_length, split_bytes,
    strip_prefix_ci, LineEnds,
};

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

/// [`classify`] without reading a request line: a message whose start
/// line is not a status line is taken for a request, and the request
/// reader that follows checks its start line (where `classify` would say
/// [`Kind::Junk`], the reader fails; see `classify` for that case). Every
/// datagram comes through here, and the request line is read once.
pub fn classify_unchecked(buf: &[u8]) -> Kind {
    let skip = leading_crlf(buf);
    let rest = buf.get(skip..).unwrap_or_default();
    if buf.is_empty() || rest.is_empty() || strip_prefix_ci(rest, b"SIP/2.0 ").is_some() {
        // Nothing, keep-alive bytes, or a status line (or junk that starts like one).
        return classify(buf);
    }
    Kind::Request
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
    /// The first message is over the limit: this many bytes, or (`None`) a
    /// header section that did not end within it. The connection should be
    /// dropped.
    TooLarge(Option<usize>),
}

/// Stream framing for TCP: given the bytes received so far, how long is the
/// first message?
///
/// Uses `Content-Length` (or compact `l`), which is mandatory on streams.
/// Gives `Invalid` if the start line is not SIP or `Content-Length` is
/// missing or not a number, and `TooLarge` if the header section does not
/// end within `max_len` bytes or the whole message would exceed `max_len`.
pub fn frame(buf: &[u8], max_len: usize) -> Frame {
    frame_with_head(buf, max_len).0
}

/// The header section of a message [`frame_with_head`] framed, as its
/// parse found it: given with that message's bytes to
/// [`Response::parse_framed`](super::Response::parse_framed) or
/// [`Request::parse_framed`](super::Request::parse_framed), it spares
/// parsing the section a second time (on a stream, every message's head is
/// parsed to find its length).
#[derive(Debug)]
pub struct FramedHead {
    pub(super) head_len: usize,
    pub(super) start: Span,
    pub(super) fields: Vec<Field>,
    pub(super) spill: String,
}

impl FramedHead {
    /// The header section of `buf` this head was parsed from, if `buf` can
    /// be that message (long enough, the section ending with its blank
    /// line; a head given with other bytes is refused, not trusted) and the
    /// section is UTF-8 (checked when it was framed; checked again rather
    /// than assumed).
    pub(super) fn text_of<'a>(&self, buf: &'a [u8]) -> Result<&'a str, ParseError> {
        let section = buf
            .get(..self.head_len)
            .filter(|h| h.ends_with(b"\n\n") || h.ends_with(b"\n\r\n"))
            .ok_or_else(|| err("framed head does not fit the message"))?;
        std::str::from_utf8(section).map_err(|_| err("header section is not UTF-8"))
    }
}

/// [`frame`], and with [`Frame::Message`] (only), for a header section
/// that is valid UTF-8, that section as parsed.
pub fn frame_with_head(buf: &[u8], max_len: usize) -> (Frame, Option<FramedHead>) {
    let skip = leading_crlf(buf);
    if skip > 0 {
        return (Frame::KeepAlive(skip), None);
    }
    let Some(&first) = buf.first() else {
        return (Frame::Incomplete, None);
    };
    // Both start lines begin with a letter; anything else (TLS records,
    // binary junk) can be rejected without waiting for more data.
    if !first.is_ascii_alphabetic() || !start_line_plausible(buf) {
        return (Frame::Invalid, None);
    }
    let Some((head_len, lines)) = header_end_and_lines(buf) else {
        let frame = if buf.len() > max_len {
            Frame::TooLarge(None)
        } else {
            Frame::Incomplete
        };
        return (frame, None);
    };
    if head_len > max_len {
        return (Frame::TooLarge(None), None);
    }
    let head = buf.get(..head_len).unwrap_or_default();
    // Valid UTF-8 (the usual case) is checked by the fast validator; the
    // lossy conversion walks the text in chunks.
    let head = match std::str::from_utf8(head) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(head),
    };
    let lines = match head {
        Cow::Borrowed(_) => lines,
        Cow::Owned(_) => LineEnds::count_only(lines.count()),
    };
    let Ok((start, fields, spill)) = parse_head(&head, &lines) else {
        return (Frame::Invalid, None);
    };
    let Some(body_len) = first_value(&head, &spill, &fields, Wanted::Known(Known::ContentLength))
        .and_then(parse_length)
    else {
        return (Frame::Invalid, None);
    };
    let frame = match head_len.checked_add(body_len) {
        Some(total) if total > max_len => Frame::TooLarge(Some(total)),
        Some(total) if buf.len() >= total => Frame::Message(total),
        Some(_) => Frame::Incomplete,
        None => Frame::Invalid,
    };
    // Only a complete message's head is worth keeping, and only one read
    // as it is (a lossy copy's spans are not the message's bytes).
    let parsed = (matches!(frame, Frame::Message(_)) && matches!(head, Cow::Borrowed(_)))
        .then_some(FramedHead {
            head_len,
            start,
            fields,
            spill,
        });
    (frame, parsed)
}

/// Where the body of the message in `buf` (a request or a response) is: it
/// starts after the header section and is as long as Content-Length says
/// (what is there when it says more, or all the rest without one). `None`
/// when the header section is incomplete or does not parse.
pub fn body_range(buf: &[u8]) -> Option<std::ops::Range<usize>> {
    let skip = leading_crlf(buf);
    let rest = buf.get(skip..)?;
    let (head_len, lines) = header_end_and_lines(rest)?;
    let head = std::str::from_utf8(rest.get(..head_len)?).ok()?;
    let (_, fields, spill) = parse_head(head, &lines).ok()?;
    let available = rest.len() - head_len;
    let len = first_value(head, &spill, &fields, Wanted::Known(Known::ContentLength))
        .and_then(parse_length)
        .unwrap_or(available)
        .min(available);
    let start = skip + head_len;
    Some(start..start + len)
}

/// False once a complete first line is known not to be a SIP start line.
fn start_line_plausible(buf: &[u8]) -> bool {
    if !buf.contains(&b'\n') {
        return true;
    }
    start_line_kind(first_line(buf)) != Kind::Junk
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
pub(super) fn is_status_line(line: &[u8]) -> bool {
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
    request_line_parts(line).is_some()
}

/// The method and Request-URI of `METHOD SP Request-URI SP SIP/2.0` (a
/// token, a non-empty run of visible characters, the version in any case).
pub(super) fn request_line_parts(line: &[u8]) -> Option<(&[u8], &[u8])> {
    // One pass: the method runs to its first non-token byte, which must be
    // the space; the URI to its first non-visible byte, which must be the
    // second space; the rest is the version (so no third space).
    let method_len = line.iter().position(|&b| !is_token_byte(b))?;
    let (method, rest) = split_bytes(line, method_len);
    let rest = rest.strip_prefix(b" ")?;
    let uri_len = rest.iter().position(|b| !b.is_ascii_graphic())?;
    let (uri, version) = split_bytes(rest, uri_len);
    let version = version.strip_prefix(b" ")?;
    let ok = !method.is_empty() && !uri.is_empty() && version.eq_ignore_ascii_case(b"SIP/2.0");
    ok.then_some((method, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as the grammar states it: three parts split at single spaces.
    fn by_the_grammar(line: &[u8]) -> Option<(&[u8], &[u8])> {
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(uri), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let ok = !method.is_empty()
            && method.iter().all(|&b| is_token_byte(b))
            && !uri.is_empty()
            && uri.iter().all(|b| b.is_ascii_graphic())
            && version.eq_ignore_ascii_case(b"SIP/2.0");
        ok.then_some((method, uri))
    }

    #[test]
    fn the_one_pass_request_line_reader_follows_the_grammar() {
        let lines: [&[u8]; 16] = [
            b"OPTIONS sip:a@h SIP/2.0",
            b"OPTIONS sip:a@h sip/2.0",
            b"OPTIONS  sip:a@h SIP/2.0",
            b"OPTIONS sip:a@h  SIP/2.0",
            b"OPTIONS sip:a@h SIP/2.0 ",
            b" OPTIONS sip:a@h SIP/2.0",
            b"OPTIONS sip:a@h",
            b"OPTIONS",
            b"",
            b"OPT(ONS sip:a@h SIP/2.0",
            b"OPTIONS sip:a\x01@h SIP/2.0",
            b"OPTIONS sip:\xc3\xa9@h SIP/2.0",
            b"INVITE sip:a@h SIP/2.1",
            b"INVITE sip:a@h SIP/2.0\r",
            b"X-Y.z! <sip:a@h> SIP/2.0",
            b"INVITE sip:a@h SIP/2.0 extra",
        ];
        for line in lines {
            assert_eq!(
                request_line_parts(line),
                by_the_grammar(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn the_unchecked_classification_differs_only_where_the_request_reader_fails() {
        let bufs: [&[u8]; 14] = [
            b"OPTIONS sip:a@h SIP/2.0\r\nVia: x\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"sip/2.0 404 Not Found\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/2.0 \r\n\r\n",
            b"\r\n\r\n",
            b"",
            b"hello\r\n\r\n",
            b"\x00\x01\x02",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS  sip:a@h SIP/2.0\r\n\r\n",
            b"\r\nOPTIONS sip:a@h SIP/2.0\r\nVia: x\r\n\r\n",
            b"OPTIONS sip:a@h SIP/2.0",
            b"SIP/2.0",
        ];
        for buf in bufs {
            let (checked, unchecked) = (classify(buf), classify_unchecked(buf));
            let what = String::from_utf8_lossy(buf);
            if checked != unchecked {
                assert_eq!(
                    (checked, unchecked),
                    (Kind::Junk, Kind::Request),
                    "{what:?}"
                );
                assert!(
                    crate::core::message::Request::parse(buf).is_err(),
                    "{what:?}"
                );
            }
        }
    }
}
