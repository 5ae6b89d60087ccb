use aula_test_support::fresh_pg;
use sqlx::Row;

#[tokio::test]
async fn postgres_round_trips_rows_through_sqlx() {
    let db = fresh_pg("smoke").await;
    let pool = db.pool().await;
    sqlx::raw_sql(
        "create table t (id bigint primary key, name text not null, amount numeric(12,2), at timestamptz);
         insert into t values (1, 'ana', 12.50, '2026-03-01T10:15:00Z'), (2, 'bruno', null, null);",
    )
    .execute(&pool)
    .await
    .expect("PostgreSQL: create/insert failed");
    let rows = sqlx::query("select id, name, amount::text as amount from t order by id")
        .fetch_all(&pool)
        .await
        .expect("PostgreSQL: select failed");
    let got: Vec<(i64, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get("id"), r.get("name"), r.get("amount")))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "ana".to_owned(), Some("12.50".to_owned())),
            (2, "bruno".to_owned(), None)
        ]
    );
    pool.close().await;
}
