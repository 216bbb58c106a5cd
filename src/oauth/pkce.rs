//! PKCE (RFC 7636). Only S256 is accepted: `plain` offers no protection
//! against a leaked authorization request (RFC 9700 §2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::crypto;

/// RFC 7636 §4.1/§4.2: 43–128 characters of [A-Z] [a-z] [0-9] - . _ ~.
fn is_valid_token(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks the authorization request's `code_challenge` /
/// `code_challenge_method`; returns the challenge to store.
pub fn validate_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, &'static str> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method was sent without code_challenge"),
        (Some(_), None) => Err("code_challenge_method must be S256 (plain is not supported)"),
        (Some(_), Some(m)) if m != "S256" => {
            Err("code_challenge_method must be S256 (plain is not supported)")
        }
        // An S256 challenge is the base64url of a SHA-256 digest: 43 chars.
        (Some(c), Some(_)) if c.len() != 43 || !is_valid_token(c) => {
            Err("code_challenge is not a valid S256 challenge")
        }
        (Some(c), Some(_)) => Ok(Some(c.to_string())),
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    if !is_valid_token(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(crypto::sha256(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        assert_eq!(
            validate_challenge(Some(challenge), Some("S256"))
                .unwrap()
                .as_deref(),
            Some(challenge)
        );
    }

    #[test]
    fn plain_and_malformed_challenges_are_refused() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(validate_challenge(Some(c), Some("plain")).is_err());
        assert!(validate_challenge(Some(c), None).is_err());
        assert!(validate_challenge(None, Some("S256")).is_err());
        assert!(validate_challenge(Some("short"), Some("S256")).is_err());
        assert!(validate_challenge(Some(&format!("{}!", &c[..42])), Some("S256")).is_err());
        assert_eq!(validate_challenge(None, None), Ok(None));
    }
}
