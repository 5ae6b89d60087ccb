//! `aula run crm_nightly` end to end on a hand-checkable dataset: CRM rows in
//! PostgreSQL, learning events on the broker, marts in the lake and in
//! ClickHouse compared with rows worked out by hand, then D rerun, D+1 run
//! and D rerun again, which must leave every mart as the first run left it.
//!
//! The dataset is the one of `sql/tests/it/fixture.rs` (same story, real
//! UUIDs): logical date D = 2026-03-15.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aula_sql::checks::format_rows;
use aula_test_support::{
    TestClickHouse, TestPg, fresh_clickhouse, fresh_pg, kafka_bootstrap, unique_topic,
};
use aula_warehouse::{Lake, LakeLocation, S3Settings, TableName};
use futures::TryStreamExt;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const D: &str = "2026-03-15";

// Ids: c = courses, k = campaigns, 1 = leads, 5 = students, e = enrollments, f = payments.
fn id(prefix: &str, n: u32) -> String {
    format!("00000000-0000-4000-8000-{prefix}{n:0>11}")
}

const CRM_FIXTURE: &str = r#"
INSERT INTO crm.courses (id, code, title, category, price_cents, currency, starts_on, created_at, updated_at) VALUES
 ('{c1}', 'DS101', 'Data Science', 'data', 10000, 'EUR', '2026-01-05', '2025-12-01T00:00:00Z', '2025-12-01T00:00:00Z'),
 ('{c2}', 'WEB201', 'Web', 'web', 20000, 'USD', NULL, '2025-12-01T00:00:00Z', '2025-12-01T00:00:00Z'),
 ('{c3}', 'UX301', 'UX', 'design', 15000, 'EUR', NULL, '2025-12-01T00:00:00Z', '2025-12-01T00:00:00Z');
