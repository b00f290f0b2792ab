//! The credentials a user agent holds, as deployments hold them: a password
//! or an HA1 (SIP.js `authorizationHa1`, pjsip `PJSIP_CRED_DATA_DIGEST`,
//! reSIProcate's A1 per realm), each for one realm or for any realm; and
//! which of them answers a challenge.
//!
//! The rules, in one place:
//! - a credential for the challenge's realm wins over one for any realm;
//! - an HA1 only answers its own algorithm (`-sess` included: an HA1 of
//!   SHA-256 answers SHA-256-sess), a password answers any;
//! - among the challenges of one response that some credential can answer,
//!   the strongest algorithm wins (RFC 8760 §3), ties going to the first.

use std::fmt;

use super::digest::{self, Algorithm, Challenge, Key};
use super::options::{check_no_ctl, Secret, UserAgentConfig};
use crate::error::Error;

/// What a credential's secret is (C `sipreg_secret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The plain password.
    Password,
    /// Hex of MD5(`username:realm:password`).
    Ha1Md5,
    /// Hex of SHA-256(`username:realm:password`).
    Ha1Sha256,
    /// Hex of SHA-512/256(`username:realm:password`).
    Ha1Sha512_256,
}

impl SecretKind {
    /// The algorithm an HA1 was computed with; `None` for a password.
    pub fn ha1_algorithm(self) -> Option<Algorithm> {
        match self {
            SecretKind::Password => None,
            SecretKind::Ha1Md5 => Some(Algorithm::Md5),
            SecretKind::Ha1Sha256 => Some(Algorithm::Sha256),
            SecretKind::Ha1Sha512_256 => Some(Algorithm::Sha512_256),
        }
    }

    /// Whether a secret of this kind can answer a challenge with `alg`.
    pub fn answers(self, alg: Algorithm) -> bool {
        self.ha1_algorithm().is_none_or(|own| own == alg.base())
    }

    /// For messages: "password" or "HA1 SHA-256".
    fn describe(self) -> String {
        match self.ha1_algorithm() {
            None => "password".into(),
            Some(alg) => format!("HA1 {}", alg.as_str()),
        }
    }
}

/// One credential: a secret for a realm (or any realm) and a username.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The realm it answers; `None`: any realm.
    pub realm: Option<String>,
    /// The digest username; `None`: the user agent's auth username (the AOR
    /// user unless set), read when the challenge is answered.
    pub username: Option<String>,
    /// The password or the HA1 (lower-case hex); wiped when dropped.
    pub secret: Secret,
    /// Which of the two.
    pub kind: SecretKind,
}

/// The secret stays out of `{:?}`.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("realm", &self.realm)
            .field("username", &self.username)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Checks and builds a credential. An HA1 must be the hex digest of its
    /// algorithm (32 digits for MD5, 64 for the others), in either case; it
    /// is kept in lower case, the form the digest hashes. Errors never echo
    /// the secret.
    pub fn new(
        realm: Option<&str>,
        username: Option<&str>,
        secret: &str,
        kind: SecretKind,
    ) -> Result<Credential, Error> {
        if let Some(r) = realm {
            check_no_ctl("realm", r)?;
        }
        if let Some(u) = username {
            check_no_ctl("username", u)?;
            if u.is_empty() {
                return Err(Error::invalid("username must not be empty"));
            }
        }
        let secret = match kind.ha1_algorithm() {
            None => {
                check_no_ctl("password", secret)?;
                Secret::new(secret)
            }
            Some(alg) => {
                let hex =
                    secret.len() == alg.hex_len() && secret.bytes().all(|b| b.is_ascii_hexdigit());
                if !hex {
                    return Err(Error::invalid(format!(
                        "an HA1 for {} must be {} hex digits",
                        alg.as_str(),
                        alg.hex_len()
                    )));
                }
                let mut lower = Secret::new(secret);
                lower.make_ascii_lowercase();
                lower
            }
        };
        Ok(Credential {
            realm: realm.map(str::to_owned),
            username: username.map(str::to_owned),
            secret,
            kind,
        })
    }

    /// Whether `other` takes this one's place: same realm, username and kind.
    pub fn same_slot(&self, other: &Credential) -> bool {
        self.realm == other.realm && self.username == other.username && self.kind == other.kind
    }

    /// The key to answer `alg` with, if this credential can.
    fn key_for(&self, alg: Algorithm) -> Option<Key<'_>> {
        if !self.kind.answers(alg) {
            return None;
        }
        Some(match self.kind {
            SecretKind::Password => Key::Password(self.secret.expose()),
            _ => Key::Ha1(self.secret.expose()),
        })
    }
}

