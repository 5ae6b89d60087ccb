//! Data-quality checks: the shipped kinds pass on clean data and catch planted
//! faults, each with its own message.

use aula_sql::LakeSession;
use aula_sql::checks::{Check, Rule, Severity};

use crate::fixture::{self, INTERVAL_END};

async fn session() -> LakeSession {
    let session = LakeSession::new();
    fixture::load(&session);
    fixture::build_staging(&session).await;
    session
}

fn check(rule: Rule) -> Check {
    Check {
        name: None,
        severity: Severity::Error,
        rule,
    }
}

/// Replace `table` with itself plus the rows of `extra` (a SELECT with the same columns).
async fn plant(session: &LakeSession, table: &str, extra: &str) {
    let sql = format!("SELECT * FROM {table} UNION ALL {extra}");
    let planted = format!("{table}_planted");
    session
        .materialize_in_memory(&planted, &sql)
        .await
        .expect("plant");
    session
        .materialize_in_memory(table, &format!("SELECT * FROM {planted}"))
        .await
        .expect("replace");
}

fn lead_statuses() -> Rule {
    Rule::AcceptedValues {
        column: "status".into(),
        values: ["new", "contacted", "qualified", "converted", "lost"]
            .map(String::from)
            .to_vec(),
    }
}

fn payment_students() -> Rule {
    Rule::Relationships {
        column: "student_id".into(),
        to: "staging.students".into(),
        field: "id".into(),
    }
}

#[tokio::test]
async fn clean_fixture_passes_every_check_kind() {
    let session = session().await;
    let cases = [
        (
            "staging.leads",
            check(Rule::NotNull(vec![
                "id".into(),
                "email".into(),
                "status".into(),
            ])),
        ),
        ("staging.leads", check(Rule::Unique(vec!["id".into()]))),
        ("staging.leads", check(lead_statuses())),
        ("staging.payments", check(payment_students())),
        (
            "staging.payments",
            check(Rule::RowCount {
                min: Some(1),
                max: Some(100),
            }),
        ),
        (
            "staging.activity",
            check(Rule::Freshness {
                column: "occurred_at".into(),
                max_age: "2d".into(),
            }),
        ),
        (
            "staging.payments",
            check(Rule::Sql(
                "SELECT * FROM staging.payments WHERE amount_cents <= 0".into(),
            )),
        ),
    ];
    for (table, check) in cases {
        let outcome = check
            .run(&session, table, INTERVAL_END)
            .await
            .expect("check runs");
        assert!(outcome.passed(), "{}", outcome.report());
        assert!(outcome.sample.is_empty());
    }
}

#[tokio::test]
async fn planted_duplicate_id_fails_unique_with_its_own_message() {
    let session = session().await;
    plant(
        &session,
        "staging.leads",
        "SELECT * FROM staging.leads WHERE id = 'l2'",
    )
    .await;
    let outcome = check(Rule::Unique(vec!["id".into()]))
        .run(&session, "staging.leads", INTERVAL_END)
        .await
        .expect("check runs");
    assert_eq!(outcome.violations, 1);
    assert!(outcome.fails_task());
    assert_eq!(outcome.sample, vec!["id=l2, copies=2".to_owned()]);
    assert_eq!(
        outcome.report(),
        "check unique(id) on staging.leads: FAILED: 1 violating row(s)\n    id=l2, copies=2"
    );
}

#[tokio::test]
async fn planted_unknown_status_fails_accepted_values_with_its_own_message() {
    let session = session().await;
    plant(
        &session,
        "staging.leads",
        "SELECT id || '-x', email, full_name, phone, country, source, campaign_id, course_interest_id, \
         'zombie', marketing_opt_in, converted_at, student_id, created_at, updated_at \
         FROM staging.leads WHERE id = 'l3'",
    )
    .await;
    let outcome = check(lead_statuses())
        .run(&session, "staging.leads", INTERVAL_END)
        .await
        .expect("check runs");
    assert_eq!(outcome.violations, 1);
    let report = outcome.report();
    assert!(
        report.starts_with(
            "check accepted_values(status) on staging.leads: FAILED: 1 violating row(s)"
        ),
        "{report}"
    );
    assert!(
        outcome.sample[0].starts_with("id=l3-x, "),
        "{:?}",
        outcome.sample
    );
    assert!(
        outcome.sample[0].contains("status=zombie"),
        "{:?}",
        outcome.sample
    );
}

#[tokio::test]
async fn planted_orphan_payment_fails_relationships_with_its_own_message() {
    let session = session().await;
    plant(
        &session,
        "staging.payments",
        "SELECT 'p-orphan', enrollment_id, 'ghost-student', amount_cents, currency, provider, status, \
         paid_at, refunded_at, idempotency_key, created_at, updated_at FROM staging.payments WHERE id = 'p1'",
    )
    .await;
    let outcome = check(payment_students())
        .run(&session, "staging.payments", INTERVAL_END)
        .await
        .expect("check runs");
    assert_eq!(outcome.violations, 1);
    let report = outcome.report();
    assert!(
        report.starts_with(
            "check relationships(student_id -> staging.students.id) on staging.payments: FAILED: 1 violating row(s)"
        ),
        "{report}"
    );
    assert!(
        outcome.sample[0].contains("student_id=ghost-student"),
        "{:?}",
        outcome.sample
    );
}

#[tokio::test]
async fn warn_severity_reports_without_failing_and_bounds_and_freshness_bite() {
    let session = session().await;
    let mut warn = check(Rule::RowCount {
        min: Some(100),
        max: None,
    });
    warn.severity = Severity::Warn;
    let outcome = warn
        .run(&session, "staging.payments", INTERVAL_END)
        .await
        .expect("check runs");
    assert_eq!(outcome.violations, 1);
    assert!(!outcome.fails_task());
    assert_eq!(outcome.sample, vec!["row_count=7".to_owned()]);
    assert!(outcome.report().contains("WARN: 1 violating row(s)"));

    // The newest event (a10, 2026-03-16T09:00Z) is 15 h past the end of D;
    // 30 days later it is stale for a 2-day limit.
    let stale = check(Rule::Freshness {
        column: "occurred_at".into(),
        max_age: "2d".into(),
    })
    .run(&session, "staging.activity", "2026-04-16T00:00:00Z")
    .await
    .expect("check runs");
    assert_eq!(stale.violations, 1);
    assert!(stale.fails_task());

    let bad = check(Rule::Freshness {
        column: "occurred_at".into(),
        max_age: "2 weeks".into(),
    })
    .run(&session, "staging.activity", INTERVAL_END)
    .await;
    assert!(bad.is_err_and(|e| e.to_string().contains("max_age \"2 weeks\"")));
}
