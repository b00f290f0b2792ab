//! Numbers and IPv4 addresses as text in stack buffers, for the writers
//! that run on every registration.

use std::net::Ipv4Addr;

use crate::core::own_text::own_text;

/// Decimal digits of a number in a stack buffer: messages are written on
/// every registration, and this skips the formatting machinery.
pub(crate) struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    /// The digits of `n`.
    pub(crate) fn new(mut n: u64) -> Decimal {
        let mut buf = [b'0'; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            if let Some(d) = buf.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        Decimal { buf, start }
    }

    /// The digits as text.
    pub(crate) fn as_str(&self) -> &str {
        let digits = self.buf.get(self.start..).unwrap_or_default();
        // SAFETY: ASCII digits, written by `new`.
        unsafe { own_text(digits) }
    }
}

/// An IPv4 address in dotted-quad text, in a stack buffer.
pub(crate) struct V4Text {
    buf: [u8; 15],
    len: usize,
}

impl V4Text {
    /// The text of `addr`, as `Ipv4Addr`'s `Display` gives it.
    pub(crate) fn new(addr: Ipv4Addr) -> V4Text {
        let mut out = V4Text {
            buf: [0; 15],
            len: 0,
        };
        for (i, octet) in addr.octets().into_iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            if octet >= 100 {
                out.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                out.push(b'0' + octet / 10 % 10);
            }
            out.push(b'0' + octet % 10);
        }
        out
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// The address as text.
    pub(crate) fn as_str(&self) -> &str {
        let text = self.buf.get(..self.len).unwrap_or_default();
        // SAFETY: ASCII digits and dots, written by `new`.
        unsafe { own_text(text) }
    }
}
