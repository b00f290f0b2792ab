//! Text this crate wrote into a byte buffer itself (a copy of a whole
//! `&str`, or ASCII it generated: digits, hex, base32 tokens), read back
//! as `&str` without validating it again. The hot paths of a registration
//! did so about fifty times each, a twentieth of their instructions.

/// `bytes` as text, unchecked in release builds (debug builds still check).
///
/// # Safety
/// `bytes` must be UTF-8: a whole `&str` copied into a buffer (or a prefix
/// of one ending at a character boundary), or bytes the caller filled with
/// ASCII itself. Every call says which.
pub(crate) unsafe fn own_text(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok(), "not UTF-8: {bytes:?}");
    // SAFETY: the caller's contract above.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::own_text;

    #[test]
    fn own_text_reads_back_what_was_written() {
        let written = "sip:h\u{e9}@127.0.0.1";
        // SAFETY: a whole `&str`.
        assert_eq!(unsafe { own_text(written.as_bytes()) }, written);
        // SAFETY: ASCII.
        assert_eq!(unsafe { own_text(b"0123abcd") }, "0123abcd");
        // SAFETY: empty.
        assert_eq!(unsafe { own_text(b"") }, "");
    }
}
