//! GET and POST /authorize (RFC 6749 §4.1.1; OIDC Core §3.1.2.1 allows
//! both). A request that needs the person becomes a stored interaction
//! (`oauth::interaction`); the login and consent forms carry only its id
//! (`/authorize?interaction=ID`), bound to this browser.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::browser::Binding;
use super::origin::Origin;
use super::pages::{self, ConsentPage, FormPostPage, LoginPage, ScopeView};
use super::{mount, session};
use crate::auth::session::LoginSession;
use crate::endpoints::path;
use crate::error::AppError;
use crate::oauth::authorize::{self, AuthorizeError, ConsentAnswer, Decision, Pending};
use crate::oauth::device::DeviceAnswer;
use crate::oauth::interaction::{self, Interactions};
use crate::oauth::par;
use crate::oauth::request::FormParams;
use crate::oauth::response::{AuthorizationResponse, ResponseMode};
use crate::service::audit::{Actor, AuditEvent, AuditKind, AuditSink, RequestOrigin};
use crate::state::AppState;

/// The query parameter that names a stored interaction.
pub const INTERACTION_PARAM: &str = "interaction";

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    match FormParams::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => run(&state, &headers, &session, &params).await,
        Err(e) => pages::bad_request(&e.description),
    }
}

pub async fn post(
    State(state): State<AppState>,
    Origin(origin): Origin,
    headers: HeaderMap,
    session: Session,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let body_params = match FormParams::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::bad_request(&e.description),
    };
    if let Some(decision) = body_params.get("decision") {
        let query = match FormParams::parse(query.unwrap_or_default().as_bytes()) {
            Ok(p) => p,
            Err(e) => return pages::bad_request(&e.description),
        };
        return consent(
            &state,
            &origin,
            &headers,
            &session,
            &query,
            &body_params,
            decision,
        )
        .await;
    }
    // A form-encoded authorization request: the parameters are the body.
    run(&state, &headers, &session, &body_params).await
}

fn internal(e: AppError) -> Response {
    pages::internal_error("authorization request failed", &e)
}

/// The signed-in person, if the session has one whose account still exists.
pub async fn current_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<LoginSession>, AppError> {
    let Some(login) = session::current(session).await? else {
        return Ok(None);
    };
    Ok(state.store.user(&login.sub).await?.map(|_| login))
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    params: &FormParams,
) -> Response {
    if let Some(id) = params.get(INTERACTION_PARAM) {
        return resume(state, headers, session, id).await;
    }
    let ctx = state.authorize_context();
    // RFC 9126 §4: a request URI from /par stands for the whole request.
    let parsed = if par::is_pushed(params) {
        par::redeem(&ctx, params).await
    } else {
        authorize::parse(&ctx, params).await
    };
    let pending = match parsed {
        Ok(p) => p,
        Err(e) => return parse_error(e),
    };
    let result = async {
        let login = current_login(state, session).await?;
        let decision = authorize::decide(&ctx, &pending, login, None).await?;
        Ok::<_, AppError>(match decision {
            Decision::Redirect(response) => respond(response),
            Decision::Approved(login) => respond(authorize::approve(&ctx, &pending, &login).await?),
            Decision::Login | Decision::Consent(_) => {
                // The person must act: keep the request as an interaction.
                let binding = Binding::of(headers);
                let id = state
                    .interactions()
                    .begin(&pending, &binding.secret, state.clock.now())
                    .await?;
                let page = ask(state, &pending, &id, &binding.secret, decision).await?;
                binding.set(page, state.config.issuer_is_https())
            }
        })
    }
    .await;
    result.unwrap_or_else(internal)
}

/// Continues interaction `id` (after sign-in, or a login page reloaded).
async fn resume(state: &AppState, headers: &HeaderMap, session: &Session, id: &str) -> Response {
    let result = async {
        let interactions = state.interactions();
        let browser = super::browser::secret(headers);
        let Some(resumed) = interactions
            .resume(id, browser.as_deref(), state.clock.now())
            .await?
        else {
            return Ok(pages::form_expired());
        };
        let ctx = state.authorize_context();
        let login = current_login(state, session).await?;
        let decision = authorize::decide(
            &ctx,
            &resumed.pending,
            login,
            resumed.interaction.sub.as_deref(),
        )
        .await?;
        let secret = browser.unwrap_or_default();
        Ok::<_, AppError>(match decision {
            Decision::Login | Decision::Consent(_) => {
                ask(state, &resumed.pending, id, &secret, decision).await?
            }
            Decision::Redirect(response) => {
                if !interactions.finish(id).await? {
                    return Ok(pages::form_expired());
                }
                respond(response)
            }
            Decision::Approved(login) => {
                // Exactly one request answers the client, whatever races.
                if !interactions.finish(id).await? {
                    return Ok(pages::form_expired());
                }
                respond(authorize::approve(&ctx, &resumed.pending, &login).await?)
            }
        })
    }
    .await;
    result.unwrap_or_else(internal)
}

