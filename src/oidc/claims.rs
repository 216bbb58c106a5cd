//! Standard claims released per scope (OIDC Core §5.4).

use serde_json::{Map, Value};

use crate::domain::User;
use crate::domain::scope::ScopeSet;

/// `profile` → name, preferred_username, updated_at;
/// `email` → email, email_verified.
pub fn scope_claims(user: &User, scope: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    if scope.contains("profile") {
        if let Some(name) = &user.name {
            claims.insert("name".into(), name.clone().into());
        }
        claims.insert("preferred_username".into(), user.username.clone().into());
        claims.insert("updated_at".into(), user.updated_at.into());
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), email.clone().into());
        // Addresses are entered by an operator, not proven by a mail loop.
        claims.insert("email_verified".into(), false.into());
    }
    claims
}
