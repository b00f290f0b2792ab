//! User-agent settings and registerer options (SIP.js `RegistererOptions`), with
//! validation: bad values are rejected here, never turned into a malformed request.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroize;

use super::lexer::{is_token, is_token_char, is_word_char, quoted_len, split_once_opt};
use super::transaction::Timers;
use super::uri::{Host, Scheme, Uri};
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
    /// Digest password; absent means challenges cannot be answered.
    pub password: Option<Secret>,
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
}

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

    /// The username for digest answers.
    pub fn effective_auth_username(&self) -> &str {
        self.auth_username
            .as_deref()
            .or(self.aor.user.as_deref())
            .unwrap_or("")
    }
}

/// Automatic recovery after transient failures (RFC 5626 §4.5 backoff).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Off gives pure SIP.js behaviour (no automatic retry).
    pub enabled: bool,
    /// Backoff base time.
    pub base: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Cap applied to a server's Retry-After.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            enabled: true,
            base: Duration::from_secs(30),
            max: Duration::from_secs(1800),
            retry_after_max: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Checks each value on its own (setters call this at once);
    /// [`validate`](Self::validate) adds the checks of the values together.
    pub fn validate_base(&self) -> Result<(), Error> {
        let range = Duration::from_millis(1)..=Duration::from_secs(86_400);
        if !range.contains(&self.base) {
            return Err(Error::invalid(
                "retry_base must be between 0.001 and 86400 s",
            ));
        }
        if !range.contains(&self.max) {
            return Err(Error::invalid(
                "retry_max must be between 0.001 and 86400 s",
            ));
        }
        if self.retry_after_max > Duration::from_secs(86_400) {
            return Err(Error::invalid("retry_after_max must be <= 86400 s"));
        }
        Ok(())
    }

    /// Checks the values are usable together.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_base()?;
        if self.max < self.base {
            return Err(Error::invalid("retry_max must be >= retry_base"));
        }
        Ok(())
    }
}

/// SIP.js `RegistererOptions` (plus the recovery policy).
#[derive(Clone, Debug, PartialEq)]
pub struct RegistererOptions {
    /// Requested expiry in seconds (default 600; 0 is invalid).
    pub expires: u32,
    /// Percent of the granted expiry after which to refresh (50..=99, default 99);
    /// see [`crate::core::refresh`] for the lead before expiry and the spread.
    pub refresh_frequency: u32,
    /// Request-URI; default: the AOR's domain.
    pub registrar: Option<String>,
    /// `Name: value` headers added to every REGISTER.
    pub extra_headers: Vec<String>,
    /// Parameters appended to our Contact (`name` or `name=value`).
    pub extra_contact_params: Vec<String>,
    /// `+sip.instance` (a UUID, with or without `urn:uuid:`).
    pub instance_id: Option<String>,
    /// RFC 5626 `reg-id` (needs `instance_id`).
    pub reg_id: Option<u32>,
    /// Fixed Call-ID (default random).
    pub call_id: Option<String>,
    /// From display name.
    pub from_display_name: Option<String>,
    /// To display name.
    pub to_display_name: Option<String>,
    /// To URI (default: the AOR).
    pub to_uri: Option<String>,
    /// From tag (default random).
    pub from_tag: Option<String>,
    /// Initial CSeq; like SIP.js the first REGISTER carries this plus one (default 1).
    pub cseq: u32,
    /// Automatic recovery policy.
    pub retry: RetryPolicy,
    /// Send `Supported: path, gruu` (RFC 3327, RFC 5627).
    pub path_gruu: bool,
}

impl Default for RegistererOptions {
    fn default() -> Self {
        RegistererOptions {
            expires: 600,
            refresh_frequency: 99,
            registrar: None,
            extra_headers: Vec::new(),
            extra_contact_params: Vec::new(),
            instance_id: None,
            reg_id: None,
            call_id: None,
            from_display_name: None,
            to_display_name: None,
            to_uri: None,
            from_tag: None,
            cseq: 1,
            retry: RetryPolicy::default(),
            path_gruu: false,
        }
    }
}

