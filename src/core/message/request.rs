//! [`Request`]: one received request (RFC 3261 §7.1), read the way a user
//! agent server needs it: the request line, the headers a response copies
//! (Via, From, To, Call-ID, CSeq) and where the body is. Like the response
//! reader it works on untrusted input, never panics and keeps one buffer
//! for every name and value.

use std::ops::Range;

use super::frame::{request_line_parts, FramedHead};
use super::head::{
    all_values, first_value, parse_cseq, parse_head_into, text_at, wanted, Field, FieldName, Known,
    Span, Wanted,
};
use super::name_addr::split_name_addr;
use super::{err, ParseError, Via};
use crate::core::lexer::{
    find_param, header_end_and_lines, is_token, leading_crlf, list_items, parse_length,
};
use crate::core::uri::UriRef;

/// A parsed request. Header values are read in place; the body is a range
/// of the buffer it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The header section (its bytes as received), then any unfolded values.
    text: String,
    /// Length of the header section inside `text` (the spill follows it).
    head_len: usize,
    /// Header fields in message order.
    fields: Vec<Field>,
    /// Index in `fields` of the first Via, From, To, Call-ID, CSeq and
    /// Content-Length (the headers every answer reads), found once.
    first: [Option<u16>; FIRST.len()],
    /// From and To, each read once as a name-addr: both there and readable
    /// (an answerable request needs them), and where their tags are.
    names: Names,
    /// The first CSeq's number and where its method is, read once.
    cseq: Option<(u32, Span)>,
    method: Span,
    uri: Span,
    /// Offset of the header section in the parsed buffer (leading CR/LF skipped).
    start: usize,
    /// Where the body is in the parsed buffer.
    body: Range<usize>,
}

/// The headers whose first line [`Request`] finds at parse time, in the
/// order of these indexes.
const FIRST: [Known; 7] = [
    Known::Via,
    Known::From,
    Known::To,
    Known::CallId,
    Known::CSeq,
    Known::ContentLength,
    Known::Require,
];
const VIA: usize = 0;
const FROM: usize = 1;
const TO: usize = 2;
const CALL_ID: usize = 3;
const CSEQ: usize = 4;
const CONTENT_LENGTH: usize = 5;
const REQUIRE: usize = 6;

/// From and To as read at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Names {
    /// Both are there and split as name-addrs.
    readable: bool,
    /// Where the From tag is in the text (a token), if it has one.
    from_tag: Option<Span>,
    /// Where the To tag is in the text (a token), if it has one.
    to_tag: Option<Span>,
}

impl Names {
    /// Reads the From and To values `from` and `to` of `text`.
    fn read(text: &str, from: Option<&str>, to: Option<&str>) -> Names {
        let (from_ok, from_tag) = name_addr_tag(text, from);
        let (to_ok, to_tag) = name_addr_tag(text, to);
        Names {
            readable: from_ok && to_ok,
            from_tag,
            to_tag,
        }
    }
}

/// Whether `value` (a header value inside `text`) is there and splits as a
/// name-addr, and where in `text` its `tag` parameter is when that is a token.
fn name_addr_tag(text: &str, value: Option<&str>) -> (bool, Option<Span>) {
    let Some(parts) = value.and_then(|v| split_name_addr(v).ok()) else {
        return (false, None);
    };
    let tag = find_param(parts.params, "tag")
        .ok()
        .flatten()
        .flatten()
        .filter(|t| is_token(t))
        .and_then(|t| span_in(text, t));
    (true, tag)
}

/// Where `part`, a slice of `text`, lies in it (`None` for any other slice).
fn span_in(text: &str, part: &str) -> Option<Span> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= text.len()).then_some(Span { start, end })
}

/// The index in [`FIRST`] of a known header name.
fn first_index(known: Known) -> Option<usize> {
    match known {
        Known::Via => Some(VIA),
        Known::From => Some(FROM),
        Known::To => Some(TO),
        Known::CallId => Some(CALL_ID),
        Known::CSeq => Some(CSEQ),
        Known::ContentLength => Some(CONTENT_LENGTH),
        Known::Require => Some(REQUIRE),
        _ => None,
    }
}

