//! Kafka → lake (topics are auto-created by the first produce, with the
//! broker's default partition count): offsets committed with the data (exactly once, even when
//! the process is SIGKILLed mid-run), poison messages in the dead-letter table.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use aula_connectors::ConnectorError;
use aula_connectors::kafka::{ConsumeOptions, KafkaSource, dead_letter_schema, offset_key};
use aula_test_support::{kafka_bootstrap, unique_topic};
use aula_warehouse::{
    BatchStream, BoxError, Lake, LakeLocation, TableName, WriteMode, WriteOptions,
};
use futures::{StreamExt, TryStreamExt};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::common::{local_lake, s3_lake};

fn activity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("student_id", DataType::Utf8, false),
        Field::new("course_id", DataType::Utf8, false),
        Field::new("lesson_id", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new(
            "occurred_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("duration_s", DataType::Int64, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

fn event(i: usize) -> String {
    let score = if i.is_multiple_of(4) {
        format!(r#","score":{}"#, i % 101)
    } else {
        String::new()
    };
    format!(
        r#"{{"event_id":"e-{i:06}","student_id":"s-{}","course_id":"c-{}","lesson_id":"l-{}","kind":"{}","occurred_at":"2026-03-01T10:{:02}:{:02}.5Z","duration_s":{}{score}}}"#,
        i % 17,
        i % 3,
        i % 11,
        if i.is_multiple_of(4) {
            "quiz_submitted"
        } else {
            "lesson_completed"
        },
        (i / 60) % 60,
        i % 60,
        if i.is_multiple_of(5) {
            "null".to_owned()
        } else {
            (i % 900).to_string()
        },
    )
}

async fn produce(topic: &str, messages: &[(String, Vec<u8>)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = messages.iter().map(|(key, value)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        )
    });
    for r in futures::future::join_all(sends).await {
        r.expect("delivered");
    }
}

/// One `kafka.consume` run: offsets from the lake, data and offsets in one
/// commit, then the dead letters keyed by the same offsets. `slow` delays
/// every batch (so a test can kill the process mid-run); `fail_after`
/// simulates a crash before the commit by breaking the stream.
async fn run(
    lake: &Lake,
    topic: &str,
    opts: ConsumeOptions,
    slow: Option<Duration>,
    fail_after: Option<usize>,
) -> Result<u64, String> {
    let data = TableName::parse("raw.learning_activity").expect("name");
    let dead = TableName::parse("raw.learning_activity_dead_letters").expect("name");
    let source = KafkaSource::new(&kafka_bootstrap()).expect("source");
    let topics = vec![topic.to_owned()];
    let mut stored = HashMap::new();
    for (t, p) in source.partitions(&topics).await.expect("partitions") {
        if let Some(v) = lake
            .txn_version(&data, &offset_key(&t, p))
            .await
            .expect("stored offset")
        {
            stored.insert((t, p), v);
        }
    }
    let ranges = source.plan(&topics, &stored).await.expect("plan");
    if ranges.is_empty() {
        return Ok(0);
    }
    let mut options = WriteOptions::new(WriteMode::Append);
    for r in &ranges {
        options = options.txn(r.app_id(), r.end);
    }
    let consume = source.consume(ranges, activity_schema(), opts);
    let handle = consume.handle();
    let mut seen = 0usize;
    let stream = consume.stream.map(move |item| {
        seen += 1;
        if fail_after.is_some_and(|n| seen > n) {
            return Err(ConnectorError::External {
                system: "test",
                message: "simulated crash".into(),
            });
        }
        item
    });
    let stream = stream.then(move |item| async move {
        if let (Some(d), Ok(b)) = (slow, &item) {
            println!("batch {}", b.num_rows());
            tokio::time::sleep(d).await;
        }
        item
    });
    let input = BatchStream::new(
        activity_schema(),
        stream.map(|r| r.map_err(|e| Box::new(e) as BoxError)),
    );
    let written = lake
        .write(&data, input, options.clone())
        .await
        .map_err(|e| e.to_string())?;
    let dl = handle.dead_letters().expect("dead letters");
    if dl.num_rows() > 0 {
        lake.write(
            &dead,
            BatchStream::from_batches(dead_letter_schema(), vec![dl]),
            options,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(written.input_rows)
}

async fn event_ids(lake: &Lake) -> Vec<String> {
    let t = TableName::parse("raw.learning_activity").expect("name");
    if !lake.exists(&t).await.expect("exists") {
        return Vec::new();
    }
    let batches: Vec<RecordBatch> = lake
        .scan(&t, Some("SELECT event_id FROM t ORDER BY event_id"))
        .await
        .expect("scan")
        .try_collect()
        .await
        .expect("read");
    batches
        .iter()
        .flat_map(|b| {
            let c = cast(b.column(0), &DataType::Utf8).expect("cast");
            c.as_string::<i32>()
                .iter()
                .map(|s| s.unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn expected_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e-{i:06}")).collect()
}

#[tokio::test]
async fn offsets_and_data_commit_together_exactly_once() {
    let topic = unique_topic("activity");
    let first: Vec<(String, Vec<u8>)> = (0..500)
        .map(|i| (format!("s-{}", i % 17), event(i).into_bytes()))
        .collect();
    produce(&topic, &first).await;
    for lake in [local_lake("kafka_once"), s3_lake("kafka_once")] {
        let opts = ConsumeOptions {
            batch_rows: 64,
            ..Default::default()
        };
        // A crash before the commit: nothing is written, nothing is lost.
        let crashed = run(&lake, &topic, opts.clone(), None, Some(2)).await;
        assert!(crashed.is_err(), "the broken stream must fail the write");
        assert!(event_ids(&lake).await.is_empty());
        assert_eq!(run(&lake, &topic, opts.clone(), None, None).await, Ok(500));
        assert_eq!(event_ids(&lake).await, expected_ids(500));
        // A rerun after the commit finds nothing new.
        assert_eq!(run(&lake, &topic, opts.clone(), None, None).await, Ok(0));
        assert_eq!(event_ids(&lake).await.len(), 500);
    }
    let more: Vec<(String, Vec<u8>)> = (500..800)
        .map(|i| (format!("s-{}", i % 17), event(i).into_bytes()))
        .collect();
    produce(&topic, &more).await;
    let lake = local_lake("kafka_once_more");
    assert_eq!(
        run(&lake, &topic, ConsumeOptions::default(), None, None).await,
        Ok(800)
    );
    produce(
        &topic,
        &(800..900)
            .map(|i| ("k".to_owned(), event(i).into_bytes()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        run(&lake, &topic, ConsumeOptions::default(), None, None).await,
        Ok(100),
        "only the new messages"
    );
    assert_eq!(event_ids(&lake).await, expected_ids(900));
}

#[tokio::test]
async fn poison_messages_land_in_the_dead_letter_table_and_a_threshold_fails_the_run() {
    let topic = unique_topic("poison");
    let mut msgs: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| ("k".to_owned(), event(i).into_bytes()))
        .collect();
    msgs.insert(10, ("k".into(), b"not json {".to_vec()));
    msgs.insert(
        50,
        (
            "k".into(),
            br#"{"event_id":"no-student","kind":"lesson_started"}"#.to_vec(),
        ),
    );
    msgs.insert(70, ("k".into(), br#"{"event_id":"bad-time","student_id":"s","course_id":"c","kind":"x","occurred_at":"yesterday"}"#.to_vec()));
    produce(&topic, &msgs).await;

    // Three of 103 is above a 1% threshold: the run fails and commits nothing.
    let lake = local_lake("poison_strict");
    let strict = ConsumeOptions {
        max_bad_ratio: 0.01,
        ..Default::default()
    };
    let err = run(&lake, &topic, strict, None, None)
        .await
        .expect_err("over the threshold");
    assert!(err.contains("3 of 103"), "{err}");
    assert!(event_ids(&lake).await.is_empty());

    for lake in [local_lake("poison"), s3_lake("poison")] {
        let lenient = ConsumeOptions {
            max_bad_ratio: 0.05,
            batch_rows: 16,
            ..Default::default()
        };
        assert_eq!(
            run(&lake, &topic, lenient.clone(), None, None).await,
            Ok(100)
        );
        assert_eq!(event_ids(&lake).await, expected_ids(100));
        let dead = TableName::parse("raw.learning_activity_dead_letters").expect("name");
        let batches: Vec<RecordBatch> = lake
            .scan(
                &dead,
                Some(
                    "SELECT \"offset\", value, error, topic, partition FROM t ORDER BY \"offset\"",
                ),
            )
            .await
            .expect("scan")
            .try_collect()
            .await
            .expect("read");
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
        assert_eq!(b.num_rows(), 3);
        let offsets = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(offsets.values().to_vec(), vec![10, 50, 70]);
        let values = cast(b.column(1), &DataType::Binary).expect("cast");
        assert_eq!(values.as_binary::<i32>().value(0), b"not json {");
        let errors = cast(b.column(2), &DataType::Utf8).expect("cast");
        assert!(
            errors
                .as_string::<i32>()
                .iter()
                .all(|e| e.is_some_and(|e| !e.is_empty()))
        );
        let topics = cast(b.column(3), &DataType::Utf8).expect("cast");
        assert_eq!(topics.as_string::<i32>().value(2), topic);
        // A rerun neither re-reads nor re-dead-letters anything.
        assert_eq!(run(&lake, &topic, lenient, None, None).await, Ok(0));
        assert_eq!(lake.row_count(&dead).await.expect("count"), 3);
    }
}

/// Entry point of the child process that `a_sigkilled_consume_...` kills.
/// It is not a test of its own: it only runs when that test starts it.
#[tokio::test]
#[ignore = "started as a child process by a_sigkilled_consume_reruns_to_exactly_the_produced_messages"]
async fn sigkill_child() {
    let dir = std::env::var("AULA_TEST_CHILD_LAKE").expect("run only by the SIGKILL test");
    let topic = std::env::var("AULA_TEST_CHILD_TOPIC").expect("run only by the SIGKILL test");
    let lake = Lake::new(LakeLocation::parse(&dir, &Default::default()).expect("lake"));
    let opts = ConsumeOptions {
        batch_rows: 50,
        ..Default::default()
    };
    let n = run(&lake, &topic, opts, Some(Duration::from_millis(100)), None)
        .await
        .expect("child run");
    assert!(n > 0);
}

#[tokio::test]
async fn a_sigkilled_consume_reruns_to_exactly_the_produced_messages() {
    let topic = unique_topic("sigkill");
    let msgs: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("s-{}", i % 7), event(i).into_bytes()))
        .collect();
    produce(&topic, &msgs).await;
    let dir = std::env::temp_dir().join(aula_test_support::unique_name("sigkill"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "kafka::sigkill_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AULA_TEST_CHILD_LAKE", &dir)
        .env("AULA_TEST_CHILD_TOPIC", &topic)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    // Kill it once it is well into the run: batches consumed, lake writer
    // busy, commit not reached (1000 messages at 50 per 100 ms take ~2 s).
    let stdout = child.stdout.take().expect("stdout");
    let mut batches = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        if line.expect("line").starts_with("batch ") {
            batches += 1;
            if batches == 5 {
                break;
            }
        }
    }
    assert_eq!(batches, 5, "the child consumed batches before the kill");
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child died by the signal");

    let lake = Lake::new(
        LakeLocation::parse(dir.to_str().expect("utf-8"), &Default::default()).expect("lake"),
    );
    assert!(
        event_ids(&lake).await.is_empty(),
        "nothing committed before the kill"
    );
    let n = run(&lake, &topic, ConsumeOptions::default(), None, None)
        .await
        .expect("rerun");
    assert_eq!(n, 1000);
    assert_eq!(
        event_ids(&lake).await,
        expected_ids(1000),
        "every produced message, once"
    );
    assert_eq!(
        run(&lake, &topic, ConsumeOptions::default(), None, None).await,
        Ok(0)
    );
}