/// What answers one challenge: the username and the key.
#[derive(Clone, Copy, Debug)]
pub struct Fit<'a> {
    /// The username to send (and hash, for a password).
    pub username: &'a str,
    /// The password or HA1.
    pub key: Key<'a>,
}

/// How specific a fitting credential is; the realm's own wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    AnyRealm,
    ThisRealm,
}

/// The credential that answers `challenge` with `alg`, and how specific it
/// is: the realm's own first, in the order added; then the any-realm ones in
/// the order added; the `set_password` one last.
fn find<'a>(
    ua: &'a UserAgentConfig,
    realm: &str,
    alg: Algorithm,
) -> Option<(Fit<'a>, Specificity)> {
    let default_user = ua.effective_auth_username();
    let fit = |c: &'a Credential| {
        c.key_for(alg).map(|key| Fit {
            username: c.username.as_deref().unwrap_or(default_user),
            key,
        })
    };
    let own = ua
        .extras()
        .credentials
        .iter()
        .filter(|c| c.realm.as_deref() == Some(realm))
        .find_map(fit);
    if let Some(f) = own {
        return Some((f, Specificity::ThisRealm));
    }
    let any = ua
        .extras()
        .credentials
        .iter()
        .filter(|c| c.realm.is_none())
        .find_map(fit)
        .or_else(|| {
            ua.password.as_ref().map(|p| Fit {
                username: default_user,
                key: Key::Password(p.expose()),
            })
        });
    any.map(|f| (f, Specificity::AnyRealm))
}

/// The credential answering `challenge`, if one fits its realm and algorithm.
pub fn credential_for<'a>(ua: &'a UserAgentConfig, challenge: &Challenge) -> Option<Fit<'a>> {
    let alg = digest::usable_algorithm(challenge)?;
    find(ua, &challenge.realm, alg).map(|(fit, _)| fit)
}

/// Picks the challenge of one response to answer, with its place in
/// `offered`: among those some credential answers, the ones a credential
/// of their own realm answers first, then the strongest algorithm, then
/// the first listed.
///
/// # Errors
/// One line for a person when none can be answered: the realms and
/// algorithms offered and the kinds of secret held (never a secret).
pub fn choose<'c>(
    ua: &UserAgentConfig,
    offered: &'c [Challenge],
) -> Result<(usize, &'c Challenge), String> {
    let mut best: Option<((usize, &Challenge), Specificity, u8)> = None;
    for (at, ch) in offered.iter().enumerate() {
        let Some(alg) = digest::usable_algorithm(ch) else {
            continue;
        };
        let Some((_, specificity)) = find(ua, &ch.realm, alg) else {
            continue;
        };
        let rank = (specificity, alg.strength());
        // Strictly better, so the earliest of equals stays chosen.
        if best.is_none_or(|(_, s, strength)| rank > (s, strength)) {
            best = Some(((at, ch), specificity, alg.strength()));
        }
    }
    best.map(|(chosen, _, _)| chosen)
        .ok_or_else(|| why_none(ua, offered))
}

/// Why [`choose`] found nothing: what was offered and what is held.
fn why_none(ua: &UserAgentConfig, offered: &[Challenge]) -> String {
    if offered.is_empty() {
        return "no Digest challenge".into();
    }
    let offers: Vec<String> = offered
        .iter()
        .map(|ch| {
            let alg = match digest::usable_algorithm(ch) {
                Some(a) => a.as_str().to_owned(),
                None => format!(
                    "{} (unusable)",
                    ch.algorithm.as_deref().unwrap_or("MD5").escape_debug()
                ),
            };
            format!("realm {:?} with {alg}", ch.realm)
        })
        .collect();
    let mut held: Vec<String> = ua
        .extras()
        .credentials
        .iter()
        .map(|c| match &c.realm {
            Some(r) => format!("{} for realm {r:?}", c.kind.describe()),
            None => format!("{} for any realm", c.kind.describe()),
        })
        .collect();
    if ua.password.is_some() {
        held.push("password for any realm".into());
    }
    let held = if held.is_empty() {
        "none (no password or credential is configured)".to_owned()
    } else {
        held.join(", ")
    };
    format!(
        "no credentials fit: challenged for {}; held: {held}",
        offers.join(", ")
    )
}

