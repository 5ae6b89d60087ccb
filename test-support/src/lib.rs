//! Shared fixtures for Aula's integration tests.
//!
//! Every test gets resources of its own on the real services that
//! `scripts/services up` started: a fresh PostgreSQL database, a fresh
//! ClickHouse database, unique Kafka topic names and a unique S3 prefix. Names
//! are random, so the suite runs in parallel and a rerun never sees the
//! leftovers of the previous one (`scripts/services clean` drops them).
//!
//! Connection details come from `.aula/services.env` (written by
//! `scripts/services up`), overridden by the process environment. A missing
//! service is a loud test failure that names the service, never a skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: failing loudly is the point

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Prefix of every database, topic and object prefix a test creates, so that
/// `scripts/services clean` can find and drop them.
pub const TEST_PREFIX: &str = "aula_t_";

/// Connection settings for the services, as the env file and environment give them.
#[derive(Debug, Clone)]
pub struct Services {
    vars: HashMap<String, String>,
    /// Root of the workspace (where `.aula/` lives).
    pub root: PathBuf,
}

impl Services {
    /// The value of a variable: the process environment first, then the env file.
    pub fn var(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.vars.get(name).cloned())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str, service: &str) -> String {
        self.var(name).unwrap_or_else(|| {
            panic!(
                "{service}: {name} is not set. Start the services with `scripts/services up` \
                 (it writes .aula/services.env) or export {name}."
            )
        })
    }

    /// URL of the CRM PostgreSQL database (`AULA_CONN_CRM_DB`).
    pub fn postgres_url(&self) -> String {
        self.require("AULA_CONN_CRM_DB", "PostgreSQL")
    }

    /// Kafka bootstrap servers (`host:port,…`) from `AULA_CONN_EVENTS` (`kafka://host:port`).
    pub fn kafka_bootstrap(&self) -> String {
        let url = self.require("AULA_CONN_EVENTS", "Kafka broker");
        url.strip_prefix("kafka://")
            .unwrap_or(&url)
            .trim_end_matches('/')
            .to_owned()
    }

    /// ClickHouse HTTP URL (`http://host:port`) and user from `AULA_CONN_WAREHOUSE`.
    pub fn clickhouse_http(&self) -> (String, String, String) {
        let raw = self.require("AULA_CONN_WAREHOUSE", "ClickHouse");
        let url = url::Url::parse(&raw)
            .unwrap_or_else(|e| panic!("ClickHouse: AULA_CONN_WAREHOUSE is not a URL: {e}"));
        let host = url.host_str().unwrap_or("127.0.0.1");
        let port = url.port().unwrap_or(8123);
        let user = if url.username().is_empty() {
            "default"
        } else {
            url.username()
        };
        (
            format!("http://{host}:{port}"),
            user.to_owned(),
            url.password().unwrap_or("").to_owned(),
        )
    }

    /// S3 endpoint (`AWS_ENDPOINT_URL`) of the S3-compatible server.
    pub fn s3_endpoint(&self) -> String {
        self.require("AWS_ENDPOINT_URL", "S3 object store")
    }

    /// Bucket the tests may write under (`AULA_TEST_S3_BUCKET`).
    pub fn s3_test_bucket(&self) -> String {
        self.require("AULA_TEST_S3_BUCKET", "S3 object store")
    }
}

/// The directory of the package whose tests are running, read at run time:
/// the build is shared between checkouts (one target dir), so a path baked
/// in at compile time may name another checkout than the one under test.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn find_root() -> PathBuf {
    if let Ok(dir) = std::env::var("AULA_ROOT") {
        return PathBuf::from(dir);
    }
    let start = package_dir();
    start
        .ancestors()
        .find(|dir| dir.join(".aula").is_dir() || dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// The services of this checkout, loaded once per test binary.
pub fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let root = find_root();
        let file = std::env::var("AULA_SERVICES_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".aula/services.env"));
        let vars = std::fs::read_to_string(&file)
            .map(|t| parse_env_file(&t))
            .unwrap_or_default();
        Services { vars, root }
    })
}

