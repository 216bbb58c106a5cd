//! Discovery metadata at both well-known paths.

use serde_json::Value;

use crate::harness::{Backend, TestServer, http};

async fn both_documents_agree_and_list_only_what_works(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut docs = vec![];
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        docs.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(docs[0], docs[1]);
    let doc = &docs[0];
    assert_eq!(doc["issuer"], server.base.as_str());
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for endpoint in [
        "token_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
    ] {
        let url = doc[endpoint].as_str().unwrap();
        assert!(url.starts_with(&server.base), "{endpoint}");
    }
    let response_types = doc["response_types_supported"].as_array().unwrap();
    // `id_token` is sign-in only (no access token in the front channel,
    // form_post only); no `token` and no hybrid types.
    assert!(
        response_types
            .iter()
            .all(|t| t == "code" || t == "id_token"),
        "no implicit access tokens or hybrid response types: {response_types:?}"
    );
    // Every advertised grant type is accepted by the token endpoint.
    for grant in doc["grant_types_supported"].as_array().unwrap() {
        assert!(
            [
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
            .contains(&grant.as_str().unwrap()),
            "{grant}"
        );
    }
    // RFC 8628 §4.
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{}/device_authorization", server.base)
    );
    let jwks = http()
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
}

async fn unknown_paths_are_404_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = http().get(server.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
}

async fn cli_shares_the_database_and_shutdown_is_graceful(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, _) = server.machine_client("read").await;
    let out = server.cli(&["client", "list"]);
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["client_id"], id.as_str());
    assert!(listed[0].get("client_secret").is_none());
    let base = server.base.clone();
    server.stop().await;
    assert!(http().get(format!("{base}/jwks")).send().await.is_err());
}

crate::both_backends!(
    both_documents_agree_and_list_only_what_works,
    unknown_paths_are_404_json,
    cli_shares_the_database_and_shutdown_is_graceful,
);
