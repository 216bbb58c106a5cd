//! GET and POST /logout: RP-Initiated Logout 1.0.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::authorize::redirect_to;
use super::pages::{self, LoggedOutPage, LogoutPage};
use super::{csrf, mount, session};
use crate::endpoints::path;
use crate::error::AppError;
use crate::oauth::request::FormParams;
use crate::oidc::logout::{self, LogoutRequest};
use crate::state::AppState;

pub async fn get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    match FormParams::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => handle(&state, &session, params, false).await,
        Err(e) => pages::bad_request(&e.description),
    }
}

pub async fn post(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    match FormParams::parse(&body) {
        Ok(params) => handle(&state, &session, params, true).await,
        Err(e) => pages::bad_request(&e.description),
    }
}

async fn handle(
    state: &AppState,
    session: &Session,
    params: FormParams,
    is_post: bool,
) -> Response {
    let result = async {
        let req = match logout::validate(&state.tokens(), &state.clients, &params).await? {
            Ok(r) => r,
            Err(message) => {
                return Ok(pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "Cannot sign out",
                    &message,
                ));
            }
        };
        let current = session::current(session).await?;
        // A valid hint for the person signed in here (or nobody signed in)
        // vouches for the request; otherwise ask, so that a third party
        // cannot sign people out with a bare link.
        let vouched = req
            .hint
            .as_ref()
            .is_some_and(|h| current.as_ref().is_none_or(|c| c.sub == h.sub));
        if is_post && let Some(decision) = params.get("decision") {
            if !csrf::verify(session, params.get("csrf_token")).await? {
                return Ok(pages::form_expired());
            }
            if decision != "logout" {
                return Ok(pages::error_page(
                    StatusCode::OK,
                    "You are still signed in",
                    "Nothing was changed. You can close this page.",
                ));
            }
            return finish(state, session, &req).await;
        }
        if vouched || current.is_none() {
            return finish(state, session, &req).await;
        }
        let hidden = [
            "post_logout_redirect_uri",
            "state",
            "client_id",
            "id_token_hint",
        ]
        .iter()
        .filter_map(|k| params.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
        let targets: Vec<&str> = req.redirect.as_deref().into_iter().collect();
        Ok(pages::render(
            StatusCode::OK,
            &LogoutPage {
                client_name: req.client.as_ref().map(|c| c.name().to_string()),
                csrf_token: csrf::token(session).await?,
                action: mount::url(path::END_SESSION),
                hidden,
            },
            &targets,
        ))
    }
    .await;
    result.unwrap_or_else(|e: AppError| pages::internal_error("logout failed", &e))
}

/// Ends the session (and tells the clients that got tokens in it, OIDC
/// Back-Channel Logout: queued, sent by the background worker, so the page
/// never waits on a client).
async fn finish(
    state: &AppState,
    session: &Session,
    req: &LogoutRequest,
) -> Result<Response, AppError> {
    session::sign_out(state, session).await?;
    Ok(match &req.redirect {
        Some(uri) => redirect_to(uri),
        None => pages::render(StatusCode::OK, &LoggedOutPage, &[]),
    })
}
