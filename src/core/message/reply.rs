//! Answering a received [`Request`] (RFC 3261 §8.2.6): the response copies
//! the Via headers, From, To (with a tag of ours), Call-ID and CSeq, then
//! adds the answer's own headers and body. Also the transport's part of
//! receiving (§18.2.1, RFC 3581): the top Via learns where the request
//! really came from, and that is where a datagram response goes (§18.2.2).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::request::Request;
use super::{Via, ViaRef};
use crate::core::lexer::{for_each_param, is_token, list_items, split_before, unquoted};
use crate::core::own_text::own_text;
use crate::core::uri::Decimal;
use crate::core::uri::Host;
use crate::error::Error;

/// Largest response the library writes: it must fit one UDP datagram
/// (65 507 bytes of IPv4 payload) and one stream message.
pub const MAX_RESPONSE: usize = 65_000;
/// Largest body an application may put in a response.
pub const MAX_BODY: usize = 60_000;
/// Largest block of extra header lines an application may add.
pub const MAX_EXTRA_HEADERS: usize = 4_096;

/// Headers every response copies from its request: an application may not add them.
const COPIED: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "call-id",
    "i",
    "cseq",
    "content-length",
    "l",
];

/// One answer: status, reason phrase, extra header lines and body, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// 100..=699.
    pub status: u16,
    /// The reason phrase (the standard one when none was given).
    pub reason: String,
    /// `Name: value` lines, in order. A `To` line replaces the copied To
    /// (an application that chooses its own tag).
    pub headers: Vec<String>,
    /// The body (its Content-Type is one of `headers`).
    pub body: Vec<u8>,
}

impl Reply {
    /// Checks an application's answer: a status of 100..=699, a reason
    /// without control characters (empty: the standard phrase), extra
    /// headers as `Name: value` lines separated by CRLF (or LF) that do not
    /// repeat what the response copies from the request (Via, From, Call-ID,
    /// CSeq, Content-Length), and a body of at most [`MAX_BODY`] bytes.
    pub fn new(status: u16, reason: &str, headers: &str, body: &[u8]) -> Result<Reply, Error> {
        if !(100..=699).contains(&status) {
            return Err(Error::invalid(format!(
                "status must be between 100 and 699, not {status}"
            )));
        }
        if reason.chars().any(char::is_control) || reason.len() > 256 {
            return Err(Error::invalid(
                "reason must be one line of at most 256 bytes without control characters",
            ));
        }
        if headers.len() > MAX_EXTRA_HEADERS {
            return Err(Error::invalid(format!(
                "extra headers must be at most {MAX_EXTRA_HEADERS} bytes"
            )));
        }
        if body.len() > MAX_BODY {
            return Err(Error::invalid(format!(
                "body must be at most {MAX_BODY} bytes"
            )));
        }
        let mut lines = Vec::new();
        for line in headers.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            lines.push(check_header_line(line)?);
        }
        let reason = match reason.trim() {
            "" => standard_reason(status).to_owned(),
            r => r.to_owned(),
        };
        Ok(Reply {
            status,
            reason,
            headers: lines,
            body: body.to_vec(),
        })
    }

    /// A library answer with the standard reason phrase and header lines the
    /// library wrote (not checked again).
    pub fn library(status: u16, headers: Vec<String>) -> Reply {
        Reply {
            status,
            reason: standard_reason(status).to_owned(),
            headers,
            body: Vec::new(),
        }
    }

    fn replaces_to(&self) -> bool {
        self.headers.iter().any(|h| {
            let name = h.split(':').next().unwrap_or_default().trim();
            name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("t")
        })
    }
}

