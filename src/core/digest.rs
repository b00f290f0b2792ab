//! HTTP Digest authentication, client side, as SIP uses it (RFC 3261 §22).
//!
//! Parses `WWW-Authenticate` / `Proxy-Authenticate` Digest challenges and builds the matching
//! `Authorization` / `Proxy-Authorization` value per RFC 2617, RFC 7616 and RFC 8760: MD5,
//! SHA-256 and SHA-512-256, each with its `-sess` variant; qop `auth` and `auth-int`; and the
//! RFC 2069 compatibility mode used when the server offers no qop.
//!
//! Header format: `algorithm=` is always sent, unquoted. When the challenge omitted it we send
//! `algorithm=MD5`, which is what an absent algorithm means, so every server reads the same
//! thing and the header has a single shape.
//!
//! Not supported (unused by SIP): `userhash`, `charset`, `username*`.

use std::borrow::Cow;
use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// Longest piece of peer input copied into an error, so errors stay small and loggable.
const MAX_ECHO: usize = 64;

/// Digest hash algorithms we can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617); also what an absent `algorithm` means.
    Md5,
    /// `MD5-sess` (RFC 2617).
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess` (RFC 7616, RFC 8760).
    Sha256Sess,
    /// `SHA-512-256`, i.e. SHA-512/256 (RFC 7616, RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess` (RFC 7616, RFC 8760).
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, for token lookup.
    const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// Parses an `algorithm` token, ignoring ASCII case; None for tokens we do not know.
    pub fn parse(token: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(token))
    }

    /// The canonical token, as sent in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Relative strength, higher is stronger; a `-sess` variant ranks with its base hash.
    pub fn strength(self) -> u8 {
        match self.hash_fn() {
            HashFn::Md5 => 1,
            HashFn::Sha256 => 2,
            HashFn::Sha512_256 => 3,
        }
    }

    /// Whether HA1 is re-keyed with the nonces (the `-sess` variants).
    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The hash function underneath.
    fn hash_fn(self) -> HashFn {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashFn::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFn::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashFn::Sha512_256,
        }
    }
}

/// A bare hash function, without the `-sess` distinction.
#[derive(Clone, Copy)]
enum HashFn {
    Md5,
    Sha256,
    Sha512_256,
}

impl HashFn {
    /// Hashes `fields` joined with `:` (the RFC's `H(a:b:c)`) and returns lower-case hex.
    fn hex<T: AsRef<[u8]>>(self, fields: &[T]) -> Hex {
        match self {
            HashFn::Md5 => hex_digest::<Md5, T>(fields),
            HashFn::Sha256 => hex_digest::<Sha256, T>(fields),
            HashFn::Sha512_256 => hex_digest::<Sha512_256, T>(fields),
        }
    }
}

/// Feeds the fields to `D` with `:` between them, so no joined copy is built.
fn hex_digest<D: Digest, T: AsRef<[u8]>>(fields: &[T]) -> Hex {
    let mut hasher = D::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(field.as_ref());
    }
    to_hex(&hasher.finalize())
}

/// Lower-case hex text of a digest (at most 32 bytes) or of the nonce count,
/// kept on the stack: HA1, HA2 and the response need no allocation.
#[derive(Clone, Copy)]
struct Hex {
    buf: [u8; 64],
    len: usize,
}

impl Hex {
    /// The text.
    fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or_default()
    }
}

impl AsRef<[u8]> for Hex {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

/// Lower-case hex, as Digest requires (bytes past 32 are not written; none of
/// our hashes is longer).
fn to_hex(bytes: &[u8]) -> Hex {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Hex {
        buf: [0; 64],
        len: 0,
    };
    for (b, pair) in bytes.iter().zip(out.buf.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
        out.len += 2;
    }
    out
}

/// Quality of protection we answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// `auth`: authenticates method and URI.
    Auth,
    /// `auth-int`: also covers the entity body.
    AuthInt,
}

impl Qop {
    /// The token as sent in `qop=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

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

/// Why a challenge could not be parsed or answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestError {
    /// The scheme is not Digest (e.g. Basic, Bearer).
    NotDigest,
    /// Syntax error or unsafe value, with a short description (peer input truncated).
    Malformed(String),
    /// A required challenge parameter (`realm` or `nonce`) is missing.
    MissingParam(&'static str),
    /// The challenge names an algorithm we do not implement (token truncated).
    UnsupportedAlgorithm(String),
    /// The challenge offers no qop we can use (offered list truncated).
    UnsupportedQop(String),
    /// No password was supplied.
    MissingPassword,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::NotDigest => f.write_str("authentication scheme is not Digest"),
            DigestError::Malformed(what) => write!(f, "malformed Digest data: {what}"),
            DigestError::MissingParam(name) => {
                write!(f, "Digest challenge lacks required parameter `{name}`")
            }
            DigestError::UnsupportedAlgorithm(token) => {
                write!(f, "unsupported Digest algorithm `{token}`")
            }
            DigestError::UnsupportedQop(offered) => write!(f, "no usable Digest qop: {offered}"),
            DigestError::MissingPassword => f.write_str("no password for Digest authentication"),
        }
    }
}

