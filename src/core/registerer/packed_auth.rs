//! The per-realm challenge cache between requests: packed into one byte
//! buffer while no request is in flight (an idle registerer keeps one small
//! allocation instead of a list of entries with a string per field), opened
//! back into [`AuthEntry`] values when a request needs them.
//!
//! The buffer is only ever read by [`unpack`] from what [`pack`] wrote, so
//! the round trip is exact by construction.

use super::{AuthEntry, Challenge};
use crate::core::digest::Algorithm;

/// The algorithms by their index in the buffer.
const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Md5,
    Algorithm::Md5Sess,
    Algorithm::Sha256,
    Algorithm::Sha256Sess,
    Algorithm::Sha512_256,
    Algorithm::Sha512_256Sess,
];

/// The cache as the registerer holds it.
#[derive(Clone, Debug)]
pub(super) enum AuthCache {
    /// Entries in use (a request is in flight, or the cache is empty).
    Open(Vec<AuthEntry>),
    /// Entries packed while idle (never empty).
    Packed(Box<[u8]>),
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::Open(Vec::new())
    }
}

impl AuthCache {
    /// The entries, opened if they were packed.
    pub(super) fn open(&mut self) -> &mut Vec<AuthEntry> {
        if let AuthCache::Packed(bytes) = self {
            *self = AuthCache::Open(unpack(bytes).unwrap_or_default());
        }
        match self {
            AuthCache::Open(entries) => entries,
            // Opened just above.
            AuthCache::Packed(_) => unreachable!("auth cache opened above"),
        }
    }

    /// Packs the entries (nothing to do when empty or packed already).
    pub(super) fn pack(&mut self) {
        if let AuthCache::Open(entries) = self {
            if !entries.is_empty() {
                *self = AuthCache::Packed(pack(entries));
            }
        }
    }
}

const PROXY: u8 = 1;
const USABLE: u8 = 2;
const STALE: u8 = 4;
const OPAQUE: u8 = 8;
const ALGORITHM: u8 = 16;
const DOMAIN: u8 = 32;

/// Writes `entries` into one exactly sized buffer.
fn pack(entries: &[AuthEntry]) -> Box<[u8]> {
    let mut size = varint_len(entries.len());
    for e in entries {
        let c = &e.challenge;
        size += 2 + varint_len(e.nc as usize) + text_len(&c.realm) + text_len(&c.nonce);
        size += [&c.opaque, &c.algorithm, &c.domain]
            .into_iter()
            .flatten()
            .map(|s| text_len(s))
            .sum::<usize>();
        size += varint_len(c.qop.len()) + c.qop.iter().map(|q| text_len(q)).sum::<usize>();
    }
    let mut out = Vec::with_capacity(size);
    put_varint(&mut out, entries.len());
    for e in entries {
        let c = &e.challenge;
        let flags = [
            (e.proxy, PROXY),
            (e.usable, USABLE),
            (c.stale, STALE),
            (c.opaque.is_some(), OPAQUE),
            (c.algorithm.is_some(), ALGORITHM),
            (c.domain.is_some(), DOMAIN),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit);
        out.push(flags);
        out.push(algorithm_index(e.strongest));
        put_varint(&mut out, e.nc as usize);
        put_text(&mut out, &c.realm);
        put_text(&mut out, &c.nonce);
        for s in [&c.opaque, &c.algorithm, &c.domain].into_iter().flatten() {
            put_text(&mut out, s);
        }
        put_varint(&mut out, c.qop.len());
        for q in &c.qop {
            put_text(&mut out, q);
        }
    }
    out.into_boxed_slice()
}

/// Reads back what [`pack`] wrote (`None` only if the buffer was not its).
fn unpack(bytes: &[u8]) -> Option<Vec<AuthEntry>> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.varint()?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let flags = r.byte()?;
        let strongest = *ALGORITHMS.get(usize::from(r.byte()?))?;
        let nc = u32::try_from(r.varint()?).ok()?;
        let realm = r.text()?;
        let nonce = r.text()?;
        let mut optional = |bit: u8| -> Option<Option<String>> {
            if flags & bit == 0 {
                Some(None)
            } else {
                r.text().map(Some)
            }
        };
        let opaque = optional(OPAQUE)?;
        let algorithm = optional(ALGORITHM)?;
        let domain = optional(DOMAIN)?;
        let qops = r.varint()?;
        let qop = (0..qops).map(|_| r.text()).collect::<Option<Vec<_>>>()?;
        entries.push(AuthEntry {
            proxy: flags & PROXY != 0,
            challenge: Challenge {
                realm,
                nonce,
                opaque,
                algorithm,
                qop,
                stale: flags & STALE != 0,
                domain,
            },
            nc,
            strongest,
            usable: flags & USABLE != 0,
        });
    }
    Some(entries)
}

fn algorithm_index(alg: Algorithm) -> u8 {
    ALGORITHMS
        .iter()
        .position(|a| *a == alg)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn text_len(s: &str) -> usize {
    varint_len(s.len()) + s.len()
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<usize> {
        let mut v = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let b = self.byte()?;
            v |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn text(&mut self) -> Option<String> {
        let len = self.varint()?;
        let end = self.at.checked_add(len)?;
        let s = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(proxy: bool, realm: &str, full: bool) -> AuthEntry {
        AuthEntry {
            proxy,
            challenge: Challenge {
                realm: realm.into(),
                nonce: "n".repeat(200),
                opaque: full.then(|| "op\"aque".into()),
                algorithm: full.then(|| "SHA-256-sess".into()),
                qop: if full {
                    vec!["auth".into(), "auth-int".into()]
                } else {
                    Vec::new()
                },
                stale: full,
                domain: full.then(|| "sip:a sip:b".into()),
            },
            nc: if full { 300 } else { 1 },
            strongest: if full {
                Algorithm::Sha512_256Sess
            } else {
                Algorithm::Md5
            },
            usable: !full,
        }
    }

    fn same(a: &AuthEntry, b: &AuthEntry) -> bool {
        a.proxy == b.proxy
            && a.challenge == b.challenge
            && a.nc == b.nc
            && a.strongest == b.strongest
            && a.usable == b.usable
    }

    #[test]
    fn packing_and_opening_gives_back_every_field() {
        let entries = vec![entry(false, "a.example", false), entry(true, "b", true)];
        let mut cache = AuthCache::Open(entries.clone());
        cache.pack();
        let AuthCache::Packed(bytes) = &cache else {
            panic!("not packed")
        };
        assert!(bytes.len() < 600, "{} bytes", bytes.len());
        let opened = cache.open();
        assert_eq!(opened.len(), 2);
        assert!(entries.iter().zip(opened.iter()).all(|(a, b)| same(a, b)));
    }

    #[test]
    fn an_empty_cache_stays_open_and_unallocated() {
        let mut cache = AuthCache::default();
        cache.pack();
        assert!(matches!(&cache, AuthCache::Open(v) if v.capacity() == 0));
    }

    #[test]
    fn a_foreign_buffer_opens_empty_rather_than_panicking() {
        for junk in [&[][..], &[5], &[1, 0, 0, 1, 200], &[1, 0, 99, 1, 1, b'a']] {
            assert!(unpack(junk).is_none_or(|v| v.len() <= 1));
        }
    }
}
