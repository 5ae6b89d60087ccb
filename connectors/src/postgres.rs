//! PostgreSQL source: a table or a query streamed out with
//! `COPY (…) TO STDOUT (FORMAT binary)` and decoded straight into Arrow
//! builders.
//!
//! Why COPY binary: it is the fastest way PostgreSQL ships rows (no per-row
//! protocol messages, no text parsing), and decoding its fixed binary
//! encodings into Arrow builders costs little more than a memcpy. A
//! background task owns the connection, fills builders up to `batch_rows`
//! rows and hands each finished batch over a channel of two slots, so memory
//! stays flat whatever the table size.
//!
//! Types are checked before any data moves: the query is wrapped in a
//! temporary view whose catalog entry gives every column's type and type
//! modifier (numeric precision and scale), and a type Aula cannot map fails
//! with the column's name.

use std::sync::{Arc, Mutex};

use arrow::array::NullBufferBuilder;
use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray,
    StringArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::{Connection, PgConnection, Row};

use crate::error::{ConnectorError, Result};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Scale used for `numeric` columns declared without one.
pub const DEFAULT_NUMERIC_SCALE: i8 = 10;
/// Rows per batch unless configured: the lake writer queues up to ten
/// batches, so larger ones only raise peak memory (65,536 measured 340 MB
/// at 5M rows, 16,384 under 250 MB, at the same speed).
pub const DEFAULT_BATCH_ROWS: usize = 16_384;

/// What to extract.
#[derive(Debug, Clone)]
pub enum Source {
    /// A whole table (`schema.table`), optionally some of its columns.
    Table {
        /// Schema (`crm`).
        schema: String,
        /// Table (`leads`).
        table: String,
        /// Columns to read; all when empty.
        columns: Vec<String>,
    },
    /// A `SELECT` statement (no trailing semicolon).
    Query(String),
}

/// Which rows: all, or those changed in a window of a watermark column.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// Every row.
    Full,
    /// Rows with `start <= column < end` (a run's data interval), bounds in
    /// microseconds since the Unix epoch, UTC.
    Interval {
        /// Watermark column (`updated_at`).
        column: String,
        /// Inclusive start.
        start_us: i64,
        /// Exclusive end.
        end_us: i64,
    },
    /// Rows with `since <= column <= until`: `since` is the stored
    /// high-water mark (no lower bound when `None`), `until` the mark read
    /// at the start of the run with [`max_watermark`] (no upper bound when
    /// `None`). Bounding the run by a mark known *before* streaming lets the
    /// caller store that mark in the same commit as the rows. The lower
    /// bound is inclusive on purpose: a row committed later with the same
    /// timestamp as the mark is not missed, and merge-by-key makes the
    /// re-read row harmless.
    Since {
        /// Watermark column (`updated_at`).
        column: String,
        /// Stored high-water mark, µs since the epoch.
        since_us: Option<i64>,
        /// Upper bound (inclusive), µs since the epoch.
        until_us: Option<i64>,
    },
}

/// One extraction request.
#[derive(Debug, Clone)]
pub struct ExtractRequest {
    /// What to read.
    pub source: Source,
    /// Which rows.
    pub window: Window,
    /// Rows per Arrow batch (bounded memory: about two batches in flight).
    pub batch_rows: usize,
    /// COPY streams a large table is split into (see [`ExtractRequest::parallel`]).
    pub parallel: usize,
    /// Tables smaller than this (bytes on disk) are read by one COPY.
    pub parallel_min_bytes: u64,
}

/// Below this size one COPY is quick anyway, and extra connections cost more
/// than they save.
pub const PARALLEL_MIN_BYTES: u64 = 64 << 20;

/// One COPY stream per two cores, at most four: a stream costs about a core
/// here (decoding) besides the lake writer's Parquet encoding, so on two
/// cores a second stream only adds memory (measured: `scripts/bench
/// extract`, same wall time). Set [`ExtractRequest::parallel`] where
/// PostgreSQL's single COPY is the limit.
fn default_parallel() -> usize {
    (std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        / 2)
    .clamp(1, 4)
}

impl ExtractRequest {
    /// Read all of `schema.table`.
    pub fn table(schema: &str, table: &str) -> Self {
        ExtractRequest {
            source: Source::Table {
                schema: schema.to_owned(),
                table: table.to_owned(),
                columns: Vec::new(),
            },
            window: Window::Full,
            batch_rows: DEFAULT_BATCH_ROWS,
            parallel: default_parallel(),
            parallel_min_bytes: PARALLEL_MIN_BYTES,
        }
    }

    /// Read the result of a `SELECT`.
    pub fn query(sql: &str) -> Self {
        ExtractRequest {
            source: Source::Query(sql.trim().trim_end_matches(';').to_owned()),
            window: Window::Full,
            batch_rows: DEFAULT_BATCH_ROWS,
            parallel: 1,
            parallel_min_bytes: PARALLEL_MIN_BYTES,
        }
    }

    /// Restrict to a window.
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Rows per batch.
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// Split a table read into up to `n` COPY streams over disjoint block
    /// (`ctid`) ranges, all on one exported snapshot, so together they see
    /// exactly what one COPY would. Only tables (not queries) of at least
    /// `parallel_min_bytes`, on PostgreSQL 14+ (TID range scans), are split;
    /// row order across streams is not kept.
    pub fn parallel(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }

    /// The size from which a table read is split (see [`ExtractRequest::parallel`]).
    pub fn parallel_min_bytes(mut self, bytes: u64) -> Self {
        self.parallel_min_bytes = bytes;
        self
    }

    fn select_sql(&self) -> Result<String> {
        self.select_sql_where(None)
    }

