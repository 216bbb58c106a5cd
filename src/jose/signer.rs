//! The in-memory key set a server signs and verifies with. It is built from
//! the stored keys once per key change, so private keys are decrypted and
//! parsed once, not per token.

use std::collections::HashMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::jwks::Jwks;
use super::{KeyError, KeyState, MasterKey, SigningAlg, SigningKeyRecord};
use crate::clock::UnixTime;

enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

struct Signer {
    kid: String,
    alg: SigningAlg,
    key: PrivateKey,
}

struct Verifier {
    alg: SigningAlg,
    key: DecodingKey,
}

pub struct KeySet {
    signers: HashMap<SigningAlg, Signer>,
    verifiers: HashMap<String, Verifier>,
    jwks: Jwks,
    rng: SystemRandom,
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

impl KeySet {
    /// Decrypts and parses the current keys, and prepares a verifier and a
    /// JWKS entry for every published key (next, current and retired).
    pub fn load(records: &[SigningKeyRecord], master: &MasterKey) -> Result<Self, KeyError> {
        let mut signers = HashMap::new();
        let mut verifiers = HashMap::new();
        for record in records {
            let jwk: serde_json::Value = serde_json::from_str(&record.public_jwk)?;
            let corrupt = |reason: &str| KeyError::Corrupt {
                kid: record.kid.clone(),
                reason: reason.to_string(),
            };
            let field = |name: &str| {
                jwk.get(name)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| corrupt("public JWK lacks a parameter"))
            };
            let decoding = match record.alg {
                SigningAlg::RS256 => DecodingKey::from_rsa_components(field("n")?, field("e")?),
                SigningAlg::ES256 => DecodingKey::from_ec_components(field("x")?, field("y")?),
            }
            .map_err(|_| corrupt("public JWK is not a valid key"))?;
            verifiers.insert(
                record.kid.clone(),
                Verifier {
                    alg: record.alg,
                    key: decoding,
                },
            );
            if record.state == KeyState::Current {
                let der = master.open(&record.kid, &record.private_key)?;
                let key = match record.alg {
                    SigningAlg::RS256 => PrivateKey::Rsa(
                        RsaKeyPair::from_pkcs8(&der).map_err(|_| corrupt("bad RSA PKCS#8"))?,
                    ),
                    SigningAlg::ES256 => PrivateKey::Ec(
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                            .map_err(|_| corrupt("bad P-256 PKCS#8"))?,
                    ),
                };
                // Should two keys claim `current` (only possible by hand),
                // the one activated last signs.
                let newer = signers
                    .get(&record.alg)
                    .map(|s: &Signer| {
                        records
                            .iter()
                            .find(|r| r.kid == s.kid)
                            .and_then(|r| r.activated_at)
                            < record.activated_at
                    })
                    .unwrap_or(true);
                if newer {
                    signers.insert(
                        record.alg,
                        Signer {
                            kid: record.kid.clone(),
                            alg: record.alg,
                            key,
                        },
                    );
                }
            }
        }
        Ok(Self {
            signers,
            verifiers,
            jwks: Jwks::build(records)?,
            rng: SystemRandom::new(),
        })
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The kid that currently signs for `alg`.
    pub fn current_kid(&self, alg: SigningAlg) -> Option<&str> {
        self.signers.get(&alg).map(|s| s.kid.as_str())
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the current key
    /// for `alg`; `typ` is the media type (`at+jwt` per RFC 9068 §2.1, `JWT`).
    pub fn sign<T: Serialize>(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &T,
    ) -> Result<String, KeyError> {
        let signer = self.signers.get(&alg).ok_or(KeyError::NoSigningKey(alg))?;
        let header = JwsHeader {
            alg: signer.alg.as_str(),
            typ,
            kid: &signer.kid,
        };
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = match &signer.key {
            PrivateKey::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, jws.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Crypto("RS256 signature"))?;
                sig
            }
            PrivateKey::Ec(pair) => pair
                .sign(&self.rng, jws.as_bytes())
                .map_err(|_| KeyError::Crypto("ES256 signature"))?
                .as_ref()
                .to_vec(),
        };
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }

    /// Verifies a JWS we issued: a known `kid`, the algorithm that key is
    /// for (no `alg` confusion, no `none`), the expected `typ`, our `iss`,
    /// and `exp` against our clock (`now`; `None` accepts expired tokens,
    /// as an `id_token_hint` may be). Any failure is simply "not valid".
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        now: Option<UnixTime>,
    ) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let verifier = self.verifiers.get(header.kid.as_deref()?)?;
        let alg = match verifier.alg {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
        };
        if header.alg != alg || !header.typ.as_deref()?.eq_ignore_ascii_case(typ) {
            return None;
        }
        let mut validation = Validation::new(alg);
        // Expiry is checked below against the Clock, not the system time.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &verifier.key, &validation).ok()?;
        let exp = data.claims.get("exp")?.as_i64()?;
        if now.is_some_and(|now| exp <= now) {
            return None;
        }
        serde_json::from_value(data.claims).ok()
    }
}
