//! Interactions: an authorization request that needs the person (sign-in,
//! consent) is validated once, stored, and continued by id on any instance.
//! Forms carry only the id. The interaction is bound to the browser that
//! started it through a random browser cookie (only its SHA-256 is stored),
//! and its forms carry a CSRF token derived from that cookie and the id, so
//! neither another browser nor another site can continue it.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::authorize::{AuthorizationRequest, Pending};
use super::client_cache::ClientCache;
use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::Interaction;
use crate::error::AppError;
use crate::store::InteractionStore;

/// What interactions are kept with.
pub struct Interactions<'a> {
    pub store: &'a dyn InteractionStore,
    pub clients: &'a ClientCache,
    /// How long a person has to finish signing in and consenting.
    pub ttl_secs: i64,
}

/// A stored interaction, continued: the request and who signed in during it.
pub struct Resumed {
    pub interaction: Interaction,
    pub pending: Pending,
}

/// The CSRF token of `interaction_id`'s forms in the browser holding
/// `browser_secret`: recomputed on every request, never stored in clear.
pub fn csrf_token(browser_secret: &str, interaction_id: &str) -> String {
    crypto::hash_secret(&format!("csrf.{browser_secret}.{interaction_id}"))
}

/// The CSRF token of the `/device` code-entry form in the browser holding
/// `browser_secret`. That form comes before any interaction, so the token
/// is derived as an interaction's is, with a fixed name in place of the id.
pub fn device_entry_csrf_token(browser_secret: &str) -> String {
    csrf_token(browser_secret, DEVICE_ENTRY_FORM)
}

/// Whether a `/device` form's `csrf_token` is the one of this browser.
pub fn device_entry_csrf_matches(browser_secret: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| {
        bool::from(
            device_entry_csrf_token(browser_secret)
                .as_bytes()
                .ct_eq(p.as_bytes()),
        )
    })
}

/// Stands for the interaction id in the `/device` form's CSRF token; never
/// an interaction id (those are 43 base64url characters).
const DEVICE_ENTRY_FORM: &str = "device-entry";

impl Interactions<'_> {
    /// Stores `pending` for the browser holding `browser_secret`; returns
    /// the new interaction's id.
    pub async fn begin(
        &self,
        pending: &Pending,
        browser_secret: &str,
        now: UnixTime,
    ) -> Result<String, AppError> {
        let id = crypto::random_token();
        let request = serde_json::to_string(&pending.request)
            .map_err(|e| AppError::internal(format!("interaction: {e}")))?;
        self.store
            .insert_interaction(&Interaction {
                client_id: pending.client.client_id.clone(),
                request,
                browser_hash: crypto::hash_secret(browser_secret),
                csrf_hash: crypto::hash_secret(&csrf_token(browser_secret, &id)),
                sub: None,
                auth_time: None,
                amr: Vec::new(),
                acr: None,
                created_at: now,
                expires_at: now + self.ttl_secs,
                id: id.clone(),
            })
            .await?;
        Ok(id)
    }

    /// The interaction `id` if it exists, has not expired, belongs to this
    /// browser and its client is still registered. Anything else is `None`
    /// (the person sees the friendly "form expired" page).
    pub async fn resume(
        &self,
        id: &str,
        browser_secret: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<Resumed>, AppError> {
        let Some(browser_secret) = browser_secret else {
            return Ok(None);
        };
        let Some(interaction) = self.store.interaction(id, now).await? else {
            return Ok(None);
        };
        let presented = crypto::hash_secret(browser_secret);
        if !bool::from(
            presented
                .as_bytes()
                .ct_eq(interaction.browser_hash.as_bytes()),
        ) {
            return Ok(None);
        }
        let request: AuthorizationRequest = serde_json::from_str(&interaction.request)
            .map_err(|e| AppError::internal(format!("stored interaction is unreadable: {e}")))?;
        let Some(client) = self.clients.get(&interaction.client_id).await? else {
            return Ok(None);
        };
        Ok(Some(Resumed {
            pending: Pending {
                client: Arc::clone(&client),
                request,
            },
            interaction,
        }))
    }

    /// Whether a form's `csrf_token` is the one of `interaction` in this browser.
    pub fn csrf_matches(
        interaction: &Interaction,
        browser_secret: &str,
        presented: Option<&str>,
    ) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        let expected = csrf_token(browser_secret, &interaction.id);
        bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
            && bool::from(
                crypto::hash_secret(presented)
                    .as_bytes()
                    .ct_eq(interaction.csrf_hash.as_bytes()),
            )
    }

    pub async fn record_login(
        &self,
        id: &str,
        sub: &str,
        auth_time: UnixTime,
        amr: &[String],
        now: UnixTime,
    ) -> Result<bool, AppError> {
        Ok(self
            .store
            .record_interaction_login(id, sub, auth_time, amr, None, now)
            .await?)
    }

    /// Ends the interaction; `false` when another request already did (a
    /// form submitted twice), so exactly one answer reaches the client.
    pub async fn finish(&self, id: &str) -> Result<bool, AppError> {
        Ok(self.store.finish_interaction(id).await?)
    }
}
