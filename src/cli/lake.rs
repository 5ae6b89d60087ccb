//! `aula lake …`: look at and maintain the Delta tables of the lake
//! (`AULA_LAKE_URL`: a folder or `s3://bucket/prefix`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use aula_warehouse::{Lake, TableName};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum LakeCommand {
    /// List the lake's tables (`schema.table`).
    Tables,
    /// A table's schema, partition columns, versions, row and file counts.
    Show {
        /// Table, e.g. marts.funnel_daily.
        table: String,
    },
    /// Compact a table's small files into fewer, larger ones (a new version).
    Optimize {
        /// Table, e.g. raw.learning_activity.
        table: String,
    },
    /// Delete files no version younger than the retention still uses.
    Vacuum {
        /// Table.
        table: String,
        /// Keep files needed by versions younger than this many hours.
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
        /// Allow a retention below Delta's 7-day safety default.
        #[arg(long)]
        force: bool,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

fn lake() -> anyhow::Result<Lake> {
    Lake::from_env().context("opening the lake (set AULA_LAKE_URL)")
}

fn table(name: &str) -> anyhow::Result<TableName> {
    TableName::parse(name).with_context(|| format!("table name {name:?}"))
}

pub(crate) async fn run(cmd: LakeCommand) -> anyhow::Result<ExitCode> {
    let lake = lake()?;
    match cmd {
        LakeCommand::Tables => {
            for name in lake.list_tables().await? {
                println!("{name}");
            }
        }
        LakeCommand::Show { table: name } => {
            let info = lake.describe(&table(&name)?).await?;
            println!("{}  ({})", info.name, info.url);
            println!(
                "version {}, {} rows in {} files",
                info.version, info.row_count, info.file_count
            );
            if !info.partition_columns.is_empty() {
                println!("partitioned by {}", info.partition_columns.join(", "));
            }
            println!("columns:");
            for field in info.schema.fields() {
                let null = if field.is_nullable() { "" } else { " not null" };
                println!("  {:<28} {}{null}", field.name(), field.data_type());
            }
            println!("history (newest first):");
            for v in info.versions.iter().take(20) {
                let when = v
                    .timestamp_ms
                    .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default();
                println!(
                    "  v{:<5} {when}  {}",
                    v.version,
                    v.operation.as_deref().unwrap_or("")
                );
            }
        }
        LakeCommand::Optimize { table: name } => {
            let report = lake.optimize(&table(&name)?).await?;
            println!(
                "{name}: {} files written, {} files replaced",
                report.files_added, report.files_removed
            );
        }
        LakeCommand::Vacuum {
            table: name,
            retention_hours,
            force,
            dry_run,
        } => {
            let report = lake
                .vacuum(
                    &table(&name)?,
                    Duration::from_secs(retention_hours * 3600),
                    force,
                    dry_run,
                )
                .await?;
            let verb = if report.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            println!("{name}: {verb} {} files", report.files_deleted.len());
            for f in &report.files_deleted {
                println!("  {f}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