    /// The `SELECT`, with `table_filter` (a condition on the table's own
    /// columns, such as a `ctid` range) applied to a table source.
    fn select_sql_where(&self, table_filter: Option<&str>) -> Result<String> {
        let base = match &self.source {
            Source::Table {
                schema,
                table,
                columns,
            } => {
                let cols = if columns.is_empty() {
                    "*".to_owned()
                } else {
                    columns
                        .iter()
                        .map(|c| quote_ident(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let filter = table_filter
                    .map(|f| format!(" WHERE {f}"))
                    .unwrap_or_default();
                format!(
                    "SELECT {cols} FROM {}.{}{filter}",
                    quote_ident(schema),
                    quote_ident(table)
                )
            }
            Source::Query(q) => {
                if q.is_empty() {
                    return Err(ConnectorError::bad("PostgreSQL", "empty query"));
                }
                q.clone()
            }
        };
        Ok(match &self.window {
            Window::Full => base,
            Window::Interval {
                column,
                start_us,
                end_us,
            } => format!(
                "SELECT * FROM ({base}) AS aula_src WHERE {c} >= {s} AND {c} < {e}",
                c = quote_ident(column),
                s = ts_literal(*start_us),
                e = ts_literal(*end_us),
            ),
            Window::Since {
                column,
                since_us,
                until_us,
            } => {
                let c = quote_ident(column);
                let mut conds = Vec::new();
                if let Some(s) = since_us {
                    conds.push(format!("{c} >= {}", ts_literal(*s)));
                }
                if let Some(u) = until_us {
                    conds.push(format!("{c} <= {}", ts_literal(*u)));
                }
                if conds.is_empty() {
                    base
                } else {
                    format!(
                        "SELECT * FROM ({base}) AS aula_src WHERE {}",
                        conds.join(" AND ")
                    )
                }
            }
        })
    }

    fn watermark_column(&self) -> Option<&str> {
        match &self.window {
            Window::Full => None,
            Window::Interval { column, .. } | Window::Since { column, .. } => Some(column),
        }
    }
}

/// `"ident"` with embedded quotes doubled.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A `timestamptz` literal for µs since the epoch; built from an integer, so
/// it cannot inject SQL.
fn ts_literal(us: i64) -> String {
    format!("(TIMESTAMPTZ 'epoch' + {us} * INTERVAL '1 microsecond')")
}

/// How one column's binary values decode.
#[derive(Debug, Clone, PartialEq)]
enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// text, varchar, bpchar, name, enums, json: UTF-8 bytes.
    Text,
    /// jsonb: a version byte, then UTF-8 text.
    Jsonb,
    Uuid,
    Date,
    Timestamp,
    Numeric {
        precision: u8,
        scale: i8,
    },
    Array(Box<PgKind>),
}

impl PgKind {
    fn data_type(&self) -> DataType {
        match self {
            PgKind::Bool => DataType::Boolean,
            PgKind::Int2 => DataType::Int16,
            PgKind::Int4 => DataType::Int32,
            PgKind::Int8 => DataType::Int64,
            PgKind::Float4 => DataType::Float32,
            PgKind::Float8 => DataType::Float64,
            PgKind::Text | PgKind::Jsonb | PgKind::Uuid => DataType::Utf8,
            PgKind::Date => DataType::Date32,
            PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgKind::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgKind::Array(inner) => {
                DataType::List(Arc::new(Field::new_list_field(inner.data_type(), true)))
            }
        }
    }
}

/// Catalog facts about one type.
struct PgTypeRow {
    name: String,
    typtype: String,
    elem: u32,
    base: u32,
}

async fn type_row(conn: &mut PgConnection, oid: u32) -> Result<PgTypeRow> {
    let row = sqlx::query(
        "SELECT typname::text, typtype::text, typelem::int8, typbasetype::int8 FROM pg_type WHERE oid = $1::int8::oid",
    )
    .bind(i64::from(oid))
    .fetch_one(&mut *conn)
    .await
    .map_err(ConnectorError::pg)?;
    Ok(PgTypeRow {
        name: row.get::<String, _>(0),
        typtype: row.get::<String, _>(1),
        elem: u32::try_from(row.get::<i64, _>(2)).unwrap_or(0),
        base: u32::try_from(row.get::<i64, _>(3)).unwrap_or(0),
    })
}

/// Map a type (by oid, with its modifier) to a decoder, following domains
/// to their base type and arrays to their element type.
async fn kind_of(conn: &mut PgConnection, column: &str, oid: u32, typmod: i32) -> Result<PgKind> {
    let mut oid = oid;
    for _ in 0..8 {
        let t = type_row(conn, oid).await?;
        if t.typtype == "d" {
            oid = t.base;
            continue;
        }
        if t.typtype == "e" {
            return Ok(PgKind::Text);
        }
        let unsupported = || ConnectorError::UnsupportedType {
            column: column.to_owned(),
            pg_type: t.name.clone(),
        };
        return Ok(match t.name.as_str() {
            "bool" => PgKind::Bool,
            "int2" => PgKind::Int2,
            "int4" => PgKind::Int4,
            "int8" => PgKind::Int8,
            "float4" => PgKind::Float4,
            "float8" => PgKind::Float8,
            "text" | "varchar" | "bpchar" | "name" | "json" | "citext" => PgKind::Text,
            "jsonb" => PgKind::Jsonb,
            "uuid" => PgKind::Uuid,
            "date" => PgKind::Date,
            "timestamp" | "timestamptz" => PgKind::Timestamp,
            "numeric" => {
                if typmod >= 4 {
                    let m = typmod - 4;
                    let precision = ((m >> 16) & 0xffff) as u8;
                    let scale = (m & 0xffff) as i8;
                    if precision == 0 || precision > 38 {
                        return Err(unsupported());
                    }
                    PgKind::Numeric { precision, scale }
                } else {
                    PgKind::Numeric {
                        precision: 38,
                        scale: DEFAULT_NUMERIC_SCALE,
                    }
                }
            }
            _ if t.name.starts_with('_') && t.elem != 0 => {
                // Array modifiers are the element's modifiers.
                let inner = Box::pin(kind_of(conn, column, t.elem, typmod)).await?;
                if matches!(inner, PgKind::Array(_)) {
                    return Err(unsupported());
                }
                PgKind::Array(Box::new(inner))
            }
            _ => return Err(unsupported()),
        });
    }
    Err(ConnectorError::UnsupportedType {
        column: column.to_owned(),
        pg_type: format!("oid {oid} (domain chain)"),
    })
}

/// The Arrow schema of a request, plus each column's decoder. Runs on the
/// connection before any data moves.
async fn plan(conn: &mut PgConnection, select: &str) -> Result<(SchemaRef, Vec<PgKind>)> {
    let view = format!("aula_extract_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE OR REPLACE TEMP VIEW {view} AS {select}"
    )))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        ConnectorError::bad(
            "PostgreSQL",
            format!("the extract query does not plan: {e}"),
        )
    })?;
    let rows = sqlx::query(
        "SELECT attname::text, atttypid::int8, atttypmod, attnotnull FROM pg_attribute \
         WHERE attrelid = ('pg_temp.' || $1)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .bind(&view)
    .fetch_all(&mut *conn)
    .await
    .map_err(ConnectorError::pg)?;
    let mut fields = Vec::with_capacity(rows.len());
    let mut kinds = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.get(0);
        let oid = u32::try_from(row.get::<i64, _>(1)).unwrap_or(0);
        let typmod: i32 = row.get(2);
        let kind = kind_of(conn, &name, oid, typmod).await?;
        fields.push(Field::new(name, kind.data_type(), true));
        kinds.push(kind);
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP VIEW IF EXISTS {view}")))
        .execute(&mut *conn)
        .await
        .map_err(ConnectorError::pg)?;
    Ok((Arc::new(Schema::new(fields)), kinds))
}

