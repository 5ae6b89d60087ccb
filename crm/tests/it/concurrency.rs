//! Concurrent conversion of one lead yields exactly one student.

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApi, token};

#[tokio::test]
async fn concurrent_conversions_create_exactly_one_student() {
    let api = TestApi::start("crm_race").await;
    for round in 0..3 {
        let lead = api
            .create("/api/v1/leads", json!({"email": format!("race{round}@example.com"), "full_name": "R", "source": "web"}))
            .await;
        let url = format!(
            "{}/api/v1/leads/{}/convert",
            api.base,
            lead["id"].as_str().unwrap()
        );
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, url, t) = (api.http.clone(), url.clone(), token("sales"));
            set.spawn(async move { http.post(url).bearer_auth(t).send().await.unwrap().status() });
        }
        let statuses = set.join_all().await;
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::CONFLICT)
                .count(),
            7,
            "{statuses:?}"
        );
        let students: i64 =
            sqlx::query_scalar("SELECT count(*) FROM crm.students WHERE email = $1")
                .bind(format!("race{round}@example.com"))
                .fetch_one(&api.pool)
                .await
                .unwrap();
        assert_eq!(students, 1);
        let events: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM crm.outbox WHERE payload->>'type' = 'lead.converted' AND key = $1",
        )
        .bind(lead["id"].as_str().unwrap())
        .fetch_one(&api.pool)
        .await
        .unwrap();
        assert_eq!(events, 1);
    }
}
