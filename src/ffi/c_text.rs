//! Text handed to a C callback as a NUL-terminated string for the length of
//! the call: a short one is copied onto the stack, a long one into a
//! `CString`. A NUL inside (never in a parsed reason) becomes a space, so
//! the C side never sees the text cut short.

use std::ffi::{c_char, CString};

/// Texts shorter than this need no allocation (reason phrases are).
const INLINE: usize = 64;

/// A NUL-terminated copy of a text. The pointer is valid while the value
/// stays where it was when the pointer was taken: an inline text moved
/// (returned, put into an `Option`) takes its bytes along, so keep it in
/// its final place first.
pub(crate) enum CText {
    /// The text, then NULs to the end.
    Inline { bytes: [u8; INLINE] },
    /// Too long for the stack.
    Heap(CString),
}

impl CText {
    /// Copies `s`, any NUL in it replaced by a space.
    pub(crate) fn new(s: &str) -> CText {
        if s.len() < INLINE {
            let mut bytes = [0u8; INLINE];
            for (to, &b) in bytes.iter_mut().zip(s.as_bytes()) {
                *to = if b == 0 { b' ' } else { b };
            }
            return CText::Inline { bytes };
        }
        CText::Heap(CString::new(s.replace('\0', " ")).unwrap_or_default())
    }

    /// The C string: valid while `self` is neither moved nor dropped.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        match self {
            CText::Inline { bytes } => bytes.as_ptr().cast(),
            CText::Heap(c) => c.as_ptr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// What the C side reads is the text, a NUL turned into a space, at
    /// every length around the inline limit.
    #[test]
    fn reads_back_as_the_text_without_nul() {
        for len in [0, 1, 2, INLINE - 2, INLINE - 1, INLINE, INLINE + 1, 300] {
            for nul_at in [None, Some(0), Some(len / 2), Some(len.saturating_sub(1))] {
                let mut text: String = (0..len)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                if let Some(at) = nul_at.filter(|&at| at < len) {
                    text.replace_range(at..=at, "\0");
                }
                let c = CText::new(&text);
                // SAFETY: `as_ptr` is NUL-terminated and `c` lives across the read.
                let read = unsafe { CStr::from_ptr(c.as_ptr()) }.to_str().unwrap();
                assert_eq!(
                    read,
                    text.replace('\0', " "),
                    "len {len}, NUL at {nul_at:?}"
                );
                assert_eq!(matches!(c, CText::Inline { .. }), len < INLINE);
            }
        }
    }
}
