//! Importing an operator's existing signing key, so that a server moving to
//! Tessera keeps the `kid`s its live tokens carry.
//!
//! The PEM may hold a PKCS#1 `RSA PRIVATE KEY` (RFC 8017 §A.1.2), a SEC1
//! `EC PRIVATE KEY` (RFC 5915 §3) or a PKCS#8 `PRIVATE KEY` (RFC 5208 §5)
//! of either kind. The `rsa` and `p256` crates parse and check it; it is
//! then loaded into aws-lc and stored exactly like a generated key (PKCS#8
//! v1 DER, sealed under the key-encryption key, kid = RFC 7638 thumbprint).

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::DecodePrivateKey as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::der::asn1::{Any, ObjectIdentifier};
use rsa::pkcs8::der::{Decode as _, Tag, TagNumber, Tagged as _};
use rsa::traits::PublicKeyParts as _;

use super::keys::KeyMaterial;
use super::{KeyError, MasterKey, SigningAlg, SigningKeyRecord};
use crate::clock::UnixTime;

/// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used".
pub const MIN_RSA_BITS: u32 = 2048;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Why a PEM file cannot be imported. Every message is one line meant for
/// the operator.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "no private key found{found}: expected a PEM block BEGIN RSA PRIVATE KEY, \
         BEGIN EC PRIVATE KEY or BEGIN PRIVATE KEY"
    )]
    NoPrivateKey { found: String },
    #[error("the PEM holds {0} private keys: put the one to import in a file of its own")]
    SeveralKeys(usize),
    #[error(
        "the private key is encrypted: decrypt it first (openssl pkey -in FILE -out PLAIN.pem)"
    )]
    Encrypted,
    #[error("the {form} PEM block is malformed: {reason}")]
    Malformed { form: &'static str, reason: String },
    #[error("the RSA key has {0} bits: RS256 needs at least {MIN_RSA_BITS} (RFC 7518 §3.3)")]
    RsaTooSmall(u32),
    #[error("the EC key is on curve {0}: only P-256 keys (ES256) can be imported")]
    UnsupportedCurve(String),
    #[error("{0} keys cannot be imported: only RSA (RS256) and EC P-256 (ES256) keys")]
    UnsupportedKeyType(String),
    #[error(
        "a BEGIN {0} block cannot be imported: convert the key to PKCS#8 (BEGIN PRIVATE KEY) first"
    )]
    UnsupportedPem(String),
    #[error("--alg {requested} does not fit the key, which is an {actual} key")]
    AlgMismatch {
        requested: SigningAlg,
        actual: SigningAlg,
    },
    #[error("the key was rejected: {0}")]
    Rejected(String),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A parsed, checked key ready to be sealed and stored.
pub struct ImportedKey(KeyMaterial);

impl std::fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl ImportedKey {
    pub fn alg(&self) -> SigningAlg {
        self.0.alg()
    }

    /// The RFC 7638 thumbprint of the public key: the same `kid` any
    /// server that publishes this key under its thumbprint uses.
    pub fn kid(&self) -> &str {
        self.0.kid()
    }

    /// The record to store, in state `Next`, sealed like a generated key.
    pub fn seal(&self, master: &MasterKey, now: UnixTime) -> Result<SigningKeyRecord, KeyError> {
        self.0.seal(master, now)
    }
}

/// Parses the one private key in `pem`. `alg`, when given, must be the
/// algorithm the key is for.
pub fn from_pem(pem: &str, alg: Option<SigningAlg>) -> Result<ImportedKey, ImportError> {
    let blocks = pem_blocks(pem)?;
    let private: Vec<&PemBlock> = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .collect();
    let block = match private.as_slice() {
        [one] => *one,
        [] => {
            let found: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
            return Err(ImportError::NoPrivateKey {
                found: if found.is_empty() {
                    String::new()
                } else {
                    format!(" (the PEM holds {})", found.join(", "))
                },
            });
        }
        several => return Err(ImportError::SeveralKeys(several.len())),
    };
    // RFC 1421 encryption headers (`Proc-Type: 4,ENCRYPTED`) or PKCS#8
    // `ENCRYPTED PRIVATE KEY` (RFC 5958 §3).
    if block.has_headers || block.label == "ENCRYPTED PRIVATE KEY" {
        return Err(ImportError::Encrypted);
    }
    let material = match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            let der = block.der("PKCS#1")?;
            let key = rsa::PrivateKey::from_pkcs1_der(&der).map_err(|e| malformed("PKCS#1", e))?;
            rsa_material(&key)?
        }
        "EC PRIVATE KEY" => {
            let der = block.der("SEC1")?;
            if let Some(curve) = sec1_curve(&der)
                && curve != P256
            {
                return Err(ImportError::UnsupportedCurve(curve_name(&curve)));
            }
            let key = p256::SecretKey::from_sec1_der(&der).map_err(|e| malformed("SEC1", e))?;
            ec_material(&key)?
        }
        "PRIVATE KEY" => {
            let der = block.der("PKCS#8")?;
            let info = rsa::pkcs8::PrivateKeyInfoRef::try_from(der.as_slice())
                .map_err(|e| malformed("PKCS#8", e))?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => {
                    let key = rsa::PrivateKey::from_pkcs8_der(&der)
                        .map_err(|e| malformed("PKCS#8", e))?;
                    rsa_material(&key)?
                }
                EC_PUBLIC_KEY => {
                    let curve = info
                        .algorithm
                        .parameters_oid()
                        .map_err(|e| malformed("PKCS#8", e))?;
                    if curve != P256 {
                        return Err(ImportError::UnsupportedCurve(curve_name(&curve)));
                    }
                    let key = p256::SecretKey::from_pkcs8_der(&der)
                        .map_err(|e| malformed("PKCS#8", e))?;
                    ec_material(&key)?
                }
                other => return Err(ImportError::UnsupportedKeyType(key_type_name(&other))),
            }
        }
        other => return Err(ImportError::UnsupportedPem(other.to_string())),
    };
    if let Some(requested) = alg
        && requested != material.alg()
    {
        return Err(ImportError::AlgMismatch {
            requested,
            actual: material.alg(),
        });
    }
    Ok(ImportedKey(material))
}

