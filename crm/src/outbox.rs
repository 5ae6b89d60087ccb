//! The transactional outbox and its relay to `crm.events`.
//!
//! A change and its event commit together (same transaction), so the topic
//! can never miss a committed change nor announce a rolled-back one. The relay
//! publishes unsent rows in id order and stamps `sent_at` only after the
//! broker acknowledged them: a crash or a broker outage leads to a resend
//! (at-least-once), never to a loss; `event_id` lets consumers deduplicate.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::CrmError;

/// The topic of CRM change events (contract §2).
pub const CRM_EVENTS_TOPIC: &str = "crm.events";

/// One `crm.events` message value.
#[derive(Debug, Serialize)]
pub struct EventEnvelope<'a, T: Serialize> {
    /// Unique per event, for consumer-side deduplication.
    pub event_id: Uuid,
    /// `<entity>.<verb>`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// When the change committed (the transaction's time).
    pub occurred_at: DateTime<Utc>,
    /// The changed entity's id (also the message key).
    pub entity_id: Uuid,
    /// The entity's row after the change.
    pub data: &'a T,
}

/// Write the event of a change into the outbox, inside the change's transaction.
pub(crate) async fn record<T: Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    kind: &str,
    entity_id: Uuid,
    data: &T,
    occurred_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let event_id = Uuid::new_v4();
    let envelope = EventEnvelope {
        event_id,
        kind,
        occurred_at,
        entity_id,
        data,
    };
    let payload = serde_json::to_value(&envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("INSERT INTO crm.outbox (event_id, topic, key, payload) VALUES ($1, $2, $3, $4)")
        .bind(event_id)
        .bind(CRM_EVENTS_TOPIC)
        .bind(entity_id.to_string())
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Kafka bootstrap servers (`host:port,…`).
    pub bootstrap: String,
    /// Topic to publish to (the contract's `crm.events`; tests use their own).
    pub topic: String,
    /// Rows per round.
    pub batch: i64,
    /// How long to sleep when there is nothing to send.
    pub idle: Duration,
    /// How long the broker may take to acknowledge one message before the round fails.
    pub delivery_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for a bootstrap list and the contract's topic.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            topic: CRM_EVENTS_TOPIC.to_owned(),
            batch: 500,
            idle: Duration::from_millis(200),
            delivery_timeout: Duration::from_secs(10),
        }
    }
}

/// `kafka://host:port[,host:port]` or a bare bootstrap list → bootstrap list.
pub fn bootstrap_from_url(url: &str) -> String {
    url.strip_prefix("kafka://")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

/// Publishes outbox rows to Kafka.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    config: RelayConfig,
}

impl Relay {
    /// A relay on `pool` producing to the configured broker.
    pub fn new(pool: PgPool, config: RelayConfig) -> Result<Self, CrmError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "5")
            .create()
            .map_err(|e| CrmError::Broker(format!("creating the producer: {e}")))?;
        Ok(Self {
            pool,
            producer,
            config,
        })
    }

    /// Publish one batch of unsent rows; returns how many were acknowledged.
    ///
    /// Rows are locked (`FOR UPDATE SKIP LOCKED`) so several relays can run;
    /// the acknowledged ones are stamped even when others in the batch failed.
    pub async fn run_once(&self) -> Result<usize, CrmError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(CrmError::db("relay: begin"))?;
        let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
            "SELECT id, key, payload FROM crm.outbox WHERE sent_at IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(CrmError::db("relay: reading the outbox"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut payloads = Vec::with_capacity(rows.len());
        for (_, _, payload) in &rows {
            payloads.push(serde_json::to_string(payload).unwrap_or_default());
        }
        let sends = rows.iter().zip(&payloads).map(|((_, key, _), payload)| {
            let record = FutureRecord::to(&self.config.topic)
                .key(key.as_str())
                .payload(payload.as_str());
            self.producer.send(record, self.config.delivery_timeout)
        });
        let results = futures::future::join_all(sends).await;
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        for ((id, _, _), result) in rows.iter().zip(results) {
            match result {
                Ok(_) => sent.push(*id),
                Err((e, _)) => {
                    failed.push(*id);
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        sqlx::query(
            "UPDATE crm.outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY($1)",
        )
        .bind(&sent)
        .execute(&mut *tx)
        .await
        .map_err(CrmError::db("relay: marking rows sent"))?;
        if !failed.is_empty() {
            sqlx::query("UPDATE crm.outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(&failed)
                .execute(&mut *tx)
                .await
                .map_err(CrmError::db("relay: counting attempts"))?;
        }
        tx.commit().await.map_err(CrmError::db("relay: commit"))?;
        match first_error {
            Some(e) => Err(CrmError::Broker(format!(
                "{} of {} events not acknowledged (will retry): {e}",
                failed.len(),
                rows.len()
            ))),
            None => Ok(sent.len()),
        }
    }

    /// Run until `shutdown` resolves, backing off while the broker or database is down.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        loop {
            let wait = match self.run_once().await {
                Ok(n) if n as i64 >= self.config.batch => Duration::ZERO,
                Ok(n) => {
                    backoff = Duration::from_millis(200);
                    if n > 0 {
                        tracing::debug!(events = n, "relayed outbox events");
                        Duration::ZERO
                    } else {
                        self.config.idle
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay round failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    w
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Number of rows still waiting to be published.
    pub async fn backlog(&self) -> Result<i64, CrmError> {
        sqlx::query_scalar("SELECT count(*) FROM crm.outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(CrmError::db("relay: counting the backlog"))
    }
}
