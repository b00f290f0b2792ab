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
//!
//! The parts: `challenge` reads challenges, `answer` chooses one and computes
//! the answer, `algorithm` holds the hash functions. The scanning is the
//! shared `core::lexer`.

use std::fmt;

mod algorithm;
mod answer;
mod challenge;

pub use algorithm::Algorithm;
pub use answer::{
    authorization, authorization_with_key, choose_challenge, response_hash, usable_algorithm,
    Answer, Key, Qop,
};
pub use challenge::{parse_challenge, Challenge};

/// Longest piece of peer input copied into an error, so errors stay small and loggable.
const MAX_ECHO: usize = 64;

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

#[cfg(test)]
mod tests;
