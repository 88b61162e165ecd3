//! Credentials at rest: sealed with ChaCha20-Poly1305 under a key from the environment.
//!
//! The key is 32 bytes, given as 64 hex digits or standard base64 in
//! `CROSSWALK_SECRET_KEY`. Each sealed value is a fresh 12-byte nonce followed by the
//! ciphertext and its tag; the connection id is the associated data, so that sealed
//! credentials copied onto another connection do not open. Without the key the service
//! still serves sandbox connections, and refuses to create or read live ones.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The environment variable that holds the key.
pub const SECRET_KEY_ENV: &str = "CROSSWALK_SECRET_KEY";

const NONCE_BYTES: usize = 12;

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The key is not 32 bytes in hex or base64.
    #[error(
        "{SECRET_KEY_ENV} must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`); {0}"
    )]
    BadKey(String),
    /// A sealed value does not open with this key: another key sealed it, or it was
    /// changed.
    #[error(
        "the stored credentials of connection `{0}` do not open with this {SECRET_KEY_ENV}: was the key changed?"
    )]
    Unsealable(String),
    /// The store's sealed data was sealed with another key: every replica of one store
    /// must run with the same key.
    #[error(
        "the store was sealed with another {SECRET_KEY_ENV}: every replica of one store needs the key it was first started with"
    )]
    OtherKey,
    /// The store could not be asked which key seals it.
    #[error("the store's key check could not be read: {0}")]
    Store(String),
}

/// The store's key check: a known text sealed under the key the store was first
/// started with, kept in the store's meta records.
const KEY_CHECK: &str = "sealing_key_check";
/// The associated data and plain text of the key check.
const KEY_CHECK_ID: &str = "crosswalk-store";

/// Seals and opens credentials.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer with a key in hex or base64.
    pub fn from_text(text: &str) -> Result<Sealer, SecretError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).expect("64 hex digits")
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| SecretError::BadKey(format!("it is neither hex nor base64 ({e})")))?
        };
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("it has {} bytes", bytes.len())));
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// The sealer of `CROSSWALK_SECRET_KEY`, or `None` when it is not set.
    pub fn from_env() -> Result<Option<Sealer>, SecretError> {
        match std::env::var(SECRET_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Sealer::from_text(&text).map(Some),
            _ => Ok(None),
        }
    }

    /// Seals `plain` for one connection.
    pub fn seal(&self, connection_id: &str, plain: &[u8]) -> Vec<u8> {
        let nonce = crate::ids::random_bytes::<NONCE_BYTES>();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: connection_id.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 seals any message this size");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Checks that this key is the one the store's sealed data was sealed with: the
    /// first start with a key records a check value sealed under it; a later start
    /// whose key does not open it is refused with [`SecretError::OtherKey`].
    pub async fn check_store(&self, store: &dyn crate::store::Store) -> Result<(), SecretError> {
        let ours = hex::encode(self.seal(KEY_CHECK_ID, KEY_CHECK_ID.as_bytes()));
        let stored = store
            .claim_meta(KEY_CHECK, &ours)
            .await
            .map_err(|e| SecretError::Store(e.to_string()))?;
        let opens = hex::decode(&stored)
            .ok()
            .and_then(|sealed| self.open(KEY_CHECK_ID, &sealed).ok())
            .is_some_and(|plain| plain == KEY_CHECK_ID.as_bytes());
        if opens {
            Ok(())
        } else {
            Err(SecretError::OtherKey)
        }
    }

    /// Opens what [`Sealer::seal`] sealed for the same connection.
    pub fn open(&self, connection_id: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let unsealable = || SecretError::Unsealable(connection_id.to_owned());
        if sealed.len() < NONCE_BYTES {
            return Err(unsealable());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: connection_id.as_bytes(),
                },
            )
            .map_err(|_| unsealable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn seals_and_opens_only_for_the_same_connection_and_key() {
        let sealer = Sealer::from_text(KEY).unwrap();
        let sealed = sealer.seal("con_a", b"{\"password\":\"s3cret\"}");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "the secret is not in the sealed bytes"
        );
        assert_eq!(
            sealer.open("con_a", &sealed).unwrap(),
            b"{\"password\":\"s3cret\"}"
        );
        assert_eq!(
            sealer.open("con_b", &sealed),
            Err(SecretError::Unsealable("con_b".into()))
        );
        let other = Sealer::from_text(&"ab".repeat(32)).unwrap();
        assert!(other.open("con_a", &sealed).is_err());
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(sealer.open("con_a", &changed).is_err());
        assert_ne!(
            sealer.seal("con_a", b"x"),
            sealer.seal("con_a", b"x"),
            "fresh nonces"
        );
    }

    #[test]
    fn keys_are_32_bytes_in_hex_or_base64() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(Sealer::from_text(&b64).is_ok());
        let short = Sealer::from_text("abcd").unwrap_err().to_string();
        assert!(
            short.contains("CROSSWALK_SECRET_KEY") && short.contains("3 bytes"),
            "{short}"
        );
        assert!(Sealer::from_text("not a key!").is_err());
    }
}