/// The Arrow schema an extract will produce, without moving data.
pub async fn extract_schema(url: &str, request: &ExtractRequest) -> Result<SchemaRef> {
    let mut conn = connect(url).await?;
    let (schema, _) = plan(&mut conn, &request.select_sql()?).await?;
    let _ = conn.close().await;
    Ok(schema)
}

async fn connect(url: &str) -> Result<PgConnection> {
    PgConnection::connect(url).await.map_err(|e| {
        // sqlx errors do not echo the URL; say which host without the password.
        let host = url::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432)
                )
            })
            .unwrap_or_else(|| "the configured server".to_owned());
        ConnectorError::External {
            system: "PostgreSQL",
            message: format!("cannot connect to {host}: {e}"),
        }
    })
}

/// A running extract: the batches, and the high-water mark seen once the
/// stream is exhausted.
pub struct Extract {
    /// Schema of every batch.
    pub schema: SchemaRef,
    /// The batches. Dropping the stream stops the extract.
    pub stream: BoxStream<'static, Result<RecordBatch>>,
    high_water: Arc<Mutex<Option<i64>>>,
    rows: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for Extract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extract")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Extract {
    /// The largest watermark value read (µs since the epoch), once the stream
    /// has ended; store it with the data as the next run's `Window::Since`.
    pub fn high_water_us(&self) -> Option<i64> {
        self.high_water.lock().ok().and_then(|g| *g)
    }

    /// Rows decoded so far.
    pub fn rows(&self) -> u64 {
        self.rows.lock().map(|g| *g).unwrap_or(0)
    }
}

/// The largest value of `column` among the rows `request` would read now
/// (µs since the epoch; `None` when there are none). Read it at the start of
/// an incremental run, bound the run with `Window::Since { until_us }` and
/// store it with the data.
pub async fn max_watermark(
    url: &str,
    request: &ExtractRequest,
    column: &str,
) -> Result<Option<i64>> {
    let inner = request.select_sql()?;
    let probe = ExtractRequest::query(&format!(
        "SELECT max({}) AS aula_high_water FROM ({inner}) AS aula_src",
        quote_ident(column)
    ));
    let mut ex = extract(url, &probe).await?;
    if ex.schema.field(0).data_type() != &PgKind::Timestamp.data_type() {
        return Err(ConnectorError::bad(
            "PostgreSQL",
            format!("watermark column `{column}` must be a timestamp or timestamptz"),
        ));
    }
    let mut out = None;
    while let Some(batch) = ex.stream.next().await {
        let batch = batch?;
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .ok_or_else(|| ConnectorError::pg("high-water probe returned a non-timestamp"))?;
        if !col.is_empty() && !arrow::array::Array::is_null(col, 0) {
            out = Some(col.value(0));
        }
    }
    Ok(out)
}

