//! `kafka.consume`: topics into a lake table through a declared schema,
//! exactly once.
//!
//! ```yaml
//! - id: consume_learning_activity
//!   kind: kafka.consume
//!   connection: events
//!   topics: [learning.activity]
//!   output: raw.learning_activity
//!   dead_letter: raw.learning_activity_dead_letters
//!   max_bad_ratio: 0.01
//!   columns:
//!     - {name: event_id, type: string, required: true}
//!     - {name: occurred_at, type: timestamp, required: true}
//! ```
//!
//! A run assigns every partition itself (no consumer-group join), reads from
//! the offsets stored with the lake table up to the high-water marks seen at
//! the start, and commits the next offsets as Delta `txn` actions in the same
//! commit as the rows: a crash anywhere loses nothing and duplicates nothing.
//! Messages that fail to decode go to the dead-letter table with their raw
//! bytes, position and error. That table is a second commit, after the
//! data's, and it stores its own offsets (an empty commit when a run had no
//! bad message): a retry never writes a dead letter twice, and if a crash
//! falls between the two commits, the next run finds the dead-letter offsets
//! behind the data's, reads that gap again and writes only its failures.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use aula_connectors::kafka::{ConsumeOptions, JSON_TEXT, KafkaSource, PartitionRange, offset_key};
use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_warehouse::{BatchStream, BoxError, Lake, TableName, WriteMode, WriteOptions};
use futures::TryStreamExt;
use serde::Deserialize;

use crate::common::{
    connection, connector_error, lake, lake_error, parse, parse_run, table_name, validate_table,
};

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ColumnType {
    String,
    Int32,
    Int64,
    Float64,
    Boolean,
    /// RFC 3339 text → Timestamp(µs, UTC).
    Timestamp,
    Date,
    /// Any JSON value, kept as its JSON text (`crm.events` `data`).
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    kind: ColumnType,
    #[serde(default)]
    required: bool,
}

