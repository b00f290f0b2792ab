//! User-agent settings and registerer options (SIP.js `RegistererOptions`), with
//! validation: bad values are rejected here, never turned into a malformed request.
//!
//! The parts: `user_agent` ([`UserAgentConfig`] and what it holds), `checks`
//! (the value checks, each written once) and, here, [`RegistererOptions`]
//! with its setters and [`validate`](RegistererOptions::validate).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use super::shared_text;
use super::uri::{Host, Scheme, Uri};
use crate::error::Error;

mod checks;
mod user_agent;

use checks::{
    check_contact_param, check_cseq, check_expires, check_extra_header, check_refresh_frequency,
    check_token, check_word, instance_urn, parse_uri,
};
pub use checks::{check_no_ctl, check_request_headers};
pub use user_agent::{
    Secret, TlsSettings, Transport, UserAgentConfig, UserAgentExtras, DEFAULT_ALLOW,
    DEFAULT_USER_AGENT,
};

/// Automatic recovery after transient failures (RFC 5626 §4.5 backoff).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl RetryPolicy {
    /// On, 30 s base, 30 min cap, Retry-After followed up to an hour.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        enabled: true,
        base: Duration::from_secs(30),
        max: Duration::from_secs(1800),
        retry_after_max: Duration::from_secs(3600),
    };
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
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
    /// answer; the parsed URI is not kept), shared by the registerers made
    /// one after another with the same registrar.
    pub registrar_text: Arc<str>,
    /// The To URI as text (`to_uri`, else the AOR: then one string shared
    /// with `aor_text`).
    pub to_text: Arc<str>,
    /// Extra headers, Contact parameters, instance URN, display names and
    /// recovery times other than the default:
    /// set by few users, so boxed and `None` when none is set (read them
    /// through [`Settings::extras`]).
    pub extras: Option<Box<Extras>>,
    /// reg-id.
    pub reg_id: Option<u32>,
    /// Initial CSeq.
    pub cseq: u32,
    /// Automatic recovery is on (its times are in [`Extras::retry`]).
    pub retry_enabled: bool,
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
    /// The user part of our Contact when the endpoint chose another than
    /// the user agent's (two user agents on one socket would clash).
    pub contact_user: Option<Box<str>>,
    /// Backoff times of the recovery policy (most keep the default;
    /// `enabled` is [`Settings::retry_enabled`] and stays `true` here).
    pub retry: RetryPolicy,
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
    contact_user: None,
    retry: RetryPolicy::DEFAULT,
};

impl Settings {
    /// The AOR as text (the From URI), kept once with the user agent's settings.
    pub fn aor_text(&self) -> &Arc<str> {
        self.ua.aor_text()
    }

    /// Extra headers, Contact parameters, instance URN, display names and
    /// recovery times (empty and the default when none is set).
    pub fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }

    /// The recovery policy.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            enabled: self.retry_enabled,
            ..self.extras().retry
        }
    }
}

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
        let (registrar, registrar_text) = match &self.registrar {
            Some(r) => registrar_of(r)?,
            None => {
                let aor = ua.aor()?;
                let uri = Uri {
                    scheme: aor.scheme,
                    user: None,
                    password: None,
                    host: aor.host(),
                    port: aor.port,
                    params: Vec::new(),
                    headers: Vec::new(),
                };
                let text = shared_text::shared(shared_text::Kind::Registrar, &uri.text());
                (uri, text)
            }
        };
        if registrar.user.is_some() {
            return Err(Error::invalid(
                "registrar URI must not contain a user part (RFC 3261 10.2)",
            ));
        }
        if !registrar.headers.is_empty() {
            return Err(Error::invalid("registrar URI must not carry URI headers"));
        }
        let aor_text = ua.aor_text();
        // Only the text of the To URI is kept (it is written, never inspected).
        let to_text = match &self.to_uri {
            Some(t) => parse_uri("to_uri", t)?.text().into(),
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

        let route = ua.extras().outbound_proxy.as_ref().unwrap_or(&registrar);
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
            registrar_text,
            to_text,
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
                contact_user: None,
                // Only the times: turning recovery off alone boxes nothing.
                retry: RetryPolicy {
                    enabled: true,
                    ..self.retry
                },
            }
            .boxed(),
            retry_enabled: self.retry.enabled,
            reg_id: self.reg_id,
            cseq: self.cseq,
            path_gruu: self.path_gruu,
            transport,
            transport_open,
        })
    }
}

/// The registrar URI `text` parsed, and its written form shared (see
/// [`shared_text`]). The last one parsed on this thread is kept: a fleet of
/// registerers made one after another names the same registrar, and parsing
/// and writing it out again for each was about 3 % of a registration's
/// instructions. A text that fails to parse is not kept.
fn registrar_of(text: &str) -> Result<(Uri, Arc<str>), Error> {
    /// The text as given, the URI parsed from it, and its written form.
    type Parsed = (Box<str>, Uri, Arc<str>);
    thread_local! {
        static LAST: RefCell<Option<Parsed>> = const { RefCell::new(None) };
    }
    let hit = LAST.with(|last| match &*last.borrow() {
        Some((seen, uri, written)) if **seen == *text => Some((uri.clone(), written.clone())),
        _ => None,
    });
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let uri = parse_uri("registrar", text)?;
    let written = shared_text::shared(shared_text::Kind::Registrar, &uri.text());
    LAST.with(|last| *last.borrow_mut() = Some((text.into(), uri.clone(), written.clone())));
    Ok((uri, written))
}

#[cfg(test)]
mod tests;