/// One extra header line, trimmed: `token ":" value`, no control characters,
/// not a header the response copies.
fn check_header_line(line: &str) -> Result<String, Error> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            "extra headers must not contain control characters other than the line breaks",
        ));
    }
    if line.starts_with([' ', '\t']) {
        return Err(Error::invalid("extra headers must not be folded"));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(Error::invalid(format!(
            "extra header {:?} is not \"Name: value\"",
            line.chars().take(64).collect::<String>()
        )));
    };
    let name = name.trim();
    if !is_token(name) {
        return Err(Error::invalid("extra header name must be a SIP token"));
    }
    if COPIED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Error::invalid(format!(
            "{name} is copied from the request; it cannot be an extra header"
        )));
    }
    Ok(format!("{name}: {}", value.trim()))
}

/// The reason phrase RFC 3261 §21 gives a status (a class phrase for others).
pub fn standard_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        s if s < 200 => "Provisional",
        s if s < 300 => "Success",
        s if s < 400 => "Redirection",
        s if s < 500 => "Client Error",
        s if s < 600 => "Server Error",
        _ => "Global Failure",
    }
}

/// The To tag of our answers to `req`: the same for every answer to it and
/// to its retransmissions (so a stateless answer is identical each time),
/// and for a CANCEL or ACK of it (same branch); `secret` makes it
/// unguessable from the request.
pub fn to_tag(secret: u64, req: &Request) -> String {
    let via = req.top_via();
    to_tag_with(secret, req, via.as_ref().and_then(Via::branch))
}

/// [`to_tag`] for a caller that read the top Via's branch already.
pub fn to_tag_with(secret: u64, req: &Request, branch: Option<&str>) -> String {
    Tag::new(secret, req, branch).as_str().to_owned()
}

/// A To tag written on the stack (16 hex digits).
pub struct Tag([u8; 16]);

impl Tag {
    /// The tag of [`to_tag`] for `req` with top Via branch `branch`.
    pub fn new(secret: u64, req: &Request, branch: Option<&str>) -> Tag {
        // One keyed hash over the three values, each ended by a byte no
        // header value holds (fed in one piece: SipHash's cost is per write).
        let mut h = std::collections::hash_map::DefaultHasher::new();
        secret.hash(&mut h);
        let mut input = [0u8; 256];
        let mut len = 0;
        for part in [req.call_id(), req.from_tag(), branch] {
            let bytes = part.unwrap_or_default().as_bytes();
            let end = len + bytes.len() + 1;
            match input.get_mut(len..end) {
                Some(room) => {
                    let (text, mark) = room.split_at_mut(bytes.len());
                    text.copy_from_slice(bytes);
                    mark[0] = if part.is_some() { 0 } else { 1 };
                    len = end;
                }
                None => {
                    // Longer than the buffer: what is gathered, then this part.
                    h.write(input.get(..len).unwrap_or_default());
                    h.write(bytes);
                    h.write_u8(if part.is_some() { 0 } else { 1 });
                    len = 0;
                }
            }
        }
        h.write(input.get(..len).unwrap_or_default());
        let v = h.finish();
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = b"0123456789abcdef"[((v >> (60 - 4 * i)) & 0xf) as usize];
        }
        Tag(out)
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        // SAFETY: `new` writes hex digits: ASCII.
        unsafe { own_text(&self.0) }
    }
}

/// Writes the response to `req`: one Via line per Via value of the request,
/// in order, then From, To (with `tag` added when it has none and the status
/// is above 100, unless the reply brings its own To), Call-ID, CSeq, for a
/// 100 the request's Timestamp (unless the reply brings one), the reply's
/// headers, Content-Length and the body.
pub fn write_response(req: &Request, reply: &Reply, tag: &str) -> Vec<u8> {
    write_response_via(req, reply, tag, None)
}

/// [`write_response`] with the top Via value replaced by `top_via` (the
/// receiving transport's note, RFC 3261 §18.2.1) when given.
pub fn write_response_via(
    req: &Request,
    reply: &Reply,
    tag: &str,
    top_via: Option<&str>,
) -> Vec<u8> {
    let headers: Vec<&str> = reply.headers.iter().map(String::as_str).collect();
    write_answer(
        req,
        Answer {
            status: reply.status,
            reason: &reply.reason,
            headers: &headers,
            body: &reply.body,
            replaces_to: reply.replaces_to(),
        },
        tag,
        top_via,
    )
}

