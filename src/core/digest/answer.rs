//! Answering a challenge: choosing among several ([`choose_challenge`]),
//! the `response` hash ([`response_hash`]) and the credentials header
//! ([`authorization`]).

use std::fmt;

use super::algorithm::{to_hex, Algorithm, HashFn, Hex};
use super::{echo, Challenge, DigestError};
use crate::core::lexer::{is_bad_control, push_quoted};

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

/// The algorithm a challenge would be answered with, or None when it cannot
/// be answered (unknown algorithm, no usable qop): what [`choose_challenge`]
/// ranks by.
pub fn usable_algorithm(challenge: &Challenge) -> Option<Algorithm> {
    plan(challenge).ok().map(|(alg, _)| alg)
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
    authorize(challenge, answer, answer.password.map(Key::Password))
}

/// The secret a response is computed from: the password, or the HA1 a
/// deployment stores instead (SIP.js `authorizationHa1`, pjsip
/// `PJSIP_CRED_DATA_DIGEST`): the lower-case hex of `H(username:realm:password)`
/// for the challenge's algorithm (its base hash for a `-sess` one).
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// The plain password.
    Password(&'a str),
    /// A precomputed HA1, lower-case hex.
    Ha1(&'a str),
}

/// Hand-written so the secret never reaches a log through `{:?}`.
impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Password(_) => f.write_str("Password(<redacted>)"),
            Key::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}

/// [`authorization`] answering with `key` instead of `answer.password` (which
/// is ignored).
///
/// # Errors
/// As [`authorization`]; `Malformed` when an HA1 is not lower-case hex of
/// the length of the challenge's algorithm.
pub fn authorization_with_key(
    challenge: &Challenge,
    answer: &Answer,
    key: Key,
) -> Result<String, DigestError> {
    authorize(challenge, answer, Some(key))
}

/// [`authorization`] with the key given apart (`None`: no password).
fn authorize(
    challenge: &Challenge,
    answer: &Answer,
    key: Option<Key>,
) -> Result<String, DigestError> {
    let (alg, qop) = plan(challenge)?;
    check_header_safe(challenge, answer)?;
    let response = keyed_response_hex(challenge, alg, qop, answer, key)?;
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
    keyed_response_hex(
        challenge,
        alg,
        qop,
        answer,
        answer.password.map(Key::Password),
    )
}

/// The response computed from `key`.
fn keyed_response_hex(
    challenge: &Challenge,
    alg: Algorithm,
    qop: Option<Qop>,
    answer: &Answer,
    key: Option<Key>,
) -> Result<Hex, DigestError> {
    let key = key.ok_or(DigestError::MissingPassword)?;
    require_qop_for_sess(alg, qop)?;
    let h = alg.hash_fn();
    let ha1 = ha1(alg, challenge, answer, key)?;
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

/// HA1 = H(user:realm:password) (or the HA1 given), re-hashed with both
/// nonces for `-sess`.
fn ha1(
    alg: Algorithm,
    challenge: &Challenge,
    answer: &Answer,
    key: Key,
) -> Result<Hex, DigestError> {
    let h = alg.hash_fn();
    let base = match key {
        Key::Password(password) => h.hex(&[answer.username, &challenge.realm, password]),
        Key::Ha1(hex) => Hex::of_digest(alg, hex).ok_or_else(|| {
            DigestError::Malformed(format!(
                "the HA1 is not {} lower-case hex digits, as {} needs",
                alg.hex_len(),
                alg.as_str()
            ))
        })?,
    };
    Ok(if alg.is_sess() {
        h.hex(&[base.as_str(), &challenge.nonce, answer.cnonce])
    } else {
        base
    })
}

/// HA2 = H(method:uri), plus H(body) for auth-int.
fn ha2(h: HashFn, qop: Option<Qop>, answer: &Answer) -> Hex {
    match qop {
        Some(Qop::AuthInt) => {
            let body_hash = h.hex(&[answer.body]);
            h.hex(&[answer.method, answer.uri, body_hash.as_str()])
        }
        Some(Qop::Auth) | None => method_uri_hash(h, answer.method, answer.uri),
    }
}

thread_local! {
    /// The last H(method:uri) made on this thread: one that registers many
    /// accounts with one registrar makes the same one for each of them.
    static LAST_METHOD_URI: std::cell::RefCell<Option<(HashFn, String, Hex)>> =
        const { std::cell::RefCell::new(None) };
}

/// H(method:uri), the last one of this thread reused when it is asked again.
fn method_uri_hash(h: HashFn, method: &str, uri: &str) -> Hex {
    let is_key = |key: &str| {
        key.len() == method.len() + 1 + uri.len()
            && key.starts_with(method)
            && key.ends_with(uri)
            && key.as_bytes()[method.len()] == b':'
    };
    let remembered = LAST_METHOD_URI
        .try_with(|last| {
            let last = last.borrow();
            let (f, key, hex) = last.as_ref()?;
            (*f == h && is_key(key)).then_some(*hex)
        })
        .ok()
        .flatten();
    if let Some(hex) = remembered {
        return hex;
    }
    let hex = h.hex(&[method, uri]);
    let _ = LAST_METHOD_URI.try_with(|last| {
        *last.borrow_mut() = Some((h, format!("{method}:{uri}"), hex));
    });
    hex
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered H(method:uri) is the hash of what is asked, through
    /// repeats and every kind of change (function, method, URI, where the
    /// colon falls, a prefix or suffix of the last one).
    #[test]
    fn the_remembered_method_uri_hash_is_the_one_asked_for() {
        let asked = [
            (HashFn::Md5, "REGISTER", "sip:127.0.0.1:5060"),
            (HashFn::Md5, "REGISTER", "sip:127.0.0.1:5060"),
            (HashFn::Sha256, "REGISTER", "sip:127.0.0.1:5060"),
            (HashFn::Md5, "REGISTER", "sip:127.0.0.1:5061"),
            (HashFn::Md5, "REGISTER", "sip:127.0.0.1:506"),
            (HashFn::Md5, "REGISTER", "sip:127.0.0.1:5060"),
            (HashFn::Md5, "OPTIONS", "sip:127.0.0.1:5060"),
            (HashFn::Md5, "REGISTER:sip", "127.0.0.1:5060"),
            (HashFn::Md5, "REGISTE", "R:sip:127.0.0.1:5060"),
            (HashFn::Md5, "", ""),
            (HashFn::Sha512_256, "", ""),
            (HashFn::Sha512_256, "REGISTER", "sips:example.com"),
            (HashFn::Sha512_256, "REGISTER", "sips:example.com"),
        ];
        for (h, method, uri) in asked {
            assert_eq!(
                method_uri_hash(h, method, uri).as_str(),
                h.hex(&[method, uri]).as_str(),
                "{method}:{uri}"
            );
        }
    }
}
