//! The outbox relay: contract-shaped events on the topic, keyed by entity id,
//! and nothing lost when the broker goes away and comes back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_crm::outbox::{Relay, RelayConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::TestApi;

fn spawn_relay(relay: Arc<Relay>) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        relay
            .run(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await;
    });
    (tx, handle)
}

async fn wait_drained(relay: &Relay, within: Duration) {
    let start = Instant::now();
    loop {
        if relay.backlog().await.unwrap() == 0 {
            return;
        }
        assert!(start.elapsed() < within, "outbox not drained in {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Read the topic from the start until every expected event id arrived.
async fn consume(bootstrap: &str, topic: &str, expected: &HashSet<String>) -> Vec<(String, Value)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("g-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !expected.is_subset(&ids) {
        assert!(
            Instant::now() < deadline,
            "only {} of {} events consumed",
            ids.len(),
            expected.len()
        );
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            ids.insert(v["event_id"].as_str().unwrap().to_owned());
            got.push((key, v));
        }
    }
    got
}

async fn outbox_ids(api: &TestApi) -> HashSet<String> {
    sqlx::query_scalar::<_, String>("SELECT event_id::text FROM crm.outbox")
        .fetch_all(&api.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_publishes_contract_events_keyed_by_entity() {
    let api = TestApi::start("crm_relay").await;
    let bootstrap = aula_test_support::kafka_bootstrap();
    let topic = aula_test_support::unique_topic("crm_events");
    let f = api.fixture().await;
    let lead = api
        .create(
            "/api/v1/leads",
            json!({"email": "k@example.com", "full_name": "K", "source": "partner"}),
        )
        .await;
    let mut cfg = RelayConfig::new(bootstrap.clone());
    cfg.topic = topic.clone();
    cfg.idle = Duration::from_millis(50);
    let relay = Arc::new(Relay::new(api.pool.clone(), cfg).unwrap());
    let (stop, handle) = spawn_relay(relay.clone());
    wait_drained(&relay, Duration::from_secs(30)).await;
    let expected = outbox_ids(&api).await;
    assert_eq!(expected.len(), 4);
    let got = consume(&bootstrap, &topic, &expected).await;
    let mut types = HashMap::new();
    for (key, v) in &got {
        assert_eq!(key, v["entity_id"].as_str().unwrap(), "key = entity id");
        assert_eq!(v["data"]["id"], v["entity_id"]);
        assert!(chrono::DateTime::parse_from_rfc3339(v["occurred_at"].as_str().unwrap()).is_ok());
        types.insert(
            v["type"].as_str().unwrap().to_owned(),
            v["entity_id"].clone(),
        );
    }
    assert_eq!(types["course.created"], f.course["id"]);
    assert_eq!(types["student.created"], f.student["id"]);
    assert_eq!(types["enrollment.created"], f.enrollment["id"]);
    assert_eq!(types["lead.created"], lead["id"]);
    stop.send(true).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_resumes_after_broker_outage_and_restart_without_loss() {
    let api = TestApi::start("crm_outage").await;
    // librdkafka's own broker implementation, hosted here so the test can stop and start it.
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let topic = aula_test_support::unique_topic("crm_outage");
    cluster.create_topic(&topic, 3, 1).unwrap();
    let config = || {
        let mut cfg = RelayConfig::new(bootstrap.clone());
        cfg.topic = topic.clone();
        cfg.idle = Duration::from_millis(50);
        cfg.delivery_timeout = Duration::from_secs(2);
        cfg
    };
    let relay = Arc::new(Relay::new(api.pool.clone(), config()).unwrap());
    let (stop, handle) = spawn_relay(relay.clone());
    for i in 0..5 {
        api.create(
            "/api/v1/leads",
            json!({"email": format!("a{i}@example.com"), "full_name": "A", "source": "web"}),
        )
        .await;
    }
    wait_drained(&relay, Duration::from_secs(30)).await;

    cluster.broker_down(1).unwrap();
    for i in 0..20 {
        api.create(
            "/api/v1/leads",
            json!({"email": format!("b{i}@example.com"), "full_name": "B", "source": "ads"}),
        )
        .await;
    }
    // The relay keeps trying (and failing) while the broker is down; nothing is marked sent.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (unsent, attempts): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(max(attempts), 0)::int8 FROM crm.outbox WHERE sent_at IS NULL",
        )
        .fetch_one(&api.pool)
        .await
        .unwrap();
        assert_eq!(unsent, 20, "events must wait while the broker is down");
        if attempts >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not retry during the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The relay process stops during the outage; a new one takes over.
    stop.send(true).unwrap();
    handle.await.unwrap();
    drop(relay);
    for i in 0..5 {
        api.create(
            "/api/v1/leads",
            json!({"email": format!("c{i}@example.com"), "full_name": "C", "source": "event"}),
        )
        .await;
    }
    cluster.broker_up(1).unwrap();
    let relay = Arc::new(Relay::new(api.pool.clone(), config()).unwrap());
    let (stop, handle) = spawn_relay(relay.clone());
    wait_drained(&relay, Duration::from_secs(60)).await;

    let expected = outbox_ids(&api).await;
    assert_eq!(expected.len(), 30);
    let got = consume(&bootstrap, &topic, &expected).await;
    let ids: HashSet<String> = got
        .iter()
        .map(|(_, v)| v["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected, "every committed event reached the topic");
    stop.send(true).unwrap();
    handle.await.unwrap();
}
