//! POST /login?interaction=ID: the login form. The sign-in itself is the
//! `auth::signin` service; this handler checks the form belongs to the
//! interaction and this browser, and renders the outcome.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tower_sessions::Session;

use super::authorize::{INTERACTION_PARAM, interaction_url, login_page, redirect_to};
use super::client_addr::ClientAddr;
use super::origin::Origin;
use super::{browser, metrics, mount, pages, session};
use crate::auth::session::LoginSession;
use crate::auth::signin::{AMR_PASSWORD, SignInOutcome};
use crate::crypto;
use crate::endpoints::path;
use crate::error::AppError;
use crate::oauth::interaction::Interactions;
use crate::oauth::request::FormParams;
use crate::service::audit::{Actor, AuditEvent, AuditKind, AuditSink, RequestOrigin};
use crate::state::AppState;

const BAD_CREDENTIALS: &str = "The username or password is incorrect.";
const BUSY: &str = "Too many people are signing in right now. Please try again in a moment.";

fn locked_message(retry_after_secs: i64) -> String {
    let minutes = (retry_after_secs + 59) / 60;
    format!(
        "Too many failed sign-in attempts. For your security, sign-in is paused; \
         try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Origin(origin): Origin,
    headers: HeaderMap,
    session: Session,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let form = match FormParams::parse(&body) {
            Ok(f) => f,
            Err(e) => return Ok(pages::bad_request(&e.description)),
        };
        let query = match FormParams::parse(query.unwrap_or_default().as_bytes()) {
            Ok(p) => p,
            Err(e) => return Ok(pages::bad_request(&e.description)),
        };
        let Some(id) = query.get(INTERACTION_PARAM) else {
            return Ok(pages::form_expired());
        };
        let now = state.clock.now();
        let interactions = state.interactions();
        let secret = browser::secret(&headers);
        let Some(resumed) = interactions.resume(id, secret.as_deref(), now).await? else {
            return Ok(pages::form_expired());
        };
        let secret = secret.unwrap_or_default();
        if !Interactions::csrf_matches(&resumed.interaction, &secret, form.get("csrf_token")) {
            return Ok(pages::form_expired());
        }
        let username = form.get("username").unwrap_or("").trim().to_string();
        let password = form.get("password").unwrap_or("").to_string();
        let page = |error: String, status| {
            login_page(
                &resumed.pending,
                form.get("csrf_token").unwrap_or_default().to_string(),
                id,
                username.clone(),
                Some(error),
                status,
            )
        };
        let outcome = state
            .sign_in()
            .with_password(&username, password, client)
            .await?;
        metrics::login(match &outcome {
            SignInOutcome::SignedIn(_) => "success",
            SignInOutcome::BadCredentials => "bad_credentials",
            SignInOutcome::Locked { .. } => "locked",
            SignInOutcome::Busy => "busy",
        });
        audit_sign_in(
            &state,
            &origin,
            &resumed.pending.client.client_id,
            &username,
            &outcome,
        )
        .await;
        let user = match outcome {
            SignInOutcome::SignedIn(user) => user,
            SignInOutcome::BadCredentials => {
                return Ok(page(BAD_CREDENTIALS.into(), StatusCode::UNAUTHORIZED));
            }
            SignInOutcome::Locked { retry_after_secs } => {
                return Ok(page(
                    locked_message(retry_after_secs),
                    StatusCode::TOO_MANY_REQUESTS,
                ));
            }
            SignInOutcome::Busy => {
                let mut response = page(BUSY.into(), StatusCode::SERVICE_UNAVAILABLE);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Ok(response);
            }
        };
        let auth_time = state.clock.now();
        let amr = [AMR_PASSWORD.to_string()];
        if !interactions
            .record_login(id, &user.sub, auth_time, &amr, auth_time)
            .await?
        {
            return Ok(pages::form_expired());
        }
        session::sign_in(
            &session,
            &LoginSession {
                sub: user.sub,
                auth_time,
                sid: crypto::random_token(),
            },
        )
        .await?;
        Ok::<_, AppError>(redirect_to(&interaction_url(
            &mount::url(path::AUTHORIZATION),
            id,
        )))
    }
    .await;
    result.unwrap_or_else(|e| pages::internal_error("login failed", &e))
}

/// The longest username kept in a `signin.failed` event: anything longer
/// names no account (usernames have at most 64 characters) and is cut.
const MAX_AUDITED_USERNAME_CHARS: usize = 128;

/// Records a sign-in: who signed in, or (failed) the username that was
/// tried and why it failed, naming the account's `sub` when one has that
/// name. Never the password.
async fn audit_sign_in(
    state: &AppState,
    origin: &RequestOrigin,
    client_id: &str,
    username: &str,
    outcome: &SignInOutcome,
) {
    let now = state.clock.now();
    let event = match outcome {
        SignInOutcome::SignedIn(user) => AuditEvent::user(
            AuditKind::SignInSucceeded,
            &Actor::User(user.sub.clone()),
            &user.sub,
            now,
        )
        .with_detail("method", AMR_PASSWORD),
        failed => {
            let reason = match failed {
                SignInOutcome::Locked { .. } => "locked",
                SignInOutcome::Busy => "busy",
                _ => "bad_credentials",
            };
            let tried: String = username.chars().take(MAX_AUDITED_USERNAME_CHARS).collect();
            let mut event = AuditEvent::new(AuditKind::SignInFailed, &Actor::Anonymous, now)
                .with_detail("reason", reason)
                .with_detail("username", tried);
            // Only for the audit line: a failed lookup never fails the
            // sign-in's answer.
            match state.store.user_by_username(username).await {
                Ok(Some(user)) => event = event.with_subject(&user.sub),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot name the account of a failed sign-in"),
            }
            event
        }
    };
    state
        .audit
        .record(event.with_client(client_id).with_origin(origin))
        .await;
}
