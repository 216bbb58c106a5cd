//! Prometheus metrics (`metrics.listen` / `TESSERA_METRICS_LISTEN`): the
//! recorder, the separate listener that serves `GET /metrics`, and the
//! recording done at the HTTP layer. Until the recorder is installed every
//! `metrics::` call goes to the no-op recorder and the request layer below
//! returns at once, so an instance without the setting pays nothing.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `tessera_http_requests_total` | counter | `method`, `route` (the matched route, `unmatched` otherwise), `status` |
//! | `tessera_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `tessera_tokens_issued_total` | counter | `grant_type`, `token` (`access_token`, `id_token`), `alg` |
//! | `tessera_logins_total` | counter | `outcome` (`success`, `bad_credentials`, `locked`, `busy`) |
//! | `tessera_refresh_token_reuse_total` | counter | |
//! | `tessera_key_rotations_total` | counter | `trigger` (`scheduled`, `manual`) |
//! | `tessera_signing_keys_active` | gauge | `alg`: 1 while a current key signs |
//! | `tessera_signing_keys_unreadable` | gauge | 1 while stored keys cannot be loaded |
//! | `tessera_api_key_verifications_total` | counter | `code` (`VALID`, `NOT_FOUND`, `EXPIRED`, `REVOKED`, `RATE_LIMITED`, `INSUFFICIENT_SCOPE`): every check of an API key (/apikeys/verify, /introspect, the token exchange) |
//! | `tessera_db_pool_connections` | gauge | `state` (`in_use`, `idle`): database connections, read at each scrape |
//! | `tessera_db_pool_max_connections` | gauge | the pool's limit |

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::config::HttpConfig;

pub const PATH: &str = "/metrics";

/// Latency buckets in seconds: sub-millisecond token issuance up to
/// multi-second password hashing under load.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram samples are kept raw until upkeep folds them into buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's recorder (once; later
/// calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            // Only an empty bucket list fails; then keep the default summaries.
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        handle
    })
}

/// Whether metrics are being recorded in this process.
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tessera_http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        "tessera_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status"
    );
    describe_counter!(
        "tessera_tokens_issued_total",
        "Tokens issued at the token endpoint, by grant type, token and algorithm"
    );
    describe_counter!(
        "tessera_logins_total",
        "Password sign-ins, by outcome (success, bad_credentials, locked, busy)"
    );
    describe_counter!(
        "tessera_refresh_token_reuse_total",
        "Reused refresh tokens detected (each revoked its grant)"
    );
    describe_counter!(
        "tessera_key_rotations_total",
        "Signing key rotations run by this instance, by trigger"
    );
    describe_gauge!(
        "tessera_signing_keys_active",
        "1 while a current key of the algorithm signs"
    );
    describe_gauge!(
        "tessera_signing_keys_unreadable",
        "1 while stored signing keys cannot be loaded (the last good keys still sign)"
    );
    describe_counter!(
        "tessera_api_key_verifications_total",
        "API key checks (/apikeys/verify, /introspect, token exchange), by answer code"
    );
    describe_counter!(
        "tessera_backchannel_logout_total",
        "Back-Channel Logout delivery attempts, by outcome (delivered, retry, failed)"
    );
    describe_gauge!(
        "tessera_db_pool_connections",
        "Database connections of this instance's pool, by state (in_use, idle)"
    );
    describe_gauge!(
        "tessera_db_pool_max_connections",
        "The most connections this instance's database pool opens"
    );
}

/// Serves `GET /metrics` on `listener` until `shutdown`, with the same
/// connection limits as the main listener; installs the recorder first.
/// `before_scrape` runs before each rendering, to set the gauges that are
/// read rather than counted (the database pool).
pub async fn serve(
    listener: TcpListener,
    limits: HttpConfig,
    before_scrape: impl Fn() + Clone + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = install();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let app = Router::new()
        .route(
            PATH,
            get(move || {
                before_scrape();
                render(handle)
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let served = super::server::accept_loop(listener, app, &limits, shutdown).await;
    upkeep.abort();
    served
}

async fn render(handle: &'static PrometheusHandle) -> Response {
    let mut response = handle.render().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Request count and latency by matched route (never the raw path, whose
/// values are unbounded) and status. Applied with `Router::layer`, so it
/// runs after routing and sees `MatchedPath`.
pub async fn track_requests(request: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!("tessera_http_requests_total", &labels).increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", &labels).record(elapsed);
    response
}

/// The standard methods by name; anything else is one label, so a client
/// cannot mint new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts the tokens of a successful token response, labelled with the
/// algorithm each JWT was actually signed with (its header's `alg`).
pub fn tokens_issued(grant_type: &str, access_token: &str, id_token: Option<&str>) {
    if !enabled() {
        return;
    }
    let tokens =
        std::iter::once(("access_token", access_token)).chain(id_token.map(|t| ("id_token", t)));
    for (token, jwt) in tokens {
        let alg = jsonwebtoken::decode_header(jwt)
            .map_or_else(|_| "unknown".to_string(), |h| format!("{:?}", h.alg));
        metrics::counter!(
            "tessera_tokens_issued_total",
            "grant_type" => grant_type.to_string(),
            "token" => token,
            "alg" => alg
        )
        .increment(1);
    }
}

/// Counts a password sign-in by outcome.
pub fn login(outcome: &'static str) {
    metrics::counter!("tessera_logins_total", "outcome" => outcome).increment(1);
}
