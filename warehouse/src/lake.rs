//! Lake tables: writes that commit atomically (append-once, replace a
//! partition, merge by key), reads, and the maintenance commands behind
//! `aula lake tables|show|optimize|vacuum`.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::catalog::streaming::StreamingTable;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::TaskContext;
use deltalake::datafusion::physical_plan::SendableRecordBatchStream;
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::PartitionStream;
use deltalake::datafusion::prelude::{SessionContext, col, lit};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{BoxError, LakeError, Result};
use crate::location::{LakeLocation, TableName};

/// A stream of record batches that feeds one write. The stream is read once,
/// batch by batch, so a write never holds the whole input in memory.
pub struct BatchStream {
    schema: SchemaRef,
    stream: BoxStream<'static, Result<RecordBatch, BoxError>>,
}

impl fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl BatchStream {
    /// Wrap a stream whose batches all have `schema`.
    pub fn new(
        schema: SchemaRef,
        stream: impl futures::Stream<Item = Result<RecordBatch, BoxError>> + Send + 'static,
    ) -> Self {
        BatchStream {
            schema,
            stream: stream.boxed(),
        }
    }

    /// Batches already in memory (small writes, tests, dead-letter batches).
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self::new(schema, futures::stream::iter(batches.into_iter().map(Ok)))
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// An application transaction recorded in a commit (Delta's `txn` action):
/// `app_id` is a key such as `kafka/<topic>/<partition>` or
/// `<pipeline>/<task>`, `version` a number that only grows (the next Kafka
/// offset, a batch sequence number). Reading it back tells a rerun where the
/// committed data ends, in the same atomic step as the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTxn {
    /// The key.
    pub app_id: String,
    /// The version reached by this commit.
    pub version: i64,
}

/// How a write changes the table.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// Add the rows. With `txns` in the options the append is keyed: if any
    /// of those app ids already stands at a version >= the given one, the
    /// batch was committed before and the write is skipped, so a retried
    /// batch is never appended twice.
    Append,
    /// Replace the rows where `column = value` (Delta `replaceWhere`): a
    /// rerun of a logical date replaces that date's partition. Every input
    /// row must match the predicate.
    ReplacePartition {
        /// Usually the logical-date partition column.
        column: String,
        /// The partition value (e.g. `ScalarValue::Date32`).
        value: ScalarValue,
    },
    /// Keep the latest version of every row: input rows are deduplicated by
    /// `key` (the highest `version_column` wins) and merged into the table,
    /// where a matched row is replaced only by a version at least as new.
    MergeByKey {
        /// Key column (`id`).
        key: String,
        /// Version column (`updated_at`).
        version_column: String,
    },
    /// Replace the whole table.
    Overwrite,
}

/// Options of one write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// How the write changes the table.
    pub mode: WriteMode,
    /// Partition columns, used when the write creates the table (an
    /// existing table keeps its own; a different list is an error).
    pub partition_by: Vec<String>,
    /// Application transactions committed together with the data.
    pub txns: Vec<AppTxn>,
    /// Free-form JSON stored in the commit info (run key, source offsets).
    pub app_metadata: Vec<(String, serde_json::Value)>,
}

impl WriteOptions {
    /// Options for `mode`, nothing else.
    pub fn new(mode: WriteMode) -> Self {
        WriteOptions {
            mode,
            partition_by: Vec::new(),
            txns: Vec::new(),
            app_metadata: Vec::new(),
        }
    }

    /// Partition by these columns when creating the table.
    pub fn partition_by(mut self, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.partition_by = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Record an application transaction with the commit.
    pub fn txn(mut self, app_id: impl Into<String>, version: i64) -> Self {
        self.txns.push(AppTxn {
            app_id: app_id.into(),
            version,
        });
        self
    }

    /// Store JSON in the commit info.
    pub fn metadata(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.app_metadata.push((key.into(), value));
        self
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Table version after the write (the current one when skipped).
    pub version: Option<u64>,
    /// Rows read from the input stream (0 when skipped).
    pub input_rows: u64,
    /// True when a keyed append found its batch already committed.
    pub skipped: bool,
}

/// One commit in a table's history.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// Table version.
    pub version: u64,
    /// Commit time, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Operation (`WRITE`, `MERGE`, `OPTIMIZE`, …).
    pub operation: Option<String>,
}

/// What `aula lake show TABLE` prints.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The table.
    pub name: TableName,
    /// Its URL.
    pub url: String,
    /// Arrow schema of the current version.
    pub schema: SchemaRef,
    /// Partition columns.
    pub partition_columns: Vec<String>,
    /// Current version.
    pub version: u64,
    /// History, newest first.
    pub versions: Vec<VersionInfo>,
    /// Rows in the current version.
    pub row_count: u64,
    /// Data files in the current version.
    pub file_count: u64,
}

