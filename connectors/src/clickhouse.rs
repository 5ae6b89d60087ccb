//! ClickHouse sink: Arrow batches into MergeTree tables, idempotently per
//! partition.
//!
//! A load writes everything into a fresh staging table (`CREATE TABLE … AS
//! target`, so engine and partition key match), then swaps each partition the
//! staging table holds into the target with `ALTER TABLE t REPLACE PARTITION
//! p FROM staging`. A rerun therefore replaces and never duplicates, and a
//! crash before the swap leaves the target untouched.
//!
//! Rows travel as `Native` blocks over HTTP (columnar, so fixed-width
//! columns are copied as they are and the server parses no rows), encoded
//! per the *target's* column types (read with `DESCRIBE TABLE`), so a
//! declared DDL (`UInt64`, `Nullable(Float64)`, `DateTime`) is honoured
//! whatever the Arrow types.
//! Everything here works on ClickHouse 18.16 (no `DateTime64`, no
//! Arrow/Parquet formats, partitions found through `system.parts`) and on
//! current servers.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, GenericListArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{ConnectorError, Result};

/// Rows per `Native` block sent.
pub const DEFAULT_BLOCK_ROWS: usize = 131_072;

/// Concurrent INSERTs per load unless configured.
pub const DEFAULT_INSERTS: usize = 2;

/// A ClickHouse server and database, reached over HTTP.
#[derive(Clone)]
pub struct ClickHouse {
    client: clickhouse::Client,
    database: String,
    major: u32,
    /// Concurrent INSERTs per load (see [`ClickHouse::with_inserts`]).
    inserts: usize,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("database", &self.database)
            .field("major", &self.major)
            .finish_non_exhaustive()
    }
}

/// How to create the target table when it does not exist.
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    /// A full `CREATE TABLE` statement; used as is when given.
    pub ddl: Option<String>,
    /// `ORDER BY` columns (when built from the Arrow schema); `tuple()` when empty.
    pub order_by: Vec<String>,
    /// `PARTITION BY` expression (`toYYYYMM(day)`, `day`); none when empty.
    pub partition_by: Option<String>,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows written to staging and swapped in.
    pub rows: u64,
    /// Partition IDs replaced (`20260301` for a `Date` key, `all` when unpartitioned).
    pub partitions: Vec<String>,
}

fn ident(s: &str) -> Result<String> {
    if !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
    {
        Ok(format!("`{s}`"))
    } else {
        Err(ConnectorError::bad(
            "ClickHouse",
            format!("`{s}` is not a plain identifier"),
        ))
    }
}

impl ClickHouse {
    /// Connect with a `clickhouse://user:password@host:port/database` URL
    /// (the `AULA_CONN_WAREHOUSE` form; port 8123 by default).
    pub async fn connect(url: &str) -> Result<Self> {
        let u = url::Url::parse(url)
            .map_err(|e| ConnectorError::bad("ClickHouse", format!("connection URL: {e}")))?;
        if !matches!(u.scheme(), "clickhouse" | "http" | "https") {
            return Err(ConnectorError::bad(
                "ClickHouse",
                "URL scheme must be clickhouse://",
            ));
        }
        let scheme = if u.scheme() == "https" {
            "https"
        } else {
            "http"
        };
        let host = u.host_str().unwrap_or("127.0.0.1");
        let port = u.port().unwrap_or(8123);
        let user = if u.username().is_empty() {
            "default"
        } else {
            u.username()
        };
        let database = u.path().trim_matches('/');
        let database = if database.is_empty() {
            "default"
        } else {
            database
        };
        let client = clickhouse::Client::default()
            .with_url(format!("{scheme}://{host}:{port}"))
            .with_user(user)
            .with_password(u.password().unwrap_or(""))
            .with_validation(false);
        Self::from_client(client, database).await
    }

    /// Use a configured client; `database` becomes its default database and
    /// qualifies every table Aula touches.
    pub async fn from_client(client: clickhouse::Client, database: &str) -> Result<Self> {
        ident(database)?;
        let client = client
            .with_database(database)
            .with_validation(false)
            .with_compression(clickhouse::Compression::None);
        let version = fetch_text(&client, "SELECT version()").await?;
        let major = version
            .trim()
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        Ok(ClickHouse {
            client,
            database: database.to_owned(),
            major,
            inserts: DEFAULT_INSERTS,
        })
    }