/// The login or consent page of interaction `id`.
async fn ask(
    state: &AppState,
    pending: &Pending,
    id: &str,
    browser_secret: &str,
    decision: Decision,
) -> Result<Response, AppError> {
    let csrf_token = interaction::csrf_token(browser_secret, id);
    Ok(match decision {
        Decision::Consent(login) => consent_page(state, pending, &login, csrf_token, id).await?,
        _ => login_page(
            pending,
            csrf_token,
            id,
            pending.request.login_hint.clone().unwrap_or_default(),
            None,
            StatusCode::OK,
        ),
    })
}

/// The error page or error redirect for a request that did not validate.
pub fn parse_error(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "This request cannot continue",
            &message,
        ),
        AuthorizeError::Redirect(response, _) => respond(response),
        AuthorizeError::Internal(e) => internal(e),
    }
}

/// `/authorize?interaction=ID` or `/login?interaction=ID`.
pub fn interaction_url(base: &str, id: &str) -> String {
    format!("{base}?{INTERACTION_PARAM}={id}")
}

pub fn login_page(
    pending: &Pending,
    csrf_token: String,
    interaction_id: &str,
    username: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    pages::render(
        status,
        &LoginPage {
            client_name: Some(pending.client.name().to_string()),
            username,
            error,
            csrf_token,
            action: interaction_url(&mount::url(path::LOGIN), interaction_id),
        },
        &[&pending.request.target.redirect_uri],
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
    pending: &Pending,
    login: &LoginSession,
    csrf_token: String,
    interaction_id: &str,
) -> Result<Response, AppError> {
    let username = state
        .store
        .user(&login.sub)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    // The person sees which API each scope is for. A resource deleted
    // since the request was checked is just not named.
    let resources =
        match crate::oauth::resource::resolve(&state.resources, &pending.request.resources).await {
            Ok(found) => found,
            Err(AppError::OAuth(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
    Ok(pages::render(
        StatusCode::OK,
        &ConsentPage {
            client_name: pending.client.name().to_string(),
            username,
            scopes: pending
                .request
                .scope
                .iter()
                .map(|s| ScopeView {
                    name: s.to_string(),
                    description: describe_scope(state, s),
                    api: resources
                        .iter()
                        .filter(|r| r.scopes.contains(s))
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
            device_user_code: pending.request.device.as_ref().map(|d| d.display_code()),
            csrf_token,
            action: interaction_url(&mount::url(path::AUTHORIZATION), interaction_id),
        },
        &[&pending.request.target.redirect_uri],
    ))
}

/// The consent form's answer, posted to `/authorize?interaction=ID`.
async fn consent(
    state: &AppState,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    session: &Session,
    query: &FormParams,
    body: &FormParams,
    decision: &str,
) -> Response {
    let result = async {
        let Some(id) = query.get(INTERACTION_PARAM) else {
            return Ok(pages::form_expired());
        };
        let interactions = state.interactions();
        let browser = super::browser::secret(headers);
        let Some(resumed) = interactions
            .resume(id, browser.as_deref(), state.clock.now())
            .await?
        else {
            return Ok(pages::form_expired());
        };
        let secret = browser.unwrap_or_default();
        if !Interactions::csrf_matches(&resumed.interaction, &secret, body.get("csrf_token")) {
            return Ok(pages::form_expired());
        }
        let allow = match decision {
            "allow" => true,
            "deny" => false,
            _ => return Ok(pages::bad_request("decision must be allow or deny")),
        };
        let Some(login) = current_login(state, session).await? else {
            // Signed out meanwhile: continue through the login page.
            return Ok(redirect_to(&interaction_url(
                &mount::url(path::AUTHORIZATION),
                id,
            )));
        };
        if !interactions.finish(id).await? {
            return Ok(pages::form_expired());
        }
        let ctx = state.authorize_context();
        let answer = authorize::answer_consent(&ctx, &resumed.pending, &login, allow).await?;
        let kind = match &answer {
            ConsentAnswer::Client(_) if allow => AuditKind::ConsentGiven,
            ConsentAnswer::Client(_) => AuditKind::ConsentDenied,
            ConsentAnswer::Device(DeviceAnswer::Approved) => AuditKind::DeviceApproved,
            ConsentAnswer::Device(DeviceAnswer::Denied) => AuditKind::DeviceDenied,
            // Expired meanwhile: nothing happened to record.
            ConsentAnswer::Device(DeviceAnswer::Expired) => {
                return Ok(super::device::answered_page(DeviceAnswer::Expired));
            }
        };
        state
            .audit
            .record(
                AuditEvent::user(
                    kind,
                    &Actor::User(login.sub.clone()),
                    &login.sub,
                    state.clock.now(),
                )
                .with_client(&resumed.pending.client.client_id)
                .with_detail("scope", resumed.pending.request.scope.to_string())
                .with_origin(origin),
            )
            .await;
        Ok::<_, AppError>(match answer {
            ConsentAnswer::Client(response) => respond(response),
            ConsentAnswer::Device(device) => super::device::answered_page(device),
        })
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
