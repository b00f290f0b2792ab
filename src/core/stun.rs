//! STUN Binding (RFC 5389) as the RFC 5626 §4.4.2 keep-alive on UDP flows:
//! the request encoder and the success-response decoder (XOR-MAPPED-ADDRESS,
//! or the older MAPPED-ADDRESS). Nothing else of STUN is needed here.
//!
//! Works on untrusted input: a malformed answer is `None`, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The fixed magic cookie of RFC 5389 §6.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request message type.
const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response message type.
const BINDING_SUCCESS: u16 = 0x0101;
/// Header length in bytes.
const HEADER_LEN: usize = 20;
/// MAPPED-ADDRESS attribute (RFC 5389 §15.1).
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
/// XOR-MAPPED-ADDRESS attribute (RFC 5389 §15.2).
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A 96-bit STUN transaction id.
pub type TransactionId = [u8; 12];

/// Writes a Binding request without attributes.
pub fn binding_request(id: &TransactionId) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(id);
    out
}

/// Whether a datagram looks like a STUN message (RFC 5389 §6 and RFC 7983
/// demultiplexing: first two bits zero, magic cookie in place), so it can be
/// told from SIP, which starts with a letter.
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN
        && buf.first().is_some_and(|b| b & 0xC0 == 0)
        && buf.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..])
}

/// A decoded Binding success response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingSuccess {
    /// Transaction id it answers.
    pub id: TransactionId,
    /// The reflexive transport address the server saw.
    pub mapped: SocketAddr,
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Decodes a Binding success response carrying a mapped address.
/// `None` for anything else (requests, errors, truncated or malformed data).
pub fn parse_binding_success(buf: &[u8]) -> Option<BindingSuccess> {
    if !is_stun(buf) || be16(buf, 0)? != BINDING_SUCCESS {
        return None;
    }
    let len = usize::from(be16(buf, 2)?);
    if len % 4 != 0 || buf.len() < HEADER_LEN + len {
        return None;
    }
    let mut id = [0u8; 12];
    id.copy_from_slice(buf.get(8..HEADER_LEN)?);
    let attrs = buf.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut xor = None;
    let mut plain = None;
    let mut at = 0;
    while at + 4 <= attrs.len() {
        let kind = be16(attrs, at)?;
        let alen = usize::from(be16(attrs, at + 2)?);
        let value = attrs.get(at + 4..at + 4 + alen)?;
        match kind {
            ATTR_XOR_MAPPED_ADDRESS => xor = xor.or_else(|| address(value, Some(&id))),
            ATTR_MAPPED_ADDRESS => plain = plain.or_else(|| address(value, None)),
            _ => {}
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    Some(BindingSuccess {
        id,
        mapped: xor.or(plain)?,
    })
}

/// Reads a (XOR-)MAPPED-ADDRESS value; `xor_id` is the transaction id for the XOR form.
fn address(v: &[u8], xor_id: Option<&TransactionId>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = be16(v, 2)?;
    if xor_id.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (family, v.len()) {
        (0x01, 8) => {
            let mut o = [0u8; 4];
            o.copy_from_slice(v.get(4..8)?);
            if xor_id.is_some() {
                for (b, k) in o.iter_mut().zip(cookie) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(o))
        }
        (0x02, 20) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(v.get(4..20)?);
            if let Some(id) = xor_id {
                let key = cookie.iter().chain(id.iter());
                for (b, k) in o.iter_mut().zip(key) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A success response as a server writes it (test-side encoder).
    fn success(id: &TransactionId, mapped: SocketAddr, xor: bool) -> Vec<u8> {
        let mut value = vec![0u8];
        let cookie = MAGIC_COOKIE.to_be_bytes();
        let port = if xor {
            mapped.port() ^ (MAGIC_COOKIE >> 16) as u16
        } else {
            mapped.port()
        };
        let mut ip: Vec<u8> = match mapped.ip() {
            IpAddr::V4(a) => {
                value.push(1);
                a.octets().to_vec()
            }
            IpAddr::V6(a) => {
                value.push(2);
                a.octets().to_vec()
            }
        };
        if xor {
            let key: Vec<u8> = cookie.iter().chain(id.iter()).copied().collect();
            for (b, k) in ip.iter_mut().zip(key) {
                *b ^= k;
            }
        }
        value.extend_from_slice(&port.to_be_bytes());
        value.extend_from_slice(&ip);
        let kind = if xor {
            ATTR_XOR_MAPPED_ADDRESS
        } else {
            ATTR_MAPPED_ADDRESS
        };
        // An unknown attribute with padding first, to exercise the walk.
        let mut attrs = vec![0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0];
        attrs.extend_from_slice(&kind.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(&value);
        let mut m = BINDING_SUCCESS.to_be_bytes().to_vec();
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&cookie);
        m.extend_from_slice(id);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn request_has_the_rfc_5389_header() {
        let id = *b"abcdefghijkl";
        let r = binding_request(&id);
        assert_eq!(r.len(), 20);
        assert_eq!(&r[..4], &[0, 1, 0, 0]);
        assert_eq!(&r[4..8], &[0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&r[8..], &id);
        assert!(is_stun(&r));
        assert!(!is_stun(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"));
        assert!(!is_stun(b"\r\n\r\n"));
    }

    #[test]
    fn xor_mapped_v4_and_v6_and_plain_mapped() {
        let id = [7u8; 12];
        for (addr, xor) in [
            ("203.0.113.9:40123", true),
            ("[2001:db8::1]:5060", true),
            ("198.51.100.1:1", false),
        ] {
            let a: SocketAddr = addr.parse().unwrap();
            let got = parse_binding_success(&success(&id, a, xor)).expect("decodes");
            assert_eq!(got.mapped, a);
            assert_eq!(got.id, id);
        }
    }

    #[test]
    fn malformed_answers_are_refused() {
        let id = [1u8; 12];
        let good = success(&id, "127.0.0.1:9".parse().unwrap(), true);
        for cut in 0..good.len() {
            assert!(parse_binding_success(&good[..cut]).is_none(), "cut {cut}");
        }
        let mut request = good.clone();
        request[1] = 0x01;
        request[0] = 0x00;
        assert!(parse_binding_success(&request).is_none());
        let mut bad_len = good.clone();
        bad_len[3] = 0xFF;
        assert!(parse_binding_success(&bad_len).is_none());
        assert!(parse_binding_success(&binding_request(&id)).is_none());
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = crate::core::rand::Rng::new(99);
        let id = [3u8; 12];
        let good = success(&id, "[2001:db8::7]:9".parse().unwrap(), true);
        for _ in 0..20_000 {
            let mut m = good.clone();
            for _ in 0..(rng.next_u64() % 4) {
                let i = (rng.next_u64() as usize) % m.len();
                m[i] = rng.next_u64() as u8;
            }
            let _ = parse_binding_success(&m);
            let len = (rng.next_u64() % 64) as usize;
            let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = parse_binding_success(&junk);
            let _ = is_stun(&junk);
        }
    }
}
