//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), without channel
//! binding: the proxy authenticates to a real server with the connection's
//! password and checks that the server knew it too.
//!
//! ```text
//! client-first   n,,n=USER,r=CNONCE
//! server-first   r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
//! client-final   c=biws,r=CNONCE+SNONCE,p=PROOF
//! server-final   v=SERVER-SIGNATURE            (verified; a mismatch fails)
//! ```
//!
//! PostgreSQL ignores the SCRAM user name (it takes the startup message's), so
//! its driver passes an empty one. Passwords are used as bytes: SASLprep is not
//! applied, which is exact for ASCII passwords (PostgreSQL does the same for
//! passwords SASLprep rejects).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The mechanism name as servers advertise it.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The GS2 header for "no channel binding, none supported by the client".
const GS2_HEADER: &str = "n,,";

/// `base64("n,,")`, the channel-binding attribute of the final message.
const CHANNEL_BINDING: &str = "biws";

/// The most PBKDF2 iterations accepted from a server. PostgreSQL uses 4096;
/// the cap stops a hostile server from burning seconds of CPU per session.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Bytes of randomness in the client nonce (PostgreSQL's own client uses 18).
const NONCE_LEN: usize = 18;

/// Why a SCRAM exchange failed. Never contains the password or derived keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server's message does not follow RFC 5802.
    #[error("malformed SCRAM message from server: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend the client's.
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    /// The iteration count is zero or above [`MAX_ITERATIONS`].
    #[error("SCRAM iteration count out of range")]
    Iterations,
    /// The server reported an error (`e=...`).
    #[error("server rejected the SCRAM exchange")]
    ServerError,
    /// The server's signature is wrong: it does not know the password.
    #[error("server signature does not verify")]
    BadServerSignature,
    /// A message arrived out of order.
    #[error("SCRAM message out of order")]
    OutOfOrder,
}

enum State {
    Initial,
    AwaitServerFirst,
    AwaitServerFinal { server_signature: [u8; 32] },
    Done,
}

/// One SCRAM-SHA-256 exchange, driven by the caller:
/// [`client_first`](Self::client_first), then
/// [`client_final`](Self::client_final) with the server's first message, then
/// [`verify_server_final`](Self::verify_server_final).
pub struct ScramClient {
    password: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(user: &str, password: &[u8]) -> Self {
        let nonce: [u8; NONCE_LEN] = rand::random();
        Self::with_nonce(user, password, &BASE64.encode(nonce))
    }

    /// Starts an exchange with a given nonce (printable ASCII without commas);
    /// for test vectors.
    pub fn with_nonce(user: &str, password: &[u8], nonce: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            password: password.to_vec(),
            client_first_bare: format!("n={user},r={nonce}"),
            client_nonce: nonce.to_owned(),
            state: State::Initial,
        }
    }

    /// The client-first message (GS2 header included).
    pub fn client_first(&mut self) -> String {
        self.state = State::AwaitServerFirst;
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// Takes the server-first message and returns the client-final message.
    ///
    /// # Errors
    ///
    /// [`ScramError`] when the message is malformed, out of order, the nonce
    /// does not extend ours, or the iteration count is out of range.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        if !matches!(self.state, State::AwaitServerFirst) {
            return Err(ScramError::OutOfOrder);
        }
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                Some(("e", _)) => return Err(ScramError::ServerError),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("missing nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(salt.ok_or(ScramError::Malformed("missing salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("missing iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(ScramError::Iterations);
        }

        let salted_password = pbkdf2_sha256(&self.password, &salt, iterations);
        let client_key = hmac(&salted_password, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c={CHANNEL_BINDING},r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let server_key = hmac(&salted_password, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        self.state = State::AwaitServerFinal { server_signature };
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message.
    ///
    /// # Errors
    ///
    /// [`ScramError::BadServerSignature`] when the server does not prove it
    /// knows the password; other [`ScramError`]s for malformed input.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::AwaitServerFinal { server_signature } = self.state else {
            return Err(ScramError::OutOfOrder);
        };
        let server_final =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut verifier = None;
        for attribute in server_final.split(',') {
            match attribute.split_once('=') {
                Some(("v", value)) => verifier = Some(value),
                Some(("e", _)) => return Err(ScramError::ServerError),
                _ => {}
            }
        }
        let verifier = BASE64
            .decode(verifier.ok_or(ScramError::Malformed("missing verifier"))?)
            .map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if !constant_time_eq(&verifier, &server_signature) {
            return Err(ScramError::BadServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }
}

/// A keyed HMAC. HMAC takes keys of any length (long ones are hashed), so
/// `new_from_slice` has no failing case for it.
fn mac_with_key(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = mac_with_key(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (`Hi()` of RFC 5802).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = mac_with_key(password);
    let mut mac = key.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut result = u;
    for _ in 1..iterations {
        let mut mac = key.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (r, b) in result.iter_mut().zip(u) {
            *r ^= b;
        }
    }
    result
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange of RFC 7677 section 3.
    #[test]
    fn matches_rfc7677_test_vector() {
        let mut client = ScramClient::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.client_final(server_first).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn rejects_forged_server_signature() {
        let mut client = ScramClient::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        client.client_first();
        client
            .client_final(b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            client.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn rejects_foreign_nonce_and_huge_iteration_counts() {
        let mut client = ScramClient::with_nonce("", b"pw", "abc");
        client.client_first();
        assert_eq!(
            client.client_final(b"r=xyz123,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch)
        );
        let mut client = ScramClient::with_nonce("", b"pw", "abc");
        client.client_first();
        assert_eq!(
            client.client_final(b"r=abc123,s=AAAA,i=4000000000"),
            Err(ScramError::Iterations)
        );
    }
}