/// Everything a registerer needs, checked and resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// User-agent settings.
    pub ua: Arc<UserAgentConfig>,
    /// Requested expiry.
    pub expires: u32,
    /// Refresh point in percent.
    pub refresh_frequency: u32,
    /// The Request-URI as text (written into every REGISTER and digest
    /// answer; the parsed URI is not kept).
    pub registrar_text: String,
    /// The To URI as text (`to_uri`, else the AOR: then one string shared
    /// with `aor_text`).
    pub to_text: Arc<str>,
    /// The AOR as text (the From URI).
    pub aor_text: Arc<str>,
    /// Extra headers, Contact parameters, instance URN and display names:
    /// set by few users, so boxed and `None` when none is set (read them
    /// through [`Settings::extras`]).
    pub extras: Option<Box<Extras>>,
    /// reg-id.
    pub reg_id: Option<u32>,
    /// Initial CSeq.
    pub cseq: u32,
    /// Recovery policy.
    pub retry: RetryPolicy,
    /// Send `Supported: path, gruu`.
    pub path_gruu: bool,
    /// Transport actually used.
    pub transport: Transport,
    /// Neither the URI nor the application chose the transport: RFC 3263
    /// NAPTR order decides (and the transport follows the target in use).
    pub transport_open: bool,
    /// Host and port requests are sent to (proxy or registrar).
    pub target_host: Host,
    /// Port of the target.
    pub target_port: u16,
    /// The proxy or registrar URI gave that port (RFC 3263: no SRV lookup).
    pub target_port_given: bool,
}

/// The rarely set parts of [`Settings`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Extra headers, validated.
    pub extra_headers: Vec<String>,
    /// Extra Contact parameters, validated.
    pub extra_contact_params: Vec<String>,
    /// `urn:uuid:…` instance URN.
    pub instance_urn: Option<String>,
    /// From display name.
    pub from_display_name: Option<String>,
    /// To display name.
    pub to_display_name: Option<String>,
}

impl Extras {
    /// `None` when nothing is set (the common case costs no allocation).
    fn boxed(self) -> Option<Box<Extras>> {
        (self != Extras::default()).then(|| Box::new(self))
    }
}

static NO_EXTRAS: Extras = Extras {
    extra_headers: Vec::new(),
    extra_contact_params: Vec::new(),
    instance_urn: None,
    from_display_name: None,
    to_display_name: None,
};

impl Settings {
    /// Extra headers, Contact parameters, instance URN and display names
    /// (empty when none is set).
    pub fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }
}

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

/// Setters that check their own value at once (what the C API's option
/// setters call); [`RegistererOptions::validate`] checks them again with the
/// combinations.
impl RegistererOptions {
    /// Sets `expires` (at least 1 s).
    pub fn set_expires(&mut self, seconds: u32) -> Result<(), Error> {
        check_expires(seconds)?;
        self.expires = seconds;
        Ok(())
    }

    /// Sets `refresh_frequency` (50..=99 percent).
    pub fn set_refresh_frequency(&mut self, percent: u32) -> Result<(), Error> {
        check_refresh_frequency(percent)?;
        self.refresh_frequency = percent;
        Ok(())
    }

    /// Sets the initial CSeq (below 2^31).
    pub fn set_cseq(&mut self, cseq: u32) -> Result<(), Error> {
        check_cseq(cseq)?;
        self.cseq = cseq;
        Ok(())
    }

    /// Adds a `Name: value` header to every REGISTER.
    pub fn add_extra_header(&mut self, header: &str) -> Result<(), Error> {
        check_extra_header(header)?;
        self.extra_headers.push(header.to_owned());
        Ok(())
    }

    /// Adds a `name` or `name=value` parameter to our Contact.
    pub fn add_extra_contact_param(&mut self, param: &str) -> Result<(), Error> {
        check_contact_param(param)?;
        self.extra_contact_params.push(param.to_owned());
        Ok(())
    }

