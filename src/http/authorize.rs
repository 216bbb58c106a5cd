//! GET and POST /authorize (RFC 6749 §4.1.1; OIDC Core §3.1.2.1 allows
//! both), and the consent form, which posts back here with `decision`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::pages::{self, ConsentPage, FormPostPage, LoginPage, ScopeView};
use crate::auth::{csrf, session};
use crate::error::AppError;
use crate::oauth::authorize::{
    self, AuthorizationRequest, AuthorizationResponse, AuthorizeError, Decision, ResponseMode,
};
use crate::oauth::request::FormParams;
use crate::state::AppState;

pub async fn get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match FormParams::parse(query.as_bytes()) {
        Ok(params) => run(&state, &session, &params, &query).await,
        Err(e) => pages::bad_request(&e.description),
    }
}

pub async fn post(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let body_params = match FormParams::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::bad_request(&e.description),
    };
    let query = query.unwrap_or_default();
    if let Some(decision) = body_params.get("decision") {
        return consent(&state, &session, &query, &body_params, decision).await;
    }
    // A form-encoded authorization request: the parameters are the body.
    let as_query = String::from_utf8_lossy(&body).into_owned();
    run(&state, &session, &body_params, &as_query).await
}

fn internal(e: AppError) -> Response {
    pages::internal_error("authorization request failed", &e)
}

/// The signed-in person, if the session has one whose account still exists.
pub async fn current_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<session::LoginSession>, AppError> {
    let Some(login) = session::current(session).await? else {
        return Ok(None);
    };
    Ok(state.store.user(&login.sub).await?.map(|_| login))
}

pub async fn parse_or_respond(
    state: &AppState,
    params: &FormParams,
) -> Result<AuthorizationRequest, Response> {
    authorize::parse(state, params).await.map_err(|e| match e {
        AuthorizeError::Page(message) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "This request cannot continue",
            &message,
        ),
        AuthorizeError::Redirect(response) => respond(response),
        AuthorizeError::Internal(e) => internal(e),
    })
}

async fn run(state: &AppState, session: &Session, params: &FormParams, query: &str) -> Response {
    let req = match parse_or_respond(state, params).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let result = async {
        let login = current_login(state, session).await?;
        let decision = authorize::decide(state, &req, login).await?;
        Ok::<_, AppError>(match decision {
            Decision::Redirect(response) => respond(response),
            Decision::Login => login_page(
                &req,
                csrf::token(session).await?,
                query,
                req.login_hint.clone().unwrap_or_default(),
                None,
                StatusCode::OK,
            ),
            Decision::Consent(login) => {
                consent_page(state, &req, &login, csrf::token(session).await?, query).await?
            }
        })
    }
    .await;
    result.unwrap_or_else(internal)
}

pub fn login_page(
    req: &AuthorizationRequest,
    csrf_token: String,
    query: &str,
    username: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    pages::render(
        status,
        &LoginPage {
            client_name: Some(req.client.name().to_string()),
            username,
            error,
            csrf_token,
            action: format!("/login?{query}"),
        },
        &[&req.target.redirect_uri],
    )
}

/// Human descriptions of the standard scopes (OIDC Core §5.4, §11).
fn describe_scope(state: &AppState, scope: &str) -> String {
    if let Some(d) = state.config.scope_description(scope) {
        return d.to_string();
    }
    match scope {
        "openid" => "Confirm who you are when you sign in",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Keep access while you are not using the application",
        other => other,
    }
    .to_string()
}

async fn consent_page(
    state: &AppState,
    req: &AuthorizationRequest,
    login: &session::LoginSession,
    csrf_token: String,
    query: &str,
) -> Result<Response, AppError> {
    let username = state
        .store
        .user(&login.sub)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    Ok(pages::render(
        StatusCode::OK,
        &ConsentPage {
            client_name: req.client.name().to_string(),
            username,
            scopes: req
                .scope
                .iter()
                .map(|s| ScopeView {
                    name: s.to_string(),
                    description: describe_scope(state, s),
                })
                .collect(),
            csrf_token,
            action: format!("/authorize?{query}"),
        },
        &[&req.target.redirect_uri],
    ))
}

async fn consent(
    state: &AppState,
    session: &Session,
    query: &str,
    body: &FormParams,
    decision: &str,
) -> Response {
    let result = async {
        if !csrf::verify(session, body.get("csrf_token")).await? {
            return Ok(pages::form_expired());
        }
        let params = match FormParams::parse(query.as_bytes()) {
            Ok(p) => p,
            Err(e) => return Ok(pages::bad_request(&e.description)),
        };
        let req = match parse_or_respond(state, &params).await {
            Ok(r) => r,
            Err(response) => return Ok(response),
        };
        let Some(login) = current_login(state, session).await? else {
            // Signed out meanwhile: start over, through the login page.
            return Ok(redirect_to(&format!("/authorize?{query}")));
        };
        let allow = match decision {
            "allow" => true,
            "deny" => false,
            _ => return Ok(pages::bad_request("decision must be allow or deny")),
        };
        Ok(respond(
            authorize::answer_consent(state, &req, &login, allow).await?,
        ))
    }
    .await;
    result.unwrap_or_else(internal)
}

pub fn redirect_to(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Sends an authorization response to the client: a 303 with the
/// parameters in the query, or an auto-submitted form (form_post).
pub fn respond(response: AuthorizationResponse) -> Response {
    match response.mode {
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(&response.redirect_uri) else {
                return pages::bad_request("The redirect URI is invalid.");
            };
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in &response.params {
                    pairs.append_pair(k, v);
                }
            }
            redirect_to(url.as_str())
        }
        ResponseMode::FormPost => pages::render_with_script(
            StatusCode::OK,
            &FormPostPage {
                action: response.redirect_uri.clone(),
                params: response.params,
            },
            &[&response.redirect_uri],
            true,
        ),
    }
}
