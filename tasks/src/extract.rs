//! `postgres.extract`: a table or query from a named PostgreSQL connection
//! into a lake table, streamed as Arrow (binary `COPY`).
//!
//! ```yaml
//! - id: extract_leads
//!   kind: postgres.extract
//!   connection: crm_db
//!   table: crm.leads
//!   output: raw.crm_leads
//!   incremental: {column: updated_at}       # window: high_water (default) | interval
//!   merge_key: id                           # keep the latest version of each row
//! ```
//!
//! `high_water` reads the rows changed since the mark stored with the
//! table's last commit, up to the mark read at the start of this run, and
//! stores the new mark in the same Delta commit as the rows: a crash loses
//! nothing, and a rerun merges the same rows again (no duplicates).
//! `interval` reads the rows changed within the run's data interval.

use aula_connectors::postgres::{ExtractRequest, Window, extract, max_watermark};
use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_warehouse::{BatchStream, BoxError, WriteMode, WriteOptions};
use futures::TryStreamExt;
use serde::Deserialize;

use crate::common::{
    connection, connector_error, lake, lake_error, parse, parse_run, table_name, validate_table,
};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum WindowKind {
    #[default]
    HighWater,
    Interval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Incremental {
    column: String,
    #[serde(default)]
    window: WindowKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractConfig {
    connection: String,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    query: Option<String>,
    output: String,
    #[serde(default)]
    incremental: Option<Incremental>,
    #[serde(default)]
    merge_key: Option<String>,
    #[serde(default)]
    batch_rows: Option<usize>,
    /// COPY streams for a large table (one per two cores, at most four, when unset).
    #[serde(default)]
    parallel: Option<usize>,
}

pub(crate) struct PostgresExtract;

fn request(c: &ExtractConfig) -> Result<ExtractRequest, String> {
    let mut request = match (&c.table, &c.query) {
        (Some(table), None) => match table.split_once('.') {
            Some((schema, table)) => ExtractRequest::table(schema, table),
            None => ExtractRequest::table("public", table),
        },
        (None, Some(query)) => ExtractRequest::query(query),
        _ => return Err("give exactly one of `table` and `query`".to_owned()),
    };
    if let Some(rows) = c.batch_rows {
        request = request.batch_rows(rows);
    }
    if let Some(n) = c.parallel {
        request = request.parallel(n);
    }
    Ok(request)
}

impl Operator for PostgresExtract {
    fn kind(&self) -> &'static str {
        "postgres.extract"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let c: ExtractConfig = match parse(config) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        validate_table("output", &c.output, &mut errors);
        if let Err(e) = request(&c) {
            errors.push(ConfigError::at(
                &[if c.table.is_some() { "query" } else { "table" }],
                e,
            ));
        }
        if c.merge_key.is_some() && c.incremental.is_none() {
            errors.push(ConfigError::at(
                &["merge_key"],
                "merge_key needs incremental.column (the version column)",
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
            let c: ExtractConfig = parse_run(config)?;
            let url = connection(&c.connection)?;
            let lake = lake()?;
            let output = table_name(&c.output)?;
            let mut request = request(&c).map_err(TaskError::fatal)?;
            let mark_key = format!("{}/{}/high_water", ctx.pipeline_id, ctx.task_id);
            let mut new_mark = None;
            if let Some(inc) = &c.incremental {
                request = match inc.window {
                    WindowKind::Interval => request.window(Window::Interval {
                        column: inc.column.clone(),
                        start_us: ctx.data_interval_start.timestamp_micros(),
                        end_us: ctx.data_interval_end.timestamp_micros(),
                    }),
                    WindowKind::HighWater => {
                        let stored = if lake.exists(&output).await.map_err(lake_error)? {
                            lake.txn_version(&output, &mark_key)
                                .await
                                .map_err(lake_error)?
                        } else {
                            None
                        };
                        let until = max_watermark(&url, &request, &inc.column)
                            .await
                            .map_err(connector_error)?;
                        new_mark = until;
                        ctx.log.write(
                            LogStream::System,
                            format!(
                                "{}: rows with {} in [{stored:?}, {until:?}] µs",
                                c.output, inc.column
                            ),
                        );
                        request.window(Window::Since {
                            column: inc.column.clone(),
                            since_us: stored,
                            until_us: until,
                        })
                    }
                };
            }
            let ex = extract(&url, &request).await.map_err(connector_error)?;
            let input = BatchStream::new(
                ex.schema.clone(),
                ex.stream.map_err(|e| Box::new(e) as BoxError),
            );
            let mode = match (&c.merge_key, &c.incremental) {
                (Some(key), Some(inc)) => WriteMode::MergeByKey {
                    key: key.clone(),
                    version_column: inc.column.clone(),
                },
                (None, Some(_)) => WriteMode::Append,
                _ => WriteMode::Overwrite,
            };
            let mut options = WriteOptions::new(mode);
            if let Some(mark) = new_mark {
                options = options.txn(mark_key, mark);
            }
            let outcome = lake
                .write(&output, input, options)
                .await
                .map_err(lake_error)?;
            ctx.log.write(
                LogStream::System,
                format!(
                    "{}: {} rows extracted, table version {:?}",
                    c.output, outcome.input_rows, outcome.version
                ),
            );
            Ok(())
        })
    }
}
