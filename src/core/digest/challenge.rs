//! Reading a `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge
//! ([`parse_challenge`]) into a [`Challenge`].

use std::borrow::Cow;

use super::{malformed, Algorithm, DigestError};
use crate::core::lexer::{is_tchar_byte, is_ws, Cursor};

/// One parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space; echoed back and part of HA1.
    pub realm: String,
    /// Server nonce; echoed back and part of the response.
    pub nonce: String,
    /// Opaque server data, echoed back unchanged when present.
    pub opaque: Option<String>,
    /// None when the challenge omitted `algorithm` (means MD5); Some(raw token) otherwise, even unknown ones.
    pub algorithm: Option<String>,
    /// qop options offered (empty when absent = RFC 2069 compatibility mode).
    pub qop: Vec<String>,
    /// True when the server says only the nonce expired, so a retry with the same password is fine.
    pub stale: bool,
    /// The raw `domain` list, if any (unused for SIP, kept for callers).
    pub domain: Option<String>,
}

impl Challenge {
    /// The algorithm to use, or None when it is not one we support.
    pub fn supported_algorithm(&self) -> Option<Algorithm> {
        match &self.algorithm {
            None => Some(Algorithm::Md5),
            Some(token) => Algorithm::parse(token),
        }
    }
}

/// Characters of an unquoted value. Wider than `token` on purpose: servers send base64
/// nonces (with `/` and `=`) unquoted.
fn is_bare_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b',' && b != b'"'
}

/// Parses the value of one WWW-Authenticate/Proxy-Authenticate header (text after the colon), e.g.
/// `Digest realm="atlanta.com", nonce="abc", qop="auth,auth-int", algorithm=SHA-256, stale=TRUE, opaque="x"`.
///
/// Unknown parameters are ignored and the first of duplicate parameters wins.
///
/// # Errors
/// `NotDigest` for other schemes, `Malformed` for syntax errors or control characters,
/// `MissingParam` when `realm` or `nonce` is absent.
pub fn parse_challenge(value: &str) -> Result<Challenge, DigestError> {
    let mut cur = Cursor::new(value.trim_matches(is_ws));
    let scheme = cur.take_ascii_while(is_tchar_byte);
    if scheme.is_empty() {
        return Err(malformed("expected an auth scheme", cur.rest));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    if !cur.is_empty() && !cur.rest.starts_with(is_ws) {
        return Err(malformed("expected a space after Digest", cur.rest));
    }
    let mut found = Found::default();
    parse_params(&mut cur, &mut found)?;
    found.into_challenge()
}

/// The parameters a challenge keeps, as read (first occurrence of each).
#[derive(Default)]
struct Found<'a> {
    realm: Option<Cow<'a, str>>,
    nonce: Option<Cow<'a, str>>,
    opaque: Option<Cow<'a, str>>,
    algorithm: Option<Cow<'a, str>>,
    qop: Option<Cow<'a, str>>,
    stale: Option<Cow<'a, str>>,
    domain: Option<Cow<'a, str>>,
}

impl<'a> Found<'a> {
    /// Keeps `value` if `name` is one we use and was not seen before (so a later
    /// duplicate cannot override it); unknown names are ignored.
    fn keep(&mut self, name: &str, value: Cow<'a, str>) {
        let slot = match name.len() {
            3 if name.eq_ignore_ascii_case("qop") => &mut self.qop,
            5 if name.eq_ignore_ascii_case("realm") => &mut self.realm,
            5 if name.eq_ignore_ascii_case("nonce") => &mut self.nonce,
            5 if name.eq_ignore_ascii_case("stale") => &mut self.stale,
            6 if name.eq_ignore_ascii_case("opaque") => &mut self.opaque,
            6 if name.eq_ignore_ascii_case("domain") => &mut self.domain,
            9 if name.eq_ignore_ascii_case("algorithm") => &mut self.algorithm,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// The challenge, checking the required parameters.
    fn into_challenge(self) -> Result<Challenge, DigestError> {
        Ok(Challenge {
            realm: self
                .realm
                .ok_or(DigestError::MissingParam("realm"))?
                .into_owned(),
            nonce: self
                .nonce
                .ok_or(DigestError::MissingParam("nonce"))?
                .into_owned(),
            opaque: self.opaque.map(Cow::into_owned),
            algorithm: self.algorithm.map(Cow::into_owned),
            qop: self.qop.map(|q| split_list(&q)).unwrap_or_default(),
            stale: self.stale.is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: self.domain.map(Cow::into_owned),
        })
    }
}

/// Reads the comma-separated `name=value` list, tolerating empty elements.
fn parse_params<'a>(cur: &mut Cursor<'a>, found: &mut Found<'a>) -> Result<(), DigestError> {
    loop {
        cur.skip_ws();
        if cur.is_empty() {
            return Ok(());
        }
        if cur.eat(',') {
            continue;
        }
        let (name, value) = parse_param(cur)?;
        found.keep(name, value);
        cur.skip_ws();
        if !cur.is_empty() && !cur.eat(',') {
            return Err(malformed("expected ',' between parameters", cur.rest));
        }
    }
}

/// Reads one `name = value`; names are matched ignoring case.
fn parse_param<'a>(cur: &mut Cursor<'a>) -> Result<(&'a str, Cow<'a, str>), DigestError> {
    let name = cur.take_ascii_while(is_tchar_byte);
    if name.is_empty() {
        return Err(malformed("expected a parameter name", cur.rest));
    }
    cur.skip_ws();
    if !cur.eat('=') {
        return Err(malformed("expected '=' after parameter", name));
    }
    cur.skip_ws();
    let value = if cur.eat('"') {
        cur.quoted_string().map_err(|e| malformed(e.0, cur.rest))?
    } else {
        let bare = cur.take_ascii_while(is_bare_value_byte);
        if bare.is_empty() {
            return Err(malformed("expected a value", cur.rest));
        }
        Cow::Borrowed(bare)
    };
    Ok((name, value))
}

/// Splits a quoted comma list such as `auth, auth-int`, dropping empty items.
fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|item| item.trim_matches(is_ws))
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
