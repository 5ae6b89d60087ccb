//! The demo seeder: deterministic, contract-valid, with a realistic funnel and events on the broker.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aula_crm::seed::{SeedConfig, seed};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde_json::Value;

async fn fingerprint(pool: &sqlx::PgPool) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for t in [
        "courses",
        "campaigns",
        "leads",
        "students",
        "enrollments",
        "payments",
    ] {
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM crm.{t} t"
        );
        let (n, h): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((t.to_owned(), n, h));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_deterministic_realistic_and_produces_events() {
    let a = aula_test_support::fresh_pg("crm_seed_a").await.pool().await;
    let b = aula_test_support::fresh_pg("crm_seed_b").await.pool().await;
    aula_crm::migrate(&a).await.unwrap();
    aula_crm::migrate(&b).await.unwrap();
    let topic = aula_test_support::unique_topic("activity");
    let bootstrap = aula_test_support::kafka_bootstrap();
    let mut cfg = SeedConfig::new(300, 11);
    cfg.bootstrap = Some(bootstrap.clone());
    cfg.activity_topic = topic.clone();
    cfg.events_per_enrollment = 5;
    let report = seed(&a, &cfg, &|_, _, _| {}).await.unwrap();
    assert_eq!(report.students, 300);
    assert!(
        report.events > 0 && report.duplicate_events > 0 && report.late_events > 0,
        "{report:?}"
    );
    let mut no_events = cfg.clone();
    no_events.bootstrap = None;
    let report_b = seed(&b, &no_events, &|_, _, _| {}).await.unwrap();
    assert_eq!(report_b.leads, report.leads);
    assert_eq!(
        fingerprint(&a).await,
        fingerprint(&b).await,
        "same seed, same rows"
    );
    // Seeding twice without --reset refuses; with it, replaces.
    assert!(seed(&b, &no_events, &|_, _, _| {}).await.is_err());
    no_events.reset = true;
    seed(&b, &no_events, &|_, _, _| {}).await.unwrap();
    assert_eq!(fingerprint(&a).await, fingerprint(&b).await);

    let (leads, converted, lost): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'converted'), count(*) FILTER (WHERE status = 'lost') FROM crm.leads",
    )
    .fetch_one(&a)
    .await
    .unwrap();
    assert!(
        converted * 2 < leads,
        "most leads never convert: {converted}/{leads}"
    );
    assert!(lost > 0);
    let currencies: i64 = sqlx::query_scalar("SELECT count(DISTINCT currency) FROM crm.courses")
        .fetch_one(&a)
        .await
        .unwrap();
    assert!(currencies >= 2);
    let (failed, refunded, late_refunds): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'refunded'), \
         count(*) FILTER (WHERE refunded_at > paid_at + interval '28 days') FROM crm.payments",
    )
    .fetch_one(&a)
    .await
    .unwrap();
    assert!(
        failed > 0 && refunded > 0 && late_refunds == refunded,
        "{failed} {refunded} {late_refunds}"
    );

    // Events: valid per the contract, keyed by student, with duplicates.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("g-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let students: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT id::text FROM crm.students")
            .fetch_all(&a)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let (mut n, mut ids) = (0u64, HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while n < report.events {
        assert!(
            Instant::now() < deadline,
            "consumed {n} of {}",
            report.events
        );
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let key = std::str::from_utf8(m.key().unwrap()).unwrap();
            assert_eq!(v["student_id"], key);
            assert!(students.contains(key));
            let kind = v["kind"].as_str().unwrap();
            assert_eq!(v["score"].is_number(), kind == "quiz_submitted", "{v}");
            assert!(
                chrono::DateTime::parse_from_rfc3339(v["occurred_at"].as_str().unwrap()).is_ok()
            );
            ids.insert(v["event_id"].as_str().unwrap().to_owned());
            n += 1;
        }
    }
    assert_eq!(ids.len() as u64, report.events - report.duplicate_events);
}
