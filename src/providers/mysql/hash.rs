//! The stored forms of a password that MySQL and MariaDB accept as they are, computed by
//! the agent so a rotation never sends the plaintext in a statement (which the server's
//! general, slow or audit log would record):
//!
//! - `mysql_native_password`: `*` + hex(SHA1(SHA1(password))).
//! - MariaDB `ed25519`: base64 (unpadded) of the Ed25519 public key whose secret is
//!   SHA-512(password), the way MariaDB's client_ed25519 derives it.
//! - MySQL `caching_sha2_password`: `$A$` + the round count in thousands as three hex
//!   digits + `$` + a 20-byte salt + SHA-256-crypt (Drepper's algorithm) of the password
//!   with that salt and round count, in crypt's base64: `$A$005$...` at 5000 rounds (what
//!   MySQL 8.0 and 8.4 store), `$A$00A$...` at 10000 (MySQL 9's default). The agent uses
//!   the count the server is configured for (`caching_sha2_password_digest_rounds`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::secret::Secret;

/// `*` followed by 40 upper-case hex digits.
pub fn native(password: &Secret) -> String {
    // sha1 0.10 implements digest 0.10's trait, sha2 0.11 digest 0.11's.
    let stage1 = <Sha1 as sha1::Digest>::digest(password.expose().as_bytes());
    let stage2 = <Sha1 as sha1::Digest>::digest(stage1);
    format!("*{}", crate::hex::upper(&stage2))
}

/// 43 base64 characters: the public key MariaDB's ed25519 plugin stores.
pub fn ed25519(password: &Secret) -> String {
    let expanded: [u8; 64] = Sha512::digest(password.expose().as_bytes()).into();
    let secret = ed25519_dalek::hazmat::ExpandedSecretKey::from_bytes(&expanded);
    let public = ed25519_dalek::VerifyingKey::from(&secret);
    STANDARD_NO_PAD.encode(public.as_bytes())
}

/// Length of the salt MySQL's caching_sha2_password uses.
pub const SHA2_SALT_LEN: usize = 20;
/// The round count of servers that cannot be asked (before MySQL 8.0.24) and the least
/// any server accepts; MySQL stores the count in thousands as hex: "005" is 5000.
pub const SHA2_DEFAULT_ROUNDS: u32 = 5000;
/// The most rounds the three hex digits hold (MySQL's own limit too).
const SHA2_MAX_ROUNDS: u32 = 0xFFF * 1000;

/// crypt's base64 alphabet; every salt character is drawn from it too, so the stored
/// string is printable ASCII that needs no escaping on any server version.
const CRYPT_B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random salt for [`caching_sha2`].
pub fn sha2_salt() -> Result<[u8; SHA2_SALT_LEN], getrandom::Error> {
    let mut salt = [0u8; SHA2_SALT_LEN];
    getrandom::fill(&mut salt)?;
    for b in &mut salt {
        *b = CRYPT_B64[usize::from(*b & 63)];
    }
    Ok(salt)
}

/// The 70-character caching_sha2_password string for `password` and `salt`, hashed with
/// `rounds` (whole thousands, 5000 to 4095000, as the server keeps them).
pub fn caching_sha2(password: &Secret, salt: &[u8; SHA2_SALT_LEN], rounds: u32) -> String {
    let thousands = rounds.clamp(SHA2_DEFAULT_ROUNDS, SHA2_MAX_ROUNDS) / 1000;
    let digest = sha256_crypt(
        password.expose().as_bytes(),
        salt,
        thousands as usize * 1000,
    );
    format!(
        "$A${thousands:03X}${}{}",
        String::from_utf8_lossy(salt),
        digest
    )
}

/// Whether `stored`, an account's hash for `plugin` as the server keeps it, is the one of
/// `password`; `None` for a plugin whose hash the agent cannot compute.
pub fn stored_matches(plugin: &str, stored: &[u8], password: &Secret) -> Option<bool> {
    match plugin {
        "mysql_native_password" => Some(stored.eq_ignore_ascii_case(native(password).as_bytes())),
        "ed25519" => Some(stored == ed25519(password).as_bytes()),
        "caching_sha2_password" => {
            // `$A$` + the rounds in thousands as three hex digits + `$` + salt + digest.
            let text = std::str::from_utf8(stored).ok()?;
            let rest = text.strip_prefix("$A$")?;
            let (rounds, rest) = rest.split_once('$')?;
            let rounds = usize::from_str_radix(rounds, 16).ok()? * 1000;
            if rest.len() != SHA2_SALT_LEN + 43 || !rest.is_char_boundary(SHA2_SALT_LEN) {
                return None;
            }
            let (salt, digest) = rest.split_at(SHA2_SALT_LEN);
            Some(sha256_crypt(password.expose().as_bytes(), salt.as_bytes(), rounds) == digest)
        }
        _ => None,
    }
}

