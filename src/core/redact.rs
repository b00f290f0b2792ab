//! Redaction of credentials in SIP message text shown to users (message trace).
//!
//! The values of `Authorization` and `Proxy-Authorization` headers (digest
//! response, nonce, cnonce …) are replaced by `<scheme> <redacted>`; folded
//! continuation lines of those headers go too. The start line, every other
//! header and the body are kept byte for byte.

/// What replaces a credentials header's parameters.
pub const REDACTED: &str = "<redacted>";

/// Returns `text` with the credentials header values redacted.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_headers = true;
    let mut first = true;
    let mut dropping = false;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.find('\n') {
            Some(i) => rest.split_at(i + 1),
            None => (rest, ""),
        };
        rest = next;
        if !in_headers {
            out.push_str(line);
            continue;
        }
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = &line[content.len()..];
        if content.is_empty() {
            // End of the header section: the body follows untouched.
            in_headers = false;
            dropping = false;
            out.push_str(line);
            continue;
        }
        if first {
            first = false;
            out.push_str(line);
            continue;
        }
        if content.starts_with([' ', '\t']) {
            // A folded continuation of the previous header.
            if !dropping {
                out.push_str(line);
            }
            continue;
        }
        dropping = false;
        match content.split_once(':') {
            Some((name, value)) if is_credentials(name.trim()) => {
                dropping = true;
                out.push_str(name);
                out.push(':');
                let scheme = value.split_whitespace().next().filter(|s| !s.contains('='));
                out.push(' ');
                if let Some(s) = scheme {
                    out.push_str(s);
                    out.push(' ');
                }
                out.push_str(REDACTED);
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

fn is_credentials(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx\r\n\
        Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n1\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\"\r\n\
        proxy-authorization : Digest username=\"alice\",\r\n \
        response=\"fedcba9876543210fedcba9876543210\"\r\n\
        CSeq: 2 REGISTER\r\n\
        Content-Length: 31\r\n\
        \r\n\
        Authorization: kept in the body";

    #[test]
    fn digest_values_are_removed() {
        let r = redact(REQ);
        assert!(!r.contains("0123456789abcdef"), "{r}");
        assert!(!r.contains("fedcba98"), "{r}");
        assert!(!r.contains("nonce=\"n1\""), "{r}");
        assert!(
            r.contains("\r\nAuthorization: Digest <redacted>\r\n"),
            "{r}"
        );
        assert!(
            r.contains("\r\nproxy-authorization : Digest <redacted>\r\nCSeq: 2 REGISTER\r\n"),
            "{r}"
        );
    }

    #[test]
    fn everything_else_is_kept() {
        let r = redact(REQ);
        assert!(r.starts_with(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx\r\n"
        ));
        assert!(r.ends_with("Content-Length: 31\r\n\r\nAuthorization: kept in the body"));
        let plain = "SIP/2.0 200 OK\r\nContact: <sip:a@b>;expires=60\r\n\r\n";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn bare_lf_and_missing_scheme() {
        let r = redact("REGISTER sip:x SIP/2.0\nAuthorization: response=\"abc\"\n\n");
        assert_eq!(r, "REGISTER sip:x SIP/2.0\nAuthorization: <redacted>\n\n");
    }

    #[test]
    fn start_line_is_never_taken_for_a_header() {
        assert_eq!(redact("Authorization: x"), "Authorization: x");
    }
}