impl std::error::Error for DigestError {}

/// Shortens peer input for an error message and escapes control characters, so a hostile
/// header can neither bloat nor corrupt logs.
fn echo(input: &str) -> String {
    let mut out: String = input.chars().take(MAX_ECHO).collect();
    let truncated = out.len() < input.len();
    out = out.escape_debug().to_string();
    if truncated {
        out.push('…');
    }
    out
}

/// A `Malformed` error pointing at where parsing stopped.
fn malformed(what: &str, near: &str) -> DigestError {
    if near.is_empty() {
        DigestError::Malformed(format!("{what} at end of input"))
    } else {
        DigestError::Malformed(format!("{what} near `{}`", echo(near)))
    }
}

/// RFC 7230 `tchar`: characters allowed in a token (scheme and parameter names).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Optional whitespace between elements.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Control characters other than HTAB; rejected so nothing echoed into a header can smuggle CR/LF.
fn is_bad_control(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// Characters of an unquoted value. Wider than `token` on purpose: servers send base64
/// nonces (with `/` and `=`) unquoted.
fn is_bare_value_char(c: char) -> bool {
    c.is_ascii_graphic() && c != ',' && c != '"'
}

/// A read position in a header value; only moves forward, at char boundaries.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// True when all input is consumed.
    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Skips spaces and tabs.
    fn skip_ows(&mut self) {
        self.rest = self.rest.trim_start_matches(is_ows);
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Consumes the longest prefix whose characters all satisfy `keep`.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c| !keep(c)).unwrap_or(self.rest.len());
        // `find` yields a char boundary, so the checked split always succeeds.
        let (taken, rest) = self.rest.split_at_checked(end).unwrap_or((self.rest, ""));
        self.rest = rest;
        taken
    }

    /// Reads a quoted-string body after its opening `"`, undoing `\` escapes
    /// (borrowed from the input when there are none, the usual case).
    fn quoted_string(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let text = self.rest;
        // Unescaped text so far: `text[..plain]`, or all of `owned` once an escape is seen.
        let mut owned: Option<String> = None;
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = chars.as_str();
                    return Ok(match owned {
                        Some(out) => Cow::Owned(out),
                        None => Cow::Borrowed(text.get(..i).unwrap_or_default()),
                    });
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) if !is_bad_control(escaped) => owned
                        .get_or_insert_with(|| text.get(..i).unwrap_or_default().to_owned())
                        .push(escaped),
                    _ => return Err(malformed("bad escape in quoted string", self.rest)),
                },
                c if is_bad_control(c) => {
                    return Err(malformed("control character in quoted string", self.rest))
                }
                c => {
                    if let Some(out) = owned.as_mut() {
                        out.push(c);
                    }
                }
            }
        }
        Err(malformed("unterminated quoted string", self.rest))
    }
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
    let mut cur = Cursor {
        rest: value.trim_matches(is_ows),
    };
    let scheme = cur.take_while(is_tchar);
    if scheme.is_empty() {
        return Err(malformed("expected an auth scheme", cur.rest));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    if !cur.is_empty() && !cur.rest.starts_with(is_ows) {
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
        cur.skip_ows();
        if cur.is_empty() {
            return Ok(());
        }
        if cur.eat(',') {
            continue;
        }
        let (name, value) = parse_param(cur)?;
        found.keep(name, value);
        cur.skip_ows();
        if !cur.is_empty() && !cur.eat(',') {
            return Err(malformed("expected ',' between parameters", cur.rest));
        }
    }
}

