//! Credentials as deployments hold them: `sipreg_user_agent_add_credential`
//! (a password or an HA1 per realm or for any realm) and the digest
//! downgrade policy. The rules live in `core::credentials`.

use std::ffi::c_char;

use super::user_agent::{sipreg_user_agent, update};
use super::{opt_str, sipreg_result};
use crate::core::credentials::{Credential, SecretKind};
use crate::error::Error;

/// What the `secret` of `sipreg_user_agent_add_credential` is. An HA1 is the
/// hex digest of "username:realm:password" for that algorithm; it answers
/// that algorithm and its `-sess` variant only.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_secret {
    /// The plain password.
    SIPREG_SECRET_PASSWORD = 0,
    /// HA1 for MD5: 32 hex digits.
    SIPREG_SECRET_HA1_MD5 = 1,
    /// HA1 for SHA-256: 64 hex digits.
    SIPREG_SECRET_HA1_SHA256 = 2,
    /// HA1 for SHA-512-256: 64 hex digits.
    SIPREG_SECRET_HA1_SHA512_256 = 3,
}

/// A `sipreg_secret` value given as a number: a C caller may pass any value,
/// and an out-of-range Rust enum would be undefined behaviour.
fn secret_kind(kind: i32) -> Result<SecretKind, Error> {
    Ok(match kind {
        0 => SecretKind::Password,
        1 => SecretKind::Ha1Md5,
        2 => SecretKind::Ha1Sha256,
        3 => SecretKind::Ha1Sha512_256,
        other => {
            return Err(Error::invalid(format!(
                "secret kind {other} is not a sipreg_secret"
            )))
        }
    })
}

/// Adds a credential: `secret` (a password or an HA1, per `kind`, a
/// `sipreg_secret` value) answers challenges for `realm` (NULL: any realm)
/// with `username` (NULL: the auth username, else the AOR's user). For a
/// challenge, a credential of its realm wins over an any-realm one, which
/// wins over the `sipreg_user_agent_set_password` password; an HA1 is
/// skipped for a challenge of another algorithm. When nothing fits, the
/// attempt fails with SIPREG_FAILURE_NO_CREDENTIALS. A credential with the
/// same realm, username and kind is replaced; a NULL `secret` removes it. The
/// secret is copied, never logged, and wiped from memory when replaced,
/// removed or freed. Applies to every registerer at once (from its next
/// request). SIPREG_ERR_INVALID_ARGUMENT for an unknown `kind`, an HA1 that
/// is not hex of its algorithm's length, an empty username, control
/// characters or bad UTF-8; SIPREG_ERR_NULL_ARGUMENT for a NULL `ua`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (an unknown `kind`, an HA1 that is not hex of
/// its algorithm's length, an empty username, control characters or bad UTF-8,
/// or not a user agent handle); SIPREG_ERR_TERMINATED (the user agent was
/// freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `realm`, `username` and `secret` must each be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_add_credential(
    ua: *mut sipreg_user_agent,
    realm: *const c_char,
    username: *const c_char,
    secret: *const c_char,
    kind: i32,
) -> sipreg_result {
    update(ua, |c| {
        let kind = secret_kind(kind)?;
        let realm = opt_str(realm, "realm")?;
        let username = opt_str(username, "username")?;
        match opt_str(secret, "secret")? {
            Some(secret) => c.add_credential(Credential::new(realm, username, secret, kind)?),
            None => c.remove_credential(realm, username, kind),
        }
        Ok(())
    })
}

/// Whether a challenge may offer only a weaker digest algorithm than its
/// realm offered before (default false). The strongest algorithm each realm
/// offered is remembered; with false, a later challenge offering only weaker
/// ones (e.g. MD5 after SHA-256) ends the attempt with
/// SIPREG_FAILURE_AUTH_DOWNGRADE and a warning naming both algorithms
/// (RFC 8760 section 3); with true it is answered, with a warning. Applies to
/// every registerer at once. SIPREG_ERR_NULL_ARGUMENT for a NULL `ua`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_digest_downgrade(
    ua: *mut sipreg_user_agent,
    allow: bool,
) -> sipreg_result {
    update(ua, |c| {
        c.digest_downgrade = allow;
        Ok(())
    })
}
