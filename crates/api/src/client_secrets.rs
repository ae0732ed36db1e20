//! Client secrets: made from the OS's random source, shown once, stored only as argon2id
//! hashes (PHC strings), checked in constant time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use reportroot_storage::directory::AppSecret;
use uuid::Uuid;

/// Characters of a secret value, as Entra ID's: letters, digits and `_ . ~ -`.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";

/// A new secret for `client_id`, valid until `expires` (seconds since the epoch): its value,
/// to show once, and what is stored.
pub fn new_secret(client_id: Uuid, created: i64, expires: i64) -> (String, AppSecret) {
    let mut rng = rand::rngs::OsRng;
    // Entra's shape: three characters, "8Q~", then 34 more (40 in all, ~200 random bits).
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect()
    };
    let value = format!("{}8Q~{}", pick(3), pick(34));
    let stored = AppSecret {
        secret_id: Uuid::new_v4(),
        client_id,
        hint: value[..3].to_owned(),
        hash: hash(&value),
        created,
        expires,
    };
    (value, stored)
}

/// The argon2id hash of `value` with a random salt (argon2's default cost: 19 MiB, 2 passes,
/// OWASP's recommendation), as a PHC string.
pub fn hash(value: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(value.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        // Hashing with valid parameters and a generated salt does not fail; an empty hash
        // would simply never verify.
        .unwrap_or_default()
}

/// Whether `value` is the secret hashed as `phc` (argon2 compares the digests in constant
/// time). A malformed stored hash never matches.
pub fn verify(value: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(value.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that matches nothing, verified when a client id is unknown so that the answer takes
/// as long as for a known one (no timing oracle for which ids exist).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy secret that is never issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_only_against_its_own_hash() {
        let (value, stored) = new_secret(Uuid::nil(), 0, 1);
        assert_eq!(value.len(), 40);
        assert_eq!(&value[3..6], "8Q~");
        assert!(stored.hash.starts_with("$argon2id$"));
        assert!(!stored.hash.contains(&value));
        assert!(verify(&value, &stored.hash));
        assert!(!verify(&format!("{value}x"), &stored.hash));
        assert!(!verify(&value, decoy_hash()));
        assert!(!verify(&value, "not a hash"));
    }
}
