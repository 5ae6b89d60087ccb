use std::time::Duration;

use aula_test_support::{kafka_bootstrap, unique_topic};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap_or_else(|e| panic!("Kafka broker at {bootstrap}: cannot create producer: {e}"))
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap_or_else(|e| panic!("Kafka broker at {bootstrap}: cannot create consumer: {e}"))
}

/// Read `n` payloads from partition 0 starting at `from` (None = committed offset).
fn read(consumer: &BaseConsumer, topic: &str, from: Option<i64>, n: usize) -> Vec<String> {
    let mut tpl = TopicPartitionList::new();
    let offset = from.map_or(Offset::Stored, Offset::Offset);
    tpl.add_partition_offset(topic, 0, offset)
        .expect("partition list");
    consumer.assign(&tpl).expect("Kafka broker: assign failed");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "Kafka broker: only {} of {n} messages arrived within 30 s",
            out.len()
        );
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("Kafka broker: fetch failed");
            out.push(String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned());
        }
    }
    out
}

/// librdkafka can block while closing a consumer (rust-rdkafka #509): close off-thread.
async fn close(consumer: BaseConsumer) {
    let closing = tokio::task::spawn_blocking(move || drop(consumer));
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
}

#[tokio::test]
async fn kafka_produces_fetches_commits_and_resumes_exactly() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("smoke");
    let producer = producer(&bootstrap);
    let send = |i: usize| {
        let payload = format!("{{\"n\":{i}}}");
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(0)
                        .key("k")
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("Kafka broker: produce failed: {e}"));
        }
    };
    for i in 0..100 {
        send(i).await;
    }

    let group = format!("{topic}-group");
    let first = consumer(&bootstrap, &group);
    let got = read(&first, &topic, Some(0), 100);
    assert_eq!(
        got,
        (0..100)
            .map(|i| format!("{{\"n\":{i}}}"))
            .collect::<Vec<_>>()
    );
    // Commit after the 60th message, as a run that stored 60 rows would.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(60))
        .expect("partition list");
    first
        .commit(&tpl, CommitMode::Sync)
        .expect("Kafka broker: commit failed");
    close(first).await;

    for i in 100..110 {
        send(i).await;
    }
    let second = consumer(&bootstrap, &group);
    let resumed = read(&second, &topic, None, 50);
    assert_eq!(
        resumed,
        (60..110)
            .map(|i| format!("{{\"n\":{i}}}"))
            .collect::<Vec<_>>()
    );
    close(second).await;
}