/// What [`write_answer`] writes besides what it copies.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'a str,
    /// `Name: value` lines (checked).
    pub headers: &'a [&'a str],
    /// Body.
    pub body: &'a [u8],
    /// `headers` bring their own To.
    pub replaces_to: bool,
}

/// Writes the response to `req` (see [`write_response`]) from borrowed
/// parts: the library's answers need no [`Reply`] of their own.
pub fn write_answer(req: &Request, a: Answer<'_>, tag: &str, top_via: Option<&str>) -> Vec<u8> {
    // What is copied is at most the request's header section.
    let copied = req.head_range().len();
    let extra: usize = a.headers.iter().map(|h| h.len() + 2).sum();
    let mut m = String::with_capacity(copied + extra + a.reason.len() + a.body.len() + 96);
    m.push_str("SIP/2.0 ");
    m.push_str(Decimal::new(u64::from(a.status)).as_str());
    m.push(' ');
    m.push_str(a.reason);
    m.push_str("\r\n");
    let mut first = true;
    for line in req.headers("via") {
        for item in list_items(line) {
            m.push_str("Via: ");
            m.push_str(match top_via.filter(|_| first) {
                Some(noted) => noted,
                None => item,
            });
            first = false;
            m.push_str("\r\n");
        }
    }
    m.push_str("From: ");
    m.push_str(req.from_value().unwrap_or_default());
    m.push_str("\r\n");
    if !a.replaces_to {
        m.push_str("To: ");
        m.push_str(req.to_value().unwrap_or_default());
        if req.to_tag().is_none() && a.status > 100 {
            m.push_str(";tag=");
            m.push_str(tag);
        }
        m.push_str("\r\n");
    }
    m.push_str("Call-ID: ");
    m.push_str(req.call_id().unwrap_or_default());
    m.push_str("\r\nCSeq: ");
    m.push_str(req.cseq_value().unwrap_or_default());
    m.push_str("\r\n");
    let own_timestamp = || {
        a.headers.iter().any(|h| {
            h.split(':')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("timestamp"))
        })
    };
    if a.status == 100 && !own_timestamp() {
        // RFC 3261 §8.2.6.1: a 100 (Trying) copies the request's Timestamp.
        for t in req.headers("timestamp") {
            m.push_str("Timestamp: ");
            m.push_str(t);
            m.push_str("\r\n");
        }
    }
    for h in a.headers {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("Content-Length: ");
    m.push_str(Decimal::new(a.body.len() as u64).as_str());
    m.push_str("\r\n\r\n");
    let mut bytes = m.into_bytes();
    bytes.extend_from_slice(a.body);
    bytes
}

/// The top Via value `via` (as written) as the transport that received its
/// request from `source` must leave it (RFC 3261 §18.2.1, RFC 3581 §4):
/// `received` when the sent-by host is not the source address, and with an
/// `rport` parameter, `rport` set to the source port and `received` always.
/// `None` when nothing changes (the usual case) or the value does not parse.
pub fn annotated_via(via: &str, source: SocketAddr) -> Option<String> {
    let parsed = ViaRef::read(via)?;
    annotated_parsed_via(via, &parsed, source)
}

/// [`annotated_via`] for a caller that read the Via (`parsed`) already.
pub fn annotated_parsed_via(via: &str, parsed: &ViaRef<'_>, source: SocketAddr) -> Option<String> {
    let has_rport = parsed.param("rport").is_some();
    let host_ip: Option<IpAddr> = match parsed.host {
        Host::V4(a) => Some(a.into()),
        Host::V6(a) => Some(a.into()),
        Host::Domain(_) => None,
    };
    let needs_received = has_rport || host_ip != Some(source.ip());
    if !needs_received {
        return None;
    }
    let (head, params) = split_before(via.trim(), ';');
    let mut out = String::with_capacity(via.len() + 40);
    out.push_str(head.trim_end());
    for_each_param(params, |name, value| {
        if name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("rport") {
            return;
        }
        out.push(';');
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    })
    .ok()?;
    out.push_str(";received=");
    out.push_str(&source.ip().to_string());
    if has_rport {
        out.push_str(";rport=");
        out.push_str(Decimal::new(u64::from(source.port())).as_str());
    }
    Some(out)
}

