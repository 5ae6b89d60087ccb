//! Every endpoint and transition through HTTP, with the outbox checked.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestApi, token};

#[tokio::test]
async fn courses_and_campaigns_crud_with_lists_and_errors() {
    let api = TestApi::start("crm_courses").await;
    let c = api
        .create(
            "/api/v1/courses",
            json!({"code": "DS-101", "title": "Data", "category": "data", "price_cents": 50000, "currency": "BRL",
                   "starts_on": "2026-03-01"}),
        )
        .await;
    assert_eq!(c["currency"], "BRL");
    assert_eq!(c["starts_on"], "2026-03-01");
    let id = c["id"].as_str().unwrap();

    let dup = api
        .admin(
            Method::POST,
            "/api/v1/courses",
            Some(json!({"code": "DS-101", "title": "x", "category": "y",
            "price_cents": 1, "currency": "EUR"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    assert_eq!(dup.ctype, "application/problem+json");
    assert!(dup.json["detail"].as_str().unwrap().contains("code"));

    let bad = api
        .admin(
            Method::POST,
            "/api/v1/courses",
            Some(json!({"code": "", "price_cents": -5, "currency": "eur", "bogus": 1})),
        )
        .await;
    assert_eq!(
        bad.invalid_fields(),
        [
            "bogus",
            "category",
            "code",
            "currency",
            "price_cents",
            "title"
        ]
    );

    let got = api
        .admin(Method::GET, &format!("/api/v1/courses/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["code"], "DS-101");

    let patched = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/courses/{id}"),
            Some(json!({"price_cents": 45000, "starts_on": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["price_cents"], 45000);
    assert!(patched.json["starts_on"].is_null());
    assert!(patched.json["updated_at"].as_str().unwrap() > c["updated_at"].as_str().unwrap());

    let missing = api
        .admin(
            Method::GET,
            &format!("/api/v1/courses/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.ctype, "application/problem+json");
    let garbage = api
        .admin(Method::GET, "/api/v1/courses/not-a-uuid", None)
        .await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);

    for i in 0..4 {
        api.create(
            "/api/v1/courses",
            json!({"code": format!("EN-{i}"), "title": "English", "category": "languages", "price_cents": 9900,
                   "currency": "USD"}),
        )
        .await;
    }
    // Pagination: pages of 2 over the 4 language courses, each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/courses?category=languages&limit=2&cursor={c}"),
            None => "/api/v1/courses?category=languages&limit=2".to_owned(),
        };
        let page = api.admin(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.json["items"].as_array().unwrap() {
            seen.push(item["code"].as_str().unwrap().to_owned());
        }
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["EN-0", "EN-1", "EN-2", "EN-3"]);
    let capped = api
        .admin(Method::GET, "/api/v1/courses?limit=100000", None)
        .await;
    assert_eq!(capped.status, StatusCode::OK);
    assert_eq!(capped.json["items"].as_array().unwrap().len(), 5);
    let bad_q = api
        .admin(
            Method::GET,
            "/api/v1/courses?limit=0&cursor=zzz&colour=red",
            None,
        )
        .await;
    assert_eq!(bad_q.invalid_fields(), ["colour", "cursor", "limit"]);

    let camp = api
        .create(
            "/api/v1/campaigns",
            json!({"name": "Black Friday", "channel": "email", "starts_on": "2026-11-20", "budget_cents": 100000,
                   "currency": "EUR"}),
        )
        .await;
    let bad_camp = api
        .admin(
            Method::POST,
            "/api/v1/campaigns",
            Some(
                json!({"name": "X", "channel": "fax", "starts_on": "2026-11-20",
            "ends_on": "2026-11-01", "budget_cents": 1, "currency": "EUR"}),
            ),
        )
        .await;
    assert_eq!(bad_camp.invalid_fields(), ["channel", "ends_on"]);
    let cid = camp["id"].as_str().unwrap();
    let upd = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/campaigns/{cid}"),
            Some(json!({"ends_on": "2026-11-30"})),
        )
        .await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.text);
    let list = api
        .admin(Method::GET, "/api/v1/campaigns?channel=email", None)
        .await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    let none = api
        .admin(Method::GET, "/api/v1/campaigns?channel=push", None)
        .await;
    assert_eq!(none.json["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        api.admin(Method::GET, &format!("/api/v1/campaigns/{cid}"), None)
            .await
            .json["name"],
        "Black Friday"
    );

    let types = api.outbox_types().await;
    assert_eq!(types.iter().filter(|t| *t == "course.created").count(), 5);
    assert_eq!(types.iter().filter(|t| *t == "course.updated").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "campaign.created").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "campaign.updated").count(), 1);
}

#[tokio::test]
async fn lead_funnel_and_conversion() {
    let api = TestApi::start("crm_leads").await;
    let lead = api
        .create(
            "/api/v1/leads",
            json!({"email": "Maria@Example.com", "full_name": "Maria Silva", "country": "BR", "source": "web",
                   "marketing_opt_in": true}),
        )
        .await;
    assert_eq!(lead["status"], "new");
    assert!(lead["converted_at"].is_null() && lead["student_id"].is_null());
    let id = lead["id"].as_str().unwrap();

    let bad = api
        .admin(
            Method::POST,
            "/api/v1/leads",
            Some(json!({"email": "nope", "full_name": "", "source": "tv",
            "country": "Brazil", "campaign_id": "x"})),
        )
        .await;
    assert_eq!(
        bad.invalid_fields(),
        ["campaign_id", "country", "email", "full_name", "source"]
    );
    let fk = api
        .admin(
            Method::POST,
            "/api/v1/leads",
            Some(json!({"email": "a@b.c", "full_name": "A", "source": "ads",
            "campaign_id": uuid::Uuid::new_v4()})),
        )
        .await;
    assert_eq!(fk.invalid_fields(), ["campaign_id"]);

    let st = |s: &str| Some(json!({"status": s}));
    let path = format!("/api/v1/leads/{id}/status");
    assert_eq!(
        api.admin(Method::POST, &path, st("contacted")).await.json["status"],
        "contacted"
    );
    assert_eq!(
        api.admin(Method::POST, &path, st("qualified")).await.json["status"],
        "qualified"
    );
    let back = api.admin(Method::POST, &path, st("contacted")).await;
    assert_eq!(back.status, StatusCode::CONFLICT);
    assert!(back.json["detail"].as_str().unwrap().contains("qualified"));
    assert_eq!(
        api.admin(Method::POST, &path, st("converted"))
            .await
            .invalid_fields(),
        ["status"]
    );

    let patched = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/leads/{id}"),
            Some(json!({"phone": "+55 11 5555"})),
        )
        .await;
    assert_eq!(patched.json["phone"], "+55 11 5555");

    let conv = api
        .admin(Method::POST, &format!("/api/v1/leads/{id}/convert"), None)
        .await;
    assert_eq!(conv.status, StatusCode::OK, "{}", conv.text);
    assert_eq!(conv.json["student_created"], true);
    assert_eq!(conv.json["lead"]["status"], "converted");
    assert!(conv.json["lead"]["converted_at"].is_string());
    let student = &conv.json["student"];
    assert_eq!(student["email"], "maria@example.com");
    assert_eq!(student["lead_id"], id);
    assert_eq!(conv.json["lead"]["student_id"], student["id"]);

    let again = api
        .admin(Method::POST, &format!("/api/v1/leads/{id}/convert"), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A second lead with the same person links the existing student.
    let lead2 = api
        .create(
            "/api/v1/leads",
            json!({"email": "MARIA@example.com", "full_name": "Maria S.", "source": "referral"}),
        )
        .await;
    let conv2 = api
        .admin(
            Method::POST,
            &format!("/api/v1/leads/{}/convert", lead2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(conv2.status, StatusCode::OK, "{}", conv2.text);
    assert_eq!(conv2.json["student_created"], false);
    assert_eq!(conv2.json["student"]["id"], student["id"]);

    // Lost leads cannot convert.
    let lead3 = api
        .create(
            "/api/v1/leads",
            json!({"email": "x@y.z", "full_name": "X", "source": "event"}),
        )
        .await;
    let l3 = lead3["id"].as_str().unwrap();
    assert_eq!(
        api.admin(
            Method::POST,
            &format!("/api/v1/leads/{l3}/status"),
            st("lost")
        )
        .await
        .json["status"],
        "lost"
    );
    assert_eq!(
        api.admin(Method::POST, &format!("/api/v1/leads/{l3}/convert"), None)
            .await
            .status,
        StatusCode::CONFLICT
    );

    let lost = api
        .admin(Method::GET, "/api/v1/leads?status=lost", None)
        .await;
    assert_eq!(lost.json["items"].as_array().unwrap().len(), 1);
    let by_mail = api
        .admin(Method::GET, "/api/v1/leads?email=maria@EXAMPLE.com", None)
        .await;
    assert_eq!(by_mail.json["items"].as_array().unwrap().len(), 2);
    let students = api
        .admin(
            Method::GET,
            "/api/v1/students?email=MARIA@example.com",
            None,
        )
        .await;
    assert_eq!(students.json["items"].as_array().unwrap().len(), 1);

    let types = api.outbox_types().await;
    assert_eq!(types.iter().filter(|t| *t == "lead.converted").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "student.created").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "lead.created").count(), 3);
    // Envelope shape of the contract.
    let ev: Value = sqlx::query_scalar(
        "SELECT payload FROM crm.outbox WHERE payload->>'type' = 'lead.converted' LIMIT 1",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    for k in ["event_id", "type", "occurred_at", "entity_id", "data"] {
        assert!(ev.get(k).is_some(), "event misses {k}: {ev}");
    }
    assert_eq!(ev["entity_id"], ev["data"]["id"]);
    assert_eq!(ev["data"]["status"], "converted");
}

#[tokio::test]
async fn students_and_enrollments() {
    let api = TestApi::start("crm_enrol").await;
    let f = api.fixture().await;
    let sid = f.student["id"].as_str().unwrap();
    assert!(f.student["email"].as_str().unwrap().starts_with("ana."));
    let dup = api
        .admin(
            Method::POST,
            "/api/v1/students",
            Some(
                json!({"email": f.student["email"].as_str().unwrap().to_uppercase(),
            "full_name": "Other"}),
            ),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let upd = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/students/{sid}"),
            Some(json!({"country": "PT", "marketing_opt_in": true})),
        )
        .await;
    assert_eq!(upd.json["country"], "PT");
    assert_eq!(
        api.admin(Method::GET, &format!("/api/v1/students/{sid}"), None)
            .await
            .json["marketing_opt_in"],
        true
    );
    assert_eq!(
        api.admin(Method::GET, "/api/v1/students?country=PT", None)
            .await
            .json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let eid = f.enrollment["id"].as_str().unwrap();
    assert_eq!(f.enrollment["status"], "active");
    let twice = api
        .admin(
            Method::POST,
            "/api/v1/enrollments",
            Some(json!({"student_id": sid, "course_id": f.course["id"]})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let fk = api
        .admin(
            Method::POST,
            "/api/v1/enrollments",
            Some(json!({"student_id": uuid::Uuid::new_v4(), "course_id": f.course["id"]})),
        )
        .await;
    assert_eq!(fk.invalid_fields(), ["student_id"]);
    let moved = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/enrollments/{eid}"),
            Some(json!({"enrolled_at": "2026-01-15T09:00:00Z"})),
        )
        .await;
    assert_eq!(moved.json["enrolled_at"], "2026-01-15T09:00:00Z");
    let done = api
        .admin(
            Method::POST,
            &format!("/api/v1/enrollments/{eid}/complete"),
            None,
        )
        .await;
    assert_eq!(done.json["status"], "completed");
    assert!(done.json["completed_at"].is_string());
    let cancel = api
        .admin(
            Method::POST,
            &format!("/api/v1/enrollments/{eid}/cancel"),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::CONFLICT);

    let course2 = api
        .create("/api/v1/courses", json!({"code": "PY", "title": "Py", "category": "p", "price_cents": 0, "currency": "USD"}))
        .await;
    let e2 = api
        .create(
            "/api/v1/enrollments",
            json!({"student_id": sid, "course_id": course2["id"]}),
        )
        .await;
    let c2 = api
        .admin(
            Method::POST,
            &format!("/api/v1/enrollments/{}/cancel", e2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(c2.json["status"], "cancelled");
    let list = api
        .admin(
            Method::GET,
            &format!("/api/v1/enrollments?student_id={sid}&status=cancelled"),
            None,
        )
        .await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.admin(Method::GET, &format!("/api/v1/enrollments/{eid}"), None)
            .await
            .json["status"],
        "completed"
    );

    let types = api.outbox_types().await;
    for t in [
        "enrollment.created",
        "enrollment.completed",
        "enrollment.cancelled",
        "student.updated",
        "enrollment.updated",
    ] {
        assert!(types.iter().any(|x| x == t), "no {t} in {types:?}");
    }
}

#[tokio::test]
async fn payments_idempotency_and_transitions() {
    let api = TestApi::start("crm_pay").await;
    let f = api.fixture().await;
    let body = json!({"enrollment_id": f.enrollment["id"], "provider": "stripe"});
    let key = [("Idempotency-Key", "order-42")];
    let admin = token("admin");
    let first = api
        .call_with(
            Method::POST,
            "/api/v1/payments",
            Some(&admin),
            Some(body.clone()),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(
        first.json["amount_cents"], 19900,
        "defaults to the course price"
    );
    assert_eq!(first.json["currency"], "EUR");
    assert_eq!(first.json["student_id"], f.student["id"]);
    assert_eq!(first.json["status"], "pending");
    let retry = api
        .call_with(
            Method::POST,
            "/api/v1/payments",
            Some(&admin),
            Some(body.clone()),
            &key,
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.json["id"], first.json["id"]);
    let other = api
        .call_with(
            Method::POST,
            "/api/v1/payments",
            Some(&admin),
            Some(json!({"enrollment_id": f.enrollment["id"], "provider": "paypal"})),
            &key,
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.payments")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "a retried payment request records once");
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM crm.outbox WHERE payload->>'type' = 'payment.created'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(created, 1);

    // Concurrent retries of one keyed request: still one payment.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (http, base, admin) = (api.http.clone(), api.base.clone(), admin.clone());
        let b =
            json!({"enrollment_id": f.enrollment["id"], "provider": "paypal", "amount_cents": 500});
        set.spawn(async move {
            http.post(format!("{base}/api/v1/payments"))
                .bearer_auth(admin)
                .header("Idempotency-Key", "race-1")
                .header("content-type", "application/json")
                .body(b.to_string())
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses: Vec<_> = set.join_all().await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK),
        "{statuses:?}"
    );

    let pid = first.json["id"].as_str().unwrap();
    let bad = api
        .admin(
            Method::POST,
            "/api/v1/payments",
            Some(json!({"amount_cents": 0, "provider": "cash"})),
        )
        .await;
    assert_eq!(
        bad.invalid_fields(),
        ["amount_cents", "enrollment_id", "provider"]
    );
    let patched = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/payments/{pid}"),
            Some(json!({"provider": "paypal"})),
        )
        .await;
    assert_eq!(patched.json["provider"], "paypal");
    let refund_pending = api
        .admin(
            Method::POST,
            &format!("/api/v1/payments/{pid}/refund"),
            None,
        )
        .await;
    assert_eq!(refund_pending.status, StatusCode::CONFLICT);
    let ok = api
        .admin(
            Method::POST,
            &format!("/api/v1/payments/{pid}/succeed"),
            None,
        )
        .await;
    assert_eq!(ok.json["status"], "succeeded");
    assert!(ok.json["paid_at"].is_string());
    let ok_again = api
        .admin(
            Method::POST,
            &format!("/api/v1/payments/{pid}/succeed"),
            None,
        )
        .await;
    assert_eq!(ok_again.status, StatusCode::OK);
    assert_eq!(
        ok_again.json["updated_at"], ok.json["updated_at"],
        "a retried transition changes nothing"
    );
    let late_edit = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/payments/{pid}"),
            Some(json!({"amount_cents": 1})),
        )
        .await;
    assert_eq!(late_edit.status, StatusCode::CONFLICT);
    let fail_paid = api
        .admin(Method::POST, &format!("/api/v1/payments/{pid}/fail"), None)
        .await;
    assert_eq!(fail_paid.status, StatusCode::CONFLICT);
    let refunded = api
        .admin(
            Method::POST,
            &format!("/api/v1/payments/{pid}/refund"),
            None,
        )
        .await;
    assert_eq!(refunded.json["status"], "refunded");
    assert!(refunded.json["refunded_at"].is_string() && refunded.json["paid_at"].is_string());

    let p2 = api
        .create(
            "/api/v1/payments",
            json!({"enrollment_id": f.enrollment["id"], "provider": "stripe"}),
        )
        .await;
    let failed = api
        .admin(
            Method::POST,
            &format!("/api/v1/payments/{}/fail", p2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(failed.json["status"], "failed");
    assert!(failed.json["paid_at"].is_null());
    let list = api
        .admin(
            Method::GET,
            &format!(
                "/api/v1/payments?student_id={}&status=failed",
                f.student["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.admin(Method::GET, &format!("/api/v1/payments/{pid}"), None)
            .await
            .json["status"],
        "refunded"
    );

    let types = api.outbox_types().await;
    for t in [
        "payment.created",
        "payment.succeeded",
        "payment.refunded",
        "payment.failed",
    ] {
        assert!(types.iter().any(|x| x == t), "no {t} in {types:?}");
    }
    assert_eq!(
        types.iter().filter(|t| *t == "payment.succeeded").count(),
        1
    );
}

#[tokio::test]
async fn bad_bodies_are_problems_not_500s() {
    let api = TestApi::start("crm_bodies").await;
    let admin = token("admin");
    let huge = "x".repeat(200 * 1024);
    let r = api
        .http
        .post(format!("{}/api/v1/leads", api.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!("{{\"full_name\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    for body in ["{not json", "[1,2]", "\"text\"", "{\"email\": 5}"] {
        let r = api
            .http
            .post(format!("{}/api/v1/leads", api.base))
            .bearer_auth(&admin)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let nul = api
        .admin(Method::POST, "/api/v1/courses", Some(json!({"code": "A\u{0}", "title": "t", "category": "c",
            "price_cents": 9_223_372_036_854_775_807i64, "currency": "EUR", "starts_on": "99999-01-01"})))
        .await;
    assert_eq!(nul.invalid_fields(), ["code", "starts_on"]);
    let nowhere = api.admin(Method::GET, "/api/v1/nothing", None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let spec = api.admin(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.json["openapi"].as_str().unwrap().starts_with("3."));
}
