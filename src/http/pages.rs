//! HTML pages: askama templates rendered with the security headers every
//! page carries.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub client_name: Option<String>,
    pub username: String,
    pub error: Option<String>,
    pub csrf_token: String,
    pub action: String,
}

pub struct ScopeView {
    pub name: String,
    pub description: String,
    /// The names of the requested APIs (RFC 8707 resources) that define
    /// this scope, comma-separated; empty when none does.
    pub api: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub username: String,
    pub scopes: Vec<ScopeView>,
    /// For a device's request (RFC 8628 §5.4): the user code, shown for
    /// the person to compare with their device's.
    pub device_user_code: Option<String>,
    pub csrf_token: String,
    pub action: String,
}

/// RFC 8628 §3.3: where the person enters the code their device shows.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    pub user_code: String,
    pub max_len: usize,
    pub error: Option<String>,
    pub csrf_token: String,
    pub action: String,
}

/// The end of the device flow in the browser: approved ("return to your
/// device") or not.
#[derive(Template)]
#[template(path = "device_done.html")]
pub struct DeviceDonePage {
    pub approved: bool,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub client_name: Option<String>,
    pub csrf_token: String,
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage;

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage {
    pub action: String,
    pub params: Vec<(String, String)>,
}

/// Renders `page` with CSP (no inline script or style, no framing),
/// `X-Frame-Options`, `Referrer-Policy: no-referrer` and `no-store`.
/// `form_targets` are extra origins forms may post or redirect to.
pub fn render(status: StatusCode, page: &impl Template, form_targets: &[&str]) -> Response {
    render_with_script(status, page, form_targets, false)
}

pub fn render_with_script(
    status: StatusCode,
    page: &impl Template,
    form_targets: &[&str],
    script: bool,
) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut form_action = String::from("'self'");
    for target in form_targets {
        if let Some(origin) = origin_of(target) {
            form_action.push(' ');
            form_action.push_str(&origin);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src {}; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        if script { "'self'" } else { "'none'" }
    );
    let mut response = (status, axum::response::Html(body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A CSP source for the origin of `uri` (scheme://host[:port]), or the
/// scheme alone for private-use URI schemes of native apps.
fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => Some(format!("{}:", url.scheme())),
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title: title.into(),
            message: message.into(),
        },
        &[],
    )
}

/// A malformed browser request: a 400 page saying what is wrong.
pub fn bad_request(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Invalid request", message)
}

/// A form whose CSRF token does not belong to this session (an old tab, or
/// a forged post): refused with 403, nothing done.
pub fn form_expired() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Go back to the application and start again.",
    )
}

/// An internal failure of a page handler: logged (inside the request's
/// span, so with its id) and answered with a generic page.
pub fn internal_error(context: &str, e: &crate::error::AppError) -> Response {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "{context}: database unavailable");
        return unavailable();
    }
    tracing::error!(error = %e, "{context}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not complete the request. Please try again later.",
    )
}

/// The database cannot take the request right now: a 503 page that says
/// so, with Retry-After, and nothing half-done.
pub fn unavailable() -> Response {
    let mut response = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The service cannot complete this right now. Please try again in a moment.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// A page response a layer produced without a body (tower-sessions answers
/// 500 with nothing when it cannot save a session): give it the page.
pub async fn fill_empty_errors(response: Response) -> Response {
    let status = response.status();
    if status.is_server_error() && !response.headers().contains_key(header::CONTENT_TYPE) {
        tracing::warn!(%status, "a layer failed the request; answering with the error page");
        return unavailable();
    }
    response
}