/// Reads one `name = value`; names are matched ignoring case.
fn parse_param<'a>(cur: &mut Cursor<'a>) -> Result<(&'a str, Cow<'a, str>), DigestError> {
    let name = cur.take_while(is_tchar);
    if name.is_empty() {
        return Err(malformed("expected a parameter name", cur.rest));
    }
    cur.skip_ows();
    if !cur.eat('=') {
        return Err(malformed("expected '=' after parameter", name));
    }
    cur.skip_ows();
    let value = if cur.eat('"') {
        cur.quoted_string()?
    } else {
        let bare = cur.take_while(is_bare_value_char);
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
        .map(|item| item.trim_matches(is_ows))
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Picks the challenge to answer among several offered (possibly for several realms): the one with the
/// strongest supported algorithm; ties go to the one listed first. None if none is usable.
///
/// "Usable" also means the qop offer can be answered (see [`authorization`]).
pub fn choose_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<(&Challenge, u8)> = None;
    for challenge in challenges {
        let Ok((alg, _)) = plan(challenge) else {
            continue;
        };
        // Strictly greater, so the earliest of equals stays chosen.
        if best.is_none_or(|(_, strength)| alg.strength() > strength) {
            best = Some((challenge, alg.strength()));
        }
    }
    best.map(|(challenge, _)| challenge)
}

/// What we answer with.
#[derive(Clone, Copy)]
pub struct Answer<'a> {
    /// User name, sent in clear and part of HA1.
    pub username: &'a str,
    /// Password; None is refused rather than hashed. An empty string is a real password.
    pub password: Option<&'a str>,
    /// Request method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The Request-URI string, e.g. `sip:example.com`.
    pub uri: &'a str,
    /// Entity body for auth-int (empty for REGISTER).
    pub body: &'a [u8],
    /// Nonce count, starts at 1 for a nonce.
    pub nc: u32,
    /// Client nonce (caller supplies randomness).
    pub cnonce: &'a str,
}

/// Hand-written so the password never reaches a log through `{:?}`.
impl fmt::Debug for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("body_len", &self.body.len())
            .field("nc", &self.nc)
            .field("cnonce", &self.cnonce)
            .finish()
    }
}

/// Builds the full credentials header value (what follows "Authorization: ").
///
/// qop preference: `auth`, then `auth-int`; no qop offered means RFC 2069 mode (no qop, nc or
/// cnonce sent). `algorithm=` is always present (`MD5` when the challenge named none).
/// Values that would be written into the header must not contain control characters.
///
/// # Errors
/// `UnsupportedAlgorithm`, `UnsupportedQop` (also for `-sess` without qop), `MissingPassword`,
/// or `Malformed` when a header value contains a control character.
pub fn authorization(challenge: &Challenge, answer: &Answer) -> Result<String, DigestError> {
    let (alg, qop) = plan(challenge)?;
    check_header_safe(challenge, answer)?;
    let response = response_hex(challenge, alg, qop, answer)?;
    let response = response.as_str();
    // Written into one buffer: this runs for every authenticated REGISTER.
    let mut out = String::with_capacity(
        160 + answer.username.len()
            + challenge.realm.len()
            + challenge.nonce.len()
            + answer.uri.len()
            + response.len()
            + challenge.opaque.as_ref().map_or(0, String::len)
            + answer.cnonce.len(),
    );
    out.push_str("Digest username=");
    push_quoted(&mut out, answer.username);
    out.push_str(", realm=");
    push_quoted(&mut out, &challenge.realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, &challenge.nonce);
    out.push_str(", uri=");
    push_quoted(&mut out, answer.uri);
    out.push_str(", response=\"");
    out.push_str(response);
    out.push_str("\", algorithm=");
    out.push_str(alg.as_str());
    if let Some(opaque) = &challenge.opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, opaque);
    }
    if let Some(qop) = qop {
        out.push_str(", qop=");
        out.push_str(qop.as_str());
        out.push_str(", nc=");
        out.push_str(nc_hex(answer.nc).as_str());
        out.push_str(", cnonce=");
        push_quoted(&mut out, answer.cnonce);
    }
    Ok(out)
}

/// The hex "response" value alone (exposed for tests and RFC vectors).
///
/// A `-sess` algorithm needs a qop, because its cnonce is only sent along with one.
///
/// # Errors
/// `MissingPassword`, or `UnsupportedQop` for a `-sess` algorithm without qop.
pub fn response_hash(
    challenge: &Challenge,
    alg: Algorithm,
    qop: Option<Qop>,
    answer: &Answer,
) -> Result<String, DigestError> {
    response_hex(challenge, alg, qop, answer).map(|hex| hex.as_str().to_owned())
}

/// [`response_hash`] on the stack.
fn response_hex(
    challenge: &Challenge,
    alg: Algorithm,
    qop: Option<Qop>,
    answer: &Answer,
) -> Result<Hex, DigestError> {
    let password = answer.password.ok_or(DigestError::MissingPassword)?;
    require_qop_for_sess(alg, qop)?;
    let h = alg.hash_fn();
    let ha1 = ha1(alg, challenge, answer, password);
    let ha2 = ha2(h, qop, answer);
    Ok(match qop {
        Some(qop) => h.hex(&[
            ha1.as_str(),
            &challenge.nonce,
            nc_hex(answer.nc).as_str(),
            answer.cnonce,
            qop.as_str(),
            ha2.as_str(),
        ]),
        None => h.hex(&[ha1.as_str(), &challenge.nonce, ha2.as_str()]),
    })
}

