//! The contract's rules hold in the database itself, for tools that write SQL.

use sqlx::PgPool;

use crate::TestApi;

async fn fails(pool: &PgPool, sql: &'static str) -> String {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("accepted: {sql}"),
        Err(e) => e
            .as_database_error()
            .and_then(|d| d.constraint().map(str::to_owned))
            .unwrap_or_else(|| e.to_string()),
    }
}

#[tokio::test]
async fn constraints_and_triggers_live_in_the_database() {
    let api = TestApi::start("crm_schema").await;
    let pool = &api.pool;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'crm' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "campaigns",
            "courses",
            "enrollments",
            "leads",
            "outbox",
            "payments",
            "students"
        ]
    );
    // Migrations are idempotent.
    aula_crm::migrate(pool).await.unwrap();

    sqlx::query(
        "INSERT INTO crm.courses (id, code, title, category, price_cents, currency) VALUES \
        ('00000000-0000-0000-0000-000000000001', 'C1', 'T', 'c', 100, 'EUR')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO crm.students (id, email, full_name) VALUES ('00000000-0000-0000-0000-000000000002', 'a@b.c', 'A')")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO crm.enrollments (id, student_id, course_id) VALUES \
        ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001')")
        .execute(pool)
        .await
        .unwrap();

    assert_eq!(fails(pool, "INSERT INTO crm.courses (code, title, category, price_cents, currency) VALUES ('C2','T','c',-1,'EUR')").await, "courses_price_cents_check");
    assert_eq!(fails(pool, "INSERT INTO crm.courses (code, title, category, price_cents, currency) VALUES ('C2','T','c',1,'eur')").await, "courses_currency_check");
    assert_eq!(fails(pool, "INSERT INTO crm.courses (code, title, category, price_cents, currency) VALUES ('C1','T','c',1,'EUR')").await, "courses_code_key");
    assert_eq!(fails(pool, "INSERT INTO crm.campaigns (name, channel, starts_on, budget_cents, currency) VALUES ('n','fax','2026-01-01',1,'EUR')").await, "campaigns_channel_check");
    assert_eq!(
        fails(
            pool,
            "INSERT INTO crm.students (email, full_name) VALUES ('Upper@b.c', 'U')"
        )
        .await,
        "students_email_check"
    );
    assert_eq!(
        fails(
            pool,
            "INSERT INTO crm.students (email, full_name) VALUES ('a@b.c', 'dup')"
        )
        .await,
        "students_email_key"
    );
    assert_eq!(fails(pool, "INSERT INTO crm.leads (email, full_name, source, status) VALUES ('l@b.c','L','web','converted')").await, "leads_converted_iff_status");
    assert_eq!(fails(pool, "INSERT INTO crm.leads (email, full_name, source, status, converted_at, student_id) VALUES \
        ('l@b.c','L','web','new', now(), '00000000-0000-0000-0000-000000000002')").await, "leads_converted_iff_status");
    assert_eq!(
        fails(
            pool,
            "INSERT INTO crm.leads (email, full_name, source) VALUES ('l@b.c','L','tv')"
        )
        .await,
        "leads_source_check"
    );
    assert_eq!(fails(pool, "INSERT INTO crm.leads (email, full_name, source, campaign_id) VALUES ('l@b.c','L','web', gen_random_uuid())").await, "leads_campaign_id_fkey");
    assert_eq!(
        fails(
            pool,
            "INSERT INTO crm.enrollments (student_id, course_id) VALUES \
        ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001')"
        )
        .await,
        "enrollments_student_course_key"
    );
    assert_eq!(fails(pool, "INSERT INTO crm.enrollments (student_id, course_id, status) VALUES \
        ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'completed')").await, "enrollments_completed_iff_status");
    assert_eq!(fails(pool, "INSERT INTO crm.payments (enrollment_id, student_id, amount_cents, currency, provider) VALUES \
        ('00000000-0000-0000-0000-000000000003','00000000-0000-0000-0000-000000000002', 0, 'EUR', 'stripe')").await, "payments_amount_cents_check");
    assert_eq!(fails(pool, "INSERT INTO crm.payments (enrollment_id, student_id, amount_cents, currency, provider, status) VALUES \
        ('00000000-0000-0000-0000-000000000003','00000000-0000-0000-0000-000000000002', 5, 'EUR', 'stripe', 'succeeded')").await, "payments_paid_iff_status");
    assert_eq!(fails(pool, "INSERT INTO crm.payments (enrollment_id, student_id, amount_cents, currency, provider, status, paid_at) VALUES \
        ('00000000-0000-0000-0000-000000000003','00000000-0000-0000-0000-000000000002', 5, 'EUR', 'stripe', 'refunded', now())").await, "payments_refunded_iff_status");
    assert_eq!(fails(pool, "INSERT INTO crm.payments (enrollment_id, student_id, amount_cents, currency, provider) VALUES \
        ('00000000-0000-0000-0000-000000000003','00000000-0000-0000-0000-000000000002', 5, 'EUR', 'cash')").await, "payments_provider_check");

    // updated_at moves on every change, even when a tool tries to set it.
    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT updated_at FROM crm.courses WHERE code = 'C1'")
            .fetch_one(pool)
            .await
            .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let after: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE crm.courses SET title = 'T2', updated_at = '2000-01-01' WHERE code = 'C1' RETURNING updated_at",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(after > before, "{after} > {before}");
}
