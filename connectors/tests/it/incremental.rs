//! Incremental extraction into the lake, and idempotent reruns of a date
//! through the lake into ClickHouse.

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use aula_connectors::clickhouse::TableSpec;
use aula_connectors::postgres::{self, ExtractRequest, Window};
use aula_test_support::{fresh_clickhouse, fresh_pg};
use aula_warehouse::datafusion::scalar::ScalarValue;
use aula_warehouse::{Lake, TableName, WriteMode, WriteOptions};
use futures::TryStreamExt;

use crate::common::{clickhouse, local_lake, pg_count, pg_exec, s3_lake, to_lake_input};

const HWM_KEY: &str = "postgres/leads/updated_at";

/// One incremental run: from the stored mark up to the mark at start, merged
/// by id, the new mark committed with the rows.
async fn incremental_run(url: &str, lake: &Lake, table: &TableName) -> u64 {
    let since = lake.txn_version(table, HWM_KEY).await.expect("stored mark");
    let base = ExtractRequest::table("public", "leads").window(Window::Since {
        column: "updated_at".into(),
        since_us: since,
        until_us: None,
    });
    let Some(until) = postgres::max_watermark(url, &base, "updated_at")
        .await
        .expect("probe")
    else {
        return 0;
    };
    let request = ExtractRequest::table("public", "leads").window(Window::Since {
        column: "updated_at".into(),
        since_us: since,
        until_us: Some(until),
    });
    let ex = postgres::extract(url, &request).await.expect("extract");
    let out = lake
        .write(
            table,
            to_lake_input(ex.schema.clone(), ex.stream),
            WriteOptions::new(WriteMode::MergeByKey {
                key: "id".into(),
                version_column: "updated_at".into(),
            })
            .txn(HWM_KEY, until),
        )
        .await
        .expect("merge");
    out.input_rows
}

