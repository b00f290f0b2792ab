//! [`Response`]: one parsed response and the header accessors a
//! registering client needs.

use std::borrow::Cow;
use std::sync::Arc;

use super::frame::FramedHead;
use super::head::{
    all_values, check_body_length, first_value, parse_cseq, parse_head_into, parse_status_line,
    text_at, wanted, Field, Known, KnownSet, Span, Wanted,
};
use super::name_addr::split_name_addr;
use super::via::sent_protocol;
use super::{err, NameAddr, NameAddrRef, ParseError, Via};
use crate::core::lexer::{
    find_param, for_each_param, header_end_and_lines, is_token, is_ws, leading_crlf, list_items,
    parse_delta, split_before, split_bytes, split_str, unquoted, LineEnds,
};
use crate::core::shared_text;
use crate::core::uri::{self, Host};

/// A parsed SIP response. The body is not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase exactly as received (may be empty), shared with the
    /// same phrase of other responses lately parsed on this thread (see
    /// [`shared_text`](crate::core::shared_text)).
    pub reason: Arc<str>,
    /// The header section as received, then any unfolded values: every
    /// header name and value is a range of this one buffer.
    text: String,
    /// The header fields in message order.
    fields: Vec<Field>,
    /// Which known names the fields carry (a lookup of one it lacks reads
    /// no field).
    known: KnownSet,
    /// What the top Via says, located once at parse time: every response is
    /// routed by its branch and every 2xx is asked its public address.
    top_via: Option<TopVia>,
}

/// The emptied buffers of a response ([`Response::into_buffers`]) for the
/// next one to be read into ([`Response::parse_reusing`]).
#[derive(Debug, Default)]
pub struct ResponseBuffers {
    text: String,
    fields: Vec<Field>,
}

impl ResponseBuffers {
    /// Bytes the buffers hold room for (a receiver keeps them only while
    /// that stays small).
    pub fn capacity(&self) -> usize {
        self.text.capacity() + self.fields.capacity() * std::mem::size_of::<Field>()
    }
}

/// Where the parts of the top Via a client reads are in a response's text:
/// found in one pass over its parameters (`None` for the whole when the
/// sent-by or any parameter is malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TopVia {
    /// The sent-by (`host[:port]`), already checked.
    sent_by: Span,
    /// The first `branch` value, unless quoted or absent.
    branch: Option<Span>,
    /// The first `received` value as written (maybe quoted).
    received: Option<Span>,
    /// The first `rport` value as written (maybe quoted).
    rport: Option<Span>,
}

impl Response {
    /// Parses one response from a datagram or a framed stream message.
    ///
    /// Leading CR/LF bytes are skipped. Bytes after the body that
    /// `Content-Length` announces are ignored; a body shorter than announced
    /// is an error. Invalid UTF-8 in the header section is replaced with
    /// U+FFFD.
    pub fn parse(buf: &[u8]) -> Result<Response, ParseError> {
        Response::parse_reusing(buf, ResponseBuffers::default())
    }

