//! `private_key_jwt` (OIDC Core §9, RFC 7523 §2.2 and §3): the client signs
//! a short-lived JWT with a private key whose public half it registered in
//! its `jwks` (RFC 7591 §2), and sends it as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! (RFC 7521 §4.2). It is given no secret.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::{ClientAuthContext, ClientAuthMethod, CredentialSource, PresentedCredentials};
use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::Client;
use crate::domain::client::ClientAssertionAlg;
use crate::error::{AppError, OAuthError};

pub const NAME: &str = "private_key_jwt";

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How far ahead an assertion may expire, counted from now and from its
/// `iat`: RFC 7523 §3 item 4 lets the server limit it; a short life keeps
/// the replay record small.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// How far in the future an `iat` or `nbf` may lie (clock skew between the
/// client and us).
const CLOCK_SKEW_SECS: i64 = 60;

/// Longer assertions are not read (a JWT with one small key and the
/// claims above fits in well under this).
const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// Longer `jti`s are refused rather than hashed.
const MAX_JTI_LEN: usize = 256;

/// At most this many keys in a registered `jwks`...
pub const MAX_JWKS_KEYS: usize = 10;
/// ...and at most this many bytes of it as JSON.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

/// RFC 7518 §3.3: RSA keys for RS256/PS256 are at least 2048 bits.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// RFC 7517 §9.2, RFC 7518 §6.2.2, §6.3.2, §6.4: members that only private
/// or symmetric keys have. A registered JWK Set must not contain them.
const PRIVATE_KEY_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub struct PrivateKeyJwt;

#[async_trait]
impl ClientAuthMethod for PrivateKeyJwt {
    fn name(&self) -> &'static str {
        NAME
    }

    fn issues_secret(&self) -> bool {
        false
    }

    /// The client proves itself with its private key.
    fn is_confidential(&self) -> bool {
        true
    }

    fn extract(
        &self,
        source: &CredentialSource<'_>,
    ) -> Option<Result<PresentedCredentials, OAuthError>> {
        let assertion_type = source.params.get("client_assertion_type");
        let assertion = source.params.get("client_assertion");
        if assertion_type.is_none() && assertion.is_none() {
            return None;
        }
        Some(presented(assertion_type, assertion, source))
    }

    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        client: &Client,
        presented: &PresentedCredentials,
    ) -> Result<bool, AppError> {
        let Some(assertion) = presented.assertion.as_deref() else {
            return Ok(false);
        };
        let Some(claims) = verified_claims(client, assertion) else {
            return Ok(false);
        };
        let now = ctx.clock.now();
        let Some(accepted) = accept(ctx, client, &claims, now) else {
            return Ok(false);
        };
        // RFC 7523 §3 item 7: each jti once, until the assertion expires;
        // recorded last, so only an otherwise valid assertion uses it up.
        let jti_hash = crypto::hash_secret(accepted.jti);
        Ok(ctx
            .assertions
            .use_client_assertion(&client.client_id, &jti_hash, accepted.expires_at, now)
            .await?)
    }
}

/// RFC 7521 §4.2: both parameters, the JWT type, and the client named by
/// the assertion's `sub` (read unverified here, only to find the client;
/// `verify` checks it).
fn presented(
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    source: &CredentialSource<'_>,
) -> Result<PresentedCredentials, OAuthError> {
    let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
        return Err(OAuthError::invalid_request(
            "client_assertion and client_assertion_type must be sent together",
        ));
    };
    if assertion_type != CLIENT_ASSERTION_TYPE {
        return Err(OAuthError::invalid_client(format!(
            "unsupported client_assertion_type; use {CLIENT_ASSERTION_TYPE}"
        )));
    }
    let client_id = unverified_subject(assertion)
        .ok_or_else(|| OAuthError::invalid_client("malformed client_assertion"))?;
    // RFC 7521 §4.2: a client_id sent along must name the same client.
    if source
        .params
        .get("client_id")
        .is_some_and(|body_id| body_id != client_id)
    {
        return Err(OAuthError::invalid_client(
            "client_id differs from the client assertion's sub",
        ));
    }
    Ok(PresentedCredentials {
        method: NAME,
        client_id,
        secret: None,
        assertion: Some(assertion.to_string()),
    })
}

/// The `sub` of a compact JWS, without checking anything.
fn unverified_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let mut parts = assertion.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let subject: Subject = serde_json::from_slice(&json).ok()?;
    (!subject.sub.is_empty()).then_some(subject.sub)
}

/// RFC 7519 §4.1.3: one audience or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(aud) => aud == value,
            Self::Many(auds) => auds.iter().any(|aud| aud == value),
        }
    }
}

