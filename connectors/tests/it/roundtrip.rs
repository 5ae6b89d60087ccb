//! Every PostgreSQL type the extract maps round-trips PG → Delta → ClickHouse.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Int32Type, TimeUnit};
use aula_connectors::clickhouse::TableSpec;
use aula_connectors::postgres::{self, ExtractRequest};
use aula_test_support::{fresh_clickhouse, fresh_pg};
use aula_warehouse::{TableName, WriteMode, WriteOptions};
use futures::TryStreamExt;

use crate::common::{clickhouse, collect, local_lake, pg_exec, s3_lake, to_lake_input};

const SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN cents AS bigint;
CREATE TABLE everything (
    id int4 PRIMARY KEY,
    i2 int2, i8 int8, amount cents, num numeric(18,4), loose numeric,
    f4 float4, f8 float8, flag bool, txt text, vc varchar(20), fixed char(3),
    uid uuid, day date, ts timestamp, tstz timestamptz, doc jsonb, feeling mood,
    nums int4[], words text[]
);
INSERT INTO everything VALUES
 (1, -32768, 9223372036854775807, 1999, 12345.6789, 0.5, 1.5, -0.25, true, 'héllo ✓', 'var', 'abc',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-03-01', '2026-03-01 10:15:00.123456', '2026-03-01 10:15:00.654321+02',
  '{"a": [1, 2], "b": null}', 'happy', '{1,NULL,3}', '{"x","y z"}'),
 (2, 7, -1, 0, -0.0001, 123456789.0123456789, 0, 1e10, false, '', 'v', 'z',
  '00000000-0000-0000-0000-000000000000', '1970-01-01', '1999-12-31 23:59:59', '2038-01-19 03:14:07+00',
  '[]', 'sad', '{}', '{NULL}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
}

