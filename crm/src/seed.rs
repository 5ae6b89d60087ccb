//! The deterministic demo dataset (`aula demo seed`).
//!
//! Every student has a "story" (the leads that preceded them, their
//! enrollments, payments and learning events) generated from its own random
//! stream `(seed, student index)`. Stories can therefore be regenerated table
//! by table, so each table is written with one streaming `COPY` without
//! holding the dataset in memory, and the same `--seed` always yields the
//! same rows, ids and events.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::CrmError;

/// The topic of learning events (contract §2).
pub const LEARNING_ACTIVITY_TOPIC: &str = "learning.activity";

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    /// Number of students.
    pub students: u64,
    /// Random seed: the same seed gives the same dataset.
    pub seed: u64,
    /// Last day of the data (the dataset covers the 18 months before it).
    pub end: NaiveDate,
    /// Average learning events per enrollment.
    pub events_per_enrollment: u32,
    /// Kafka bootstrap servers; no events are produced without it.
    pub bootstrap: Option<String>,
    /// Topic for the learning events.
    pub activity_topic: String,
    /// Empty the `crm` tables first.
    pub reset: bool,
}

impl SeedConfig {
    /// Defaults for `students` and `seed`.
    pub fn new(students: u64, seed: u64) -> Self {
        Self {
            students,
            seed,
            end: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            events_per_enrollment: 25,
            bootstrap: None,
            activity_topic: LEARNING_ACTIVITY_TOPIC.to_owned(),
            reset: false,
        }
    }
}

/// What was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub campaigns: u64,
    pub courses: u64,
    pub leads: u64,
    pub students: u64,
    pub enrollments: u64,
    pub payments: u64,
    /// Messages produced to the activity topic (duplicates included).
    pub events: u64,
    /// Of which deliberate duplicates (same `event_id` sent again).
    pub duplicate_events: u64,
    /// Of which late arrivals (broker timestamp hours after `occurred_at`).
    pub late_events: u64,
}

const CATEGORIES: [&str; 6] = [
    "programming",
    "data",
    "design",
    "languages",
    "business",
    "marketing",
];
const CURRENCIES: [&str; 3] = ["EUR", "USD", "BRL"];
const COUNTRIES: [&str; 10] = ["BR", "PT", "ES", "US", "MX", "AR", "DE", "FR", "GB", "IT"];
const FIRST: [&str; 16] = [
    "Ana", "Bruno", "Carla", "Diego", "Elena", "Felipe", "Gabriela", "Hugo", "Ines", "Joao",
    "Laura", "Miguel", "Nora", "Pedro", "Rita", "Sofia",
];
const LAST: [&str; 12] = [
    "Silva", "Santos", "Garcia", "Martins", "Lopez", "Costa", "Smith", "Muller", "Rossi", "Dubois",
    "Pereira", "Alves",
];
const CHANNELS: [&str; 5] = ["email", "whatsapp", "push", "ads", "event"];
const SOURCES: [&str; 5] = ["web", "referral", "ads", "event", "partner"];
const N_COURSES: usize = 40;
const N_CAMPAIGNS: usize = 24;
const LESSONS_PER_COURSE: u32 = 24;

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