    /// Sets the backoff base time (0.001 to 86400 s).
    pub fn set_retry_base(&mut self, base: Duration) -> Result<(), Error> {
        self.set_retry(RetryPolicy { base, ..self.retry })
    }

    /// Sets the backoff cap (0.001 to 86400 s).
    pub fn set_retry_max(&mut self, max: Duration) -> Result<(), Error> {
        self.set_retry(RetryPolicy { max, ..self.retry })
    }

    /// Sets the cap on a server's Retry-After (at most 86400 s).
    pub fn set_retry_after_max(&mut self, retry_after_max: Duration) -> Result<(), Error> {
        self.set_retry(RetryPolicy {
            retry_after_max,
            ..self.retry
        })
    }

    /// Stores `retry` if each of its values is in range.
    fn set_retry(&mut self, retry: RetryPolicy) -> Result<(), Error> {
        retry.validate_base()?;
        self.retry = retry;
        Ok(())
    }
}

/// `expires` must be at least 1 (0 would remove the binding).
fn check_expires(seconds: u32) -> Result<(), Error> {
    if seconds == 0 {
        return Err(Error::invalid(
            "expires must be at least 1 (use unregister to remove a binding)",
        ));
    }
    Ok(())
}

/// `refresh_frequency` is a percentage of the grant, 50..=99.
fn check_refresh_frequency(percent: u32) -> Result<(), Error> {
    if !(50..=99).contains(&percent) {
        return Err(Error::invalid(format!(
            "refresh_frequency must be between 50 and 99, not {percent}"
        )));
    }
    Ok(())
}

/// The CSeq must stay below 2^31 (RFC 3261 §8.1.1.5).
fn check_cseq(cseq: u32) -> Result<(), Error> {
    if cseq >= 1 << 31 {
        return Err(Error::invalid("cseq must be below 2^31"));
    }
    Ok(())
}

impl RegistererOptions {
    /// Checks every option and resolves defaults against the user agent.
    pub fn validate(&self, ua: &UserAgentConfig) -> Result<Settings, Error> {
        self.validate_shared(&Arc::new(ua.clone()))
    }

