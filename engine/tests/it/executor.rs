//! The executor and scheduler on real stores: trigger rules, retries with
//! backoff, timeouts, upstream_failed, clear + rerun, pools, max_active_runs,
//! two schedulers on one PostgreSQL store, and a scheduler dying mid-task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_engine::executor::{ExecConfig, Executor, Resources, RunOutcome};
use aula_engine::operator::{Cancel, Registry};
use aula_engine::scheduler::{self, Scheduler, SchedulerConfig};
use aula_engine::store::{RunState, Store, TaskState};
use chrono::Utc;

use crate::common::{executor, pipeline, postgres, sqlite, stores, temp_dir};

async fn states(store: &Arc<dyn Store>, run_id: &str) -> HashMap<String, TaskState> {
    store
        .task_instances(run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, t.state))
        .collect()
}

async fn run_now(exec: &Executor, src: &str) -> (String, RunOutcome) {
    let p = pipeline(src);
    let (_h, stop) = Cancel::new();
    let (run, outcome) = scheduler::run_date(exec, p, Utc::now(), &serde_json::json!({}), stop)
        .await
        .unwrap();
    (run.id, outcome)
}

const TRIGGERS: &str = r#"
id: triggers
tasks:
  - {id: ok, kind: noop}
  - {id: bad, kind: command, command: "exit 1"}
  - {id: after_ok, kind: noop, depends_on: [ok]}
  - {id: after_bad, kind: noop, depends_on: [bad]}
  - {id: after_after_bad, kind: noop, depends_on: [after_bad]}
  - {id: all_done, kind: noop, trigger_rule: all_done, depends_on: [ok, bad]}
  - {id: one_failed, kind: noop, trigger_rule: one_failed, depends_on: [ok, bad]}
  - {id: one_failed_none, kind: noop, trigger_rule: one_failed, depends_on: [ok]}
  - {id: none_failed_ok, kind: noop, trigger_rule: none_failed, depends_on: [ok]}
  - {id: none_failed_bad, kind: noop, trigger_rule: none_failed, depends_on: [bad]}
  - {id: after_skipped, kind: noop, depends_on: [one_failed_none]}
  - {id: none_failed_skipped, kind: noop, trigger_rule: none_failed, depends_on: [one_failed_none, ok]}
"#;

#[tokio::test]
async fn every_trigger_rule_and_upstream_failed_propagation() {
    for store in stores("triggers").await {
        let exec = executor(store.clone());
        let (run_id, outcome) = run_now(&exec, TRIGGERS).await;
        assert_eq!(
            outcome,
            RunOutcome::Finished(RunState::Failed),
            "{}",
            store.kind()
        );
        let s = states(&store, &run_id).await;
        let expect = [
            ("ok", TaskState::Success),
            ("bad", TaskState::Failed),
            ("after_ok", TaskState::Success),
            ("after_bad", TaskState::UpstreamFailed),
            ("after_after_bad", TaskState::UpstreamFailed),
            ("all_done", TaskState::Success),
            ("one_failed", TaskState::Success),
            ("one_failed_none", TaskState::Skipped),
            ("none_failed_ok", TaskState::Success),
            ("none_failed_bad", TaskState::UpstreamFailed),
            ("after_skipped", TaskState::Skipped),
            ("none_failed_skipped", TaskState::Success),
        ];
        for (task, st) in expect {
            assert_eq!(s.get(task), Some(&st), "{} on {}", task, store.kind());
        }
        // Every task that ran, ran exactly once.
        let tries = store.tries(&run_id, None).await.unwrap();
        let mut seen = std::collections::HashSet::new();
        assert!(
            tries.iter().all(|t| seen.insert(t.task_id.clone())),
            "a task started twice: {tries:?}"
        );
        assert_eq!(tries.len(), 7);
    }
}