async fn lake_statuses(lake: &Lake, table: &TableName) -> Vec<(String, String)> {
    let batches: Vec<RecordBatch> = lake
        .scan(table, Some("SELECT id, status FROM t ORDER BY id"))
        .await
        .expect("scan")
        .try_collect()
        .await
        .expect("read");
    let mut out = Vec::new();
    for b in batches {
        let id = cast(b.column(0), &DataType::Utf8).expect("cast");
        let status = cast(b.column(1), &DataType::Utf8).expect("cast");
        for i in 0..b.num_rows() {
            out.push((
                id.as_string::<i32>().value(i).to_owned(),
                status.as_string::<i32>().value(i).to_owned(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn incremental_extraction_picks_up_updated_rows_and_the_lake_keeps_the_latest() {
    let pg = fresh_pg("incremental").await;
    pg_exec(
        &pg.url,
        "CREATE TABLE leads (id uuid PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
         INSERT INTO leads VALUES
          ('00000000-0000-0000-0000-000000000001', 'new', '2026-03-01 09:00Z', '2026-03-01 09:00Z'),
          ('00000000-0000-0000-0000-000000000002', 'new', '2026-03-01 10:00Z', '2026-03-01 10:00Z'),
          ('00000000-0000-0000-0000-000000000003', 'contacted', '2026-03-01 11:00Z', '2026-03-01 11:00Z');",
    )
    .await;
    for lake in [local_lake("incremental"), s3_lake("incremental")] {
        let t = TableName::parse("raw.crm_leads").expect("name");
        assert_eq!(
            incremental_run(&pg.url, &lake, &t).await,
            3,
            "first run reads everything"
        );
        assert_eq!(lake.row_count(&t).await.expect("count"), 3);
        // Nothing changed: only the boundary row (same timestamp as the mark) is re-read.
        assert_eq!(incremental_run(&pg.url, &lake, &t).await, 1);
        assert_eq!(lake.row_count(&t).await.expect("count"), 3);
    }
    pg_exec(
        &pg.url,
        "UPDATE leads SET status = 'converted', updated_at = '2026-03-02 08:00Z' WHERE id = '00000000-0000-0000-0000-000000000001';
         INSERT INTO leads VALUES ('00000000-0000-0000-0000-000000000004', 'new', '2026-03-02 09:00Z', '2026-03-02 09:00Z');",
    )
    .await;
    for lake in [local_lake("incremental2"), s3_lake("incremental2")] {
        let t = TableName::parse("raw.crm_leads").expect("name");
        incremental_run(&pg.url, &lake, &t).await;
        let want = vec![
            (
                "00000000-0000-0000-0000-000000000001".to_owned(),
                "converted".to_owned(),
            ),
            (
                "00000000-0000-0000-0000-000000000002".to_owned(),
                "new".to_owned(),
            ),
            (
                "00000000-0000-0000-0000-000000000003".to_owned(),
                "contacted".to_owned(),
            ),
            (
                "00000000-0000-0000-0000-000000000004".to_owned(),
                "new".to_owned(),
            ),
        ];
        assert_eq!(lake_statuses(&lake, &t).await, want);
        pg_exec(&pg.url, "UPDATE leads SET status = 'lost', updated_at = '2026-03-03 08:00Z' WHERE id = '00000000-0000-0000-0000-000000000002'").await;
        // The boundary row (…04 at the mark) plus the one changed row.
        assert_eq!(
            incremental_run(&pg.url, &lake, &t).await,
            2,
            "only changed rows move"
        );
        let got = lake_statuses(&lake, &t).await;
        assert_eq!(got.len(), 4, "one row per id");
        assert_eq!(got[1].1, "lost");
        assert_eq!(got[0].1, "converted");
        pg_exec(&pg.url, "UPDATE leads SET status = 'new', updated_at = '2026-03-01 10:00Z' WHERE id = '00000000-0000-0000-0000-000000000002'").await;
    }
}

#[tokio::test]
async fn a_data_interval_window_reads_only_that_day() {
    let pg = fresh_pg("interval").await;
    pg_exec(
        &pg.url,
        "CREATE TABLE leads (id int4, updated_at timestamp);
         INSERT INTO leads SELECT g, TIMESTAMP '2026-03-01' + g * INTERVAL '1 hour' FROM generate_series(0, 71) g;",
    )
    .await;
    let day2 = 1_772_409_600_000_000i64; // 2026-03-02T00:00Z
    let request = ExtractRequest::table("public", "leads")
        .window(Window::Interval {
            column: "updated_at".into(),
            start_us: day2,
            end_us: day2 + 86_400_000_000,
        })
        .batch_rows(10);
    let ex = postgres::extract(&pg.url, &request).await.expect("extract");
    let batches: Vec<RecordBatch> = ex.stream.try_collect().await.expect("read");
    let ids: Vec<i32> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, (24..48).collect::<Vec<_>>());
    assert!(batches.iter().all(|b| b.num_rows() <= 10));
}

/// One run of date `day` (days since the epoch): PG → lake partition → ClickHouse partition.
async fn run_date(url: &str, lake: &Lake, ch: &aula_connectors::clickhouse::ClickHouse, day: i32) {
    let table = TableName::parse("raw.payments").expect("name");
    let start = i64::from(day) * 86_400_000_000;
    let request = ExtractRequest::query(
        "SELECT id, amount_cents, paid_at, (paid_at AT TIME ZONE 'UTC')::date AS day FROM payments",
    )
    .window(Window::Interval {
        column: "paid_at".into(),
        start_us: start,
        end_us: start + 86_400_000_000,
    });
    let ex = postgres::extract(url, &request).await.expect("extract");
    lake.write(
        &table,
        to_lake_input(ex.schema.clone(), ex.stream),
        WriteOptions::new(WriteMode::ReplacePartition {
            column: "day".into(),
            value: ScalarValue::Date32(Some(day)),
        })
        .partition_by(["day"]),
    )
    .await
    .expect("lake write");
    let schema = lake.describe(&table).await.expect("describe").schema;
    let spec = TableSpec {
        order_by: vec!["id".into()],
        partition_by: Some("day".into()),
        ddl: None,
    };
    ch.ensure_table("payments", &schema, &spec)
        .await
        .expect("create");
    let rows = lake
        .scan(
            &table,
            Some(&format!(
                "SELECT * FROM t WHERE day = to_date('{}')",
                date_string(day)
            )),
        )
        .await
        .expect("scan");
    ch.load(
        "payments",
        rows,
        &[date_string(day).replace('-', "")],
        100_000,
    )
    .await
    .expect("load");
}

fn date_string(day: i32) -> String {
    let d = arrow::array::Date32Array::from(vec![day]);
    let s = cast(&d, &DataType::Utf8).expect("cast");
    s.as_string::<i32>().value(0).to_owned()
}

async fn ch_count(ch: &aula_connectors::clickhouse::ClickHouse, day: i32) -> u64 {
    ch.fetch_text(&format!(
        "SELECT count() FROM payments WHERE day = toDate('{}')",
        date_string(day)
    ))
    .await
    .expect("count")
    .trim()
    .parse()
    .expect("number")
}

async fn lake_count(lake: &Lake, day: i32) -> i64 {
    let table = TableName::parse("raw.payments").expect("name");
    let b: Vec<RecordBatch> = lake
        .scan(
            &table,
            Some(&format!(
                "SELECT count(*) FROM t WHERE day = to_date('{}')",
                date_string(day)
            )),
        )
        .await
        .expect("scan")
        .try_collect()
        .await
        .expect("read");
    b[0].column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

#[tokio::test]
async fn rerunning_a_date_leaves_identical_row_counts_in_the_lake_and_clickhouse() {
    let pg = fresh_pg("rerun").await;
    pg_exec(
        &pg.url,
        "CREATE TABLE payments (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), amount_cents int8 NOT NULL, paid_at timestamptz NOT NULL);
         INSERT INTO payments (amount_cents, paid_at)
           SELECT g * 100, TIMESTAMPTZ '2026-03-01 00:00Z' + g * INTERVAL '7 minutes' FROM generate_series(0, 599) g;",
    )
    .await;
    let d1 = 20_513; // 2026-03-01
    let d2 = d1 + 1;
    let pg1 = pg_count(
        &pg.url,
        "SELECT count(*) FROM payments WHERE paid_at >= '2026-03-01Z' AND paid_at < '2026-03-02Z'",
    )
    .await;
    let pg2 = pg_count(
        &pg.url,
        "SELECT count(*) FROM payments WHERE paid_at >= '2026-03-02Z' AND paid_at < '2026-03-03Z'",
    )
    .await;
    for lake in [local_lake("rerun"), s3_lake("rerun")] {
        let db = fresh_clickhouse("rerun").await;
        let ch = clickhouse(&db).await;
        run_date(&pg.url, &lake, &ch, d1).await;
        run_date(&pg.url, &lake, &ch, d2).await;
        for _ in 0..2 {
            run_date(&pg.url, &lake, &ch, d1).await;
            assert_eq!(lake_count(&lake, d1).await, pg1);
            assert_eq!(lake_count(&lake, d2).await, pg2);
            assert_eq!(ch_count(&ch, d1).await, pg1 as u64);
            assert_eq!(ch_count(&ch, d2).await, pg2 as u64);
        }
    }
}
