//! The Aula engine: pipeline specs (YAML → validated model), schedules with
//! logical dates, the run-state store (SQLite or PostgreSQL), and the
//! executor and scheduler that run task DAGs.
//!
//! Task kinds are pluggable: implement [`operator::Operator`] and register it
//! in an [`operator::Registry`] before loading pipelines.

pub mod bench;
pub mod duration;
pub mod executor;
pub mod operator;
pub mod schedule;
pub mod scheduler;
pub mod spec;
pub mod store;
pub mod template;
pub mod yaml;

pub use operator::{Operator, Registry, TaskContext, TaskError};
pub use spec::{Diagnostic, Pipeline, TaskSpec, TriggerRule, load_paths};
