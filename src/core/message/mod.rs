//! SIP messages (RFC 3261 §7, §20): parsing a response and reading the
//! headers a registering client needs, parsing a request that reaches our
//! contact and writing its response, telling responses apart from requests
//! and keep-alives, and framing messages on a TCP stream.
//!
//! Everything here works on untrusted network input: malformed data yields
//! an error value, never a panic, and allocation is bounded by input size.
//! The scanning itself (tokens, quotes, lists, parameters, lines) is the
//! shared `core::lexer`; the parts here are:
//!
//! - `head`: the header section: start line, fields, folding, names;
//! - `response`: [`Response`] and its header accessors;
//! - `request`: [`Request`], a received request, and what makes it refused;
//! - `reply`: the response to a request ([`write_response`]), the top Via
//!   as the receiving transport annotates it, where a datagram answer goes;
//! - `via`: [`Via`];
//! - `name_addr`: [`NameAddr`] (Contact, To, From);
//! - `frame`: [`classify`] and [`frame`] (datagrams and stream framing).

use std::error::Error;
use std::fmt;

use super::lexer::{self, LexError};

mod frame;
mod head;
mod name_addr;
mod reply;
mod request;
mod response;
mod via;

pub use frame::{
    body_range, classify, classify_unchecked, frame, frame_with_head, Frame, FramedHead, Kind,
};
pub use name_addr::{NameAddr, NameAddrRef};
pub use reply::{
    annotated_parsed_via, annotated_via, answer_address, response_address, standard_reason, to_tag,
    to_tag_with, write_answer, write_response, write_response_via, Answer, Reply, Tag, MAX_BODY,
    MAX_RESPONSE,
};
pub use request::{Refusal, Request};
pub use response::{Response, ResponseBuffers};
pub use via::{Via, ViaRef};

/// Why a message or header value could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for ParseError {}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> ParseError {
        err(e.0)
    }
}

/// Shorthand for building an error.
fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// Splits a header value on commas that are outside quotes and outside
/// `<...>`. Elements are trimmed; empty elements are dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    lexer::list_items(value).collect()
}

/// Parses ";a=b;c;d="q;x"" style parameter lists (quotes respected).
///
/// Leading whitespace is allowed; an empty string gives an empty list.
/// Quoted values are returned with the quotes removed and `\` escapes
/// resolved. Names must be tokens.
pub fn parse_params(s: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let mut out = Vec::new();
    lexer::for_each_param(s, |name, value| {
        out.push((name.to_owned(), value.map(lexer::unquote)));
    })?;
    Ok(out)
}

/// Finds a parsed parameter by case-insensitive name.
fn find_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Every string of at most `most` of `pieces` joined, each once: what the
/// tests that compare two readers of the same text go over.
#[cfg(test)]
fn joinings(pieces: &[&str], most: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    for _ in 0..most {
        let longer: Vec<String> = all
            .iter()
            .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
            .collect();
        all.extend(longer);
        all.sort();
        all.dedup();
    }
    all
}

#[cfg(test)]
mod tests;
