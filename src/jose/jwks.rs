//! The JWKS document (RFC 7517 §5), serialized once per key change and
//! served with a strong ETag.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{KeyError, SigningKeyRecord};
use crate::crypto;

pub struct Jwks {
    pub body: bytes::Bytes,
    pub etag: String,
}

impl Jwks {
    /// Every stored key is published: `next` so caches learn it before it
    /// signs, `current`, and `retired` until its tokens have expired.
    pub fn build(records: &[SigningKeyRecord]) -> Result<Self, KeyError> {
        let mut sorted: Vec<&SigningKeyRecord> = records.iter().collect();
        sorted.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let keys = sorted
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.public_jwk))
            .collect::<Result<Vec<_>, _>>()?;
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys }))?;
        let etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(&crypto::sha256(&body)[..16])
        );
        Ok(Self {
            body: body.into(),
            etag,
        })
    }
}
