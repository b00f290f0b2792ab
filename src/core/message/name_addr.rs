//! [`NameAddr`]: a `name-addr` or `addr-spec` header value (Contact, To,
//! From), [`NameAddrRef`] the same read in place, and the split of their
//! raw parts.

use std::borrow::Cow;
use std::str::FromStr;

use super::{err, find_param as find_parsed_param, parse_params, ParseError};
use crate::core::lexer::{
    find_char, find_param, for_each_param, is_ws, parse_delta, quoted_len, split_before,
    split_once_char, split_str, unquote, unquoted,
};
use crate::core::uri::{Uri, UriRef};

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
        find_parsed_param(&self.params, name)
    }

    /// The `expires` parameter in seconds (values above `u32::MAX` clamp).
    pub fn expires(&self) -> Option<u32> {
        parse_delta(self.param("expires")??)
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    /// [`NameAddrRef::parse`], owned.
    fn from_str(s: &str) -> Result<NameAddr, ParseError> {
        NameAddrRef::parse(s).map(|n| n.to_owned())
    }
}

/// A `name-addr` or `addr-spec` value read in place, nothing copied: what a
/// 2xx's contacts are asked on every registration (their URIs, `expires`,
/// the instance and GRUU parameters). [`to_owned`](Self::to_owned) gives
/// the [`NameAddr`], whose parse is this one's.
#[derive(Clone, Copy, Debug)]
pub struct NameAddrRef<'a> {
    /// The URI as written (inside `<>` when bracketed).
    pub uri_text: &'a str,
    /// The URI, read in place.
    pub uri: UriRef<'a>,
    /// The display name as written (maybe quoted, maybe empty).
    display: &'a str,
    /// The header parameters as written (`;a=b;c`, or empty), already checked.
    params: &'a str,
}

impl<'a> NameAddrRef<'a> {
    /// Reads one value such as `"Bob" <sip:b@h>;expires=60` or
    /// `sip:a@h;expires=30` (here `expires` is a header parameter, RFC 3261
    /// §20).
    pub fn parse(s: &'a str) -> Result<NameAddrRef<'a>, ParseError> {
        let parts = split_name_addr(s)?;
        let uri = UriRef::parse(parts.uri).map_err(|e| err(e.to_string()))?;
        for_each_param(parts.params, |_, _| {})?;
        Ok(NameAddrRef {
            uri_text: parts.uri,
            uri,
            display: parts.display,
            params: parts.params,
        })
    }

    /// A header parameter by name (case-insensitive), as
    /// [`NameAddr::param`] gives it: `None` if absent, `Some(None)` for a
    /// flag, `Some(Some(value))` unquoted otherwise.
    pub fn param(&self, name: &str) -> Option<Option<Cow<'a, str>>> {
        let found = find_param(self.params, name).ok()??;
        Some(found.map(unquoted))
    }

    /// The `expires` parameter in seconds (values above `u32::MAX` clamp).
    pub fn expires(&self) -> Option<u32> {
        parse_delta(&self.param("expires")??)
    }

    /// The value as a [`NameAddr`].
    pub fn to_owned(&self) -> NameAddr {
        NameAddr {
            display_name: Some(unquote(self.display)).filter(|d| !d.is_empty()),
            uri: self.uri.to_uri(),
            // Checked by `parse`: the list cannot fail here.
            params: parse_params(self.params).unwrap_or_default(),
        }
    }
}

/// The three raw parts of a name-addr / addr-spec value.
pub(super) struct NameAddrParts<'a> {
    /// Display name as written (possibly quoted, possibly empty).
    pub(super) display: &'a str,
    /// URI text.
    pub(super) uri: &'a str,
    /// Parameter text, starting at `;` or empty.
    pub(super) params: &'a str,
}

/// Splits a name-addr into display name, URI and parameters without
/// unquoting anything.
pub(super) fn split_name_addr(s: &str) -> Result<NameAddrParts<'_>, ParseError> {
    let s = s.trim_matches(is_ws);
    let display_len = if s.starts_with('"') {
        quoted_len(s).ok_or_else(|| err("unterminated quoted display name"))?
    } else {
        find_char(s, '<').unwrap_or(0)
    };
    let (display, rest) = split_str(s, display_len);
    let rest = rest.trim_start_matches(is_ws);
    if let Some(inner) = rest.strip_prefix('<') {
        let (uri, params) = split_once_char(inner, '>').ok_or_else(|| err("missing '>'"))?;
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