    /// How many INSERTs a load runs at once into its staging table. The
    /// server spends a thread per INSERT parsing and writing blocks, which
    /// is a load's bottleneck; more than a few only adds parts to merge.
    pub fn with_inserts(mut self, n: usize) -> Self {
        self.inserts = n.max(1);
        self
    }

    /// The server's major version (18 for 18.16).
    pub fn server_major(&self) -> u32 {
        self.major
    }

    /// The database tables live in.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn qualified(&self, table: &str) -> Result<String> {
        Ok(format!("{}.{}", ident(&self.database)?, ident(table)?))
    }

    /// Run a statement (DDL, `ALTER`).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .query(sql)
            .execute()
            .await
            .map_err(ConnectorError::clickhouse)
    }

    /// Run a query and return its output in `format` (`TabSeparated`, `JSONEachRow`).
    pub async fn fetch_text(&self, sql: &str) -> Result<String> {
        fetch_text(&self.client, sql).await
    }

    /// Whether the table exists.
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        let out = self
            .fetch_text(&format!(
                "EXISTS TABLE {} FORMAT TabSeparated",
                self.qualified(table)?
            ))
            .await?;
        Ok(out.trim() == "1")
    }

    /// The `CREATE TABLE` statement for an Arrow schema: MergeTree, the given
    /// partition and order keys; key columns are not `Nullable` (old servers
    /// refuse nullable keys).
    pub fn create_statement(
        &self,
        table: &str,
        schema: &Schema,
        spec: &TableSpec,
    ) -> Result<String> {
        let keys: Vec<&str> = spec
            .order_by
            .iter()
            .map(String::as_str)
            .chain(spec.partition_by.iter().flat_map(|p| {
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .filter(move |n| {
                        p.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .any(|w| w == *n)
                    })
            }))
            .collect();
        let mut cols = Vec::new();
        for f in schema.fields() {
            let base = ch_type_for(f.data_type(), self.major).ok_or_else(|| {
                ConnectorError::bad(
                    "ClickHouse",
                    format!(
                        "column `{}`: no ClickHouse type for Arrow {}",
                        f.name(),
                        f.data_type()
                    ),
                )
            })?;
            let is_list = matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_));
            let ty = if f.is_nullable() && !is_list && !keys.contains(&f.name().as_str()) {
                format!("Nullable({base})")
            } else {
                base
            };
            cols.push(format!("{} {ty}", ident(f.name())?));
        }
        let order = if spec.order_by.is_empty() {
            "tuple()".to_owned()
        } else {
            let k: Result<Vec<_>> = spec.order_by.iter().map(|c| ident(c)).collect();
            format!("({})", k?.join(", "))
        };
        let partition = spec
            .partition_by
            .as_ref()
            .map(|p| format!(" PARTITION BY {p}"))
            .unwrap_or_default();
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = MergeTree(){partition} ORDER BY {order}",
            self.qualified(table)?,
            cols.join(", ")
        ))
    }

    /// Create the table if it is missing: from the declared DDL, or from the
    /// Arrow schema and the spec's keys.
    pub async fn ensure_table(&self, table: &str, schema: &Schema, spec: &TableSpec) -> Result<()> {
        if self.table_exists(table).await? {
            return Ok(());
        }
        let sql = match &spec.ddl {
            Some(ddl) => ddl.clone(),
            None => self.create_statement(table, schema, spec)?,
        };
        self.execute(&sql).await
    }

    /// The target's columns and their ClickHouse types, in order.
    pub async fn columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .fetch_text(&format!(
                "DESCRIBE TABLE {} FORMAT TabSeparatedRaw",
                self.qualified(table)?
            ))
            .await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('\t');
                Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
            })
            .collect())
    }

    /// Load a stream into `table`, replacing every partition the stream
    /// touches and dropping the partitions in `clear` that it did not touch
    /// (a rerun of a date whose rows all disappeared). Partitions are named
    /// by ClickHouse partition ID (`PARTITION ID '20260301'` for a `Date`
    /// key, `all` for an unpartitioned table): the one form that parses the
    /// same on 18.16 and current servers. The table must exist (see
    /// [`ClickHouse::ensure_table`]).
    pub async fn load<S, E>(
        &self,
        table: &str,
        batches: S,
        clear: &[String],
        block_rows: usize,
    ) -> Result<LoadReport>
    where
        S: Stream<Item = Result<RecordBatch, E>> + Send,
        E: std::fmt::Display,
    {
        let target = self.qualified(table)?;
        let staging_name = format!("{table}__aula_staging_{}", short_id());
        let staging = self.qualified(&staging_name)?;
        let columns = self.columns(table).await?;
        if columns.is_empty() {
            return Err(ConnectorError::bad(
                "ClickHouse",
                format!("table {target} has no columns"),
            ));
        }
        self.execute(&format!("DROP TABLE IF EXISTS {staging}"))
            .await?;
        self.execute(&format!("CREATE TABLE {staging} AS {target}"))
            .await?;
        let result = self
            .fill_and_swap(
                &target,
                &staging,
                &staging_name,
                &columns,
                batches,
                clear,
                block_rows,
            )
            .await;
        let dropped = self
            .execute(&format!("DROP TABLE IF EXISTS {staging}"))
            .await;
        let report = result?;
        dropped?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fill_and_swap<S, E>(
        &self,
        target: &str,
        staging: &str,
        staging_name: &str,
        columns: &[(String, String)],
        batches: S,
        clear: &[String],
        block_rows: usize,
    ) -> Result<LoadReport>
    where
        S: Stream<Item = Result<RecordBatch, E>> + Send,
        E: std::fmt::Display,
    {
        let col_list: Result<Vec<String>> = columns.iter().map(|(n, _)| ident(n)).collect();
        let sql = format!(
            "INSERT INTO {staging} ({}) FORMAT Native",
            col_list?.join(", ")
        );
        let types: Vec<ChType> = columns
            .iter()
            .map(|(n, t)| {
                ChType::parse(t).ok_or_else(|| {
                    ConnectorError::bad("ClickHouse", format!("column `{n}`: unsupported type {t}"))
                })
            })
            .collect::<Result<_>>()?;
        // Several INSERTs into the staging table at once: the server parses
        // and writes each on a thread of its own, which is where a load
        // spends its time. Encoded blocks go to whichever is free.
        let (block_tx, block_rx) = tokio::sync::mpsc::channel::<Bytes>(2 * self.inserts);
        let block_rx = Arc::new(tokio::sync::Mutex::new(block_rx));
        let mut inserts = tokio::task::JoinSet::new();
        for _ in 0..self.inserts {
            let mut insert = self.client.insert_formatted_with(sql.clone());
            let block_rx = block_rx.clone();
            inserts.spawn(async move {
                loop {
                    let next = block_rx.lock().await.recv().await;
                    let Some(block) = next else { break };
                    insert
                        .send(block)
                        .await
                        .map_err(ConnectorError::clickhouse)?;
                }
                insert.end().await.map_err(ConnectorError::clickhouse)
            });
        }
        let encoded = async {
            let mut rows = 0u64;
            let mut pending: Vec<RecordBatch> = Vec::new();
            let mut pending_rows = 0usize;
            let mut batches = std::pin::pin!(batches);
            loop {
                let next = batches.next().await;
                let done = next.is_none();
                if let Some(batch) = next {
                    let batch = batch.map_err(|e| ConnectorError::External {
                        system: "ClickHouse load input",
                        message: e.to_string(),
                    })?;
                    pending_rows += batch.num_rows();
                    if batch.num_rows() > 0 {
                        pending.push(batch);
                    }
                }
                if pending.is_empty() || (!done && pending_rows < block_rows) {
                    if done {
                        break;
                    }
                    continue;
                }
                // One Native block of about `block_rows` rows: the server
                // writes blocks as they come, so small ones mean small parts.
                let batch = if pending.len() == 1 {
                    pending.remove(0)
                } else {
                    arrow::compute::concat_batches(&pending[0].schema(), &pending)?
                };
                pending.clear();
                pending_rows = 0;
                let block = native_block(target, columns, &types, &batch)?;
                rows += batch.num_rows() as u64;
                if block_tx.send(block).await.is_err() {
                    break; // an INSERT failed; its error is reported below
                }
                if done {
                    break;
                }
            }
            drop(block_tx);
            Ok::<u64, ConnectorError>(rows)
        }
        .await;
        let mut failed = None;
        while let Some(joined) = inserts.join_next().await {
            let r = joined
                .map_err(|e| ConnectorError::clickhouse(format!("insert task failed: {e}")))
                .and_then(|r| r);
            if let Err(e) = r {
                failed.get_or_insert(e);
            }
        }
        let rows = encoded?;
        if let Some(e) = failed {
            return Err(e);
        }

        let parts = self
            .fetch_text(&format!(
                "SELECT DISTINCT partition_id FROM system.parts WHERE database = '{}' AND table = '{}' \
                 AND active FORMAT TabSeparated",
                self.database, staging_name
            ))
            .await?;
        let mut partitions: Vec<String> = parts
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        partitions.sort();
        for p in &partitions {
            self.execute(&format!(
                "ALTER TABLE {target} REPLACE PARTITION ID '{p}' FROM {staging}"
            ))
            .await?;
        }
        for p in clear {
            if !partitions.contains(p) {
                self.execute(&format!(
                    "ALTER TABLE {target} DROP PARTITION ID '{}'",
                    p.replace('\'', "")
                ))
                .await?;
            }
        }
        Ok(LoadReport { rows, partitions })
    }
}

