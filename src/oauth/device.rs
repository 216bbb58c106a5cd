//! The device authorization grant (RFC 8628), except its token-endpoint
//! half (`grants/device_code.rs`): the device authorization endpoint
//! (§3.1, §3.2), user codes (§6.1), and what the person's answer on the
//! `/device` page does. The person confirms through the ordinary stored
//! interaction (`oauth::interaction`): sign-in and consent work, and are
//! bound to the browser, exactly as for the code flow.

use serde::{Deserialize, Serialize};

use super::authorize::{AuthorizationRequest, Pending, Prompt};
use super::client_auth::{self, ClientAuthContext, PresentedCredentials};
use super::client_cache::ClientCache;
use super::grants::device_code;
use super::request::FormParams;
use super::response::{RedirectTarget, ResponseMode, ResponseType};
use crate::auth::session::LoginSession;
use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::{DeviceAuthorization, DeviceDecision};
use crate::error::{AppError, OAuthError};
use crate::store::{DeviceCodeStore, StoreError};

/// RFC 8628 §3.2 `expires_in`: how long the device code and user code live.
pub const EXPIRES_IN_SECS: i64 = 600;
/// RFC 8628 §3.2 `interval`: the least time between two polls at first.
pub const INTERVAL_SECS: i64 = 5;
/// RFC 8628 §3.5: what every `slow_down` adds to the interval.
pub const SLOW_DOWN_SECS: i64 = 5;

/// RFC 8628 §6.1: consonants only (no vowels, so no words), without the
/// look-alikes of digits.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes; guessing is rate-limited (`auth::throttle`).
const USER_CODE_LEN: usize = 8;
/// The longest `user_code` input looked at: anything longer is not a code.
pub const MAX_USER_CODE_INPUT: usize = 32;
/// How many fresh user codes to draw when one collides with a stored one.
const USER_CODE_ATTEMPTS: usize = 5;

/// RFC 8628 §3.2: the device authorization response.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A device's request waiting for the person's confirmation, as an
/// interaction stores it (`AuthorizationRequest::device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// The normalised user code (upper-case, no dash): shown on the
    /// consent page so the person can compare it with the device's.
    pub user_code: String,
}

impl DeviceRequest {
    /// The code as the device shows it, `XXXX-XXXX`.
    pub fn display_code(&self) -> String {
        display_user_code(&self.user_code)
    }
}

/// A fresh user code, normalised: uniform over the alphabet (bytes that
/// would bias it are drawn again).
fn new_user_code() -> String {
    // The largest multiple of the alphabet's size that a byte can reach.
    let unbiased_below = 256 - 256 % USER_CODE_ALPHABET.len();
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in crypto::random_bytes::<16>() {
            if usize::from(b) < unbiased_below && code.len() < USER_CODE_LEN {
                code.push(char::from(
                    USER_CODE_ALPHABET[usize::from(b) % USER_CODE_ALPHABET.len()],
                ));
            }
        }
    }
    code
}

/// `XXXX-XXXX` of a normalised code (RFC 8628 §6.1: easier to read).
pub fn display_user_code(normalised: &str) -> String {
    let (head, tail) = normalised.split_at(normalised.len().min(USER_CODE_LEN / 2));
    format!("{head}-{tail}")
}

/// What a person typed, as a stored code compares: upper-case, without
/// dashes and spaces (RFC 8628 §6.1). `None` when it cannot be a code.
pub fn normalise_user_code(input: &str) -> Option<String> {
    if input.len() > MAX_USER_CODE_INPUT {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The stored form of a normalised user code.
fn user_code_hash(normalised: &str) -> String {
    crypto::hash_secret(normalised)
}

/// `verification_uri_complete` (RFC 8628 §3.3.1) for the verification
/// page at `verification_uri`.
pub fn verification_uri_complete(verification_uri: &str, normalised: &str) -> String {
    format!(
        "{verification_uri}?user_code={}",
        display_user_code(normalised)
    )
}

/// RFC 8628 §3.1, §3.2: the device authorization endpoint. The client
/// authenticates as at the token endpoint; it must be registered for the
/// device grant; the scope is checked against its registered scopes.
pub async fn authorize_device(
    store: &dyn DeviceCodeStore,
    client_auth: &ClientAuthContext<'_>,
    credentials: Option<PresentedCredentials>,
    params: &FormParams,
    verification_uri: &str,
    now: UnixTime,
) -> Result<DeviceAuthorizationResponse, AppError> {
    let client = client_auth::authenticate(client_auth, credentials).await?;
    if !client.allows_grant(device_code::GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client is not registered for the {} grant",
            device_code::GRANT_TYPE
        ))
        .into());
    }
    let scope = super::client::scope_within_registered(&client, params.scope()?)?;
    let device_code = crypto::random_token();
    for _ in 0..USER_CODE_ATTEMPTS {
        let user_code = new_user_code();
        let record = DeviceAuthorization {
            device_code_hash: crypto::hash_secret(&device_code),
            user_code_hash: user_code_hash(&user_code),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            interval_secs: INTERVAL_SECS,
            last_polled_at: None,
            decision: DeviceDecision::Pending,
            consumed_at: None,
            created_at: now,
            expires_at: now + EXPIRES_IN_SECS,
        };
        match store.insert_device_code(&record).await {
            Ok(()) => {
                return Ok(DeviceAuthorizationResponse {
                    device_code,
                    verification_uri: verification_uri.to_string(),
                    verification_uri_complete: verification_uri_complete(
                        verification_uri,
                        &user_code,
                    ),
                    user_code: display_user_code(&user_code),
                    expires_in: EXPIRES_IN_SECS,
                    interval: INTERVAL_SECS,
                });
            }
            // A live code has this user code already: draw another.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::internal(
        "no free user code after several attempts",
    ))
}