/// The strongest algorithm `offered` gives for `realm` (usable ones only).
pub fn strongest_offered(offered: &[Challenge], realm: &str) -> Option<Algorithm> {
    offered
        .iter()
        .filter(|ch| ch.realm == realm)
        .filter_map(digest::usable_algorithm)
        .max_by_key(|alg| alg.strength())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::{authorization, authorization_with_key, parse_challenge, Answer};
    use md5::{Digest as _, Md5};
    use sha2::{Sha256, Sha512_256};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn ha1(kind: SecretKind, user: &str, realm: &str, pw: &str) -> String {
        let text = format!("{user}:{realm}:{pw}");
        match kind {
            SecretKind::Ha1Md5 => hex(&Md5::digest(text.as_bytes())),
            SecretKind::Ha1Sha256 => hex(&Sha256::digest(text.as_bytes())),
            SecretKind::Ha1Sha512_256 => hex(&Sha512_256::digest(text.as_bytes())),
            SecretKind::Password => unreachable!(),
        }
    }

    fn ua() -> UserAgentConfig {
        UserAgentConfig::new("sip:alice@example.com").unwrap()
    }

    fn ch(realm: &str, alg: Option<&str>) -> Challenge {
        let alg = alg.map_or(String::new(), |a| format!(", algorithm={a}"));
        parse_challenge(&format!(
            "Digest realm=\"{realm}\", nonce=\"n1\", qop=\"auth\"{alg}"
        ))
        .unwrap()
    }

    fn answer<'a>(user: &'a str, pw: Option<&'a str>) -> Answer<'a> {
        Answer {
            username: user,
            password: pw,
            method: "REGISTER",
            uri: "sip:example.com",
            body: b"",
            nc: 1,
            cnonce: "c0ffee",
        }
    }

    #[test]
    fn an_ha1_answers_as_its_password_does_for_every_algorithm() {
        for (alg, kind) in [
            ("MD5", SecretKind::Ha1Md5),
            ("MD5-sess", SecretKind::Ha1Md5),
            ("SHA-256", SecretKind::Ha1Sha256),
            ("SHA-256-sess", SecretKind::Ha1Sha256),
            ("SHA-512-256", SecretKind::Ha1Sha512_256),
            ("SHA-512-256-sess", SecretKind::Ha1Sha512_256),
        ] {
            let c = ch("example.com", Some(alg));
            let by_password = authorization(&c, &answer("alice", Some("pw"))).unwrap();
            let h = ha1(kind, "alice", "example.com", "pw");
            let by_ha1 = authorization_with_key(&c, &answer("alice", None), Key::Ha1(&h)).unwrap();
            assert_eq!(by_password, by_ha1, "{alg}");
        }
    }

    #[test]
    fn a_bad_ha1_is_refused_by_the_digest_without_echoing_it() {
        let c = ch("example.com", Some("SHA-256"));
        let md5 = ha1(SecretKind::Ha1Md5, "alice", "example.com", "pw");
        let err = authorization_with_key(&c, &answer("alice", None), Key::Ha1(&md5)).unwrap_err();
        assert!(!err.to_string().contains(&md5), "{err}");
        let upper = ha1(SecretKind::Ha1Sha256, "alice", "example.com", "pw").to_uppercase();
        assert!(authorization_with_key(&c, &answer("alice", None), Key::Ha1(&upper)).is_err());
    }

    #[test]
    fn credentials_are_checked_and_ha1_kept_in_lower_case() {
        let h = ha1(SecretKind::Ha1Md5, "alice", "r", "pw").to_uppercase();
        let c = Credential::new(Some("r"), None, &h, SecretKind::Ha1Md5).unwrap();
        assert_eq!(c.secret.expose(), h.to_lowercase());
        for (secret, kind) in [
            (&h[..31], SecretKind::Ha1Md5),
            (h.as_str(), SecretKind::Ha1Sha256),
            ("zz", SecretKind::Ha1Sha512_256),
        ] {
            let err = Credential::new(None, None, secret, kind).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert!(Credential::new(None, Some(""), "pw", SecretKind::Password).is_err());
        assert!(Credential::new(Some("a\r\nb"), None, "pw", SecretKind::Password).is_err());
        assert!(Credential::new(None, None, "p\nw", SecretKind::Password).is_err());
        let debug = format!("{c:?}");
        assert!(!debug.contains(&h.to_lowercase()), "{debug}");
    }

    #[test]
    fn the_realms_own_credential_wins_over_any_realm() {
        let mut u = ua();
        u.set_password(Some("any")).unwrap();
        u.add_credential(
            Credential::new(Some("r"), Some("bob"), "own", SecretKind::Password).unwrap(),
        );
        let fit = credential_for(&u, &ch("r", None)).unwrap();
        assert_eq!(fit.username, "bob");
        assert!(matches!(fit.key, Key::Password("own")));
        let other = credential_for(&u, &ch("elsewhere", None)).unwrap();
        assert_eq!(other.username, "alice");
        assert!(matches!(other.key, Key::Password("any")));
    }

    #[test]
    fn an_ha1_for_another_algorithm_is_skipped() {
        let mut u = ua();
        let h = ha1(SecretKind::Ha1Md5, "alice", "r", "pw");
        u.add_credential(Credential::new(Some("r"), None, &h, SecretKind::Ha1Md5).unwrap());
        assert!(credential_for(&u, &ch("r", Some("SHA-256"))).is_none());
        assert!(credential_for(&u, &ch("r", Some("MD5-sess"))).is_some());
        let offered = [ch("r", Some("SHA-256")), ch("r", Some("MD5"))];
        let (at, chosen) = choose(&u, &offered).unwrap();
        assert_eq!(at, 1);
        assert_eq!(
            chosen.algorithm.as_deref(),
            Some("MD5"),
            "the one we can answer"
        );
        let why = choose(&u, &offered[..1]).unwrap_err();
        assert!(
            why.contains("\"r\"") && why.contains("SHA-256") && why.contains("HA1 MD5"),
            "{why}"
        );
        assert!(!why.contains(&h), "{why}");
    }

    #[test]
    fn choice_prefers_the_realms_own_credential_then_the_strongest() {
        let mut u = ua();
        u.set_password(Some("any")).unwrap();
        let offered = [ch("a", Some("MD5")), ch("b", Some("SHA-256"))];
        assert_eq!(choose(&u, &offered).unwrap(), (1, &offered[1]), "strongest");
        u.add_credential(Credential::new(Some("a"), None, "pa", SecretKind::Password).unwrap());
        assert_eq!(
            choose(&u, &offered).unwrap(),
            (0, &offered[0]),
            "own realm first"
        );
        let none = ua();
        let why = choose(&none, &offered).unwrap_err();
        assert!(why.contains("held: none"), "{why}");
    }

    #[test]
    fn the_same_slot_is_replaced_not_added() {
        let mut u = ua();
        u.add_credential(Credential::new(Some("r"), None, "one", SecretKind::Password).unwrap());
        u.add_credential(Credential::new(Some("r"), None, "two", SecretKind::Password).unwrap());
        let h = ha1(SecretKind::Ha1Sha256, "alice", "r", "two");
        u.add_credential(Credential::new(Some("r"), None, &h, SecretKind::Ha1Sha256).unwrap());
        assert_eq!(u.extras().credentials.len(), 2);
        assert!(matches!(
            credential_for(&u, &ch("r", None)).unwrap().key,
            Key::Password("two")
        ));
        u.remove_credential(Some("r"), None, SecretKind::Password);
        assert_eq!(u.extras().credentials.len(), 1);
    }

    #[test]
    fn strongest_offered_per_realm() {
        let offered = [
            ch("r", Some("MD5")),
            ch("r", Some("SHA-256")),
            ch("q", Some("SHA-512-256")),
            ch("r", Some("SHA-1")),
        ];
        assert_eq!(strongest_offered(&offered, "r"), Some(Algorithm::Sha256));
        assert_eq!(strongest_offered(&offered, "x"), None);
    }
}
