//! A scheduler killed with SIGKILL in the middle of a task: another scheduler
//! on the same PostgreSQL run-state store notices the lapsed lease, records
//! the dead try as lost and runs the task again, once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aula_engine::store::{RunState, Store};
use aula_test_support::fresh_pg;

fn scheduler(dir: &std::path::Path, state_url: &str, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["scheduler", "--tick", "0.2", "--lease-secs", "3"])
        .arg("--pipelines")
        .arg(dir.join("pipelines"))
        .arg("--state-url")
        .arg(state_url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start aula scheduler")
}

async fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_scheduler_s_task_is_retried_by_another_scheduler() {
    let pg = fresh_pg("sched_kill").await;
    let dir = std::env::temp_dir().join(aula_test_support::unique_name("sched_kill"));
    std::fs::create_dir_all(dir.join("pipelines")).expect("mkdir");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    std::fs::write(
        dir.join("pipelines/slow.yaml"),
        format!(
            "id: slow\nschedule: \"@daily\"\nstart_date: {yesterday}\ncatchup: false\ntasks:\n  \
             - {{id: work, kind: sleep, duration: 8s, retries: 2, retry_delay: 100ms}}\n  \
             - {{id: after, kind: noop, depends_on: [work]}}\n"
        ),
    )
    .expect("write pipeline");
    let store: std::sync::Arc<dyn Store> =
        aula_engine::store::open(&pg.url).await.expect("open store");

    let mut first = scheduler(&dir, &pg.url, "first.log");
    let run = wait_until(
        "the first scheduler to start the task",
        Duration::from_secs(60),
        async || {
            let runs = store.list_runs("slow", 10).await.ok()?;
            let run = runs.into_iter().next()?;
            let tries = store.tries(&run.id, Some("work")).await.ok()?;
            (tries.len() == 1 && tries[0].ended_at.is_none()).then_some(run)
        },
    )
    .await;
    let first_worker = store.tries(&run.id, Some("work")).await.expect("tries")[0]
        .worker
        .clone();
    first.kill().expect("SIGKILL the first scheduler");
    let _ = first.wait();

    let mut second = scheduler(&dir, &pg.url, "second.log");
    let finished = wait_until(
        "the second scheduler to finish the run",
        Duration::from_secs(90),
        async || {
            let run = store.get_run("slow", run.logical_date).await.ok()??;
            run.state.is_terminal().then_some(run)
        },
    )
    .await;
    let _ = second.kill();
    let _ = second.wait();

    let log = std::fs::read_to_string(dir.join("second.log")).unwrap_or_default();
    assert_eq!(
        finished.state,
        RunState::Success,
        "second scheduler's log:\n{log}"
    );
    let tries = store.tries(&run.id, Some("work")).await.expect("tries");
    assert_eq!(
        tries.len(),
        2,
        "exactly one retry after the kill: {tries:?}"
    );
    assert_eq!(tries[0].worker, first_worker);
    assert_eq!(tries[0].outcome.as_deref(), Some("lost"), "{tries:?}");
    assert_eq!(tries[1].outcome.as_deref(), Some("success"), "{tries:?}");
    assert_ne!(
        tries[1].worker, first_worker,
        "the retry ran on the second scheduler"
    );
    let after = store.tries(&run.id, Some("after")).await.expect("tries");
    assert_eq!(after.len(), 1, "the downstream task ran once: {after:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
