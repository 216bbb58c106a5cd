//! Where a request came from, for the audit log: the client's address and
//! the request id (`x-request-id`, set fresh by the router for every
//! request, so an audit row leads to the request's log lines).

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::REQUEST_ID;
use crate::service::audit::RequestOrigin;

/// Extracts the `RequestOrigin` of a request; never fails (a part that is
/// missing is `None`).
pub struct Origin(pub RequestOrigin);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Origin(of(parts)))
    }
}

/// The origin of the request whose head is `parts`.
pub fn of(parts: &Parts) -> RequestOrigin {
    RequestOrigin {
        // The TCP peer, which the accept loop records on every request.
        address: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string()),
        request_id: parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}
