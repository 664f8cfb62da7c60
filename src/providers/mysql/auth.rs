//! The client side of MySQL's and MariaDB's authentication plugins, as pure functions:
//! what each plugin's answer to the server's challenge is, and which answers reveal the
//! password. `client.rs` runs the exchange and applies the policy: an answer that reveals
//! the password (cleartext plugins, caching_sha2's full authentication) goes only over
//! verified TLS or the server's Unix socket, and the server's RSA key is never asked for.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::secret::Secret;

/// An authentication plugin, by the name the server uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plugin {
    /// `mysql_native_password`: SHA-1 challenge and response.
    Native,
    /// `caching_sha2_password`: SHA-256 challenge and response while the server has the
    /// password cached; otherwise the password itself ("full authentication").
    CachingSha2,
    /// `sha256_password`: the password itself, over TLS or RSA-encrypted.
    Sha256,
    /// `mysql_clear_password` (PAM, LDAP): the password itself.
    Clear,
    /// MariaDB's `client_ed25519`: an Ed25519 signature of the challenge.
    Ed25519,
    /// Anything else, by name.
    Other(String),
}

impl Plugin {
    pub fn from_name(name: &[u8]) -> Plugin {
        match name {
            b"mysql_native_password" => Plugin::Native,
            b"caching_sha2_password" => Plugin::CachingSha2,
            b"sha256_password" => Plugin::Sha256,
            b"mysql_clear_password" => Plugin::Clear,
            b"client_ed25519" => Plugin::Ed25519,
            other => Plugin::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Plugin::Native => "mysql_native_password",
            Plugin::CachingSha2 => "caching_sha2_password",
            Plugin::Sha256 => "sha256_password",
            Plugin::Clear => "mysql_clear_password",
            Plugin::Ed25519 => "client_ed25519",
            Plugin::Other(name) => name,
        }
    }
}

/// How the client answers a plugin's challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A response from which the password cannot be read (a scramble or a signature).
    Proof(Vec<u8>),
    /// The password itself (NUL-terminated): only for a verified server.
    Password(&'static str),
    /// The agent does not speak this plugin; why.
    Unsupported(String),
}

/// What the client sends for `plugin` given the server's challenge `nonce`.
pub fn answer(plugin: &Plugin, password: &Secret, nonce: &[u8]) -> Answer {
    let pw = password.expose().as_bytes();
    match plugin {
        Plugin::Native => Answer::Proof(scramble_native(nonce, pw)),
        Plugin::CachingSha2 => Answer::Proof(scramble_sha256(nonce, pw)),
        Plugin::Ed25519 => Answer::Proof(sign_ed25519(nonce, pw)),
        Plugin::Sha256 => Answer::Password(
            "the password itself for sha256_password (in clear over TLS, or encrypted to an RSA key the server itself supplies)",
        ),
        Plugin::Clear => Answer::Password("the password in clear (mysql_clear_password)"),
        Plugin::Other(name) => Answer::Unsupported(format!(
            "the account uses the authentication plugin \"{name}\", which the agent does not speak (it speaks mysql_native_password, caching_sha2_password, sha256_password, ed25519 and mysql_clear_password)"
        )),
    }
}

/// What caching_sha2's full authentication sends, for the refusal message.
pub const FULL_AUTHENTICATION: &str = "the full caching_sha2_password authentication, which sends the password itself (in clear over TLS, or encrypted to an RSA key the server itself supplies; the password is not in the server's cache yet)";

/// The password with the NUL the cleartext plugins end it with.
pub fn cleartext(password: &Secret) -> Vec<u8> {
    let mut out = password.expose().as_bytes().to_vec();
    out.push(0);
    out
}

/// `mysql_native_password`: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))).
pub fn scramble_native(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = <Sha1 as sha1::Digest>::digest(password);
    let stage2 = <Sha1 as sha1::Digest>::digest(stage1);
    let mut h = <Sha1 as sha1::Digest>::new();
    sha1::Digest::update(&mut h, challenge(nonce));
    sha1::Digest::update(&mut h, stage2);
    let mix = sha1::Digest::finalize(h);
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// caching_sha2's fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce).
pub fn scramble_sha256(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let m1 = Sha256::digest(password);
    let m2 = Sha256::digest(m1);
    let m3 = Sha256::new()
        .chain_update(m2)
        .chain_update(challenge(nonce))
        .finalize();
    m1.iter().zip(m3.iter()).map(|(a, b)| a ^ b).collect()
}

/// MariaDB's client_ed25519: the Ed25519 signature of the nonce with the key whose
/// expanded secret is SHA-512(password) (the key `hash::ed25519` stores the public half of).
pub fn sign_ed25519(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
    let expanded: [u8; 64] = Sha512::digest(password).into();
    let secret = ExpandedSecretKey::from_bytes(&expanded);
    let public = ed25519_dalek::VerifyingKey::from(&secret);
    raw_sign::<Sha512>(&secret, nonce, &public)
        .to_bytes()
        .to_vec()
}

/// The nonce without the NUL some servers end it with (the 20 bytes the scrambles use).
fn challenge(nonce: &[u8]) -> &[u8] {
    match nonce {
        [head @ .., 0] if head.len() == 20 => head,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

    // Expected values computed independently with Python's hashlib:
    //   s1 = sha1(pw); s2 = sha1(s1); xor(s1, sha1(nonce + s2))
    //   m1 = sha256(pw); xor(m1, sha256(sha256(m1) + nonce))
    #[test]
    fn scrambles_match_the_protocols_formulas() {
        assert_eq!(
            crate::hex::lower(&scramble_native(NONCE, b"secret")),
            "8817c50fa779daef010ee7577825b0847df9842e"
        );
        assert_eq!(
            crate::hex::lower(&scramble_sha256(NONCE, b"secret")),
            "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809"
        );
        // A trailing NUL on the nonce is not part of the challenge.
        let mut with_nul = NONCE.to_vec();
        with_nul.push(0);
        assert_eq!(
            scramble_native(&with_nul, b"secret"),
            scramble_native(NONCE, b"secret")
        );
        assert!(scramble_native(NONCE, b"").is_empty());
        assert!(scramble_sha256(NONCE, b"").is_empty());
    }

    #[test]
    fn the_ed25519_signature_verifies_with_the_stored_public_key() {
        use base64::Engine;
        use ed25519_dalek::Verifier;
        let pw = Secret::new("p'w\\ø");
        let nonce = [7u8; 32];
        let sig = sign_ed25519(&nonce, pw.expose().as_bytes());
        let stored = super::super::hash::ed25519(&pw);
        let key = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(stored)
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig.try_into().unwrap());
        key.verify(&nonce, &sig).unwrap();
    }

    #[test]
    fn only_the_cleartext_plugins_reveal_the_password() {
        let pw = Secret::new("pw");
        for plugin in [Plugin::Native, Plugin::CachingSha2, Plugin::Ed25519] {
            assert!(
                matches!(answer(&plugin, &pw, NONCE), Answer::Proof(_)),
                "{plugin:?}"
            );
        }
        for plugin in [Plugin::Sha256, Plugin::Clear] {
            assert!(
                matches!(answer(&plugin, &pw, NONCE), Answer::Password(_)),
                "{plugin:?}"
            );
        }
        assert!(matches!(
            answer(&Plugin::from_name(b"dialog"), &pw, NONCE),
            Answer::Unsupported(m) if m.contains("dialog")
        ));
        assert_eq!(Plugin::from_name(b"client_ed25519"), Plugin::Ed25519);
        assert_eq!(cleartext(&pw), b"pw\0");
    }
}