/// HA1 = H(user:realm:password), re-hashed with both nonces for `-sess`.
fn ha1(alg: Algorithm, challenge: &Challenge, answer: &Answer, password: &str) -> Hex {
    let h = alg.hash_fn();
    let base = h.hex(&[answer.username, &challenge.realm, password]);
    if alg.is_sess() {
        h.hex(&[base.as_str(), &challenge.nonce, answer.cnonce])
    } else {
        base
    }
}

/// HA2 = H(method:uri), plus H(body) for auth-int.
fn ha2(h: HashFn, qop: Option<Qop>, answer: &Answer) -> Hex {
    match qop {
        Some(Qop::AuthInt) => {
            let body_hash = h.hex(&[answer.body]);
            h.hex(&[answer.method, answer.uri, body_hash.as_str()])
        }
        Some(Qop::Auth) | None => h.hex(&[answer.method, answer.uri]),
    }
}

/// The nonce count as exactly eight lower-case hex digits.
fn nc_hex(nc: u32) -> Hex {
    to_hex(&nc.to_be_bytes())
}

/// Decides how to answer a challenge: algorithm and qop, or why it cannot be answered.
fn plan(challenge: &Challenge) -> Result<(Algorithm, Option<Qop>), DigestError> {
    let alg = challenge.supported_algorithm().ok_or_else(|| {
        DigestError::UnsupportedAlgorithm(echo(challenge.algorithm.as_deref().unwrap_or_default()))
    })?;
    let qop = select_qop(&challenge.qop)?;
    require_qop_for_sess(alg, qop)?;
    Ok((alg, qop))
}

/// Prefers `auth` (REGISTER has no body worth protecting), then `auth-int`.
fn select_qop(offered: &[String]) -> Result<Option<Qop>, DigestError> {
    if offered.is_empty() {
        return Ok(None);
    }
    let is_offered = |qop: Qop| offered.iter().any(|o| o.eq_ignore_ascii_case(qop.as_str()));
    [Qop::Auth, Qop::AuthInt]
        .into_iter()
        .find(|&qop| is_offered(qop))
        .map(Some)
        .ok_or_else(|| DigestError::UnsupportedQop(echo(&offered.join(","))))
}

/// `-sess` mixes the cnonce into HA1, but RFC 2617 forbids sending a cnonce without qop, so
/// the server could never check such an answer.
fn require_qop_for_sess(alg: Algorithm, qop: Option<Qop>) -> Result<(), DigestError> {
    if alg.is_sess() && qop.is_none() {
        return Err(DigestError::UnsupportedQop(format!(
            "none offered, but {} needs one",
            alg.as_str()
        )));
    }
    Ok(())
}

/// Refuses control characters in anything written into the header (header injection).
fn check_header_safe(challenge: &Challenge, answer: &Answer) -> Result<(), DigestError> {
    let fields = [
        ("username", answer.username),
        ("uri", answer.uri),
        ("cnonce", answer.cnonce),
        ("realm", challenge.realm.as_str()),
        ("nonce", challenge.nonce.as_str()),
        ("opaque", challenge.opaque.as_deref().unwrap_or_default()),
    ];
    match fields
        .iter()
        .find(|(_, value)| value.contains(is_bad_control))
    {
        Some((name, _)) => Err(DigestError::Malformed(format!(
            "{name} contains a control character"
        ))),
        None => Ok(()),
    }
}

