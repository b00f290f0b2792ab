//! The user agent's settings ([`UserAgentConfig`]) and the transport and TLS
//! choices and secret they hold, each setter checking its value.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use zeroize::Zeroize;

use super::checks::{check_no_ctl, parse_socket_addr, parse_uri, truncate};
use crate::core::credentials::{Credential, SecretKind};
use crate::core::transaction::Timers;
use crate::core::uri::Uri;
use crate::error::Error;

/// Transport protocol used to reach the registrar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams with Timer E retransmissions.
    Udp,
    /// One shared stream connection per remote target, framed by Content-Length.
    Tcp,
    /// TCP with TLS, framed by Content-Length.
    Tls,
    /// WebSocket (RFC 7118): one SIP message per frame.
    Ws,
    /// WebSocket over TLS (RFC 7118).
    Wss,
}

impl Transport {
    /// Parses `udp`, `tcp`, `tls`, `ws` or `wss` in any case.
    pub fn parse(s: &str) -> Result<Transport, Error> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            "ws" => Ok(Transport::Ws),
            "wss" => Ok(Transport::Wss),
            _ => Err(Error::invalid(format!(
                "transport must be udp, tcp, tls, ws or wss, not {:?}",
                truncate(s)
            ))),
        }
    }

    /// The token used in a Via header.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Lower-case name, as in a `transport=` URI parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// Whether the transport delivers reliably (no Timer E, Timer K = 0).
    pub fn reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Whether the transport is encrypted (TLS underneath).
    pub fn secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Whether messages travel in WebSocket frames.
    pub fn websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// The port used when a URI names none (RFC 3261 §19.1.2; RFC 7118 uses the HTTP ports).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }
}

/// How TLS peers are checked (for `tls` and `wss`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// PEM file of trusted CAs; `None` = the system's trust store.
    pub ca_file: Option<String>,
    /// Name sent as SNI and checked against the certificate; `None` = the target host.
    pub server_name: Option<String>,
    /// Certificate and name checks (off only for labs).
    pub verify: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca_file: None,
            server_name: None,
            verify: true,
        }
    }
}

