//! The client credentials grant (RFC 6749 §4.4), with resource indicators
//! (RFC 8707 §2). It writes nothing: the client and the resources come
//! from caches and the token is a self-contained JWT.

use super::{Grant, GrantContext, TokenResponse};
use crate::domain::Client;
use crate::domain::scope::ScopeSet;
use crate::error::{AppError, OAuthError};
use crate::oauth::access_token::{self, Subject};
use crate::oauth::request::FormParams;
use crate::oauth::resource::{self, TokenTarget};

pub const GRANT_TYPE: &str = "client_credentials";

pub struct ClientCredentialsGrant;

pub struct ClientCredentialsRequest {
    pub scope: Option<ScopeSet>,
    /// RFC 8707 §2: the resources the token is for.
    pub resources: Vec<String>,
}

impl Grant for ClientCredentialsGrant {
    const GRANT_TYPE: &'static str = GRANT_TYPE;
    // RFC 6749 §4.4: for confidential clients only.
    const PUBLIC_CLIENTS: bool = false;
    type Request = ClientCredentialsRequest;

    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError> {
        Ok(ClientCredentialsRequest {
            scope: params.scope()?,
            resources: resource::requested(params)?,
        })
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        let asked = request.scope.is_some();
        // RFC 6749 §3.3: without a `scope` parameter the registered scopes apply.
        let scope = crate::oauth::client::scope_within_registered(client, request.scope)?;
        // RFC 8707 §2: the token is for the requested resources only, with
        // only the scopes they define.
        let resources = resource::resolve(ctx.resources, &request.resources).await?;
        let target = TokenTarget::of(&resources)?;
        let scope = resource::narrow_scope(&scope, &resources, asked)?;
        let issued = access_token::issue(
            &ctx.tokens,
            client,
            Subject {
                sub: &client.client_id,
                auth_time: None,
                grant_id: None,
            },
            &scope,
            &target,
        )?;
        Ok(TokenResponse {
            issued_token_type: None,
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.claims.exp - issued.claims.iat,
            scope: issued.claims.scope,
            refresh_token: None,
            id_token: None,
        })
    }
}