/// What `aula lake optimize` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimizeReport {
    /// Files written.
    pub files_added: u64,
    /// Files replaced.
    pub files_removed: u64,
}

/// What `aula lake vacuum` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumReport {
    /// Whether files were only listed.
    pub dry_run: bool,
    /// Files deleted (or that would be, on a dry run).
    pub files_deleted: Vec<String>,
}

/// The lake: a root location and the tables under it.
#[derive(Debug, Clone)]
pub struct Lake {
    location: LakeLocation,
}

impl Lake {
    /// A lake at `location`.
    pub fn new(location: LakeLocation) -> Self {
        Lake { location }
    }

    /// A lake from `AULA_LAKE_URL` and the `AWS_*` variables.
    pub fn from_env() -> Result<Self> {
        Ok(Lake::new(LakeLocation::from_env()?))
    }

    /// Where the lake is.
    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    fn builder(&self, name: &TableName, for_write: bool) -> Result<DeltaTableBuilder> {
        let url = self.location.table_url(name);
        let mut builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        if let Some(store) = self.location.custom_store() {
            builder = builder.with_storage_backend(store, url);
        } else if let Ok(path) = url.to_file_path()
            && for_write
        {
            // The local store needs the folder to exist before the first commit.
            std::fs::create_dir_all(&path).map_err(|e| LakeError::Delta {
                table: name.to_string(),
                source: DeltaTableError::Io { source: e },
            })?;
        }
        Ok(builder)
    }

    /// The table handle, loaded when the table exists, unloaded otherwise
    /// (ready for the write that creates it).
    /// The loaded table, or `None` when nothing was written yet.
    async fn loaded(&self, name: &TableName) -> Result<Option<DeltaTable>> {
        if !self.location.is_s3()
            && let Ok(path) = self.location.table_url(name).to_file_path()
            && !path.join("_delta_log").is_dir()
        {
            // A local table never written: say so without creating its folder.
            return Ok(None);
        }
        match self.handle_for(name, false).await? {
            (table, true) => Ok(Some(table)),
            (_, false) => Ok(None),
        }
    }

    /// The table handle, loaded when the table exists, unloaded otherwise
    /// (ready for the write that creates it).
    async fn handle_for(&self, name: &TableName, for_write: bool) -> Result<(DeltaTable, bool)> {
        let mut table = self
            .builder(name, for_write)?
            .build()
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        match table.load().await {
            Ok(()) => Ok((table, true)),
            Err(DeltaTableError::NotATable(_)) => Ok((table, false)),
            Err(e) => Err(LakeError::delta(name.to_string(), e)),
        }
    }

    /// The loaded table; `NoSuchTable` when nothing was written yet.
    pub async fn open(&self, name: &TableName) -> Result<DeltaTable> {
        self.loaded(name)
            .await?
            .ok_or_else(|| LakeError::NoSuchTable(name.to_string()))
    }

    /// Whether the table exists.
    pub async fn exists(&self, name: &TableName) -> Result<bool> {
        Ok(self.loaded(name).await?.is_some())
    }