/// Start an extract: check the column types, then stream the rows.
pub async fn extract(url: &str, request: &ExtractRequest) -> Result<Extract> {
    let select = request.select_sql()?;
    let mut conn = connect(url).await?;
    let (schema, kinds) = plan(&mut conn, &select).await?;
    let watermark = match request.watermark_column() {
        None => None,
        Some(c) => {
            let idx = schema.index_of(c).map_err(|_| {
                ConnectorError::bad(
                    "PostgreSQL",
                    format!("watermark column `{c}` is not in the result"),
                )
            })?;
            if kinds[idx] != PgKind::Timestamp {
                return Err(ConnectorError::bad(
                    "PostgreSQL",
                    format!("watermark column `{c}` must be a timestamp or timestamptz"),
                ));
            }
            Some(idx)
        }
    };
    let high_water = Arc::new(Mutex::new(None));
    let rows = Arc::new(Mutex::new(0u64));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    let streams = copy_streams(url, conn, request).await?;
    let hw = high_water.clone();
    let rows_out = rows.clone();
    let mut workers = tokio::task::JoinSet::new();
    for (mut conn, copy) in streams {
        let mut decoder =
            Decoder::new(schema.clone(), kinds.clone(), request.batch_rows, watermark);
        let tx = tx.clone();
        workers.spawn(async move {
            let result = run_copy(&mut conn, &copy, &mut decoder, &tx).await;
            if result.is_err() {
                // The connection is mid-COPY: drop it rather than drain it.
                drop(conn);
            } else {
                let _ = conn.close().await;
            }
            (decoder.high_water, decoder.row, result)
        });
    }
    tokio::spawn(async move {
        let (mut high, mut total) = (None::<i64>, 0u64);
        while let Some(joined) = workers.join_next().await {
            let (h, n, result) = match joined {
                Ok(done) => done,
                Err(e) => (
                    None,
                    0,
                    Err(ConnectorError::pg(format!("COPY worker failed: {e}"))),
                ),
            };
            high = high.max(h);
            total += n;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
                workers.abort_all();
            }
        }
        if let Ok(mut g) = hw.lock() {
            *g = high;
        }
        if let Ok(mut g) = rows_out.lock() {
            *g = total;
        }
        // `tx` drops here: the stream ends only once the marks are stored.
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    Ok(Extract {
        schema,
        stream,
        high_water,
        rows,
    })
}

/// The COPY statements of a request, each with its connection: the planning
/// connection alone, or, for a large table on PostgreSQL 14+, one connection
/// per block range, every one on the snapshot the first exported (as
/// `pg_dump -j` does), so together they read exactly one consistent table.
async fn copy_streams(
    url: &str,
    mut conn: PgConnection,
    request: &ExtractRequest,
) -> Result<Vec<(PgConnection, String)>> {
    let copy = |select: String| format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let (Source::Table { schema, table, .. }, 2..) = (&request.source, request.parallel) else {
        return Ok(vec![(conn, copy(request.select_sql()?))]);
    };
    let size = sqlx::query(
        "SELECT current_setting('server_version_num')::int4, \
         pg_relation_size(format('%I.%I', $1::text, $2::text)::regclass), \
         current_setting('block_size')::int8",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(&mut conn)
    .await
    .map_err(ConnectorError::pg)?;
    let (version, bytes, block): (i32, i64, i64) = (size.get(0), size.get(1), size.get(2));
    let pages = bytes / block.max(1);
    let n = request.parallel.min(usize::try_from(pages).unwrap_or(0));
    if version < 140_000 || u64::try_from(bytes).unwrap_or(0) < request.parallel_min_bytes || n < 2
    {
        return Ok(vec![(conn, copy(request.select_sql()?))]);
    }
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(ConnectorError::pg)?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut conn)
        .await
        .map_err(ConnectorError::pg)?;
    let n64 = n as i64;
    let mut streams = Vec::with_capacity(n);
    let mut leader = Some(conn);
    for i in 0..n64 {
        // Block ranges; the first and last are open so nothing falls outside.
        let mut range = Vec::new();
        if i > 0 {
            range.push(format!("ctid >= '({},0)'::tid", pages * i / n64));
        }
        if i + 1 < n64 {
            range.push(format!("ctid < '({},0)'::tid", pages * (i + 1) / n64));
        }
        let select = request.select_sql_where(Some(&range.join(" AND ")))?;
        let conn = match leader.take() {
            Some(conn) => conn,
            None => {
                let mut conn = connect(url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
                     SET TRANSACTION SNAPSHOT '{}'",
                    snapshot.replace('\'', "")
                )))
                .execute(&mut conn)
                .await
                .map_err(ConnectorError::pg)?;
                conn
            }
        };
        streams.push((conn, copy(select)));
    }
    tracing::debug!(streams = n, pages, "extract split into block ranges");
    Ok(streams)
}

async fn run_copy(
    conn: &mut PgConnection,
    copy: &str,
    decoder: &mut Decoder,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut chunks = conn.copy_out_raw(copy).await.map_err(ConnectorError::pg)?;
    let mut carry = BytesMut::new();
    let mut ready = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(ConnectorError::pg)?;
        decoder.decode_chunk(&mut carry, &chunk, &mut ready)?;
        for batch in ready.drain(..) {
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(()); // the consumer went away
            }
        }
    }
    if !decoder.done {
        return Err(ConnectorError::pg("COPY stream ended without its trailer"));
    }
    if decoder.pending > 0 {
        let batch = decoder.finish_batch()?;
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}

/// Incremental decoder of the COPY binary format into Arrow builders.
struct Decoder {
    schema: SchemaRef,
    kinds: Vec<PgKind>,
    columns: Vec<Column>,
    header_done: bool,
    done: bool,
    pending: usize,
    batch_rows: usize,
    row: u64,
    watermark: Option<usize>,
    high_water: Option<i64>,
}

impl Decoder {
    fn new(
        schema: SchemaRef,
        kinds: Vec<PgKind>,
        batch_rows: usize,
        watermark: Option<usize>,
    ) -> Self {
        let columns = kinds
            .iter()
            .map(|k| Column::new(k, batch_rows, batch_rows * 16))
            .collect();
        Decoder {
            schema,
            kinds,
            columns,
            header_done: false,
            done: false,
            pending: 0,
            batch_rows,
            row: 0,
            watermark,
            high_water: None,
        }
    }

