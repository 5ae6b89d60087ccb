//! Dead letters survive a crash between the data commit and the dead-letter
//! commit of a `kafka.consume` run.
//!
//! The crash is reproduced by its result: a run of a pipeline that consumes
//! into the same table without a dead-letter table commits the rows and
//! their offsets and never writes the dead letters, exactly the state a
//! process killed between the two commits leaves. The next run with the
//! dead-letter table configured must find the gap and write the missing
//! dead letters once; a rerun must change nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aula_sql::checks::format_rows;
use aula_test_support::{kafka_bootstrap, unique_name, unique_topic};
use aula_warehouse::{Lake, LakeLocation, S3Settings, TableName};
use futures::TryStreamExt;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn pipeline(id: &str, topic: &str, dead_letter: bool) -> String {
    format!(
        r#"id: {id}
schedule: "@daily"
start_date: 2026-11-01
tasks:
  - id: consume
    kind: kafka.consume
    connection: events
    topics: [{topic}]
    output: raw.dlq_events
{}    max_bad_ratio: 0.9
    columns:
      - {{name: event_id, type: string, required: true}}
      - {{name: n, type: int64}}
"#,
        if dead_letter {
            "    dead_letter: raw.dlq_events_dead_letters\n"
        } else {
            ""
        }
    )
}

async fn produce(topic: &str, payloads: &[&str]) {
    let bootstrap = kafka_bootstrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap_or_else(|e| panic!("Kafka broker at {bootstrap}: {e}"));
    for payload in payloads {
        producer
            .send(
                // One partition's worth of ordering: every message on key "k".
                FutureRecord::to(topic).key("k").payload(*payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("Kafka broker at {bootstrap}: produce failed: {e}"));
    }
}

fn run(dir: &Path, pipeline: &str, date: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["run", pipeline, "--date", date, "--verbose"])
        .arg("--pipelines")
        .arg(dir.join("pipelines"))
        .arg("--state-url")
        .arg(dir.join("state.db"))
        .env("AULA_CONN_EVENTS", format!("kafka://{}", kafka_bootstrap()))
        .env("AULA_LAKE_URL", dir.join("lake"))
        .output()
        .expect("start aula");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "aula run {pipeline} --date {date} failed:\n{text}"
    );
    text
}

async fn rows(dir: &Path, table: &str, sql: &str) -> Vec<String> {
    let lake = Lake::new(
        LakeLocation::parse(
            &dir.join("lake").display().to_string(),
            &S3Settings::from_env(),
        )
        .expect("lake"),
    );
    let name = TableName::parse(table).expect("name");
    let batches: Vec<_> = lake
        .scan(&name, Some(sql))
        .await
        .expect("scan")
        .try_collect()
        .await
        .expect("read");
    format_rows(&batches)
}

#[tokio::test]
async fn dead_letters_lost_to_a_crash_between_commits_are_recovered_once() {
    let dir = std::env::temp_dir().join(unique_name("dlq"));
    let topic = unique_topic("dlq");
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    std::fs::write(
        dir.join("pipelines/dlq.yaml"),
        pipeline("dlq", &topic, true),
    )
    .expect("write");
    std::fs::write(
        dir.join("pipelines/dlq_crashed.yaml"),
        pipeline("dlq_crashed", &topic, false),
    )
    .expect("write");

    // Offsets 0..4: three rows and one poison message at offset 1.
    produce(
        &topic,
        &[
            r#"{"event_id":"a","n":1}"#,
            "not json",
            r#"{"event_id":"b","n":2}"#,
            r#"{"event_id":"c","n":3}"#,
        ],
    )
    .await;
    run(&dir, "dlq", "2026-11-01");
    let offsets = "SELECT \"offset\" FROM t ORDER BY \"offset\"";
    assert_eq!(
        rows(&dir, "raw.dlq_events_dead_letters", offsets).await,
        vec!["offset=1"]
    );

    // Offsets 4..7 with a poison message at 5, committed by a run that never
    // writes its dead letters: the state a crash between the commits leaves.
    produce(
        &topic,
        &[
            r#"{"event_id":"d","n":4}"#,
            "{\"event_id\":",
            r#"{"event_id":"e","n":5}"#,
        ],
    )
    .await;
    run(&dir, "dlq_crashed", "2026-11-02");
    let ids = "SELECT event_id FROM t ORDER BY event_id";
    assert_eq!(rows(&dir, "raw.dlq_events", ids).await.len(), 5);
    assert_eq!(
        rows(&dir, "raw.dlq_events_dead_letters", offsets).await,
        vec!["offset=1"]
    );

    // The next run finds the dead letters behind the data and recovers
    // offset 5, together with a new poison message at offset 8.
    produce(&topic, &[r#"{"event_id":"f","n":6}"#, "[]"]).await;
    let log = run(&dir, "dlq", "2026-11-03");
    assert!(
        log.contains("dead letters trail the committed offsets by 3 message(s)"),
        "the recovery is not logged:\n{log}"
    );
    assert_eq!(
        rows(&dir, "raw.dlq_events_dead_letters", offsets).await,
        vec!["offset=1", "offset=5", "offset=8"]
    );
    assert_eq!(
        rows(&dir, "raw.dlq_events", ids).await,
        ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|id| format!("event_id={id}"))
            .collect::<Vec<_>>()
    );

    // A rerun of the same date finds nothing new and recovers nothing twice.
    run(&dir, "dlq", "2026-11-03");
    assert_eq!(
        rows(&dir, "raw.dlq_events_dead_letters", offsets)
            .await
            .len(),
        3
    );
    assert_eq!(rows(&dir, "raw.dlq_events", ids).await.len(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}
