//! The accept loop: HTTP/1.1 connections served by hyper with the limits
//! `axum::serve` does not offer (issue: idle and half-sent connections were
//! held for minutes). A connection must send each request's header within
//! `http.header_read_timeout_secs` of opening or of its previous response
//! (which also ends idle keep-alive connections), and each body within
//! `http.body_read_timeout_secs`. On shutdown, in-flight requests get
//! `http.shutdown_grace_secs` to finish.
//!
//! With `metrics.listen` set, a second listener serves Prometheus metrics
//! (`http::metrics`) for as long as the main one runs.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::HttpConfig;
use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish (up to the grace period). Binds the metrics
/// listener when `metrics.listen` is set.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = match &state.config.metrics.listen {
        Some(address) => Some(bind_metrics(address).await?),
        None => None,
    };
    serve_with_metrics(listener, metrics, state, shutdown).await
}

/// Binds the metrics listener at `address` (`metrics.listen`).
pub async fn bind_metrics(address: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen for metrics on {address}: {e}"),
        )
    })
}

/// [`serve`] with an already bound metrics listener (or none, whatever
/// the config says).
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.http.clone();
    let metrics = match metrics {
        Some(metrics_listener) => {
            super::metrics::install();
            // Gauges set before the recorder existed were lost.
            state.publish_key_metrics();
            if let Ok(address) = metrics_listener.local_addr() {
                tracing::info!(%address, "serving metrics at {}", super::metrics::PATH);
            }
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let limits = limits.clone();
            let scraped = state.clone();
            let before_scrape = move || scraped.publish_pool_metrics();
            let task = tokio::spawn(async move {
                let stopped = async {
                    let _ = stopped.await;
                };
                let served =
                    super::metrics::serve(metrics_listener, limits, before_scrape, stopped).await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
            Some((stop, task))
        }
        None => None,
    };
    let background = state.spawn_background_tasks();
    let app = super::router(state);
    let served = accept_loop(listener, app, &limits, shutdown).await;
    background.abort();
    if let Some((stop, task)) = metrics {
        let _ = stop.send(());
        let _ = task.await;
    }
    served
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` resolves; then waits up to the grace period for in-flight
/// requests.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
        limits.body_read_timeout_secs,
    )));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is not our error.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the shutdown grace period");
    }
    Ok(())
}
