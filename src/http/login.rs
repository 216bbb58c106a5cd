//! POST /login: the login form. The authorization request rides along in
//! the query string, so success simply returns to /authorize with it.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::authorize::{login_page, parse_or_respond, redirect_to};
use super::pages;
use crate::auth::session::{self, LoginSession};
use crate::auth::throttle::{self, Locked, ThrottleDecision};
use crate::auth::{csrf, password};
use crate::crypto;
use crate::error::AppError;
use crate::oauth::request::FormParams;
use crate::state::AppState;

const BAD_CREDENTIALS: &str = "The username or password is incorrect.";

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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let result = async {
        let form = match FormParams::parse(&body) {
            Ok(f) => f,
            Err(e) => {
                return Ok(pages::bad_request(&e.description));
            }
        };
        let params = match FormParams::parse(query.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                return Ok(pages::bad_request(&e.description));
            }
        };
        let req = match parse_or_respond(&state, &params).await {
            Ok(r) => r,
            Err(response) => return Ok(response),
        };
        if !csrf::verify(&session, form.get("csrf_token")).await? {
            return Ok(pages::form_expired());
        }
        let username = form.get("username").unwrap_or("").trim().to_string();
        let password = form.get("password").unwrap_or("").to_string();
        let token = csrf::token(&session).await?;
        let page = |error: String, status| {
            login_page(
                &req,
                token.clone(),
                &query,
                username.clone(),
                Some(error),
                status,
            )
        };
        // Counted before the password is checked, so parallel guesses
        // cannot outrun the limit.
        let attempt = match throttle::begin_attempt(&state, &username, peer.ip()).await? {
            Ok(attempt) => attempt,
            Err(Locked { retry_after_secs }) => {
                return Ok(page(
                    locked_message(retry_after_secs),
                    StatusCode::TOO_MANY_REQUESTS,
                ));
            }
        };
        let user = if username.is_empty() {
            None
        } else {
            state.store.user_by_username(&username).await?
        };
        // An unknown user costs one hash too, so timing reveals nothing.
        let ok =
            password::verify_password(user.as_ref().map(|u| u.password_hash.clone()), password)
                .await;
        let Some(user) = user.filter(|_| ok) else {
            return Ok(match throttle::attempt_failed(&state, &attempt).await? {
                ThrottleDecision::Locked { retry_after_secs } => page(
                    locked_message(retry_after_secs),
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                ThrottleDecision::Allowed => page(BAD_CREDENTIALS.into(), StatusCode::UNAUTHORIZED),
            });
        };
        throttle::attempt_succeeded(&state, &attempt).await?;
        session::sign_in(
            &session,
            &LoginSession {
                sub: user.sub,
                auth_time: state.clock.now(),
                sid: crypto::random_token(),
            },
        )
        .await?;
        Ok::<_, AppError>(redirect_to(&format!(
            "/authorize?{}",
            resume_query(&params)
        )))
    }
    .await;
    result.unwrap_or_else(|e| pages::internal_error("login failed", &e))
}

/// The request to resume after signing in: the sign-in that just happened
/// satisfies `prompt=login` and any `max_age`, so neither may send the
/// person back to this form (with `max_age=0` and a ticking clock it would
/// loop). `auth_time` in the ID token still tells the client when it was.
fn resume_query(params: &FormParams) -> String {
    let pairs: Vec<(&str, String)> = params
        .iter()
        .filter_map(|(k, v)| {
            if k == "max_age" {
                None
            } else if k == "prompt" {
                let rest: Vec<&str> = v
                    .split(' ')
                    .filter(|p| *p != "login" && !p.is_empty())
                    .collect();
                (!rest.is_empty()).then(|| (k, rest.join(" ")))
            } else {
                Some((k, v.to_string()))
            }
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}