    /// The version stored for an application transaction, `None` when the
    /// table or the app id has none. Kafka consumers read their start
    /// offsets here.
    pub async fn txn_version(&self, name: &TableName, app_id: &str) -> Result<Option<i64>> {
        let Some(table) = self.loaded(name).await? else {
            return Ok(None);
        };
        let state = table
            .snapshot()
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        state
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| LakeError::delta(name.to_string(), e))
    }

    /// Write a stream into a table in one atomic Delta commit, creating the
    /// table on first write.
    pub async fn write(
        &self,
        name: &TableName,
        input: BatchStream,
        options: WriteOptions,
    ) -> Result<WriteOutcome> {
        let tname = name.to_string();
        let (table, exists) = self.handle_for(name, true).await?;
        check_columns(&tname, &input.schema, &options)?;

        if exists && matches!(options.mode, WriteMode::Append) && !options.txns.is_empty() {
            let state = table.snapshot().map_err(|e| LakeError::delta(&tname, e))?;
            for txn in &options.txns {
                let stored = state
                    .transaction_version(table.log_store().as_ref(), &txn.app_id)
                    .await
                    .map_err(|e| LakeError::delta(&tname, e))?;
                if stored.is_some_and(|v| v >= txn.version) {
                    tracing::info!(table = %tname, app_id = %txn.app_id, "batch already committed; skipping");
                    return Ok(WriteOutcome {
                        version: table.version(),
                        input_rows: 0,
                        skipped: true,
                    });
                }
            }
        }

        let commit = CommitProperties::default()
            .with_application_transactions(
                options
                    .txns
                    .iter()
                    .map(|t| Transaction::new(&t.app_id, t.version))
                    .collect(),
            )
            .with_metadata(options.app_metadata.clone());
        let rows = Arc::new(AtomicU64::new(0));
        let provider = one_shot_provider(input, rows.clone()).map_err(|e| query_err(&tname, e))?;
        // One partition: the input is a single stream, and a round-robin
        // repartition would buffer without bound when the writer is slower
        // than the source.
        let overrides = std::collections::HashMap::from([(
            "datafusion.execution.target_partitions".to_owned(),
            "1".to_owned(),
        )]);
        let ctx = deltalake::delta_datafusion::DeltaSessionContext::new_with_session_overrides(
            &overrides,
        )
        .map_err(|e| LakeError::delta(&tname, e))?
        .into_inner();

        let table = match &options.mode {
            WriteMode::MergeByKey {
                key,
                version_column,
            } if exists => {
                let source = dedup_latest(&ctx, provider, key, version_column, &tname).await?;
                let columns: Vec<String> = source
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let (table, _metrics) = table
                    .merge(source, format!("target.{key} = source.{key}"))
                    .with_source_alias("source")
                    .with_target_alias("target")
                    // The source is a one-shot stream: plan it for a single pass.
                    .with_streaming(true)
                    .with_session_state(Arc::new(ctx.state()))
                    .with_writer_properties(writer_properties())
                    .with_commit_properties(commit)
                    .when_matched_update(|u| {
                        columns.iter().fold(
                            u.predicate(format!(
                                "source.{version_column} >= target.{version_column}"
                            )),
                            |u, c| u.update(c.as_str(), format!("source.{c}")),
                        )
                    })
                    .map_err(|e| LakeError::delta(&tname, e))?
                    .when_not_matched_insert(|i| {
                        columns
                            .iter()
                            .fold(i, |i, c| i.set(c.as_str(), format!("source.{c}")))
                    })
                    .map_err(|e| LakeError::delta(&tname, e))?
                    .await
                    .map_err(|e| LakeError::delta(&tname, e))?;
                table
            }
            mode => {
                let plan = match mode {
                    WriteMode::MergeByKey {
                        key,
                        version_column,
                    } => dedup_latest(&ctx, provider, key, version_column, &tname).await?,
                    _ => ctx.read_table(provider).map_err(|e| query_err(&tname, e))?,
                }
                .into_unoptimized_plan();
                let mut builder = table
                    .write(Vec::new())
                    .with_input_plan(plan)
                    .with_writer_properties(writer_properties())
                    .with_session_state(Arc::new(ctx.state()))
                    .with_target_file_size(std::num::NonZeroU64::new(TARGET_FILE_BYTES))
                    .with_commit_properties(commit)
                    .with_table_name(&tname);
                if !options.partition_by.is_empty() {
                    builder = builder.with_partition_columns(options.partition_by.clone());
                }
                builder = match mode {
                    WriteMode::Append | WriteMode::MergeByKey { .. } => {
                        builder.with_save_mode(SaveMode::Append)
                    }
                    WriteMode::Overwrite => builder.with_save_mode(SaveMode::Overwrite),
                    WriteMode::ReplacePartition { column, value } => builder
                        .with_save_mode(SaveMode::Overwrite)
                        .with_replace_where(col(column.as_str()).eq(lit(value.clone()))),
                };
                builder.await.map_err(|e| LakeError::delta(&tname, e))?
            }
        };
        Ok(WriteOutcome {
            version: table.version(),
            input_rows: rows.load(Ordering::Relaxed),
            skipped: false,
        })
    }

    /// A DataFusion table provider on the current version (for SQL models
    /// and the ClickHouse load). Register it with [`Lake::register`].
    pub async fn table_provider(&self, name: &TableName) -> Result<Arc<dyn TableProvider>> {
        let table = self.open(name).await?;
        table
            .table_provider()
            .await
            .map_err(|e| query_err(&name.to_string(), e))
    }

    /// Register the table in a DataFusion session under `alias`, with its
    /// object store, so SQL can read it.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        name: &TableName,
        alias: &str,
    ) -> Result<()> {
        let table = self.open(name).await?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| query_err(&name.to_string(), e))?;
        ctx.register_table(alias, provider)
            .map_err(|e| query_err(&name.to_string(), e))?;
        Ok(())
    }

    /// Stream the current version of a table (optionally a SQL query over
    /// it, where the table is called `t`).
    pub async fn scan(
        &self,
        name: &TableName,
        sql: Option<&str>,
    ) -> Result<SendableRecordBatchStream> {
        let tname = name.to_string();
        let ctx = SessionContext::new();
        self.register(&ctx, name, "t").await?;
        let df = ctx
            .sql(sql.unwrap_or("SELECT * FROM t"))
            .await
            .map_err(|e| query_err(&tname, e))?;
        df.execute_stream().await.map_err(|e| query_err(&tname, e))
    }

    /// Rows in the current version.
    pub async fn row_count(&self, name: &TableName) -> Result<u64> {
        let tname = name.to_string();
        let ctx = SessionContext::new();
        self.register(&ctx, name, "t").await?;
        let n = ctx
            .table("t")
            .await
            .map_err(|e| query_err(&tname, e))?
            .count()
            .await;
        Ok(n.map_err(|e| query_err(&tname, e))? as u64)
    }

    /// The tables under the root (`schema/table` folders holding a `_delta_log`).
    pub async fn list_tables(&self) -> Result<Vec<TableName>> {
        let (store, root) = self.location.listing_store()?;
        let mut out = Vec::new();
        let schemas = store.list_with_delimiter(Some(&root)).await?;
        for schema_dir in schemas.common_prefixes {
            let Some(schema) = schema_dir.filename() else {
                continue;
            };
            let tables = store.list_with_delimiter(Some(&schema_dir)).await?;
            for table_dir in tables.common_prefixes {
                let Some(table) = table_dir.filename() else {
                    continue;
                };
                let log = table_dir.clone().join("_delta_log");
                let has_log = store.list(Some(&log)).next().await.is_some();
                if has_log && let Ok(name) = TableName::parse(&format!("{schema}.{table}")) {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Schema, versions, row and file counts of a table.
    pub async fn describe(&self, name: &TableName) -> Result<TableInfo> {
        let tname = name.to_string();
        let table = self.open(name).await?;
        let state = table.snapshot().map_err(|e| LakeError::delta(&tname, e))?;
        let schema = state.snapshot().arrow_schema();
        let partition_columns = state.metadata().partition_columns().to_vec();
        let version = table.version().unwrap_or(0);
        let infos: Vec<_> = table
            .history(None)
            .try_collect()
            .await
            .map_err(|e| LakeError::delta(&tname, e))?;
        let versions = infos
            .into_iter()
            .enumerate()
            .map(|(i, c)| VersionInfo {
                version: version.saturating_sub(i as u64),
                timestamp_ms: c.timestamp,
                operation: c.operation,
            })
            .collect();
        let file_count = table
            .get_file_uris()
            .map_err(|e| LakeError::delta(&tname, e))?
            .count() as u64;
        let row_count = self.row_count(name).await?;
        Ok(TableInfo {
            name: name.clone(),
            url: self.location.table_url(name).to_string(),
            schema,
            partition_columns,
            version,
            versions,
            row_count,
            file_count,
        })
    }

    /// Compact small files (bin-packing) in one commit.
    pub async fn optimize(&self, name: &TableName) -> Result<OptimizeReport> {
        let table = self.open(name).await?;
        let (_, metrics) = table
            .optimize()
            .await
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        Ok(OptimizeReport {
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
        })
    }

    /// Delete files no version younger than `retention` refers to. A
    /// retention under the table's configured minimum (7 days by default) is
    /// allowed only with `force`, because readers of old versions break.
    pub async fn vacuum(
        &self,
        name: &TableName,
        retention: Duration,
        force: bool,
        dry_run: bool,
    ) -> Result<VacuumReport> {
        let table = self.open(name).await?;
        let retention = chrono_duration(retention).ok_or_else(|| LakeError::BadWrite {
            table: name.to_string(),
            reason: "retention period out of range".to_owned(),
        })?;
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(!force)
            .with_dry_run(dry_run)
            .await
            .map_err(|e| LakeError::delta(name.to_string(), e))?;
        Ok(VacuumReport {
            dry_run: metrics.dry_run,
            files_deleted: metrics.files_deleted,
        })
    }
}

/// Data files close at about this size: large enough for efficient scans,
/// small enough that the writer's in-memory file buffer keeps an extract's
/// memory flat.
const TARGET_FILE_BYTES: u64 = 32 << 20;

/// Row groups of 64 Ki rows: the writer flushes encoded pages per row
/// group, so memory does not grow with the table. LZ4_RAW rather than
/// Snappy: compression was the writer's largest cost, and LZ4_RAW took
/// 6-10% less CPU for files 2% larger (`scripts/bench extract`, 5M rows:
/// 383 MB against 375 MB); Spark 3.3+, DuckDB, Polars, DataFusion, Trino
/// and ClickHouse's Parquet reader all read it. Dictionaries give up
/// at 256 KiB instead of 1 MiB: a column of unique values (ids, uuids) is
/// hashed for a quarter as long before falling back to plain encoding,
/// while statuses, currencies and ids repeated within a row group stay
/// dictionary-encoded.
fn writer_properties() -> deltalake::parquet::file::properties::WriterProperties {
    deltalake::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(64 * 1024))
        .set_dictionary_page_size_limit(256 * 1024)
        .set_compression(deltalake::parquet::basic::Compression::LZ4_RAW)
        .build()
}

fn chrono_duration(d: Duration) -> Option<chrono::Duration> {
    chrono::Duration::from_std(d).ok()
}

fn query_err(table: &str, source: DataFusionError) -> LakeError {
    match source {
        DataFusionError::External(e) => LakeError::Input {
            table: table.to_owned(),
            source: e,
        },
        other => LakeError::Query {
            table: table.to_owned(),
            source: other,
        },
    }
}

fn is_simple_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn check_columns(table: &str, schema: &SchemaRef, options: &WriteOptions) -> Result<()> {
    let names: HashSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let bad = |reason: String| LakeError::BadWrite {
        table: table.to_owned(),
        reason,
    };
    for p in &options.partition_by {
        if !names.contains(p.as_str()) {
            return Err(bad(format!("partition column `{p}` is not in the input")));
        }
    }
    match &options.mode {
        WriteMode::ReplacePartition { column, .. } if !names.contains(column.as_str()) => Err(bad(
            format!("replace column `{column}` is not in the input"),
        )),
        WriteMode::MergeByKey {
            key,
            version_column,
        } => {
            for c in [key, version_column] {
                if !names.contains(c.as_str()) {
                    return Err(bad(format!("merge column `{c}` is not in the input")));
                }
            }
            // Merge expressions are SQL text: keep every column a plain identifier.
            if let Some(c) = names.iter().find(|c| !is_simple_ident(c)) {
                return Err(bad(format!(
                    "column `{c}`: merge needs lower-case identifier column names"
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Keep the newest row per key: `row_number() OVER (PARTITION BY key ORDER BY version DESC) = 1`.
async fn dedup_latest(
    ctx: &SessionContext,
    provider: Arc<dyn TableProvider>,
    key: &str,
    version_column: &str,
    table: &str,
) -> Result<deltalake::datafusion::dataframe::DataFrame> {
    ctx.register_table("__aula_source", provider)
        .map_err(|e| query_err(table, e))?;
    let sql = format!(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {version_column} DESC) \
         AS __aula_rn FROM __aula_source) WHERE __aula_rn = 1"
    );
    let df = ctx.sql(&sql).await.map_err(|e| query_err(table, e))?;
    df.drop_columns(&["__aula_rn"])
        .map_err(|e| query_err(table, e))
}

/// A partition stream that hands out the input once: DataFusion plans over
/// it like a table, but the data flows straight from the source to the
/// Parquet writer.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<BoxStream<'static, Result<RecordBatch, BoxError>>>>,
    rows: Arc<AtomicU64>,
}

impl fmt::Debug for OneShot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneShot")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        let rows = self.rows.clone();
        let stream: BoxStream<'static, Result<RecordBatch, DataFusionError>> = match taken {
            Some(s) => s
                .map(move |r| {
                    r.inspect(|b| {
                        rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                    })
                    .map_err(DataFusionError::External)
                })
                .boxed(),
            None => futures::stream::once(async {
                Err(DataFusionError::Internal(
                    "a write's input stream was read twice".to_owned(),
                ))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

fn one_shot_provider(
    input: BatchStream,
    rows: Arc<AtomicU64>,
) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let part = OneShot {
        schema: input.schema.clone(),
        stream: Mutex::new(Some(input.stream)),
        rows,
    };
    Ok(Arc::new(StreamingTable::try_new(
        input.schema,
        vec![Arc::new(part)],
    )?))
}
