//! Integration tests of the CRM API against the real PostgreSQL server and a
//! Kafka-protocol broker (`scripts/services up`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

mod api;
mod auth;
mod concurrency;
mod jwks;
mod relay;
mod schema;
mod seed;

use std::sync::Arc;

use aula_crm::api::{App, router};
use aula_crm::auth::{AuthConfig, Authenticator};
use aula_crm::metrics::Metrics;
use aula_crm::secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

pub(crate) const SECRET: &str = "test-secret-for-hs256-tokens-0123456789";

/// A CRM API on a fresh database, listening on a random loopback port.
pub(crate) struct TestApi {
    pub(crate) base: String,
    pub(crate) pool: PgPool,
    pub(crate) http: reqwest::Client,
}

impl TestApi {
    pub(crate) async fn start(label: &str) -> Self {
        Self::start_with(
            label,
            AuthConfig::Hs256 {
                secret: Secret::new(SECRET),
                issuer: None,
                audience: None,
            },
        )
        .await
    }

    pub(crate) async fn start_with(label: &str, auth: AuthConfig) -> Self {
        let pg = aula_test_support::fresh_pg(label).await;
        let pool = pg.pool().await;
        aula_crm::migrate(&pool).await.expect("migrations");
        let auth = Authenticator::new(auth).unwrap();
        let app = Arc::new(App {
            pool: pool.clone(),
            auth,
            metrics: Arc::new(Metrics::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router(app)).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            pool,
            http: reqwest::Client::new(),
        }
    }

    /// Send a request; returns status, content type and JSON body (Null when empty or not JSON).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(method, path, token, body, &[]).await
    }

    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            ctype,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, Some(&token("admin")), body).await
    }

    /// Create via POST as admin and return the created entity.
    pub(crate) async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.admin(Method::POST, path, Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text);
        r.json
    }

    /// A course, campaign, student and active enrollment to hang payments on.
    pub(crate) async fn fixture(&self) -> Fixture {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let course = self
            .create(
                "/api/v1/courses",
                json!({"code": format!("RUST-{}", &n[..6]), "title": "Rust", "category": "programming",
                       "price_cents": 19900, "currency": "EUR"}),
            )
            .await;
        let student = self
            .create(
                "/api/v1/students",
                json!({"email": format!("Ana.{}@Example.com", &n[..6]), "full_name": "Ana"}),
            )
            .await;
        let enrollment = self
            .create(
                "/api/v1/enrollments",
                json!({"student_id": student["id"], "course_id": course["id"]}),
            )
            .await;
        Fixture {
            course,
            student,
            enrollment,
        }
    }

    /// Outbox event types, in order.
    pub(crate) async fn outbox_types(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT payload->>'type' FROM crm.outbox ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

pub(crate) struct Fixture {
    pub(crate) course: Value,
    pub(crate) student: Value,
    pub(crate) enrollment: Value,
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) ctype: String,
    pub(crate) json: Value,
    pub(crate) text: String,
}

impl Resp {
    /// Fields named in a 422 problem.
    pub(crate) fn invalid_fields(&self) -> Vec<String> {
        assert_eq!(
            self.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            self.text
        );
        assert_eq!(self.ctype, "application/problem+json");
        let mut f: Vec<String> = self.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        f.sort();
        f
    }
}

/// An HS256 token for `role`, valid for an hour.
pub(crate) fn token(role: &str) -> String {
    token_with(json!({"sub": format!("user-{role}"), "roles": [role], "exp": now() + 3600}))
}

pub(crate) fn token_with(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