/// One `Native` block: column count, row count, then each column whole.
fn native_block(
    target: &str,
    columns: &[(String, String)],
    types: &[ChType],
    batch: &RecordBatch,
) -> Result<Bytes> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    varint(columns.len() as u64, &mut buf);
    varint(batch.num_rows() as u64, &mut buf);
    for ((name, described), ty) in columns.iter().zip(types) {
        let col = batch.column_by_name(name).ok_or_else(|| {
            ConnectorError::bad(
                "ClickHouse",
                format!("column `{name}` of {target} is not in the input"),
            )
        })?;
        Encoder::new(name, described, ty, col)?.encode(&mut buf)?;
    }
    Ok(Bytes::from(buf))
}

fn short_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

async fn fetch_text(client: &clickhouse::Client, sql: &str) -> Result<String> {
    let mut cursor = client
        .query(sql)
        .fetch_bytes("TabSeparated")
        .map_err(ConnectorError::clickhouse)?;
    let mut out = Vec::new();
    while let Some(chunk) = cursor.next().await.map_err(ConnectorError::clickhouse)? {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|e| ConnectorError::clickhouse(format!("non-UTF-8 reply: {e}")))
}

/// The ClickHouse type for an Arrow type when Aula creates the table.
fn ch_type_for(dt: &DataType, major: u32) -> Option<String> {
    Some(match dt {
        DataType::Boolean => "UInt8".into(),
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "String".into(),
        DataType::Date32 => "Date".into(),
        DataType::Timestamp(_, _) if major > 0 && major < 20 => "DateTime('UTC')".into(),
        DataType::Timestamp(_, _) => "DateTime64(6, 'UTC')".into(),
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => format!("Decimal({p}, {s})"),
        DataType::List(f) | DataType::LargeList(f) => {
            let inner = ch_type_for(f.data_type(), major)?;
            if f.is_nullable() && !matches!(f.data_type(), DataType::List(_)) {
                format!("Array(Nullable({inner}))")
            } else {
                format!("Array({inner})")
            }
        }
        _ => return None,
    })
}

