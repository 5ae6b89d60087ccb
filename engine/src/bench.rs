//! Pipeline generators and a timing harness for `aula bench scheduler`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::executor::{Event, ExecConfig, Executor, Resources};
use crate::operator::{Cancel, Registry};
use crate::spec::parse_pipeline;
use crate::store::{NewRun, Store};

/// A chain of `n` no-op tasks.
pub fn chain_file(n: usize) -> String {
    let mut s = format!("id: bench_chain_{n}\ntasks:\n");
    for i in 0..n {
        s.push_str(&format!("  - id: t{i}\n    kind: noop\n"));
        if i > 0 {
            s.push_str(&format!("    depends_on: [t{}]\n", i - 1));
        }
    }
    s
}

/// A wide and deep DAG of `n` no-ops: layers of 50, each task depending on two of the previous layer.
pub fn dag_file(n: usize) -> String {
    let width = 50;
    let mut s = format!("id: bench_dag_{n}\ntasks:\n");
    for i in 0..n {
        s.push_str(&format!("  - id: t{i}\n    kind: noop\n"));
        if i >= width {
            let layer_start = (i / width - 1) * width;
            let a = layer_start + (i % width);
            let b = layer_start + ((i + 1) % width);
            s.push_str(&format!("    depends_on: [t{a}, t{b}]\n"));
        }
    }
    s
}

/// A scheduled pipeline of `n` tasks with templated commands (validation benchmark).
pub fn wide_file(n: usize) -> String {
    let mut s = String::from(
        "id: bench_wide\nschedule: \"0 3 * * *\"\ntimezone: Europe/Madrid\nstart_date: 2024-01-01\nparams:\n  region: eu\ntasks:\n",
    );
    for i in 0..n {
        s.push_str(&format!("  - id: t{i}\n    kind: command\n    command: [\"echo\", \"{{{{ ds }}}} {{{{ params.region }}}}\"]\n"));
        if i > 0 {
            s.push_str(&format!("    depends_on: [t{}]\n", i / 2));
        }
    }
    s
}

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// Wall time of the run.
    pub wall: Duration,
    /// Task state transitions per second (3 per task: scheduled, running, success).
    pub transitions_per_sec: f64,
    /// Median time from a task's last upstream finishing to the task starting, plus its own bookkeeping.
    pub p50: Duration,
    /// 99th percentile of the same.
    pub p99: Duration,
}

/// Run a generated pipeline once on `store` and time it.
pub async fn run_once(store: Arc<dyn Store>, src: &str) -> Result<BenchResult, String> {
    let p = Arc::new(
        parse_pipeline(
            std::path::Path::new("bench.yaml"),
            src,
            &Registry::builtin(),
        )
        .map_err(|d| format!("{:?}", d.first()))?,
    );
    let marks: Arc<Mutex<Vec<(String, bool, Instant)>>> = Arc::default();
    let m = marks.clone();
    let exec = Executor::new(
        store.clone(),
        Registry::builtin(),
        Resources::new(64, &Default::default()),
        ExecConfig::default(),
    )
    .with_events(Arc::new(move |ev: &Event| {
        let now = Instant::now();
        if let Ok(mut v) = m.lock() {
            match ev {
                Event::TaskStarted { task, .. } => v.push((task.clone(), true, now)),
                Event::TaskFinished { task, .. } => v.push((task.clone(), false, now)),
                Event::RunFinished { .. } => {}
            }
        }
    }));
    let date = Utc::now() - chrono::Duration::days(i64::from(rand_days()));
    let new = NewRun {
        pipeline_id: p.id.clone(),
        logical_date: date,
        interval_end: date + chrono::Duration::days(1),
        run_type: "manual".into(),
        params: serde_json::json!({}),
    };
    let (run, _) = store
        .create_run(&new, Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    exec.claim(&p, &run).await.map_err(|e| e.to_string())?;
    let (_h, stop) = Cancel::new();
    let outcome = exec
        .drive(p.clone(), run, stop)
        .await
        .map_err(|e| e.to_string())?;
    if outcome != crate::executor::RunOutcome::Finished(crate::store::RunState::Success) {
        return Err(format!("benchmark run ended {outcome:?}"));
    }
    let wall = t.elapsed();
    // Per-task overhead: task start minus the latest finish of its upstreams (or run start).
    let marks = marks.lock().map(|v| v.clone()).unwrap_or_default();
    let mut finished = std::collections::HashMap::new();
    let mut started = std::collections::HashMap::new();
    for (task, is_start, at) in &marks {
        if *is_start {
            started.insert(task.clone(), *at)
        } else {
            finished.insert(task.clone(), *at)
        };
    }
    let mut overheads: Vec<Duration> = Vec::new();
    for (i, task) in p.tasks.iter().enumerate() {
        let ready = p.upstream[i]
            .iter()
            .filter_map(|u| finished.get(&p.tasks[*u].id))
            .max()
            .copied()
            .unwrap_or(t);
        if let (Some(s), Some(f)) = (started.get(&task.id), finished.get(&task.id)) {
            overheads.push(s.saturating_duration_since(ready) + f.saturating_duration_since(*s));
        }
    }
    overheads.sort();
    let pct = |q: f64| {
        overheads
            .get(((overheads.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(BenchResult {
        wall,
        transitions_per_sec: (p.tasks.len() * 3) as f64 / wall.as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
    })
}

fn rand_days() -> u32 {
    (uuid::Uuid::new_v4().as_u128() % 100_000) as u32
}

/// Every figure of the scheduler benchmark, as printable lines: validation of
/// a 10,000-task file, then a 100-task chain and a 1,000-task DAG per store
/// (SQLite in a scratch folder; PostgreSQL when `pg_url` is given).
pub async fn report(pg_url: Option<&str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let dir = std::env::temp_dir().join(format!("aula-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let big = wide_file(10_000);
    let t = Instant::now();
    let p = parse_pipeline(std::path::Path::new("big.yaml"), &big, &Registry::builtin())
        .map_err(|d| format!("{:?}", d.first()))?;
    out.push(format!(
        "validate {}-task file ({} KiB): {:.1} ms",
        p.tasks.len(),
        big.len() / 1024,
        t.elapsed().as_secs_f64() * 1000.0
    ));
    let mut stores: Vec<(&str, Arc<dyn Store>)> = vec![(
        "sqlite",
        crate::store::open(&dir.join("state.db").display().to_string())
            .await
            .map_err(|e| e.to_string())?,
    )];
    if let Some(url) = pg_url {
        stores.push((
            "postgres",
            crate::store::open(url).await.map_err(|e| e.to_string())?,
        ));
    }
    for (name, st) in &stores {
        for (label, src) in [
            ("100-task no-op chain", chain_file(100)),
            ("1,000-task DAG", dag_file(1000)),
        ] {
            // One warm-up run, then the measured one.
            run_once(st.clone(), &src).await?;
            let r = run_once(st.clone(), &src).await?;
            out.push(format!(
                "{name:<8} {label:<22} wall {:>8.1} ms  {:>8.0} transitions/s  per-task overhead p50 {:.3} ms  p99 {:.3} ms",
                r.wall.as_secs_f64() * 1000.0,
                r.transitions_per_sec,
                r.p50.as_secs_f64() * 1000.0,
                r.p99.as_secs_f64() * 1000.0
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