#[tokio::test]
async fn retries_back_off_exponentially_up_to_the_cap() {
    for store in stores("retries").await {
        let exec = executor(store.clone());
        let src = r#"
id: retries
tasks:
  - id: flaky
    kind: command
    command: "echo try {{ try_number }}; test {{ try_number }} -ge 4"
    retries: 5
    retry_delay: 200ms
    retry_exponential_backoff: true
    max_retry_delay: 500ms
"#;
        let (run_id, outcome) = run_now(&exec, src).await;
        assert_eq!(outcome, RunOutcome::Finished(RunState::Success));
        let tries = store.tries(&run_id, Some("flaky")).await.unwrap();
        assert_eq!(tries.len(), 4);
        let outcomes: Vec<_> = tries.iter().map(|t| t.outcome.clone().unwrap()).collect();
        assert_eq!(outcomes, ["failed", "failed", "failed", "success"]);
        // Delays: 200ms, 400ms, then capped at 500ms.
        let gaps: Vec<i64> = tries
            .windows(2)
            .map(|w| (w[1].started_at - w[0].ended_at.unwrap()).num_milliseconds())
            .collect();
        for (gap, want) in gaps.iter().zip([200, 400, 500]) {
            assert!(
                *gap >= want - 5 && *gap < want + 300,
                "gaps {gaps:?} on {}",
                store.kind()
            );
        }
        let log = store.logs(&run_id, "flaky", 2).await.unwrap();
        assert_eq!(log[0].line, "try 2");
    }
}