    /// Decode the whole tuples of `chunk` (after the bytes `carry` holds
    /// from the previous one), pushing each full batch to `ready`. The bytes
    /// of a tuple cut at the chunk's end wait in `carry`; whole tuples are
    /// decoded straight from the chunk PostgreSQL sent (one per row), so the
    /// stream is not copied once more on its way into the builders.
    fn decode_chunk(
        &mut self,
        carry: &mut BytesMut,
        chunk: &[u8],
        ready: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let from_carry = !carry.is_empty();
        if from_carry {
            carry.extend_from_slice(chunk);
        }
        let data: &[u8] = if from_carry { carry } else { chunk };
        let mut at = 0;
        while let Some(used) = self.decode_one(&data[at..])? {
            at += used;
            if self.pending >= self.batch_rows {
                ready.push(self.finish_batch()?);
            }
        }
        if from_carry {
            carry.advance(at);
        } else {
            carry.extend_from_slice(&chunk[at..]);
        }
        Ok(())
    }

    /// Decode one tuple (or the header, or the trailer) from the front of
    /// `buf` if it holds it whole, returning the bytes it took. `None` when
    /// more bytes are needed or the stream ended.
    fn decode_one(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        if self.done {
            return Ok(None);
        }
        if !self.header_done {
            const SIG: &[u8] = b"PGCOPY\n\xff\r\n\0";
            if buf.len() < SIG.len() + 8 {
                return Ok(None);
            }
            if &buf[..SIG.len()] != SIG {
                return Err(ConnectorError::pg("COPY binary stream has a bad signature"));
            }
            let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            if buf.len() < 19 + ext {
                return Ok(None);
            }
            self.header_done = true;
            return Ok(Some(19 + ext));
        }
        if buf.len() < 2 {
            return Ok(None);
        }
        let nfields = i16::from_be_bytes([buf[0], buf[1]]);
        if nfields == -1 {
            self.done = true;
            return Ok(None);
        }
        if nfields as usize != self.kinds.len() {
            return Err(ConnectorError::pg(format!(
                "COPY row has {nfields} fields, expected {}",
                self.kinds.len()
            )));
        }
        // Check the whole tuple is buffered before touching any builder.
        let mut pos = 2usize;
        for _ in 0..nfields {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
            pos += 4;
            if len > 0 {
                pos += len as usize;
            }
        }
        if buf.len() < pos {
            return Ok(None);
        }
        let tuple = &buf[..pos];
        let mut p = 2usize;
        for i in 0..self.kinds.len() {
            let len = i32::from_be_bytes([tuple[p], tuple[p + 1], tuple[p + 2], tuple[p + 3]]);
            p += 4;
            let value = if len < 0 {
                None
            } else {
                let v = &tuple[p..p + len as usize];
                p += len as usize;
                Some(v)
            };
            if self.watermark == Some(i)
                && let Some(v) = value
                && v.len() == 8
            {
                let us = i64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])
                    .saturating_add(PG_EPOCH_US);
                self.high_water = Some(self.high_water.map_or(us, |h| h.max(us)));
            }
            self.columns[i]
                .push(&self.kinds[i], value)
                .map_err(|message| ConnectorError::BadValue {
                    column: self.schema.field(i).name().clone(),
                    row: self.row,
                    message,
                })?;
        }
        self.row += 1;
        self.pending += 1;
        Ok(Some(pos))
    }

    fn finish_batch(&mut self) -> Result<RecordBatch> {
        let first_row = self.row - self.pending as u64;
        self.pending = 0;
        let rows = self.batch_rows;
        let arrays = self
            .columns
            .iter_mut()
            .zip(&self.kinds)
            .zip(self.schema.fields())
            .map(|((column, kind), field)| {
                column
                    .finish(kind, rows)
                    .map_err(|(row, message)| ConnectorError::BadValue {
                        column: field.name().clone(),
                        row: first_row + row as u64,
                        message,
                    })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}"))
}

fn date_value(v: &[u8]) -> Result<i32, String> {
    let d = i32::from_be_bytes(fixed::<4>(v)?);
    if d == i32::MAX || d == i32::MIN {
        return Err("infinite dates have no Arrow value".to_owned());
    }
    d.checked_add(PG_EPOCH_DAYS)
        .ok_or_else(|| "date out of range".to_owned())
}

fn timestamp_value(v: &[u8]) -> Result<i64, String> {
    let t = i64::from_be_bytes(fixed::<8>(v)?);
    if t == i64::MAX || t == i64::MIN {
        return Err("infinite timestamps have no Arrow value".to_owned());
    }
    t.checked_add(PG_EPOCH_US)
        .ok_or_else(|| "timestamp out of range".to_owned())
}

/// One column's builder, typed, so appending a value is one `match` with
/// no dynamic dispatch: a 5M-row extract of ten columns appends 50M values,
/// and two virtual calls per value (`as_any_mut`, `type_id`) showed in
/// profiles. Text (text, jsonb, uuid) is gathered as bytes and checked as
/// UTF-8 once per batch: one pass over the batch's bytes instead of a
/// check per value, which cost more than the rest of decoding a uuid.
enum Column {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Text(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Numeric(Decimal128Builder),
    /// One-dimensional arrays: the elements, and where each row's end.
    List {
        values: Box<Column>,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
    },
}

impl Column {
    /// An empty column sized for `rows` rows; `bytes` sizes a text column's
    /// value buffer (a uuid takes 36 a row, whatever it says).
    fn new(kind: &PgKind, rows: usize, bytes: usize) -> Column {
        match kind {
            PgKind::Bool => Column::Bool(BooleanBuilder::with_capacity(rows)),
            PgKind::Int2 => Column::Int2(Int16Builder::with_capacity(rows)),
            PgKind::Int4 => Column::Int4(Int32Builder::with_capacity(rows)),
            PgKind::Int8 => Column::Int8(Int64Builder::with_capacity(rows)),
            PgKind::Float4 => Column::Float4(Float32Builder::with_capacity(rows)),
            PgKind::Float8 => Column::Float8(Float64Builder::with_capacity(rows)),
            PgKind::Uuid => Column::Text(BinaryBuilder::with_capacity(rows, rows * 36)),
            PgKind::Text | PgKind::Jsonb => Column::Text(BinaryBuilder::with_capacity(rows, bytes)),
            PgKind::Date => Column::Date(Date32Builder::with_capacity(rows)),
            PgKind::Timestamp => Column::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_data_type(kind.data_type()),
            ),
            PgKind::Numeric { .. } => Column::Numeric(
                Decimal128Builder::with_capacity(rows).with_data_type(kind.data_type()),
            ),
            PgKind::Array(inner) => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::List {
                    values: Box::new(Column::new(inner, rows, bytes)),
                    offsets,
                    validity: NullBufferBuilder::new(rows),
                }
            }
        }
    }

    /// Append one binary value (or a null).
    fn push(&mut self, kind: &PgKind, value: Option<&[u8]>) -> Result<(), String> {
        match (self, kind) {
            (Column::Bool(b), _) => {
                b.append_option(value.map(|v| fixed::<1>(v).map(|[x]| x != 0)).transpose()?)
            }
            (Column::Int2(b), _) => b.append_option(
                value
                    .map(|v| fixed(v).map(i16::from_be_bytes))
                    .transpose()?,
            ),
            (Column::Int4(b), _) => b.append_option(
                value
                    .map(|v| fixed(v).map(i32::from_be_bytes))
                    .transpose()?,
            ),
            (Column::Int8(b), _) => b.append_option(
                value
                    .map(|v| fixed(v).map(i64::from_be_bytes))
                    .transpose()?,
            ),
            (Column::Float4(b), _) => b.append_option(
                value
                    .map(|v| fixed(v).map(f32::from_be_bytes))
                    .transpose()?,
            ),
            (Column::Float8(b), _) => b.append_option(
                value
                    .map(|v| fixed(v).map(f64::from_be_bytes))
                    .transpose()?,
            ),
            (Column::Text(b), PgKind::Jsonb) => match value {
                None => b.append_null(),
                Some([1, rest @ ..]) => b.append_value(rest),
                Some(_) => return Err("unknown jsonb binary version".to_owned()),
            },
            (Column::Text(b), PgKind::Uuid) => match value {
                None => b.append_null(),
                Some(v) => b.append_value(format_uuid(&fixed::<16>(v)?)),
            },
            (Column::Text(b), _) => b.append_option(value),
            (Column::Date(b), _) => b.append_option(value.map(date_value).transpose()?),
            (Column::Timestamp(b), _) => b.append_option(value.map(timestamp_value).transpose()?),
            (Column::Numeric(b), PgKind::Numeric { precision, scale }) => b.append_option(
                value
                    .map(|v| numeric_to_i128(v, *precision, *scale))
                    .transpose()?,
            ),
            (
                Column::List {
                    values,
                    offsets,
                    validity,
                },
                PgKind::Array(inner),
            ) => {
                let n = match value {
                    None => 0,
                    Some(v) => decode_array(inner, v, values)?,
                };
                let end = offsets.last().copied().unwrap_or(0).checked_add(n);
                offsets.push(end.ok_or_else(|| "too many array elements in one batch".to_owned())?);
                validity.append(value.is_some());
            }
            _ => return Err("internal: column builder and type differ".to_owned()),
        }
        Ok(())
    }

    /// The column's array, leaving it empty and sized like this batch. A
    /// bad value (invalid UTF-8) comes back with its row in the batch.
    fn finish(&mut self, kind: &PgKind, rows: usize) -> Result<ArrayRef, (usize, String)> {
        let bytes = match self {
            Column::Text(b) => b.values_slice().len(),
            _ => 0,
        };
        // A finished arrow builder keeps no capacity: start the next batch
        // at this one's size, or every batch regrows its buffers by doubling.
        let done = std::mem::replace(self, Column::new(kind, rows, bytes + bytes / 8));
        Ok(match done {
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::Int2(mut b) => Arc::new(b.finish()),
            Column::Int4(mut b) => Arc::new(b.finish()),
            Column::Int8(mut b) => Arc::new(b.finish()),
            Column::Float4(mut b) => Arc::new(b.finish()),
            Column::Float8(mut b) => Arc::new(b.finish()),
            Column::Date(mut b) => Arc::new(b.finish()),
            Column::Timestamp(mut b) => Arc::new(b.finish()),
            Column::Numeric(mut b) => Arc::new(b.finish()),
            Column::Text(mut b) => {
                let binary = b.finish();
                match StringArray::try_from_binary(binary.clone()) {
                    Ok(text) => Arc::new(text),
                    Err(e) => {
                        return Err(binary
                            .iter()
                            .enumerate()
                            .find_map(|(i, v)| v.and_then(|v| utf8(v).err()).map(|m| (i, m)))
                            .unwrap_or((0, format!("invalid UTF-8: {e}"))));
                    }
                }
            }
            Column::List {
                mut values,
                offsets,
                mut validity,
            } => {
                let PgKind::Array(inner) = kind else {
                    return Err((0, "internal: column builder and type differ".to_owned()));
                };
                // A bad element is reported by the row that holds it.
                let items = values.finish(inner, rows).map_err(|(i, m)| {
                    (
                        offsets
                            .partition_point(|&o| o as usize <= i)
                            .saturating_sub(1),
                        m,
                    )
                })?;
                let field = Arc::new(Field::new_list_field(inner.data_type(), true));
                let list = ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    items,
                    validity.finish(),
                )
                .map_err(|e| (0, format!("internal: {e}")))?;
                Arc::new(list)
            }
        })
    }
}

