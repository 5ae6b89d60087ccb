//! Connector tests against the real servers: PostgreSQL, ClickHouse, the
//! Kafka broker and the lake (local folder and S3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clickhouse;
mod common;
mod incremental;
mod kafka;
mod parallel;
mod roundtrip;
