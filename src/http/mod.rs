//! Thin axum handlers, one file per endpoint: parse the HTTP shape into a
//! typed request, call `crate::oauth` / `crate::oidc`, render the result.

pub mod admin;
pub mod api_keys;
pub mod assets;
pub mod authorize;
pub mod browser;
pub mod client_addr;
pub mod csrf;
pub mod device;
pub mod discovery;
pub mod error;
pub mod form;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod mount;
pub mod origin;
pub mod pages;
pub mod par;
pub mod register;
pub mod revoke;
pub mod server;
pub mod session;
pub mod session_store;
pub mod token;
pub mod userinfo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::endpoints::path;
use crate::error::OAuthError;
use crate::state::AppState;
use error::oauth_error_response;
use session_store::TesseraSessionStore;

/// Request bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id sent by a trusted proxy, logged as `proxy_request_id`.
#[derive(Debug, Clone)]
struct ProxyRequestId(String);

/// Every route, mounted under the issuer's path (`/auth` for an issuer
/// `https://example.com/auth`) or at the root; `/healthz` and `/readyz` are
/// also at the root, for probes that reach the instance directly.
pub fn router(state: AppState) -> Router {
    let base: Arc<str> = Arc::from(state.config.base_path());
    let hsts = state.config.issuer.starts_with("https://");
    // Browser-facing routes carry the login session cookie.
    let sessions = SessionManagerLayer::new(TesseraSessionStore::new(
        state.store.clone(),
        state.clock.clone(),
    ))
    .with_name("tessera_session")
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    .with_secure(state.config.issuer_is_https())
    .with_path(if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    })
    .with_expiry(Expiry::OnInactivity(
        tower_sessions::cookie::time::Duration::seconds(state.config.login.session_ttl_secs),
    ));
    let browser = Router::new()
        .route(
            path::AUTHORIZATION,
            get(authorize::get).post(authorize::post),
        )
        .route(path::LOGIN, post(login::login))
        .route(
            path::DEVICE_VERIFICATION,
            get(device::get).post(device::post),
        )
        .route(path::END_SESSION, get(logout::get).post(logout::post))
        .layer(sessions)
        .layer(axum::middleware::map_response(pages::fill_empty_errors));
    // What a browser-based client (a SPA with PKCE) calls cross-origin.
    // No cookies are involved, so any origin may call; /introspect is for
    // resource servers and stays same-origin.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    let api = Router::new()
        .route(path::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(path::OAUTH_AUTHORIZATION_SERVER, get(discovery::metadata))
        .route(path::JWKS, get(jwks::jwks))
        .route(path::TOKEN, post(token::token))
        .route(path::PUSHED_AUTHORIZATION_REQUEST, post(par::push))
        .route(
            path::DEVICE_AUTHORIZATION,
            post(device::device_authorization),
        )
        .route(path::REVOCATION, post(revoke::revoke))
        .route(path::USERINFO, get(userinfo::get).post(userinfo::post))
        .merge(register::routes(&state.config.registration))
        .layer(cors.clone());
    let routes = Router::new()
        .merge(browser)
        .merge(api)
        .nest(admin::PREFIX, admin::router(state.clone()))
        .route(path::INTROSPECTION, post(introspect::introspect))
        .route(path::API_KEY_VERIFY, post(api_keys::verify))
        .route(path::STYLESHEET, get(assets::stylesheet))
        .route(path::FORM_POST_SCRIPT, get(assets::form_post_script))
        .route(health::HEALTHZ, get(health::healthz))
        .route(health::READYZ, get(health::readyz))
        .fallback(not_found);
    let app = if base.is_empty() {
        routes
    } else {
        // RFC 8414 §3.1: the metadata of an issuer with a path is also at
        // the well-known path with the issuer's path appended.
        let rfc8414_metadata = format!("{}{base}", path::OAUTH_AUTHORIZATION_SERVER);
        Router::new()
            .nest(&base, routes)
            .route(&rfc8414_metadata, get(discovery::metadata).layer(cors))
            .route(health::HEALTHZ, get(health::healthz))
            .route(health::READYZ, get(health::readyz))
            .fallback(not_found)
    };
    // `Router::layer` wraps each route, so these run after routing (the
    // metrics layer reads `MatchedPath`); the last one runs first.
    app.with_state(state.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(too_large_as_json))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The path only: queries can carry codes and tokens.
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let span = tracing::info_span!(
                    "request",
                    id,
                    method = %req.method(),
                    path = req.uri().path(),
                    proxy_request_id = tracing::field::Empty,
                );
                if let Some(ProxyRequestId(proxy_id)) = req.extensions().get() {
                    span.record("proxy_request_id", proxy_id.as_str());
                }
                span
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request_with_state(
            state,
            take_client_request_id,
        ))
        .layer(axum::middleware::from_fn_with_state(base, mount::scope))
        .layer(axum::middleware::from_fn(self::metrics::track_requests))
        .layer(axum::middleware::map_response_with_state(
            hsts,
            strict_transport_security,
        ))
}

/// RFC 6797 §7.1 (RFC 9700 §4.1.1 asks for TLS everywhere): an issuer
/// served over https tells browsers to use nothing else for a year. The
/// header only takes effect when received over TLS (§8.1), so behind a
/// TLS-terminating proxy it is right to send it on every response.
/// `includeSubDomains` is left out: the issuer's parent domain may serve
/// other sites that are not ours to decide for.
async fn strict_transport_security(
    axum::extract::State(enabled): axum::extract::State<bool>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if enabled {
        response
            .headers_mut()
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
    }
    response
}

/// The request id is always ours (issue 7.12): a client-sent `X-Request-Id`
/// would let anyone forge or collide the ids that tie log lines together,
/// so it is removed before `SetRequestIdLayer` makes a fresh one. A trusted
/// proxy's id is kept as the separate span field `proxy_request_id`, when
/// it is short printable ASCII, to correlate with the proxy's logs.
async fn take_client_request_id<B>(
    State(state): State<AppState>,
    mut req: Request<B>,
) -> Request<B> {
    let Some(sent) = req.headers_mut().remove(&REQUEST_ID) else {
        return req;
    };
    let from_trusted_proxy = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| {
            client_addr::is_trusted(peer.ip(), &state.config.proxy.trusted)
        });
    if from_trusted_proxy && let Some(id) = client_addr::loggable_request_id(sent.as_bytes()) {
        req.extensions_mut().insert(ProxyRequestId(id));
    }
    req
}

/// The body-limit layer answers 413 in plain text before any handler runs;
/// give it the same RFC 6749 JSON shape as every other error.
async fn too_large_as_json(response: axum::response::Response) -> axum::response::Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let mut json = oauth_error_response(&OAuthError::invalid_request(format!(
        "the request body is larger than {} KiB",
        MAX_BODY_BYTES / 1024
    )));
    *json.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    json
}

async fn not_found() -> impl IntoResponse {
    let mut response = oauth_error_response(&OAuthError::invalid_request("no such endpoint"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}