/// A ClickHouse column type, as far as `Native` encoding cares.
#[derive(Debug, Clone, PartialEq)]
enum ChType {
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Date,
    DateTime,
    DateTime64(u32),
    Decimal(u8, i8),
    Uuid,
    Nullable(Box<ChType>),
    Array(Box<ChType>),
}

impl ChType {
    fn parse(t: &str) -> Option<ChType> {
        let t = t.trim();
        let inner = |prefix: &str| t.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        if let Some(i) = inner("Nullable(") {
            return Some(ChType::Nullable(Box::new(ChType::parse(i)?)));
        }
        if let Some(i) = inner("LowCardinality(") {
            return ChType::parse(i);
        }
        if let Some(i) = inner("Array(") {
            return Some(ChType::Array(Box::new(ChType::parse(i)?)));
        }
        if let Some(i) = inner("Decimal(") {
            let (p, s) = i.split_once(',')?;
            return Some(ChType::Decimal(
                p.trim().parse().ok()?,
                s.trim().parse().ok()?,
            ));
        }
        for (prefix, p) in [("Decimal32(", 9u8), ("Decimal64(", 18), ("Decimal128(", 38)] {
            if let Some(i) = inner(prefix) {
                return Some(ChType::Decimal(p, i.trim().parse().ok()?));
            }
        }
        if let Some(i) = inner("DateTime64(") {
            let p = i.split(',').next()?.trim().parse().ok()?;
            return Some(ChType::DateTime64(p));
        }
        if t == "DateTime" || t.starts_with("DateTime(") {
            return Some(ChType::DateTime);
        }
        Some(match t {
            "UInt8" | "Bool" => ChType::UInt8,
            "UInt16" => ChType::UInt16,
            "UInt32" => ChType::UInt32,
            "UInt64" => ChType::UInt64,
            "Int8" => ChType::Int8,
            "Int16" => ChType::Int16,
            "Int32" => ChType::Int32,
            "Int64" => ChType::Int64,
            "Float32" => ChType::Float32,
            "Float64" => ChType::Float64,
            "String" => ChType::String,
            "Date" => ChType::Date,
            "UUID" => ChType::Uuid,
            _ => return None,
        })
    }

