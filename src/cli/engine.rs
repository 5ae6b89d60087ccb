//! Pipeline commands: validate, run, backfill, task run, clear, runs, logs, list, scheduler, bench.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aula_engine::executor::{Event, ExecConfig, Executor, Resources, RunOutcome};
use aula_engine::operator::{Cancel, CancelHandle, Registry};
use aula_engine::scheduler::{self, BackfillMode, Scheduler, SchedulerConfig};
use aula_engine::spec::{Pipeline, load_paths};
use aula_engine::store::{self, RunState, Store, TaskState};
use clap::{Args, Subcommand};

/// Options shared by the pipeline commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Folder (or file) with the pipeline YAML files.
    #[arg(
        long,
        env = "AULA_PIPELINES",
        default_value = "pipelines",
        global = true
    )]
    pipelines: PathBuf,
    /// Run-state store: a SQLite path or postgres://… URL (default .aula/state.db).
    #[arg(long, env = "AULA_STATE_URL", global = true, hide_env_values = true)]
    state_url: Option<String>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    json: bool,
}

/// Options of commands that execute tasks.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExecArgs {
    /// Tasks running at once, across all runs.
    #[arg(long, env = "AULA_PARALLELISM", default_value_t = 32)]
    parallelism: usize,
    /// A named pool and its slots, as NAME=SLOTS (repeatable).
    #[arg(long = "pool", value_name = "NAME=SLOTS")]
    pools: Vec<String>,
    /// Print each task's log lines as they are written.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EngineCommand {
    /// Check pipeline files: syntax, fields, task kinds, dependencies, cycles,
    /// schedules, durations and templates. Prints every problem as
    /// file:line:col: message and exits 1 if there is any.
    Validate {
        /// Files or folders to validate (default: the pipelines folder).
        paths: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Run one logical date of a pipeline in the foreground, printing a line
    /// per task as it starts and ends. Exit code 0 when the run succeeds.
    /// A date that already ran is rerun from scratch.
    Run {
        /// Pipeline id.
        pipeline: String,
        /// Logical date: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in the pipeline's time zone.
        #[arg(long)]
        date: String,
        /// Override a parameter, as KEY=VALUE (VALUE is YAML/JSON or text; repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Run every interval from D1 to D2 (logical dates, inclusive), at most
    /// max_active_runs at a time. Existing successful runs are kept unless
    /// --reprocess; failed ones are rerun with --rerun-failed.
    Backfill {
        /// Pipeline id.
        pipeline: String,
        /// First logical date.
        #[arg(long)]
        from: String,
        /// Last logical date.
        #[arg(long)]
        to: String,
        /// Clear and rerun the failed tasks of failed runs.
        #[arg(long, conflicts_with = "reprocess")]
        rerun_failed: bool,
        /// Rerun every interval from scratch.
        #[arg(long)]
        reprocess: bool,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Commands on single tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Clear task instances of a run so that they run again (by the scheduler
    /// or the next `aula run`): every task, or --task T (with --downstream, and everything after it).
    Clear {
        /// Pipeline id.
        pipeline: String,
        /// Logical date of the run.
        #[arg(long)]
        date: String,
        /// Only this task.
        #[arg(long)]
        task: Option<String>,
        /// With --task: also every task downstream of it.
        #[arg(long, requires = "task")]
        downstream: bool,
        #[command(flatten)]
        common: Common,
    },
    /// List a pipeline's runs, newest first, with their task counts.
    Runs {
        /// Pipeline id.
        pipeline: String,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Print a task's log for a logical date (the latest try unless --try).
    Logs {
        /// Pipeline id.
        pipeline: String,
        /// Task id.
        task: String,
        /// Logical date of the run.
        #[arg(long)]
        date: String,
        /// Try number (1 = first).
        #[arg(long = "try")]
        try_number: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// List pipelines with their schedule and latest run.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Run the scheduler: create runs as intervals close, drive them, pick up
    /// changed pipeline files. SIGTERM/SIGINT: start nothing new, let running
    /// tasks finish, release unfinished runs, exit.
    Scheduler {
        /// Seconds between looks at the files and the store.
        #[arg(long, default_value_t = 1.0)]
        tick: f64,
        /// Runs driven at once by this scheduler.
        #[arg(long, default_value_t = 64)]
        max_runs: usize,
        /// Lease length in seconds; another scheduler takes a run over when it lapses.
        #[arg(long, default_value_t = 30)]
        lease_secs: u64,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Run one task for a logical date, ignoring its upstreams (with its retries).
    Run {
        /// Pipeline id.
        pipeline: String,
        /// Task id.
        task: String,
        /// Logical date.
        #[arg(long)]
        date: String,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Scheduling overhead: a 100-task no-op chain, a 1,000-task DAG and
    /// validating a 10,000-task file, on SQLite and (with AULA_BENCH_PG_URL) PostgreSQL.
    Scheduler {
        /// PostgreSQL URL of an empty scratch database for the PostgreSQL figures.
        #[arg(long, env = "AULA_BENCH_PG_URL", hide_env_values = true)]
        pg_url: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// The pipeline, the store and the run of the interval containing `date`,
/// for commands that act on a run that must already exist.
async fn existing_run(
    common: &Common,
    pipeline: &str,
    date: &str,
) -> anyhow::Result<(Arc<Pipeline>, Arc<dyn Store>, store::RunRecord)> {
    let p = load_pipeline(common, pipeline)?;
    let date = p.parse_date(date).map_err(anyhow::Error::msg)?;
    let store = open_store(common).await?;
    let iv = scheduler::interval_for(&p, date);
    let run = store
        .get_run(&p.id, iv.start)
        .await?
        .with_context(|| format!("{} has no run for {}", p.id, iv.start))?;
    Ok((p, store, run))
}

async fn open_store(common: &Common) -> anyhow::Result<Arc<dyn Store>> {
    match &common.state_url {
        Some(url) => store::open(url)
            .await
            .context("opening the run-state store"),
        None => store::open_default()
            .await
            .context("opening the run-state store (.aula/state.db)"),
    }
}

fn resources(exec: &ExecArgs) -> anyhow::Result<Arc<Resources>> {
    let mut pools = HashMap::new();
    for p in &exec.pools {
        let (name, n) = p
            .split_once('=')
            .with_context(|| format!("--pool {p}: expected NAME=SLOTS"))?;
        let n: usize = n
            .parse()
            .with_context(|| format!("--pool {p}: SLOTS must be a positive number"))?;
        anyhow::ensure!(n > 0, "--pool {p}: SLOTS must be positive");
        pools.insert(name.to_owned(), n);
    }
    Ok(Resources::new(exec.parallelism, &pools))
}

fn load_pipeline(common: &Common, id: &str) -> anyhow::Result<Arc<Pipeline>> {
    let loaded = load_paths(std::slice::from_ref(&common.pipelines), &registry(common));
    if let Some(p) = loaded.pipelines.get(id) {
        return Ok(Arc::new(p.clone()));
    }
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let known: Vec<&str> = loaded.pipelines.keys().map(String::as_str).collect();
    bail!(
        "no valid pipeline `{id}` in {} (valid pipelines: {})",
        common.pipelines.display(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

fn signals() -> (Arc<CancelHandle>, Cancel) {
    let (handle, cancel) = Cancel::new();
    let handle = Arc::new(handle);
    let h = handle.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!(
            "stopping: no new tasks start; waiting for running tasks (signal again to abort)"
        );
        h.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
    (handle, cancel)
}

fn state_mark(s: TaskState) -> &'static str {
    match s {
        TaskState::Success => "✓",
        TaskState::Failed => "✗",
        TaskState::UpForRetry => "↻",
        TaskState::UpstreamFailed | TaskState::Skipped => "↷",
        _ => "·",
    }
}

fn status_sink(json: bool) -> aula_engine::executor::EventSink {
    Arc::new(move |ev: &Event| {
        if json {
            if let Ok(s) = serde_json::to_string(ev) {
                println!("{s}");
            }
            return;
        }
        let mut out = std::io::stderr().lock();
        let _ = match ev {
            Event::TaskStarted {
                task, try_number, ..
            } => {
                writeln!(
                    out,
                    "  ▶ {task}{}",
                    if *try_number > 1 {
                        format!(" (try {try_number})")
                    } else {
                        String::new()
                    }
                )
            }
            Event::TaskFinished {
                task,
                state,
                seconds,
                error,
                try_number,
                ..
            } => {
                let tail = match error {
                    Some(e) => format!(" (try {try_number}): {e}"),
                    None if *try_number == 0 => String::new(),
                    None => format!(
                        " in {}",
                        aula_engine::duration::human(Duration::from_secs_f64(*seconds))
                    ),
                };
                writeln!(
                    out,
                    "  {} {task} {}{tail}",
                    state_mark(*state),
                    state.as_str()
                )
            }
            Event::RunFinished { .. } => Ok(()),
        };
    })
}

/// Every task kind, data kinds included; SQL files resolve under the
/// pipelines folder (or the folder of a single pipeline file).
fn registry(common: &Common) -> Registry {
    let root = &common.pipelines;
    let dir = if root.is_file() {
        root.parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    } else {
        root.clone()
    };
    aula_tasks::registry(dir)
}

fn executor(
    store: Arc<dyn Store>,
    exec: &ExecArgs,
    lease: Option<Duration>,
    common: &Common,
) -> anyhow::Result<Executor> {
    let mut cfg = ExecConfig {
        echo_logs: exec.verbose,
        ..ExecConfig::default()
    };
    if let Some(l) = lease {
        cfg.lease_ttl = l;
    }
    Ok(Executor::new(
        store,
        registry(common),
        resources(exec)?,
        cfg,
    ))
}

fn parse_params(params: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p}: expected KEY=VALUE"))?;
        let value =
            serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
        map.insert(k.to_owned(), value);
    }
    Ok(serde_json::Value::Object(map))
}

fn outcome_code(o: RunOutcome) -> ExitCode {
    match o {
        RunOutcome::Finished(RunState::Success) => ExitCode::SUCCESS,
        RunOutcome::Interrupted => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) async fn run(cmd: EngineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EngineCommand::Validate { paths, common } => validate(paths, &common),
        EngineCommand::Run {
            pipeline,
            date,
            params,
            exec,
            common,
        } => {
            let p = load_pipeline(&common, &pipeline)?;
            let date = p.parse_date(&date).map_err(anyhow::Error::msg)?;
            let store = open_store(&common).await?;
            let ex = executor(store, &exec, None, &common)?.with_events(status_sink(common.json));
            let (_h, stop) = signals();
            let iv = scheduler::interval_for(&p, date);
            if !common.json {
                eprintln!(
                    "{} {} [{} → {})",
                    p.id,
                    iv.start
                        .with_timezone(&p.timezone)
                        .format("%Y-%m-%d %H:%M %Z"),
                    iv.start,
                    iv.end
                );
            }
            let started = std::time::Instant::now();
            let (_run, outcome) =
                scheduler::run_date(&ex, p.clone(), date, &parse_params(&params)?, stop).await?;
            if !common.json {
                let word = match outcome {
                    RunOutcome::Finished(s) => s.as_str(),
                    RunOutcome::Interrupted => "interrupted",
                };
                eprintln!(
                    "run {word} in {}",
                    aula_engine::duration::human(started.elapsed())
                );
            }
            Ok(outcome_code(outcome))
        }
        EngineCommand::Backfill {
            pipeline,
            from,
            to,
            rerun_failed,
            reprocess,
            exec,
            common,
        } => {
            let p = load_pipeline(&common, &pipeline)?;
            let from = p.parse_date(&from).map_err(anyhow::Error::msg)?;
            let to = p.parse_date(&to).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(from <= to, "--from must not be after --to");
            let store = open_store(&common).await?;
            let ex = executor(store, &exec, None, &common)?;
            let (_h, stop) = signals();
            let mode = if reprocess {
                BackfillMode::Reprocess
            } else if rerun_failed {
                BackfillMode::RerunFailed
            } else {
                BackfillMode::Missing
            };
            let json = common.json;
            let progress = move |done: usize, total: usize| {
                if json || total == 0 {
                    return;
                }
                let width = 30;
                let filled = done * width / total;
                eprint!(
                    "\r[{}{}] {done}/{total} runs",
                    "#".repeat(filled),
                    "-".repeat(width - filled)
                );
                if done == total {
                    eprintln!();
                }
            };
            let items =
                scheduler::backfill(&ex, p.clone(), from, to, mode, stop, &progress).await?;
            let failed = items
                .iter()
                .filter(|i| i.result != "success" && !i.result.starts_with("skipped"))
                .count();
            if json {
                print_json(&items)?;
            } else {
                for i in &items {
                    println!(
                        "{}  {}",
                        i.logical_date
                            .with_timezone(&p.timezone)
                            .format("%Y-%m-%d %H:%M"),
                        i.result
                    );
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        EngineCommand::Task(TaskCommand::Run {
            pipeline,
            task,
            date,
            exec,
            common,
        }) => {
            let p = load_pipeline(&common, &pipeline)?;
            let date = p.parse_date(&date).map_err(anyhow::Error::msg)?;
            let store = open_store(&common).await?;
            let ex = executor(store, &exec, None, &common)?.with_events(status_sink(common.json));
            let (run, _) =
                scheduler::ensure_run(&ex, &p, date, "manual", &serde_json::json!({})).await?;
            let state = ex.run_task(p, &run, &task).await?;
            Ok(if state == TaskState::Success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        EngineCommand::Clear {
            pipeline,
            date,
            task,
            downstream,
            common,
        } => {
            let (p, store, run) = existing_run(&common, &pipeline, &date).await?;
            let ex = Executor::new(
                store,
                registry(&common),
                Resources::new(1, &HashMap::new()),
                ExecConfig::default(),
            );
            let ids = scheduler::clear(&ex, &p, &run, task.as_deref(), downstream).await?;
            if common.json {
                print_json(&serde_json::json!({ "run_id": run.id, "cleared": ids }))?;
            } else {
                println!(
                    "cleared {} task(s) of {} {}: {}",
                    ids.len(),
                    p.id,
                    run.logical_date,
                    ids.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EngineCommand::Runs {
            pipeline,
            limit,
            common,
        } => {
            let store = open_store(&common).await?;
            let runs = store.list_runs(&pipeline, limit).await?;
            if common.json {
                let mut out = Vec::new();
                for r in &runs {
                    let tis = store.task_instances(&r.id).await?;
                    out.push(serde_json::json!({ "run": r, "tasks": tis }));
                }
                print_json(&out)?;
            } else {
                println!(
                    "{:<26} {:<10} {:<9} {:>8}  tasks",
                    "logical date", "type", "state", "duration"
                );
                for r in &runs {
                    let tis = store.task_instances(&r.id).await?;
                    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
                    for t in &tis {
                        *counts.entry(t.state.as_str()).or_default() += 1;
                    }
                    let dur = match (r.started_at, r.ended_at) {
                        (Some(s), Some(e)) => {
                            aula_engine::duration::human((e - s).to_std().unwrap_or_default())
                        }
                        _ => "-".into(),
                    };
                    let c: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{:<26} {:<10} {:<9} {:>8}  {}",
                        r.logical_date.to_rfc3339(),
                        r.run_type,
                        r.state.as_str(),
                        dur,
                        c.join(" ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        EngineCommand::Logs {
            pipeline,
            task,
            date,
            try_number,
            common,
        } => {
            let (p, store, run) = existing_run(&common, &pipeline, &date).await?;
            let tries = store.tries(&run.id, Some(&task)).await?;
            let t = match try_number {
                Some(n) => tries.iter().find(|t| t.try_number == n).with_context(|| {
                    format!("task {task} has no try {n} (tries: {})", tries.len())
                })?,
                None => tries
                    .last()
                    .with_context(|| format!("task {task} has not run for {}", run.logical_date))?,
            };
            let lines = store.logs(&run.id, &task, t.try_number).await?;
            if common.json {
                print_json(&serde_json::json!({ "try": t, "lines": lines }))?;
            } else {
                eprintln!(
                    "# {} {} {} try {} — {}{}",
                    p.id,
                    task,
                    run.logical_date,
                    t.try_number,
                    t.outcome.as_deref().unwrap_or("running"),
                    t.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
                for l in &lines {
                    println!(
                        "{} [{}] {}",
                        l.ts.format("%H:%M:%S%.3f"),
                        l.stream.as_str(),
                        l.line
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        EngineCommand::List { common } => {
            let loaded = load_paths(std::slice::from_ref(&common.pipelines), &registry(&common));
            let store = open_store(&common).await.ok();
            let mut rows = Vec::new();
            for p in loaded.pipelines.values() {
                let latest = match &store {
                    Some(s) => s
                        .list_runs(&p.id, 1)
                        .await
                        .ok()
                        .and_then(|v| v.into_iter().next()),
                    None => None,
                };
                rows.push(serde_json::json!({
                    "id": p.id,
                    "schedule": p.schedule.as_ref().map(|s| s.cron.source().to_owned()),
                    "timezone": p.timezone.name(),
                    "tasks": p.tasks.len(),
                    "file": p.file,
                    "latest_run": latest.as_ref().map(|r| serde_json::json!({"logical_date": r.logical_date, "state": r.state})),
                }));
                if !common.json {
                    println!(
                        "{:<30} {:<14} {:<18} {:>5} tasks  {}",
                        p.id,
                        p.schedule.as_ref().map_or("manual", |s| s.cron.source()),
                        p.timezone.name(),
                        p.tasks.len(),
                        latest
                            .map(|r| format!(
                                "latest {} {}",
                                r.logical_date.to_rfc3339(),
                                r.state.as_str()
                            ))
                            .unwrap_or_default()
                    );
                }
            }
            if common.json {
                print_json(&rows)?;
            }
            for d in &loaded.diagnostics {
                eprintln!("{d}");
            }
            Ok(if loaded.diagnostics.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        EngineCommand::Scheduler {
            tick,
            max_runs,
            lease_secs,
            exec,
            common,
        } => {
            let store = open_store(&common).await?;
            let ex = executor(
                store,
                &exec,
                Some(Duration::from_secs(lease_secs.max(3))),
                &common,
            )?;
            tracing::info!(owner = %ex.cfg.owner, store = ex.store.kind(), pipelines = %common.pipelines.display(), "scheduler starting");
            let cfg = SchedulerConfig {
                paths: vec![common.pipelines.clone()],
                tick: Duration::from_secs_f64(tick.max(0.05)),
                max_runs,
            };
            let (_h, stop) = signals();
            Scheduler::new(ex, cfg).run(stop).await?;
            tracing::info!("scheduler stopped");
            Ok(ExitCode::SUCCESS)
        }
        EngineCommand::Bench(BenchCommand::Scheduler { pg_url, common: _ }) => bench(pg_url).await,
    }
}

fn validate(paths: Vec<PathBuf>, common: &Common) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![common.pipelines.clone()]
    } else {
        paths
    };
    let started = std::time::Instant::now();
    let loaded = load_paths(&paths, &registry(common));
    if common.json {
        print_json(&serde_json::json!({
            "ok": loaded.diagnostics.is_empty(),
            "pipelines": loaded.pipelines.keys().collect::<Vec<_>>(),
            "errors": loaded.diagnostics,
        }))?;
    } else {
        for d in &loaded.diagnostics {
            println!("{d}");
        }
        let tasks: usize = loaded.pipelines.values().map(|p| p.tasks.len()).sum();
        eprintln!(
            "{} valid pipeline(s), {tasks} task(s), {} error(s) in {}",
            loaded.pipelines.len(),
            loaded.diagnostics.len(),
            aula_engine::duration::human(started.elapsed())
        );
    }
    Ok(if loaded.diagnostics.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn bench(pg_url: Option<String>) -> anyhow::Result<ExitCode> {
    let pg_url = pg_url.filter(|u| !u.is_empty());
    if pg_url.is_none() {
        eprintln!(
            "(set AULA_BENCH_PG_URL or --pg-url to an empty PostgreSQL database for the PostgreSQL figures)"
        );
    }
    for line in aula_engine::bench::report(pg_url.as_deref())
        .await
        .map_err(anyhow::Error::msg)?
    {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