    /// [`parse`](Self::parse) into the buffers of a response read before
    /// ([`into_buffers`](Self::into_buffers)): the same response, with no
    /// allocation once they are large enough (a receiver that reads one
    /// response after another keeps one set).
    pub fn parse_reusing(buf: &[u8], spare: ResponseBuffers) -> Result<Response, ParseError> {
        let buf = buf.get(leading_crlf(buf)..).unwrap_or_default();
        let (head_len, lines) =
            header_end_and_lines(buf).ok_or_else(|| err("incomplete header section"))?;
        let (head, body) = split_bytes(buf, head_len);
        // Valid UTF-8 (the usual case) is checked by the fast validator.
        let head = match std::str::from_utf8(head) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(head),
        };
        // (A lossy copy is not the bytes scanned: its lines are found again.)
        let lines = match head {
            Cow::Borrowed(_) => lines,
            Cow::Owned(_) => LineEnds::count_only(lines.count()),
        };
        let ResponseBuffers {
            text: spare_text,
            mut fields,
        } = spare;
        fields.clear();
        let (start, spill) = parse_head_into(&head, &lines, &mut fields)?;
        Response::assemble(head, body.len(), start, fields, spill, spare_text)
    }

    /// Gives back this response's buffers, emptied, for
    /// [`parse_reusing`](Self::parse_reusing).
    pub fn into_buffers(self) -> ResponseBuffers {
        let (mut text, mut fields) = (self.text, self.fields);
        text.clear();
        fields.clear();
        ResponseBuffers { text, fields }
    }

    /// [`parse`](Self::parse) of a message a stream's framing found whole,
    /// reusing the parse of its header section that framing made (see
    /// [`frame_with_head`](super::frame::frame_with_head)): the same
    /// response, without reading the section twice.
    ///
    /// `head` must come from framing these same bytes: a head that does not
    /// fit them is an error (one from other bytes of the same shape would
    /// give a wrong response, never a panic).
    pub fn parse_framed(buf: &[u8], head: FramedHead) -> Result<Response, ParseError> {
        let text = head.text_of(buf)?;
        let body = buf.get(head.head_len..).unwrap_or_default();
        Response::assemble(
            Cow::Borrowed(text),
            body.len(),
            head.start,
            head.fields,
            head.spill,
            String::new(),
        )
    }

    /// A response from its parsed header section and its body's length.
    fn assemble(
        head: Cow<'_, str>,
        body_len: usize,
        start: Span,
        fields: Vec<Field>,
        spill: String,
        spare_text: String,
    ) -> Result<Response, ParseError> {
        let (status, reason) = parse_status_line(text_at(&head, "", start))?;
        let reason = shared_text::shared(shared_text::Kind::Reason, reason);
        // One buffer holds every name and value: the header section, then the
        // unfolded values (usually none).
        let text = match head {
            Cow::Borrowed(head) => {
                let mut text = spare_text;
                text.clear();
                text.reserve(head.len() + spill.len());
                text.push_str(head);
                text.push_str(&spill);
                text
            }
            Cow::Owned(mut head) => {
                head.push_str(&spill);
                head
            }
        };
        let known = KnownSet::of(&fields);
        if known.has(Known::ContentLength) {
            check_body_length(&text, &fields, body_len)?;
        }
        let mut resp = Response {
            status,
            reason,
            text,
            fields,
            known,
            top_via: None,
        };
        resp.top_via = resp.find_top_via();
        Ok(resp)
    }

    /// The first value of a header; `name` may be in any case and in long or
    /// compact form.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.first(wanted(name))
    }

    /// Every header line with that name (any case, long or compact form), in
    /// message order. Comma-separated lists on one line are not split.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(wanted(name))
    }

    /// The first value of the header `name` stands for.
    fn first(&self, name: Wanted<'_>) -> Option<&str> {
        match name {
            Wanted::Known(k) if !self.known.has(k) => None,
            _ => first_value(&self.text, "", &self.fields, name),
        }
    }

    /// The first value of a known header (the accessors' path: no name read).
    fn known(&self, k: Known) -> Option<&str> {
        self.first(Wanted::Known(k))
    }

    /// Every value of the header `name` stands for.
    fn all<'a>(&'a self, name: Wanted<'a>) -> impl Iterator<Item = &'a str> + 'a {
        let fields = match name {
            Wanted::Known(k) if !self.known.has(k) => &[][..],
            _ => &self.fields[..],
        };
        all_values(&self.text, fields, name)
    }

    /// The Call-ID header.
    pub fn call_id(&self) -> Option<&str> {
        self.known(Known::CallId)
    }

    /// The CSeq sequence number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        parse_cseq(self.known(Known::CSeq)?)
    }

    /// The topmost Via value (first element of the first Via line).
    pub fn top_via(&self) -> Option<Via> {
        let first = list_items(self.known(Known::Via)?).next()?;
        first.parse().ok()
    }

    /// The topmost Via's [`public_address`](Via::public_address), read from
    /// what parsing located (no [`Via`] is built; every 2xx is asked this).
    pub fn top_via_public_address(&self) -> Option<std::net::SocketAddr> {
        let via = self.top_via?;
        // Values unquoted as `Via` stores them (without a copy unless escaped).
        let received = via.received.map(|span| unquoted(self.at(span)));
        let rport = via
            .rport
            .map(|span| unquoted(self.at(span)))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        if received.is_none() && rport.is_none() {
            return None;
        }
        // The sent-by is read again only for what received/rport leave out.
        let sent_by = || uri::parse_hostport(self.at(via.sent_by)).ok();
        let ip: std::net::IpAddr = match received {
            Some(text) => text.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
            None => match sent_by()?.0 {
                Host::V4(addr) => addr.into(),
                Host::V6(addr) => addr.into(),
                Host::Domain(name) => name.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
            },
        };
        let port = match rport {
            Some(port) => port,
            None => sent_by()?.1.unwrap_or(5060),
        };
        Some(std::net::SocketAddr::new(ip, port))
    }

    /// The `branch` of the topmost Via, as [`top_via`](Self::top_via) would give
    /// it, read in place (the per-response routing path: no Via is built).
    /// A quoted branch (never one of ours) gives `None`.
    pub fn top_branch(&self) -> Option<&str> {
        let span = self.top_via?.branch?;
        self.text.get(span.start..span.end)
    }

    /// The text of a span of `text`.
    fn at(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or_default()
    }

    /// Where a slice of `text` is in it.
    fn span_of(&self, part: &str) -> Option<Span> {
        let start = (part.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        Some(Span {
            start,
            end: start + part.len(),
        })
    }

    /// Locates the top Via's sent-by (checked) and its branch, received and
    /// rport values, in one pass over its `;` parameters.
    fn find_top_via(&self) -> Option<TopVia> {
        let first = list_items(self.known(Known::Via)?).next()?;
        let s = first.trim_matches(is_ws);
        let (_, rest) = sent_protocol(s).ok()?;
        let sent_by_start = rest.trim_start_matches(is_ws);
        if sent_by_start.len() == rest.len() {
            return None;
        }
        let (sent_by, params) = split_before(sent_by_start, ';');
        let sent_by = sent_by.trim_end_matches(is_ws);
        uri::parse_hostport(sent_by).ok()?;
        let (mut branch, mut received, mut rport) = (None, None, None);
        for_each_param(params, |name, value| {
            if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                branch = Some(value);
            } else if received.is_none() && name.eq_ignore_ascii_case("received") {
                received = Some(value);
            } else if rport.is_none() && name.eq_ignore_ascii_case("rport") {
                rport = Some(value);
            }
        })
        .ok()?;
        let branch = branch.flatten().filter(|v| !v.starts_with('"'));
        Some(TopVia {
            sent_by: self.span_of(sent_by)?,
            branch: branch.and_then(|v| self.span_of(v)),
            received: received.flatten().and_then(|v| self.span_of(v)),
            rport: rport.flatten().and_then(|v| self.span_of(v)),
        })
    }

    /// Every Contact value of every Contact line, in order. A `*` contact
    /// is an error here because it is only meaningful in requests.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        Ok(self
            .contact_refs()?
            .iter()
            .map(NameAddrRef::to_owned)
            .collect())
    }

    /// [`contacts`](Self::contacts) read in place, nothing copied (a
    /// registration reads its 2xx's list).
    pub fn contact_refs(&self) -> Result<Vec<NameAddrRef<'_>>, ParseError> {
        let mut out = Vec::new();
        for line in self.all(Wanted::Known(Known::Contact)) {
            for item in list_items(line) {
                if item == "*" {
                    return Err(err("wildcard Contact in response"));
                }
                out.push(NameAddrRef::parse(item)?);
            }
        }
        Ok(out)
    }

    /// The Expires header in seconds (values above `u32::MAX` clamp).
    pub fn expires(&self) -> Option<u32> {
        parse_delta(self.known(Known::Expires)?)
    }

    /// The Min-Expires header in seconds (values above `u32::MAX` clamp).
    pub fn min_expires(&self) -> Option<u32> {
        parse_delta(self.known(Known::MinExpires)?)
    }

    /// The Retry-After delay in seconds, ignoring any comment and parameters
    /// (`120 (in a meeting);duration=60` gives 120).
    pub fn retry_after(&self) -> Option<u32> {
        let value = self.known(Known::RetryAfter)?;
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
        let parts = split_name_addr(self.known(Known::To)?).ok()?;
        let tag = find_param(parts.params, "tag").ok()??;
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
        parse_delta(self.known(Known::FlowTimer)?.trim_matches(is_ws))
    }

    /// URIs of every `Service-Route` value, in order (unparsable ones skipped).
    pub fn service_routes(&self) -> Vec<String> {
        self.route_list(Known::ServiceRoute)
    }

    /// URIs of every `Path` value, in order (unparsable ones skipped).
    pub fn paths(&self) -> Vec<String> {
        self.route_list(Known::Path)
    }

    fn route_list(&self, name: Known) -> Vec<String> {
        self.all(Wanted::Known(name))
            .flat_map(list_items)
            .filter_map(|v| v.parse::<NameAddr>().ok())
            .map(|n| n.uri.text())
            .collect()
    }
}
