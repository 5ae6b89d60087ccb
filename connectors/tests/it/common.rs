use arrow::array::RecordBatch;
use aula_connectors::clickhouse::ClickHouse;
use aula_test_support::{TestClickHouse, fresh_s3, unique_name};
use aula_warehouse::{Lake, LakeLocation};
use futures::TryStreamExt;

pub(crate) async fn clickhouse(db: &TestClickHouse) -> ClickHouse {
    ClickHouse::from_client(aula_test_support::clickhouse_client(), &db.name)
        .await
        .expect("clickhouse")
}

pub(crate) fn local_lake(label: &str) -> Lake {
    let dir = std::env::temp_dir().join(unique_name(label));
    Lake::new(
        LakeLocation::parse(dir.to_str().expect("utf-8"), &Default::default()).expect("local lake"),
    )
}

pub(crate) fn s3_lake(label: &str) -> Lake {
    let s3 = fresh_s3(label);
    Lake::new(LakeLocation::with_s3_store(&s3.url, s3.store.clone()).expect("s3 lake"))
}

pub(crate) async fn pg_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("pg connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("pg exec");
}

pub(crate) async fn pg_count(url: &str, sql: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("pg connect");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .expect("pg count")
        .get(0)
}

pub(crate) async fn collect(
    stream: futures::stream::BoxStream<
        'static,
        Result<RecordBatch, aula_connectors::ConnectorError>,
    >,
) -> Vec<RecordBatch> {
    stream.try_collect().await.expect("stream")
}

/// A connector stream as the lake's input.
pub(crate) fn to_lake_input(
    schema: arrow::datatypes::SchemaRef,
    stream: futures::stream::BoxStream<
        'static,
        Result<RecordBatch, aula_connectors::ConnectorError>,
    >,
) -> aula_warehouse::BatchStream {
    use futures::StreamExt;
    aula_warehouse::BatchStream::new(
        schema,
        stream.map(|r| r.map_err(|e| Box::new(e) as aula_warehouse::BoxError)),
    )
}
