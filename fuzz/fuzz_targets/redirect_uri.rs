#![no_main]
//! Redirect-URI registration and matching (`oauth::redirect`).
//!
//! Invariants: every registered URI matches itself; a match is always one
//! of the registered URIs, and either the requested string exactly
//! (RFC 9700 §4.1.3) or an http loopback IP literal that differs in the
//! port alone (RFC 8252 §7.3); a URI that registers has no fragment
//! (RFC 6749 §3.1.2), no dangerous scheme, and no plain http off loopback.
//!
//! URIs are raw strings or built from parts (scheme, host kind, port, …),
//! and a requested URI may be a registered one re-rendered with another
//! port or scheme, so the loopback rules are reached quickly.

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tessera::oauth::redirect::{match_registered, validate_registered_uri};
use url::{Host, Url};

#[derive(Arbitrary, Debug)]
struct Input {
    registered: Vec<Uri>,
    requested: Requested,
}

#[derive(Arbitrary, Debug)]
enum Requested {
    Uri(Uri),
    /// A registered URI with something appended.
    Suffixed {
        index: u8,
        suffix: String,
    },
    /// A registered URI rendered again with another port and maybe scheme.
    OtherPort {
        index: u8,
        port: Option<u16>,
        scheme: Option<Scheme>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
enum Uri {
    Raw(String),
    Parts(Parts),
}

#[derive(Arbitrary, Debug, Clone)]
struct Parts {
    scheme: Scheme,
    userinfo: Option<String>,
    host: HostKind,
    port: Option<u16>,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

#[derive(Arbitrary, Debug, Clone)]
enum Scheme {
    Http,
    Https,
    Javascript,
    Data,
    File,
    Other(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum HostKind {
    Loopback4,
    Loopback4Other(u8, u8, u8),
    Loopback6,
    Ipv4([u8; 4]),
    Ipv6([u16; 8]),
    Localhost,
    Domain(String),
}

impl Parts {
    fn render(&self) -> String {
        let scheme = match &self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Javascript => "javascript",
            Scheme::Data => "data",
            Scheme::File => "file",
            Scheme::Other(s) => s,
        };
        let host = match &self.host {
            HostKind::Loopback4 => "127.0.0.1".to_string(),
            HostKind::Loopback4Other(a, b, c) => format!("127.{a}.{b}.{c}"),
            HostKind::Loopback6 => "[::1]".to_string(),
            HostKind::Ipv4(o) => Ipv4Addr::from(*o).to_string(),
            HostKind::Ipv6(s) => format!("[{}]", Ipv6Addr::from(*s)),
            HostKind::Localhost => "localhost".to_string(),
            HostKind::Domain(d) => d.clone(),
        };
        let mut uri = format!("{scheme}://");
        if let Some(u) = &self.userinfo {
            uri.push_str(&format!("{u}@"));
        }
        uri.push_str(&host);
        if let Some(p) = self.port {
            uri.push_str(&format!(":{p}"));
        }
        uri.push('/');
        uri.push_str(&self.path);
        if let Some(q) = &self.query {
            uri.push_str(&format!("?{q}"));
        }
        if let Some(f) = &self.fragment {
            uri.push_str(&format!("#{f}"));
        }
        uri
    }
}

impl Uri {
    fn render(&self) -> String {
        match self {
            Uri::Raw(s) => s.clone(),
            Uri::Parts(p) => p.render(),
        }
    }
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn without_port(mut url: Url) -> Option<Url> {
    url.set_port(None).ok()?;
    Some(url)
}

fuzz_target!(|input: Input| {
    if input.registered.len() > 16 {
        return;
    }
    let registered: Vec<String> = input.registered.iter().map(Uri::render).collect();

    for uri in &registered {
        // Every registered URI matches itself.
        assert_eq!(match_registered(&registered, uri), Some(uri.as_str()));

        if validate_registered_uri(uri).is_ok() {
            assert!(!uri.contains('#'), "registered a fragment: {uri:?}");
            let url = Url::parse(uri).expect("a registered URI is absolute");
            assert!(
                !["javascript", "data", "file", "vbscript"].contains(&url.scheme()),
                "registered {uri:?}"
            );
            if url.scheme() == "http" {
                let loopback = is_loopback_ip(&url)
                    || matches!(url.host(), Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"));
                assert!(loopback, "registered plain http off loopback: {uri:?}");
            }
        }
    }

    let pick = |index: u8| (!registered.is_empty()).then(|| usize::from(index) % registered.len());
    let requested = match input.requested {
        Requested::Uri(uri) => uri.render(),
        Requested::Suffixed { index, suffix } => match pick(index) {
            Some(i) => format!("{}{suffix}", registered[i]),
            None => suffix,
        },
        Requested::OtherPort {
            index,
            port,
            scheme,
        } => match pick(index).map(|i| &input.registered[i]) {
            Some(Uri::Parts(parts)) => {
                let mut parts = parts.clone();
                parts.port = port;
                if let Some(s) = scheme {
                    parts.scheme = s;
                }
                parts.render()
            }
            Some(Uri::Raw(raw)) => raw.clone(),
            None => String::new(),
        },
    };

    let Some(found) = match_registered(&registered, &requested) else {
        return;
    };
    assert!(registered.iter().any(|r| r == found));
    if found == requested {
        return;
    }
    // Not the same string: only a loopback IP literal over http, with the
    // port the only difference.
    let req = Url::parse(&requested).expect("a loopback match parses");
    let reg = Url::parse(found).expect("the registered URI parses");
    assert_eq!(req.scheme(), "http", "{requested:?} matched {found:?}");
    assert_eq!(reg.scheme(), "http", "{requested:?} matched {found:?}");
    assert!(is_loopback_ip(&req), "{requested:?} matched {found:?}");
    assert_eq!(
        without_port(req),
        without_port(reg),
        "{requested:?} matched {found:?}"
    );
});
