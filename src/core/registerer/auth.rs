//! Digest policy of one registerer: which challenge of a 401/407 to answer
//! with which credential, the downgrade guard (RFC 8760 §3: the strongest
//! algorithm a realm offered is remembered, and a later offer of only weaker
//! ones is refused unless `digest_downgrade` allows it), and the
//! Authorization headers computed at admission.

use super::*;
use crate::core::credentials;

impl Registerer {
    /// The challenge of `offered` to answer, with its place there (so the
    /// caller can move it out), or why none may be: a downgrade
    /// (`AuthDowngrade`) or nothing a credential fits (`NoCredentials`).
    pub(super) fn answerable_challenge<'c>(
        &mut self,
        offered: &'c [Challenge],
        status: u16,
    ) -> Result<(usize, &'c Challenge), Failure> {
        self.check_downgrade(offered)?;
        credentials::choose(&self.settings.ua, offered)
            .map_err(|why| Failure::new(FailureKind::NoCredentials, format!("{status}: {why}")))
    }

    /// Refuses `offered` when a realm in it offers only algorithms weaker
    /// than it offered before; with `digest_downgrade` it is allowed, with a warning.
    fn check_downgrade(&mut self, offered: &[Challenge]) -> Result<(), Failure> {
        for (i, ch) in offered.iter().enumerate() {
            let realm = ch.realm.as_str();
            let seen_earlier = offered.get(..i).unwrap_or_default();
            if seen_earlier.iter().any(|c| c.realm == realm) {
                continue;
            }
            let (Some(now), Some(before)) = (
                credentials::strongest_offered(offered, realm),
                self.strongest_seen(realm),
            ) else {
                continue;
            };
            if now.strength() >= before.strength() {
                continue;
            }
            let what = format!(
                "digest downgrade: realm {realm:?} now offers only {} after offering {}",
                now.as_str(),
                before.as_str()
            );
            if !self.settings.ua.digest_downgrade {
                return Err(Failure::new(
                    FailureKind::AuthDowngrade,
                    format!("{what}: refused (digest_downgrade allows it)"),
                ));
            }
            self.warn(&format!("{what}: answered, as digest_downgrade allows"));
        }
        Ok(())
    }

    /// The strongest algorithm `realm` offered in an earlier challenge we answered.
    fn strongest_seen(&mut self, realm: &str) -> Option<Algorithm> {
        self.auth
            .open()
            .iter()
            .filter(|e| e.challenge.realm == realm)
            .map(|e| e.strongest)
            .max_by_key(|alg| alg.strength())
    }

    /// Caches `offered[at]`, the challenge answered, for its realm
    /// (replacing the realm's earlier challenge), remembering the strongest
    /// algorithm the realm offered so far.
    pub(super) fn remember_challenge(
        &mut self,
        proxy: bool,
        mut offered: Vec<Challenge>,
        at: usize,
    ) {
        let Some(chosen) = offered.get(at) else {
            return;
        };
        let realm = chosen.realm.as_str();
        let strongest = [
            self.strongest_seen(realm),
            credentials::strongest_offered(&offered, realm),
            chosen.supported_algorithm(),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|alg| alg.strength())
        .unwrap_or(Algorithm::Md5);
        // The chosen one is kept; the others offered are dropped.
        let ch = offered.swap_remove(at);
        let auth = self.auth.open();
        auth.retain(|e| !(e.proxy == proxy && e.challenge.realm == ch.realm));
        auth.reserve_exact(1);
        auth.push(AuthEntry {
            proxy,
            challenge: ch,
            nc: 0,
            strongest,
            usable: true,
        });
    }

    /// Authorization headers from the per-realm cache, each with the next nc
    /// and the credential that fits its realm and algorithm now.
    pub(super) fn credentials_headers(&mut self, p: &mut Pending) -> Vec<(AuthHeader, String)> {
        let ua = &self.settings.ua;
        let uri = &*self.settings.registrar_text;
        let auth = self.auth.open();
        let usable = auth.iter().filter(|e| e.usable).count();
        let mut out = Vec::with_capacity(usable);
        // Exact: a queued request keeps this list until it is answered, and
        // the default growth would reserve four entries for the usual one.
        p.answered.reserve_exact(usable);
        for entry in auth.iter_mut().filter(|e| e.usable) {
            let Some(fit) = credentials::credential_for(ua, &entry.challenge) else {
                continue;
            };
            entry.nc = entry.nc.wrapping_add(1).max(1);
            let mut cnonce = [0u8; 16];
            self.rng.fill_token(&mut cnonce);
            // SAFETY: `fill_token` writes base32, ASCII.
            let cnonce = unsafe { own_text(&cnonce) };
            let answer = Answer {
                username: fit.username,
                password: None,
                method: "REGISTER",
                uri,
                body: b"",
                nc: entry.nc,
                cnonce,
            };
            if let Ok(value) = digest::authorization_with_key(&entry.challenge, &answer, fit.key) {
                let kind = if entry.proxy {
                    AuthHeader::ProxyAuthorization
                } else {
                    AuthHeader::Authorization
                };
                p.answered.push((
                    entry.challenge.realm.clone(),
                    entry.proxy,
                    entry.challenge.nonce.clone(),
                ));
                out.push((kind, value));
            }
        }
        out
    }

    /// The user agent's credentials changed: cached challenges are no longer
    /// answered before a new 401/407 (what goes out is decided at admission,
    /// so no answer from the old secret leaves), but each realm's strongest
    /// algorithm is still remembered.
    pub(super) fn forget_answers(&mut self) {
        for e in self.auth.open() {
            e.usable = false;
        }
        if !self.has_request() {
            self.auth.pack();
        }
    }

    /// Between requests the challenges are packed (they are opened again
    /// when the next request is admitted).
    pub(super) fn pack_auth_when_idle(&mut self) {
        if !self.has_request() {
            self.auth.pack();
        }
    }
}
