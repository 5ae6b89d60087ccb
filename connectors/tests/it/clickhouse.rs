//! ClickHouse loads into a declared DDL: types converted per the target's
//! columns, partitions replaced on rerun, never duplicated.

use std::sync::Arc;

use arrow::array::{Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use aula_connectors::clickhouse::{ClickHouse, TableSpec};
use aula_test_support::{fresh_clickhouse, services};

fn funnel(rows: &[(i32, &str, i64, i64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("day", DataType::Date32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("leads_created", DataType::Int64, false),
        Field::new("leads_converted", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

fn stream(
    batches: Vec<RecordBatch>,
) -> impl futures::Stream<Item = Result<RecordBatch, std::convert::Infallible>> + Send {
    futures::stream::iter(batches.into_iter().map(Ok))
}

#[tokio::test]
async fn a_declared_mart_is_loaded_per_partition_and_reruns_replace() {
    let db = fresh_clickhouse("declared").await;
    // Connect the way the engine will: from the contract's URL form.
    let base = url::Url::parse(
        &services()
            .var("AULA_CONN_WAREHOUSE")
            .expect("AULA_CONN_WAREHOUSE"),
    )
    .expect("url");
    let mut url = base.clone();
    url.set_path(&format!("/{}", db.name));
    let ch = ClickHouse::connect(url.as_str()).await.expect("connect");
    let ddl = format!(
        "CREATE TABLE {}.funnel_daily (day Date, source String, leads_created UInt64, leads_converted UInt64) \
         ENGINE = MergeTree() PARTITION BY toYYYYMM(day) ORDER BY (day, source)",
        db.name
    );
    let spec = TableSpec {
        ddl: Some(ddl),
        ..Default::default()
    };
    let march = funnel(&[(20_513, "web", 10, 2), (20_514, "ads", 5, 0)]);
    ch.ensure_table("funnel_daily", &march.schema(), &spec)
        .await
        .expect("create");
    let cols = ch.columns("funnel_daily").await.expect("describe");
    assert_eq!(cols[2], ("leads_created".to_owned(), "UInt64".to_owned()));

    let april = funnel(&[(20_544, "web", 7, 7)]);
    let r = ch
        .load(
            "funnel_daily",
            stream(vec![march.clone(), april]),
            &[],
            100_000,
        )
        .await
        .expect("load");
    assert_eq!(r.rows, 3);
    assert_eq!(r.partitions, vec!["202603".to_owned(), "202604".to_owned()]);
    // Rerun March with corrected numbers, twice: March replaced, April kept.
    let march2 = funnel(&[
        (20_513, "web", 11, 3),
        (20_514, "ads", 5, 1),
        (20_515, "event", 1, 0),
    ]);
    for _ in 0..2 {
        let r = ch
            .load(
                "funnel_daily",
                stream(vec![march2.clone()]),
                &["202603".into()],
                100_000,
            )
            .await
            .expect("rerun");
        assert_eq!(r.partitions, vec!["202603".to_owned()]);
        let got = ch
            .fetch_text("SELECT toString(day), source, leads_created, leads_converted FROM funnel_daily ORDER BY day, source")
            .await
            .expect("select");
        assert_eq!(
            got,
            "2026-03-01\tweb\t11\t3\n2026-03-02\tads\t5\t1\n2026-03-03\tevent\t1\t0\n2026-04-01\tweb\t7\t7\n"
        );
    }
    // A rerun whose month has no rows any more clears that partition.
    let r = ch
        .load(
            "funnel_daily",
            stream(Vec::new()),
            &["202604".into()],
            100_000,
        )
        .await
        .expect("empty rerun");
    assert_eq!(r.rows, 0);
    let count = ch
        .fetch_text("SELECT count() FROM funnel_daily")
        .await
        .expect("count");
    assert_eq!(count.trim(), "3");
    // No staging tables are left behind.
    let tables = ch
        .fetch_text(&format!(
            "SELECT name FROM system.tables WHERE database = '{}'",
            db.name
        ))
        .await
        .expect("tables");
    assert_eq!(tables.trim(), "funnel_daily");
    // A negative count cannot go into UInt64: a clear error naming the column.
    let bad = funnel(&[(20_513, "web", -1, 0)]);
    let err = ch
        .load("funnel_daily", stream(vec![bad]), &[], 100_000)
        .await
        .expect_err("negative into UInt64");
    assert!(err.to_string().contains("leads_created"), "{err}");
}
