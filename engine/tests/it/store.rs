//! One suite, both stores.

use std::collections::HashMap;
use std::sync::Arc;

use aula_engine::operator::{LogLine, LogStream};
use aula_engine::store::{FinishTry, NewRun, RunState, Store, StoreError, TaskState};
use chrono::{Duration, Utc};

use crate::common::stores;

fn new_run(p: &str, day: i64) -> NewRun {
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::days(day);
    NewRun {
        pipeline_id: p.into(),
        logical_date: start,
        interval_end: start + Duration::days(1),
        run_type: "scheduled".into(),
        params: serde_json::json!({"k": 1}),
    }
}

async fn suite(store: Arc<dyn Store>) {
    let now = Utc::now();
    let kind = store.kind();
    // Creating is idempotent per (pipeline, logical date).
    let (r1, created) = store.create_run(&new_run("p", 0), now).await.unwrap();
    assert!(created, "{kind}");
    let (r1b, created) = store.create_run(&new_run("p", 0), now).await.unwrap();
    assert!(!created);
    assert_eq!(r1.id, r1b.id);
    assert_eq!(r1.params, serde_json::json!({"k": 1}));
    assert_eq!(r1.state, RunState::Queued);
    for d in 1..4 {
        store.create_run(&new_run("p", d), now).await.unwrap();
    }
    store.create_run(&new_run("other", 0), now).await.unwrap();
    assert_eq!(
        store.latest_scheduled("p").await.unwrap(),
        Some(new_run("p", 3).logical_date)
    );
    assert_eq!(store.list_runs("p", 10).await.unwrap().len(), 4);

    // Claims respect max_active_runs and only known pipelines.
    let mut limits = HashMap::new();
    limits.insert("p".to_owned(), 2u32);
    let lease = now + Duration::seconds(30);
    let a = store
        .claim_runs("A", now, lease, &limits, 10)
        .await
        .unwrap();
    assert_eq!(a.len(), 2, "{kind}");
    assert_eq!(
        a[0].logical_date,
        new_run("p", 0).logical_date,
        "oldest first"
    );
    let b = store
        .claim_runs("B", now, lease, &limits, 10)
        .await
        .unwrap();
    assert!(
        b.is_empty(),
        "B must not get runs past max_active_runs or A's runs"
    );
    assert!(
        !store.claim_run(&a[0].id, "B", now, lease).await.unwrap(),
        "live lease is exclusive"
    );

    // Tries: start checks the lease; finish writes logs.
    store
        .start_try(&a[0].id, "t1", 1, "A", now, lease)
        .await
        .unwrap();
    let lost = store.start_try(&a[0].id, "t2", 1, "B", now, lease).await;
    assert!(matches!(lost, Err(StoreError::LeaseLost(_))), "{kind}");
    let logs: Vec<LogLine> = (0..2500)
        .map(|i| LogLine {
            ts: now,
            stream: if i % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            },
            line: format!("line {i} ünïcode"),
        })
        .collect();
    store
        .finish_try(&FinishTry {
            run_id: a[0].id.clone(),
            task_id: "t1".into(),
            try_number: 1,
            ended_at: now,
            outcome: "failed".into(),
            error: Some("boom".into()),
            state: TaskState::UpForRetry,
            next_try_at: Some(now + Duration::seconds(5)),
            logs,
        })
        .await
        .unwrap();
    let tis = store.task_instances(&a[0].id).await.unwrap();
    assert_eq!(tis.len(), 1);
    assert_eq!(tis[0].state, TaskState::UpForRetry);
    assert_eq!(tis[0].try_number, 1);
    assert!(tis[0].next_try_at.is_some());
    let got = store.logs(&a[0].id, "t1", 1).await.unwrap();
    assert_eq!(got.len(), 2500);
    assert_eq!(got[2499].line, "line 2499 ünïcode");
    assert_eq!(got[1].stream, LogStream::Stderr);
    store
        .start_try(&a[0].id, "t1", 2, "A", now, lease)
        .await
        .unwrap();
    let tries = store.tries(&a[0].id, Some("t1")).await.unwrap();
    assert_eq!(
        tries.iter().map(|t| t.try_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(tries[0].error.as_deref(), Some("boom"));

    // Batch states, lost tries, reset.
    store
        .set_task_states(
            &a[0].id,
            &[
                ("t2".into(), TaskState::UpstreamFailed),
                ("t3".into(), TaskState::Skipped),
            ],
            now,
        )
        .await
        .unwrap();
    store
        .mark_tries_lost(&a[0].id, &["t1".into()], now)
        .await
        .unwrap();
    let tries = store.tries(&a[0].id, Some("t1")).await.unwrap();
    assert_eq!(tries[1].outcome.as_deref(), Some("lost"));
    assert_eq!(store.task_instances(&a[0].id).await.unwrap().len(), 3);

    // Heartbeats and lapsed leases.
    let kept = store
        .renew_leases(
            "A",
            &[a[0].id.clone(), a[1].id.clone()],
            now + Duration::seconds(60),
        )
        .await
        .unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        store
            .renew_leases("B", &[a[0].id.clone()], lease)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + Duration::seconds(120);
    let b = store
        .claim_runs("B", later, later + Duration::seconds(30), &limits, 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 2, "B takes over lapsed runs first ({kind})");
    assert!(b.iter().all(|r| r.lease_owner.as_deref() == Some("B")));
    assert!(
        store
            .renew_leases("A", &[a[0].id.clone()], later)
            .await
            .unwrap()
            .is_empty(),
        "A lost it"
    );
    assert!(matches!(
        store
            .finish_run(&a[0].id, "A", RunState::Success, later)
            .await,
        Err(StoreError::LeaseLost(_))
    ));

    // Finish, reset (clear), release.
    store
        .finish_run(&a[0].id, "B", RunState::Failed, later)
        .await
        .unwrap();
    let r = store.run_by_id(&a[0].id).await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Failed);
    assert!(r.ended_at.is_some() && r.lease_owner.is_none());
    store
        .reset_tasks(&a[0].id, Some(&["t2".to_owned()]), later)
        .await
        .unwrap();
    let r = store.run_by_id(&a[0].id).await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Queued);
    let tis: HashMap<_, _> = store
        .task_instances(&a[0].id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, t.state))
        .collect();
    assert_eq!(tis["t2"], TaskState::None);
    assert_eq!(tis["t3"], TaskState::Skipped);
    store.release_run(&a[1].id, "B").await.unwrap();
    assert_eq!(
        store.run_by_id(&a[1].id).await.unwrap().unwrap().state,
        RunState::Queued
    );
    assert!(
        store
            .get_run("p", new_run("p", 9).logical_date)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn store_suite_on_sqlite_and_postgres() {
    for store in stores("suite").await {
        suite(store).await;
    }
}

#[tokio::test]
async fn sqlite_store_is_created_with_wal() {
    let dir = crate::common::temp_dir("wal");
    let path = dir.join("nested/.aula/state.db");
    let _ = aula_engine::store::open(&path.display().to_string())
        .await
        .unwrap();
    assert!(path.exists());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        path.display()
    ))
    .await
    .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}
