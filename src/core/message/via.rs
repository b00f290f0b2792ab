//! [`Via`]: one Via header value (RFC 3261 §20.42).

use std::str::FromStr;

use super::{err, find_param, parse_params, ParseError};
use crate::core::lexer::{self, is_ws, split_before, take_token};
use crate::core::uri::{self, Host};

/// One Via header value, e.g. `SIP/2.0/UDP host:5060;branch=z9hG4bK...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport in upper case (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// Host name or address; IP addresses are in their standard text form,
    /// IPv6 without brackets (so it parses as `IpAddr`).
    pub host: String,
    /// Port, if one was given.
    pub port: Option<u16>,
    /// Parameters in order (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Looks up a parameter by name (case-insensitive): `None` if absent,
    /// `Some(None)` for a flag such as `rport`, `Some(Some(value))` otherwise.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The address the server saw this request come from (RFC 3581):
    /// `received` (else the sent-by host) with `rport` (else the sent-by port,
    /// else 5060). `None` when the server set neither or `received` is not an IP.
    pub fn public_address(&self) -> Option<std::net::SocketAddr> {
        let received = self.param("received").flatten();
        let rport = self
            .param("rport")
            .flatten()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        if received.is_none() && rport.is_none() {
            return None;
        }
        let ip: std::net::IpAddr = received
            .unwrap_or(&self.host)
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .ok()?;
        let port = rport.or(self.port).unwrap_or(5060);
        Some(std::net::SocketAddr::new(ip, port))
    }
}

impl FromStr for Via {
    type Err = ParseError;

    /// Parses a single Via value (not a comma-separated list).
    fn from_str(s: &str) -> Result<Via, ParseError> {
        let s = s.trim_matches(is_ws);
        let (transport, rest) = parse_sent_protocol(s)?;
        let sent_by_start = rest.trim_start_matches(is_ws);
        if sent_by_start.len() == rest.len() {
            return Err(err("Via: missing space after protocol"));
        }
        let (sent_by, params) = split_before(sent_by_start, ';');
        let (host, port) = uri::parse_hostport(sent_by.trim_end_matches(is_ws))
            .map_err(|_| err("Via: bad sent-by"))?;
        Ok(Via {
            transport,
            host: host_without_brackets(&host),
            port,
            params: parse_params(params)?,
        })
    }
}

/// A Via value read in place, for the per-request path of a user agent
/// server: the sent-by host and port, and the raw `;` parameters (checked
/// once, read without a copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViaRef<'a> {
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// The parameters as written, from the first `;`.
    params: &'a str,
    /// `branch` and `rport`, found while the parameters were checked.
    branch: Option<Option<&'a str>>,
    rport: Option<Option<&'a str>>,
}

impl<'a> ViaRef<'a> {
    /// Reads one Via value (not a list); `None` if it does not parse as
    /// [`Via`] would.
    pub fn read(s: &'a str) -> Option<ViaRef<'a>> {
        let s = s.trim_matches(is_ws);
        let (_, rest) = sent_protocol(s).ok()?;
        let sent_by_start = rest.trim_start_matches(is_ws);
        if sent_by_start.len() == rest.len() {
            return None;
        }
        let (sent_by, params) = split_before(sent_by_start, ';');
        let (host, port) = uri::parse_hostport(sent_by.trim_end_matches(is_ws)).ok()?;
        let (mut branch, mut rport) = (None, None);
        lexer::for_each_param(params, |name, value| {
            if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                branch = Some(value);
            } else if rport.is_none() && name.eq_ignore_ascii_case("rport") {
                rport = Some(value);
            }
        })
        .ok()?;
        Some(ViaRef {
            host,
            port,
            params,
            branch,
            rport,
        })
    }

    /// A parameter as written (quotes kept): `None` if absent, `Some(None)`
    /// for a flag such as `rport`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        if name.eq_ignore_ascii_case("branch") {
            return self.branch;
        }
        if name.eq_ignore_ascii_case("rport") {
            return self.rport;
        }
        lexer::find_param(self.params, name).ok()?
    }

    /// The `branch` parameter (a quoted one, never ours, as written).
    pub fn branch(&self) -> Option<&'a str> {
        self.branch.flatten()
    }
}

/// Host text as it appears in Via, but with IPv6 brackets dropped.
fn host_without_brackets(host: &Host) -> String {
    match host {
        Host::Domain(name) => name.clone(),
        Host::V4(addr) => addr.to_string(),
        Host::V6(addr) => addr.to_string(),
    }
}

/// Reads `SIP / 2.0 / transport` and returns the upper-cased transport and
/// the remaining text.
fn parse_sent_protocol(s: &str) -> Result<(String, &str), ParseError> {
    let (transport, rest) = sent_protocol(s)?;
    Ok((transport.to_ascii_uppercase(), rest))
}

/// Reads `SIP / 2.0 / transport`: the transport as written and the rest.
pub(super) fn sent_protocol(s: &str) -> Result<(&str, &str), ParseError> {
    // The usual form, no blanks around the slashes, read at once (what the
    // general reading below gives for it).
    if let (Some(protocol), Some(rest)) = (s.get(..8), s.get(8..)) {
        if protocol.eq_ignore_ascii_case("SIP/2.0/") {
            let (transport, rest) = take_token(rest);
            if !transport.is_empty() {
                return Ok((transport, rest));
            }
        }
    }
    sent_protocol_by_parts(s)
}

/// [`sent_protocol`] read part by part: name, version and transport, each
/// slash with blanks allowed around it.
fn sent_protocol_by_parts(s: &str) -> Result<(&str, &str), ParseError> {
    let (name, rest) = take_token(s);
    let (version, rest) = take_token(expect_slash(rest)?);
    let (transport, rest) = take_token(expect_slash(rest)?);
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || transport.is_empty() {
        return Err(err("Via: bad sent-protocol"));
    }
    Ok((transport, rest))
}

/// Consumes `SWS "/" SWS`.
fn expect_slash(s: &str) -> Result<&str, ParseError> {
    s.trim_start_matches(is_ws)
        .strip_prefix('/')
        .map(|rest| rest.trim_start_matches(is_ws))
        .ok_or_else(|| err("Via: expected '/'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usual form read at once gives what reading it part by part
    /// gives, for every string of up to four pieces.
    #[test]
    fn the_sent_protocol_read_at_once_agrees_with_reading_it_by_parts() {
        let pieces = [
            "SIP",
            "sip",
            "SIP/2.0/",
            "sip/2.0/",
            "/",
            "2.0",
            "2.00",
            "UDP",
            "tcp",
            " ",
            "\t",
            ";branch=z9",
            "h:5060",
            "\u{e9}",
            "SIPX",
            "",
        ];
        let mut fast = 0;
        for s in &super::super::joinings(&pieces, 4) {
            let by_parts = sent_protocol_by_parts(s).map_err(|e| e.to_string());
            assert_eq!(
                sent_protocol(s).map_err(|e| e.to_string()),
                by_parts,
                "{s:?}"
            );
            let usual = s
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("SIP/2.0/"));
            fast += usize::from(by_parts.is_ok() && usual);
        }
        assert!(fast > 1000, "the usual form is among them: {fast}");
    }
}
