//! A large table read as several COPY streams over block ranges: every row
//! exactly once, on one snapshot.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use aula_connectors::postgres::{self, ExtractRequest, Window};
use aula_test_support::fresh_pg;

use crate::common::{collect, pg_exec};

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .expect("id")
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_split_read_sees_every_row_once_on_one_snapshot() {
    let pg = fresh_pg("parallel").await;
    // ~300 pages, so three block ranges each hold many pages.
    pg_exec(
        &pg.url,
        "CREATE TABLE events (id int8 PRIMARY KEY, body text, updated_at timestamptz);
         INSERT INTO events SELECT g, repeat('x', 100 + g % 50),
                TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 minute'
         FROM generate_series(1, 20000) g;
         DELETE FROM events WHERE id % 10 = 0;",
    )
    .await;
    let split = ExtractRequest::table("public", "events")
        .parallel(3)
        .parallel_min_bytes(0)
        .batch_rows(1000);
    let ex = postgres::extract(&pg.url, &split).await.expect("extract");
    // Changes after the extract started are not seen by any of its streams.
    pg_exec(
        &pg.url,
        "INSERT INTO events SELECT g, 'late', now() FROM generate_series(20001, 21000) g;
         DELETE FROM events WHERE id <= 100;",
    )
    .await;
    let got = ids(&collect(ex.stream).await);
    let want: Vec<i64> = (1..=20000).filter(|i| i % 10 != 0).collect();
    assert_eq!(got.len(), want.len(), "every row once");
    assert_eq!(got, want);

    // The same rows as one stream, and the high-water mark of a window is
    // the maximum over the streams.
    let window = Window::Since {
        column: "updated_at".into(),
        since_us: None,
        until_us: None,
    };
    let serial = postgres::extract(
        &pg.url,
        &ExtractRequest::table("public", "events")
            .parallel(1)
            .window(window.clone()),
    )
    .await
    .expect("serial");
    let split = postgres::extract(
        &pg.url,
        &ExtractRequest::table("public", "events")
            .parallel(3)
            .parallel_min_bytes(0)
            .batch_rows(1000)
            .window(window),
    )
    .await
    .expect("split");
    let (serial_mark, serial_rows) = {
        let mut ex = serial;
        let rows = ids(&collect(std::mem::replace(
            &mut ex.stream,
            Box::pin(futures::stream::empty()),
        ))
        .await);
        (ex.high_water_us(), rows)
    };
    let (split_mark, split_rows, split_count) = {
        let mut ex = split;
        let rows = ids(&collect(std::mem::replace(
            &mut ex.stream,
            Box::pin(futures::stream::empty()),
        ))
        .await);
        (ex.high_water_us(), rows, ex.rows())
    };
    assert_eq!(split_rows, serial_rows);
    assert_eq!(split_count, serial_rows.len() as u64);
    assert!(serial_mark.is_some());
    assert_eq!(split_mark, serial_mark);
}
