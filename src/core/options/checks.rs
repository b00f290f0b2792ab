//! The checks of single option values, each written once: the setters (and
//! through them the C API) and [`RegistererOptions::validate`](super::RegistererOptions::validate)
//! call the same functions.

use std::net::{IpAddr, SocketAddr};

use crate::core::lexer::{is_token, is_token_char, is_word_char, quoted_len, split_once_opt};
use crate::core::uri::{Uri, UriRef};
use crate::error::Error;

/// Headers the library writes itself; an extra header may not duplicate them.
const MANAGED_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "expires",
    "content-length",
    "l",
    "max-forwards",
    "authorization",
    "proxy-authorization",
    "route",
];

/// `expires` must be at least 1 (0 would remove the binding).
pub(super) fn check_expires(seconds: u32) -> Result<(), Error> {
    if seconds == 0 {
        return Err(Error::invalid(
            "expires must be at least 1 (use unregister to remove a binding)",
        ));
    }
    Ok(())
}

/// `refresh_frequency` is a percentage of the grant, 50..=99.
pub(super) fn check_refresh_frequency(percent: u32) -> Result<(), Error> {
    if !(50..=99).contains(&percent) {
        return Err(Error::invalid(format!(
            "refresh_frequency must be between 50 and 99, not {percent}"
        )));
    }
    Ok(())
}

/// The CSeq must stay below 2^31 (RFC 3261 §8.1.1.5).
pub(super) fn check_cseq(cseq: u32) -> Result<(), Error> {
    if cseq >= 1 << 31 {
        return Err(Error::invalid("cseq must be below 2^31"));
    }
    Ok(())
}

pub(super) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Parses a URI option. A password in the userinfo is refused (it would go out
/// in clear text in To/From) and never echoed in the error text.
pub(super) fn parse_uri(what: &str, s: &str) -> Result<Uri, Error> {
    parse_uri_ref(what, s).map(|u| u.to_uri())
}

/// [`parse_uri`] read in place: the same checks and errors, nothing copied.
pub(super) fn parse_uri_ref<'a>(what: &str, s: &'a str) -> Result<UriRef<'a>, Error> {
    check_no_ctl(what, s)?;
    let uri = UriRef::parse(s).map_err(|e| {
        Error::invalid(format!(
            "{what}: bad SIP URI {:?}: {e}",
            truncate(&redact_password(s))
        ))
    })?;
    if uri.password.is_some() {
        return Err(Error::invalid(format!(
            "{what} must not contain a password (it would be sent in clear text); set the password separately"
        )));
    }
    Ok(uri)
}

/// Replaces a `user:password@` password with `***` for error texts.
pub(super) fn redact_password(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once(':') else {
        return s.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}:{user}:***@{host}")
        }
        _ => s.to_owned(),
    }
}

pub(super) fn parse_socket_addr(s: &str) -> Result<SocketAddr, Error> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = match s.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').unwrap_or(s),
        None => s,
    };
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| {
            Error::invalid(format!(
                "local address {:?} is not IP or IP:port",
                truncate(s)
            ))
        })
}

/// Rejects control characters (CR, LF, NUL, …) that would break the message framing.
pub fn check_no_ctl(what: &str, s: &str) -> Result<(), Error> {
    if s.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(format!(
            "{what} must not contain control characters (CR, LF, ...)"
        )));
    }
    Ok(())
}

/// A non-empty RFC 3261 token.
pub(super) fn check_token(what: &str, s: &str) -> Result<(), Error> {
    if !is_token(s) {
        return Err(Error::invalid(format!(
            "{what} must be a non-empty SIP token"
        )));
    }
    Ok(())
}

/// A non-empty RFC 3261 `callid` (`word [ "@" word ]`; the `@` is allowed
/// anywhere, as before).
pub(super) fn check_word(what: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || !s.chars().all(|c| is_word_char(c) || c == '@') {
        return Err(Error::invalid(format!(
            "{what} must be a non-empty SIP word (RFC 3261 callid)"
        )));
    }
    Ok(())
}

/// Checks the headers of one request (`register_with_headers`) as the
/// registerer's extra headers are checked; returns them trimmed.
pub fn check_request_headers<S: AsRef<str>>(headers: &[S]) -> Result<Vec<String>, Error> {
    headers
        .iter()
        .map(|h| {
            check_extra_header(h.as_ref())?;
            Ok(h.as_ref().trim().to_owned())
        })
        .collect()
}

/// A `Name: value` header the library does not manage itself.
pub(super) fn check_extra_header(h: &str) -> Result<(), Error> {
    check_no_ctl("extra header", h)?;
    let (name, value) = h.split_once(':').ok_or_else(|| {
        Error::invalid(format!(
            "extra header {:?} is not \"Name: value\"",
            truncate(h)
        ))
    })?;
    let name = name.trim();
    check_token("extra header name", name)?;
    if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Error::invalid(format!(
            "extra header {name} is managed by the library"
        )));
    }
    if value.trim().is_empty() {
        return Err(Error::invalid(format!(
            "extra header {name} has an empty value"
        )));
    }
    Ok(())
}

/// A `name` or `name=value` Contact parameter other than `expires`.
pub(super) fn check_contact_param(p: &str) -> Result<(), Error> {
    check_no_ctl("contact parameter", p)?;
    let (name, value) = split_once_opt(p, '=');
    check_token("contact parameter name", name)?;
    if name.eq_ignore_ascii_case("expires") {
        return Err(Error::invalid(
            "the expires contact parameter is managed by the library",
        ));
    }
    if let Some(v) = value {
        // One whole quoted-string, read as the response parser reads it (so
        // `"a\"`, whose closing quote is escaped, is refused).
        let quoted = quoted_len(v) == Some(v.len());
        let plain = !v.is_empty() && v.chars().all(|c| is_token_char(c) || "[]:".contains(c));
        if !quoted && !plain {
            return Err(Error::invalid(format!(
                "contact parameter {name} has a bad value"
            )));
        }
    }
    Ok(())
}

/// Normalises an instance id to `urn:uuid:<8-4-4-4-12 hex>`.
pub(super) fn instance_urn(id: &str) -> Result<String, Error> {
    let uuid = id
        .strip_prefix("<")
        .and_then(|s| s.strip_suffix(">"))
        .unwrap_or(id);
    let uuid = match (uuid.get(..9), uuid.get(9..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case("urn:uuid:") => rest,
        _ => uuid,
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(Error::invalid(format!(
            "instance_id {:?} is not a UUID (8-4-4-4-12 hex digits)",
            truncate(id)
        )));
    }
    Ok(format!("urn:uuid:{}", uuid.to_ascii_lowercase()))
}
