//! `check`: data-quality checks on a lake table. A failing `error` check
//! fails the task; the log shows each check, its count and up to 20 sample
//! rows (stored with the try in the run-state store).
//!
//! ```yaml
//! - id: check_staging_leads
//!   kind: check
//!   table: staging.leads
//!   checks:
//!     - unique: [id]
//!     - accepted_values: {column: status, values: [new, contacted, qualified, converted, lost]}
//!     - relationships: {column: campaign_id, to: staging.campaigns, field: id}
//!       severity: warn
//! ```

use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_sql::LakeSession;
use aula_sql::checks::{Check, Rule};
use aula_sql::model::referenced_tables;
use serde::Deserialize;

use crate::common::{lake, parse, parse_run, register_inputs, sql_error, utc, validate_table};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckConfig {
    table: String,
    checks: Vec<Check>,
}

pub(crate) struct CheckKind;

/// Every lake table the checks read.
fn tables_read(c: &CheckConfig) -> Result<Vec<String>, TaskError> {
    let mut tables = vec![c.table.clone()];
    for check in &c.checks {
        match &check.rule {
            Rule::Relationships { to, .. } => tables.push(to.clone()),
            Rule::Sql(sql) => {
                tables.extend(referenced_tables(&check.display_name(), sql).map_err(sql_error)?)
            }
            _ => {}
        }
    }
    tables.sort();
    tables.dedup();
    Ok(tables)
}

impl Operator for CheckKind {
    fn kind(&self) -> &'static str {
        "check"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let c: CheckConfig = match parse(config) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        validate_table("table", &c.table, &mut errors);
        if c.checks.is_empty() {
            errors.push(ConfigError::at(&["checks"], "expected at least one check"));
        }
        for (i, check) in c.checks.iter().enumerate() {
            if let Err(e) = check.violations_sql(&c.table, "1970-01-01T00:00:00Z") {
                errors.push(ConfigError::at_path(
                    vec![
                        aula_engine::yaml::PathSeg::Key("checks".into()),
                        aula_engine::yaml::PathSeg::Index(i),
                    ],
                    e.to_string(),
                ));
            }
        }
        errors
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let c: CheckConfig = parse_run(config)?;
            let lake = lake()?;
            let session = LakeSession::new();
            register_inputs(&lake, &session, &tables_read(&c)?).await?;
            let as_of = utc(ctx.data_interval_end);
            let mut failed = Vec::new();
            for check in &c.checks {
                let outcome = check
                    .run(&session, &c.table, &as_of)
                    .await
                    .map_err(sql_error)?;
                ctx.log.write(LogStream::System, outcome.report());
                if outcome.fails_task() {
                    failed.push(format!("{} ({} rows)", outcome.name, outcome.violations));
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(TaskError::fatal(format!(
                    "failed checks on {}: {}",
                    c.table,
                    failed.join(", ")
                )))
            }
        })
    }
}
