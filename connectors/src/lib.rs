//! Sources and sinks speaking Arrow: PostgreSQL (COPY binary → Arrow),
//! Kafka (JSON → Arrow, bounded by offsets) and ClickHouse (Arrow →
//! Native blocks, idempotent per partition).
//!
//! These are library APIs; the engine's task kinds (`postgres.extract`,
//! `kafka.consume`, `clickhouse.load`) are thin adapters over them that add
//! connection lookup and the lake write.

pub mod clickhouse;
pub mod error;
pub mod kafka;
pub mod postgres;

pub use error::{ConnectorError, Fault};
