//! A hand-checkable education-CRM dataset in the shape the extractors write
//! to the lake (`raw.*`), small enough that every expected mart row in
//! `marts.rs` can be worked out by hand.
//!
//! Logical date D = 2026-03-15, so the data interval ends 2026-03-16T00:00Z.
//! Planted on purpose: two versions of a lead and of a payment (staging keeps
//! the latest), a duplicated event, events and rows after D, a refund two
//! months after its payment, two currencies, a campaign with no converted
//! leads, a student without a lead.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use aula_sql::LakeSession;

pub(crate) const DS: &str = "2026-03-15";
pub(crate) const INTERVAL_END: &str = "2026-03-16T00:00:00Z";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Build a table from text cells (None = null), casting each column to its type.
pub(crate) fn table(
    session: &LakeSession,
    name: &str,
    columns: &[(&str, DataType)],
    rows: &[Vec<Option<&str>>],
) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, t)| Field::new(*n, t.clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (n, t))| {
            assert!(
                rows.iter().all(|r| r.len() == columns.len()),
                "{name}: ragged fixture row"
            );
            let text = StringArray::from(rows.iter().map(|r| r[i]).collect::<Vec<_>>());
            cast(&text, t).unwrap_or_else(|e| panic!("{name}.{n}: {e}"))
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("fixture batch");
    session
        .register_batches(name, schema, vec![batch])
        .expect("register fixture");
}

pub(crate) const S1: &str = "00000000-0000-4000-8000-0000000000s1";
pub(crate) const S2: &str = "00000000-0000-4000-8000-0000000000s2";
pub(crate) const S3: &str = "00000000-0000-4000-8000-0000000000s3";
pub(crate) const S4: &str = "00000000-0000-4000-8000-0000000000s4";
pub(crate) const S5: &str = "00000000-0000-4000-8000-0000000000s5";