/// A random name, safe as a PostgreSQL/ClickHouse identifier, a Kafka topic and an S3 prefix.
pub fn unique_name(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!(
        "{TEST_PREFIX}{label}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A database of this test's own on the PostgreSQL server.
#[derive(Debug, Clone)]
pub struct TestPg {
    /// Database name.
    pub name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestPg {
    /// A pool on the test's database.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {}: cannot connect: {e}", redact(&self.url)))
    }
}

/// Create a fresh, empty PostgreSQL database for one test.
pub async fn fresh_pg(label: &str) -> TestPg {
    use sqlx::Connection;
    let base = url::Url::parse(&services().postgres_url())
        .unwrap_or_else(|e| panic!("PostgreSQL: AULA_CONN_CRM_DB is not a URL: {e}"));
    let mut admin = base.clone();
    admin.set_path("/postgres");
    let mut conn = sqlx::PgConnection::connect(admin.as_str())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not answering ({e}); run `scripts/services up`",
                redact(admin.as_str())
            )
        });
    let name = unique_name(label);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: CREATE DATABASE {name} failed: {e}"));
    let _ = conn.close().await;
    let mut url = base;
    url.set_path(&format!("/{name}"));
    TestPg {
        name,
        url: url.to_string(),
    }
}

/// A database of this test's own on the ClickHouse server.
#[derive(Clone)]
pub struct TestClickHouse {
    /// Database name.
    pub name: String,
    /// HTTP URL of the server (`http://127.0.0.1:8123`).
    pub http_url: String,
    /// A client whose default database is `name`.
    pub client: clickhouse::Client,
}

/// A ClickHouse client for the server, on the `default` database.
pub fn clickhouse_client() -> clickhouse::Client {
    let (http, user, password) = services().clickhouse_http();
    clickhouse::Client::default()
        .with_url(http)
        .with_user(user)
        .with_password(password)
        .with_validation(false)
}

/// Create a fresh ClickHouse database for one test.
pub async fn fresh_clickhouse(label: &str) -> TestClickHouse {
    let name = unique_name(label);
    let (http_url, _, _) = services().clickhouse_http();
    clickhouse_client()
        .query(&format!("CREATE DATABASE {name}"))
        .execute()
        .await
        .unwrap_or_else(|e| {
            panic!("ClickHouse at {http_url} is not answering ({e}); run `scripts/services up`")
        });
    TestClickHouse {
        client: clickhouse_client().with_database(&name),
        name,
        http_url,
    }
}

/// A unique Kafka topic name for one test (created on first produce).
pub fn unique_topic(label: &str) -> String {
    unique_name(label).replace('_', "-")
}

/// Kafka bootstrap servers of the test broker.
pub fn kafka_bootstrap() -> String {
    services().kafka_bootstrap()
}

/// A prefix of this test's own in the S3 test bucket.
#[derive(Clone)]
pub struct TestS3 {
    /// `s3://bucket/prefix`
    pub url: String,
    /// The bucket.
    pub bucket: String,
    /// The prefix inside the bucket (no leading or trailing slash).
    pub prefix: String,
    /// A store on the bucket (paths are relative to the bucket, not the prefix).
    pub store: Arc<dyn object_store::ObjectStore>,
}

/// An `object_store` builder for the S3 server, configured from the environment.
pub fn s3_builder(bucket: &str) -> object_store::aws::AmazonS3Builder {
    let s = services();
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(s.s3_endpoint())
        .with_region(s.var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()))
        .with_access_key_id(s.var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()))
        .with_secret_access_key(
            s.var("AWS_SECRET_ACCESS_KEY")
                .unwrap_or_else(|| "test".into()),
        )
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
}

/// A fresh prefix in the S3 test bucket for one test.
pub fn fresh_s3(label: &str) -> TestS3 {
    let bucket = services().s3_test_bucket();
    let store = s3_builder(&bucket)
        .build()
        .unwrap_or_else(|e| panic!("S3 object store: bad configuration: {e}"));
    let prefix = unique_name(label);
    TestS3 {
        url: format!("s3://{bucket}/{prefix}"),
        bucket,
        prefix,
        store: Arc::new(store),
    }
}

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_parse_with_quotes_and_exports() {
        let vars = parse_env_file("# c\nexport A='x y'\nB=\"z\"\nC=plain=eq\n\n");
        assert_eq!(vars["A"], "x y");
        assert_eq!(vars["B"], "z");
        assert_eq!(vars["C"], "plain=eq");
    }

    #[test]
    fn unique_names_are_identifiers_and_differ() {
        let a = unique_name("Smoke Test!");
        let b = unique_name("Smoke Test!");
        assert_ne!(a, b);
        assert!(a.starts_with("aula_t_smoke_test__"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
