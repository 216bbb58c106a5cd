//! Signing key material: generation, the public JWK, and encryption of the
//! private part at rest (AES-256-GCM under the key-encryption key).

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::json;

use super::{KeyError, SigningAlg};
use crate::clock::UnixTime;
use crate::crypto;

/// Where a key is in its life: `Next` is published but does not sign yet,
/// `Current` signs, `Retired` is published so that tokens it signed still
/// verify until they expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Current,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "current" => Some(KeyState::Current),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored: the private key is PKCS#8 DER sealed with the
/// key-encryption key; the public JWK is plain JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
}

/// The key-encryption key (KEK) that seals private signing keys.
pub struct MasterKey(LessSafeKey, hkdf::Prk);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::MasterKey(format!(
                "must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::MasterKey("rejected by AES-256-GCM".into()))?;
        // 32 uniformly random bytes already are a pseudorandom key, so
        // `derive_key` needs no HKDF-Extract step (RFC 5869 §3.3).
        let derivation = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, bytes);
        Ok(Self(LessSafeKey::new(key), derivation))
    }

    /// An HMAC-SHA256 key for one purpose, named by `label`, derived from
    /// this key by HKDF-Expand (RFC 5869 §2.3) with the label as `info`: it
    /// is as secret as the key-encryption key, and knowing it reveals
    /// neither that key nor a key derived for another label.
    pub fn derive_key(&self, label: &str) -> Result<hmac::Key, KeyError> {
        let info = [label.as_bytes()];
        let okm = self
            .1
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| KeyError::Crypto("HKDF-Expand"))?;
        Ok(hmac::Key::from(okm))
    }

    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
            .map_err(|_| KeyError::MasterKey("not valid base64".into()))?;
        Self::from_bytes(&bytes)
    }

    /// Reads `dir/master.key`, creating it (mode 0600, in a directory of
    /// mode 0700) on first start. A `dir` that others may read or enter is
    /// tightened to 0700 first: it holds the one secret that opens every
    /// stored private key.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("master.key");
        create_private_dir(dir)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = crypto::random_bytes::<32>();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(|e| {
                    KeyError::MasterKey(format!("cannot create {}: {e}", path.display()))
                })?;
                writeln!(file, "{}", STANDARD.encode(bytes)).map_err(|e| {
                    KeyError::MasterKey(format!("cannot write {}: {e}", path.display()))
                })?;
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(KeyError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Fails unless this key-encryption key opens one stored key of each
    /// algorithm (the current one when there is one): run before writing
    /// keys, so a wrong KEK is refused instead of planting keys that the
    /// rest could not be read with.
    pub fn check_opens(&self, keys: &[SigningKeyRecord]) -> Result<(), KeyError> {
        for alg in SigningAlg::ALL {
            let sample = keys
                .iter()
                .filter(|k| k.alg == alg)
                .max_by_key(|k| (k.state == KeyState::Current, k.created_at));
            if let Some(key) = sample {
                self.open(&key.kid, &key.private_key)?;
            }
        }
        Ok(())
    }

    /// nonce || ciphertext || tag; the kid is bound as associated data so a
    /// sealed key cannot be swapped onto another row.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let nonce_bytes = crypto::random_bytes::<NONCE_LEN>();
        let mut in_out = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| KeyError::Crypto("seal"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let corrupt = |reason: &str| KeyError::Corrupt {
            kid: kid.to_string(),
            reason: reason.to_string(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(corrupt("too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| KeyError::WrongMasterKey {
                kid: kid.to_string(),
            })?;
        Ok(plaintext.to_vec())
    }
}

/// Creates `dir` with mode 0700 (missing parents get the usual mode), or
/// tightens an existing `dir` that group or others can access to 0700. A
/// directory we may not change (owned by another account, mounted
/// read-only) is left as it is, with a warning: the file's own mode still
/// protects the key.
fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let cannot =
        |e: std::io::Error| KeyError::MasterKey(format!("cannot create {}: {e}", dir.display()));
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(cannot)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(cannot(e)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = std::fs::metadata(dir)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false);
        if loose
            && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "the key directory is open to other accounts and could not be restricted to mode 0700"
            );
        }
    }
    Ok(())
}

/// Generates a fresh key pair in state `Next`.
pub fn generate(
    alg: SigningAlg,
    master: &MasterKey,
    now: UnixTime,
) -> Result<SigningKeyRecord, KeyError> {
    let material = match alg {
        SigningAlg::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| KeyError::Crypto("RSA key generation"))?;
            KeyMaterial::from_rsa(&pair)?
        }
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| KeyError::Crypto("P-256 key generation"))?;
            KeyMaterial::from_ec(&pair)?
        }
    };
    material.seal(master, now)
}

