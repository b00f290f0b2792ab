//! A short text kept inside its owner (a random Call-ID or From tag, a
//! contact user as a table key) rather than in a string of its own on the
//! heap; a longer one goes on the heap.

use super::own_text::own_text;

/// Text of at most `N` bytes inline, longer text boxed.
#[derive(Clone)]
pub(crate) enum ShortText<const N: usize> {
    /// The usual case: no allocation.
    Inline {
        /// Bytes used of `bytes`.
        len: u8,
        /// The text, from a `&str` (so UTF-8 up to `len`).
        bytes: [u8; N],
    },
    /// Longer than `N` bytes.
    Heap(Box<str>),
}

impl<const N: usize> ShortText<N> {
    /// Keeps `s` inline when it fits.
    pub(crate) fn new(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= N => {
                let mut bytes = [0u8; N];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                ShortText::Inline { len, bytes }
            }
            _ => ShortText::Heap(s.into()),
        }
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            ShortText::Inline { len, bytes } => {
                let text = bytes.get(..usize::from(*len)).unwrap_or_default();
                // SAFETY: `new` copied a whole `&str` of `len` bytes there.
                unsafe { own_text(text) }
            }
            ShortText::Heap(s) => s,
        }
    }
}

// Compared and hashed as the text (so a table keyed by it is searched with
// a `&str`, and an inline key is read without following a pointer).
impl<const N: usize> PartialEq for ShortText<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for ShortText<N> {}

impl<const N: usize> std::hash::Hash for ShortText<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> std::borrow::Borrow<str> for ShortText<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> std::fmt::Debug for ShortText<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_stays_inline_and_long_text_goes_to_the_heap() {
        let t = ShortText::<10>::new("abc");
        assert!(matches!(t, ShortText::Inline { len: 3, .. }));
        assert_eq!(t.as_str(), "abc");
        let full = ShortText::<4>::new("h\u{e9}h");
        assert_eq!(full.as_str(), "h\u{e9}h");
        let long = ShortText::<4>::new("abcde");
        assert!(matches!(long, ShortText::Heap(_)));
        assert_eq!(long.as_str(), "abcde");
        assert_eq!(ShortText::<4>::new("").as_str(), "");
        assert_eq!(format!("{:?}", ShortText::<8>::new("x")), "\"x\"");
    }

    #[test]
    fn a_table_keyed_by_short_texts_is_searched_with_str() {
        let mut t = std::collections::HashMap::new();
        t.insert(ShortText::<4>::new("ab"), 1);
        t.insert(ShortText::<4>::new("abcdef"), 2);
        assert_eq!(t.get("ab"), Some(&1));
        assert_eq!(t.get("abcdef"), Some(&2));
        assert_eq!(t.get("abc"), None);
        assert!(ShortText::<4>::new("abcdef") == ShortText::<4>::new("abcdef"));
    }
}
