//! OAuth 2.x protocol logic. Nothing here knows axum: handlers in
//! `crate::http` turn HTTP into these typed requests and render the results.

pub mod access_token;
pub mod authorize;
pub mod client;
pub mod client_auth;
pub mod client_cache;
pub mod device;
pub mod grants;
pub mod interaction;
pub mod introspect;
pub mod par;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod request;
pub mod resource;
pub mod resource_cache;
pub mod response;
pub mod revoke;
pub mod token;
pub mod tokens;