    /// [`validate`](Self::validate) for settings that share `ua` (one copy of the
    /// user agent's settings for the handle, the worker and every registerer).
    pub fn validate_shared(&self, ua: &Arc<UserAgentConfig>) -> Result<Settings, Error> {
        check_expires(self.expires)?;
        check_refresh_frequency(self.refresh_frequency)?;
        let registrar = match &self.registrar {
            Some(r) => parse_uri("registrar", r)?,
            None => Uri {
                scheme: ua.aor.scheme,
                user: None,
                password: None,
                host: ua.aor.host.clone(),
                port: ua.aor.port,
                params: Vec::new(),
                headers: Vec::new(),
            },
        };
        if registrar.user.is_some() {
            return Err(Error::invalid(
                "registrar URI must not contain a user part (RFC 3261 10.2)",
            ));
        }
        if !registrar.headers.is_empty() {
            return Err(Error::invalid("registrar URI must not carry URI headers"));
        }
        let aor_text: Arc<str> = ua.aor.to_string().into();
        // Only the text of the To URI is kept (it is written, never inspected).
        let to_text = match &self.to_uri {
            Some(t) => parse_uri("to_uri", t)?.to_string().into(),
            None => aor_text.clone(),
        };
        for h in &self.extra_headers {
            check_extra_header(h)?;
        }
        for p in &self.extra_contact_params {
            check_contact_param(p)?;
        }
        let instance_urn = self.instance_id.as_deref().map(instance_urn).transpose()?;
        if self.reg_id.is_some() && instance_urn.is_none() {
            return Err(Error::invalid("reg_id requires instance_id (RFC 5626)"));
        }
        if self.reg_id == Some(0) {
            return Err(Error::invalid("reg_id must be at least 1"));
        }
        if let Some(c) = &self.call_id {
            check_word("call_id", c)?;
        }
        if let Some(t) = &self.from_tag {
            check_token("from_tag", t)?;
        }
        for (what, v) in [
            ("from display name", &self.from_display_name),
            ("to display name", &self.to_display_name),
        ] {
            if let Some(v) = v {
                check_no_ctl(what, v)?;
            }
        }
        check_cseq(self.cseq)?;
        self.retry.validate()?;

        let route = ua.outbound_proxy.as_deref().unwrap_or(&registrar);
        let transport = match route.transport() {
            Some(t) => Transport::parse(t)?,
            // sips: needs TLS on the hop (RFC 3261 §26.2.2); wss is TLS too.
            None if route.scheme == Scheme::Sips && ua.transport != Transport::Wss => {
                Transport::Tls
            }
            None => ua.transport,
        };
        if route.scheme == Scheme::Sips && !transport.secure() {
            return Err(Error::invalid(format!(
                "a sips: URI needs transport tls or wss, not {}",
                transport.as_str()
            )));
        }
        let default_port = transport.default_port();
        // A transport set without `transport_chosen` (a Rust caller filling the
        // struct) still counts as chosen unless it is the default.
        let transport_open = route.transport().is_none()
            && route.scheme != Scheme::Sips
            && !ua.transport_chosen
            && ua.transport == Transport::Udp;
        Ok(Settings {
            ua: ua.clone(),
            expires: self.expires,
            refresh_frequency: self.refresh_frequency,
            target_host: route.host.clone(),
            target_port: route.port.unwrap_or(default_port),
            target_port_given: route.port.is_some(),
            registrar_text: registrar.to_string(),
            to_text,
            aor_text,
            extras: Extras {
                extra_headers: self
                    .extra_headers
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .collect(),
                extra_contact_params: self.extra_contact_params.clone(),
                instance_urn,
                from_display_name: self.from_display_name.clone(),
                to_display_name: self.to_display_name.clone(),
            }
            .boxed(),
            reg_id: self.reg_id,
            cseq: self.cseq,
            retry: self.retry,
            path_gruu: self.path_gruu,
            transport,
            transport_open,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Parses a URI option. A password in the userinfo is refused (it would go out
/// in clear text in To/From) and never echoed in the error text.
fn parse_uri(what: &str, s: &str) -> Result<Uri, Error> {
    check_no_ctl(what, s)?;
    let uri = Uri::parse(s).map_err(|e| {
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
fn redact_password(s: &str) -> String {
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

fn parse_socket_addr(s: &str) -> Result<SocketAddr, Error> {
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
fn check_token(what: &str, s: &str) -> Result<(), Error> {
    if !is_token(s) {
        return Err(Error::invalid(format!(
            "{what} must be a non-empty SIP token"
        )));
    }
    Ok(())
}

/// A non-empty RFC 3261 `callid` (`word [ "@" word ]`; the `@` is allowed
/// anywhere, as before).
fn check_word(what: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() || !s.chars().all(|c| is_word_char(c) || c == '@') {
        return Err(Error::invalid(format!(
            "{what} must be a non-empty SIP word (RFC 3261 callid)"
        )));
    }
    Ok(())
}

/// A `Name: value` header the library does not manage itself.
fn check_extra_header(h: &str) -> Result<(), Error> {
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
fn check_contact_param(p: &str) -> Result<(), Error> {
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
fn instance_urn(id: &str) -> Result<String, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ua() -> UserAgentConfig {
        UserAgentConfig::new("sip:alice@example.com").unwrap()
    }

    fn invalid(o: RegistererOptions) -> String {
        match o.validate(&ua()) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_sipjs() {
        let s = RegistererOptions::default().validate(&ua()).unwrap();
        assert_eq!(s.expires, 600);
        assert_eq!(s.refresh_frequency, 99);
        assert_eq!(s.registrar_text, "sip:example.com");
        assert_eq!(&*s.to_text, "sip:alice@example.com");
        assert_eq!(s.transport, Transport::Udp);
        assert_eq!(s.target_port, 5060);
        assert!(s.retry.enabled);
    }

    #[test]
    fn expires_zero_and_frequency_out_of_range_are_errors() {
        assert!(invalid(RegistererOptions {
            expires: 0,
            ..Default::default()
        })
        .contains("expires"));
        for f in [0, 49, 100, 1000] {
            let m = invalid(RegistererOptions {
                refresh_frequency: f,
                ..Default::default()
            });
            assert!(m.contains("refresh_frequency"), "{m}");
        }
        for f in [50, 75, 99] {
            RegistererOptions {
                refresh_frequency: f,
                ..Default::default()
            }
            .validate(&ua())
            .unwrap();
        }
    }

    #[test]
    fn bad_uris_and_header_injection_are_errors() {
        invalid(RegistererOptions {
            registrar: Some("http://x".into()),
            ..Default::default()
        });
        invalid(RegistererOptions {
            registrar: Some("sip:bob@x".into()),
            ..Default::default()
        });
        invalid(RegistererOptions {
            registrar: Some("sip:x\r\nVia: evil".into()),
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_headers: vec!["X-A: b\r\nVia: c".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_headers: vec!["NoColon".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_headers: vec!["Call-ID: x".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_headers: vec!["Bad Name: x".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_contact_params: vec!["a;b".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            extra_contact_params: vec!["expires=5".into()],
            ..Default::default()
        });
        invalid(RegistererOptions {
            from_display_name: Some("A\nB".into()),
            ..Default::default()
        });
        invalid(RegistererOptions {
            call_id: Some("has space".into()),
            ..Default::default()
        });
        invalid(RegistererOptions {
            from_tag: Some("a;b".into()),
            ..Default::default()
        });
        let ok = RegistererOptions {
            extra_headers: vec!["X-Custom: 1".into()],
            extra_contact_params: vec!["ob".into(), "x-y=z".into(), "q=\"0.5\"".into()],
            ..Default::default()
        };
        ok.validate(&ua()).unwrap();
    }

    #[test]
    fn contact_param_values_are_whole_quoted_strings_or_plain() {
        let mut o = RegistererOptions::default();
        for good in [
            "a",
            "a=b",
            "a=\"x y\"",
            "a=\"x\\\"y\"",
            "a=\"\"",
            "a=[::1]:5",
        ] {
            o.add_extra_contact_param(good)
                .unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        // `"x\"` ends in an escaped quote: on the wire it would never close.
        for bad in [
            "a=\"x\\\"",
            "a=\"\\\"",
            "a=\"x\"y",
            "a=\"x",
            "a=",
            "=b",
            "a=<x>",
        ] {
            assert!(o.add_extra_contact_param(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(o.extra_contact_params.len(), 6);
        o.validate(&ua()).unwrap();
    }

    #[test]
    fn setters_check_their_value_as_validate_does() {
        let mut o = RegistererOptions::default();
        let msg = |r: Result<(), Error>| r.unwrap_err().to_string();
        assert!(msg(o.set_expires(0)).contains("expires must be at least 1"));
        assert!(msg(o.set_refresh_frequency(49)).contains("between 50 and 99, not 49"));
        assert!(o.set_refresh_frequency(100).is_err());
        assert!(msg(o.set_cseq(1 << 31)).contains("below 2^31"));
        assert!(o.add_extra_header("Contact: *").is_err());
        assert!(o.add_extra_header("X-A:  ").is_err());
        let day = Duration::from_secs(86_400);
        assert!(msg(o.set_retry_base(Duration::ZERO)).contains("retry_base"));
        assert!(msg(o.set_retry_max(day + Duration::from_millis(1))).contains("retry_max"));
        assert!(msg(o.set_retry_after_max(Duration::MAX)).contains("retry_after_max"));
        // Nothing refused was stored.
        assert_eq!(o, RegistererOptions::default());
        o.set_expires(u32::MAX).unwrap();
        o.set_refresh_frequency(50).unwrap();
        o.set_cseq((1 << 31) - 1).unwrap();
        o.add_extra_header("X-A: b").unwrap();
        o.set_retry_base(day).unwrap();
        o.set_retry_max(day).unwrap();
        o.set_retry_after_max(Duration::ZERO).unwrap();
        assert_eq!(
            (o.expires, o.refresh_frequency, o.cseq),
            (u32::MAX, 50, (1 << 31) - 1)
        );
        assert_eq!(o.extra_headers, ["X-A: b"]);
        o.validate(&ua()).unwrap();
        // A combination is still only checked by validate.
        o.set_retry_max(Duration::from_secs(1)).unwrap();
        assert!(invalid(o).contains("retry_max must be >= retry_base"));
    }

    #[test]
    fn reg_id_needs_instance_id_and_instance_id_must_be_uuid() {
        assert!(invalid(RegistererOptions {
            reg_id: Some(1),
            ..Default::default()
        })
        .contains("instance_id"));
        invalid(RegistererOptions {
            instance_id: Some("not-a-uuid".into()),
            ..Default::default()
        });
        let s = RegistererOptions {
            instance_id: Some("F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6".into()),
            reg_id: Some(1),
            ..Default::default()
        }
        .validate(&ua())
        .unwrap();
        assert_eq!(
            s.extras().instance_urn.as_deref(),
            Some("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
        );
        let s = RegistererOptions {
            instance_id: Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".into()),
            ..Default::default()
        }
        .validate(&ua())
        .unwrap();
        assert!(s.extras().instance_urn.is_some());
    }

    #[test]
    fn transport_comes_from_the_registrar_uri_then_the_user_agent() {
        let s = RegistererOptions {
            registrar: Some("sip:127.0.0.1:5070;transport=tcp".into()),
            ..Default::default()
        }
        .validate(&ua())
        .unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.target_port, 5070);
        let mut u = ua();
        u.transport = Transport::Tcp;
        u.set_outbound_proxy(Some("sip:[::1]:5080")).unwrap();
        let s = RegistererOptions::default().validate(&u).unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.target_host, Host::V6("::1".parse().unwrap()));
        assert_eq!(s.target_port, 5080);
    }

    #[test]
    fn user_agent_settings_are_checked() {
        let mut u = ua();
        assert!(UserAgentConfig::new("sip:example.com").is_err());
        assert!(UserAgentConfig::new("not a uri").is_err());
        assert!(u.set_user_agent("x\r\ny").is_err());
        assert!(u
            .set_timers(
                Duration::ZERO,
                Duration::from_secs(4),
                Duration::from_secs(5)
            )
            .is_err());
        assert!(u
            .set_timers(
                Duration::from_secs(5),
                Duration::from_secs(4),
                Duration::from_secs(5)
            )
            .is_err());
        u.set_local_address(Some("127.0.0.1")).unwrap();
        assert_eq!(u.local_address, Some("127.0.0.1:0".parse().unwrap()));
        u.set_local_address(Some("[::1]:5099")).unwrap();
        u.set_local_address(Some("[::1]")).unwrap();
        assert!(u.set_local_address(Some("[::1")).is_err());
        let e = UserAgentConfig::new("sip:alice:Zq9Secret@")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("Zq9Secret"), "{e}");
        let e = UserAgentConfig::new("sip:alice:Zq9Secret@example.com")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("Zq9Secret") && e.contains("password"), "{e}");
        assert!(u.set_local_address(Some("localhost")).is_err());
        assert_eq!(u.effective_auth_username(), "alice");
        u.set_auth_username(Some("a1")).unwrap();
        assert_eq!(u.effective_auth_username(), "a1");
        u.set_password(Some("pw")).unwrap();
        assert!(!format!("{u:?}").contains("pw\""));
        assert!(Transport::parse("sctp").is_err());
        assert!(RetryPolicy {
            base: Duration::ZERO,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
