//! The operational CRM API of an education business.
//!
//! It owns the `crm` schema of the data contract (§1), serves it over a small
//! REST API (axum, JSON, RFC 7807 errors, JWT auth) and publishes every change
//! to the `crm.events` topic through a transactional outbox, so that the
//! analytics side never misses a change the database committed.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod outbox;
pub mod secret;
pub mod seed;
mod validate;

pub use config::ServeConfig;
pub use error::CrmError;
pub use secret::Secret;

/// The schema migrations, embedded in the binary so `aula crm migrate` needs no files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Apply the `crm` schema migrations (idempotent: applied ones are skipped).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), CrmError> {
    MIGRATOR.run(pool).await.map_err(CrmError::Migrate)
}

/// A connection that sat idle at least this long is pinged before it is handed out.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection pool on the CRM database.
///
/// sqlx by default pings every connection it hands out: one more round trip to
/// PostgreSQL on every request, a third of a POST's latency budget and half of a
/// GET's under load (issue #6). Only a connection idle for [`PING_IF_IDLE_FOR`]
/// is checked here; a busy one was just used, and if the server died since, the
/// query fails as a retryable 503 and sqlx drops that connection.
pub async fn connect(url: &Secret, max_connections: u32) -> Result<sqlx::PgPool, CrmError> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect(url.expose())
        .await
        .map_err(|source| CrmError::Database {
            context: "connecting to the CRM database".into(),
            source,
        })
}