fn malformed(form: &'static str, e: impl std::fmt::Display) -> ImportError {
    ImportError::Malformed {
        form,
        reason: e.to_string(),
    }
}

/// Checks the size, then hands aws-lc the key as PKCS#1 DER and takes it
/// back in the form generated keys are stored in.
fn rsa_material(key: &rsa::PrivateKey) -> Result<KeyMaterial, ImportError> {
    let bits = key.n().as_ref().bit_width_vartime();
    if bits < MIN_RSA_BITS {
        return Err(ImportError::RsaTooSmall(bits));
    }
    let der = key.to_pkcs1_der().map_err(|e| malformed("PKCS#1", e))?;
    let pair = aws_lc_rs::rsa::KeyPair::from_der(der.as_bytes())
        .map_err(|e| ImportError::Rejected(e.to_string()))?;
    Ok(KeyMaterial::from_rsa(&pair)?)
}

fn ec_material(key: &p256::SecretKey) -> Result<KeyMaterial, ImportError> {
    let der = key.to_sec1_der().map_err(|e| malformed("SEC1", e))?;
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|e| ImportError::Rejected(e.to_string()))?;
    Ok(KeyMaterial::from_ec(&pair)?)
}

/// The named curve in a SEC1 `ECPrivateKey`'s `[0] parameters`, when
/// present (RFC 5915 §3), so a key on another curve is named as such.
fn sec1_curve(der: &[u8]) -> Option<ObjectIdentifier> {
    let fields = Vec::<Any>::from_der(der).ok()?;
    let parameters = fields.iter().find(|f| {
        f.tag()
            == Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            }
    })?;
    ObjectIdentifier::from_der(parameters.value()).ok()
}

fn curve_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384".into(),
        "1.3.132.0.35" => "P-521".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        other => other.into(),
    }
}

fn key_type_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        other => format!("algorithm {other}"),
    }
}

/// One `-----BEGIN label-----` … `-----END label-----` block (RFC 7468).
struct PemBlock {
    label: String,
    /// RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED`.
    has_headers: bool,
    base64: String,
}

impl PemBlock {
    fn der(&self, form: &'static str) -> Result<Vec<u8>, ImportError> {
        STANDARD
            .decode(&self.base64)
            .map_err(|e| malformed(form, format!("not base64 ({e})")))
    }
}

/// Every PEM block in `text`; text around them (such as the explanatory
/// lines `openssl` writes) is ignored, as RFC 7468 §2 allows.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, ImportError> {
    let mut blocks = Vec::new();
    let mut open: Option<PemBlock> = None;
    for line in text.lines().map(str::trim) {
        match open.take() {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
                {
                    open = Some(PemBlock {
                        label: label.to_string(),
                        has_headers: false,
                        base64: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if let Some(label) = line
                    .strip_prefix("-----END ")
                    .and_then(|rest| rest.strip_suffix("-----"))
                {
                    if label != block.label {
                        return Err(ImportError::Malformed {
                            form: "PEM",
                            reason: format!("BEGIN {} ends with END {label}", block.label),
                        });
                    }
                    blocks.push(block);
                } else {
                    if line.contains(':') {
                        block.has_headers = true;
                    } else {
                        block.base64.push_str(line);
                    }
                    open = Some(block);
                }
            }
        }
    }
    if let Some(block) = open {
        return Err(ImportError::Malformed {
            form: "PEM",
            reason: format!("BEGIN {} has no END line", block.label),
        });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_around_blocks_is_ignored_and_labels_must_match() {
        let blocks = pem_blocks("Bag Attributes\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n-----BEGIN X-----\r\nAA\r\nAA==\r\n-----END X-----\r\n").unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "EC PARAMETERS");
        assert_eq!(blocks[1].base64, "AAAA==");
        assert!(matches!(
            pem_blocks("-----BEGIN A-----\nAA==\n-----END B-----\n"),
            Err(ImportError::Malformed { .. })
        ));
        assert!(matches!(
            pem_blocks("-----BEGIN A-----\nAA==\n"),
            Err(ImportError::Malformed { .. })
        ));
    }

    #[test]
    fn legacy_encrypted_pem_is_refused() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(from_pem(pem, None), Err(ImportError::Encrypted)));
    }

    #[test]
    fn a_public_key_alone_is_not_importable() {
        let pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = from_pem(pem, None).unwrap_err();
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
    }

    #[test]
    fn generated_pkcs8_round_trips_to_the_same_kid() {
        // aws-lc's own PKCS#8 for a fresh key imports to the same key.
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let original = KeyMaterial::from_ec(&pair).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        let imported = from_pem(&pem, Some(SigningAlg::ES256)).unwrap();
        assert_eq!(imported.kid(), original.kid());
        assert!(matches!(
            from_pem(&pem, Some(SigningAlg::RS256)),
            Err(ImportError::AlgMismatch { .. })
        ));
    }
}
