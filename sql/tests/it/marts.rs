//! Every shipped mart over the hand-checkable fixture, against rows worked out
//! by hand (see `fixture.rs` for the story of each row).

use aula_sql::LakeSession;
use aula_sql::checks::format_rows;

use crate::fixture::{self, S1, S2, S3, S4, S5};

async fn session() -> LakeSession {
    let session = LakeSession::new();
    fixture::load(&session);
    fixture::build_staging(&session).await;
    session
}

async fn run(session: &LakeSession, mart: &str, lookback_start: &str) -> Vec<String> {
    let sql = fixture::render_model(&format!("marts/{mart}.sql"), lookback_start);
    let batches = session
        .collect(mart, &sql)
        .await
        .unwrap_or_else(|e| panic!("{mart}: {e}"));
    format_rows(&batches)
}

fn expect(rows: &[&str]) -> Vec<String> {
    rows.iter().map(|r| (*r).to_owned()).collect()
}

#[tokio::test]
async fn staging_keeps_the_latest_version_and_one_copy_of_each_event() {
    let session = session().await;
    let leads = format_rows(
        &session
            .collect("t", "SELECT id, status FROM staging.leads WHERE id = 'l1'")
            .await
            .expect("query"),
    );
    assert_eq!(leads, expect(&["id=l1, status=converted"]));
    let payments = format_rows(
        &session
            .collect(
                "t",
                "SELECT count(*) AS n, max(status) AS st FROM staging.payments WHERE id = 'p3'",
            )
            .await
            .expect("query"),
    );
    assert_eq!(payments, expect(&["n=1, st=refunded"]));
    let events = format_rows(
        &session
            .collect(
                "t",
                "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM staging.activity",
            )
            .await
            .expect("query"),
    );
    assert_eq!(events, expect(&["n=12, d=12"]));
}

#[tokio::test]
async fn funnel_daily_counts_created_and_converted_leads_per_source() {
    let session = session().await;
    assert_eq!(
        run(&session, "funnel_daily", "").await,
        expect(&[
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
        ])
    );
}

#[tokio::test]
async fn revenue_monthly_books_refunds_in_their_own_month_and_never_mixes_currencies() {
    let session = session().await;
    assert_eq!(
        run(&session, "revenue_monthly", "").await,
        expect(&[
            "month=2026-01-01, course_code=DS101, currency=EUR, gross_cents=10000, refunded_cents=0, net_cents=10000, paying_students=1",
            "month=2026-01-01, course_code=WEB201, currency=USD, gross_cents=20000, refunded_cents=0, net_cents=20000, paying_students=1",
            "month=2026-02-01, course_code=UX301, currency=EUR, gross_cents=15000, refunded_cents=0, net_cents=15000, paying_students=1",
            "month=2026-02-01, course_code=WEB201, currency=USD, gross_cents=20000, refunded_cents=0, net_cents=20000, paying_students=1",
            "month=2026-03-01, course_code=WEB201, currency=USD, gross_cents=0, refunded_cents=20000, net_cents=-20000, paying_students=0",
        ])
    );
}

