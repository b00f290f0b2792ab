//! The user agent's settings ([`UserAgentConfig`]) and the transport and TLS
//! choices and secret they hold, each setter checking its value.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroize;

use super::checks::{check_no_ctl, parse_socket_addr, parse_uri, parse_uri_ref, truncate};
use crate::core::credentials::{Credential, SecretKind};
use crate::core::transaction::Timers;
use crate::core::uri::{Scheme, Uri, UriRef};
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

// Its associated constant would put an opaque type in the C header.
/// cbindgen:ignore
impl Transport {
    /// Every transport, in the order of their names in messages and docs.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// Parses `udp`, `tcp`, `tls`, `ws` or `wss` in any case.
    pub fn parse(s: &str) -> Result<Transport, Error> {
        // Compared in place: no lower-cased copy for every user agent made.
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "transport must be udp, tcp, tls, ws or wss, not {:?}",
                    truncate(s)
                ))
            })
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
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a password.
    pub fn new(s: &str) -> Secret {
        Secret(s.into())
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

/// Settings shared by every registerer of one user agent. The ones most
/// user agents leave at their defaults live in [`UserAgentExtras`], read
/// through [`extras`](Self::extras) and boxed only once one is set (a fleet
/// keeps one of these per account).
#[derive(Clone, Debug)]
pub struct UserAgentConfig {
    /// Address of record, e.g. `sip:alice@example.com`, as text (checked
    /// when made; its parts are read from it, see [`aor`](Self::aor)):
    /// shared by every registerer's From (and To) URI, and no parsed copy
    /// kept beside it (a fleet keeps one of these per account).
    aor_text: Arc<str>,
    /// Where the AOR's user part sits in `aor_text`.
    aor_user: (u32, u32),
    /// The AOR's scheme.
    aor_scheme: Scheme,
    /// Digest password for any realm (the last resort of the credential
    /// list); absent and no credential means challenges cannot be answered.
    pub password: Option<Secret>,
    /// The rarely set settings; `None` while all are at their defaults.
    extras: Option<Box<UserAgentExtras>>,
    /// Keep-alive interval in seconds when the registrar sends no Flow-Timer
    /// (0 = off). Without outbound this is the plain CRLF NAT keep-alive.
    pub keepalive: u32,
    /// Answer a challenge that offers only a weaker digest algorithm than its
    /// realm offered before (default false: refused, RFC 8760 §3).
    pub digest_downgrade: bool,
    /// Default transport (a `transport=` parameter on the registrar or proxy URI wins).
    pub transport: Transport,
    /// The application chose `transport`. When it did not, a host-name
    /// registrar's NAPTR records choose it (RFC 3263 section 4.1).
    pub transport_chosen: bool,
    /// Sockets of this user agent are its own, not shared with other user agents.
    pub private_socket: bool,
    /// Rewrite our Contact to the address the registrar saw (rport/received).
    pub contact_rewrite: bool,
    /// OPTIONS reaching our contact are answered by the library (200 with
    /// Allow and Supported); false hands them to the application's listener.
    pub answer_options: bool,
    /// The application listens for requests (it set a request callback):
    /// they go to it instead of getting 405.
    pub listener: bool,
}

/// The settings of a [`UserAgentConfig`] that most user agents leave at
/// their defaults (changed through the config's setters).
#[derive(Clone, Debug)]
pub struct UserAgentExtras {
    /// Digest username; defaults to the AOR user.
    pub auth_username: Option<String>,
    /// Credentials per realm or for any realm, passwords or HA1s (see
    /// [`crate::core::credentials`]), in the order added.
    pub credentials: Vec<Credential>,
    /// Where requests are sent instead of the registrar, with a `Route` header.
    pub outbound_proxy: Option<Uri>,
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
    /// The user part of our Contact (SIP.js `contactName`); `None`: the AOR's user.
    pub contact_user: Option<String>,
    /// The methods our contact accepts, as the Allow header lists them (in
    /// REGISTERs, OPTIONS answers and 405s): `OPTIONS` unless set.
    pub allow: Cow<'static, str>,
    /// The `Origin` of WebSocket upgrades; `None`: `http://` (ws) or
    /// `https://` (wss) and the registrar's host.
    pub ws_origin: Option<String>,
}

/// What a user agent that set none of the rare settings has.
static DEFAULT_EXTRAS: UserAgentExtras = UserAgentExtras {
    auth_username: None,
    credentials: Vec::new(),
    outbound_proxy: None,
    local_address: None,
    user_agent: Cow::Borrowed(DEFAULT_USER_AGENT),
    timers: Timers::DEFAULT,
    shutdown_timeout: Duration::from_secs(4),
    tls: TlsSettings {
        ca_file: None,
        server_name: None,
        verify: true,
    },
    ws_path: Cow::Borrowed("/"),
    contact_user: None,
    allow: Cow::Borrowed(DEFAULT_ALLOW),
    ws_origin: None,
};

/// The Allow list of a user agent that did not set one: what the library
/// itself answers.
pub const DEFAULT_ALLOW: &str = "OPTIONS";

/// Default `User-Agent` header value.
pub const DEFAULT_USER_AGENT: &str = concat!("sipreg/", env!("CARGO_PKG_VERSION"));

impl UserAgentConfig {
    /// A user agent for `aor` with default settings.
    pub fn new(aor: &str) -> Result<UserAgentConfig, Error> {
        let given_len = aor.len();
        // Read in place: the AOR's parts are not kept, only its text.
        let aor = parse_uri_ref("aor", aor)?;
        if aor.user.is_none() {
            return Err(Error::invalid(
                "aor must have a user part (sip:user@domain)",
            ));
        }
        // (A bare `?` is no header: as the parsed URI, whose text drops it.)
        if aor.headers.is_some() && !aor.to_uri().headers.is_empty() {
            return Err(Error::invalid("aor must not carry URI headers"));
        }
        // (Its canonical form is about as long as the text given.)
        let mut text = String::with_capacity(given_len + 8);
        aor.push_to(&mut text);
        let user = aor.user.unwrap_or_default();
        // The text starts with the scheme, then the user as written.
        let start = text.find(':').map_or(0, |i| i + 1);
        let end = start + user.len();
        if text.get(start..end) != Some(user) {
            return Err(Error::invalid("aor user part could not be located"));
        }
        let span = |n: usize| u32::try_from(n).map_err(|_| Error::invalid("aor too long"));
        Ok(UserAgentConfig {
            aor_user: (span(start)?, span(end)?),
            aor_scheme: aor.scheme,
            aor_text: text.into(),
            password: None,
            extras: None,
            keepalive: 0,
            digest_downgrade: false,
            transport: Transport::Udp,
            transport_chosen: false,
            private_socket: false,
            contact_rewrite: true,
            answer_options: true,
            listener: false,
        })
    }

    /// The AOR as text (one copy, shared by the registerers).
    pub fn aor_text(&self) -> &Arc<str> {
        &self.aor_text
    }

    /// The AOR, read from its text (checked when the settings were made).
    pub fn aor(&self) -> Result<UriRef<'_>, Error> {
        UriRef::parse(&self.aor_text).map_err(|e| Error::invalid(format!("aor: {e}")))
    }

    /// The AOR's user part as written.
    pub fn aor_user(&self) -> &str {
        let (start, end) = self.aor_user;
        self.aor_text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// The AOR's scheme.
    pub fn aor_scheme(&self) -> Scheme {
        self.aor_scheme
    }

    /// The rarely set settings (their defaults when none is set).
    pub fn extras(&self) -> &UserAgentExtras {
        self.extras.as_deref().unwrap_or(&DEFAULT_EXTRAS)
    }

    /// The rarely set settings, boxed on first change.
    fn extras_mut(&mut self) -> &mut UserAgentExtras {
        self.extras
            .get_or_insert_with(|| Box::new(DEFAULT_EXTRAS.clone()))
    }

    /// Sets whether TLS peers' certificates and names are checked.
    pub fn set_tls_verify(&mut self, verify: bool) {
        if verify != self.extras().tls.verify {
            self.extras_mut().tls.verify = verify;
        }
    }

    /// Sets the PEM file of trusted CAs (`None`: the system's trust store).
    pub fn set_tls_ca_file(&mut self, path: Option<&str>) {
        if path.is_some() || self.extras.is_some() {
            self.extras_mut().tls.ca_file = path.map(str::to_owned);
        }
    }

    /// Replaces the digest username as already checked (`None` = the AOR user).
    pub(crate) fn replace_auth_username(&mut self, user: Option<String>) {
        if user.is_some() || self.extras.is_some() {
            self.extras_mut().auth_username = user;
        }
    }

    /// Takes `from`'s credentials (password, auth username, credential
    /// list, downgrade policy).
    pub fn copy_credentials_from(&mut self, from: &UserAgentConfig) {
        self.password.clone_from(&from.password);
        self.digest_downgrade = from.digest_downgrade;
        let theirs = from.extras();
        if self.extras.is_some() || theirs.auth_username.is_some() || !theirs.credentials.is_empty()
        {
            let ours = self.extras_mut();
            ours.auth_username.clone_from(&theirs.auth_username);
            ours.credentials.clone_from(&theirs.credentials);
        }
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
        let list = &mut self.extras_mut().credentials;
        match list.iter_mut().find(|c| c.same_slot(&credential)) {
            Some(slot) => *slot = credential,
            None => list.push(credential),
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
        if self.extras.is_none() {
            return;
        }
        self.extras_mut().credentials.retain(|c| {
            !(c.realm.as_deref() == realm && c.username.as_deref() == username && c.kind == kind)
        });
    }

    /// Whether the credentials (password, auth username, credential list,
    /// downgrade policy) differ from `other`'s.
    pub fn credentials_differ(&self, other: &UserAgentConfig) -> bool {
        let (ours, theirs) = (self.extras(), other.extras());
        ours.auth_username != theirs.auth_username
            || self.password != other.password
            || ours.credentials != theirs.credentials
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
        if user.is_some() || self.extras.is_some() {
            self.extras_mut().auth_username = user.map(str::to_owned);
        }
        Ok(())
    }

    /// Sets the outbound proxy URI (`None` removes it).
    pub fn set_outbound_proxy(&mut self, uri: Option<&str>) -> Result<(), Error> {
        let proxy = match uri {
            Some(u) => Some(parse_uri("outbound proxy", u)?),
            None => None,
        };
        if proxy.is_some() || self.extras.is_some() {
            self.extras_mut().outbound_proxy = proxy;
        }
        Ok(())
    }

    /// Sets the local bind address: `IP` or `IP:port`, IPv6 in brackets with a port.
    pub fn set_local_address(&mut self, addr: Option<&str>) -> Result<(), Error> {
        let local = match addr {
            None => None,
            Some(a) => Some(parse_socket_addr(a)?),
        };
        if local.is_some() || self.extras.is_some() {
            self.extras_mut().local_address = local;
        }
        Ok(())
    }

    /// Sets the `User-Agent` header value.
    pub fn set_user_agent(&mut self, ua: &str) -> Result<(), Error> {
        check_no_ctl("user agent", ua)?;
        if ua.trim().is_empty() {
            return Err(Error::invalid("user agent string must not be empty"));
        }
        self.extras_mut().user_agent = Cow::Owned(ua.trim().to_owned());
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
        self.extras_mut().timers = Timers { t1, t2, t4 };
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
        self.extras_mut().shutdown_timeout = d;
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
        if name.is_some() || self.extras.is_some() {
            self.extras_mut().tls.server_name = name.map(str::to_owned);
        }
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
        self.extras_mut().ws_path = Cow::Owned(path.to_owned());
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
        if user.is_some() || self.extras.is_some() {
            self.extras_mut().contact_user = user.map(str::to_owned);
        }
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
        self.extras_mut().allow = Cow::Owned(list.join(", "));
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
        if origin.is_some() || self.extras.is_some() {
            self.extras_mut().ws_origin = origin.map(str::to_owned);
        }
        Ok(())
    }

    /// The user part our Contact carries unless the endpoint gives it
    /// another (see [`contact_user`](Self::contact_user)).
    pub fn default_contact_user(&self) -> Option<&str> {
        self.extras()
            .contact_user
            .as_deref()
            .or(Some(self.aor_user()))
    }

    /// The username for digest answers.
    pub fn effective_auth_username(&self) -> &str {
        self.extras()
            .auth_username
            .as_deref()
            .unwrap_or(self.aor_user())
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