/// The claims RFC 7523 §3 rules on; all optional here so that a missing
/// one is refused by `accept`, not by deserialisation.
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<UnixTime>,
    iat: Option<UnixTime>,
    nbf: Option<UnixTime>,
    jti: Option<String>,
}

/// What `verify` records of an accepted assertion.
struct Accepted<'c> {
    jti: &'c str,
    expires_at: UnixTime,
}

/// The assertion's claims, when its signature is by one of the client's
/// registered keys with an algorithm that key and the client allow.
fn verified_claims(client: &Client, assertion: &str) -> Option<AssertionClaims> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let jwks = client.metadata.jwks.as_ref()?;
    let header = jsonwebtoken::decode_header(assertion).ok()?;
    // Asymmetric algorithms only: never `none`, never HMAC (RFC 7523 §3
    // item 9 asks for a signature by the client's key).
    let alg = assertion_alg(header.alg)?;
    if client
        .metadata
        .token_endpoint_auth_signing_alg
        .is_some_and(|registered| registered != alg)
    {
        return None;
    }
    let mut validation = Validation::new(header.alg);
    // Time, audience and issuer are checked by `accept`, against the Clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jwks.keys
        .iter()
        // With a `kid`, only that key; without, every key that fits.
        .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
        .filter(|jwk| key_fits(jwk, alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| {
            jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
                .ok()
                .map(|data| data.claims)
        })
}

/// RFC 7523 §3: issuer and subject are the client, the audience is us,
/// the assertion is current and short-lived, and it has a `jti`.
fn accept<'c>(
    ctx: &ClientAuthContext<'_>,
    client: &Client,
    claims: &'c AssertionClaims,
    now: UnixTime,
) -> Option<Accepted<'c>> {
    let client_id = client.client_id.as_str();
    // Items 1 and 2: iss and sub are the client_id.
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return None;
    }
    // Item 3: our issuer identifier or the token endpoint URL; also the
    // URL of the endpoint the assertion was sent to.
    let aud = claims.aud.as_ref()?;
    if ![ctx.issuer, ctx.token_endpoint, ctx.endpoint]
        .iter()
        .any(|ours| aud.contains(ours))
    {
        return None;
    }
    // Item 4: exp required, in the future, and not far off.
    let exp = claims.exp?;
    if exp <= now || exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return None;
    }
    if let Some(iat) = claims.iat
        && (iat > now + CLOCK_SKEW_SECS || exp > iat + MAX_ASSERTION_LIFETIME_SECS)
    {
        return None;
    }
    // Item 5: not before nbf.
    if claims.nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECS) {
        return None;
    }
    // Item 7: a jti, used once (the caller records it).
    let jti = claims.jti.as_deref()?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return None;
    }
    Some(Accepted {
        jti,
        expires_at: exp,
    })
}

fn assertion_alg(alg: Algorithm) -> Option<ClientAssertionAlg> {
    match alg {
        Algorithm::RS256 => Some(ClientAssertionAlg::RS256),
        Algorithm::ES256 => Some(ClientAssertionAlg::ES256),
        Algorithm::PS256 => Some(ClientAssertionAlg::PS256),
        _ => None,
    }
}

/// Whether `jwk` can verify a signature made with `alg`: the key type and
/// curve, and the key's own `alg`, `use` and `key_ops` when it states them
/// (RFC 7517 §4.2–4.4).
fn key_fits(jwk: &Jwk, alg: ClientAssertionAlg) -> bool {
    let kind_fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(rsa), ClientAssertionAlg::RS256 | ClientAssertionAlg::PS256) => {
            URL_SAFE_NO_PAD.decode(&rsa.n).is_ok_and(|n| {
                let significant = n.iter().skip_while(|b| **b == 0).count();
                significant >= MIN_RSA_MODULUS_BYTES
            })
        }
        (AlgorithmParameters::EllipticCurve(ec), ClientAssertionAlg::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    };
    let common = &jwk.common;
    let alg_fits = common
        .key_algorithm
        .is_none_or(|key_alg| key_alg.to_string() == alg.as_str());
    let use_fits = common
        .public_key_use
        .as_ref()
        .is_none_or(|key_use| *key_use == PublicKeyUse::Signature);
    let ops_fit = common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    kind_fits && alg_fits && use_fits && ops_fit
}

