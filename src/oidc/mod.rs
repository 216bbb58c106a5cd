//! OpenID Connect on top of the OAuth core.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod logout;
pub mod userinfo;
