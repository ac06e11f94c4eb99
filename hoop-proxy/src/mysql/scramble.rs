//! The answers of MySQL's and MariaDB's authentication plugins to a server's
//! challenge, computed from the connection's password.

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Oaep, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// `mysql_native_password`: `SHA1(pw) XOR SHA1(nonce || SHA1(SHA1(pw)))`;
/// an empty password answers with nothing.
pub(crate) fn native_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mix = Sha1::new()
        .chain_update(nonce)
        .chain_update(stage2)
        .finalize();
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password`'s scramble:
/// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce)`; an empty password
/// answers with nothing.
pub(crate) fn caching_sha2(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mix = Sha256::new()
        .chain_update(stage2)
        .chain_update(nonce)
        .finalize();
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// MariaDB's `client_ed25519`: the password's SHA-512 is the expanded
/// Ed25519 secret key (scalar, then nonce prefix) that signs the server's
/// 32-byte challenge. Returns the 64-byte signature.
pub(crate) fn ed25519(password: &[u8], challenge: &[u8]) -> Vec<u8> {
    let digest: [u8; 64] = Sha512::digest(password).into();
    let key = ExpandedSecretKey::from_bytes(&digest);
    let public = VerifyingKey::from(&key);
    raw_sign::<Sha512>(&key, challenge, &public)
        .to_bytes()
        .to_vec()
}

/// The server's public key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the database server sent an unusable RSA public key")]
pub(crate) struct BadPublicKey;

/// `caching_sha2_password` full authentication without TLS: the password
/// (NUL-terminated) XOR the nonce, encrypted with RSA-OAEP (SHA-1, as the
/// server decrypts with OpenSSL's `RSA_PKCS1_OAEP_PADDING`) under the
/// server's PEM public key.
pub(crate) fn rsa_encrypted_password(
    password: &[u8],
    nonce: &[u8],
    public_key_pem: &[u8],
) -> Result<Vec<u8>, BadPublicKey> {
    let pem = std::str::from_utf8(public_key_pem).map_err(|_| BadPublicKey)?;
    // The server may end the PEM with a NUL or extra whitespace.
    let pem = pem.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let key = RsaPublicKey::from_public_key_pem(pem).map_err(|_| BadPublicKey)?;
    let mut plain: Vec<u8> = password.iter().copied().chain([0]).collect();
    if !nonce.is_empty() {
        for (i, byte) in plain.iter_mut().enumerate() {
            *byte ^= nonce[i % nonce.len()];
        }
    }
    key.encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<Sha1>(), &plain)
        .map_err(|_| BadPublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The expected values were computed independently with Python's
    /// hashlib from the formulas in the MySQL source
    /// (`scramble_native_password`, `generate_sha2_scramble`).
    #[test]
    fn native_and_sha2_scrambles_match_the_reference_formulas() {
        let nonce = b"abcdefghijklmnopqrst";
        assert_eq!(
            hex(&native_password(b"secret", nonce)),
            "8817c50fa779daef010ee7577825b0847df9842e"
        );
        assert_eq!(
            hex(&caching_sha2(b"secret", nonce)),
            "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809"
        );
        assert!(native_password(b"", nonce).is_empty());
        assert!(caching_sha2(b"", nonce).is_empty());
    }

    #[test]
    fn ed25519_signature_verifies_under_the_password_public_key() {
        let challenge = [7u8; 32];
        let signature = ed25519(b"secret", &challenge);
        assert_eq!(signature.len(), 64);
        let digest: [u8; 64] = Sha512::digest(b"secret").into();
        let public = VerifyingKey::from(&ExpandedSecretKey::from_bytes(&digest));
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        public.verify_strict(&challenge, &signature).unwrap();
    }

    #[test]
    fn rejects_a_public_key_that_is_not_pem() {
        assert_eq!(
            rsa_encrypted_password(b"pw", b"nonce", b"not a key"),
            Err(BadPublicKey)
        );
    }
}
