use std::sync::Arc;

use arrow::array::{
    Array, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use aula_test_support::{fresh_s3, unique_name};
use aula_warehouse::{BatchStream, Lake, LakeLocation, TableName};
use futures::TryStreamExt;

/// A lake in a fresh local folder and one under a fresh S3 prefix: every
/// lake test runs on both.
pub(crate) fn lakes(label: &str) -> Vec<(&'static str, Lake)> {
    let dir = std::env::temp_dir().join(unique_name(label));
    let local = LakeLocation::parse(dir.to_str().expect("utf-8 temp dir"), &Default::default())
        .expect("local lake");
    let s3 = fresh_s3(label);
    let remote = LakeLocation::with_s3_store(&s3.url, s3.store.clone()).expect("s3 lake");
    vec![("local", Lake::new(local)), ("s3", Lake::new(remote))]
}

pub(crate) fn name(s: &str) -> TableName {
    TableName::parse(s).expect("table name")
}

pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("day", DataType::Date32, false),
        Field::new("amount", DataType::Int64, true),
    ]))
}

/// Rows `(id, updated_at µs, day, amount)`.
pub(crate) fn batch(rows: &[(&str, i64, i32, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

pub(crate) fn input(rows: &[(&str, i64, i32, Option<i64>)]) -> BatchStream {
    BatchStream::from_batches(schema(), vec![batch(rows)])
}

/// All rows of a table as `(id, updated_at, day, amount)`, sorted.
pub(crate) async fn rows(lake: &Lake, table: &TableName) -> Vec<(String, i64, i32, Option<i64>)> {
    let stream = lake
        .scan(
            table,
            Some("SELECT id, updated_at, day, amount FROM t ORDER BY id, updated_at"),
        )
        .await
        .expect("scan");
    let batches: Vec<RecordBatch> = stream.try_collect().await.expect("collect");
    let mut out = Vec::new();
    for b in batches {
        // The lake reads strings as views; compare as plain strings.
        let id = arrow::compute::cast(b.column(0), &DataType::Utf8).expect("cast");
        let id = id.as_any().downcast_ref::<StringArray>().expect("id");
        let ts = b
            .column(1)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("ts");
        let day = b
            .column(2)
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("day");
        let amount = b
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("amount");
        for i in 0..b.num_rows() {
            out.push((
                id.value(i).to_owned(),
                ts.value(i),
                day.value(i),
                (!amount.is_null(i)).then(|| amount.value(i)),
            ));
        }
    }
    out
}
