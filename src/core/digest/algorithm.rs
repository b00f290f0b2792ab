//! The hash algorithms Digest names (RFC 2617, RFC 7616, RFC 8760) and the
//! lower-case hex their fields are hashed into, on the stack.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use crate::core::own_text::own_text;

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
    pub(super) const ALL: [Algorithm; 6] = [
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

    /// The algorithm without `-sess` (the one an HA1 is computed with:
    /// `SHA-256-sess` re-keys an HA1 of `SHA-256`).
    pub fn base(self) -> Algorithm {
        match self.hash_fn() {
            HashFn::Md5 => Algorithm::Md5,
            HashFn::Sha256 => Algorithm::Sha256,
            HashFn::Sha512_256 => Algorithm::Sha512_256,
        }
    }

    /// Length in hex digits of this algorithm's digests (an HA1 included).
    pub fn hex_len(self) -> usize {
        match self.hash_fn() {
            HashFn::Md5 => 32,
            HashFn::Sha256 | HashFn::Sha512_256 => 64,
        }
    }

    /// Whether HA1 is re-keyed with the nonces (the `-sess` variants).
    pub(super) fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The hash function underneath.
    pub(super) fn hash_fn(self) -> HashFn {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashFn::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFn::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashFn::Sha512_256,
        }
    }
}

/// A bare hash function, without the `-sess` distinction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum HashFn {
    Md5,
    Sha256,
    Sha512_256,
}

impl HashFn {
    /// Hashes `fields` joined with `:` (the RFC's `H(a:b:c)`) and returns lower-case hex.
    pub(super) fn hex<T: AsRef<[u8]>>(self, fields: &[T]) -> Hex {
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
pub(super) struct Hex {
    buf: [u8; 64],
    len: usize,
}

impl Hex {
    /// `text` as a digest of `alg`, if it is lower-case hex of that length
    /// (a stored HA1: hashed as text, so only that exact form gives the
    /// server's answer).
    pub(super) fn of_digest(alg: Algorithm, text: &str) -> Option<Hex> {
        let lower_hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
        if text.len() != alg.hex_len() || !text.as_bytes().iter().all(lower_hex) {
            return None;
        }
        let mut out = Hex {
            buf: [0; 64],
            len: text.len(),
        };
        out.buf
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(out)
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        let text = self.buf.get(..self.len).unwrap_or_default();
        // SAFETY: `of_digest` copied checked lower-case hex there and
        // `to_hex` writes hex digits: ASCII.
        unsafe { own_text(text) }
    }
}

impl AsRef<[u8]> for Hex {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

/// Lower-case hex, as Digest requires (bytes past 32 are not written; none of
/// our hashes is longer).
pub(super) fn to_hex(bytes: &[u8]) -> Hex {
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