/// A key pair as Tessera stores it, before sealing: the PKCS#8 v1 DER that
/// `KeySet::load` parses, the public JWK, and its RFC 7638 thumbprint as
/// `kid`. Generated and imported keys both go through here, so they are
/// stored and identified the same way.
pub(crate) struct KeyMaterial {
    alg: SigningAlg,
    pkcs8: Vec<u8>,
    jwk: serde_json::Value,
    kid: String,
}

impl KeyMaterial {
    pub(crate) fn from_rsa(pair: &aws_lc_rs::rsa::KeyPair) -> Result<Self, KeyError> {
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(pair)
            .map_err(|_| KeyError::Crypto("RSA PKCS#8 encoding"))?;
        let public = pair.public_key();
        // RFC 7518 §6.3.1: unsigned big-endian, no leading zero octets.
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        Self::new(
            SigningAlg::RS256,
            der.as_ref().to_vec(),
            json!({"kty": "RSA", "e": e, "n": n}),
        )
    }

    pub(crate) fn from_ec(pair: &EcdsaKeyPair) -> Result<Self, KeyError> {
        let der = pair
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto("P-256 PKCS#8 encoding"))?;
        // Uncompressed SEC1 point: 0x04 || x || y (RFC 7518 §6.2.1.2).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError::Crypto("unexpected P-256 point encoding"));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        Self::new(
            SigningAlg::ES256,
            der.as_ref().to_vec(),
            json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}),
        )
    }

    /// `jwk` holds exactly the members RFC 7638 §3.2 requires, so its
    /// thumbprint is taken before `kid`, `alg` and `use` are added.
    fn new(alg: SigningAlg, pkcs8: Vec<u8>, mut jwk: serde_json::Value) -> Result<Self, KeyError> {
        let kid = thumbprint(&jwk)?;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        Ok(Self {
            alg,
            pkcs8,
            jwk,
            kid,
        })
    }

    pub(crate) fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The record in state `Next`, the private key sealed under `master`
    /// with the kid as associated data.
    pub(crate) fn seal(
        &self,
        master: &MasterKey,
        now: UnixTime,
    ) -> Result<SigningKeyRecord, KeyError> {
        Ok(SigningKeyRecord {
            private_key: master.seal(&self.kid, &self.pkcs8)?,
            kid: self.kid.clone(),
            alg: self.alg,
            state: KeyState::Next,
            public_jwk: serde_json::to_string(&self.jwk)?,
            created_at: now,
            activated_at: None,
            retired_at: None,
        })
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in
/// lexicographic order. `jwk` holds exactly those members, and serde_json
/// without `preserve_order` serializes object keys sorted.
fn thumbprint(jwk: &serde_json::Value) -> Result<String, KeyError> {
    let canonical = serde_json::to_vec(jwk)?;
    Ok(URL_SAFE_NO_PAD.encode(crypto::sha256(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let kek = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal("kid-1", b"secret").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"secret");
        assert!(kek.open("kid-2", &sealed).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_directory_is_private_and_a_loose_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let id: [u8; 8] = crypto::random_bytes();
        let root = std::env::temp_dir().join(format!("tessera-kek-{}", URL_SAFE_NO_PAD.encode(id)));
        let dir = root.join("keys");

        let created = MasterKey::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("master.key")), 0o600);
        let sealed = created.seal("kid", b"secret").unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let loaded = MasterKey::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "tightened");
        assert_eq!(
            loaded.open("kid", &sealed).unwrap(),
            b"secret",
            "the same key"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn check_opens_refuses_another_kek() {
        let kek = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let keys: Vec<SigningKeyRecord> = SigningAlg::ALL
            .iter()
            .map(|alg| generate(*alg, &kek, 100).unwrap())
            .collect();
        kek.check_opens(&keys).unwrap();
        kek.check_opens(&[]).unwrap();
        let other = MasterKey::from_bytes(&[2u8; 32]).unwrap();
        assert!(matches!(
            other.check_opens(&keys),
            Err(KeyError::WrongMasterKey { kid }) if kid == keys[0].kid
        ));
    }

    #[test]
    fn generated_jwks_carry_only_public_parameters() {
        let kek = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        for alg in SigningAlg::ALL {
            let key = generate(alg, &kek, 100).unwrap();
            let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk).unwrap();
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwk.get(private).is_none(), "{alg}: {private} leaked");
            }
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
