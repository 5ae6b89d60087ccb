//! `clickhouse.load`: a lake table into ClickHouse, idempotently. The table
//! is created from a declared DDL (or the Arrow schema), the rows go to a
//! staging table and replace the target's partitions in one `REPLACE
//! PARTITION` each, so a rerun replaces and never duplicates.

use aula_connectors::clickhouse::{ClickHouse, DEFAULT_BLOCK_ROWS, LoadReport, TableSpec};
use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_warehouse::Lake;
use futures::TryStreamExt;
use serde::Deserialize;

use crate::common::{
    connection, connector_error, lake, lake_error, parse, parse_run, table_name, validate_table,
};

fn default_connection() -> String {
    "warehouse".to_owned()
}

/// Where a lake table lands in ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClickHouseTarget {
    /// Connection name (`AULA_CONN_<NAME>`), `warehouse` by default.
    #[serde(default = "default_connection")]
    pub(crate) connection: String,
    /// Table in the connection's database.
    pub(crate) table: String,
    /// `CREATE TABLE` statement; `{table}` stands for the qualified name.
    #[serde(default)]
    pub(crate) ddl: Option<String>,
    /// `ORDER BY` columns when the table is built from the Arrow schema.
    #[serde(default)]
    pub(crate) order_by: Vec<String>,
    /// `PARTITION BY` expression when built from the Arrow schema.
    #[serde(default)]
    pub(crate) partition_by: Option<String>,
    /// Replace only the partitions the rows touch (a partition-per-date
    /// load) instead of the whole table.
    #[serde(default)]
    pub(crate) touched_partitions_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadConfig {
    /// Lake table to read.
    source: String,
    #[serde(flatten)]
    target: ClickHouseTarget,
}

/// Copy the current version of lake table `source` into ClickHouse.
pub(crate) async fn load_table(
    lake: &Lake,
    source: &str,
    target: &ClickHouseTarget,
    ctx: &TaskContext,
) -> Result<LoadReport, TaskError> {
    let source = table_name(source)?;
    let url = connection(&target.connection)?;
    let ch = ClickHouse::connect(&url).await.map_err(connector_error)?;
    let stream = lake.scan(&source, None).await.map_err(lake_error)?;
    let schema = stream.schema();
    let spec = TableSpec {
        ddl: target.ddl.as_ref().map(|ddl| {
            ddl.replace(
                "{table}",
                &format!("`{}`.`{}`", ch.database(), target.table),
            )
        }),
        order_by: target.order_by.clone(),
        partition_by: target.partition_by.clone(),
    };
    ch.ensure_table(&target.table, &schema, &spec)
        .await
        .map_err(connector_error)?;
    // A full load clears every partition the new rows do not cover.
    let clear = if target.touched_partitions_only {
        Vec::new()
    } else {
        let listing = ch
            .fetch_text(&format!(
                "SELECT DISTINCT partition_id FROM system.parts WHERE active AND database = '{}' AND table = '{}'",
                ch.database().replace('\'', ""),
                target.table.replace('\'', "")
            ))
            .await
            .map_err(connector_error)?;
        let mut ids: Vec<String> = listing
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if ids.is_empty() {
            ids.push("all".to_owned());
        }
        ids
    };
    let report = ch
        .load(
            &target.table,
            stream.map_err(|e| e.to_string()),
            &clear,
            DEFAULT_BLOCK_ROWS,
        )
        .await
        .map_err(connector_error)?;
    ctx.log.write(
        LogStream::System,
        format!(
            "clickhouse {}.{}: {} rows, partitions replaced: {}",
            ch.database(),
            target.table,
            report.rows,
            report.partitions.join(", ")
        ),
    );
    Ok(report)
}

pub(crate) struct ClickHouseLoad;

impl Operator for ClickHouseLoad {
    fn kind(&self) -> &'static str {
        "clickhouse.load"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        match parse::<LoadConfig>(config) {
            Err(e) => vec![e],
            Ok(c) => {
                let mut errors = Vec::new();
                validate_table("source", &c.source, &mut errors);
                errors
            }
        }
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let c: LoadConfig = parse_run(config)?;
            let lake = lake()?;
            load_table(&lake, &c.source, &c.target, ctx)
                .await
                .map(|_| ())
        })
    }
}