fn uuid(r: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(r.random()).into_uuid()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

struct Course {
    id: Uuid,
    price_cents: i64,
    currency: &'static str,
}

struct Catalog {
    courses: Vec<Course>,
    campaigns: Vec<Uuid>,
    courses_csv: String,
    campaigns_csv: String,
}

fn catalog(cfg: &SeedConfig, start: DateTime<Utc>) -> Catalog {
    let mut r = rng_for(cfg.seed, u64::MAX);
    let mut courses = Vec::new();
    let mut courses_csv = String::new();
    for i in 0..N_COURSES {
        let id = uuid(&mut r);
        let category = CATEGORIES[i % CATEGORIES.len()];
        let currency = CURRENCIES[i % CURRENCIES.len()];
        let price_cents = if i % 13 == 0 {
            0
        } else {
            r.random_range(49..=999) * 100 - 100 + 99
        };
        let created = start - TimeDelta::days(r.random_range(30..120));
        let starts_on = (created + TimeDelta::days(r.random_range(10..60))).date_naive();
        let _ = writeln!(
            courses_csv,
            "{id},{c},{c},{prefix}-{num:03},{category} course {num},{category},{price_cents},{currency},{starts_on}",
            c = ts(created),
            prefix = category[..3].to_uppercase(),
            num = i + 1,
        );
        courses.push(Course {
            id,
            price_cents,
            currency,
        });
    }
    let mut campaigns = Vec::new();
    let mut campaigns_csv = String::new();
    for i in 0..N_CAMPAIGNS {
        let id = uuid(&mut r);
        let starts = start.date_naive() + Days::new(i as u64 * 22);
        let ends = starts + Days::new(r.random_range(14..60));
        let created =
            starts.and_hms_opt(9, 0, 0).unwrap_or_default().and_utc() - TimeDelta::days(7);
        let _ = writeln!(
            campaigns_csv,
            "{id},{c},{c},Campaign {n:02} {ch},{ch},{starts},{ends},{budget},{cur}",
            c = ts(created),
            n = i + 1,
            ch = CHANNELS[i % CHANNELS.len()],
            budget = r.random_range(1_000..50_000) * 100,
            cur = CURRENCIES[i % CURRENCIES.len()],
        );
        campaigns.push(id);
    }
    Catalog {
        courses,
        campaigns,
        courses_csv,
        campaigns_csv,
    }
}

#[derive(Default)]
struct Story {
    leads: String,
    student: String,
    enrollments: String,
    payments: String,
    n_leads: u64,
    n_enrollments: u64,
    n_payments: u64,
    /// (enrollment course id, from, until) for learning events.
    studying: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>,
    student_id: Uuid,
}

/// The story of student `i`: deterministic from `(seed, i)`.
fn story(
    cfg: &SeedConfig,
    cat: &Catalog,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    i: u64,
) -> Story {
    let mut r = rng_for(cfg.seed, i * 2);
    let mut s = Story::default();
    let span = (end - start).num_seconds() - 60 * 86_400;
    let first = FIRST[r.random_range(0..FIRST.len())];
    let last = LAST[r.random_range(0..LAST.len())];
    let email = format!(
        "{}.{}.{i}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let country = COUNTRIES[r.random_range(0..COUNTRIES.len())];
    let opt_in = r.random_bool(0.6);
    let student_id = uuid(&mut r);
    s.student_id = student_id;
    let lead_at = start + TimeDelta::seconds(r.random_range(0..span.max(1)));
    let converted_at = lead_at + TimeDelta::seconds(r.random_range(3_600..30 * 86_400));
    let campaign = |r: &mut ChaCha8Rng| {
        if r.random_bool(0.6) {
            Some(cat.campaigns[r.random_range(0..cat.campaigns.len())])
        } else {
            None
        }
    };
    let interest = |r: &mut ChaCha8Rng| {
        if r.random_bool(0.5) {
            Some(cat.courses[r.random_range(0..cat.courses.len())].id)
        } else {
            None
        }
    };
    // Most students came through a lead (some signed up directly).
    let lead_id = if r.random_bool(0.9) {
        let id = uuid(&mut r);
        let _ = writeln!(
            s.leads,
            "{id},{c},{u},{mail},{first} {last},,{country},{src},{camp},{int},converted,{opt_in},{u},{student_id}",
            c = ts(lead_at),
            u = ts(converted_at),
            mail = if r.random_bool(0.3) {
                email.to_uppercase()
            } else {
                email.clone()
            },
            src = SOURCES[r.random_range(0..SOURCES.len())],
            camp = opt(campaign(&mut r)),
            int = opt(interest(&mut r)),
        );
        s.n_leads += 1;
        Some(id)
    } else {
        None
    };
    // The funnel's other leads: most never convert, some are lost.
    let extra = r.random_range(1..=5);
    for k in 0..extra {
        let id = uuid(&mut r);
        let created = start + TimeDelta::seconds(r.random_range(0..span.max(1) + 59 * 86_400));
        let status = match r.random_range(0..100) {
            0..35 => "new",
            35..65 => "contacted",
            65..80 => "qualified",
            _ => "lost",
        };
        let updated = if status == "new" {
            created
        } else {
            (created + TimeDelta::seconds(r.random_range(600..20 * 86_400))).min(end)
        };
        let f = FIRST[r.random_range(0..FIRST.len())];
        let l = LAST[r.random_range(0..LAST.len())];
        let _ = writeln!(
            s.leads,
            "{id},{c},{u},{fl}.{ll}.{i}.{k}@mail.example,{f} {l},{phone},{country},{src},{camp},{int},{status},{oi},,",
            c = ts(created),
            u = ts(updated),
            fl = f.to_lowercase(),
            ll = l.to_lowercase(),
            phone = if r.random_bool(0.4) {
                format!("+{}", r.random_range(10_000_000_000u64..99_999_999_999))
            } else {
                String::new()
            },
            country = COUNTRIES[r.random_range(0..COUNTRIES.len())],
            src = SOURCES[r.random_range(0..SOURCES.len())],
            camp = opt(campaign(&mut r)),
            int = opt(interest(&mut r)),
            oi = r.random_bool(0.5),
        );
        s.n_leads += 1;
    }
    let _ = writeln!(
        s.student,
        "{student_id},{c},{c},{email},{first} {last},{country},{opt_in},{lead}",
        c = ts(converted_at),
        lead = opt(lead_id),
    );
    // Enrollments in 1–3 distinct courses, payments for the paid ones.
    let n_courses = r.random_range(1..=3usize);
    let mut taken = Vec::new();
    for _ in 0..n_courses {
        let ci = r.random_range(0..cat.courses.len());
        if taken.contains(&ci) {
            continue;
        }
        taken.push(ci);
        let course = &cat.courses[ci];
        let eid = uuid(&mut r);
        let enrolled = (converted_at + TimeDelta::seconds(r.random_range(0..20 * 86_400)))
            .min(end - TimeDelta::hours(1));
        let roll = r.random_range(0..100);
        let (status, done_at) = if roll < 30 {
            let t = enrolled + TimeDelta::days(r.random_range(30..120));
            if t < end {
                ("completed", Some(t))
            } else {
                ("active", None)
            }
        } else if roll < 45 {
            (
                "cancelled",
                Some((enrolled + TimeDelta::days(r.random_range(3..60))).min(end)),
            )
        } else {
            ("active", None)
        };
        let (completed, cancelled) = match status {
            "completed" => (done_at, None),
            "cancelled" => (None, done_at),
            _ => (None, None),
        };
        let _ = writeln!(
            s.enrollments,
            "{eid},{c},{u},{student_id},{course},{status},{c},{comp},{canc}",
            c = ts(enrolled),
            u = ts(done_at.unwrap_or(enrolled)),
            course = course.id,
            comp = opt(completed.map(ts)),
            canc = opt(cancelled.map(ts)),
        );
        s.n_enrollments += 1;
        s.studying
            .push((course.id, enrolled, done_at.unwrap_or(end)));
        if course.price_cents == 0 {
            continue;
        }
        let amount = if r.random_bool(0.2) {
            course.price_cents * r.random_range(70..90) / 100
        } else {
            course.price_cents
        };
        let provider = |r: &mut ChaCha8Rng| {
            if r.random_bool(0.7) {
                "stripe"
            } else {
                "paypal"
            }
        };
        let mut at = enrolled + TimeDelta::minutes(r.random_range(1..600));
        if r.random_bool(0.08) {
            // A declined card, retried later.
            let pid = uuid(&mut r);
            let _ = writeln!(
                s.payments,
                "{pid},{c},{c},{eid},{student_id},{amount},{cur},{p},failed,,,",
                c = ts(at),
                cur = course.currency,
                p = provider(&mut r),
            );
            s.n_payments += 1;
            at += TimeDelta::hours(r.random_range(1..72));
        }
        let pid = uuid(&mut r);
        let created = at.min(end);
        let (status, paid, refunded, updated) =
            if end - created < TimeDelta::days(2) && r.random_bool(0.5) {
                ("pending", None, None, created)
            } else {
                let paid = created + TimeDelta::seconds(r.random_range(5..300));
                let refund = paid + TimeDelta::days(r.random_range(30..150));
                if r.random_bool(0.05) && refund < end {
                    ("refunded", Some(paid), Some(refund), refund)
                } else {
                    ("succeeded", Some(paid), None, paid)
                }
            };
        let _ = writeln!(
            s.payments,
            "{pid},{c},{u},{eid},{student_id},{amount},{cur},{p},{status},{paid},{refunded},{key}",
            c = ts(created),
            u = ts(updated),
            cur = course.currency,
            p = provider(&mut r),
            paid = opt(paid.map(ts)),
            refunded = opt(refunded.map(ts)),
            key = if r.random_bool(0.3) {
                format!("seed-{pid}")
            } else {
                String::new()
            },
        );
        s.n_payments += 1;
    }
    s
}

/// Bulk-write the CRM tables and produce the learning events.
///
/// `progress(stage, done, total)` is called as work advances.
pub async fn seed(
    pool: &PgPool,
    cfg: &SeedConfig,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<SeedReport, CrmError> {
    let end = cfg
        .end
        .and_hms_opt(23, 59, 59)
        .map(|t| t.and_utc())
        .ok_or_else(|| CrmError::Config("bad end date".into()))?;
    let start = end - TimeDelta::days(548);
    let cat = catalog(cfg, start);
    let mut tx = pool.begin().await.map_err(CrmError::db("seed: begin"))?;
    if cfg.reset {
        sqlx::query("TRUNCATE crm.payments, crm.enrollments, crm.students, crm.leads, crm.campaigns, crm.courses, crm.outbox")
            .execute(&mut *tx)
            .await
            .map_err(CrmError::db("seed: truncating"))?;
    } else {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM crm.courses) + (SELECT count(*) FROM crm.students)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(CrmError::db("seed: checking for data"))?;
        if n > 0 {
            return Err(CrmError::Config(
                "the crm tables already hold data; pass --reset to replace them".into(),
            ));
        }
    }
    sqlx::query("SET CONSTRAINTS crm.leads_student_id_fkey DEFERRED")
        .execute(&mut *tx)
        .await
        .map_err(CrmError::db("seed: deferring"))?;
    let mut report = SeedReport {
        courses: N_COURSES as u64,
        campaigns: N_CAMPAIGNS as u64,
        ..Default::default()
    };
    copy_all(
        &mut tx,
        "COPY crm.courses (id, created_at, updated_at, code, title, category, price_cents, currency, starts_on) \
         FROM STDIN WITH (FORMAT csv)",
        cat.courses_csv.as_bytes(),
    )
    .await?;
    copy_all(
        &mut tx,
        "COPY crm.campaigns (id, created_at, updated_at, name, channel, starts_on, ends_on, budget_cents, currency) \
         FROM STDIN WITH (FORMAT csv)",
        cat.campaigns_csv.as_bytes(),
    )
    .await?;
    type Pick = fn(&Story) -> &str;
    let tables: [(&str, &str, Pick); 4] = [
        (
            "leads",
            "COPY crm.leads (id, created_at, updated_at, email, full_name, phone, country, source, campaign_id, \
             course_interest_id, status, marketing_opt_in, converted_at, student_id) FROM STDIN WITH (FORMAT csv)",
            |s| &s.leads,
        ),
        (
            "students",
            "COPY crm.students (id, created_at, updated_at, email, full_name, country, marketing_opt_in, lead_id) \
             FROM STDIN WITH (FORMAT csv)",
            |s| &s.student,
        ),
        (
            "enrollments",
            "COPY crm.enrollments (id, created_at, updated_at, student_id, course_id, status, enrolled_at, \
             completed_at, cancelled_at) FROM STDIN WITH (FORMAT csv)",
            |s| &s.enrollments,
        ),
        (
            "payments",
            "COPY crm.payments (id, created_at, updated_at, enrollment_id, student_id, amount_cents, currency, \
             provider, status, paid_at, refunded_at, idempotency_key) FROM STDIN WITH (FORMAT csv)",
            |s| &s.payments,
        ),
    ];
    for (ti, (name, sql, pick)) in tables.iter().enumerate() {
        let mut copy = tx
            .copy_in_raw(sql)
            .await
            .map_err(CrmError::db(format!("seed: COPY {name}")))?;
        let mut buf = String::with_capacity(1 << 20);
        for i in 0..cfg.students {
            let s = story(cfg, &cat, start, end, i);
            buf.push_str(pick(&s));
            if ti == 0 {
                report.leads += s.n_leads;
                report.students += 1;
                report.enrollments += s.n_enrollments;
                report.payments += s.n_payments;
            }
            if buf.len() >= 1 << 20 {
                copy.send(buf.as_bytes())
                    .await
                    .map_err(CrmError::db(format!("seed: COPY {name}")))?;
                buf.clear();
                progress(name, i + 1, cfg.students);
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes())
                .await
                .map_err(CrmError::db(format!("seed: COPY {name}")))?;
        }
        copy.finish()
            .await
            .map_err(CrmError::db(format!("seed: COPY {name}")))?;
        progress(name, cfg.students, cfg.students);
    }
    tx.commit().await.map_err(CrmError::db("seed: commit"))?;

    if let Some(bootstrap) = &cfg.bootstrap {
        let cfg2 = cfg.clone();
        let bootstrap = bootstrap.clone();
        let progress_events = |done: u64, total: u64| progress("learning.activity", done, total);
        let (events, dups, late) = tokio::task::block_in_place(|| {
            produce_events(&cfg2, &bootstrap, &cat, start, end, &progress_events)
        })?;
        report.events = events;
        report.duplicate_events = dups;
        report.late_events = late;
    }
    Ok(report)
}

async fn copy_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    sql: &str,
    data: &[u8],
) -> Result<(), CrmError> {
    let mut copy = tx
        .copy_in_raw(sql)
        .await
        .map_err(CrmError::db("seed: COPY"))?;
    copy.send(data).await.map_err(CrmError::db("seed: COPY"))?;
    copy.finish().await.map_err(CrmError::db("seed: COPY"))?;
    Ok(())
}

/// Counts failed deliveries.
struct Counting {
    failed: Arc<AtomicU64>,
}

impl rdkafka::ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn produce_events(
    cfg: &SeedConfig,
    bootstrap: &str,
    cat: &Catalog,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    progress: &dyn Fn(u64, u64),
) -> Result<(u64, u64, u64), CrmError> {
    let failed = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "120000")
        .create_with_context(Counting {
            failed: failed.clone(),
        })
        .map_err(|e| CrmError::Broker(format!("creating the producer: {e}")))?;
    let kinds = [
        "lesson_started",
        "lesson_completed",
        "video_watched",
        "quiz_submitted",
    ];
    let (mut sent, mut dups, mut late) = (0u64, 0u64, 0u64);
    let mut line = String::new();
    for i in 0..cfg.students {
        let s = story(cfg, cat, start, end, i);
        let mut r = rng_for(cfg.seed, i * 2 + 1);
        let student = s.student_id.to_string();
        for (course, from, until) in &s.studying {
            let window = (*until - *from).num_seconds().max(60);
            let n = r.random_range(0..=cfg.events_per_enrollment * 2);
            for _ in 0..n {
                let occurred = *from + TimeDelta::seconds(r.random_range(0..window));
                let kind = kinds[r.random_range(0..kinds.len())];
                let event_id = uuid(&mut r);
                line.clear();
                let _ = write!(
                    line,
                    r#"{{"event_id":"{event_id}","student_id":"{student}","course_id":"{course}","lesson_id":"L{:02}","kind":"{kind}","occurred_at":"{}","duration_s":{},"score":{}}}"#,
                    r.random_range(1..=LESSONS_PER_COURSE),
                    occurred.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    if kind == "quiz_submitted" {
                        "null".to_owned()
                    } else {
                        r.random_range(30..3_600).to_string()
                    },
                    if kind == "quiz_submitted" {
                        format!("{:.1}", r.random_range(0.0..=100.0f64))
                    } else {
                        "null".to_owned()
                    },
                );
                // Broker time: seconds after the event, or up to 47 hours for a late arrival.
                let is_late = r.random_bool(0.03);
                let delay = if is_late {
                    r.random_range(3_600..47 * 3_600)
                } else {
                    r.random_range(1..30)
                };
                let broker_ms = (occurred + TimeDelta::seconds(delay)).timestamp_millis();
                let copies = if r.random_bool(0.02) { 2 } else { 1 };
                for _ in 0..copies {
                    send(&producer, &cfg.activity_topic, &student, &line, broker_ms)?;
                    sent += 1;
                }
                dups += copies - 1;
                late += u64::from(is_late);
            }
        }
        if (i + 1) % 1_000 == 0 {
            progress(i + 1, cfg.students);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| CrmError::Broker(format!("flushing learning events: {e}")))?;
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(CrmError::Broker(format!(
            "{failed} of {sent} learning events were not delivered"
        )));
    }
    progress(cfg.students, cfg.students);
    Ok((sent, dups, late))
}

fn send(
    producer: &ThreadedProducer<Counting>,
    topic: &str,
    key: &str,
    payload: &str,
    ts_ms: i64,
) -> Result<(), CrmError> {
    let mut record = BaseRecord::to(topic)
        .key(key)
        .payload(payload)
        .timestamp(ts_ms);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((e, _)) => {
                return Err(CrmError::Broker(format!("producing a learning event: {e}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stories_are_deterministic() {
        let cfg = SeedConfig::new(10, 7);
        let end = Utc::now();
        let start = end - TimeDelta::days(548);
        let cat = catalog(&cfg, start);
        let a = story(&cfg, &cat, start, end, 3);
        let b = story(&cfg, &cat, start, end, 3);
        assert_eq!(a.leads, b.leads);
        assert_eq!(a.payments, b.payments);
        assert_ne!(a.student, story(&cfg, &cat, start, end, 4).student);
        assert_eq!(cat.courses_csv, catalog(&cfg, start).courses_csv);
    }
}
