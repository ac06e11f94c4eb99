//! Secrets at rest, random tokens and one-way hashes.
//!
//! Connection credentials are sealed with ChaCha20-Poly1305 (ring, the same
//! provider rustls uses here) under a 32-byte key that lives in the data
//! directory (`secret.key`, mode 0600, made on first start) or comes from
//! `HOOP_SECRET_KEY` (base64). Each sealed value carries its own random nonce
//! and the connection id as associated data, so a sealed blob copied onto
//! another row does not open. Tokens and agent secrets are stored only as
//! SHA-256 hashes: they are 256-bit random values, so a plain hash is enough.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The environment variable holding the secret key, base64.
pub const SECRET_KEY_ENV: &str = "HOOP_SECRET_KEY";

/// The file in the data directory holding the secret key, base64.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// A version byte in front of every sealed value, so the format can change.
const SEALED_V1: u8 = 1;

/// What can go wrong with keys and sealed values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes, base64-encoded")]
    BadKey,
    /// The key file could not be read or written.
    #[error("secret key file: {0}")]
    Io(#[from] std::io::Error),
    /// A sealed value was altered, truncated, or sealed under another key.
    #[error("a stored secret does not open with this key")]
    Unseal,
    /// The system's random source failed.
    #[error("no randomness available")]
    Random,
}

/// Seals and opens credential maps.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A box over raw key bytes.
    ///
    /// # Errors
    ///
    /// [`CryptoError::BadKey`] unless the key is 32 bytes.
    pub fn from_key(key: &[u8]) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// The key from `HOOP_SECRET_KEY` when set, else from the data
    /// directory's key file, made on first use.
    ///
    /// # Errors
    ///
    /// When the key is malformed or the file cannot be read or written.
    pub fn load(data_dir: &Path, from_env: Option<&str>) -> Result<Self, CryptoError> {
        if let Some(encoded) = from_env {
            let key = STANDARD
                .decode(encoded.trim())
                .map_err(|_| CryptoError::BadKey)?;
            return Self::from_key(&key);
        }
        let path = data_dir.join(SECRET_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(encoded) => {
                let key = STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| CryptoError::BadKey)?;
                Self::from_key(&key)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes::<32>()?;
                write_private(&path, STANDARD.encode(key).as_bytes())?;
                Self::from_key(&key)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Seals `plaintext`, bound to `context` (the owning row's id).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Random`] when no nonce can be drawn.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| CryptoError::Unseal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens a value sealed by [`SecretBox::seal`] with the same context.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unseal`] when it was altered, belongs to another row,
    /// or was sealed under another key.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(CryptoError::Unseal);
        };
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::Unseal)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// `N` bytes from the system's secure random source.
///
/// # Errors
///
/// [`CryptoError::Random`] when the source fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// A fresh 256-bit token, URL-safe base64 without padding.
///
/// Never begins with `-`: a token is typed after flags (`hoop login --token
/// TOKEN`, `mariadb -p TOKEN`), where a leading dash reads as another flag
/// (one token in 64 would). Such a draw is thrown away and drawn again,
/// which keeps every other token equally likely.
///
/// # Errors
///
/// [`CryptoError::Random`] when the source fails.
pub fn new_token() -> Result<String, CryptoError> {
    loop {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        if !token.starts_with('-') {
            return Ok(token);
        }
    }
}

/// A fresh random id in the UUID v4 text form.
///
/// # Errors
///
/// [`CryptoError::Random`] when the source fails.
pub fn new_id() -> Result<String, CryptoError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// SHA-256 of a token or agent secret, lowercase hex: what the store keeps.
pub fn hash_token(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SecretBox {
        SecretBox::from_key(&[7u8; 32]).unwrap()
    }

    #[test]
    fn sealed_value_opens_only_in_its_own_context() {
        let sealed = sealer().seal("conn-1", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealer().open("conn-1", &sealed).unwrap(), b"hunter2");
        assert!(matches!(
            sealer().open("conn-2", &sealed),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn tampered_or_truncated_values_are_refused() {
        let sealed = sealer().seal("c", b"value").unwrap();
        for cut in 0..sealed.len() {
            assert!(sealer().open("c", &sealed[..cut]).is_err());
        }
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(sealer().open("c", &flipped).is_err());
        let other = SecretBox::from_key(&[8u8; 32]).unwrap();
        assert!(other.open("c", &sealed).is_err());
    }

    #[test]
    fn key_file_is_made_once_and_reused() {
        let dir = crate::testing::TempDir::new();
        let first = SecretBox::load(dir.path(), None).unwrap();
        let sealed = first.seal("c", b"v").unwrap();
        let second = SecretBox::load(dir.path(), None).unwrap();
        assert_eq!(second.open("c", &sealed).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn key_from_environment_overrides_file_and_is_checked() {
        let dir = crate::testing::TempDir::new();
        let encoded = STANDARD.encode([9u8; 32]);
        let from_env = SecretBox::load(dir.path(), Some(&encoded)).unwrap();
        let sealed = from_env.seal("c", b"v").unwrap();
        assert_eq!(
            SecretBox::from_key(&[9u8; 32])
                .unwrap()
                .open("c", &sealed)
                .unwrap(),
            b"v"
        );
        assert!(!dir.path().join(SECRET_KEY_FILE).exists());
        assert!(matches!(
            SecretBox::load(dir.path(), Some("c2hvcnQ=")),
            Err(CryptoError::BadKey)
        ));
    }

    #[test]
    fn ids_and_tokens_are_distinct_and_well_formed() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(new_token().unwrap(), new_token().unwrap());
        assert_eq!(hash_token("a").len(), 64);
    }

    /// Regression: `hoop login --token -l...` failed with "unexpected
    /// argument '-l'" for the one token in 64 that began with a dash.
    #[test]
    fn tokens_never_begin_with_a_dash() {
        for _ in 0..2_000 {
            assert!(!new_token().unwrap().starts_with('-'));
        }
    }
}
