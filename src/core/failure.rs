//! Why a registration attempt failed: a kind an application can act on
//! ("wrong password" is not "server unreachable"), the status when a
//! response said it, and one human-readable line of detail.

use std::fmt;

/// The class of a failed attempt (C `sipreg_failure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Our credentials were refused (401/407/403 after we answered a challenge).
    AuthRejected,
    /// Challenged for a realm (or algorithm) we hold no usable credentials for.
    NoCredentials,
    /// Refused: the challenge offered only a weaker digest algorithm than
    /// this realm offered before.
    AuthDowngrade,
    /// Any other final 3xx–6xx from the registrar.
    Rejected,
    /// A 423 loop, or a Min-Expires the client will not use.
    IntervalTooBrief,
    /// Timer F: no final response.
    Timeout,
    /// Connection refused or reset, ICMP unreachable, connection lost.
    Transport,
    /// TLS handshake failed, certificate untrusted, expired or for another name.
    Tls,
    /// Name resolution failed: NXDOMAIN, SERVFAIL, no usable records, timeout.
    Dns,
    /// The RFC 5626 keep-alive found the flow dead.
    Flow,
}

impl FailureKind {
    /// The stable lower-case name (`sipreg_failure_str`): "auth_rejected", …
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::AuthRejected => "auth_rejected",
            FailureKind::NoCredentials => "no_credentials",
            FailureKind::AuthDowngrade => "auth_downgrade",
            FailureKind::Rejected => "rejected",
            FailureKind::IntervalTooBrief => "interval_too_brief",
            FailureKind::Timeout => "timeout",
            FailureKind::Transport => "transport",
            FailureKind::Tls => "tls",
            FailureKind::Dns => "dns",
            FailureKind::Flow => "flow",
        }
    }

    /// A few words for log lines: "transport", "TLS", "DNS", "authentication", …
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::AuthRejected | FailureKind::NoCredentials | FailureKind::AuthDowngrade => {
                "authentication"
            }
            FailureKind::Rejected => "registrar",
            FailureKind::IntervalTooBrief => "interval",
            FailureKind::Timeout => "timeout",
            FailureKind::Transport => "transport",
            FailureKind::Tls => "TLS",
            FailureKind::Dns => "DNS",
            FailureKind::Flow => "flow",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The failure of the last attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What class of failure.
    pub kind: FailureKind,
    /// The final response's status when one said it (a real or synthesised
    /// 408/503 counts), else `None`.
    pub status: Option<u16>,
    /// That response's reason phrase ("" without a status); filled in by the
    /// registerer from the response when the failure is recorded.
    pub reason: String,
    /// One line for a person, never containing credentials,
    /// e.g. `certificate not valid for name "sip.example.com"`.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with `detail` and no status.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            status: None,
            reason: String::new(),
            detail: detail.into(),
        }
    }

    /// The same failure, said by a response with `status`.
    pub fn with_status(mut self, status: u16) -> Failure {
        self.status = Some(status);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({s}): {}", self.kind, self.detail),
            None => write!(f, "{}: {}", self.kind, self.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_c_names_in_lower_case() {
        assert_eq!(FailureKind::AuthRejected.as_str(), "auth_rejected");
        assert_eq!(
            FailureKind::IntervalTooBrief.to_string(),
            "interval_too_brief"
        );
        let f = Failure::new(FailureKind::Tls, "certificate expired").with_status(503);
        assert_eq!(f.to_string(), "tls (503): certificate expired");
    }
}
