//! `export.csv`: a segment (a SQL file over the marts) written as
//! `exports/<segment>/<ds>.csv` under the lake root — UTF-8, a header row,
//! RFC 4180 quoting. A rerun overwrites the file.
//!
//! ```yaml
//! - id: export_inactive_learners
//!   kind: export.csv
//!   segment: inactive_learners
//!   sql: sql/exports/inactive_learners.sql
//! ```

use std::path::PathBuf;

use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_sql::LakeSession;
use aula_sql::model::referenced_tables;
use aula_warehouse::{LakeLocation, S3Settings};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Deserialize;

use crate::common::{
    lake, lake_error, parse, parse_run, register_inputs, render_with, sql_error, sql_file, utc,
    validate_sql_file,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportConfig {
    segment: String,
    sql: String,
}

pub(crate) struct ExportCsv {
    dir: PathBuf,
}

impl ExportCsv {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ExportCsv { dir }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Write `bytes` at `relative` under the lake root (a folder or S3).
async fn put(location: &LakeLocation, relative: &str, bytes: Vec<u8>) -> Result<String, TaskError> {
    let root = location.root();
    if location.is_s3() {
        let bucket = root.host_str().unwrap_or_default().to_owned();
        let key = format!("{}{relative}", root.path().trim_start_matches('/'));
        let store = S3Settings::from_env()
            .build_store(&bucket)
            .map_err(lake_error)?;
        store
            .put(&object_store::path::Path::from(key.as_str()), bytes.into())
            .await
            .map_err(|e| TaskError::retryable(format!("writing s3://{bucket}/{key}: {e}")))?;
        Ok(format!("s3://{bucket}/{key}"))
    } else {
        let base = root
            .to_file_path()
            .map_err(|()| TaskError::fatal(format!("lake root {root} is not a folder")))?;
        let path = base.join(relative);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| TaskError::retryable(format!("creating {}: {e}", parent.display())))?;
        }
        // Write then rename: a reader never sees half a file.
        let tmp = path.with_extension("csv.tmp");
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| TaskError::retryable(format!("writing {}: {e}", tmp.display())))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| TaskError::retryable(format!("writing {}: {e}", path.display())))?;
        Ok(path.display().to_string())
    }
}

impl Operator for ExportCsv {
    fn kind(&self) -> &'static str {
        "export.csv"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let c: ExportConfig = match parse(config) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        if !valid_segment(&c.segment) {
            errors.push(ConfigError::at(
                &["segment"],
                "expected letters, digits, `_` or `-`",
            ));
        }
        validate_sql_file(&self.dir, &c.sql, &mut errors);
        errors
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let c: ExportConfig = parse_run(config)?;
            let (_, text) = sql_file(&self.dir, &c.sql).map_err(TaskError::fatal)?;
            let sql = render_with(
                ctx,
                &text,
                &[("data_interval_end", utc(ctx.data_interval_end).into())],
            )?;
            let lake = lake()?;
            let session = LakeSession::new();
            register_inputs(
                &lake,
                &session,
                &referenced_tables(&c.sql, &sql).map_err(sql_error)?,
            )
            .await?;
            let mut stream = session.stream(&c.segment, &sql).await.map_err(sql_error)?;
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            let mut rows = 0usize;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| TaskError::fatal(format!("{}: {e}", c.segment)))?;
                rows += batch.num_rows();
                writer
                    .write(&batch)
                    .map_err(|e| TaskError::fatal(format!("CSV: {e}")))?;
            }
            let mut bytes = writer.into_inner();
            if rows == 0 {
                // Arrow writes the header with the first batch: an empty export still gets one.
                let header: Vec<String> = stream
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                bytes = format!("{}\n", header.join(",")).into_bytes();
            }
            let relative = format!("exports/{}/{}.csv", c.segment, ctx.ds());
            let location = lake.location().clone();
            let written = put(&location, &relative, bytes).await?;
            ctx.log.write(
                LogStream::System,
                format!("export {}: {rows} rows → {written}", c.segment),
            );
            Ok(())
        })
    }
}