/// A password that is wiped from memory when dropped and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: &str) -> Secret {
        Secret(s.to_owned())
    }

    /// The password text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Lower-cases ASCII letters in place (no copy is left behind).
    pub fn make_ascii_lowercase(&mut self) {
        self.0.make_ascii_lowercase();
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Settings shared by every registerer of one user agent.
#[derive(Clone, Debug)]
pub struct UserAgentConfig {
    /// Address of record, e.g. `sip:alice@example.com`.
    pub aor: Uri,
    /// Digest username; defaults to the AOR user.
    pub auth_username: Option<String>,
    /// Digest password for any realm (the last resort of the credential
    /// list); absent and no credential means challenges cannot be answered.
    pub password: Option<Secret>,
    /// Credentials per realm or for any realm, passwords or HA1s (see
    /// [`crate::core::credentials`]), in the order added.
    pub credentials: Vec<Credential>,
    /// Answer a challenge that offers only a weaker digest algorithm than its
    /// realm offered before (default false: refused, RFC 8760 §3).
    pub digest_downgrade: bool,
    /// Default transport (a `transport=` parameter on the registrar or proxy URI wins).
    pub transport: Transport,
    /// The application chose `transport`. When it did not, a host-name
    /// registrar's NAPTR records choose it (RFC 3263 section 4.1).
    pub transport_chosen: bool,
    /// Where requests are sent instead of the registrar, with a `Route` header
    /// (boxed: most user agents have none).
    pub outbound_proxy: Option<Box<Uri>>,
    /// Local address to bind sockets to (port 0 = any).
    pub local_address: Option<SocketAddr>,
    /// `User-Agent` header value (the default is not copied per user agent).
    pub user_agent: Cow<'static, str>,
    /// Transaction timers.
    pub timers: Timers,
    /// Upper bound for dispose and user-agent shutdown.
    pub shutdown_timeout: Duration,
    /// TLS checks for `tls` and `wss`.
    pub tls: TlsSettings,
    /// WebSocket request path for `ws` and `wss` (default `/`).
    pub ws_path: Cow<'static, str>,
    /// Sockets of this user agent are its own, not shared with other user agents.
    pub private_socket: bool,
    /// Keep-alive interval in seconds when the registrar sends no Flow-Timer
    /// (0 = off). Without outbound this is the plain CRLF NAT keep-alive.
    pub keepalive: u32,
    /// Rewrite our Contact to the address the registrar saw (rport/received).
    pub contact_rewrite: bool,
    /// The user part of our Contact (SIP.js `contactName`); `None`: the AOR's user.
    pub contact_user: Option<String>,
    /// The methods our contact accepts, as the Allow header lists them (in
    /// REGISTERs, OPTIONS answers and 405s): `OPTIONS` unless set.
    pub allow: Cow<'static, str>,
    /// OPTIONS reaching our contact are answered by the library (200 with
    /// Allow and Supported); false hands them to the application's listener.
    pub answer_options: bool,
    /// The `Origin` of WebSocket upgrades; `None`: `http://` (ws) or
    /// `https://` (wss) and the registrar's host.
    pub ws_origin: Option<String>,
    /// The application listens for requests (it set a request callback):
    /// they go to it instead of getting 405.
    pub listener: bool,
}

/// The Allow list of a user agent that did not set one: what the library
/// itself answers.
pub const DEFAULT_ALLOW: &str = "OPTIONS";

/// Default `User-Agent` header value.
pub const DEFAULT_USER_AGENT: &str = concat!("sipreg/", env!("CARGO_PKG_VERSION"));

impl UserAgentConfig {
    /// A user agent for `aor` with default settings.
    pub fn new(aor: &str) -> Result<UserAgentConfig, Error> {
        let aor = parse_uri("aor", aor)?;
        if aor.user.is_none() {
            return Err(Error::invalid(
                "aor must have a user part (sip:user@domain)",
            ));
        }
        if !aor.headers.is_empty() {
            return Err(Error::invalid("aor must not carry URI headers"));
        }
        Ok(UserAgentConfig {
            aor,
            auth_username: None,
            password: None,
            credentials: Vec::new(),
            digest_downgrade: false,
            transport: Transport::Udp,
            transport_chosen: false,
            outbound_proxy: None,
            local_address: None,
            user_agent: Cow::Borrowed(DEFAULT_USER_AGENT),
            timers: Timers::default(),
            shutdown_timeout: Duration::from_secs(4),
            tls: TlsSettings::default(),
            ws_path: Cow::Borrowed("/"),
            private_socket: false,
            keepalive: 0,
            contact_rewrite: true,
            contact_user: None,
            allow: Cow::Borrowed(DEFAULT_ALLOW),
            answer_options: true,
            ws_origin: None,
            listener: false,
        })
    }

    /// Sets the digest password (`None` removes it).
    pub fn set_password(&mut self, pw: Option<&str>) -> Result<(), Error> {
        if let Some(p) = pw {
            check_no_ctl("password", p)?;
        }
        self.password = pw.map(Secret::new);
        Ok(())
    }

    /// Adds a credential; one with the same realm, username and kind is
    /// replaced (its secret wiped).
    pub fn add_credential(&mut self, credential: Credential) {
        match self
            .credentials
            .iter_mut()
            .find(|c| c.same_slot(&credential))
        {
            Some(slot) => *slot = credential,
            None => self.credentials.push(credential),
        }
    }

    /// Removes the credential for that realm, username and kind, if any
    /// (its secret wiped).
    pub fn remove_credential(
        &mut self,
        realm: Option<&str>,
        username: Option<&str>,
        kind: SecretKind,
    ) {
        self.credentials.retain(|c| {
            !(c.realm.as_deref() == realm && c.username.as_deref() == username && c.kind == kind)
        });
    }

    /// Whether the credentials (password, auth username, credential list,
    /// downgrade policy) differ from `other`'s.
    pub fn credentials_differ(&self, other: &UserAgentConfig) -> bool {
        self.auth_username != other.auth_username
            || self.password != other.password
            || self.credentials != other.credentials
            || self.digest_downgrade != other.digest_downgrade
    }

    /// Sets the digest username (`None` = the AOR user).
    pub fn set_auth_username(&mut self, user: Option<&str>) -> Result<(), Error> {
        if let Some(u) = user {
            check_no_ctl("auth username", u)?;
            if u.is_empty() {
                return Err(Error::invalid("auth username must not be empty"));
            }
        }
        self.auth_username = user.map(str::to_owned);
        Ok(())
    }

    /// Sets the outbound proxy URI (`None` removes it).
    pub fn set_outbound_proxy(&mut self, uri: Option<&str>) -> Result<(), Error> {
        self.outbound_proxy = match uri {
            Some(u) => Some(Box::new(parse_uri("outbound proxy", u)?)),
            None => None,
        };
        Ok(())
    }

    /// Sets the local bind address: `IP` or `IP:port`, IPv6 in brackets with a port.
    pub fn set_local_address(&mut self, addr: Option<&str>) -> Result<(), Error> {
        self.local_address = match addr {
            None => None,
            Some(a) => Some(parse_socket_addr(a)?),
        };
        Ok(())
    }

    /// Sets the `User-Agent` header value.
    pub fn set_user_agent(&mut self, ua: &str) -> Result<(), Error> {
        check_no_ctl("user agent", ua)?;
        if ua.trim().is_empty() {
            return Err(Error::invalid("user agent string must not be empty"));
        }
        self.user_agent = Cow::Owned(ua.trim().to_owned());
        Ok(())
    }

    /// Sets T1, T2 and T4 (RFC 3261 §17.1.2).
    pub fn set_timers(&mut self, t1: Duration, t2: Duration, t4: Duration) -> Result<(), Error> {
        let range = Duration::from_millis(1)..=Duration::from_secs(600);
        if !range.contains(&t1) || !range.contains(&t2) || !range.contains(&t4) {
            return Err(Error::invalid("timers must be between 1 ms and 600 s"));
        }
        if t2 < t1 {
            return Err(Error::invalid("T2 must not be smaller than T1"));
        }
        self.timers = Timers { t1, t2, t4 };
        Ok(())
    }

    /// Sets the keep-alive interval used when the registrar sends no
    /// Flow-Timer (0 = off, at most 3600 s).
    pub fn set_keepalive(&mut self, secs: u32) -> Result<(), Error> {
        if secs > 3600 {
            return Err(Error::invalid("keepalive must be at most 3600 s"));
        }
        self.keepalive = secs;
        Ok(())
    }

    /// Sets the bound on dispose / shutdown waits.
    pub fn set_shutdown_timeout(&mut self, d: Duration) -> Result<(), Error> {
        if d > Duration::from_secs(3600) {
            return Err(Error::invalid("shutdown timeout must be at most 3600 s"));
        }
        self.shutdown_timeout = d;
        Ok(())
    }

    /// Sets the TLS server name (SNI and the name the certificate must carry);
    /// `None` = the host of the registrar or proxy.
    pub fn set_tls_server_name(&mut self, name: Option<&str>) -> Result<(), Error> {
        if let Some(n) = name {
            let ok = !n.is_empty()
                && n.len() <= 253
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'));
            if !ok {
                return Err(Error::invalid(format!(
                    "TLS server name {:?} is not a DNS name or IP address",
                    truncate(n)
                )));
            }
        }
        self.tls.server_name = name.map(str::to_owned);
        Ok(())
    }

    /// Sets the WebSocket request path: it must start with `/` and hold no
    /// spaces or control characters.
    pub fn set_ws_path(&mut self, path: &str) -> Result<(), Error> {
        check_no_ctl("ws path", path)?;
        if !path.starts_with('/') || path.contains(' ') || path.len() > 1024 {
            return Err(Error::invalid(format!(
                "ws path must start with '/' and hold no spaces, not {:?}",
                truncate(path)
            )));
        }
        self.ws_path = Cow::Owned(path.to_owned());
        Ok(())
    }

    /// Sets the user part of our Contact (`None`: the AOR's user). It must be
    /// a URI user part: unreserved characters, `%XX` escapes and
    /// `&=+$,;?/`, at most 128 bytes.
    pub fn set_contact_user(&mut self, user: Option<&str>) -> Result<(), Error> {
        if let Some(u) = user {
            check_no_ctl("contact user", u)?;
            if !is_uri_user(u) {
                return Err(Error::invalid(format!(
                    "contact user {:?} is not a SIP URI user part (letters, digits, -_.!~*'()&=+$,;?/ and %XX escapes, at most 128 bytes)",
                    truncate(u)
                )));
            }
        }
        self.contact_user = user.map(str::to_owned);
        Ok(())
    }

    /// Sets the methods our contact accepts: a comma-separated list of
    /// method names (tokens), e.g. `INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE`.
    /// Written back as `A, B, C`.
    pub fn set_allow(&mut self, methods: &str) -> Result<(), Error> {
        check_no_ctl("allow", methods)?;
        let list: Vec<&str> = methods.split(',').map(str::trim).collect();
        if list.iter().any(|m| !crate::core::lexer::is_token(m)) || methods.len() > 512 {
            return Err(Error::invalid(format!(
                "allow must be a comma-separated list of method names, not {:?}",
                truncate(methods)
            )));
        }
        self.allow = Cow::Owned(list.join(", "));
        Ok(())
    }

    /// Sets the `Origin` header of WebSocket upgrades (`None`: `http://` or
    /// `https://` plus the registrar's host). An origin is
    /// `scheme://host[:port]` or `null`, without spaces.
    pub fn set_ws_origin(&mut self, origin: Option<&str>) -> Result<(), Error> {
        if let Some(o) = origin {
            check_no_ctl("ws origin", o)?;
            let shaped = o == "null"
                || o.split_once("://").is_some_and(|(scheme, host)| {
                    crate::core::lexer::is_token(scheme) && !host.is_empty()
                });
            if !shaped || o.contains(' ') || o.len() > 512 {
                return Err(Error::invalid(format!(
                    "ws origin must be scheme://host[:port] or null, not {:?}",
                    truncate(o)
                )));
            }
        }
        self.ws_origin = origin.map(str::to_owned);
        Ok(())
    }

    /// The user part our Contact carries unless the endpoint gives it
    /// another (see [`contact_user`](Self::contact_user)).
    pub fn default_contact_user(&self) -> Option<&str> {
        self.contact_user.as_deref().or(self.aor.user.as_deref())
    }

    /// The username for digest answers.
    pub fn effective_auth_username(&self) -> &str {
        self.auth_username
            .as_deref()
            .or(self.aor.user.as_deref())
            .unwrap_or("")
    }
}

/// Whether `s` is a SIP URI user part (RFC 3261 §25.1 `user`), at most 128 bytes.
fn is_uri_user(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return false;
    }
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if crate::core::lexer::hex_pair(b.get(i + 1..i + 3)).is_none() {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&c)) {
            return false;
        }
        i += 1;
    }
    true
}