/// Writes a quoted-string, escaping `"` and `\`.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC2617_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    const RFC7616_CHALLENGE: &str =
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
        algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// A challenge built directly, bypassing the parser.
    fn challenge(realm: &str, nonce: &str, algorithm: Option<&str>, qop: &[&str]) -> Challenge {
        Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            algorithm: algorithm.map(str::to_owned),
            qop: qop.iter().map(|q| (*q).to_owned()).collect(),
            stale: false,
            domain: None,
        }
    }

    /// The RFC examples' GET of /dir/index.html by Mufasa.
    fn mufasa<'a>(password: &'a str, cnonce: &'a str) -> Answer<'a> {
        Answer {
            username: "Mufasa",
            password: Some(password),
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
            nc: 1,
            cnonce,
        }
    }

    /// A SIP REGISTER by alice, used for the python-computed vectors.
    fn alice(nc: u32, body: &[u8]) -> Answer<'_> {
        Answer {
            username: "alice",
            password: Some("secret"),
            method: "REGISTER",
            uri: "sip:atlanta.com",
            body,
            nc,
            cnonce: "c1",
        }
    }

    /// The RFC 7616 §3.9.1 example answered with `alg` and qop=auth.
    fn rfc7616_response(alg: Algorithm) -> String {
        let ch = parse_challenge(RFC7616_CHALLENGE).unwrap();
        let answer = mufasa("Circle of Life", RFC7616_CNONCE);
        response_hash(&ch, alg, Some(Qop::Auth), &answer).unwrap()
    }

    /// The value of `name=` in a header we built, quotes included.
    fn header_param<'h>(header: &'h str, name: &str) -> Option<&'h str> {
        let body = header.strip_prefix("Digest ")?;
        body.split(", ")
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
    }

    // --- RFC vectors ---

    #[test]
    fn rfc2617_section_3_5_example() {
        let ch = challenge("testrealm@host.com", RFC2617_NONCE, None, &["auth"]);
        let answer = mufasa("Circle Of Life", "0a4f113b");
        let got = response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer).unwrap();
        assert_eq!(got, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc2069_example_without_qop() {
        // RFC 2069 §2.4 example (password "CircleOfLife", no qop).
        let ch = challenge("testrealm@host.com", RFC2617_NONCE, None, &[]);
        let answer = mufasa("CircleOfLife", "unused");
        let got = response_hash(&ch, Algorithm::Md5, None, &answer).unwrap();
        assert_eq!(got, "1949323746fe6a43ef61f9606e7febea");
    }

    #[test]
    fn rfc7616_md5_example() {
        assert_eq!(
            rfc7616_response(Algorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        assert_eq!(
            rfc7616_response(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc7616_example_through_authorization() {
        let ch = parse_challenge(RFC7616_CHALLENGE).unwrap();
        let header = authorization(&ch, &mufasa("Circle of Life", RFC7616_CNONCE)).unwrap();
        assert_eq!(
            header_param(&header, "response"),
            Some("\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"")
        );
        assert_eq!(header_param(&header, "algorithm"), Some("SHA-256"));
    }

    // Expected values below were computed independently with python3 hashlib, e.g.
    // H = lambda s: hashlib.new('sha512_256', s.encode()).hexdigest()
    // (python's sha512_256 checked against the FIPS 180-4 "abc" vector), then
    // H(HA1:nonce:nc:cnonce:qop:HA2) with the RFC 2617 definitions of HA1 and HA2.

    #[test]
    fn sha512_256_rfc7616_inputs() {
        assert_eq!(
            rfc7616_response(Algorithm::Sha512_256),
            "430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0"
        );
    }

    #[test]
    fn md5_sess_rfc7616_inputs() {
        assert_eq!(
            rfc7616_response(Algorithm::Md5Sess),
            "e783283f46242139c486a698fec7211d"
        );
    }

    #[test]
    fn sha256_sess_rfc7616_inputs() {
        assert_eq!(
            rfc7616_response(Algorithm::Sha256Sess),
            "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
        );
    }

    #[test]
    fn sha512_256_sess_rfc7616_inputs() {
        assert_eq!(
            rfc7616_response(Algorithm::Sha512_256Sess),
            "3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e"
        );
    }

    #[test]
    fn sha512_256_sess_auth_int_with_body() {
        let ch = challenge("atlanta.com", "n1", Some("SHA-512-256-sess"), &["auth-int"]);
        let answer = alice(2, b"hello");
        let got = response_hash(&ch, Algorithm::Sha512_256Sess, Some(Qop::AuthInt), &answer);
        assert_eq!(
            got.unwrap(),
            "0e3bc0273f0979480f9438c7d039c82755756ef6bb90fe735bf8463ff10e8945"
        );
    }

    // --- qop modes, nc, password ---

    #[test]
    fn auth_int_empty_body() {
        let ch = challenge("atlanta.com", "n1", None, &["auth-int"]);
        let header = authorization(&ch, &alice(1, b"")).unwrap();
        assert_eq!(header_param(&header, "qop"), Some("auth-int"));
        // python3: MD5 auth-int with HA2 = H("REGISTER:sip:atlanta.com:" + md5(b"")).
        assert_eq!(
            header_param(&header, "response"),
            Some("\"221591e3a7c028c42aa36e27d0bcfe1d\"")
        );
    }

    #[test]
    fn auth_int_non_empty_body() {
        let ch = challenge("atlanta.com", "n1", Some("SHA-256"), &["auth-int"]);
        let got = response_hash(
            &ch,
            Algorithm::Sha256,
            Some(Qop::AuthInt),
            &alice(1, b"v=0\r\n"),
        );
        // python3: SHA-256 auth-int over the 5-byte body "v=0\r\n".
        assert_eq!(
            got.unwrap(),
            "fa923b27e57e5326e7881182e74c23b8b72a4a9378f92d43e3c009d20d0333fa"
        );
    }

    #[test]
    fn auth_preferred_over_auth_int() {
        let ch = challenge("r", "n", None, &["auth-int", "auth"]);
        let header = authorization(&ch, &alice(1, b"")).unwrap();
        assert_eq!(header_param(&header, "qop"), Some("auth"));
    }

    #[test]
    fn rfc2069_mode_sends_no_qop_nc_or_cnonce() {
        let ch = challenge("atlanta.com", "n1", Some("SHA-256"), &[]);
        let header = authorization(&ch, &alice(1, b"")).unwrap();
        assert!(!header.contains("qop="), "{header}");
        assert!(!header.contains("nc="), "{header}");
        assert!(!header.contains("cnonce="), "{header}");
        // python3: SHA-256 H(HA1:nonce:HA2).
        assert_eq!(
            header_param(&header, "response"),
            Some("\"6586bba5c498ff5648a869d009206e2db294e48efee5006f102936989ef8a08b\"")
        );
    }

    #[test]
    fn unsupported_qop_is_refused() {
        let ch = challenge("r", "n", None, &["auth-conf"]);
        assert_eq!(
            authorization(&ch, &alice(1, b"")),
            Err(DigestError::UnsupportedQop("auth-conf".into()))
        );
    }

    #[test]
    fn sess_without_qop_is_refused() {
        let ch = challenge("r", "n", Some("MD5-sess"), &[]);
        assert!(matches!(
            authorization(&ch, &alice(1, b"")),
            Err(DigestError::UnsupportedQop(_))
        ));
        assert!(matches!(
            response_hash(&ch, Algorithm::Md5Sess, None, &alice(1, b"")),
            Err(DigestError::UnsupportedQop(_))
        ));
    }

    #[test]
    fn nc_is_eight_lower_hex_digits() {
        let ch = challenge("atlanta.com", "n1", None, &["auth"]);
        let ten = authorization(&ch, &alice(10, b"")).unwrap();
        assert_eq!(header_param(&ten, "nc"), Some("0000000a"));
        // python3: MD5 auth with nc 0000000a.
        assert_eq!(
            header_param(&ten, "response"),
            Some("\"442764a720d81efe4e80990739c626ee\"")
        );
        let max = authorization(&ch, &alice(u32::MAX, b"")).unwrap();
        assert_eq!(header_param(&max, "nc"), Some("ffffffff"));
        // python3: MD5 auth with nc ffffffff.
        assert_eq!(
            header_param(&max, "response"),
            Some("\"e5e7ab1b3a296d0d25787a2fa04b5146\"")
        );
    }

    #[test]
    fn missing_password_is_refused() {
        let ch = challenge("r", "n", None, &["auth"]);
        let mut answer = alice(1, b"");
        answer.password = None;
        assert_eq!(
            authorization(&ch, &answer),
            Err(DigestError::MissingPassword)
        );
        assert_eq!(
            response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer),
            Err(DigestError::MissingPassword)
        );
    }

    #[test]
    fn empty_password_is_a_real_password() {
        let ch = challenge("atlanta.com", "n1", None, &["auth"]);
        let mut answer = alice(1, b"");
        answer.password = Some("");
        // python3: MD5 auth with HA1 = H("alice:atlanta.com:").
        assert_eq!(
            response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &answer).unwrap(),
            "3e2e6fae9db99cfcb492fe256b4e9f7b"
        );
    }

    #[test]
    fn answer_debug_hides_password() {
        let shown = format!("{:?}", alice(1, b""));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    // --- algorithms ---

    #[test]
    fn algorithm_tokens_round_trip_ignoring_case() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
            assert_eq!(Algorithm::parse(&alg.as_str().to_lowercase()), Some(alg));
        }
        assert_eq!(
            Algorithm::parse("sha-512-256-SESS"),
            Some(Algorithm::Sha512_256Sess)
        );
        assert_eq!(Algorithm::parse("SHA-1"), None);
        assert_eq!(Algorithm::parse(""), None);
    }

    #[test]
    fn algorithm_strength_order() {
        assert!(Algorithm::Sha512_256.strength() > Algorithm::Sha256.strength());
        assert!(Algorithm::Sha256.strength() > Algorithm::Md5.strength());
        assert_eq!(Algorithm::Md5Sess.strength(), Algorithm::Md5.strength());
        assert_eq!(
            Algorithm::Sha256Sess.strength(),
            Algorithm::Sha256.strength()
        );
        assert_eq!(
            Algorithm::Sha512_256Sess.strength(),
            Algorithm::Sha512_256.strength()
        );
    }

    #[test]
    fn unknown_algorithm_is_refused() {
        let ch = challenge("r", "n", Some("SHA3-256"), &["auth"]);
        assert_eq!(ch.supported_algorithm(), None);
        assert_eq!(
            authorization(&ch, &alice(1, b"")),
            Err(DigestError::UnsupportedAlgorithm("SHA3-256".into()))
        );
        let absent = challenge("r", "n", None, &["auth"]);
        assert_eq!(absent.supported_algorithm(), Some(Algorithm::Md5));
    }

    #[test]
    fn choose_prefers_sha256_in_any_order() {
        let md5 = parse_challenge("Digest realm=\"a\", nonce=\"1\", qop=\"auth\"").unwrap();
        let sha =
            parse_challenge("Digest realm=\"a\", nonce=\"2\", qop=\"auth\", algorithm=SHA-256")
                .unwrap();
        let pair = [md5.clone(), sha.clone()];
        assert_eq!(choose_challenge(&pair), Some(&sha));
        let swapped = [sha.clone(), md5];
        assert_eq!(choose_challenge(&swapped), Some(&sha));
    }

    #[test]
    fn choose_skips_unusable_and_breaks_ties_by_order() {
        let unknown = challenge("a", "0", Some("SHA3-512"), &["auth"]);
        let conf_only = challenge("a", "1", Some("SHA-512-256"), &["auth-conf"]);
        let first = challenge("a", "2", Some("SHA-256"), &["auth"]);
        let second = challenge("b", "3", Some("sha-256-sess"), &["auth"]);
        let list = [unknown.clone(), conf_only, first.clone(), second];
        assert_eq!(choose_challenge(&list), Some(&first));
        assert_eq!(choose_challenge(&[unknown]), None);
        assert_eq!(choose_challenge(&[]), None);
    }

    // --- header ---

    #[test]
    fn full_header_string() {
        let mut ch = challenge("atlanta.com", "n1", Some("md5"), &["auth"]);
        ch.opaque = Some("op".into());
        let header = authorization(&ch, &alice(1, b"")).unwrap();
        let response = response_hash(&ch, Algorithm::Md5, Some(Qop::Auth), &alice(1, b"")).unwrap();
        let expected = format!(
            "Digest username=\"alice\", realm=\"atlanta.com\", nonce=\"n1\", \
             uri=\"sip:atlanta.com\", response=\"{response}\", algorithm=MD5, opaque=\"op\", \
             qop=auth, nc=00000001, cnonce=\"c1\""
        );
        assert_eq!(header, expected);
        assert_eq!(header_param(&header, "uri"), Some("\"sip:atlanta.com\""));
        assert_eq!(header_param(&header, "qop"), Some("auth"));
        assert_eq!(header_param(&header, "nc"), Some("00000001"));
    }

    #[test]
    fn header_names_md5_when_challenge_did_not() {
        let ch = challenge("r", "n", None, &[]);
        let header = authorization(&ch, &alice(1, b"")).unwrap();
        assert_eq!(header_param(&header, "algorithm"), Some("MD5"));
        assert_eq!(header_param(&header, "opaque"), None);
    }

    #[test]
    fn header_escapes_quotes_and_backslashes() {
        let ch = parse_challenge(r#"Digest realm="a\"b\\c", nonce="n""#).unwrap();
        let mut answer = alice(1, b"");
        answer.username = "x\"y";
        let header = authorization(&ch, &answer).unwrap();
        assert!(header.contains(r#"realm="a\"b\\c""#), "{header}");
        assert!(header.contains(r#"username="x\"y""#), "{header}");
    }

    #[test]
    fn header_refuses_control_characters() {
        let ch = challenge("r", "n", None, &["auth"]);
        let mut answer = alice(1, b"");
        answer.uri = "sip:a\r\nVia: evil";
        assert!(matches!(
            authorization(&ch, &answer),
            Err(DigestError::Malformed(_))
        ));
        let evil = challenge("r\n", "n", None, &["auth"]);
        assert!(matches!(
            authorization(&evil, &alice(1, b"")),
            Err(DigestError::Malformed(_))
        ));
    }

    // --- parsing ---

    #[test]
    fn parses_full_challenge() {
        let ch = parse_challenge(
            "Digest realm=\"atlanta.com\", nonce=\"abc\", qop=\"auth,auth-int\", \
             algorithm=SHA-256, stale=TRUE, opaque=\"x\", domain=\"sip:a sip:b\"",
        )
        .unwrap();
        let expected = Challenge {
            realm: "atlanta.com".into(),
            nonce: "abc".into(),
            opaque: Some("x".into()),
            algorithm: Some("SHA-256".into()),
            qop: vec!["auth".into(), "auth-int".into()],
            stale: true,
            domain: Some("sip:a sip:b".into()),
        };
        assert_eq!(ch, expected);
    }

    #[test]
    fn tolerates_spacing_case_and_empty_elements() {
        let ch = parse_challenge(
            "  dIgEsT \t,REALM = \"r\" ,, NoNcE\t=\tabc/d+e==  , ALGORITHM=sha-256 ,",
        )
        .unwrap();
        assert_eq!(ch.realm, "r");
        assert_eq!(ch.nonce, "abc/d+e==");
        assert_eq!(ch.algorithm.as_deref(), Some("sha-256"));
        assert_eq!(ch.supported_algorithm(), Some(Algorithm::Sha256));
        assert!(ch.qop.is_empty());
    }

    #[test]
    fn qop_lists() {
        let qop = |v: &str| {
            parse_challenge(&format!("Digest realm=r, nonce=n, qop={v}"))
                .unwrap()
                .qop
        };
        assert_eq!(qop("\" auth-int , auth ,\""), vec!["auth-int", "auth"]);
        assert_eq!(qop("auth"), vec!["auth"]);
        assert!(qop("\"\"").is_empty());
    }

    #[test]
    fn stale_variants() {
        let stale = |v: &str| {
            parse_challenge(&format!("Digest realm=r, nonce=n, stale={v}"))
                .unwrap()
                .stale
        };
        assert!(stale("true"));
        assert!(stale("TRUE"));
        assert!(stale("\"true\""));
        assert!(!stale("false"));
        assert!(!stale("\"FALSE\""));
        assert!(!stale("yes"));
        assert!(!parse_challenge("Digest realm=r, nonce=n").unwrap().stale);
    }

    #[test]
    fn quoted_values_keep_escapes_and_commas() {
        let ch = parse_challenge(r#"Digest realm="say \"hi\", \\ok", nonce="a,b""#).unwrap();
        assert_eq!(ch.realm, r#"say "hi", \ok"#);
        assert_eq!(ch.nonce, "a,b");
    }

    #[test]
    fn duplicates_first_wins_and_unknown_ignored() {
        let ch =
            parse_challenge("Digest realm=first, foo=\"bar\", nonce=n, realm=second, x=y").unwrap();
        assert_eq!(ch.realm, "first");
    }

    #[test]
    fn missing_required_params() {
        assert_eq!(
            parse_challenge("Digest realm=\"r\""),
            Err(DigestError::MissingParam("nonce"))
        );
        assert_eq!(
            parse_challenge("Digest nonce=\"n\""),
            Err(DigestError::MissingParam("realm"))
        );
        assert_eq!(
            parse_challenge("Digest"),
            Err(DigestError::MissingParam("realm"))
        );
    }

    #[test]
    fn other_schemes_are_not_digest() {
        assert_eq!(
            parse_challenge("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            parse_challenge("Bearer realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            parse_challenge("Digestive realm=x"),
            Err(DigestError::NotDigest)
        );
    }

    #[test]
    fn syntax_errors_are_malformed() {
        let bad = [
            "",
            "   ",
            "Digest realm=\"unterminated, nonce=n",
            "Digest realm=\"r\" nonce=\"n\"",
            "Digest realm, nonce=n",
            "Digest realm=, nonce=n",
            "Digest =r, nonce=n",
            "Digest realm=\"a\rb\", nonce=n",
            "Digest realm=\"a\\",
            "Digest\"realm=r",
            "Digest realm=r,\nnonce=n",
            "Digest realm=r, nonce=é",
        ];
        for input in bad {
            assert!(
                matches!(parse_challenge(input), Err(DigestError::Malformed(_))),
                "{input:?} gave {:?}",
                parse_challenge(input)
            );
        }
    }

    #[test]
    fn error_messages_stay_short() {
        let huge = format!("Digest realm=\"{}", "x".repeat(10_000));
        let err = parse_challenge(&huge).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
        let ch = challenge("r", "n", Some(&"z".repeat(10_000)), &["auth"]);
        let err = authorization(&ch, &alice(1, b"")).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
    }

    #[test]
    fn ten_kilobytes_of_garbage_do_not_panic() {
        // Deterministic pseudo-random text biased toward the parser's special characters.
        let alphabet: Vec<char> = "Digest =,\"\\ \tabc\r\né\u{0}".chars().collect();
        let mut state: u32 = 0x2545_f491;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        for round in 0..20 {
            let mut text = String::from(if round % 2 == 0 { "Digest " } else { "" });
            for _ in 0..10_240 {
                let pick = usize::try_from(next()).unwrap_or(0) % alphabet.len();
                text.push(alphabet.get(pick).copied().unwrap_or('x'));
            }
            assert!(parse_challenge(&text).is_err());
        }
        for filler in ["\"", "\\", ",", "a=", "=", "Digest "] {
            let _ = parse_challenge(&filler.repeat(10_240 / filler.len()));
        }
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        let full = "Digest realm=\"é\\\"x\", nonce=n, qop=\"auth\", stale=true, opaque=\"ö\"";
        for (i, _) in full.char_indices() {
            let _ = parse_challenge(full.get(..i).unwrap_or_default());
        }
        assert!(parse_challenge(full).is_ok());
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            DigestError::MissingParam("nonce").to_string(),
            "Digest challenge lacks required parameter `nonce`"
        );
        assert_eq!(
            DigestError::NotDigest.to_string(),
            "authentication scheme is not Digest"
        );
    }
}