/// Why a request that can be answered is refused (RFC 3261 §8.2, §18.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400 or 416.
    pub status: u16,
    /// Reason phrase naming what is wrong (fixed text, no peer input).
    pub reason: &'static str,
}

impl Default for Request {
    fn default() -> Request {
        Request::empty()
    }
}

impl Request {
    /// Parses one request from a datagram or a framed stream message.
    ///
    /// Leading CR/LF bytes are skipped. The header section must be UTF-8
    /// (RFC 3261 §7.3) and well formed; a body shorter than Content-Length
    /// announces is not an error here (see [`refusal`](Self::refusal)), so
    /// such a request can still be answered with 400.
    pub fn parse(buf: &[u8]) -> Result<Request, ParseError> {
        Request::parse_reusing(buf, Request::empty())
    }

    /// [`parse`](Self::parse) into the buffers of `spare`, a request that is
    /// no longer needed (a receive loop keeps one, so reading a request
    /// allocates nothing once they are large enough).
    pub fn parse_reusing(buf: &[u8], spare: Request) -> Result<Request, ParseError> {
        let Request {
            text, mut fields, ..
        } = spare;
        let start = leading_crlf(buf);
        let rest = buf.get(start..).unwrap_or_default();
        let (head_len, lines) =
            header_end_and_lines(rest).ok_or_else(|| err("incomplete header section"))?;
        let head = std::str::from_utf8(rest.get(..head_len).unwrap_or_default())
            .map_err(|_| err("header section is not UTF-8"))?;
        fields.clear();
        let (line, spill) = parse_head_into(head, &lines, &mut fields)?;
        Request::assemble(rest, start, head, line, fields, &spill, text)
    }

    /// [`parse_reusing`](Self::parse_reusing) of a message a stream's
    /// framing found whole, reusing the parse of its header section that
    /// framing made (see [`frame_with_head`](super::frame::frame_with_head)):
    /// the same request, without reading the section twice. `head` must come
    /// from framing these same bytes (see [`Response::parse_framed`](super::Response::parse_framed)).
    pub fn parse_framed(
        buf: &[u8],
        head: FramedHead,
        spare: Request,
    ) -> Result<Request, ParseError> {
        // Framed messages start with their start line (leading CR/LF are
        // keep-alives to the framing).
        let text = head.text_of(buf)?;
        Request::assemble(
            buf,
            0,
            text,
            head.start,
            head.fields,
            &head.spill,
            spare.text,
        )
    }

    /// A request from its parsed header section: `rest` is the message from
    /// its start line on (`start` bytes into the buffer received), `head`
    /// its header section, `line` the start line's span, `text` a buffer to
    /// reuse.
    fn assemble(
        rest: &[u8],
        start: usize,
        head: &str,
        line: Span,
        fields: Vec<Field>,
        spill: &str,
        mut text: String,
    ) -> Result<Request, ParseError> {
        let head_len = head.len();
        let (method, uri) = parse_request_line(head, line)?;
        text.clear();
        text.reserve(head.len() + spill.len());
        text.push_str(head);
        text.push_str(spill);
        let mut first = [None; FIRST.len()];
        for (i, f) in fields.iter().enumerate() {
            if let FieldName::Known(name) = f.name {
                if let Some(k) = first_index(name) {
                    if first[k].is_none() {
                        first[k] = u16::try_from(i).ok();
                    }
                }
            }
        }
        let value = |k: usize| {
            let f = fields.get(usize::from(first[k]?))?;
            Some(text_at(&text, "", f.value))
        };
        let declared = value(CONTENT_LENGTH).and_then(parse_length);
        let names = Names::read(&text, value(FROM), value(TO));
        let cseq = value(CSEQ)
            .and_then(parse_cseq)
            .and_then(|(n, m)| Some((n, span_in(&text, m)?)));
        let available = rest.len() - head_len;
        let body_len = declared.unwrap_or(available).min(available);
        Ok(Request {
            text,
            head_len,
            first,
            names,
            cseq,
            fields,
            method,
            uri,
            start,
            body: start + head_len..start + head_len + body_len,
        })
    }