fn default_ratio() -> f64 {
    0.01
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumeConfig {
    connection: String,
    topics: Vec<String>,
    output: String,
    #[serde(default)]
    dead_letter: Option<String>,
    #[serde(default = "default_ratio")]
    max_bad_ratio: f64,
    columns: Vec<Column>,
    #[serde(default)]
    batch_rows: Option<usize>,
}

fn schema(columns: &[Column]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let dt = match c.kind {
                ColumnType::String => DataType::Utf8,
                ColumnType::Int32 => DataType::Int32,
                ColumnType::Int64 => DataType::Int64,
                ColumnType::Float64 => DataType::Float64,
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
                ColumnType::Date => DataType::Date32,
                ColumnType::Json => DataType::Utf8,
            };
            let field = Field::new(&c.name, dt, !c.required);
            if matches!(c.kind, ColumnType::Json) {
                field.with_metadata(HashMap::from([(JSON_TEXT.to_owned(), "true".to_owned())]))
            } else {
                field
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

pub(crate) struct KafkaConsume;

impl Operator for KafkaConsume {
    fn kind(&self) -> &'static str {
        "kafka.consume"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let c: ConsumeConfig = match parse(config) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        validate_table("output", &c.output, &mut errors);
        if let Some(dl) = &c.dead_letter {
            validate_table("dead_letter", dl, &mut errors);
        }
        if c.topics.is_empty() {
            errors.push(ConfigError::at(&["topics"], "expected at least one topic"));
        }
        if c.columns.is_empty() {
            errors.push(ConfigError::at(
                &["columns"],
                "expected at least one column",
            ));
        }
        if !(0.0..=1.0).contains(&c.max_bad_ratio) {
            errors.push(ConfigError::at(
                &["max_bad_ratio"],
                "expected a fraction between 0 and 1",
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
            let c: ConsumeConfig = parse_run(config)?;
            let source = KafkaSource::new(&connection(&c.connection)?).map_err(connector_error)?;
            let lake = lake()?;
            let output = table_name(&c.output)?;

            // Offsets stored with the table's commits.
            let stored = if lake.exists(&output).await.map_err(lake_error)? {
                let partitions = source
                    .partitions(&c.topics)
                    .await
                    .map_err(connector_error)?;
                stored_offsets(&lake, &output, partitions).await?
            } else {
                HashMap::new()
            };
            if let Some(dl) = &c.dead_letter {
                catch_up_dead_letters(&source, &lake, &table_name(dl)?, &c, &stored, ctx).await?;
            }
            let ranges = source
                .plan(&c.topics, &stored)
                .await
                .map_err(connector_error)?;
            if ranges.is_empty() {
                ctx.log.write(
                    LogStream::System,
                    format!("{}: nothing new on {}", c.output, c.topics.join(", ")),
                );
                return Ok(());
            }
            let planned: u64 = ranges.iter().map(|r| (r.end - r.start).max(0) as u64).sum();
            ctx.log.write(
                LogStream::System,
                format!(
                    "{}: {planned} messages in {} partition(s)",
                    c.output,
                    ranges.len()
                ),
            );

            let mut options = ConsumeOptions {
                max_bad_ratio: c.max_bad_ratio,
                ..ConsumeOptions::default()
            };
            if let Some(rows) = c.batch_rows {
                options.batch_rows = rows;
            }
            let consume = source.consume(ranges.clone(), schema(&c.columns), options);
            let handle = consume.handle();
            let input = BatchStream::new(
                consume.schema.clone(),
                consume.stream.map_err(|e| Box::new(e) as BoxError),
            );
            let mut write = WriteOptions::new(WriteMode::Append);
            for r in &ranges {
                write = write.txn(r.app_id(), r.end);
            }
            let outcome = lake
                .write(&output, input, write)
                .await
                .map_err(lake_error)?;
            let stats = handle.stats();
            ctx.log.write(
                LogStream::System,
                format!(
                    "{}: {} messages, {} bad, {} rows committed with their offsets{}",
                    c.output,
                    stats.messages,
                    stats.bad,
                    outcome.input_rows,
                    if outcome.skipped {
                        " (already committed by an earlier try)"
                    } else {
                        ""
                    }
                ),
            );
            if let Some(dl) = &c.dead_letter {
                // Written even when empty: the commit records how far the
                // dead letters are complete (see `catch_up_dead_letters`).
                let dead = handle.dead_letters().map_err(connector_error)?;
                write_dead_letters(&lake, &table_name(dl)?, dead, &ranges).await?;
            }
            Ok(())
        })
    }
}

/// The next offset stored with an existing `table`'s commits for each of
/// `partitions` that has one.
async fn stored_offsets(
    lake: &Lake,
    table: &TableName,
    partitions: impl IntoIterator<Item = (String, i32)>,
) -> Result<HashMap<(String, i32), i64>, TaskError> {
    let mut stored = HashMap::new();
    for (topic, partition) in partitions {
        let key = offset_key(&topic, partition);
        if let Some(next) = lake.txn_version(table, &key).await.map_err(lake_error)? {
            stored.insert((topic, partition), next);
        }
    }
    Ok(stored)
}

/// Append dead letters with the offsets they complete, keyed so that a retry
/// of the same ranges is skipped.
async fn write_dead_letters(
    lake: &Lake,
    table: &TableName,
    dead: arrow::array::RecordBatch,
    ranges: &[PartitionRange],
) -> Result<(), TaskError> {
    let mut write = WriteOptions::new(WriteMode::Append);
    for r in ranges {
        write = write.txn(r.app_id(), r.end);
    }
    lake.write(
        table,
        BatchStream::from_batches(dead.schema(), vec![dead]),
        write,
    )
    .await
    .map_err(lake_error)?;
    Ok(())
}

/// The dead letters of messages whose rows were committed but whose
/// dead-letter commit never happened (a crash between the two commits):
/// for every partition where the dead-letter table's stored offset trails
/// the data table's, read that gap again and write only its failures. A
/// partition the dead-letter table has never seen is read from the start of
/// what the broker retains.
async fn catch_up_dead_letters(
    source: &KafkaSource,
    lake: &Lake,
    dead_table: &TableName,
    c: &ConsumeConfig,
    data_offsets: &HashMap<(String, i32), i64>,
    ctx: &TaskContext,
) -> Result<(), TaskError> {
    if data_offsets.is_empty() {
        return Ok(());
    }
    let dead_offsets = if lake.exists(dead_table).await.map_err(lake_error)? {
        stored_offsets(lake, dead_table, data_offsets.keys().cloned()).await?
    } else {
        HashMap::new()
    };
    let gaps: Vec<PartitionRange> = source
        .plan(&c.topics, &dead_offsets)
        .await
        .map_err(connector_error)?
        .into_iter()
        .filter_map(|mut r| {
            let committed = *data_offsets.get(&(r.topic.clone(), r.partition))?;
            r.end = r.end.min(committed);
            (r.start < r.end).then_some(r)
        })
        .collect();
    if gaps.is_empty() {
        return Ok(());
    }
    let missing: i64 = gaps.iter().map(|r| r.end - r.start).sum();
    ctx.log.write(
        LogStream::System,
        format!(
            "{dead_table}: dead letters trail the committed offsets by {missing} message(s) \
             in {} partition(s); reading them again",
            gaps.len()
        ),
    );
    // The ratio was enforced when these rows were committed; recovering
    // their dead letters must not fail on it again.
    let options = ConsumeOptions {
        max_bad_ratio: 1.0,
        ..ConsumeOptions::default()
    };
    let consume = source.consume(gaps.clone(), schema(&c.columns), options);
    let handle = consume.handle();
    consume
        .stream
        .try_for_each(|_| async { Ok(()) })
        .await
        .map_err(connector_error)?;
    let dead = handle.dead_letters().map_err(connector_error)?;
    ctx.log.write(
        LogStream::System,
        format!("{dead_table}: {} dead letter(s) recovered", dead.num_rows()),
    );
    write_dead_letters(lake, dead_table, dead, &gaps).await
}