    /// The Arrow type the input is cast to before encoding.
    fn arrow(&self) -> DataType {
        match self {
            ChType::UInt8 => DataType::UInt8,
            ChType::UInt16 => DataType::UInt16,
            ChType::UInt32 => DataType::UInt32,
            ChType::UInt64 => DataType::UInt64,
            ChType::Int8 => DataType::Int8,
            ChType::Int16 => DataType::Int16,
            ChType::Int32 => DataType::Int32,
            ChType::Int64 => DataType::Int64,
            ChType::Float32 => DataType::Float32,
            ChType::Float64 => DataType::Float64,
            ChType::String | ChType::Uuid => DataType::Utf8,
            ChType::Date => DataType::Date32,
            ChType::DateTime | ChType::DateTime64(_) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ChType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            ChType::Nullable(i) => i.arrow(),
            ChType::Array(i) => DataType::List(Arc::new(arrow::datatypes::Field::new_list_field(
                i.arrow(),
                true,
            ))),
        }
    }
}

/// One column of one batch, cast to the Arrow type its ClickHouse column
/// reads, ready to be written in ClickHouse's `Native` layout.
struct Encoder<'a> {
    name: &'a str,
    /// The type name sent in the block header (the target's, without
    /// `LowCardinality`, which the server adds back on insert).
    type_name: String,
    ty: &'a ChType,
    array: ArrayRef,
}

impl<'a> Encoder<'a> {
    fn new(name: &'a str, described: &str, ty: &'a ChType, col: &ArrayRef) -> Result<Self> {
        let want = ty.arrow();
        let array = if col.data_type() == &want {
            col.clone()
        } else {
            let opts = CastOptions {
                safe: false,
                ..Default::default()
            };
            cast_with_options(col, &want, &opts).map_err(|e| {
                ConnectorError::bad(
                    "ClickHouse",
                    format!(
                        "column `{name}`: cannot convert {} to {ty:?}: {e}",
                        col.data_type()
                    ),
                )
            })?
        };
        Ok(Encoder {
            name,
            type_name: without_low_cardinality(described),
            ty,
            array,
        })
    }

    /// Name, type and the whole column's data, as a `Native` block holds them.
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        string(self.name, out);
        string(&self.type_name, out);
        encode_column(self.ty, &self.array, out).map_err(|message| {
            ConnectorError::bad("ClickHouse", format!("column `{}`: {message}", self.name))
        })
    }
}

