//! Passwords: argon2id (the `argon2` crate's defaults, m=19 MiB, t=2, p=1)
//! stored as PHC strings. Hashing and verifying always run on the blocking
//! pool so they never stall the async workers. Sign-ins verify through a
//! `PasswordHasher`: a bounded queue whose few hashing places each reuse one
//! 19 MiB work area, so a flood neither grows memory nor leaves it behind in
//! per-thread allocator arenas.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::crypto;
use crate::error::AppError;

/// The bounded queue every sign-in's password check goes through. At most
/// `concurrency` argon2 hashes (19 MiB each) run at once, and at most
/// `queue` more wait; past that a sign-in is refused at once as busy
/// (503 with Retry-After), so a sign-in flood costs neither unbounded
/// memory nor blocking threads.
pub struct PasswordHasher {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    /// One argon2 work area per hashing place, reused by every hash.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// The hashing queue is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password hashing queue is full")]
pub struct Busy;

/// A place in the queue, taken before any other work of a sign-in.
pub struct HashSlot {
    running: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    _admitted: OwnedSemaphorePermit,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
            memory: Arc::new(Mutex::new(Vec::with_capacity(concurrency))),
        }
    }

    /// A place in the queue, or `Busy` when it is full.
    pub fn reserve(&self) -> Result<HashSlot, Busy> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(HashSlot {
            running: Arc::clone(&self.running),
            memory: Arc::clone(&self.memory),
            _admitted: admitted,
        })
    }
}

impl HashSlot {
    /// `verify_password`, once a hashing place is free. The place is held
    /// by the blocking task itself, so a client that goes away does not
    /// free it before the hash is done.
    pub async fn verify(self, stored_hash: Option<String>, password: String) -> bool {
        let Ok(running) = Arc::clone(&self.running).acquire_owned().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            let _running = running;
            // A place is held, so a work area is free (or made, once).
            let mut blocks = match self.memory.lock() {
                Ok(mut pool) => pool.pop().unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let ok = verify_with_memory(stored_hash.as_deref(), password.as_bytes(), &mut blocks);
            if let Ok(mut pool) = self.memory.lock() {
                pool.push(blocks);
            }
            ok
        })
        .await
        .unwrap_or(false)
    }
}

/// Hashes `password` with argon2id and a fresh random 128-bit salt; returns
/// the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes()))
        .await
        .map_err(|e| AppError::internal(format!("password hashing task failed: {e}")))?
        .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches `stored_hash`. With no stored hash (an unknown
/// user) it still verifies against a dummy hash of the same cost and then
/// answers `false`, so the time taken does not reveal whether the username
/// exists. A malformed stored hash is `false`.
pub async fn verify_password(stored_hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        verify_blocking(stored_hash.as_deref(), password.as_bytes())
    })
    .await
    .unwrap_or(false)
}

fn hash_blocking(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&crypto::random_bytes::<16>())?;
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

/// `verify_blocking` with the caller's argon2 work area (grown once to the
/// hash's memory cost, then reused).
fn verify_with_memory(stored_hash: Option<&str>, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    match stored_hash {
        Some(stored) => matches_with_memory(stored, password, blocks),
        None => {
            if let Some(dummy) = dummy_hash() {
                // Spend the same work as a real check; the result is moot.
                std::hint::black_box(matches_with_memory(dummy, password, blocks));
            }
            false
        }
    }
}

/// Argon2's own verification, step by step, so the memory is ours: the
/// parameters, salt and version from the PHC string, the hash recomputed
/// into `blocks`, compared in constant time.
fn matches_with_memory(stored_hash: &str, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        // Neither the hash nor the password goes into the log.
        tracing::warn!("a stored password hash is not a valid PHC string");
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        tracing::warn!("a stored password hash is not a usable argon2 hash");
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
        .is_err()
    {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

fn verify_blocking(stored_hash: Option<&str>, password: &[u8]) -> bool {
    match stored_hash {
        Some(stored) => matches(stored, password),
        None => {
            if let Some(dummy) = dummy_hash() {
                // Spend the same work as a real check; the result is moot.
                std::hint::black_box(matches(dummy, password));
            }
            false
        }
    }
}

fn matches(stored_hash: &str, password: &[u8]) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(_) => {
            // Neither the hash nor the password goes into the log.
            tracing::warn!("a stored password hash is not a valid PHC string");
            false
        }
    }
}

/// A hash made with the same (default) parameters as real ones, computed
/// once, so checking against it costs what checking a real user costs.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| match hash_blocking(b"tessera: no such user") {
            Ok(hash) => Some(hash),
            Err(e) => {
                tracing::error!(error = %e, "cannot compute the dummy password hash");
                None
            }
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_with_our_memory_agrees_with_argon2() {
        let hash = hash_blocking(b"right").unwrap();
        let mut blocks = Vec::new();
        assert!(matches_with_memory(&hash, b"right", &mut blocks));
        assert!(!matches_with_memory(&hash, b"wrong", &mut blocks));
        assert!(!matches_with_memory(&hash, b"", &mut blocks));
        assert!(!matches_with_memory(
            "$argon2id$v=19$garbage",
            b"x",
            &mut blocks
        ));
        assert!(!verify_with_memory(
            None,
            b"tessera: no such user",
            &mut blocks
        ));
        // The work area was made once, at the hash's memory cost.
        assert_eq!(blocks.len(), Params::default().block_count());
    }

    #[tokio::test]
    async fn the_queue_refuses_past_its_bound() {
        let hasher = PasswordHasher::new(1, 1);
        let first = hasher.reserve().unwrap();
        let second = hasher.reserve().unwrap();
        assert_eq!(hasher.reserve().err(), Some(Busy));
        drop(first);
        let third = hasher.reserve().unwrap();
        drop((second, third));
        let hash = hash_password("pw".into()).await.unwrap();
        assert!(
            hasher
                .reserve()
                .unwrap()
                .verify(Some(hash), "pw".into())
                .await
        );
    }

    #[tokio::test]
    async fn roundtrip() {
        let hash = hash_password("correct horse battery staple".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(Some(hash), "correct horse battery staple".into()).await);
    }

    #[tokio::test]
    async fn salts_differ() {
        let a = hash_password("same".into()).await.unwrap();
        let b = hash_password("same".into()).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn wrong_password_is_false() {
        let hash = hash_password("right".into()).await.unwrap();
        assert!(!verify_password(Some(hash.clone()), "wrong".into()).await);
        assert!(!verify_password(Some(hash), "".into()).await);
    }

    #[tokio::test]
    async fn unknown_user_is_false() {
        assert!(!verify_password(None, "anything".into()).await);
        // Not even the dummy hash's own password gets in.
        assert!(!verify_password(None, "tessera: no such user".into()).await);
    }

    #[tokio::test]
    async fn malformed_hash_is_false() {
        assert!(!verify_password(Some(String::new()), "x".into()).await);
        assert!(!verify_password(Some("not a hash".into()), "not a hash".into()).await);
        assert!(!verify_password(Some("$argon2id$v=19$garbage".into()), "x".into()).await);
    }
}
