//! `polars`: built-in Polars transforms, for what SQL says badly.
//!
//! ```yaml
//! - id: cohort_retention
//!   kind: polars
//!   transform: cohort_retention
//!   enrollments: staging.enrollments
//!   activity: staging.activity
//!   output: marts.cohort_retention
//! ```

use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_sql::LakeSession;
use aula_sql::transforms::CohortRetention;
use aula_warehouse::{BatchStream, WriteMode, WriteOptions};
use serde::Deserialize;

use crate::clickhouse_load::{ClickHouseTarget, load_table};
use crate::common::{
    lake, lake_error, parse, parse_run, register_inputs, sql_error, table_name, utc, validate_table,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Transform {
    CohortRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolarsConfig {
    transform: Transform,
    enrollments: String,
    activity: String,
    output: String,
    #[serde(default)]
    clickhouse: Option<ClickHouseTarget>,
}

pub(crate) struct PolarsKind;

impl Operator for PolarsKind {
    fn kind(&self) -> &'static str {
        "polars"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        match parse::<PolarsConfig>(config) {
            Err(e) => vec![e],
            Ok(c) => {
                let mut errors = Vec::new();
                validate_table("enrollments", &c.enrollments, &mut errors);
                validate_table("activity", &c.activity, &mut errors);
                validate_table("output", &c.output, &mut errors);
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
            let c: PolarsConfig = parse_run(config)?;
            let Transform::CohortRetention = c.transform;
            let lake = lake()?;
            let session = LakeSession::new();
            register_inputs(
                &lake,
                &session,
                &[c.enrollments.clone(), c.activity.clone()],
            )
            .await?;
            let transform = CohortRetention {
                enrollments: c.enrollments.clone(),
                activity: c.activity.clone(),
                ds: ctx.ds(),
                interval_end: utc(ctx.data_interval_end),
            };
            // The matrix is small (cohorts × months): it is built in memory by design.
            let (schema, batches) = transform.run(&session).await.map_err(sql_error)?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            lake.write(
                &table_name(&c.output)?,
                BatchStream::from_batches(schema, batches),
                WriteOptions::new(WriteMode::Overwrite),
            )
            .await
            .map_err(lake_error)?;
            ctx.log.write(
                LogStream::System,
                format!("{}: {rows} rows (Polars cohort_retention)", c.output),
            );
            if let Some(target) = &c.clickhouse {
                load_table(&lake, &c.output, target, ctx).await?;
            }
            Ok(())
        })
    }
}
