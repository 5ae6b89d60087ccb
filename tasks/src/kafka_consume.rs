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
//! bytes, position and error (written after the data commit, keyed by the
//! same offsets, so a retry never writes them twice).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use aula_connectors::kafka::{ConsumeOptions, JSON_TEXT, KafkaSource, offset_key};
use aula_engine::operator::{BoxFuture, ConfigError, LogStream, Operator, TaskConfig};
use aula_engine::{TaskContext, TaskError};
use aula_warehouse::{BatchStream, BoxError, WriteMode, WriteOptions};
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
            let mut stored = HashMap::new();
            if lake.exists(&output).await.map_err(lake_error)? {
                for (topic, partition) in source
                    .partitions(&c.topics)
                    .await
                    .map_err(connector_error)?
                {
                    let key = offset_key(&topic, partition);
                    if let Some(next) = lake.txn_version(&output, &key).await.map_err(lake_error)? {
                        stored.insert((topic, partition), next);
                    }
                }
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
                let dead = handle.dead_letters().map_err(connector_error)?;
                if dead.num_rows() > 0 {
                    let mut write = WriteOptions::new(WriteMode::Append);
                    for r in &ranges {
                        write = write.txn(r.app_id(), r.end);
                    }
                    lake.write(
                        &table_name(dl)?,
                        BatchStream::from_batches(dead.schema(), vec![dead]),
                        write,
                    )
                    .await
                    .map_err(lake_error)?;
                }
            }
            Ok(())
        })
    }
}
