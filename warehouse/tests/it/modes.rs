//! Write modes, listing and maintenance, on a local folder and on S3.

use std::time::Duration;

use aula_warehouse::datafusion::scalar::ScalarValue;
use aula_warehouse::{WriteMode, WriteOptions};

use crate::common::{input, lakes, name, rows};

const DAY1: i32 = 20_500;
const DAY2: i32 = 20_501;

#[tokio::test]
async fn a_retried_keyed_append_is_not_appended_twice() {
    for (kind, lake) in lakes("append_once") {
        let t = name("raw.events");
        let opts = || {
            WriteOptions::new(WriteMode::Append)
                .partition_by(["day"])
                .txn("pipe/task", 1)
        };
        let first = lake
            .write(
                &t,
                input(&[("a", 1, DAY1, Some(1)), ("b", 2, DAY1, None)]),
                opts(),
            )
            .await
            .expect("first");
        assert!(!first.skipped, "{kind}");
        assert_eq!(first.input_rows, 2, "{kind}");
        let retry = lake
            .write(
                &t,
                input(&[("a", 1, DAY1, Some(1)), ("b", 2, DAY1, None)]),
                opts(),
            )
            .await
            .expect("retry");
        assert!(retry.skipped, "{kind}: the retried batch must be skipped");
        assert_eq!(lake.row_count(&t).await.expect("count"), 2, "{kind}");
        assert_eq!(
            lake.txn_version(&t, "pipe/task").await.expect("txn"),
            Some(1),
            "{kind}"
        );
        let next = lake
            .write(
                &t,
                input(&[("c", 3, DAY2, Some(3))]),
                WriteOptions::new(WriteMode::Append).txn("pipe/task", 2),
            )
            .await
            .expect("next batch");
        assert!(!next.skipped, "{kind}");
        assert_eq!(lake.row_count(&t).await.expect("count"), 3, "{kind}");
        assert_eq!(
            lake.txn_version(&t, "pipe/task").await.expect("txn"),
            Some(2),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn rerunning_a_date_replaces_its_partition_only() {
    for (kind, lake) in lakes("replace_partition") {
        let t = name("marts.daily");
        let replace = |day: i32| {
            WriteOptions::new(WriteMode::ReplacePartition {
                column: "day".into(),
                value: ScalarValue::Date32(Some(day)),
            })
            .partition_by(["day"])
        };
        lake.write(
            &t,
            input(&[("a", 1, DAY1, Some(1)), ("b", 1, DAY1, Some(2))]),
            replace(DAY1),
        )
        .await
        .expect("day1");
        lake.write(&t, input(&[("c", 1, DAY2, Some(3))]), replace(DAY2))
            .await
            .expect("day2");
        assert_eq!(lake.row_count(&t).await.expect("count"), 3, "{kind}");
        for _ in 0..2 {
            lake.write(
                &t,
                input(&[
                    ("a", 2, DAY1, Some(10)),
                    ("d", 2, DAY1, Some(4)),
                    ("e", 2, DAY1, None),
                ]),
                replace(DAY1),
            )
            .await
            .expect("rerun day1");
            let got = rows(&lake, &t).await;
            assert_eq!(
                got,
                vec![
                    ("a".to_owned(), 2, DAY1, Some(10)),
                    ("c".to_owned(), 1, DAY2, Some(3)),
                    ("d".to_owned(), 2, DAY1, Some(4)),
                    ("e".to_owned(), 2, DAY1, None),
                ],
                "{kind}"
            );
        }
        // A row outside the replaced partition is refused, not written.
        let err = lake
            .write(&t, input(&[("x", 1, DAY2, None)]), replace(DAY1))
            .await;
        assert!(
            err.is_err(),
            "{kind}: rows outside the partition must fail the write"
        );
        assert_eq!(lake.row_count(&t).await.expect("count"), 4, "{kind}");
    }
}

#[tokio::test]
async fn merge_keeps_the_latest_version_of_each_row() {
    for (kind, lake) in lakes("merge_by_key") {
        let t = name("raw.crm_leads");
        let merge = || {
            WriteOptions::new(WriteMode::MergeByKey {
                key: "id".into(),
                version_column: "updated_at".into(),
            })
        };
        // First load creates the table; duplicates within one input collapse too.
        lake.write(
            &t,
            input(&[
                ("a", 10, DAY1, Some(1)),
                ("b", 10, DAY1, Some(2)),
                ("a", 5, DAY1, Some(0)),
            ]),
            merge(),
        )
        .await
        .expect("initial");
        assert_eq!(
            rows(&lake, &t).await,
            vec![
                ("a".into(), 10, DAY1, Some(1)),
                ("b".into(), 10, DAY1, Some(2))
            ],
            "{kind}"
        );
        // An update of a, a stale version of b, and a new row c.
        lake.write(
            &t,
            input(&[
                ("a", 20, DAY2, Some(100)),
                ("b", 3, DAY1, Some(-1)),
                ("c", 20, DAY2, None),
            ]),
            merge(),
        )
        .await
        .expect("incremental");
        let want = vec![
            ("a".to_owned(), 20, DAY2, Some(100)),
            ("b".to_owned(), 10, DAY1, Some(2)),
            ("c".to_owned(), 20, DAY2, None),
        ];
        assert_eq!(rows(&lake, &t).await, want, "{kind}");
        // Re-reading the same window (inclusive watermark) changes nothing.
        lake.write(
            &t,
            input(&[("a", 20, DAY2, Some(100)), ("c", 20, DAY2, None)]),
            merge(),
        )
        .await
        .expect("replay");
        assert_eq!(rows(&lake, &t).await, want, "{kind}");
    }
}

#[tokio::test]
async fn tables_are_listed_described_optimized_and_vacuumed() {
    for (kind, lake) in lakes("admin") {
        let t = name("raw.payments");
        for i in 0..3 {
            lake.write(
                &t,
                input(&[(["p", "q", "r"][i], i as i64, DAY1, Some(i as i64))]),
                WriteOptions::new(WriteMode::Append),
            )
            .await
            .expect("write");
        }
        lake.write(
            &name("marts.funnel_daily"),
            input(&[("z", 0, DAY1, None)]),
            WriteOptions::new(WriteMode::Overwrite),
        )
        .await
        .expect("write");
        let tables: Vec<String> = lake
            .list_tables()
            .await
            .expect("list")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(tables, vec!["marts.funnel_daily", "raw.payments"], "{kind}");

        let info = lake.describe(&t).await.expect("describe");
        assert_eq!(info.row_count, 3, "{kind}");
        assert_eq!(info.version, 2, "{kind}");
        assert_eq!(info.versions.len(), 3, "{kind}");
        assert_eq!(info.file_count, 3, "{kind}");
        assert_eq!(info.schema.field(0).name(), "id", "{kind}");
        assert!(info.url.ends_with("/raw/payments"), "{kind}: {}", info.url);

        let opt = lake.optimize(&t).await.expect("optimize");
        assert_eq!((opt.files_added, opt.files_removed), (1, 3), "{kind}");
        assert_eq!(lake.row_count(&t).await.expect("count"), 3, "{kind}");
        let dry = lake
            .vacuum(&t, Duration::ZERO, true, true)
            .await
            .expect("dry run");
        assert_eq!(
            dry.files_deleted.len(),
            3,
            "{kind}: the three compacted files are garbage"
        );
        let done = lake
            .vacuum(&t, Duration::ZERO, true, false)
            .await
            .expect("vacuum");
        assert_eq!(done.files_deleted.len(), 3, "{kind}");
        assert_eq!(lake.row_count(&t).await.expect("count"), 3, "{kind}");
        assert!(
            lake.vacuum(&t, Duration::ZERO, false, true).await.is_err(),
            "{kind}: short retention needs force"
        );
        let nothing = name("raw.nothing");
        assert!(lake.describe(&nothing).await.is_err(), "{kind}");
        assert!(!lake.exists(&nothing).await.expect("exists"), "{kind}");
        assert_eq!(
            lake.txn_version(&nothing, "x").await.expect("txn"),
            None,
            "{kind}"
        );
        if let Ok(path) = lake.location().table_url(&nothing).to_file_path() {
            assert!(
                !path.exists(),
                "reading a missing table must not create its folder"
            );
        }
    }
}