INSERT INTO crm.campaigns (id, name, channel, starts_on, ends_on, budget_cents, currency, created_at, updated_at) VALUES
 ('{k1}', 'spring_email', 'email', '2026-01-01', NULL, 500000, 'EUR', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('{k2}', 'ads_q1', 'ads', '2026-01-01', '2026-03-31', 900000, 'USD', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('{k3}', 'webinar_mar', 'event', '2026-03-01', NULL, 100000, 'EUR', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
 ('{k4}', 'late_push', 'push', '2026-03-20', NULL, 1000, 'EUR', '2026-03-20T00:00:00Z', '2026-03-20T00:00:00Z');
INSERT INTO crm.students (id, email, full_name, country, marketing_opt_in, lead_id, created_at, updated_at) VALUES
 ('{s1}', 'ana@x.org', 'Ana', 'ES', true, NULL, '2026-01-10T09:00:00Z', '2026-01-10T09:00:00Z'),
 ('{s2}', 'bruno@x.org', 'Bruno', 'BR', true, NULL, '2026-01-20T12:00:00Z', '2026-01-20T12:00:00Z'),
 ('{s3}', 'carla@x.org', 'Carla', NULL, false, NULL, '2026-02-05T10:00:00Z', '2026-02-05T10:00:00Z'),
 ('{s4}', 'dan@x.org', 'Dan', 'US', true, NULL, '2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z'),
 ('{s5}', 'eve@x.org', 'Eve', 'MX', true, NULL, '2026-01-25T10:00:00Z', '2026-01-25T10:00:00Z');
INSERT INTO crm.leads (id, email, full_name, phone, country, source, campaign_id, course_interest_id, status, marketing_opt_in, converted_at, student_id, created_at, updated_at) VALUES
 ('{l1}', 'ana@x.org', 'Ana', NULL, 'ES', 'web', '{k1}', '{c1}', 'converted', true, '2026-01-10T09:00:00Z', '{s1}', '2026-01-05T10:00:00Z', '2026-01-10T09:00:00Z'),
 ('{l2}', 'bruno@x.org', 'Bruno', NULL, 'BR', 'ads', '{k2}', '{c2}', 'converted', true, '2026-01-20T12:00:00Z', '{s2}', '2026-01-15T08:00:00Z', '2026-01-20T12:00:00Z'),
 ('{l3}', 'lost@x.org', 'Lost Lead', NULL, NULL, 'web', '{k1}', NULL, 'lost', false, NULL, NULL, '2026-01-06T11:00:00Z', '2026-01-09T11:00:00Z'),
 ('{l4}', 'carla@x.org', 'Carla', NULL, NULL, 'referral', NULL, '{c3}', 'converted', false, '2026-02-05T10:00:00Z', '{s3}', '2026-02-01T09:00:00Z', '2026-02-05T10:00:00Z'),
 ('{l5}', 'eva@x.org', 'Eva Web', NULL, 'MX', 'event', '{k3}', NULL, 'contacted', true, NULL, NULL, '2026-03-14T15:00:00Z', '2026-03-14T16:00:00Z'),
 ('{l6}', 'fin@x.org', 'Fin', NULL, 'IE', 'event', '{k3}', NULL, 'new', false, NULL, NULL, '2026-03-15T23:59:59Z', '2026-03-15T23:59:59Z'),
 ('{l7}', 'dan@x.org', 'Dan', '+1 555', 'US', 'ads', '{k2}', '{c1}', 'converted', true, '2026-03-01T10:00:00Z', '{s4}', '2026-03-01T08:00:00Z', '2026-03-01T10:00:00Z'),
 ('{l8}', 'late@x.org', 'Late', NULL, NULL, 'web', '{k1}', NULL, 'new', true, NULL, NULL, '2026-03-16T01:00:00Z', '2026-03-16T01:00:00Z');
UPDATE crm.students SET lead_id = '{l1}' WHERE id = '{s1}';
UPDATE crm.students SET lead_id = '{l2}' WHERE id = '{s2}';
UPDATE crm.students SET lead_id = '{l4}' WHERE id = '{s3}';
UPDATE crm.students SET lead_id = '{l7}' WHERE id = '{s4}';
INSERT INTO crm.enrollments (id, student_id, course_id, status, enrolled_at, completed_at, cancelled_at, created_at, updated_at) VALUES
 ('{e1}', '{s1}', '{c1}', 'completed', '2026-01-10T10:00:00Z', '2026-03-05T10:00:00Z', NULL, '2026-01-10T10:00:00Z', '2026-03-05T10:00:00Z'),
 ('{e2}', '{s1}', '{c2}', 'active', '2026-02-15T10:00:00Z', NULL, NULL, '2026-02-15T10:00:00Z', '2026-02-15T10:00:00Z'),
 ('{e3}', '{s2}', '{c2}', 'cancelled', '2026-01-21T10:00:00Z', NULL, '2026-02-10T10:00:00Z', '2026-01-21T10:00:00Z', '2026-02-10T10:00:00Z'),
 ('{e4}', '{s3}', '{c3}', 'active', '2026-02-06T10:00:00Z', NULL, NULL, '2026-02-06T10:00:00Z', '2026-02-06T10:00:00Z'),
 ('{e5}', '{s4}', '{c1}', 'active', '2026-03-02T10:00:00Z', NULL, NULL, '2026-03-02T10:00:00Z', '2026-03-02T10:00:00Z'),
 ('{e6}', '{s2}', '{c3}', 'active', '2026-03-20T10:00:00Z', NULL, NULL, '2026-03-20T10:00:00Z', '2026-03-20T10:00:00Z'),
 ('{e7}', '{s5}', '{c3}', 'active', '2026-01-26T10:00:00Z', NULL, NULL, '2026-01-26T10:00:00Z', '2026-01-26T10:00:00Z');
INSERT INTO crm.payments (id, enrollment_id, student_id, amount_cents, currency, provider, status, paid_at, refunded_at, idempotency_key, created_at, updated_at) VALUES
 ('{f1}', '{e1}', '{s1}', 10000, 'EUR', 'stripe', 'succeeded', '2026-01-10T10:05:00Z', NULL, 'k-p1', '2026-01-10T10:04:00Z', '2026-01-10T10:05:00Z'),
 ('{f2}', '{e2}', '{s1}', 20000, 'USD', 'paypal', 'succeeded', '2026-02-15T10:05:00Z', NULL, NULL, '2026-02-15T10:04:00Z', '2026-02-15T10:05:00Z'),
 ('{f3}', '{e3}', '{s2}', 20000, 'USD', 'stripe', 'refunded', '2026-01-21T10:05:00Z', '2026-03-03T09:00:00Z', NULL, '2026-01-21T10:04:00Z', '2026-03-03T09:00:00Z'),
 ('{f4}', '{e4}', '{s3}', 15000, 'EUR', 'stripe', 'failed', NULL, NULL, NULL, '2026-02-06T10:30:00Z', '2026-02-06T10:31:00Z'),
 ('{f5}', '{e4}', '{s3}', 15000, 'EUR', 'stripe', 'succeeded', '2026-02-06T11:00:00Z', NULL, NULL, '2026-02-06T10:59:00Z', '2026-02-06T11:00:00Z'),
 ('{f6}', '{e5}', '{s4}', 10000, 'EUR', 'stripe', 'pending', NULL, NULL, NULL, '2026-03-02T10:10:00Z', '2026-03-02T10:10:00Z'),
 ('{f7}', '{e5}', '{s4}', 10000, 'EUR', 'stripe', 'succeeded', '2026-03-16T08:00:00Z', NULL, NULL, '2026-03-16T07:59:00Z', '2026-03-16T08:00:00Z');
"#;

/// (event, student, course, lesson, kind, occurred_at, duration_s, score).
type Event = (
    &'static str,
    u32,
    u32,
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
    Option<f64>,
);

/// The learning events; a4 is sent twice.
const EVENTS: &[Event] = &[
    (
        "a1",
        1,
        1,
        "ds-1",
        "lesson_completed",
        "2026-01-12T10:00:00Z",
        Some(600),
        None,
    ),
    (
        "a2",
        1,
        1,
        "ds-2",
        "quiz_submitted",
        "2026-02-20T10:00:00Z",
        Some(300),
        Some(80.0),
    ),
    (
        "a3",
        1,
        2,
        "web-1",
        "lesson_started",
        "2026-03-13T09:00:00Z",
        None,
        None,
    ),
    (
        "a4",
        1,
        2,
        "web-1",
        "lesson_completed",
        "2026-03-13T10:00:00Z",
        Some(1200),
        None,
    ),
    (
        "a4",
        1,
        2,
        "web-1",
        "lesson_completed",
        "2026-03-13T10:00:00Z",
        Some(1200),
        None,
    ),
    (
        "a5",
        2,
        2,
        "web-1",
        "lesson_completed",
        "2026-01-25T10:00:00Z",
        Some(900),
        None,
    ),
    (
        "a6",
        3,
        3,
        "ux-1",
        "quiz_submitted",
        "2026-03-14T11:00:00Z",
        Some(100),
        Some(90.0),
    ),
    (
        "a7",
        3,
        3,
        "ux-2",
        "quiz_submitted",
        "2026-03-14T12:00:00.250Z",
        Some(100),
        Some(70.0),
    ),
    (
        "a9",
        4,
        1,
        "ds-1",
        "lesson_completed",
        "2026-03-15T21:00:00Z",
        Some(700),
        None,
    ),
    (
        "a10",
        1,
        2,
        "web-2",
        "lesson_completed",
        "2026-03-16T09:00:00Z",
        Some(800),
        None,
    ),
    // a8 happened on D but arrives late, after a9 and a10.
    (
        "a8",
        4,
        1,
        "ds-1",
        "video_watched",
        "2026-03-15T20:00:00Z",
        Some(400),
        None,
    ),
    (
        "a11",
        2,
        2,
        "web-2",
        "lesson_started",
        "2026-02-02T10:00:00Z",
        None,
        None,
    ),
    (
        "a12",
        5,
        3,
        "ux-1",
        "lesson_started",
        "2026-02-01T10:00:00Z",
        None,
        None,
    ),
];

fn fixture_sql() -> String {
    let mut sql = CRM_FIXTURE.to_owned();
    for (prefix, letter, count) in [
        ("c", 'c', 3),
        ("1", 'k', 4),
        ("1", 'l', 8),
        ("5", 's', 5),
        ("e", 'e', 7),
        ("f", 'f', 7),
    ] {
        for n in 1..=count {
            // Campaigns and leads share the '1' prefix: offset campaign numbers.
            let number = if letter == 'k' { 100 + n } else { n };
            sql = sql.replace(&format!("{{{letter}{n}}}"), &id(prefix, number));
        }
    }
    sql
}

async fn produce_events(topic: &str) {
    let bootstrap = kafka_bootstrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap_or_else(|e| panic!("Kafka broker at {bootstrap}: {e}"));
    for (event, student, course, lesson, kind, at, duration, score) in EVENTS {
        let mut value = serde_json::json!({
            "event_id": id("a", event[1..].parse::<u32>().expect("event number")),
            "student_id": id("5", *student),
            "course_id": id("c", *course),
            "lesson_id": lesson,
            "kind": kind,
            "occurred_at": at,
            "duration_s": duration,
        });
        if let Some(score) = score {
            value["score"] = serde_json::json!(score);
        }
        let key = id("5", *student);
        let payload = value.to_string();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("Kafka broker at {bootstrap}: produce failed: {e}"));
    }
}

struct Env {
    pg: TestPg,
    ch: TestClickHouse,
    dir: PathBuf,
}

impl Env {
    fn run(&self, date: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_aula"))
            .args(["run", "crm_nightly", "--date", date])
            .arg("--pipelines")
            .arg(self.dir.join("pipelines"))
            .arg("--state-url")
            .arg(self.dir.join("state.db"))
            .env("AULA_CONN_CRM_DB", &self.pg.url)
            .env("AULA_CONN_EVENTS", format!("kafka://{}", kafka_bootstrap()))
            .env(
                "AULA_CONN_WAREHOUSE",
                format!(
                    "clickhouse://default:@{}/{}",
                    self.ch.http_url.trim_start_matches("http://"),
                    self.ch.name
                ),
            )
            .env("AULA_LAKE_URL", self.dir.join("lake"))
            .output()
            .expect("start aula");
        assert!(
            out.status.success(),
            "aula run crm_nightly --date {date} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The pipelines folder with the shipped SQL and the topics renamed to this test's own.
fn pipelines(dir: &Path, activity_topic: &str, events_topic: &str) {
    let shipped = aula_test_support::package_dir().join("pipelines");
    let target = dir.join("pipelines");
    copy_dir(&shipped.join("sql"), &target.join("sql"));
    let yaml = std::fs::read_to_string(shipped.join("crm_nightly.yaml")).expect("crm_nightly.yaml");
    let yaml = yaml
        .replace(
            "topics: [learning.activity]",
            &format!("topics: [{activity_topic}]"),
        )
        .replace("topics: [crm.events]", &format!("topics: [{events_topic}]"));
    std::fs::write(target.join("crm_nightly.yaml"), yaml).expect("write pipeline");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

const MARTS: [(&str, &str); 6] = [
    ("funnel_daily", "day, source"),
    ("revenue_monthly", "month, course_code, currency"),
    ("cohort_retention", "cohort_month, months_since"),
    ("course_engagement_daily", "day, course_code"),
    ("campaign_performance", "campaign_name, currency"),
    ("student_360", "student_id"),
];

async fn lake_rows(dir: &Path, mart: &str, order: &str) -> Vec<String> {
    let location = LakeLocation::parse(
        &dir.join("lake").display().to_string(),
        &S3Settings::from_env(),
    )
    .expect("lake");
    let lake = Lake::new(location);
    let name = TableName::parse(&format!("marts.{mart}")).expect("name");
    let stream = lake
        .scan(&name, Some(&format!("SELECT * FROM t ORDER BY {order}")))
        .await
        .expect("scan");
    let batches: Vec<_> = stream.try_collect().await.expect("read");
    format_rows(&batches)
        .into_iter()
        .map(|r| normalize(&r))
        .collect()
}

/// ClickHouse rows in the lake's `column=value` form.
async fn clickhouse_rows(ch: &TestClickHouse, mart: &str, order: &str) -> Vec<String> {
    let mut cursor = ch
        .client
        .query(&format!("SELECT * FROM {mart} ORDER BY {order}"))
        .fetch_bytes("TSVWithNames")
        .unwrap_or_else(|e| panic!("ClickHouse {mart}: {e}"));
    let mut text = Vec::new();
    while let Some(chunk) = cursor
        .next()
        .await
        .unwrap_or_else(|e| panic!("ClickHouse {mart}: {e}"))
    {
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(text).expect("utf8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .map(|line| {
            let cells: Vec<String> = header
                .iter()
                .zip(line.split('\t'))
                .map(|(name, value)| {
                    let value = if value == "\\N" {
                        "NULL".to_owned()
                    } else {
                        iso(value)
                    };
                    format!("{name}={value}")
                })
                .collect();
            normalize(&cells.join(", "))
        })
        .collect()
}

/// `2026-01-10 10:00:00` → `2026-01-10T10:00:00Z`.
fn iso(value: &str) -> String {
    let b = value.as_bytes();
    if b.len() == 19 && b[10] == b' ' && b[4] == b'-' && b[13] == b':' {
        format!("{}T{}Z", &value[..10], &value[11..])
    } else {
        value.to_owned()
    }
}

/// Whole floats print as `80` in ClickHouse and `80.0` in Arrow.
fn normalize(row: &str) -> String {
    row.split(", ")
        .map(|cell| {
            cell.strip_suffix(".0")
                .filter(|v| v.ends_with(|c: char| c.is_ascii_digit()))
                .unwrap_or(cell)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn expected(mart: &str) -> Vec<String> {
    let s = |n| id("5", n);
    let rows: Vec<String> = match mart {
        "funnel_daily" => [
            "day=2026-01-05, source=web, leads_created=1, leads_converted=0",
            "day=2026-01-06, source=web, leads_created=1, leads_converted=0",
            "day=2026-01-10, source=web, leads_created=0, leads_converted=1",
            "day=2026-01-15, source=ads, leads_created=1, leads_converted=0",
            "day=2026-01-20, source=ads, leads_created=0, leads_converted=1",
            "day=2026-02-01, source=referral, leads_created=1, leads_converted=0",
            "day=2026-02-05, source=referral, leads_created=0, leads_converted=1",
            "day=2026-03-01, source=ads, leads_created=1, leads_converted=1",
            "day=2026-03-14, source=event, leads_created=1, leads_converted=0",
            "day=2026-03-15, source=event, leads_created=1, leads_converted=0",
        ]
        .map(String::from)
        .to_vec(),
        "revenue_monthly" => [
            "month=2026-01-01, course_code=DS101, currency=EUR, gross_cents=10000, refunded_cents=0, net_cents=10000, paying_students=1",
            "month=2026-01-01, course_code=WEB201, currency=USD, gross_cents=20000, refunded_cents=0, net_cents=20000, paying_students=1",
            "month=2026-02-01, course_code=UX301, currency=EUR, gross_cents=15000, refunded_cents=0, net_cents=15000, paying_students=1",
            "month=2026-02-01, course_code=WEB201, currency=USD, gross_cents=20000, refunded_cents=0, net_cents=20000, paying_students=1",
            "month=2026-03-01, course_code=WEB201, currency=USD, gross_cents=0, refunded_cents=20000, net_cents=-20000, paying_students=0",
        ]
        .map(String::from)
        .to_vec(),
        "cohort_retention" => [
            "cohort_month=2026-01-01, months_since=0, cohort_size=3, active_students=2",
            "cohort_month=2026-01-01, months_since=1, cohort_size=3, active_students=3",
            "cohort_month=2026-01-01, months_since=2, cohort_size=3, active_students=1",
            "cohort_month=2026-02-01, months_since=0, cohort_size=1, active_students=0",
            "cohort_month=2026-02-01, months_since=1, cohort_size=1, active_students=1",
            "cohort_month=2026-03-01, months_since=0, cohort_size=1, active_students=1",
        ]
        .map(String::from)
        .to_vec(),
        "course_engagement_daily" => [
            "day=2026-01-12, course_code=DS101, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-01-25, course_code=WEB201, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-01, course_code=UX301, active_students=1, lessons_completed=0, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-02, course_code=WEB201, active_students=1, lessons_completed=0, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-20, course_code=DS101, active_students=1, lessons_completed=0, quiz_submissions=1, avg_quiz_score=80",
            "day=2026-03-13, course_code=WEB201, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-03-14, course_code=UX301, active_students=1, lessons_completed=0, quiz_submissions=2, avg_quiz_score=80",
            "day=2026-03-15, course_code=DS101, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
        ]
        .map(String::from)
        .to_vec(),
        "campaign_performance" => [
            "campaign_name=ads_q1, channel=ads, currency=USD, leads=2, converted_leads=2, net_revenue_cents=0",
            "campaign_name=spring_email, channel=email, currency=EUR, leads=2, converted_leads=1, net_revenue_cents=10000",
            "campaign_name=spring_email, channel=email, currency=USD, leads=2, converted_leads=1, net_revenue_cents=20000",
            "campaign_name=webinar_mar, channel=event, currency=EUR, leads=2, converted_leads=0, net_revenue_cents=0",
        ]
        .map(String::from)
        .to_vec(),
        "student_360" => vec![
            format!("student_id={}, email=ana@x.org, full_name=Ana, country=ES, marketing_opt_in=1, first_enrolled_at=2026-01-10T10:00:00Z, active_enrollments=1, completed_enrollments=1, last_activity_at=2026-03-13T10:00:00Z, lessons_completed_30d=1, last_completed_at=2026-03-05T10:00:00Z", s(1)),
            format!("student_id={}, email=bruno@x.org, full_name=Bruno, country=BR, marketing_opt_in=1, first_enrolled_at=2026-01-21T10:00:00Z, active_enrollments=0, completed_enrollments=0, last_activity_at=2026-02-02T10:00:00Z, lessons_completed_30d=0, last_completed_at=NULL", s(2)),
            format!("student_id={}, email=carla@x.org, full_name=Carla, country=NULL, marketing_opt_in=0, first_enrolled_at=2026-02-06T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-03-14T12:00:00Z, lessons_completed_30d=0, last_completed_at=NULL", s(3)),
            format!("student_id={}, email=dan@x.org, full_name=Dan, country=US, marketing_opt_in=1, first_enrolled_at=2026-03-02T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-03-15T21:00:00Z, lessons_completed_30d=1, last_completed_at=NULL", s(4)),
            format!("student_id={}, email=eve@x.org, full_name=Eve, country=MX, marketing_opt_in=1, first_enrolled_at=2026-01-26T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-02-01T10:00:00Z, lessons_completed_30d=0, last_completed_at=NULL", s(5)),
        ],
        other => panic!("no expectation for {other}"),
    };
    rows
}

async fn assert_marts(env: &Env, when: &str) {
    for (mart, order) in MARTS {
        // a7 happened at 12:00:00.250: the lake keeps microseconds, ClickHouse's DateTime whole seconds.
        let lake = lake_rows(&env.dir, mart, order).await;
        let lake: Vec<String> = lake
            .into_iter()
            .map(|r| r.replace("12:00:00.250Z", "12:00:00Z"))
            .collect();
        assert_eq!(lake, expected(mart), "lake marts.{mart} {when}");
        assert_eq!(
            clickhouse_rows(&env.ch, mart, order).await,
            expected(mart),
            "ClickHouse marts.{mart} {when}"
        );
    }
    let exports = env.dir.join("lake").join("exports");
    let inactive = std::fs::read_to_string(exports.join(format!("inactive_learners/{D}.csv")))
        .expect("inactive_learners export");
    assert_eq!(
        inactive, "email,full_name,country\neve@x.org,Eve,MX\n",
        "{when}"
    );
    let completers = std::fs::read_to_string(exports.join(format!("recent_completers/{D}.csv")))
        .expect("recent_completers export");
    assert_eq!(
        completers, "email,full_name,country\nana@x.org,Ana,ES\n",
        "{when}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_nightly_builds_every_mart_by_hand_and_reruns_replace_never_duplicate() {
    let pg = fresh_pg("nightly").await;
    let pool = pg.pool().await;
    aula_crm::migrate(&pool).await.expect("CRM migrations");
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture_sql()))
        .execute(&pool)
        .await
        .expect("CRM fixture");
    pool.close().await;

    let activity_topic = unique_topic("activity");
    let events_topic = unique_topic("crmevents");
    produce_events(&activity_topic).await;
    // crm.events needs a topic to exist; one event is enough.
    let bootstrap = kafka_bootstrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let event = serde_json::json!({"event_id": id("b", 1), "type": "lead.created", "occurred_at": "2026-03-15T10:00:00Z", "entity_id": id("1", 5), "data": {"status": "new", "email": "eva@x.org"}}).to_string();
    producer
        .send(
            FutureRecord::to(&events_topic).key("k").payload(&event),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("Kafka broker at {bootstrap}: {e}"));

    let ch = fresh_clickhouse("nightly").await;
    let dir = std::env::temp_dir().join(aula_test_support::unique_name("nightly"));
    pipelines(&dir, &activity_topic, &events_topic);
    let env = Env { pg, ch, dir };

    env.run(D);
    assert_marts(&env, "after the first run of D").await;
    // crm.events keeps each event's `data` object as its JSON text.
    let location = LakeLocation::parse(
        &env.dir.join("lake").display().to_string(),
        &S3Settings::from_env(),
    )
    .expect("lake");
    let events = Lake::new(location)
        .scan(
            &TableName::parse("raw.crm_events").expect("name"),
            Some("SELECT type, data FROM t"),
        )
        .await
        .expect("scan raw.crm_events");
    let events: Vec<_> = events.try_collect().await.expect("read");
    assert_eq!(
        format_rows(&events),
        vec![r#"type=lead.created, data={"email":"eva@x.org","status":"new"}"#.to_owned()]
    );
    env.run(D);
    assert_marts(&env, "after rerunning D").await;
    env.run("2026-03-16");
    env.run(D);
    assert_marts(&env, "after D, D+1, D").await;
    let _ = std::fs::remove_dir_all(&env.dir);
}