    /// A request with nothing in it (allocates nothing): a spare for
    /// [`parse_reusing`](Self::parse_reusing).
    pub fn empty() -> Request {
        let none = Span { start: 0, end: 0 };
        Request {
            text: String::new(),
            head_len: 0,
            fields: Vec::new(),
            first: [None; FIRST.len()],
            names: Names::default(),
            cseq: None,
            method: none,
            uri: none,
            start: 0,
            body: 0..0,
        }
    }

    /// The method, e.g. `OPTIONS`.
    pub fn method(&self) -> &str {
        text_at(&self.text, "", self.method)
    }

    /// The Request-URI as written.
    pub fn uri(&self) -> &str {
        text_at(&self.text, "", self.uri)
    }

    /// The first value of a header; `name` may be in any case and in long or
    /// compact form.
    pub fn header(&self, name: &str) -> Option<&str> {
        let wanted = wanted(name);
        if let Some(k) = match wanted {
            Wanted::Known(known) => first_index(known),
            Wanted::Other(_) => None,
        } {
            return self.first_value(k);
        }
        first_value(&self.text, "", &self.fields, wanted)
    }

    /// The first value of header `FIRST[k]`, found at parse time.
    fn first_value(&self, k: usize) -> Option<&str> {
        let f = self.fields.get(usize::from((*self.first.get(k)?)?))?;
        Some(text_at(&self.text, "", f.value))
    }

    /// Whether it has a Require header (known from parse time: most
    /// requests have none, and the answer to an OPTIONS asks).
    pub fn has_require(&self) -> bool {
        self.first[REQUIRE].is_some()
    }

    /// The first From header, as written.
    pub fn from_value(&self) -> Option<&str> {
        self.first_value(FROM)
    }

    /// The first To header, as written.
    pub fn to_value(&self) -> Option<&str> {
        self.first_value(TO)
    }

    /// The first CSeq header, as written.
    pub fn cseq_value(&self) -> Option<&str> {
        self.first_value(CSEQ)
    }

