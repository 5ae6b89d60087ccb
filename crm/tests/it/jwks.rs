//! RS256 tokens verified against keys from a JWKS URL, with issuer and audience checks.
//!
//! `fixtures/rsa_test_key.der` is a throwaway PKCS#1 key made for this test only.

use aula_crm::auth::AuthConfig;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestApi, now, token};

const ISSUER: &str = "http://127.0.0.1/realms/aula";
const AUDIENCE: &str = "aula-crm";

fn rs256(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn rs256_tokens_from_a_jwks_url() {
    let key = EncodingKey::from_rsa_der(include_bytes!("fixtures/rsa_test_key.der"));
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let set = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/certs", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/certs", axum::routing::get(move || async move { set }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let api = TestApi::start_with(
        "crm_jwks",
        AuthConfig::Jwks {
            url: jwks_url,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        },
    )
    .await;
    let claims = |iss: &str, aud: &str, roles: &[&str]| {
        json!({"sub": "kc-user", "iss": iss, "aud": aud, "exp": now() + 600,
               "resource_access": {AUDIENCE: {"roles": roles}}})
    };
    let good = rs256(&key, "k1", claims(ISSUER, AUDIENCE, &["sales"]));
    let r = api
        .call(Method::GET, "/api/v1/leads", Some(&good), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = json!({"email": "kc@example.com", "full_name": "K", "source": "web"});
    assert_eq!(
        api.call(
            Method::POST,
            "/api/v1/leads",
            Some(&good),
            Some(body.clone())
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let reader = rs256(&key, "k1", claims(ISSUER, AUDIENCE, &["readonly"]));
    assert_eq!(
        api.call(Method::POST, "/api/v1/leads", Some(&reader), Some(body))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    for bad in [
        rs256(
            &key,
            "k1",
            claims("http://evil/realms/aula", AUDIENCE, &["admin"]),
        ),
        rs256(&key, "k1", claims(ISSUER, "other-client", &["admin"])),
        rs256(&key, "unknown-kid", claims(ISSUER, AUDIENCE, &["admin"])),
        token("admin"), // HS256 is not accepted when a JWKS is configured
    ] {
        let r = api
            .call(Method::GET, "/api/v1/leads", Some(&bad), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
}