/// `LowCardinality(T)` → `T`, at any depth: a `Native` block may carry the
/// plain type and the server converts it into the column's dictionary form
/// (ClickHouse 18.16 has no `LowCardinality` at all).
fn without_low_cardinality(t: &str) -> String {
    const LC: &str = "LowCardinality(";
    let mut s = t.trim().to_owned();
    while let Some(i) = s.find(LC) {
        let start = i + LC.len();
        let mut depth = 1;
        let end = s[start..].char_indices().find_map(|(j, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(start + j)
        });
        let Some(end) = end else { break };
        s = format!("{}{}{}", &s[..i], &s[start..end], &s[end + 1..]);
    }
    s
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// The raw little-endian values of a primitive column: what `Native` holds
/// for fixed-width types (values under nulls included; the null map masks them).
fn raw_values<T: arrow::array::ArrowPrimitiveType>(a: &ArrayRef, out: &mut Vec<u8>) {
    let values = a.as_primitive::<T>().values();
    if cfg!(target_endian = "little") {
        out.extend_from_slice(values.inner().as_slice());
    } else {
        for v in values.iter() {
            out.extend_from_slice(arrow::datatypes::ToByteSlice::to_byte_slice(v));
        }
    }
}

/// Each row's value through `f`, with `default` under nulls (their value is
/// masked by the null map, but must still be in range).
fn each_value<T: arrow::array::ArrowPrimitiveType, const N: usize>(
    a: &ArrayRef,
    default: [u8; N],
    out: &mut Vec<u8>,
    f: impl Fn(T::Native) -> Result<[u8; N], String>,
) -> Result<(), String> {
    let p = a.as_primitive::<T>();
    out.reserve(p.len() * N);
    for (i, v) in p.values().iter().enumerate() {
        if p.is_null(i) {
            out.extend_from_slice(&default);
        } else {
            out.extend_from_slice(&f(*v)?);
        }
    }
    Ok(())
}

/// One column in ClickHouse's `Native` layout: fixed-width values back to
/// back, strings length-prefixed, `Nullable` as a null map then the values,
/// `Array` as cumulative end offsets then the flattened values.
fn encode_column(ty: &ChType, a: &ArrayRef, out: &mut Vec<u8>) -> Result<(), String> {
    if let ChType::Nullable(inner) = ty {
        out.reserve(a.len());
        out.extend((0..a.len()).map(|i| u8::from(a.is_null(i))));
        return encode_values(inner, a, out);
    }
    // ClickHouse has no NULL array: a null list loads as [].
    if !matches!(ty, ChType::Array(_))
        && a.null_count() > 0
        && let Some(row) = (0..a.len()).find(|&i| a.is_null(i))
    {
        return Err(format!("row {row}: null in a non-Nullable column"));
    }
    encode_values(ty, a, out)
}

/// The values of a column, a type's default under nulls (a null map, written
/// by the caller, masks them).
fn encode_values(ty: &ChType, a: &ArrayRef, out: &mut Vec<u8>) -> Result<(), String> {
    use arrow::datatypes as t;
    match ty {
        ChType::UInt8 => raw_values::<t::UInt8Type>(a, out),
        ChType::UInt16 => raw_values::<t::UInt16Type>(a, out),
        ChType::UInt32 => raw_values::<t::UInt32Type>(a, out),
        ChType::UInt64 => raw_values::<t::UInt64Type>(a, out),
        ChType::Int8 => raw_values::<t::Int8Type>(a, out),
        ChType::Int16 => raw_values::<t::Int16Type>(a, out),
        ChType::Int32 => raw_values::<t::Int32Type>(a, out),
        ChType::Int64 => raw_values::<t::Int64Type>(a, out),
        ChType::Float32 => raw_values::<t::Float32Type>(a, out),
        ChType::Float64 => raw_values::<t::Float64Type>(a, out),
        ChType::String => {
            let s = a.as_string::<i32>();
            out.reserve(s.values().len() + s.len());
            for i in 0..s.len() {
                // Null rows (under a null map) hold "".
                let v = if s.is_null(i) { "" } else { s.value(i) };
                string(v, out);
            }
        }
        ChType::Uuid => {
            let s = a.as_string::<i32>();
            for i in 0..s.len() {
                if s.is_null(i) {
                    out.extend_from_slice(&[0; 16]);
                    continue;
                }
                let text = s.value(i);
                let hex: String = text.chars().filter(|c| *c != '-').collect();
                let v = u128::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 32)
                    .ok_or_else(|| format!("row {i}: {text:?} is not a UUID"))?;
                out.extend(((v >> 64) as u64).to_le_bytes());
                out.extend((v as u64).to_le_bytes());
            }
        }
        ChType::Date => each_value::<t::Date32Type, 2>(a, [0; 2], out, |d| {
            u16::try_from(d)
                .map(u16::to_le_bytes)
                .map_err(|_| format!("date (day {d}) is outside 1970-01-01..2149-06-06"))
        })?,
        ChType::DateTime => each_value::<t::TimestampMicrosecondType, 4>(a, [0; 4], out, |us| {
            u32::try_from(us.div_euclid(1_000_000))
                .map(u32::to_le_bytes)
                .map_err(|_| format!("timestamp {us}µs is outside DateTime's range"))
        })?,
        ChType::DateTime64(6) => raw_values::<t::TimestampMicrosecondType>(a, out),
        ChType::DateTime64(p) => {
            let p = *p;
            each_value::<t::TimestampMicrosecondType, 8>(a, [0; 8], out, |us| {
                let v = if p >= 6 {
                    us.checked_mul(10i64.pow(p - 6))
                        .ok_or_else(|| format!("timestamp {us}µs out of range"))?
                } else {
                    us.div_euclid(10i64.pow(6 - p))
                };
                Ok(v.to_le_bytes())
            })?
        }
        ChType::Decimal(p, _) => {
            match p {
                0..=9 => each_value::<t::Decimal128Type, 4>(a, [0; 4], out, |v| {
                    Ok((v as i32).to_le_bytes())
                })?,
                10..=18 => each_value::<t::Decimal128Type, 8>(a, [0; 8], out, |v| {
                    Ok((v as i64).to_le_bytes())
                })?,
                _ => raw_values::<t::Decimal128Type>(a, out),
            }
        }
        ChType::Array(inner) => {
            let list: &GenericListArray<i32> = a.as_list::<i32>();
            let offsets = list.value_offsets();
            let first = offsets.first().copied().unwrap_or(0);
            let mut end = 0u64;
            for i in 0..list.len() {
                if !list.is_null(i) {
                    end += (offsets[i + 1] - offsets[i]) as u64;
                }
                out.extend(end.to_le_bytes());
            }
            // The flattened values of the non-null lists, in order.
            let last = offsets.last().copied().unwrap_or(0);
            let values = list.values().slice(first as usize, (last - first) as usize);
            if list.null_count() == 0 {
                encode_column(inner, &values, out)?;
            } else {
                let kept: Vec<ArrayRef> = (0..list.len())
                    .filter(|&i| !list.is_null(i))
                    .map(|i| list.value(i))
                    .collect();
                let kept: Vec<&dyn Array> = kept.iter().map(|a| a.as_ref()).collect();
                let values = if kept.is_empty() {
                    values.slice(0, 0)
                } else {
                    arrow::compute::concat(&kept).map_err(|e| e.to_string())?
                };
                encode_column(inner, &values, out)?;
            }
        }
        ChType::Nullable(_) => return Err("nested Nullable".to_owned()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_parse() {
        assert_eq!(
            ChType::parse("Nullable(Float64)"),
            Some(ChType::Nullable(Box::new(ChType::Float64)))
        );
        assert_eq!(
            ChType::parse("Decimal(18, 2)"),
            Some(ChType::Decimal(18, 2))
        );
        assert_eq!(ChType::parse("Decimal64(4)"), Some(ChType::Decimal(18, 4)));
        assert_eq!(ChType::parse("DateTime('UTC')"), Some(ChType::DateTime));
        assert_eq!(
            ChType::parse("DateTime64(6, 'UTC')"),
            Some(ChType::DateTime64(6))
        );
        assert_eq!(
            ChType::parse("Array(Nullable(Int32))"),
            Some(ChType::Array(Box::new(ChType::Nullable(Box::new(
                ChType::Int32
            )))))
        );
        assert_eq!(
            ChType::parse("LowCardinality(String)"),
            Some(ChType::String)
        );
        assert_eq!(ChType::parse("Map(String, String)"), None);
    }

    #[test]
    fn low_cardinality_is_sent_as_its_inner_type() {
        assert_eq!(without_low_cardinality("LowCardinality(String)"), "String");
        assert_eq!(
            without_low_cardinality("Array(LowCardinality(Nullable(String)))"),
            "Array(Nullable(String))"
        );
        assert_eq!(
            without_low_cardinality("DateTime('UTC')"),
            "DateTime('UTC')"
        );
    }

    #[test]
    fn native_columns_follow_the_clickhouse_layout() {
        use arrow::array::{Int32Array, ListArray, StringArray};
        let mut out = Vec::new();
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), None]));
        let ty = ChType::Nullable(Box::new(ChType::String));
        encode_column(&ty, &a, &mut out).expect("encode");
        assert_eq!(out, [0, 1, 2, b'a', b'b', 0], "null map, then values");

        out.clear();
        let a: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            arrow::datatypes::Int32Type,
            _,
            _,
        >(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![Some(3)]),
        ]));
        let ty = ChType::Array(Box::new(ChType::Int32));
        encode_column(&ty, &a, &mut out).expect("encode");
        let mut want = Vec::new();
        for end in [2u64, 2, 3] {
            want.extend(end.to_le_bytes());
        }
        for v in [1i32, 2, 3] {
            want.extend(v.to_le_bytes());
        }
        assert_eq!(out, want, "end offsets, then the flattened values");

        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        let err = encode_column(&ChType::Int32, &a, &mut Vec::new()).expect_err("null");
        assert!(err.contains("row 1"), "{err}");
    }

    /// The `Native` blocks Aula sends a current server, read back by that
    /// server's own parser: chDB embeds ClickHouse 26 (installed by
    /// `scripts/bootstrap` into `~/.cache/aula/test-venv`; no ClickHouse
    /// server newer than 18.16 installs here). Types as `create_statement`
    /// makes them for a current server; nulls in every nullable column.
    #[test]
    fn native_blocks_parse_on_current_clickhouse() {
        use arrow::array::{
            BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
            Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
        };
        use arrow::datatypes::Field;
        let python = std::env::var("AULA_CHDB_PYTHON").unwrap_or_else(|_| {
            format!(
                "{}/.cache/aula/test-venv/bin/python",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("flag", DataType::Boolean, true),
            Field::new("small", DataType::Int16, true),
            Field::new("int", DataType::Int32, true),
            Field::new("real", DataType::Float32, true),
            Field::new("double", DataType::Float64, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", ts, true),
            Field::new("tags", list, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, -9_007_199_254_740_993])),
            Arc::new(BooleanArray::from(vec![Some(true), None])),
            Arc::new(Int16Array::from(vec![Some(-7), None])),
            Arc::new(Int32Array::from(vec![Some(2_000_000_000), None])),
            Arc::new(Float32Array::from(vec![Some(1.5), None])),
            Arc::new(Float64Array::from(vec![Some(-0.25), None])),
            Arc::new(StringArray::from(vec![Some("tab\tünï"), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(-123_456), None])
                    .with_precision_and_scale(18, 2)
                    .expect("decimal"),
            ),
            Arc::new(Date32Array::from(vec![Some(20_513), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_772_360_100_123_456), None])
                    .with_timezone("UTC"),
            ),
            Arc::new(ListArray::from_iter_primitive::<
                arrow::datatypes::Int32Type,
                _,
                _,
            >(vec![
                Some(vec![Some(1), None, Some(3)]),
                Some(vec![]),
            ])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let described: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| {
                let base = ch_type_for(f.data_type(), 26).expect("type");
                let ty = if f.is_nullable() && !matches!(f.data_type(), DataType::List(_)) {
                    format!("Nullable({base})")
                } else {
                    base
                };
                (f.name().clone(), ty)
            })
            .collect();
        let types: Vec<ChType> = described
            .iter()
            .map(|(_, t)| ChType::parse(t).expect("parse"))
            .collect();
        let block = native_block("t", &described, &types, &batch).expect("encode");
        let dir = std::env::temp_dir().join(format!("aula-native-{}", short_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("block.native");
        std::fs::write(&file, &block).expect("write");
        let structure = described
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        let script = "import chdb, sys\n\
            path, structure = sys.argv[1], sys.argv[2].replace(\"'\", \"\\\\'\")\n\
            sql = f\"SELECT * FROM file('{path}', Native, '{structure}')\"\n\
            print(chdb.query(sql, 'TabSeparated'), end='')";
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(&file)
            .arg(&structure)
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e}; run scripts/bootstrap to install chDB"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "chDB refused the block: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1\t1\t-7\t2000000000\t1.5\t-0.25\ttab\\tünï\t-1234.56\t2026-03-01\t2026-03-01 10:15:00.123456\t[1,NULL,3]\n\
             -9007199254740993\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t[]\n"
        );
    }

    #[test]
    fn varints_match_the_leb128_layout() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
    }

    #[test]
    fn created_types_follow_the_server_version() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(ch_type_for(&ts, 18).as_deref(), Some("DateTime('UTC')"));
        assert_eq!(
            ch_type_for(&ts, 24).as_deref(),
            Some("DateTime64(6, 'UTC')")
        );
        assert_eq!(
            ch_type_for(&DataType::Decimal128(18, 2), 18).as_deref(),
            Some("Decimal(18, 2)")
        );
        assert_eq!(
            ch_type_for(&DataType::Boolean, 18).as_deref(),
            Some("UInt8")
        );
    }
}
