//! Smoke tests: one real round trip per service, through the client crate the
//! platform uses. A missing service fails loudly with its name; nothing skips.

mod clickhouse_smoke;
mod kafka_smoke;
mod postgres_smoke;
mod s3_smoke;
