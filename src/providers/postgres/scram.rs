//! Whether a role's stored password (`pg_authid.rolpassword`) is the one of a given
//! password, computed the way the server checks a login but without logging in: after a
//! refused drift login this tells a wrong password from an account the server refuses for
//! another reason (NOLOGIN, `pg_hba.conf`, an expired `VALID UNTIL`).
//!
//! A SCRAM-SHA-256 verifier is `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
//! (RFC 5802, RFC 7677): SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt,
//! iterations), StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")), ServerKey =
//! HMAC(SaltedPassword, "Server Key"). An MD5 one is `md5` + MD5(password + role name).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// `Some(true)` when `stored` is the verifier of `password` for role `role`,
/// `Some(false)` when it is of another password (or there is none: NULL or empty), and
/// `None` for a form this does not read.
pub fn stored_matches(stored: Option<&str>, role: &str, password: &Secret) -> Option<bool> {
    let stored = match stored {
        None | Some("") => return Some(false),
        Some(s) => s,
    };
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        return scram_matches(rest, password);
    }
    if stored.starts_with("md5") && stored.len() == 35 {
        let ours = postgres_protocol::password::md5(password.expose().as_bytes(), role);
        return Some(ours == stored);
    }
    None
}

fn scram_matches(rest: &str, password: &Secret) -> Option<bool> {
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored_key, server_key) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
    let salt = STANDARD.decode(salt).ok()?;
    let stored_key = STANDARD.decode(stored_key).ok()?;
    let server_key = STANDARD.decode(server_key).ok()?;
    let salted = salted_password(&saslprep(password), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let ours_stored = Sha256::digest(client_key);
    let ours_server = hmac(&salted, b"Server Key");
    Some(ours_stored.as_slice() == stored_key.as_slice() && ours_server == server_key.as_slice())
}

/// SASLprep of the password where it applies; the raw bytes where it does not (the
/// server does the same, so a password SASLprep rejects still logs in).
fn saslprep(password: &Secret) -> Vec<u8> {
    match stringprep::saslprep(password.expose()) {
        Ok(prepared) => prepared.into_owned().into_bytes(),
        Err(_) => password.expose().as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA-256 for one 32-byte block: U1 = HMAC(password, salt || 1),
/// Un = HMAC(password, Un-1), the result the XOR of all of them.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut result = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (r, b) in result.iter_mut().zip(&u) {
            *r ^= b;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_made_by_the_driver_match_their_password_only() {
        let pw = Secret::new("p'\"\\$ø ⅨX");
        let verifier = postgres_protocol::password::scram_sha_256(pw.expose().as_bytes());
        assert_eq!(stored_matches(Some(&verifier), "app", &pw), Some(true));
        assert_eq!(
            stored_matches(Some(&verifier), "app", &Secret::new("other")),
            Some(false)
        );
        let md5 = postgres_protocol::password::md5(pw.expose().as_bytes(), "app");
        assert_eq!(stored_matches(Some(&md5), "app", &pw), Some(true));
        assert_eq!(stored_matches(Some(&md5), "other_role", &pw), Some(false));
        assert_eq!(stored_matches(None, "app", &pw), Some(false));
        assert_eq!(stored_matches(Some("plain-text?"), "app", &pw), None);
        assert_eq!(stored_matches(Some("SCRAM-SHA-256$x"), "app", &pw), None);
    }
}