/// Where a datagram response goes for a request with top Via `via` that
/// came from `source`: [`response_address`] of the Via as
/// [`annotated_via`] leaves it, without writing that Via.
pub fn answer_address(via: &ViaRef<'_>, source: SocketAddr) -> SocketAddr {
    // The note makes `received` the source's IP whenever it matters.
    if via.param("rport").is_some() {
        source
    } else {
        SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
    }
}

/// Where a datagram response to a request with this top Via goes (RFC 3261
/// §18.2.2, RFC 3581 §4): the `received` address (else the sent-by host,
/// when it is an IP address) at the `rport` port (else the sent-by port,
/// else 5060). `None` when the Via names a host without a `received`.
pub fn response_address(via: &Via) -> Option<SocketAddr> {
    let ip: IpAddr = match via.param("received").flatten() {
        Some(r) => unquoted(r)
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .ok()?,
        None => via.host.parse().ok()?,
    };
    let rport = via
        .param("rport")
        .flatten()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0);
    Some(SocketAddr::new(ip, rport.or(via.port).unwrap_or(5060)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "MESSAGE sip:alice@127.0.0.1:40001 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKk1, SIP/2.0/UDP 127.0.0.1:5099;rport=5099;branch=z9hG4bKs1\r\n\
Via: SIP/2.0/TCP 10.1.1.1;branch=z9hG4bKs0\r\n\
From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\n\
To: <sip:alice@127.0.0.1>\r\n\
Call-ID: m1@127.0.0.1\r\n\
CSeq: 3 MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: 2\r\n\r\nhi";

    fn req(m: &str) -> Request {
        Request::parse(m.as_bytes()).unwrap()
    }

    #[test]
    fn a_response_copies_what_rfc_3261_8_2_6_says() {
        let r = req(MESSAGE);
        let reply = Reply::new(
            200,
            "",
            "X-A: 1\r\nContact: <sip:alice@127.0.0.1:40001>",
            b"ok",
        )
        .unwrap();
        let out = String::from_utf8(write_response(&r, &reply, "t1")).unwrap();
        assert_eq!(
            out,
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKk1\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;rport=5099;branch=z9hG4bKs1\r\n\
Via: SIP/2.0/TCP 10.1.1.1;branch=z9hG4bKs0\r\n\
From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\n\
To: <sip:alice@127.0.0.1>;tag=t1\r\n\
Call-ID: m1@127.0.0.1\r\n\
CSeq: 3 MESSAGE\r\n\
X-A: 1\r\n\
Contact: <sip:alice@127.0.0.1:40001>\r\n\
Content-Length: 2\r\n\r\nok"
        );
        let parsed = crate::core::message::Response::parse(out.as_bytes()).unwrap();
        assert_eq!(parsed.to_tag(), Some("t1"));
        assert_eq!(parsed.cseq(), Some((3, "MESSAGE")));
    }

    #[test]
    fn a_to_tag_is_kept_and_100_gets_none() {
        let tagged = MESSAGE.replace(
            "To: <sip:alice@127.0.0.1>",
            "To: <sip:alice@127.0.0.1>;tag=mine",
        );
        let out = write_response(&req(&tagged), &Reply::library(200, vec![]), "t1");
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("To: <sip:alice@127.0.0.1>;tag=mine\r\n"));
        let out = write_response(&req(MESSAGE), &Reply::library(100, vec![]), "t1");
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("To: <sip:alice@127.0.0.1>\r\n"));
        let own = Reply::new(200, "Fine", "To: <sip:alice@127.0.0.1>;tag=app", b"").unwrap();
        let out = String::from_utf8(write_response(&req(MESSAGE), &own, "t1")).unwrap();
        assert!(out.starts_with("SIP/2.0 200 Fine\r\n"));
        assert_eq!(out.matches("To:").count(), 1, "{out}");
        assert!(out.contains("To: <sip:alice@127.0.0.1>;tag=app\r\n"));
    }

    #[test]
    fn bad_replies_are_refused() {
        assert!(Reply::new(99, "", "", b"").is_err());
        assert!(Reply::new(700, "", "", b"").is_err());
        assert!(Reply::new(200, "O\rK", "", b"").is_err());
        for h in [
            "Via: SIP/2.0/UDP x",
            "f: <sip:x@y>",
            "content-length: 3",
            "CSeq: 1 INVITE",
            "no colon",
            "Bad Name: v",
            " folded: v",
            "X: a\u{0}b",
        ] {
            assert!(Reply::new(200, "", h, b"").is_err(), "{h:?}");
        }
        assert!(Reply::new(200, "", "", &vec![0u8; MAX_BODY + 1]).is_err());
        let ok = Reply::new(486, "", "X-A: 1\nX-B:2\r\n\r\n", b"").unwrap();
        assert_eq!(ok.headers, ["X-A: 1", "X-B: 2"]);
        assert_eq!(ok.reason, "Busy Here");
    }

    #[test]
    fn the_tag_is_stable_per_request_and_differs_between_requests() {
        let a = req(MESSAGE);
        assert_eq!(to_tag(1, &a), to_tag(1, &a));
        assert_eq!(to_tag(1, &a).len(), 16);
        assert!(to_tag(1, &a).bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(to_tag(1, &a), to_tag(2, &a));
        let cancel = MESSAGE
            .replace("MESSAGE sip", "CANCEL sip")
            .replace("3 MESSAGE", "3 CANCEL");
        assert_eq!(
            to_tag(1, &a),
            to_tag(1, &req(&cancel)),
            "CANCEL: same branch, same tag"
        );
        let other = MESSAGE.replace("z9hG4bKk1", "z9hG4bKk2");
        assert_ne!(to_tag(1, &a), to_tag(1, &req(&other)));
    }

    #[test]
    fn via_annotation_and_where_a_datagram_answer_goes() {
        let src: SocketAddr = "192.0.2.7:40123".parse().unwrap();
        let same: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            annotated_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa", same),
            None
        );
        let v = annotated_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa", src).unwrap();
        assert_eq!(
            v,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa;received=192.0.2.7"
        );
        assert_eq!(
            response_address(&v.parse().unwrap()),
            Some("192.0.2.7:5060".parse().unwrap())
        );
        let v = annotated_via(
            "SIP/2.0/UDP host.example;rport;branch=z9hG4bKa;received=6.6.6.6",
            src,
        )
        .unwrap();
        assert_eq!(
            v,
            "SIP/2.0/UDP host.example;branch=z9hG4bKa;received=192.0.2.7;rport=40123"
        );
        assert_eq!(response_address(&v.parse().unwrap()), Some(src));
        let v = annotated_via("SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKa", same).unwrap();
        assert!(v.ends_with(";received=127.0.0.1;rport=5060"), "{v}");
        let v6: SocketAddr = "[::1]:5062".parse().unwrap();
        let v = annotated_via("SIP/2.0/UDP h;branch=z9hG4bKa;rport", v6).unwrap();
        assert_eq!(response_address(&v.parse().unwrap()), Some(v6));
        assert_eq!(
            response_address(
                &"SIP/2.0/UDP h.example:5070;branch=z9hG4bKa"
                    .parse()
                    .unwrap()
            ),
            None
        );
        assert_eq!(annotated_via("garbage", src), None);
    }
}
