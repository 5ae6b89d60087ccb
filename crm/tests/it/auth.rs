//! 401 without a valid token on every data endpoint, 403 for roles that may not write.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{TestApi, now, token, token_with};

/// Every data endpoint: (method, path, writes, admin-only).
fn endpoints() -> Vec<(Method, String, bool, bool)> {
    let id = uuid::Uuid::new_v4();
    let mut v = Vec::new();
    for (res, admin_only) in [
        ("courses", true),
        ("campaigns", false),
        ("leads", false),
        ("students", false),
        ("enrollments", false),
        ("payments", false),
    ] {
        v.push((Method::GET, format!("/api/v1/{res}"), false, false));
        v.push((Method::POST, format!("/api/v1/{res}"), true, admin_only));
        v.push((Method::GET, format!("/api/v1/{res}/{id}"), false, false));
        v.push((
            Method::PATCH,
            format!("/api/v1/{res}/{id}"),
            true,
            admin_only,
        ));
    }
    for p in [
        "leads/{id}/status",
        "leads/{id}/convert",
        "enrollments/{id}/complete",
        "enrollments/{id}/cancel",
        "payments/{id}/succeed",
        "payments/{id}/fail",
        "payments/{id}/refund",
    ] {
        v.push((
            Method::POST,
            format!("/api/v1/{}", p.replace("{id}", &id.to_string())),
            true,
            false,
        ));
    }
    v
}

#[tokio::test]
async fn every_data_endpoint_needs_a_token_and_the_right_role() {
    let api = TestApi::start("crm_auth").await;
    let expired = token_with(json!({"sub": "u", "roles": ["admin"], "exp": now() - 3600}));
    let forged = {
        let t = token("admin");
        format!("{}x", &t[..t.len() - 1])
    };
    let no_role = token_with(json!({"sub": "u", "roles": ["intern"], "exp": now() + 3600}));
    let keycloak_sales =
        token_with(json!({"sub": "u", "realm_access": {"roles": ["sales"]}, "exp": now() + 3600}));
    let eps = endpoints();
    assert_eq!(eps.len(), 31);
    for (method, path, writes, admin_only) in eps {
        let body = Some(json!({}));
        let r = api.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without token"
        );
        assert_eq!(r.ctype, "application/problem+json");
        for bad in [&expired, &forged, &"garbage".to_owned()] {
            let r = api
                .call(method.clone(), &path, Some(bad), body.clone())
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a bad token"
            );
        }
        let r = api
            .call(method.clone(), &path, Some(&no_role), body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path} with no known role"
        );
        let ro = api
            .call(
                method.clone(),
                &path,
                Some(&token("readonly")),
                body.clone(),
            )
            .await;
        let sales = api
            .call(method.clone(), &path, Some(&keycloak_sales), body.clone())
            .await;
        if writes {
            assert_eq!(
                ro.status,
                StatusCode::FORBIDDEN,
                "{method} {path} as readonly"
            );
            if admin_only {
                assert_eq!(
                    sales.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as sales"
                );
            } else {
                assert_ne!(
                    sales.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as sales"
                );
            }
        } else {
            assert!(
                matches!(ro.status, StatusCode::OK | StatusCode::NOT_FOUND),
                "{method} {path} as readonly: {}",
                ro.status
            );
        }
    }
    let spec = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(spec.status, StatusCode::UNAUTHORIZED);
    for open in ["/health", "/ready", "/metrics"] {
        let r = api.call(Method::GET, open, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{open}");
    }
    let metrics = api.call(Method::GET, "/metrics", None, None).await.text;
    assert!(
        metrics.contains(r#"route="/api/v1/leads/{id}",status="401""#),
        "{metrics}"
    );
    assert!(metrics.contains("aula_crm_http_request_duration_seconds_bucket"));
}