/// Checks a `jwks` offered at registration (RFC 7591 §2) and reads it:
/// a JSON object with a `keys` array of at most [`MAX_JWKS_KEYS`] public
/// keys, at most [`MAX_JWKS_BYTES`] long, no private or symmetric key
/// material, and at least one key that can verify assertions (with
/// `signing_alg` when the client registers one). The error says why not.
pub fn check_jwks(jwks: &Value, signing_alg: Option<ClientAssertionAlg>) -> Result<JwkSet, String> {
    let size = serde_json::to_vec(jwks)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_JWKS_BYTES {
        return Err(format!("must be at most {MAX_JWKS_BYTES} bytes"));
    }
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Err("must be a JWK Set: an object with a \"keys\" array".into());
    };
    if keys.is_empty() || keys.len() > MAX_JWKS_KEYS {
        return Err(format!("must hold between 1 and {MAX_JWKS_KEYS} keys"));
    }
    for key in keys {
        let Some(members) = key.as_object() else {
            return Err("each key must be a JSON object".into());
        };
        if let Some(member) = PRIVATE_KEY_MEMBERS
            .iter()
            .find(|m| members.contains_key(**m))
        {
            return Err(format!(
                "must hold public keys only; a key has the private or symmetric member {member:?}"
            ));
        }
    }
    let set: JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| format!("is not a valid JWK Set: {e}"))?;
    let wanted: &[ClientAssertionAlg] = match &signing_alg {
        Some(alg) => std::slice::from_ref(alg),
        None => &ClientAssertionAlg::ALL,
    };
    let usable = set.keys.iter().any(|jwk| {
        DecodingKey::from_jwk(jwk).is_ok() && wanted.iter().any(|alg| key_fits(jwk, *alg))
    });
    if !usable {
        return Err(format!(
            "holds no key to verify {} signatures (RSA keys of at least 2048 bits, EC keys on \
             P-256, with \"use\": \"sig\" if any)",
            wanted
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join("/")
        ));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oauth::request::FormParams;

    const EC_KEY: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn ec_key() -> Value {
        serde_json::from_str(EC_KEY).unwrap()
    }

    #[test]
    fn jwks_must_hold_a_usable_public_key() {
        let set = check_jwks(&json!({"keys": [ec_key()]}), None).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(
            check_jwks(
                &json!({"keys": [ec_key()]}),
                Some(ClientAssertionAlg::ES256)
            )
            .is_ok()
        );
        let e = check_jwks(
            &json!({"keys": [ec_key()]}),
            Some(ClientAssertionAlg::RS256),
        );
        assert!(e.unwrap_err().contains("RS256"));
        let mut private = ec_key();
        private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
        assert!(
            check_jwks(&json!({"keys": [private]}), None)
                .unwrap_err()
                .contains("\"d\"")
        );
        let secret = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(check_jwks(&secret, None).is_err());
        assert!(check_jwks(&json!({"keys": []}), None).is_err());
        assert!(check_jwks(&json!([ec_key()]), None).is_err());
        let eleven: Vec<Value> = (0..11).map(|_| ec_key()).collect();
        assert!(check_jwks(&json!({ "keys": eleven }), None).is_err());
        let mut encryption = ec_key();
        encryption["use"] = "enc".into();
        assert!(check_jwks(&json!({"keys": [encryption]}), None).is_err());
        let small_rsa = json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
        assert!(check_jwks(&small_rsa, None).is_err());
    }

    fn extract(body: &[u8]) -> Option<Result<PresentedCredentials, OAuthError>> {
        let params = FormParams::parse(body).unwrap();
        PrivateKeyJwt.extract(&CredentialSource {
            authorization: None,
            params: &params,
        })
    }

    fn unsigned_jwt(claims: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn the_assertion_names_the_client() {
        let jwt = unsigned_jwt(&json!({"sub": "c1", "iss": "c1"}));
        let body = format!(
            "client_assertion_type={}&client_assertion={jwt}",
            CLIENT_ASSERTION_TYPE.replace(':', "%3A")
        );
        let presented = extract(body.as_bytes()).unwrap().unwrap();
        assert_eq!(presented.client_id, "c1");
        assert_eq!(presented.method, NAME);
        assert_eq!(presented.assertion.as_deref(), Some(jwt.as_str()));
        assert_eq!(presented.secret, None);

        let same_id = format!("{body}&client_id=c1");
        assert!(extract(same_id.as_bytes()).unwrap().is_ok());
        let other_id = format!("{body}&client_id=c2");
        assert!(extract(other_id.as_bytes()).unwrap().is_err());
        assert!(extract(b"client_assertion=x.y.z").unwrap().is_err());
        let wrong_type = format!("client_assertion_type=saml&client_assertion={jwt}");
        assert!(extract(wrong_type.as_bytes()).unwrap().is_err());
        let no_sub = format!(
            "client_assertion_type={CLIENT_ASSERTION_TYPE}&client_assertion={}",
            unsigned_jwt(&json!({"iss": "c1"}))
        );
        assert!(extract(no_sub.as_bytes()).unwrap().is_err());
        assert!(extract(b"client_id=c1").is_none());
    }
}
