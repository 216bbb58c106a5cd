//! Small cryptographic helpers shared across modules.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Bytes from the operating system's CSPRNG (via aws-lc).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc's RNG only fails when the OS entropy source is gone; nothing
    // can run safely then.
    if aws_lc_rs::rand::fill(&mut out).is_err() {
        std::process::abort();
    }
    out
}

/// A 256-bit random token, base64url without padding (43 characters): codes,
/// refresh tokens, client secrets, session and CSRF tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// N random bytes as lowercase hex: identifiers that are safe anywhere,
/// including as a command-line argument (never starting with '-').
pub fn random_hex<const N: usize>() -> String {
    to_hex(&random_bytes::<N>())
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The stored form of a high-entropy secret: hex SHA-256. A fast hash is
/// right here because the input is 256 random bits, not a password.
pub fn hash_secret(secret: &str) -> String {
    to_hex(&sha256(secret.as_bytes()))
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    hash_secret(presented)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}
