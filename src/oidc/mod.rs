//! OpenID Connect on top of the OAuth core.

pub mod discovery;
