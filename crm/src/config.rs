//! Serving: configuration from the environment and the server's lifecycle.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::api::{App, router};
use crate::auth::{AuthConfig, Authenticator};
use crate::error::CrmError;
use crate::metrics::Metrics;
use crate::outbox::{Relay, RelayConfig, bootstrap_from_url};
use crate::secret::Secret;

/// Everything `aula crm serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The CRM database URL (`AULA_CONN_CRM_DB`).
    pub database_url: Secret,
    /// The broker (`AULA_CONN_EVENTS`); no relay runs without it.
    pub events_url: Option<String>,
    /// Token verification.
    pub auth: AuthConfig,
    /// Pool size.
    pub max_connections: u32,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl AuthConfig {
    /// From `AULA_CRM_JWKS_URL` (+ `AULA_CRM_JWT_ISSUER`, `AULA_CRM_JWT_AUDIENCE`) or `AULA_CRM_JWT_SECRET`.
    pub fn from_env() -> Result<Self, CrmError> {
        let issuer = env("AULA_CRM_JWT_ISSUER");
        let audience = env("AULA_CRM_JWT_AUDIENCE");
        if let Some(url) = env("AULA_CRM_JWKS_URL") {
            let (Some(issuer), Some(audience)) = (issuer, audience) else {
                return Err(CrmError::Config(
                    "AULA_CRM_JWKS_URL needs AULA_CRM_JWT_ISSUER and AULA_CRM_JWT_AUDIENCE".into(),
                ));
            };
            return Ok(Self::Jwks {
                url,
                issuer,
                audience,
            });
        }
        match env("AULA_CRM_JWT_SECRET") {
            Some(s) if s.len() >= 16 => Ok(Self::Hs256 { secret: Secret::new(s), issuer, audience }),
            Some(_) => Err(CrmError::Config("AULA_CRM_JWT_SECRET must be at least 16 bytes".into())),
            None => Err(CrmError::Config(
                "set AULA_CRM_JWT_SECRET (HS256, development) or AULA_CRM_JWKS_URL with AULA_CRM_JWT_ISSUER \
                 and AULA_CRM_JWT_AUDIENCE (RS256)"
                    .into(),
            )),
        }
    }
}

impl ServeConfig {
    /// From `AULA_CONN_CRM_DB`, `AULA_CONN_EVENTS` and the auth variables.
    pub fn from_env(listen: SocketAddr) -> Result<Self, CrmError> {
        let database_url = env("AULA_CONN_CRM_DB")
            .map(Secret::new)
            .ok_or_else(|| CrmError::Config("AULA_CONN_CRM_DB is not set".into()))?;
        Ok(Self {
            listen,
            database_url,
            events_url: env("AULA_CONN_EVENTS"),
            auth: AuthConfig::from_env()?,
            max_connections: 32,
        })
    }
}

/// Serve until `shutdown` resolves: migrate, start the outbox relay, answer HTTP,
/// then drain in-flight requests and stop the relay.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CrmError> {
    let pool = crate::connect(&config.database_url, config.max_connections).await?;
    crate::migrate(&pool).await?;
    let state = Arc::new(App {
        pool: pool.clone(),
        auth: Authenticator::new(config.auth.clone())?,
        metrics: Arc::new(Metrics::default()),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let relay_task = match &config.events_url {
        Some(url) => {
            let relay = Relay::new(pool.clone(), RelayConfig::new(bootstrap_from_url(url)))?;
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(async move {
                relay
                    .run(async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    })
                    .await;
            }))
        }
        None => {
            tracing::warn!(
                "AULA_CONN_EVENTS is not set: events stay in the outbox until a relay runs"
            );
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "CRM API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop_tx.send(true);
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    pool.close().await;
    Ok(())
}
