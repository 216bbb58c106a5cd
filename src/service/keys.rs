//! Signing keys: list, rotate, import, export. The rules shared by the CLI
//! and (next) the admin API. Every write goes through the store's locked
//! `update_signing_keys`, so it is atomic, ordered with other instances'
//! rotations, and reaches running servers through the change counters; and
//! every write first checks that the key-encryption key opens the keys
//! already stored, so a wrong one is refused before anything is written.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::jose::import::{self, ImportError, ImportedKey};
use crate::jose::jwks::Jwks;
use crate::jose::rotation::{self, KeyChanges, RotationPolicy, Trigger};
use crate::jose::{KeyError, KeyState, MasterKey, SigningAlg, SigningKeyRecord, keys};
use crate::store::{KeyStore, StoreError};

use super::ServiceError;

/// A failed key write as the caller should see it: a key-encryption key
/// that cannot open the stored keys is `Invalid` (the operator's input), a
/// kid already stored is a `Conflict`, anything else is internal.
pub fn key_write_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::Key(e @ KeyError::WrongMasterKey { .. }) => {
            ServiceError::Invalid(e.to_string())
        }
        StoreError::Key(e @ KeyError::KidExists(_)) => ServiceError::Conflict(e.to_string()),
        other => other.into(),
    }
}

/// What `tessera keys list` shows of a key: never the private part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
}

impl From<&SigningKeyRecord> for KeySummary {
    fn from(k: &SigningKeyRecord) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
        }
    }
}

pub async fn list(store: &dyn KeyStore) -> Result<Vec<KeySummary>, ServiceError> {
    let keys = store.signing_keys().await?;
    Ok(keys.iter().map(KeySummary::from).collect())
}

/// The public JWKS, byte for byte the document `/jwks` serves for the same
/// stored keys. Needs no key-encryption key.
pub async fn export_public(store: &dyn KeyStore) -> Result<Jwks, ServiceError> {
    let keys = store.signing_keys().await?;
    Jwks::build(&keys).map_err(ServiceError::internal)
}

/// Plans and applies a rotation at `now` in one locked store transaction:
/// the server's schedule, its start-up and `tessera keys rotate` all go
/// through here. A `master` that cannot open the stored keys fails with
/// `KeyError::WrongMasterKey` and writes nothing. The error is the store's,
/// for the server; `key_write_error` turns it into the caller's.
pub async fn rotate(
    store: &dyn KeyStore,
    master: &MasterKey,
    policy: RotationPolicy,
    now: UnixTime,
    trigger: Trigger,
) -> Result<KeyChanges, StoreError> {
    let planner = |keys: &[SigningKeyRecord]| {
        master.check_opens(keys)?;
        rotation::plan(keys, now, policy, trigger, &mut |alg| {
            keys::generate(alg, master, now)
        })
    };
    store.update_signing_keys(&planner).await
}

/// The state an imported key starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportAs {
    /// Published in the JWKS; the rotation schedule promotes it once every
    /// cache has had time to see it. It replaces the `next` key of its
    /// algorithm, which retires without ever having signed.
    #[default]
    Next,
    /// Signs at once; the current key of its algorithm retires (and stays
    /// published until its tokens have expired).
    Current,
}

impl std::str::FromStr for ImportAs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next" => Ok(ImportAs::Next),
            "current" => Ok(ImportAs::Current),
            _ => Err(format!("unsupported key state {s:?} (use next or current)")),
        }
    }
}

/// Parses the one private key in a PEM document (PKCS#1, SEC1 or PKCS#8);
/// `alg`, when given, must be what the key is for. A key that cannot be
/// used is `Invalid`, with the reason.
pub fn parse_pem(pem: &str, alg: Option<SigningAlg>) -> Result<ImportedKey, ServiceError> {
    import::from_pem(pem, alg).map_err(|e| match e {
        ImportError::Key(e) => ServiceError::internal(e),
        e => ServiceError::Invalid(e.to_string()),
    })
}

/// The outcome of an import: the stored key and what to tell the operator.
#[derive(Debug)]
pub struct Imported {
    pub key: KeySummary,
    pub warnings: Vec<String>,
}

/// Stores `key`, sealed under `master`, in the state `state`. A kid that
/// is already stored is a `Conflict`; a `master` that cannot open the
/// stored keys is `Invalid`; either way nothing is written.
pub async fn import(
    store: &dyn KeyStore,
    master: &MasterKey,
    key: &ImportedKey,
    state: ImportAs,
    now: UnixTime,
) -> Result<Imported, ServiceError> {
    let mut record = key.seal(master, now).map_err(ServiceError::internal)?;
    if state == ImportAs::Current {
        record.state = KeyState::Current;
        record.activated_at = Some(now);
    }
    let planner = |keys: &[SigningKeyRecord]| {
        master.check_opens(keys)?;
        if keys.iter().any(|k| k.kid == record.kid) {
            return Err(KeyError::KidExists(record.kid.clone()));
        }
        let mut changes = KeyChanges::default();
        // One key per algorithm signs and one waits to: the key the import
        // replaces retires, and stays published until the retention period
        // has passed (a replaced `next` key never signed anything).
        for replaced in keys
            .iter()
            .filter(|k| k.alg == record.alg && k.state == record.state)
        {
            let mut retired = replaced.clone();
            retired.state = KeyState::Retired;
            retired.retired_at = Some(now);
            changes.update.push(retired);
        }
        if record.state == KeyState::Current {
            changes.warnings.push(format!(
                "the imported {} key {} signs at once: resource servers whose cached JWKS \
                 lacks it may reject its tokens until they refetch",
                record.alg, record.kid
            ));
        }
        changes.insert.push(record.clone());
        Ok(changes)
    };
    let changes = store
        .update_signing_keys(&planner)
        .await
        .map_err(key_write_error)?;
    Ok(Imported {
        key: KeySummary::from(&record),
        warnings: changes.warnings,
    })
}
