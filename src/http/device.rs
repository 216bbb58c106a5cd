//! The device authorization grant (RFC 8628) over HTTP: the device's
//! `POST /device_authorization` (§3.1), and the person's `/device` page
//! (§3.3) where they enter the user code. A known code becomes a stored
//! interaction, continued by the ordinary login and consent pages
//! (`http/authorize.rs`); their answer ends on [`answered_page`].

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::authorize::{interaction_url, redirect_to};
use super::browser::{self, Binding};
use super::client_addr::ClientAddr;
use super::form::{OAuthForm, no_store_json};
use super::mount;
use super::pages::{self, DeviceDonePage, DevicePage};
use crate::auth::throttle::{self, ThrottleDecision};
use crate::endpoints::path;
use crate::error::AppError;
use crate::oauth::device::{self, DeviceAnswer, MAX_USER_CODE_INPUT, normalise_user_code};
use crate::oauth::interaction;
use crate::oauth::request::FormParams;
use crate::state::AppState;

/// The form field (and `verification_uri_complete` parameter) of the code.
const USER_CODE_FIELD: &str = "user_code";

const UNKNOWN_CODE: &str =
    "That code is not valid or has expired. Check the code on your device and try again.";

/// RFC 8628 §3.1, §3.2: a device asks for a device code and a user code.
pub async fn device_authorization(State(state): State<AppState>, form: OAuthForm) -> Response {
    let result = device::authorize_device(
        &*state.store,
        &state.client_auth(&state.endpoints.device_authorization),
        form.credentials.clone(),
        &form.params,
        &state.endpoints.device_verification,
        state.clock.now(),
    )
    .await;
    form.answer(result.map(no_store_json))
}

/// The code-entry form, prefilled from `verification_uri_complete`
/// (RFC 8628 §3.3.1); the person still confirms it by submitting.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match FormParams::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::bad_request(&e.description),
    };
    let prefilled = params
        .get(USER_CODE_FIELD)
        .and_then(normalise_user_code)
        .map(|code| device::display_user_code(&code))
        .unwrap_or_default();
    let binding = Binding::of(&headers);
    let page = entry_page(&binding.secret, prefilled, None, StatusCode::OK);
    binding.set(page, state.config.issuer_is_https())
}

/// The submitted code: throttled per client address like passwords; a
/// waiting device's code starts the interaction the person confirms in.
pub async fn post(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = match FormParams::parse(&body) {
            Ok(f) => f,
            Err(e) => return Ok(pages::bad_request(&e.description)),
        };
        let Some(secret) = browser::secret(&headers) else {
            return Ok(pages::form_expired());
        };
        if !interaction::device_entry_csrf_matches(&secret, form.get("csrf_token")) {
            return Ok(pages::form_expired());
        }
        let typed = form.get(USER_CODE_FIELD).unwrap_or_default();
        let typed_back: String = typed.chars().take(MAX_USER_CODE_INPUT).collect();
        let throttle = state.throttle();
        // A locked address is refused before the code is looked at, so a
        // right code changes nothing either.
        if let ThrottleDecision::Locked { retry_after_secs } =
            throttle::check_user_code(&throttle, address).await?
        {
            return Ok(locked_page(&secret, typed_back, retry_after_secs));
        }
        let now = state.clock.now();
        let pending = match normalise_user_code(typed) {
            Some(code) => {
                device::pending_confirmation(&*state.store, &state.clients, &code, now).await?
            }
            None => None,
        };
        let Some(pending) = pending else {
            return Ok(
                match throttle::user_code_failed(&throttle, address).await? {
                    ThrottleDecision::Locked { retry_after_secs } => {
                        locked_page(&secret, typed_back, retry_after_secs)
                    }
                    ThrottleDecision::Allowed => entry_page(
                        &secret,
                        typed_back,
                        Some(UNKNOWN_CODE.into()),
                        StatusCode::BAD_REQUEST,
                    ),
                },
            );
        };
        let id = state.interactions().begin(&pending, &secret, now).await?;
        Ok::<_, AppError>(redirect_to(&interaction_url(
            &mount::url(path::AUTHORIZATION),
            &id,
        )))
    }
    .await;
    result.unwrap_or_else(|e| pages::internal_error("device code entry failed", &e))
}

fn entry_page(
    browser_secret: &str,
    user_code: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    pages::render(
        status,
        &DevicePage {
            user_code,
            max_len: MAX_USER_CODE_INPUT,
            error,
            csrf_token: interaction::device_entry_csrf_token(browser_secret),
            action: mount::url(path::DEVICE_VERIFICATION),
        },
        &[],
    )
}

/// 429 with Retry-After: too many wrong codes from this address.
fn locked_page(browser_secret: &str, user_code: String, retry_after_secs: i64) -> Response {
    let minutes = (retry_after_secs + 59) / 60;
    let message = format!(
        "Too many wrong codes were entered. For your security, code entry is paused; \
         try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut response = entry_page(
        browser_secret,
        user_code,
        Some(message),
        StatusCode::TOO_MANY_REQUESTS,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The page after the person answered a device's request on the consent
/// page.
pub fn answered_page(answer: DeviceAnswer) -> Response {
    let (status, approved, title, message) = match answer {
        DeviceAnswer::Approved => (
            StatusCode::OK,
            true,
            "Device connected",
            "You can return to your device: it finishes signing in by itself.",
        ),
        DeviceAnswer::Denied => (
            StatusCode::OK,
            false,
            "Device not connected",
            "You denied the request, so the device was not given access.",
        ),
        DeviceAnswer::Expired => (
            StatusCode::BAD_REQUEST,
            false,
            "This code has expired",
            "The code expired or was already answered. Start again on your device.",
        ),
    };
    pages::render(
        status,
        &DeviceDonePage {
            approved,
            title: title.into(),
            message: message.into(),
        },
        &[],
    )
}