/// Register every raw table of the fixture.
pub(crate) fn load(session: &LakeSession) {
    let s = |v: &'static str| Some(v);
    let n = None;
    table(
        session,
        "raw.crm_courses",
        &[
            ("id", DataType::Utf8),
            ("code", DataType::Utf8),
            ("title", DataType::Utf8),
            ("category", DataType::Utf8),
            ("price_cents", DataType::Int64),
            ("currency", DataType::Utf8),
            ("starts_on", DataType::Date32),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            vec![
                s("c1"),
                s("DS101"),
                s("Data Science"),
                s("data"),
                s("10000"),
                s("EUR"),
                s("2026-01-05"),
                s("2025-12-01T00:00:00Z"),
                s("2025-12-01T00:00:00Z"),
            ],
            vec![
                s("c2"),
                s("WEB201"),
                s("Web"),
                s("web"),
                s("20000"),
                s("USD"),
                n,
                s("2025-12-01T00:00:00Z"),
                s("2025-12-01T00:00:00Z"),
            ],
            vec![
                s("c3"),
                s("UX301"),
                s("UX"),
                s("design"),
                s("15000"),
                s("EUR"),
                n,
                s("2025-12-01T00:00:00Z"),
                s("2025-12-01T00:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.crm_campaigns",
        &[
            ("id", DataType::Utf8),
            ("name", DataType::Utf8),
            ("channel", DataType::Utf8),
            ("starts_on", DataType::Date32),
            ("ends_on", DataType::Date32),
            ("budget_cents", DataType::Int64),
            ("currency", DataType::Utf8),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            vec![
                s("k1"),
                s("spring_email"),
                s("email"),
                s("2026-01-01"),
                n,
                s("500000"),
                s("EUR"),
                s("2026-01-01T00:00:00Z"),
                s("2026-01-01T00:00:00Z"),
            ],
            vec![
                s("k2"),
                s("ads_q1"),
                s("ads"),
                s("2026-01-01"),
                s("2026-03-31"),
                s("900000"),
                s("USD"),
                s("2026-01-01T00:00:00Z"),
                s("2026-01-01T00:00:00Z"),
            ],
            vec![
                s("k3"),
                s("webinar_mar"),
                s("event"),
                s("2026-03-01"),
                n,
                s("100000"),
                s("EUR"),
                s("2026-01-01T00:00:00Z"),
                s("2026-01-01T00:00:00Z"),
            ],
            vec![
                s("k4"),
                s("late_push"),
                s("push"),
                s("2026-03-20"),
                n,
                s("1000"),
                s("EUR"),
                s("2026-03-20T00:00:00Z"),
                s("2026-03-20T00:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.crm_leads",
        &[
            ("id", DataType::Utf8),
            ("email", DataType::Utf8),
            ("full_name", DataType::Utf8),
            ("phone", DataType::Utf8),
            ("country", DataType::Utf8),
            ("source", DataType::Utf8),
            ("campaign_id", DataType::Utf8),
            ("course_interest_id", DataType::Utf8),
            ("status", DataType::Utf8),
            ("marketing_opt_in", DataType::Boolean),
            ("converted_at", ts()),
            ("student_id", DataType::Utf8),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            // L1: first seen new, later converted: staging keeps the latter.
            vec![
                s("l1"),
                s("ana@x.org"),
                s("Ana"),
                n,
                s("ES"),
                s("web"),
                s("k1"),
                s("c1"),
                s("new"),
                s("true"),
                n,
                n,
                s("2026-01-05T10:00:00Z"),
                s("2026-01-05T10:00:00Z"),
            ],
            vec![
                s("l1"),
                s("ana@x.org"),
                s("Ana"),
                n,
                s("ES"),
                s("web"),
                s("k1"),
                s("c1"),
                s("converted"),
                s("true"),
                s("2026-01-10T09:00:00Z"),
                s(S1),
                s("2026-01-05T10:00:00Z"),
                s("2026-01-10T09:00:00Z"),
            ],
            vec![
                s("l2"),
                s("bruno@x.org"),
                s("Bruno"),
                n,
                s("BR"),
                s("ads"),
                s("k2"),
                s("c2"),
                s("converted"),
                s("true"),
                s("2026-01-20T12:00:00Z"),
                s(S2),
                s("2026-01-15T08:00:00Z"),
                s("2026-01-20T12:00:00Z"),
            ],
            vec![
                s("l3"),
                s("lost@x.org"),
                s("Lost Lead"),
                n,
                n,
                s("web"),
                s("k1"),
                n,
                s("lost"),
                s("false"),
                n,
                n,
                s("2026-01-06T11:00:00Z"),
                s("2026-01-09T11:00:00Z"),
            ],
            vec![
                s("l4"),
                s("carla@x.org"),
                s("Carla"),
                n,
                n,
                s("referral"),
                n,
                s("c3"),
                s("converted"),
                s("false"),
                s("2026-02-05T10:00:00Z"),
                s(S3),
                s("2026-02-01T09:00:00Z"),
                s("2026-02-05T10:00:00Z"),
            ],
            vec![
                s("l5"),
                s("eva@x.org"),
                s("Eva Web"),
                n,
                s("MX"),
                s("event"),
                s("k3"),
                n,
                s("contacted"),
                s("true"),
                n,
                n,
                s("2026-03-14T15:00:00Z"),
                s("2026-03-14T16:00:00Z"),
            ],
            vec![
                s("l6"),
                s("fin@x.org"),
                s("Fin"),
                n,
                s("IE"),
                s("event"),
                s("k3"),
                n,
                s("new"),
                s("false"),
                n,
                n,
                s("2026-03-15T23:59:59Z"),
                s("2026-03-15T23:59:59Z"),
            ],
            vec![
                s("l7"),
                s("dan@x.org"),
                s("Dan"),
                s("+1 555"),
                s("US"),
                s("ads"),
                s("k2"),
                s("c1"),
                s("converted"),
                s("true"),
                s("2026-03-01T10:00:00Z"),
                s(S4),
                s("2026-03-01T08:00:00Z"),
                s("2026-03-01T10:00:00Z"),
            ],
            // L8 arrives after D.
            vec![
                s("l8"),
                s("late@x.org"),
                s("Late"),
                n,
                n,
                s("web"),
                s("k1"),
                n,
                s("new"),
                s("true"),
                n,
                n,
                s("2026-03-16T01:00:00Z"),
                s("2026-03-16T01:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.crm_students",
        &[
            ("id", DataType::Utf8),
            ("email", DataType::Utf8),
            ("full_name", DataType::Utf8),
            ("country", DataType::Utf8),
            ("marketing_opt_in", DataType::Boolean),
            ("lead_id", DataType::Utf8),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            vec![
                s(S1),
                s("ana@x.org"),
                s("Ana"),
                s("ES"),
                s("true"),
                s("l1"),
                s("2026-01-10T09:00:00Z"),
                s("2026-01-10T09:00:00Z"),
            ],
            vec![
                s(S2),
                s("bruno@x.org"),
                s("Bruno"),
                s("BR"),
                s("true"),
                s("l2"),
                s("2026-01-20T12:00:00Z"),
                s("2026-01-20T12:00:00Z"),
            ],
            vec![
                s(S3),
                s("carla@x.org"),
                s("Carla"),
                n,
                s("false"),
                s("l4"),
                s("2026-02-05T10:00:00Z"),
                s("2026-02-05T10:00:00Z"),
            ],
            vec![
                s(S4),
                s("dan@x.org"),
                s("Dan"),
                s("US"),
                s("true"),
                s("l7"),
                s("2026-03-01T10:00:00Z"),
                s("2026-03-01T10:00:00Z"),
            ],
            // S5 signed up directly, without a lead.
            vec![
                s(S5),
                s("eve@x.org"),
                s("Eve"),
                s("MX"),
                s("true"),
                n,
                s("2026-01-25T10:00:00Z"),
                s("2026-01-25T10:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.crm_enrollments",
        &[
            ("id", DataType::Utf8),
            ("student_id", DataType::Utf8),
            ("course_id", DataType::Utf8),
            ("status", DataType::Utf8),
            ("enrolled_at", ts()),
            ("completed_at", ts()),
            ("cancelled_at", ts()),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            vec![
                s("e1"),
                s(S1),
                s("c1"),
                s("completed"),
                s("2026-01-10T10:00:00Z"),
                s("2026-03-05T10:00:00Z"),
                n,
                s("2026-01-10T10:00:00Z"),
                s("2026-03-05T10:00:00Z"),
            ],
            vec![
                s("e2"),
                s(S1),
                s("c2"),
                s("active"),
                s("2026-02-15T10:00:00Z"),
                n,
                n,
                s("2026-02-15T10:00:00Z"),
                s("2026-02-15T10:00:00Z"),
            ],
            vec![
                s("e3"),
                s(S2),
                s("c2"),
                s("cancelled"),
                s("2026-01-21T10:00:00Z"),
                n,
                s("2026-02-10T10:00:00Z"),
                s("2026-01-21T10:00:00Z"),
                s("2026-02-10T10:00:00Z"),
            ],
            vec![
                s("e4"),
                s(S3),
                s("c3"),
                s("active"),
                s("2026-02-06T10:00:00Z"),
                n,
                n,
                s("2026-02-06T10:00:00Z"),
                s("2026-02-06T10:00:00Z"),
            ],
            vec![
                s("e5"),
                s(S4),
                s("c1"),
                s("active"),
                s("2026-03-02T10:00:00Z"),
                n,
                n,
                s("2026-03-02T10:00:00Z"),
                s("2026-03-02T10:00:00Z"),
            ],
            vec![
                s("e6"),
                s(S2),
                s("c3"),
                s("active"),
                s("2026-03-20T10:00:00Z"),
                n,
                n,
                s("2026-03-20T10:00:00Z"),
                s("2026-03-20T10:00:00Z"),
            ],
            vec![
                s("e7"),
                s(S5),
                s("c3"),
                s("active"),
                s("2026-01-26T10:00:00Z"),
                n,
                n,
                s("2026-01-26T10:00:00Z"),
                s("2026-01-26T10:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.crm_payments",
        &[
            ("id", DataType::Utf8),
            ("enrollment_id", DataType::Utf8),
            ("student_id", DataType::Utf8),
            ("amount_cents", DataType::Int64),
            ("currency", DataType::Utf8),
            ("provider", DataType::Utf8),
            ("status", DataType::Utf8),
            ("paid_at", ts()),
            ("refunded_at", ts()),
            ("idempotency_key", DataType::Utf8),
            ("created_at", ts()),
            ("updated_at", ts()),
        ],
        &[
            vec![
                s("p1"),
                s("e1"),
                s(S1),
                s("10000"),
                s("EUR"),
                s("stripe"),
                s("succeeded"),
                s("2026-01-10T10:05:00Z"),
                n,
                s("k-p1"),
                s("2026-01-10T10:04:00Z"),
                s("2026-01-10T10:05:00Z"),
            ],
            vec![
                s("p2"),
                s("e2"),
                s(S1),
                s("20000"),
                s("USD"),
                s("paypal"),
                s("succeeded"),
                s("2026-02-15T10:05:00Z"),
                n,
                n,
                s("2026-02-15T10:04:00Z"),
                s("2026-02-15T10:05:00Z"),
            ],
            // P3 paid in January, refunded in March: two versions in raw.
            vec![
                s("p3"),
                s("e3"),
                s(S2),
                s("20000"),
                s("USD"),
                s("stripe"),
                s("succeeded"),
                s("2026-01-21T10:05:00Z"),
                n,
                n,
                s("2026-01-21T10:04:00Z"),
                s("2026-01-21T10:05:00Z"),
            ],
            vec![
                s("p3"),
                s("e3"),
                s(S2),
                s("20000"),
                s("USD"),
                s("stripe"),
                s("refunded"),
                s("2026-01-21T10:05:00Z"),
                s("2026-03-03T09:00:00Z"),
                n,
                s("2026-01-21T10:04:00Z"),
                s("2026-03-03T09:00:00Z"),
            ],
            vec![
                s("p4"),
                s("e4"),
                s(S3),
                s("15000"),
                s("EUR"),
                s("stripe"),
                s("failed"),
                n,
                n,
                n,
                s("2026-02-06T10:30:00Z"),
                s("2026-02-06T10:31:00Z"),
            ],
            vec![
                s("p5"),
                s("e4"),
                s(S3),
                s("15000"),
                s("EUR"),
                s("stripe"),
                s("succeeded"),
                s("2026-02-06T11:00:00Z"),
                n,
                n,
                s("2026-02-06T10:59:00Z"),
                s("2026-02-06T11:00:00Z"),
            ],
            vec![
                s("p6"),
                s("e5"),
                s(S4),
                s("10000"),
                s("EUR"),
                s("stripe"),
                s("pending"),
                n,
                n,
                n,
                s("2026-03-02T10:10:00Z"),
                s("2026-03-02T10:10:00Z"),
            ],
            // P7 is paid after D.
            vec![
                s("p7"),
                s("e5"),
                s(S4),
                s("10000"),
                s("EUR"),
                s("stripe"),
                s("succeeded"),
                s("2026-03-16T08:00:00Z"),
                n,
                n,
                s("2026-03-16T07:59:00Z"),
                s("2026-03-16T08:00:00Z"),
            ],
        ],
    );
    table(
        session,
        "raw.learning_activity",
        &[
            ("event_id", DataType::Utf8),
            ("student_id", DataType::Utf8),
            ("course_id", DataType::Utf8),
            ("lesson_id", DataType::Utf8),
            ("kind", DataType::Utf8),
            ("occurred_at", ts()),
            ("duration_s", DataType::Int64),
            ("score", DataType::Float64),
            ("_topic", DataType::Utf8),
            ("_partition", DataType::Int32),
            ("_offset", DataType::Int64),
        ],
        &[
            vec![
                s("a1"),
                s(S1),
                s("c1"),
                s("ds-1"),
                s("lesson_completed"),
                s("2026-01-12T10:00:00Z"),
                s("600"),
                n,
                s("learning.activity"),
                s("0"),
                s("0"),
            ],
            vec![
                s("a2"),
                s(S1),
                s("c1"),
                s("ds-2"),
                s("quiz_submitted"),
                s("2026-02-20T10:00:00Z"),
                s("300"),
                s("80"),
                s("learning.activity"),
                s("0"),
                s("1"),
            ],
            vec![
                s("a3"),
                s(S1),
                s("c2"),
                s("web-1"),
                s("lesson_started"),
                s("2026-03-13T09:00:00Z"),
                n,
                n,
                s("learning.activity"),
                s("0"),
                s("2"),
            ],
            vec![
                s("a4"),
                s(S1),
                s("c2"),
                s("web-1"),
                s("lesson_completed"),
                s("2026-03-13T10:00:00Z"),
                s("1200"),
                n,
                s("learning.activity"),
                s("0"),
                s("3"),
            ],
            // a4 delivered twice: counts once.
            vec![
                s("a4"),
                s(S1),
                s("c2"),
                s("web-1"),
                s("lesson_completed"),
                s("2026-03-13T10:00:00Z"),
                s("1200"),
                n,
                s("learning.activity"),
                s("0"),
                s("4"),
            ],
            vec![
                s("a5"),
                s(S2),
                s("c2"),
                s("web-1"),
                s("lesson_completed"),
                s("2026-01-25T10:00:00Z"),
                s("900"),
                n,
                s("learning.activity"),
                s("1"),
                s("0"),
            ],
            vec![
                s("a6"),
                s(S3),
                s("c3"),
                s("ux-1"),
                s("quiz_submitted"),
                s("2026-03-14T11:00:00Z"),
                s("100"),
                s("90"),
                s("learning.activity"),
                s("2"),
                s("0"),
            ],
            vec![
                s("a7"),
                s(S3),
                s("c3"),
                s("ux-2"),
                s("quiz_submitted"),
                s("2026-03-14T12:00:00Z"),
                s("100"),
                s("70"),
                s("learning.activity"),
                s("2"),
                s("1"),
            ],
            // a8 happened on D but arrived late (after a9 and a10).
            vec![
                s("a9"),
                s(S4),
                s("c1"),
                s("ds-1"),
                s("lesson_completed"),
                s("2026-03-15T21:00:00Z"),
                s("700"),
                n,
                s("learning.activity"),
                s("1"),
                s("1"),
            ],
            vec![
                s("a10"),
                s(S1),
                s("c2"),
                s("web-2"),
                s("lesson_completed"),
                s("2026-03-16T09:00:00Z"),
                s("800"),
                n,
                s("learning.activity"),
                s("0"),
                s("5"),
            ],
            vec![
                s("a8"),
                s(S4),
                s("c1"),
                s("ds-1"),
                s("video_watched"),
                s("2026-03-15T20:00:00Z"),
                s("400"),
                n,
                s("learning.activity"),
                s("1"),
                s("2"),
            ],
            vec![
                s("a11"),
                s(S2),
                s("c2"),
                s("web-2"),
                s("lesson_started"),
                s("2026-02-02T10:00:00Z"),
                n,
                n,
                s("learning.activity"),
                s("1"),
                s("3"),
            ],
            vec![
                s("a12"),
                s(S5),
                s("c3"),
                s("ux-1"),
                s("lesson_started"),
                s("2026-02-01T10:00:00Z"),
                n,
                n,
                s("learning.activity"),
                s("2"),
                s("2"),
            ],
        ],
    );
}

/// The shipped SQL models folder.
pub(crate) fn models_dir() -> PathBuf {
    // Read at run time: the shared target dir may hold a build compiled in another checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
        .join("pipelines")
        .join("sql")
}

/// Render a shipped model with the run context of logical date D.
pub(crate) fn render_model(path: &str, lookback_start: &str) -> String {
    let file = models_dir().join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let env = minijinja::Environment::new();
    env.render_str(
        &text,
        minijinja::context! {
            ds => DS,
            data_interval_start => "2026-03-15T00:00:00Z",
            data_interval_end => INTERVAL_END,
            lookback_start => lookback_start,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Build every staging table from the raw fixture.
pub(crate) async fn build_staging(session: &LakeSession) {
    for table in [
        "courses",
        "campaigns",
        "leads",
        "students",
        "enrollments",
        "payments",
        "activity",
    ] {
        let sql = render_model(&format!("staging/{table}.sql"), "1970-01-01T00:00:00Z");
        session
            .materialize_in_memory(&format!("staging.{table}"), &sql)
            .await
            .unwrap_or_else(|e| panic!("staging.{table}: {e}"));
    }
}
