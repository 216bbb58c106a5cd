//! Redirect URIs: what may be registered (RFC 6749 §3.1.2, RFC 8252 §7) and
//! how a requested URI is matched against the registered ones.

use url::Url;

/// A registered redirect URI is absolute and has no fragment
/// (RFC 6749 §3.1.2). Plain http is allowed only for loopback hosts
/// (RFC 8252 §7.3); private-use schemes serve native apps (§7.1).
pub fn validate_registered_uri(uri: &str) -> Result<(), String> {
    let url = absolute_without_fragment(uri, "redirect URI")?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?} uses http on a non-loopback host; use https"
        )),
        "javascript" | "data" | "file" | "vbscript" => {
            Err(format!("redirect URI {uri:?} uses a forbidden scheme"))
        }
        _ => Ok(()),
    }
}

/// OIDC Back-Channel Logout 1.0 §2.2: the `backchannel_logout_uri` is an
/// absolute URL without a fragment that Tessera POSTs to: https, or plain
/// http on a loopback host (a developer's machine; RFC 8252 §7.3 draws the
/// same line for redirect URIs).
pub fn validate_backchannel_logout_uri(uri: &str) -> Result<(), String> {
    let url = absolute_without_fragment(uri, "back-channel logout URI")?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "back-channel logout URI {uri:?} must use https (http only on a loopback host)"
        )),
    }
}

/// `uri` parsed, when it is absolute and has no fragment (RFC 6749
/// §3.1.2); `what` names it in the error.
fn absolute_without_fragment(uri: &str, what: &str) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|e| format!("{what} {uri:?} is not absolute: {e}"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(format!("{what} {uri:?} must not contain a fragment"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Finds the registered URI that `requested` matches: exactly, by simple
/// string comparison (RFC 9700 §4.1.3), except that for a loopback IP
/// literal the port may differ (RFC 8252 §7.3).
pub fn match_registered<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Some(exact);
    }
    let req = Url::parse(requested).ok()?;
    // RFC 9700 §4.1.3: string comparison apart from the port. Parsing
    // normalises (dot segments, case, escapes), so only a requested URI that
    // is already in normal form may take part in the loopback comparison.
    if req.as_str() != requested {
        return None;
    }
    if req.scheme() != "http"
        || !matches!(req.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
        || !is_loopback(&req)
    {
        return None;
    }
    registered.iter().map(String::as_str).find(|r| {
        let Ok(reg) = Url::parse(r) else { return false };
        let mut reg_any_port = reg.clone();
        let mut req_any_port = req.clone();
        reg_any_port.set_port(None).is_ok()
            && req_any_port.set_port(None).is_ok()
            && reg.scheme() == "http"
            && reg_any_port == req_any_port
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_matching_compares_strings_apart_from_the_port() {
        let registered = vec!["http://127.0.0.1/cb".to_string()];
        assert!(match_registered(&registered, "http://127.0.0.1:4711/cb").is_some());
        for sneaky in [
            "http://127.0.0.1:4711/x/../cb",
            "http://127.0.0.1:4711/./cb",
            "http://127.0.0.1:4711/%63b",
            "HTTP://127.0.0.1:4711/cb",
        ] {
            assert!(match_registered(&registered, sneaky).is_none(), "{sneaky}");
        }
    }

    #[test]
    fn registration_rules() {
        assert!(validate_registered_uri("https://app.example/cb").is_ok());
        assert!(validate_registered_uri("http://127.0.0.1/cb").is_ok());
        assert!(validate_registered_uri("com.example.app:/cb").is_ok());
        assert!(validate_registered_uri("http://app.example/cb").is_err());
        assert!(validate_registered_uri("https://app.example/cb#x").is_err());
        assert!(validate_registered_uri("/cb").is_err());
        assert!(validate_registered_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn backchannel_logout_uris_are_https_or_loopback_http() {
        for good in [
            "https://rp.example/logout",
            "https://rp.example:8443/bc?x=1",
            "http://127.0.0.1:9000/logout",
            "http://[::1]/logout",
            "http://localhost/logout",
        ] {
            assert!(validate_backchannel_logout_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://rp.example/logout",
            "https://rp.example/logout#x",
            "/logout",
            "com.example.app:/logout",
            "javascript:alert(1)",
        ] {
            assert!(validate_backchannel_logout_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_match_except_loopback_port() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(match_registered(&reg, "https://app.example/cb").is_some());
        assert!(match_registered(&reg, "https://app.example/cb/").is_none());
        assert!(match_registered(&reg, "https://app.example/cb?x=1").is_none());
        assert!(match_registered(&reg, "https://APP.example/cb").is_none());
        assert!(match_registered(&reg, "http://127.0.0.1:53127/native").is_some());
        assert!(match_registered(&reg, "http://127.0.0.1:53127/other").is_none());
        assert!(match_registered(&reg, "https://app.example:8443/cb").is_none());
    }
}