/// SHA-256-crypt (Drepper, "Unix crypt using SHA-256 and SHA-512") without the salt
/// length limit of 16: the 43-character encoded digest.
pub fn sha256_crypt(key: &[u8], salt: &[u8], rounds: usize) -> String {
    // Digest B: key, salt, key.
    let b = Sha256::new()
        .chain_update(key)
        .chain_update(salt)
        .chain_update(key)
        .finalize();
    // Digest A: key, salt, B repeated over the key's length, then per bit of that length.
    let mut a = Sha256::new().chain_update(key).chain_update(salt);
    a.update(repeat_to(&b, key.len()));
    let mut n = key.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(key);
        }
        n >>= 1;
    }
    let a = a.finalize();
    // P: the digest of the key repeated key-length times, stretched to the key's length.
    let mut dp = Sha256::new();
    for _ in 0..key.len() {
        dp.update(key);
    }
    let p = repeat_to(&dp.finalize(), key.len());
    // S: the digest of the salt repeated 16 + A[0] times, stretched to the salt's length.
    let mut ds = Sha256::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(salt);
    }
    let s = repeat_to(&ds.finalize(), salt.len());
    let mut c = a;
    for i in 0..rounds {
        let mut h = Sha256::new();
        if i % 2 == 1 {
            h.update(&p);
        } else {
            h.update(c);
        }
        if i % 3 != 0 {
            h.update(&s);
        }
        if i % 7 != 0 {
            h.update(&p);
        }
        if i % 2 == 1 {
            h.update(c);
        } else {
            h.update(&p);
        }
        c = h.finalize();
    }
    const ORDER: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    let mut out = String::with_capacity(43);
    let mut put = |b2: u8, b1: u8, b0: u8, chars: usize| {
        let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
        for _ in 0..chars {
            out.push(char::from(CRYPT_B64[(w & 63) as usize]));
            w >>= 6;
        }
    };
    for (x, y, z) in ORDER {
        put(c[x], c[y], c[z], 4);
    }
    put(0, c[31], c[30], 3);
    out
}

/// `block` repeated and cut to `len` bytes.
fn repeat_to(block: &[u8], len: usize) -> Vec<u8> {
    block.iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hashes_are_recognised_for_their_password_only() {
        let pw = Secret::new("pa'ss-ø");
        let other = Secret::new("other");
        let salt = *b"abcdefghij0123456789";
        for (plugin, stored) in [
            ("mysql_native_password", native(&pw)),
            ("ed25519", ed25519(&pw)),
            (
                "caching_sha2_password",
                caching_sha2(&pw, &salt, SHA2_DEFAULT_ROUNDS),
            ),
        ] {
            assert_eq!(
                stored_matches(plugin, stored.as_bytes(), &pw),
                Some(true),
                "{plugin}"
            );
            assert_eq!(
                stored_matches(plugin, stored.as_bytes(), &other),
                Some(false),
                "{plugin}"
            );
        }
        // MySQL 9's 10000 rounds are "00A", in hex.
        let nine = format!(
            "$A$00A${}{}",
            "abcdefghij0123456789",
            sha256_crypt(pw.expose().as_bytes(), &salt, 10_000)
        );
        assert_eq!(
            stored_matches("caching_sha2_password", nine.as_bytes(), &pw),
            Some(true)
        );
        assert_eq!(stored_matches("sha256_password", b"x", &pw), None);
    }

    #[test]
    fn native_hash_matches_the_server() {
        // SELECT PASSWORD('password') on MariaDB and MySQL 5.7.
        assert_eq!(
            native(&Secret::new("password")),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn sha256_crypt_matches_drepper_and_openssl() {
        // The specification's first test vector; `openssl passwd -5 -salt saltstring`
        // gives the same.
        assert_eq!(
            sha256_crypt(b"Hello world!", b"saltstring", 5000),
            "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
    }

    /// `CREATE USER ... IDENTIFIED BY 'password'` on MySQL 9.7 with
    /// caching_sha2_password_digest_rounds at 10000 and at 5000 (the matrix's servers):
    /// the stored strings, whose salts are not printable.
    #[test]
    fn caching_sha2_matches_what_mysql_9_stores_at_both_round_counts() {
        for stored_hex in [
            "244124303041247E55151A390F270E134C6C1B6F676506106E2E7A4552576449303877653947746C334E674E564B3772546859734346757553345468326C4A69624D5A654730",
            "244124303035240F381F517555653A4C4B046D1A384C34626879766F774C62362F304E4573764F6A55696C31724B674F46705555356255645A3738563434537543376B443837",
        ] {
            let stored = crate::hex::decode(stored_hex).unwrap();
            let rounds = u32::from_str_radix(std::str::from_utf8(&stored[3..6]).unwrap(), 16)
                .unwrap()
                * 1000;
            let salt: [u8; SHA2_SALT_LEN] = stored[7..27].try_into().unwrap();
            let ours = caching_sha2(&Secret::new("password"), &salt, rounds);
            assert_eq!(ours.as_bytes(), &stored[..], "{rounds} rounds");
        }
    }

    #[test]
    fn caching_sha2_writes_the_round_count_in_hex_thousands() {
        let salt = sha2_salt().unwrap();
        let pw = Secret::new("pw");
        assert!(caching_sha2(&pw, &salt, 5000).starts_with("$A$005$"));
        assert!(caching_sha2(&pw, &salt, 10_000).starts_with("$A$00A$"));
        // Below the least the server accepts: the least; odd counts: whole thousands.
        assert!(caching_sha2(&pw, &salt, 0).starts_with("$A$005$"));
        assert_eq!(
            caching_sha2(&pw, &salt, 12_345),
            caching_sha2(&pw, &salt, 12_000)
        );
    }

    #[test]
    fn caching_sha2_has_the_stored_layout() {
        let salt = sha2_salt().unwrap();
        let h = caching_sha2(&Secret::new("pw"), &salt, SHA2_DEFAULT_ROUNDS);
        assert_eq!(h.len(), 70);
        assert!(h.starts_with("$A$005$"));
        assert_eq!(&h.as_bytes()[7..27], &salt);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'\\')
        );
        assert_ne!(sha2_salt().unwrap(), salt, "salts are random");
    }
}
