//! URI equivalence (RFC 3261 §19.1.4): which parts compare with or without
//! case, and how `%XX` escapes count.

use std::borrow::Cow;

use super::{Host, Uri};
use crate::core::lexer::hex_pair;

/// Parameters that make two URIs differ when only one of them has it
/// (RFC 3261 §19.1.4).
const STRICT_PARAMS: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

/// Characters with a delimiting role; their escaped form is *not*
/// equivalent to the literal character when comparing.
const RESERVED: &[u8] = b";/?:@&=+$,";

impl Uri {
    /// Compares two URIs with the rules of RFC 3261 §19.1.4.
    ///
    /// Userinfo is case-sensitive, everything else case-insensitive, and
    /// `%XX` escapes of non-reserved characters equal the character itself.
    /// Header values are compared case-sensitively.
    pub fn equivalent(&self, other: &Uri) -> bool {
        self.scheme == other.scheme
            && opt_eq(&self.user, &other.user, same_exact)
            && opt_eq(&self.password, &other.password, same_exact)
            && hosts_equivalent(&self.host, &other.host)
            && self.port == other.port
            && params_equivalent(self, other)
            && headers_contained(&self.headers, &other.headers)
            && headers_contained(&other.headers, &self.headers)
    }
}

/// Canonical form for comparison: escapes of non-reserved characters are
/// decoded, escapes of reserved ones are kept (with upper-case hex) because
/// RFC 3261 treats them as different from the literal character.
fn normalize(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        // Nothing to decode (the usual case): no copy.
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let pair = bytes.get(i + 1..i + 3);
        match (b, hex_pair(pair), pair) {
            (b'%', Some(v), _) if !RESERVED.contains(&v) => {
                out.push(v);
                i += 3;
            }
            (b'%', Some(_), Some(pair)) => {
                out.push(b'%');
                out.extend(pair.iter().map(u8::to_ascii_uppercase));
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Case-sensitive comparison after normalizing escapes.
fn same_exact(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// Case-insensitive comparison after normalizing escapes.
fn same_folded(a: &str, b: &str) -> bool {
    normalize(a).eq_ignore_ascii_case(&normalize(b))
}

/// Both absent, or both present and equal under `eq`.
fn opt_eq<A, B>(a: &Option<A>, b: &Option<B>, eq: fn(&str, &str) -> bool) -> bool
where
    A: AsRef<str>,
    B: AsRef<str>,
{
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => eq(a.as_ref(), b.as_ref()),
        _ => false,
    }
}

/// Host names compare case-insensitively; addresses compare as addresses,
/// and a name never equals an address.
fn hosts_equivalent(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Domain(a), Host::Domain(b)) => same_folded(a, b),
        (Host::V4(a), Host::V4(b)) => a == b,
        (Host::V6(a), Host::V6(b)) => a == b,
        _ => false,
    }
}

/// RFC 3261 §19.1.4 parameter rules: the strict parameters must match when
/// either side has them; any other parameter only when both sides have it.
fn params_equivalent(a: &Uri, b: &Uri) -> bool {
    let strict_ok = STRICT_PARAMS
        .iter()
        .all(|name| match (a.param(name), b.param(name)) {
            (None, None) => true,
            (Some(x), Some(y)) => param_values_equal(x, y),
            _ => false,
        });
    // A repeated parameter counts with its first value on both sides, as in
    // `Uri::param` and the strict check above, so that a URI always equals itself.
    let others_ok = a
        .params
        .iter()
        .filter(|(name, _)| !is_strict_param(name))
        .all(|(name, _)| match (a.param(name), b.param(name)) {
            (Some(mine), Some(other)) => param_values_equal(mine, other),
            _ => true,
        });
    strict_ok && others_ok
}

/// Flag vs value differ; two values compare case-insensitively.
fn param_values_equal(a: Option<&str>, b: Option<&str>) -> bool {
    opt_eq(&a, &b, same_folded)
}

/// Whether `name` is one of [`STRICT_PARAMS`].
fn is_strict_param(name: &str) -> bool {
    STRICT_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Every header of `a` has a counterpart in `b` (names case-insensitive,
/// values case-sensitive after normalizing escapes).
fn headers_contained(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.iter().all(|(name, value)| {
        b.iter()
            .any(|(n, v)| same_folded(name, n) && same_exact(value, v))
    })
}