#[tokio::test]
async fn course_engagement_daily_counts_deduplicated_events() {
    let session = session().await;
    assert_eq!(
        run(&session, "course_engagement_daily", "1970-01-01T00:00:00Z").await,
        expect(&[
            "day=2026-01-12, course_code=DS101, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-01-25, course_code=WEB201, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-01, course_code=UX301, active_students=1, lessons_completed=0, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-02, course_code=WEB201, active_students=1, lessons_completed=0, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-02-20, course_code=DS101, active_students=1, lessons_completed=0, quiz_submissions=1, avg_quiz_score=80.0",
            "day=2026-03-13, course_code=WEB201, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
            "day=2026-03-14, course_code=UX301, active_students=1, lessons_completed=0, quiz_submissions=2, avg_quiz_score=80.0",
            "day=2026-03-15, course_code=DS101, active_students=1, lessons_completed=1, quiz_submissions=0, avg_quiz_score=NULL",
        ])
    );
    // The incremental window of a nightly run: the two days before D and D.
    assert_eq!(
        run(&session, "course_engagement_daily", "2026-03-13T00:00:00Z")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn campaign_performance_has_a_row_per_currency_and_one_for_campaigns_without_revenue() {
    let session = session().await;
    assert_eq!(
        run(&session, "campaign_performance", "").await,
        expect(&[
            "campaign_name=ads_q1, channel=ads, currency=USD, leads=2, converted_leads=2, net_revenue_cents=0",
            "campaign_name=spring_email, channel=email, currency=EUR, leads=2, converted_leads=1, net_revenue_cents=10000",
            "campaign_name=spring_email, channel=email, currency=USD, leads=2, converted_leads=1, net_revenue_cents=20000",
            "campaign_name=webinar_mar, channel=event, currency=EUR, leads=2, converted_leads=0, net_revenue_cents=0",
        ])
    );
}

#[tokio::test]
async fn student_360_reconstructs_each_student_as_of_the_end_of_d() {
    let session = session().await;
    let row = |id: &str, rest: &str| format!("student_id={id}, {rest}");
    assert_eq!(
        run(&session, "student_360", "").await,
        vec![
            row(
                S1,
                "email=ana@x.org, full_name=Ana, country=ES, marketing_opt_in=1, first_enrolled_at=2026-01-10T10:00:00Z, active_enrollments=1, completed_enrollments=1, last_activity_at=2026-03-13T10:00:00Z, lessons_completed_30d=1, last_completed_at=2026-03-05T10:00:00Z"
            ),
            row(
                S2,
                "email=bruno@x.org, full_name=Bruno, country=BR, marketing_opt_in=1, first_enrolled_at=2026-01-21T10:00:00Z, active_enrollments=0, completed_enrollments=0, last_activity_at=2026-02-02T10:00:00Z, lessons_completed_30d=0, last_completed_at=NULL"
            ),
            row(
                S3,
                "email=carla@x.org, full_name=Carla, country=NULL, marketing_opt_in=0, first_enrolled_at=2026-02-06T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-03-14T12:00:00Z, lessons_completed_30d=0, last_completed_at=NULL"
            ),
            row(
                S4,
                "email=dan@x.org, full_name=Dan, country=US, marketing_opt_in=1, first_enrolled_at=2026-03-02T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-03-15T21:00:00Z, lessons_completed_30d=1, last_completed_at=NULL"
            ),
            row(
                S5,
                "email=eve@x.org, full_name=Eve, country=MX, marketing_opt_in=1, first_enrolled_at=2026-01-26T10:00:00Z, active_enrollments=1, completed_enrollments=0, last_activity_at=2026-02-01T10:00:00Z, lessons_completed_30d=0, last_completed_at=NULL"
            ),
        ]
    );
}

#[tokio::test]
async fn export_segments_filter_student_360() {
    let session = session().await;
    let sql = fixture::render_model("marts/student_360.sql", "");
    session
        .materialize_in_memory("marts.student_360", &sql)
        .await
        .expect("student_360");
    let export = |name: &'static str| {
        let session = session.clone();
        async move {
            let sql = fixture::render_model(&format!("exports/{name}.sql"), "");
            format_rows(
                &session
                    .collect(name, &sql)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            )
        }
    };
    assert_eq!(
        export("inactive_learners").await,
        expect(&["email=eve@x.org, full_name=Eve, country=MX"])
    );
    assert_eq!(
        export("recent_completers").await,
        expect(&["email=ana@x.org, full_name=Ana, country=ES"])
    );
}

#[tokio::test]
async fn cohort_retention_is_computed_with_polars_zeros_included() {
    let session = session().await;
    let transform = aula_sql::transforms::CohortRetention {
        enrollments: "staging.enrollments".into(),
        activity: "staging.activity".into(),
        ds: fixture::DS.into(),
        interval_end: fixture::INTERVAL_END.into(),
    };
    let (schema, batches) = transform.run(&session).await.expect("cohort_retention");
    assert_eq!(schema.field(0).name(), "cohort_month");
    assert_eq!(
        format_rows(&batches),
        expect(&[
            "cohort_month=2026-01-01, months_since=0, cohort_size=3, active_students=2",
            "cohort_month=2026-01-01, months_since=1, cohort_size=3, active_students=3",
            "cohort_month=2026-01-01, months_since=2, cohort_size=3, active_students=1",
            "cohort_month=2026-02-01, months_since=0, cohort_size=1, active_students=0",
            "cohort_month=2026-02-01, months_since=1, cohort_size=1, active_students=1",
            "cohort_month=2026-03-01, months_since=0, cohort_size=1, active_students=1",
        ])
    );
}