#[tokio::test]
async fn every_type_round_trips_pg_to_delta_to_clickhouse() {
    let pg = fresh_pg("roundtrip").await;
    pg_exec(&pg.url, SETUP).await;
    let request = ExtractRequest::query("SELECT * FROM everything ORDER BY id").batch_rows(2);
    let extract = postgres::extract(&pg.url, &request).await.expect("extract");
    let schema = extract.schema.clone();
    let batches = collect(extract.stream).await;
    assert_eq!(batches.len(), 2, "batch_rows bounds the batches");
    let b = concat_batches(&schema, &batches).expect("concat");
    assert_eq!(b.num_rows(), 3);

    // PG → Arrow: types and values.
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let expect_types = [
        ("i2", DataType::Int16),
        ("i8", DataType::Int64),
        ("amount", DataType::Int64),
        ("num", DataType::Decimal128(18, 4)),
        ("loose", DataType::Decimal128(38, 10)),
        ("f4", DataType::Float32),
        ("f8", DataType::Float64),
        ("flag", DataType::Boolean),
        ("txt", DataType::Utf8),
        ("fixed", DataType::Utf8),
        ("uid", DataType::Utf8),
        ("day", DataType::Date32),
        ("ts", ts.clone()),
        ("tstz", ts.clone()),
        ("doc", DataType::Utf8),
        ("feeling", DataType::Utf8),
    ];
    for (name, dt) in expect_types {
        assert_eq!(col(&b, name).data_type(), &dt, "{name}");
    }
    let i2 = col(&b, "i2").as_primitive::<arrow::datatypes::Int16Type>();
    assert_eq!((i2.value(0), i2.value(1)), (-32768, 7));
    assert_eq!(
        col(&b, "i8")
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        i64::MAX
    );
    let num = col(&b, "num").as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!((num.value(0), num.value(1)), (123_456_789, -1));
    let loose = col(&b, "loose").as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(loose.value(1), 1_234_567_890_123_456_789);
    assert_eq!(
        col(&b, "f8")
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(1),
        1e10
    );
    assert!(col(&b, "flag").as_boolean().value(0));
    assert_eq!(col(&b, "txt").as_string::<i32>().value(0), "héllo ✓");
    assert_eq!(col(&b, "fixed").as_string::<i32>().value(1), "z  ");
    assert_eq!(
        col(&b, "uid").as_string::<i32>().value(0),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(
        col(&b, "day")
            .as_primitive::<arrow::datatypes::Date32Type>()
            .value(0),
        20_513
    );
    let tsv = col(&b, "ts").as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(tsv.value(0), 1_772_360_100_123_456);
    let tstz = col(&b, "tstz").as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(
        tstz.value(0),
        1_772_352_900_654_321,
        "+02 offset folded into UTC"
    );
    let doc: serde_json::Value =
        serde_json::from_str(col(&b, "doc").as_string::<i32>().value(0)).expect("json");
    assert_eq!(doc, serde_json::json!({"a": [1, 2], "b": null}));
    assert_eq!(col(&b, "feeling").as_string::<i32>().value(1), "sad");
    let nums = col(&b, "nums").as_list::<i32>();
    let first = nums.value(0);
    let first = first.as_primitive::<Int32Type>();
    assert_eq!(
        first.iter().collect::<Vec<_>>(),
        vec![Some(1), None, Some(3)]
    );
    assert_eq!(nums.value(1).len(), 0);
    let words = col(&b, "words").as_list::<i32>();
    assert_eq!(words.value(0).as_string::<i32>().value(1), "y z");
    assert!(words.value(1).is_null(0));
    for (i, f) in schema.fields().iter().enumerate() {
        if f.name() != "id" {
            assert!(b.column(i).is_null(2), "row 3 is all nulls: {}", f.name());
        }
    }

    // Arrow → Delta (local and S3) → Arrow: equal values.
    let table = TableName::parse("raw.everything").expect("name");
    for lake in [local_lake("roundtrip"), s3_lake("roundtrip")] {
        let input = aula_warehouse::BatchStream::from_batches(schema.clone(), batches.clone());
        lake.write(&table, input, WriteOptions::new(WriteMode::Overwrite))
            .await
            .expect("lake write");
        let back: Vec<RecordBatch> = lake
            .scan(&table, Some("SELECT * FROM t ORDER BY id"))
            .await
            .expect("scan")
            .try_collect()
            .await
            .expect("read");
        let back = concat_batches(&back[0].schema(), &back).expect("concat");
        assert_eq!(back.num_rows(), 3);
        for f in schema.fields() {
            let got = cast(col(&back, f.name()), f.data_type()).expect("cast");
            assert_eq!(
                got.to_data(),
                col(&b, f.name()).to_data(),
                "lake column {}",
                f.name()
            );
        }
    }

    // Delta → ClickHouse: table created from the Arrow schema, values equal.
    let lake = local_lake("roundtrip_ch");
    let input = to_lake_input(
        schema.clone(),
        postgres::extract(&pg.url, &request)
            .await
            .expect("extract")
            .stream,
    );
    lake.write(&table, input, WriteOptions::new(WriteMode::Overwrite))
        .await
        .expect("lake write");
    let db = fresh_clickhouse("roundtrip").await;
    let ch = clickhouse(&db).await;
    let lake_schema = lake.describe(&table).await.expect("describe").schema;
    let spec = TableSpec {
        order_by: vec!["id".into()],
        ..Default::default()
    };
    ch.ensure_table("everything", &lake_schema, &spec)
        .await
        .expect("create");
    let scan = lake.scan(&table, None).await.expect("scan");
    let report = ch
        .load("everything", scan, &[], 100_000)
        .await
        .expect("load");
    assert_eq!(report.rows, 3);
    let old = ch.server_major() < 20;
    let got = ch
        .fetch_text(
            "SELECT id, i2, i8, amount, toString(num), toString(loose), f4, f8, flag, txt, vc, fixed, uid, \
             toUInt16(day), toInt64(toUInt32(ts)), toInt64(toUInt32(tstz)), doc, feeling, nums, words \
             FROM everything ORDER BY id FORMAT TabSeparated",
        )
        .await
        .expect("select");
    let lines: Vec<Vec<&str>> = got.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{got}");
    let row = &lines[0];
    assert_eq!(&row[..4], ["1", "-32768", "9223372036854775807", "1999"]);
    assert_eq!(
        row[4].trim_end_matches('0').trim_end_matches('.'),
        "12345.6789"
    );
    assert_eq!(row[5].trim_end_matches('0').trim_end_matches('.'), "0.5");
    assert_eq!(&row[6..12], ["1.5", "-0.25", "1", "héllo ✓", "var", "abc"]);
    assert_eq!(row[12], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    // Days since the epoch (18.16 renders day 0 as 0000-00-00, so compare numbers).
    assert_eq!(row[13], "20513");
    // Whole seconds survive on every server; 18.16 has no sub-second DateTime.
    assert_eq!(row[14], (tsv.value(0).div_euclid(1_000_000)).to_string());
    assert_eq!(row[15], (tstz.value(0).div_euclid(1_000_000)).to_string());
    let doc: serde_json::Value =
        serde_json::from_str(&row[16].replace("\\\\", "\\")).expect("json");
    assert_eq!(doc, serde_json::json!({"a": [1, 2], "b": null}));
    assert_eq!(&row[17..], ["happy", "[1,NULL,3]", "['x','y z']"]);
    let row = &lines[1];
    assert_eq!(row[5].trim_end_matches('0'), "123456789.0123456789");
    assert_eq!(&row[7..9], ["10000000000", "0"]);
    assert_eq!(row[13], "0");
    assert_eq!(&row[18..], ["[]", "[NULL]"]);
    let row = &lines[2];
    assert_eq!(row[0], "3");
    for (i, v) in row.iter().enumerate().skip(1).take(17) {
        assert_eq!(*v, "\\N", "column {i} of the null row");
    }
    assert_eq!(
        &row[18..],
        ["[]", "[]"],
        "ClickHouse has no NULL array: a null list loads as []"
    );
    if !old {
        let micros = ch
            .fetch_text("SELECT toUnixTimestamp64Micro(ts) FROM everything WHERE id = 1 FORMAT TabSeparated")
            .await
            .expect("micros");
        assert_eq!(
            micros.trim(),
            tsv.value(0).to_string(),
            "DateTime64(6) keeps microseconds"
        );
    }
}

#[tokio::test]
async fn an_unmappable_type_fails_before_streaming_and_names_the_column() {
    let pg = fresh_pg("badtype").await;
    pg_exec(
        &pg.url,
        "CREATE TABLE odd (id int4, spot point, span interval)",
    )
    .await;
    let err = postgres::extract(&pg.url, &ExtractRequest::table("public", "odd"))
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("`spot`") && msg.contains("point"), "{msg}");
    assert!(!err.is_retryable());
    let err = postgres::extract(
        &pg.url,
        &ExtractRequest::query("SELECT '2020-01-01'::date + 1 AS d, interval '1 day' AS gap"),
    )
    .await
    .expect_err("must fail");
    assert!(err.to_string().contains("`gap`"), "{err}");
}