fn be_i32(v: &[u8], at: usize) -> Result<i32, String> {
    v.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_be_bytes)
        .ok_or_else(|| "truncated array value".to_owned())
}

/// Append a one-dimensional array's elements to `values`; how many.
fn decode_array(inner: &PgKind, v: &[u8], values: &mut Column) -> Result<i32, String> {
    let ndim = be_i32(v, 0)?;
    if ndim == 0 {
        return Ok(0);
    }
    if ndim != 1 {
        return Err(format!(
            "{ndim}-dimensional arrays are not supported (only one dimension)"
        ));
    }
    let n = be_i32(v, 12)?;
    let mut p = 20usize;
    for _ in 0..n {
        let len = be_i32(v, p)?;
        p += 4;
        if len < 0 {
            values.push(inner, None)?;
        } else {
            let end = p + len as usize;
            let item = v
                .get(p..end)
                .ok_or_else(|| "truncated array element".to_owned())?;
            values.push(inner, Some(item))?;
            p = end;
        }
    }
    Ok(n.max(0))
}

/// The canonical text of a uuid, as ASCII bytes.
fn format_uuid(b: &[u8; 16]) -> [u8; 36] {
    // Hot path (three uuid columns per CRM row): no allocation at all.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut o = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[o] = b'-';
            o += 1;
        }
        out[o] = HEX[usize::from(byte >> 4)];
        out[o + 1] = HEX[usize::from(byte & 0xf)];
        o += 2;
    }
    out
}