/// The request the person is asked to confirm for user code `normalised`,
/// or `None` when no device is waiting with that code (unknown, answered,
/// expired, or its client deleted since).
pub async fn pending_confirmation(
    store: &dyn DeviceCodeStore,
    clients: &ClientCache,
    normalised: &str,
    now: UnixTime,
) -> Result<Option<Pending>, AppError> {
    let Some(device) = store
        .pending_device_code(&user_code_hash(normalised), now)
        .await?
    else {
        return Ok(None);
    };
    let Some(client) = clients.get(&device.client_id).await? else {
        return Ok(None);
    };
    Ok(Some(Pending {
        request: AuthorizationRequest {
            client_id: client.client_id.clone(),
            // The answer goes to the device code, never to a redirect URI:
            // these are inert.
            response_type: ResponseType::Code,
            target: RedirectTarget {
                redirect_uri: String::new(),
                mode: ResponseMode::Query,
                state: None,
            },
            redirect_uri_sent: false,
            scope: device.scope,
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            resources: Vec::new(),
            device: Some(DeviceRequest {
                user_code: normalised.to_string(),
            }),
        },
        client,
    }))
}

/// What the person's answer did to the device's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAnswer {
    /// Approved: the device's next poll gets the tokens.
    Approved,
    Denied,
    /// The code expired (or was answered in another tab) meanwhile:
    /// nothing changed.
    Expired,
}

/// Records the signed-in person's answer to `request` (their consent is
/// remembered by the caller).
pub async fn answer(
    store: &dyn DeviceCodeStore,
    request: &DeviceRequest,
    login: &LoginSession,
    allow: bool,
    now: UnixTime,
) -> Result<DeviceAnswer, AppError> {
    let hash = user_code_hash(&request.user_code);
    let changed = if allow {
        store
            .approve_device_code(
                &hash,
                &login.sub,
                login.auth_time,
                Some(login.sid.as_str()),
                now,
            )
            .await?
    } else {
        store.deny_device_code(&hash, now).await?
    };
    Ok(match (changed, allow) {
        (false, _) => DeviceAnswer::Expired,
        (true, true) => DeviceAnswer::Approved,
        (true, false) => DeviceAnswer::Denied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_alphabet_and_read_back() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), USER_CODE_LEN + 1);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(normalise_user_code(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalise_user_code(&shown.to_lowercase()).as_deref(),
                Some(code.as_str())
            );
        }
    }

    #[test]
    fn entries_are_case_dash_and_space_tolerant_and_bounded() {
        assert_eq!(
            normalise_user_code(" bcdf ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDFGHJ"), None, "too short");
        assert_eq!(normalise_user_code("BCDFGHJKL"), None, "too long");
        assert_eq!(normalise_user_code("BCDF-GHJ0"), None, "a digit");
        assert_eq!(normalise_user_code("ABCD-EFGH"), None, "vowels");
        assert_eq!(normalise_user_code(&"-".repeat(10_000)), None);
        assert_eq!(normalise_user_code("ＢCDFGHJK"), None, "full-width");
    }

    #[test]
    fn the_complete_uri_carries_the_displayed_code() {
        assert_eq!(
            verification_uri_complete("https://id.example/device", "BCDFGHJK"),
            "https://id.example/device?user_code=BCDF-GHJK"
        );
    }
}
