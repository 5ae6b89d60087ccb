//! Aula's data task kinds: the connectors, the lake and the SQL layer bound
//! to the engine's [`Operator`] trait.
//!
//! | kind | what it does |
//! |---|---|
//! | `kafka.consume` | topics into a lake table, offsets committed with the rows |
//! | `postgres.extract` | a table or query from a named PostgreSQL connection into a lake table |
//! | `sql` | a SQL model (a `.sql` file under the pipelines folder) run by DataFusion over the lake |
//! | `polars` | a built-in Polars transform (`cohort_retention`) |
//! | `check` | data-quality checks on a lake table |
//! | `clickhouse.load` | a lake table into ClickHouse, replacing partitions |
//! | `export.csv` | a SQL result as `exports/<segment>/<ds>.csv` under the lake root |
//!
//! Every kind checks its own fields when the pipeline loads, and every write
//! replaces what a previous try of the same logical date wrote.

mod check;
mod clickhouse_load;
mod common;
mod export;
mod extract;
mod kafka_consume;
mod polars_kind;
mod sql_model;

use std::path::PathBuf;
use std::sync::Arc;

use aula_engine::Registry;

/// The built-in engine kinds plus every data kind. SQL files are looked up
/// under `pipelines_dir`.
pub fn registry(pipelines_dir: impl Into<PathBuf>) -> Registry {
    let dir: PathBuf = pipelines_dir.into();
    let mut registry = Registry::builtin();
    registry.register(Arc::new(sql_model::SqlModel::new(dir.clone())));
    registry.register(Arc::new(export::ExportCsv::new(dir)));
    registry.register(Arc::new(check::CheckKind));
    registry.register(Arc::new(polars_kind::PolarsKind));
    registry.register(Arc::new(clickhouse_load::ClickHouseLoad));
    registry.register(Arc::new(extract::PostgresExtract));
    registry.register(Arc::new(kafka_consume::KafkaConsume));
    registry
}