#[tokio::test]
async fn a_fatal_error_is_not_retried() {
    let store = sqlite("fatal").await;
    let exec = executor(store.clone());
    let src = "id: fatal\ntasks:\n  - {id: t, kind: command, command: [\"/definitely/not/here\"], retries: 3, retry_delay: 10ms}\n";
    let (run_id, outcome) = run_now(&exec, src).await;
    assert_eq!(outcome, RunOutcome::Finished(RunState::Failed));
    assert_eq!(store.tries(&run_id, Some("t")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn timeout_cancels_the_task() {
    for store in stores("timeout").await {
        let exec = executor(store.clone());
        let src = r#"
id: timeouts
tasks:
  - {id: slow_sleep, kind: sleep, duration: 30s, timeout: 300ms}
  - {id: slow_process, kind: command, command: "sleep 30", timeout: 300ms}
  - {id: after, kind: noop, depends_on: [slow_process]}
"#;
        let t = Instant::now();
        let (run_id, outcome) = run_now(&exec, src).await;
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
        assert_eq!(outcome, RunOutcome::Finished(RunState::Failed));
        let s = states(&store, &run_id).await;
        assert_eq!(s["slow_sleep"], TaskState::Failed);
        assert_eq!(s["slow_process"], TaskState::Failed);
        assert_eq!(s["after"], TaskState::UpstreamFailed);
        let tries = store.tries(&run_id, Some("slow_process")).await.unwrap();
        assert_eq!(tries[0].outcome.as_deref(), Some("timeout"));
    }
}

#[tokio::test]
async fn clear_and_rerun() {
    for store in stores("clear").await {
        let exec = executor(store.clone());
        let dir = temp_dir("clear");
        let marker = dir.join("ready");
        let src = format!(
            "id: clearing\ntasks:\n  - {{id: first, kind: noop}}\n  - {{id: check, kind: command, command: \"test -e {}\", depends_on: [first]}}\n  - {{id: last, kind: noop, depends_on: [check]}}\n",
            marker.display()
        );
        let p = pipeline(&src);
        let date = Utc::now();
        let (_h, stop) = Cancel::new();
        let (run, outcome) =
            scheduler::run_date(&exec, p.clone(), date, &serde_json::json!({}), stop.clone())
                .await
                .unwrap();
        assert_eq!(outcome, RunOutcome::Finished(RunState::Failed));
        std::fs::write(&marker, "").unwrap();
        let cleared = scheduler::clear(&exec, &p, &run, Some("check"), true)
            .await
            .unwrap();
        assert_eq!(cleared, ["check", "last"]);
        let again = store.run_by_id(&run.id).await.unwrap().unwrap();
        assert_eq!(again.state, RunState::Queued);
        exec.claim(&p, &again).await.unwrap();
        let outcome = exec.drive(p.clone(), again, stop).await.unwrap();
        assert_eq!(outcome, RunOutcome::Finished(RunState::Success));
        let tries = store.tries(&run.id, None).await.unwrap();
        let count = |t: &str| tries.iter().filter(|x| x.task_id == t).count();
        assert_eq!(
            (count("first"), count("check"), count("last")),
            (1, 2, 1),
            "first is not rerun"
        );
        let check_tries: Vec<u32> = tries
            .iter()
            .filter(|x| x.task_id == "check")
            .map(|x| x.try_number)
            .collect();
        assert_eq!(check_tries, [1, 2]);
    }
}

#[tokio::test]
async fn pools_limit_concurrency() {
    let store = sqlite("pools").await;
    let mut pools = HashMap::new();
    pools.insert("db".to_owned(), 1usize);
    let exec = Executor::new(
        store.clone(),
        Registry::builtin(),
        Resources::new(16, &pools),
        ExecConfig::default(),
    );
    let src = r#"
id: pooled
tasks:
  - {id: a, kind: sleep, duration: 150ms, pool: db}
  - {id: b, kind: sleep, duration: 150ms, pool: db}
  - {id: c, kind: sleep, duration: 150ms, pool: db}
  - {id: free1, kind: sleep, duration: 150ms}
  - {id: free2, kind: sleep, duration: 150ms}
"#;
    let t = Instant::now();
    let (run_id, outcome) = run_now(&exec, src).await;
    assert_eq!(outcome, RunOutcome::Finished(RunState::Success));
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "pool of 1 must serialise a, b, c"
    );
    let tries = store.tries(&run_id, None).await.unwrap();
    let pooled: Vec<_> = tries
        .iter()
        .filter(|t| ["a", "b", "c"].contains(&t.task_id.as_str()))
        .collect();
    for x in &pooled {
        for y in &pooled {
            if x.task_id != y.task_id {
                assert!(
                    x.ended_at.unwrap() <= y.started_at || y.ended_at.unwrap() <= x.started_at,
                    "pooled tries overlap"
                );
            }
        }
    }
    // Unpooled tasks ran alongside.
    let free: Vec<_> = tries
        .iter()
        .filter(|t| t.task_id.starts_with("free"))
        .collect();
    assert!(
        free.iter()
            .all(|f| f.started_at < pooled.iter().map(|p| p.ended_at.unwrap()).max().unwrap())
    );
}

#[tokio::test]
async fn global_parallelism_limit() {
    let store = sqlite("parallelism").await;
    let exec = Executor::new(
        store.clone(),
        Registry::builtin(),
        Resources::new(2, &HashMap::new()),
        ExecConfig::default(),
    );
    let src = "id: par\ntasks:\n  - {id: a, kind: sleep, duration: 100ms}\n  - {id: b, kind: sleep, duration: 100ms}\n  - {id: c, kind: sleep, duration: 100ms}\n  - {id: d, kind: sleep, duration: 100ms}\n";
    let t = Instant::now();
    let (_, outcome) = run_now(&exec, src).await;
    assert_eq!(outcome, RunOutcome::Finished(RunState::Success));
    assert!(t.elapsed() >= Duration::from_millis(200));
}

fn scheduled_pipeline(id: &str, days: i64, max_active: u32, tasks: &str) -> String {
    let start = (Utc::now() - chrono::Duration::days(days)).format("%Y-%m-%d");
    format!(
        "id: {id}\nschedule: \"@daily\"\nstart_date: {start}\ncatchup: true\nmax_active_runs: {max_active}\ntasks:\n{tasks}"
    )
}

async fn wait_for_runs(
    store: &Arc<dyn Store>,
    pipeline: &str,
    n: usize,
    limit: Duration,
) -> Vec<aula_engine::store::RunRecord> {
    let t = Instant::now();
    loop {
        let runs = store.list_runs(pipeline, 1000).await.unwrap();
        if runs.len() >= n && runs.iter().all(|r| r.state.is_terminal()) {
            return runs;
        }
        assert!(
            t.elapsed() < limit,
            "runs of {pipeline} did not finish: {:?}",
            runs.iter().map(|r| r.state).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn scheduler_catchup_and_max_active_runs() {
    let store = sqlite("sched").await;
    let dir = temp_dir("sched-pipes");
    std::fs::write(
        dir.join("p.yaml"),
        scheduled_pipeline(
            "catchup",
            4,
            1,
            "  - {id: a, kind: sleep, duration: 100ms}\n  - {id: b, kind: noop, depends_on: [a]}\n",
        ),
    )
    .unwrap();
    let exec = executor(store.clone());
    let cfg = SchedulerConfig {
        paths: vec![dir.clone()],
        tick: Duration::from_millis(50),
        max_runs: 8,
    };
    let (h, stop) = Cancel::new();
    let task = tokio::spawn(Scheduler::new(exec, cfg).run(stop));
    let runs = wait_for_runs(&store, "catchup", 4, Duration::from_secs(20)).await;
    assert_eq!(runs.len(), 4, "one run per closed day since start_date");
    assert!(runs.iter().all(|r| r.state == RunState::Success));
    // max_active_runs = 1: runs never overlap.
    let mut spans: Vec<_> = runs
        .iter()
        .map(|r| (r.started_at.unwrap(), r.ended_at.unwrap()))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "runs overlap: {spans:?}");
    }
    // A new file is picked up without a restart.
    std::fs::write(
        dir.join("q.yaml"),
        scheduled_pipeline("added", 2, 4, "  - {id: a, kind: noop}\n"),
    )
    .unwrap();
    let added = wait_for_runs(&store, "added", 2, Duration::from_secs(20)).await;
    assert_eq!(added.len(), 2);
    h.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn scheduler_without_catchup_creates_only_the_latest_interval() {
    let store = sqlite("nocatchup").await;
    let dir = temp_dir("nocatchup-pipes");
    let src = scheduled_pipeline("latest_only", 10, 4, "  - {id: a, kind: noop}\n")
        .replace("catchup: true", "catchup: false");
    std::fs::write(dir.join("p.yaml"), src).unwrap();
    let exec = executor(store.clone());
    let cfg = SchedulerConfig {
        paths: vec![dir],
        tick: Duration::from_millis(50),
        max_runs: 8,
    };
    let (h, stop) = Cancel::new();
    let task = tokio::spawn(Scheduler::new(exec, cfg).run(stop));
    let runs = wait_for_runs(&store, "latest_only", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.list_runs("latest_only", 100).await.unwrap().len(), 1);
    assert_eq!(runs[0].interval_end.date_naive(), Utc::now().date_naive());
    h.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn two_schedulers_on_one_postgres_store_never_run_a_task_twice() {
    let (store_a, url) = postgres("twosched").await;
    let store_b = aula_engine::store::open(&url).await.unwrap();
    let dir = temp_dir("twosched-pipes");
    let mut tasks = String::new();
    for i in 0..6 {
        tasks.push_str(&format!(
            "  - {{id: t{i}, kind: command, command: \"sleep 0.02\"{}}}\n",
            if i > 0 {
                format!(", depends_on: [t{}]", i - 1)
            } else {
                String::new()
            }
        ));
    }
    std::fs::write(
        dir.join("p.yaml"),
        scheduled_pipeline("shared", 12, 3, &tasks),
    )
    .unwrap();
    std::fs::write(dir.join("q.yaml"), scheduled_pipeline("shared_wide", 8, 8, "  - {id: a, kind: noop}\n  - {id: b, kind: noop}\n  - {id: c, kind: noop, depends_on: [a, b]}\n")).unwrap();
    let (h, stop) = Cancel::new();
    let mut handles = Vec::new();
    for store in [store_a.clone(), store_b] {
        let cfg = SchedulerConfig {
            paths: vec![dir.clone()],
            tick: Duration::from_millis(20),
            max_runs: 8,
        };
        handles.push(tokio::spawn(
            Scheduler::new(executor(store), cfg).run(stop.clone()),
        ));
    }
    let shared = wait_for_runs(&store_a, "shared", 12, Duration::from_secs(60)).await;
    let wide = wait_for_runs(&store_a, "shared_wide", 8, Duration::from_secs(60)).await;
    h.cancel();
    for j in handles {
        j.await.unwrap().unwrap();
    }
    let mut owners = std::collections::HashSet::new();
    for r in shared.iter().chain(wide.iter()) {
        assert_eq!(r.state, RunState::Success);
        let tries = store_a.tries(&r.id, None).await.unwrap();
        let mut per_task: HashMap<String, usize> = HashMap::new();
        for t in &tries {
            *per_task.entry(t.task_id.clone()).or_default() += 1;
            owners.insert(t.worker.clone());
        }
        assert!(
            per_task.values().all(|n| *n == 1),
            "a task ran twice: {per_task:?}"
        );
    }
    assert_eq!(shared.len(), 12);
    eprintln!("work was shared by {} scheduler(s)", owners.len());
}

#[tokio::test]
async fn a_dead_schedulers_task_is_retried_by_another() {
    let (store, url) = postgres("killed").await;
    let dir = temp_dir("killed-pipes");
    std::fs::write(
        dir.join("p.yaml"),
        scheduled_pipeline("survivor", 1, 1, "  - {id: long, kind: command, command: \"sleep {% if try_number == 1 %}30{% else %}0{% endif %}\", retries: 1, retry_delay: 10ms}\n"),
    )
    .unwrap();
    let short = |store: Arc<dyn Store>| {
        let cfg = ExecConfig {
            lease_ttl: Duration::from_millis(1500),
            cancel_grace: Duration::from_millis(200),
            ..ExecConfig::default()
        };
        Executor::new(
            store,
            Registry::builtin(),
            Resources::new(4, &HashMap::new()),
            cfg,
        )
    };
    let cfg = SchedulerConfig {
        paths: vec![dir.clone()],
        tick: Duration::from_millis(50),
        max_runs: 4,
    };
    let (_ha, stop_a) = Cancel::new();
    // Scheduler A starts the task, then "dies": its future is dropped without any cleanup.
    let a = tokio::spawn(Scheduler::new(short(store.clone()), cfg.clone()).run(stop_a));
    let t = Instant::now();
    let run = loop {
        let runs = store.list_runs("survivor", 10).await.unwrap();
        if let Some(r) = runs.first()
            && !store.tries(&r.id, Some("long")).await.unwrap().is_empty()
        {
            break r.clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "scheduler A never started the task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    a.abort();
    let _ = a.await;
    let store_b = aula_engine::store::open(&url).await.unwrap();
    let (hb, stop_b) = Cancel::new();
    let b = tokio::spawn(Scheduler::new(short(store_b), cfg).run(stop_b));
    let runs = wait_for_runs(&store, "survivor", 1, Duration::from_secs(20)).await;
    hb.cancel();
    b.await.unwrap().unwrap();
    assert_eq!(runs[0].id, run.id);
    assert_eq!(runs[0].state, RunState::Success);
    let tries = store.tries(&run.id, Some("long")).await.unwrap();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0].outcome.as_deref(), Some("lost"));
    assert_eq!(tries[1].outcome.as_deref(), Some("success"));
    assert_ne!(tries[0].worker, tries[1].worker);
}

#[tokio::test]
async fn graceful_stop_lets_running_tasks_finish_and_requeues_the_run() {
    let store = sqlite("graceful").await;
    let exec = executor(store.clone());
    let p = pipeline(
        "id: graceful\ntasks:\n  - {id: a, kind: sleep, duration: 300ms}\n  - {id: b, kind: noop, depends_on: [a]}\n",
    );
    let (run, _) = scheduler::ensure_run(&exec, &p, Utc::now(), "manual", &serde_json::json!({}))
        .await
        .unwrap();
    exec.claim(&p, &run).await.unwrap();
    let (h, stop) = Cancel::new();
    let driving = tokio::spawn({
        let exec = exec.clone();
        let p = p.clone();
        let run = run.clone();
        async move { exec.drive(p, run, stop).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.cancel();
    let outcome = driving.await.unwrap().unwrap();
    assert_eq!(outcome, RunOutcome::Interrupted);
    let s = states(&store, &run.id).await;
    assert_eq!(s["a"], TaskState::Success, "the running task finished");
    assert!(!s.contains_key("b") || s["b"] == TaskState::None);
    let r = store.run_by_id(&run.id).await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Queued);
    assert!(r.lease_owner.is_none());
}

#[tokio::test]
async fn templates_see_the_run_context() {
    let store = sqlite("templates").await;
    let exec = executor(store.clone());
    let p = pipeline(
        "id: tmpl\nschedule: \"@daily\"\ntimezone: Europe/Madrid\nstart_date: 2026-01-01\nparams:\n  region: eu\ntasks:\n  - id: t\n    kind: command\n    command: [\"sh\", \"-c\", \"echo $0 $X\", \"{{ ds }} {{ params.region }} {{ data_interval_start }}\"]\n    env:\n      X: \"{{ data_interval_end }}\"\n",
    );
    let date = p.parse_date("2026-03-29").unwrap();
    let (_h, stop) = Cancel::new();
    let (run, outcome) =
        scheduler::run_date(&exec, p, date, &serde_json::json!({"region": "us"}), stop)
            .await
            .unwrap();
    assert_eq!(outcome, RunOutcome::Finished(RunState::Success));
    let log = store.logs(&run.id, "t", 1).await.unwrap();
    assert_eq!(
        log[0].line,
        "2026-03-29 us 2026-03-29T00:00:00+01:00 2026-03-30T00:00:00+02:00"
    );
}

#[tokio::test]
async fn backfill_modes() {
    let store = sqlite("backfill").await;
    let exec = executor(store.clone());
    let dir = temp_dir("backfill");
    let flag = dir.join("ok");
    let p = pipeline(&format!(
        "id: bf\nschedule: \"@daily\"\nstart_date: 2024-01-01\nmax_active_runs: 3\ntasks:\n  - {{id: t, kind: command, command: \"test {{{{ ds }}}} != 2024-01-03 || test -e {}\"}}\n",
        flag.display()
    ));
    let (from, to) = (
        p.parse_date("2024-01-01").unwrap(),
        p.parse_date("2024-01-05").unwrap(),
    );
    let (_h, stop) = Cancel::new();
    let none = |_: usize, _: usize| {};
    let items = scheduler::backfill(
        &exec,
        p.clone(),
        from,
        to,
        scheduler::BackfillMode::Missing,
        stop.clone(),
        &none,
    )
    .await
    .unwrap();
    let results: Vec<&str> = items.iter().map(|i| i.result.as_str()).collect();
    assert_eq!(
        results,
        ["success", "success", "failed", "success", "success"]
    );
    std::fs::write(&flag, "").unwrap();
    let items = scheduler::backfill(
        &exec,
        p.clone(),
        from,
        to,
        scheduler::BackfillMode::Missing,
        stop.clone(),
        &none,
    )
    .await
    .unwrap();
    assert!(items.iter().all(|i| i.result.starts_with("skipped")));
    let items = scheduler::backfill(
        &exec,
        p.clone(),
        from,
        to,
        scheduler::BackfillMode::RerunFailed,
        stop.clone(),
        &none,
    )
    .await
    .unwrap();
    assert_eq!(items.iter().filter(|i| i.result == "success").count(), 1);
    let items = scheduler::backfill(
        &exec,
        p.clone(),
        from,
        to,
        scheduler::BackfillMode::Reprocess,
        stop,
        &none,
    )
    .await
    .unwrap();
    assert_eq!(items.iter().filter(|i| i.result == "success").count(), 5);
}

#[tokio::test]
async fn a_delayed_schedule_creates_each_run_only_once_its_interval_closed_delay_ago() {
    let store = sqlite("delay").await;
    let p = pipeline(
        "id: delayed\nschedule: \"@daily\"\ndelay: 2h\nstart_date: 2026-03-01\ncatchup: true\ntasks:\n  - {id: a, kind: noop}\n",
    );
    assert_eq!(p.delay, Duration::from_secs(7200));
    let sched = Scheduler::new(
        executor(store.clone()),
        SchedulerConfig {
            paths: vec![],
            tick: Duration::from_millis(50),
            max_runs: 1,
        },
    );
    let pipelines = HashMap::from([(p.id.clone(), p.clone())]);
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    };
    // 01:00 on the 3rd: the 2nd closed only an hour ago, so only the 1st is due.
    sched
        .create_due_runs(&pipelines, at("2026-03-03T01:00:00Z"))
        .await
        .unwrap();
    let runs = store.list_runs("delayed", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].logical_date, at("2026-03-01T00:00:00Z"));
    // 02:00: the run for the 2nd, covering [2nd 00:00, 3rd 00:00), is due.
    sched
        .create_due_runs(&pipelines, at("2026-03-03T02:00:00Z"))
        .await
        .unwrap();
    let runs = store.list_runs("delayed", 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .any(|r| r.logical_date == at("2026-03-02T00:00:00Z"))
    );
}
