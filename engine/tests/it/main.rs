//! Integration tests of the engine: the malformed-pipeline corpus, schedule
//! math, the executor and scheduler, and the run-state store on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod corpus;
mod executor;
mod schedule;
mod store;
