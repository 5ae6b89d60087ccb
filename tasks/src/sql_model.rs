//! `sql`: a SQL model run by DataFusion over the lake and written back to it.
//!
//! ```yaml
//! - id: funnel_daily
//!   kind: sql
//!   sql: sql/marts/funnel_daily.sql     # under the pipelines folder, templated
//!   output: marts.funnel_daily
//!   materialize: table                  # or: partition (with partition_by)
//!   clickhouse: {table: funnel_daily, ddl: "CREATE TABLE {table} (…) ENGINE = MergeTree() ORDER BY (day, source)"}
//! ```
//!
//! The model's inputs are the lake tables its SQL names (`staging.leads`),
//! found by parsing it; the pipeline orders models by `depends_on`.

use std::path::PathBuf;

use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_sql::LakeSession;
use aula_sql::model::referenced_tables;
use aula_warehouse::datafusion::scalar::ScalarValue;
use aula_warehouse::{BatchStream, BoxError, WriteMode, WriteOptions};
use futures::TryStreamExt;
use serde::Deserialize;

use crate::clickhouse_load::{ClickHouseTarget, load_table};
use crate::common::{
    lake, lake_error, parse, parse_run, register_inputs, render_with, sql_error, sql_file,
    table_name, utc, validate_sql_file, validate_table,
};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Materialize {
    /// Replace the whole table.
    #[default]
    Table,
    /// Replace the logical date's partition (`partition_by` = the run's `ds`).
    Partition,
    /// Recompute the last `lookback_days` days up to the logical date and
    /// keep the older rows (events arrive up to 48 h late). Rows on and after
    /// the lookback start are replaced, later dates included, so running D,
    /// then D+1, then D again leaves what a single run of D leaves. The first
    /// run (no table yet) computes the whole history.
    Incremental,
}

fn default_lookback() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlConfig {
    sql: String,
    output: String,
    #[serde(default)]
    materialize: Materialize,
    #[serde(default)]
    partition_by: Option<String>,
    #[serde(default = "default_lookback")]
    lookback_days: u32,
    #[serde(default)]
    clickhouse: Option<ClickHouseTarget>,
}

pub(crate) struct SqlModel {
    dir: PathBuf,
}

impl SqlModel {
    pub(crate) fn new(dir: PathBuf) -> Self {
        SqlModel { dir }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date32(ds: &str) -> Option<i32> {
    let date = chrono::NaiveDate::parse_from_str(ds, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// Run `sql` (already rendered) over the lake and write it to `output`.
pub(crate) async fn run_model(
    ctx: &TaskContext,
    name: &str,
    sql: &str,
    output: &str,
    options: WriteOptions,
) -> Result<u64, TaskError> {
    let lake = lake()?;
    let session = LakeSession::new();
    let inputs = referenced_tables(name, sql).map_err(sql_error)?;
    register_inputs(&lake, &session, &inputs).await?;
    let stream = session.stream(name, sql).await.map_err(sql_error)?;
    let schema = stream.schema();
    let input = BatchStream::new(schema, stream.map_err(|e| Box::new(e) as BoxError));
    let outcome = lake
        .write(&table_name(output)?, input, options)
        .await
        .map_err(lake_error)?;
    ctx.log.write(
        LogStream::System,
        format!(
            "{output}: {} rows written (reads {}), table version {}",
            outcome.input_rows,
            inputs.join(", "),
            outcome.version.map_or("-".to_owned(), |v| v.to_string())
        ),
    );
    Ok(outcome.input_rows)
}

impl Operator for SqlModel {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let c: SqlConfig = match parse(config) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        validate_table("output", &c.output, &mut errors);
        validate_sql_file(&self.dir, &c.sql, &mut errors);
        if c.materialize != Materialize::Table && c.partition_by.is_none() {
            errors.push(ConfigError::at(
                &["materialize"],
                "materialize: partition and incremental need partition_by (the date column)",
            ));
        }
        errors
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let c: SqlConfig = parse_run(config)?;
            let (_, text) = sql_file(&self.dir, &c.sql).map_err(TaskError::fatal)?;
            let output = table_name(&c.output)?;
            let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
            // Incremental: recompute from the lookback start; the first run from the beginning.
            let lookback_start = if c.materialize == Materialize::Incremental
                && lake()?.exists(&output).await.map_err(lake_error)?
            {
                ctx.data_interval_start - chrono::Duration::days(i64::from(c.lookback_days))
            } else {
                epoch
            };
            let mut sql = render_with(
                ctx,
                &text,
                &[
                    ("data_interval_start", utc(ctx.data_interval_start).into()),
                    ("data_interval_end", utc(ctx.data_interval_end).into()),
                    ("lookback_start", utc(lookback_start).into()),
                ],
            )?;
            if c.materialize == Materialize::Incremental && lookback_start > epoch {
                // Older rows stay as they are; one atomic commit replaces the rest.
                let column = c.partition_by.clone().unwrap_or_default().replace('"', "");
                sql = format!(
                    "SELECT * FROM {output} WHERE \"{column}\" < CAST(TIMESTAMP '{}' AS DATE) \
                     UNION ALL ({})",
                    utc(lookback_start),
                    sql.trim().trim_end_matches(';')
                );
            }
            let mut options = match c.materialize {
                Materialize::Table | Materialize::Incremental => {
                    WriteOptions::new(WriteMode::Overwrite)
                }
                Materialize::Partition => {
                    let column = c.partition_by.clone().unwrap_or_default();
                    let day = date32(&ctx.ds())
                        .ok_or_else(|| TaskError::fatal("logical date out of range"))?;
                    WriteOptions::new(WriteMode::ReplacePartition {
                        column,
                        value: ScalarValue::Date32(Some(day)),
                    })
                }
            };
            if let Some(column) = &c.partition_by {
                options = options.partition_by([column.clone()]);
            }
            options = options.metadata(
                "aula_run",
                serde_json::json!({"pipeline": ctx.pipeline_id, "task": ctx.task_id, "ds": ctx.ds(), "try": ctx.try_number}),
            );
            run_model(ctx, &c.sql, &sql, &c.output, options).await?;
            if let Some(target) = &c.clickhouse {
                load_table(&lake()?, &c.output, target, ctx).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::date32;

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(date32("1970-01-02"), Some(1));
        assert_eq!(date32("2026-03-15"), Some(20527));
        assert_eq!(date32("2026-02-30"), None);
    }
}