    /// Every header line with that name (any case, long or compact form), in
    /// message order. Comma-separated lists on one line are not split.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        all_values(&self.text, &self.fields, wanted(name))
    }

    /// Every header as (name, value), in message order: what a response
    /// copies header by header. A known name (a compact form, the long
    /// name it stands for, or a name a registrar's responses carry) reads
    /// as its lower-case long form; any other name as written.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|f| {
            let name = match f.name {
                FieldName::Known(n) => n.name(),
                FieldName::Written(span) => text_at(&self.text, "", span),
            };
            (name, text_at(&self.text, "", f.value))
        })
    }

    /// The Call-ID header.
    pub fn call_id(&self) -> Option<&str> {
        self.first_value(CALL_ID)
    }

    /// The CSeq sequence number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, method) = self.cseq?;
        Some((n, text_at(&self.text, "", method)))
    }

    /// The topmost Via value (first element of the first Via line), as written.
    pub fn top_via_text(&self) -> Option<&str> {
        list_items(self.first_value(VIA)?).next()
    }

    /// The topmost Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.top_via_text()?.parse().ok()
    }

    /// The `branch` of the topmost Via.
    pub fn branch(&self) -> Option<String> {
        self.top_via()?.branch().map(str::to_owned)
    }

    /// The `tag` parameter of the From header.
    pub fn from_tag(&self) -> Option<&str> {
        Some(text_at(&self.text, "", self.names.from_tag?))
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<&str> {
        Some(text_at(&self.text, "", self.names.to_tag?))
    }

    /// Where the body is in the buffer this was parsed from (at most what
    /// Content-Length announces; what arrived when it announces more).
    pub fn body_range(&self) -> Range<usize> {
        self.body.clone()
    }

    /// Where the header section starts in the parsed buffer (after any
    /// leading CR/LF) and how long it is.
    pub fn head_range(&self) -> Range<usize> {
        self.start..self.start + self.head_len
    }

    /// Where the first value of the first Via line is in the parsed buffer,
    /// when it is written there as one piece (not folded).
    pub fn top_via_range(&self) -> Option<Range<usize>> {
        let field = self.fields.get(usize::from(self.first[VIA]?))?;
        if field.value.end > self.head_len {
            return None; // folded: the value was unfolded into the spill
        }
        let value = text_at(&self.text, "", field.value);
        let first = list_items(value).next()?;
        let at = span_in(&self.text, first)?;
        Some(self.start + at.start..self.start + at.end)
    }

    /// The request (parsed from `buf`) with its top Via value replaced by
    /// `via`: spliced into the bytes as received, or, when that Via is
    /// folded, written again header by header.
    pub fn with_top_via(&self, buf: &[u8], via: &str) -> Vec<u8> {
        if let Some(r) = self.top_via_range() {
            let (Some(before), Some(after)) = (buf.get(..r.start), buf.get(r.end..)) else {
                return buf.to_vec();
            };
            let mut out = Vec::with_capacity(buf.len() + via.len());
            out.extend_from_slice(before);
            out.extend_from_slice(via.as_bytes());
            out.extend_from_slice(after);
            return out;
        }
        let mut out = String::with_capacity(buf.len() + via.len());
        out.push_str(text_at(&self.text, "", self.method));
        out.push(' ');
        out.push_str(self.uri());
        out.push_str(" SIP/2.0\r\n");
        let mut first_via = true;
        for (name, value) in self.fields() {
            out.push_str(name);
            out.push_str(": ");
            if first_via && name.eq_ignore_ascii_case("via") {
                first_via = false;
                out.push_str(via);
                // The rest of that line's list stays.
                for item in list_items(value).skip(1) {
                    out.push_str(", ");
                    out.push_str(item);
                }
            } else {
                out.push_str(value);
            }
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(buf.get(self.body.clone()).unwrap_or_default());
        bytes
    }

    /// Whether a response can be built from this request: it has a
    /// readable top Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2).
    pub fn answerable(&self) -> bool {
        self.top_via().is_some() && self.has_dialog_headers()
    }

    /// Whether it has From, To, a non-empty Call-ID and a readable CSeq
    /// (what an answer copies besides the Via).
    pub fn has_dialog_headers(&self) -> bool {
        self.from_value().is_some()
            && self.to_value().is_some()
            && self.call_id().is_some_and(|c| !c.is_empty())
            && self.cseq().is_some()
    }

    /// What is wrong with an answerable request that a user agent server
    /// must refuse: a Request-URI that is not a SIP URI (416), a CSeq method
    /// that is not the request's, From or To that do not parse, a bad
    /// Content-Length or a body shorter than it announces (400).
    pub fn refusal(&self, received: usize) -> Option<Refusal> {
        self.refusal_given(received, UriRef::parse(self.uri()).is_ok())
    }

    /// [`refusal`](Self::refusal) for a caller that parsed the Request-URI
    /// already (`uri_parses`: it did).
    pub fn refusal_given(&self, received: usize, uri_parses: bool) -> Option<Refusal> {
        let bad = |reason| {
            Some(Refusal {
                status: 400,
                reason,
            })
        };
        let uri = self.uri();
        if !is_sip_scheme(uri) {
            return Some(Refusal {
                status: 416,
                reason: "Unsupported URI Scheme",
            });
        }
        if !uri_parses {
            return bad("Bad Request-URI");
        }
        if self.cseq().map(|(_, m)| m) != Some(self.method()) {
            return bad("CSeq Method Does Not Match");
        }
        if !self.names.readable {
            return bad("Bad From or To");
        }
        let available = received.saturating_sub(self.start + self.head_len);
        match self.first_value(CONTENT_LENGTH).map(parse_length) {
            None => None,
            Some(Some(len)) if len <= available => None,
            Some(_) => bad("Bad Content-Length"),
        }
    }
}

/// Whether a URI's scheme is `sip` or `sips` (any case).
fn is_sip_scheme(uri: &str) -> bool {
    let scheme = crate::core::lexer::split_once_opt(uri, ':').0;
    scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
}

/// `METHOD SP Request-URI SP SIP/2.0` (the span `line` of `head`) → the
/// spans of the method and the URI.
fn parse_request_line(head: &str, line: Span) -> Result<(Span, Span), ParseError> {
    let text = text_at(head, "", line);
    let (method, uri) =
        request_line_parts(text.as_bytes()).ok_or_else(|| request_line_error(text))?;
    let method_span = Span {
        start: line.start,
        end: line.start + method.len(),
    };
    let uri_start = method_span.end + 1;
    Ok((
        method_span,
        Span {
            start: uri_start,
            end: uri_start + uri.len(),
        },
    ))
}

/// What is wrong with a start line [`request_line_parts`] refused (read
/// again only then, for the message).
fn request_line_error(line: &str) -> ParseError {
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return err("not a request line");
    };
    if !is_token(method) {
        err("bad method")
    } else if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        err("bad Request-URI")
    } else if !version.eq_ignore_ascii_case("SIP/2.0") {
        err("not SIP/2.0")
    } else {
        err("not a request line")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_request_line_says_what_is_wrong() {
        for (line, why) in [
            ("SIP/2.0 200 OK", "bad method"),
            ("OPTIONS sip:a@h SIP/2.1", "not SIP/2.0"),
            ("OPTIONS  SIP/2.0", "bad Request-URI"),
            ("OPTIONS sip:a\u{e9}@h SIP/2.0", "bad Request-URI"),
            ("OPTIONS", "not a request line"),
        ] {
            let e = Request::parse(format!("{line}\r\nVia: x\r\n\r\n").as_bytes()).unwrap_err();
            assert!(e.to_string().contains(why), "{line}: {e}");
        }
    }

    const OPTIONS: &str = "OPTIONS sip:alice@127.0.0.1:40001 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.ping1\r\n\
v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK.second, SIP/2.0/TCP proxy.example;branch=z9hG4bK3\r\n\
From: <sip:pinger@127.0.0.1>;tag=f1\r\n\
t: <sip:alice@127.0.0.1:40001>\r\n\
Call-ID: abc@127.0.0.1\r\n\
CSeq: 7 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 5\r\n\r\nhello";

    #[test]
    fn reads_the_request_line_headers_and_body() {
        let r = Request::parse(OPTIONS.as_bytes()).unwrap();
        assert_eq!(r.method(), "OPTIONS");
        assert_eq!(r.uri(), "sip:alice@127.0.0.1:40001");
        assert_eq!(r.call_id(), Some("abc@127.0.0.1"));
        assert_eq!(r.cseq(), Some((7, "OPTIONS")));
        assert_eq!(r.from_tag(), Some("f1"));
        assert_eq!(r.to_tag(), None);
        assert_eq!(r.headers("via").count(), 2);
        assert_eq!(r.branch().as_deref(), Some("z9hG4bK.ping1"));
        assert_eq!(&OPTIONS.as_bytes()[r.body_range()], b"hello");
        assert!(r.answerable());
        assert_eq!(r.refusal(OPTIONS.len()), None);
        let via = r.top_via_range().unwrap();
        assert_eq!(
            &OPTIONS[via],
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.ping1"
        );
        let names: Vec<&str> = r.fields().map(|(n, _)| n).collect();
        assert_eq!(names[1], "via", "a compact name reads as its long form");
    }

    #[test]
    fn the_first_indexes_follow_the_list_of_first_headers() {
        for (i, k) in FIRST.iter().enumerate() {
            assert_eq!(first_index(*k), Some(i), "{k:?}");
        }
        assert_eq!(first_index(Known::Contact), None);
    }

    #[test]
    fn leading_crlf_is_skipped_and_ranges_point_into_the_buffer() {
        let msg = format!("\r\n\r\n{OPTIONS}");
        let r = Request::parse(msg.as_bytes()).unwrap();
        assert_eq!(&msg.as_bytes()[r.body_range()], b"hello");
        assert!(msg[r.top_via_range().unwrap()].starts_with("SIP/2.0/UDP 127.0.0.1:5060"));
        assert!(msg[r.head_range()].starts_with("OPTIONS "));
    }

    #[test]
    fn what_cannot_be_answered_and_what_is_refused() {
        for bad in [
            "OPTIONS sip:a@h SIP/2.0\r\n",
            "SIP/2.0 200 OK\r\n\r\n",
            "OPTIONS sip:a@h SIP/3.0\r\n\r\n",
            "OPT IONS sip:a@h SIP/2.0\r\n\r\n",
            "OPTIONS  SIP/2.0\r\n\r\n",
            "OPTIONS sip:a@h SIP/2.0\r\nno colon\r\n\r\n",
        ] {
            assert!(Request::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let mut latin1 = b"OPTIONS sip:a@h SIP/2.0\r\nX: ".to_vec();
        latin1.extend([0xe9, b'\r', b'\n', b'\r', b'\n']);
        assert!(Request::parse(&latin1).is_err(), "header section not UTF-8");
        let bare =
            Request::parse(b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n").unwrap();
        assert!(!bare.answerable(), "no From, To, Call-ID, CSeq");
        let refused = |m: &str| {
            let r = Request::parse(m.as_bytes()).unwrap();
            assert!(r.answerable(), "{m}");
            r.refusal(m.len()).map(|x| x.status)
        };
        let base = |uri: &str, cseq: &str, extra: &str| {
            format!(
                "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\
From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: {cseq}\r\n{extra}\r\n"
            )
        };
        assert_eq!(refused(&base("sip:a@h", "1 MESSAGE", "")), None);
        assert_eq!(refused(&base("tel:+123", "1 MESSAGE", "")), Some(416));
        assert_eq!(refused(&base("sip:", "1 MESSAGE", "")), Some(400));
        assert_eq!(refused(&base("sip:a@h", "1 INFO", "")), Some(400));
        assert_eq!(
            refused(&base("sip:a@h", "1 MESSAGE", "Content-Length: 10\r\n")),
            Some(400),
            "a body shorter than announced"
        );
        assert_eq!(
            refused(&base("sip:a@h", "1 MESSAGE", "Content-Length: x\r\n")),
            Some(400)
        );
    }

    #[test]
    fn a_folded_top_via_has_no_range_but_still_reads() {
        let m = "OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n ;branch=z9hG4bKf, SIP/2.0/UDP p;branch=z9hG4bKp\r\n\
From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 2\r\n\r\nhi";
        let r = Request::parse(m.as_bytes()).unwrap();
        assert_eq!(r.top_via_range(), None);
        assert_eq!(r.branch().as_deref(), Some("z9hG4bKf"));
        let again = r.with_top_via(
            m.as_bytes(),
            "SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKf;received=5.6.7.8",
        );
        let r2 = Request::parse(&again).unwrap();
        assert_eq!(
            r2.top_via_text(),
            Some("SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKf;received=5.6.7.8")
        );
        assert_eq!(r2.headers("via").flat_map(list_items).count(), 2);
        assert_eq!(&again[r2.body_range()], b"hi");
        assert_eq!(r2.cseq(), Some((1, "OPTIONS")));
    }

    #[test]
    fn the_top_via_is_spliced_in_place() {
        let r = Request::parse(OPTIONS.as_bytes()).unwrap();
        let out = r.with_top_via(
            OPTIONS.as_bytes(),
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.ping1;received=10.0.0.9",
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            OPTIONS.replace(
                "branch=z9hG4bK.ping1\r\n",
                "branch=z9hG4bK.ping1;received=10.0.0.9\r\n"
            )
        );
    }
}
