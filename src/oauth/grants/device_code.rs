//! The device authorization grant at the token endpoint (RFC 8628 §3.4,
//! §3.5): the device polls with its device code until the person has
//! answered on the `/device` page (`oauth::device`).

use super::{Grant, GrantContext, TokenResponse};
use crate::crypto;
use crate::domain::{Client, DeviceDecision};
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::oauth::device::SLOW_DOWN_SECS;
use crate::oauth::request::FormParams;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub struct DeviceCodeGrant;

pub struct DeviceCodeRequest {
    pub device_code: String,
}

impl Grant for DeviceCodeGrant {
    const GRANT_TYPE: &'static str = GRANT_TYPE;
    type Request = DeviceCodeRequest;

    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError> {
        Ok(DeviceCodeRequest {
            device_code: params.require("device_code")?.to_string(),
        })
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        let now = ctx.tokens.now();
        let refuse = |code: ErrorCode, d: &'static str| AppError::from(OAuthError::new(code, d));
        let hash = crypto::hash_secret(&request.device_code);
        // Another client's device code is as unknown as a made-up one, and
        // polling it changes nothing.
        let device = ctx
            .device_codes
            .device_code(&hash)
            .await?
            .filter(|d| d.client_id == client.client_id)
            .ok_or_else(|| refuse(ErrorCode::InvalidGrant, "the device code is invalid"))?;
        if device.consumed_at.is_some() {
            return Err(refuse(
                ErrorCode::InvalidGrant,
                "the device code was already used",
            ));
        }
        if device.expires_at <= now {
            return Err(refuse(
                ErrorCode::ExpiredToken,
                "the device code has expired; start again",
            ));
        }
        match device.decision {
            DeviceDecision::Denied { .. } => Err(refuse(
                ErrorCode::AccessDenied,
                "the user denied the request",
            )),
            DeviceDecision::Pending => {
                // RFC 8628 §3.5: polled sooner than the interval allows, the
                // device is told to slow down and its interval grows by 5 s.
                let interval = ctx
                    .device_codes
                    .record_device_poll(&hash, now, SLOW_DOWN_SECS)
                    .await?
                    .ok_or_else(|| refuse(ErrorCode::InvalidGrant, "the device code is invalid"))?;
                if interval > device.interval_secs {
                    Err(refuse(
                        ErrorCode::SlowDown,
                        "polling too fast; wait longer between requests",
                    ))
                } else {
                    Err(refuse(
                        ErrorCode::AuthorizationPending,
                        "the user has not answered yet",
                    ))
                }
            }
            DeviceDecision::Approved { .. } => {
                // One conditional UPDATE uses the code up: of racing polls
                // (on any instance) exactly one gets the tokens.
                let grant = ctx
                    .device_codes
                    .redeem_device_code(
                        &hash,
                        &client.client_id,
                        &crypto::random_token(),
                        now + ctx.tokens.settings.refresh_token_absolute_ttl_secs,
                        now,
                    )
                    .await?
                    .ok_or_else(|| {
                        refuse(ErrorCode::InvalidGrant, "the device code was already used")
                    })?;
                let access =
                    super::refresh_token::access_for(ctx, &grant, None, Vec::new()).await?;
                super::refresh_token::respond(ctx, client, &grant, access, None, true).await
            }
        }
    }
}
