use aula_test_support::fresh_clickhouse;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Payment {
    id: u64,
    currency: String,
    amount_cents: i64,
    note: Option<String>,
}

#[tokio::test]
async fn clickhouse_round_trips_rows_as_rowbinary() {
    let ch = fresh_clickhouse("smoke").await;
    ch.client
        .query(
            "CREATE TABLE payments (id UInt64, currency String, amount_cents Int64, note Nullable(String)) \
             ENGINE = MergeTree() ORDER BY id",
        )
        .execute()
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {}: CREATE TABLE failed: {e}", ch.http_url));
    let rows: Vec<Payment> = (0..1000)
        .map(|i| Payment {
            id: i,
            currency: if i % 2 == 0 {
                "EUR".into()
            } else {
                "USD".into()
            },
            amount_cents: i as i64 * 100 - 7,
            note: (i % 3 == 0).then(|| format!("n{i}")),
        })
        .collect();
    let mut insert = ch
        .client
        .insert::<Payment>("payments")
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {}: insert failed: {e}", ch.http_url));
    for row in &rows {
        insert
            .write(row)
            .await
            .expect("ClickHouse: write row failed");
    }
    insert
        .end()
        .await
        .expect("ClickHouse: finishing the insert failed");

    let back = ch
        .client
        .query("SELECT ?fields FROM payments ORDER BY id")
        .fetch_all::<Payment>()
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {}: select failed: {e}", ch.http_url));
    assert_eq!(back, rows);
}
