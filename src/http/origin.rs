//! Where a request came from, for the audit log: the client's address (the
//! one the login throttle uses: the TCP peer, or what a trusted proxy
//! forwarded, see `client_addr`) and the request id (`x-request-id`, set
//! fresh by the router for every request, so an audit row leads to the
//! request's log lines).

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::REQUEST_ID;
use super::client_addr::client_ip;
use crate::service::audit::RequestOrigin;
use crate::state::AppState;

/// Extracts the `RequestOrigin` of a request; never fails (a part that is
/// missing is `None`).
pub struct Origin(pub RequestOrigin);

impl FromRequestParts<AppState> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Origin(of(parts, state)))
    }
}

/// The origin of the request whose head is `parts`.
pub fn of(parts: &Parts, state: &AppState) -> RequestOrigin {
    RequestOrigin {
        // The accept loop records the TCP peer on every request.
        address: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                client_ip(peer.ip(), &parts.headers, &state.config.proxy.trusted).to_string()
            }),
        request_id: parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}