/// Decode PostgreSQL's binary numeric (base-10000 digits) into an i128 at
/// `scale`. Digits beyond the scale must be zero: a lossy value is an error,
/// never silently rounded.
fn numeric_to_i128(v: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    if v.len() < 8 {
        return Err("truncated numeric".to_owned());
    }
    let ndigits = i16::from_be_bytes([v[0], v[1]]) as usize;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no decimal value".to_owned()),
        _ => return Err("infinity has no decimal value".to_owned()),
    }
    if v.len() < 8 + 2 * ndigits {
        return Err("truncated numeric".to_owned());
    }
    let scale = i32::from(scale);
    let mut acc: i128 = 0;
    let overflow = || format!("value does not fit Decimal128({precision}, {scale})");
    // Digit i has decimal exponent 4 * (weight - i). Collect decimal digits
    // down to 10^-scale; any lower non-zero digit is lost precision.
    for i in 0..ndigits {
        let d = i16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i32;
        // The group's units digit has decimal exponent 4 * (weight - i).
        let units = 4 * (weight - i as i32);
        for k in 0..4u32 {
            let digit = (d / 10i32.pow(3 - k)) % 10;
            let e = units + 3 - k as i32; // decimal exponent of this digit
            if e < -scale {
                if digit != 0 {
                    return Err(format!("value has more than {scale} decimal places"));
                }
                continue;
            }
            acc = acc.checked_mul(10).ok_or_else(overflow)?;
            acc = acc.checked_add(i128::from(digit)).ok_or_else(overflow)?;
        }
    }
    // Scale up to the target exponent: the last collected digit sits at
    // exponent min over groups; pad zeros down to -scale.
    let last_exp = if ndigits == 0 {
        0
    } else {
        4 * (weight - ndigits as i32 + 1)
    };
    let lowest_collected = last_exp.max(-scale);
    let pad = if ndigits == 0 {
        0
    } else {
        lowest_collected + scale
    };
    for _ in 0..pad {
        acc = acc.checked_mul(10).ok_or_else(overflow)?;
    }
    if acc.unsigned_abs() >= 10u128.pow(u32::from(precision)) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One (int8, text, uuid) row of a test stream.
    type TestRow<'a> = (i64, Option<&'a [u8]>, [u8; 16]);

    /// A COPY binary stream of (int8, text, uuid) rows.
    fn copy_stream(rows: &[TestRow<'_>]) -> Vec<u8> {
        let mut v = b"PGCOPY\n\xff\r\n\0".to_vec();
        v.extend([0u8; 8]); // flags, header extension length
        for (id, text, uuid) in rows {
            v.extend(3i16.to_be_bytes());
            v.extend(8i32.to_be_bytes());
            v.extend(id.to_be_bytes());
            match text {
                None => v.extend((-1i32).to_be_bytes()),
                Some(t) => {
                    v.extend((t.len() as i32).to_be_bytes());
                    v.extend(*t);
                }
            }
            v.extend(16i32.to_be_bytes());
            v.extend(uuid);
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    fn decoder(batch_rows: usize) -> Decoder {
        let kinds = vec![PgKind::Int8, PgKind::Text, PgKind::Uuid];
        let schema = Arc::new(Schema::new(
            ["id", "name", "ref"]
                .iter()
                .zip(&kinds)
                .map(|(n, k)| Field::new(*n, k.data_type(), true))
                .collect::<Vec<_>>(),
        ));
        Decoder::new(schema, kinds, batch_rows, None)
    }

    /// Feed `stream` cut every `step` bytes; the batches decoded.
    fn decode_in_steps(stream: &[u8], step: usize, batch_rows: usize) -> Result<Vec<RecordBatch>> {
        let mut d = decoder(batch_rows);
        let (mut carry, mut ready) = (BytesMut::new(), Vec::new());
        for chunk in stream.chunks(step) {
            d.decode_chunk(&mut carry, chunk, &mut ready)?;
        }
        assert!(d.done, "trailer not seen");
        if d.pending > 0 {
            ready.push(d.finish_batch()?);
        }
        Ok(ready)
    }

    #[test]
    fn tuples_cut_anywhere_across_chunks_decode_the_same() {
        let rows: Vec<TestRow<'_>> = (0..7)
            .map(|i| {
                let text: Option<&[u8]> = match i % 3 {
                    0 => None,
                    1 => Some("ünïcode".as_bytes()),
                    _ => Some(b""),
                };
                (i, text, [i as u8; 16])
            })
            .collect();
        let stream = copy_stream(&rows);
        for step in [1, 2, 3, 7, 19, 64, stream.len()] {
            let batches = decode_in_steps(&stream, step, 3).expect("decode");
            assert_eq!(
                batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
                vec![3, 3, 1],
                "step {step}"
            );
            let all =
                arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
            use arrow::array::AsArray;
            let ids = all.column(0).as_primitive::<arrow::datatypes::Int64Type>();
            let (names, refs) = (
                all.column(1).as_string::<i32>(),
                all.column(2).as_string::<i32>(),
            );
            for (i, (id, text, uuid)) in rows.iter().enumerate() {
                assert_eq!(ids.value(i), *id);
                assert_eq!(names.is_null(i), text.is_none(), "step {step} row {i}");
                if let Some(t) = text {
                    assert_eq!(names.value(i).as_bytes(), *t);
                }
                let expected = format_uuid(uuid);
                assert_eq!(refs.value(i).as_bytes(), &expected[..]);
            }
        }
    }

    /// PostgreSQL's binary form of a one-dimensional text[].
    fn text_array_value(items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(1i32.to_be_bytes()); // dimensions
        v.extend(0i32.to_be_bytes()); // has-null flag (unused here)
        v.extend(25i32.to_be_bytes()); // element oid: text
        v.extend((items.len() as i32).to_be_bytes());
        v.extend(1i32.to_be_bytes()); // lower bound
        for item in items {
            match item {
                None => v.extend((-1i32).to_be_bytes()),
                Some(t) => {
                    v.extend((t.len() as i32).to_be_bytes());
                    v.extend(*t);
                }
            }
        }
        v
    }

    #[test]
    fn text_arrays_keep_nulls_and_empties_and_name_the_row_of_a_bad_element() {
        let kinds = vec![PgKind::Array(Box::new(PgKind::Text))];
        let schema = Arc::new(Schema::new(vec![Field::new(
            "tags",
            kinds[0].data_type(),
            true,
        )]));
        let mut d = Decoder::new(schema, kinds.clone(), 8, None);
        let empty: Vec<u8> = 0i32.to_be_bytes().into_iter().chain([0u8; 8]).collect();
        let values = [
            Some(text_array_value(&[Some(b"a"), None, Some("ü".as_bytes())])),
            None,
            Some(empty),
            Some(text_array_value(&[Some(b"ok"), Some(b"\xff")])),
        ];
        for v in &values[..3] {
            d.columns[0].push(&kinds[0], v.as_deref()).expect("push");
            d.row += 1;
            d.pending += 1;
        }
        let batch = d.finish_batch().expect("batch");
        let list = batch
            .column(0)
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(list.len(), 3);
        let first = list.value(0);
        let first = first.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            vec![Some("a"), None, Some("ü")]
        );
        assert!(list.is_null(1));
        assert!(list.is_valid(2) && list.value(2).is_empty());

        // The next batch: a bad element in its second row (row 4 overall).
        for v in [&values[2], &values[3]] {
            d.columns[0].push(&kinds[0], v.as_deref()).expect("push");
            d.row += 1;
            d.pending += 1;
        }
        match d.finish_batch() {
            Err(ConnectorError::BadValue { column, row, .. }) => {
                assert_eq!((column.as_str(), row), ("tags", 4));
            }
            other => panic!("bad element accepted: {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_names_its_column_and_row() {
        let rows: Vec<TestRow<'_>> = vec![
            (1, Some(b"ok"), [1; 16]),
            (2, Some(b"fine"), [2; 16]),
            (3, Some(b"still fine"), [3; 16]),
            (4, Some(b"bad \xff byte"), [4; 16]),
        ];
        let err = decode_in_steps(&copy_stream(&rows), 5, 2).expect_err("bad UTF-8 accepted");
        match err {
            ConnectorError::BadValue {
                column,
                row,
                message,
            } => {
                assert_eq!((column.as_str(), row), ("name", 3));
                assert!(message.contains("UTF-8"), "{message}");
            }
            other => panic!("unexpected error: {other}"),
        }
    }

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_at_the_column_scale() {
        // 12345.678 = groups [1, 2345, 6780], weight 1
        let v = numeric(1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_to_i128(&v, 12, 3), Ok(12_345_678));
        assert_eq!(numeric_to_i128(&v, 12, 5), Ok(1_234_567_800));
        assert!(numeric_to_i128(&v, 12, 2).is_err(), "lossy scale must fail");
        // -0.05 = groups [500], weight -1
        let v = numeric(-1, 0x4000, 2, &[500]);
        assert_eq!(numeric_to_i128(&v, 10, 2), Ok(-5));
        // 10000 = groups [1], weight 1
        let v = numeric(1, 0, 0, &[1]);
        assert_eq!(numeric_to_i128(&v, 10, 2), Ok(1_000_000));
        // zero
        let v = numeric(0, 0, 0, &[]);
        assert_eq!(numeric_to_i128(&v, 10, 2), Ok(0));
        assert!(numeric_to_i128(&numeric(0, 0xC000, 0, &[]), 10, 2).is_err());
        // overflow of the declared precision
        let v = numeric(1, 0, 0, &[1]);
        assert!(numeric_to_i128(&v, 4, 0).is_err());
    }

    #[test]
    fn windows_become_where_clauses_on_the_wrapped_query() {
        let r = ExtractRequest::table("crm", "leads").window(Window::Interval {
            column: "updated_at".into(),
            start_us: 0,
            end_us: 86_400_000_000,
        });
        let sql = r.select_sql().expect("sql");
        assert!(sql.starts_with(
            "SELECT * FROM (SELECT * FROM \"crm\".\"leads\") AS aula_src WHERE \"updated_at\" >= "
        ));
        assert!(sql.contains("86400000000 * INTERVAL '1 microsecond'"));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn uuids_format_canonically() {
        let b = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7,
        ];
        assert_eq!(&format_uuid(&b), b"12345678-9abc-def0-0001-020304050607");
    }
}
