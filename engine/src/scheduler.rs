//! The scheduler loop and the foreground operations built on the executor:
//! run one date, backfill a range, clear.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::executor::{ExecError, Executor, RunOutcome};
use crate::operator::Cancel;
use crate::schedule::Interval;
use crate::spec::{Diagnostic, Pipeline, load_file, pipeline_files};
use crate::store::{NewRun, RunRecord, RunState, TaskState};

/// The interval a `--date` names: the schedule's interval containing it, or
/// a one-day interval for manual-only pipelines.
pub fn interval_for(p: &Pipeline, date: DateTime<Utc>) -> Interval {
    match p
        .schedule
        .as_ref()
        .and_then(|s| s.interval_containing(date))
    {
        Some(iv) => iv,
        None => Interval {
            start: date,
            end: date + chrono::Duration::days(1),
        },
    }
}

/// Get or create the run of `p` for the interval containing `date`.
pub async fn ensure_run(
    exec: &Executor,
    p: &Pipeline,
    date: DateTime<Utc>,
    run_type: &str,
    params: &serde_json::Value,
) -> Result<(RunRecord, bool), ExecError> {
    let iv = interval_for(p, date);
    let new = NewRun {
        pipeline_id: p.id.clone(),
        logical_date: iv.start,
        interval_end: iv.end,
        run_type: run_type.to_owned(),
        params: params.clone(),
    };
    Ok(exec.store.create_run(&new, Utc::now()).await?)
}

/// Run one logical date in the foreground (`aula run`): a finished run is rerun from scratch.
pub async fn run_date(
    exec: &Executor,
    p: Arc<Pipeline>,
    date: DateTime<Utc>,
    params: &serde_json::Value,
    stop: Cancel,
) -> Result<(RunRecord, RunOutcome), ExecError> {
    let (run, created) = ensure_run(exec, &p, date, "manual", params).await?;
    if !created {
        exec.store.reset_tasks(&run.id, None, Utc::now()).await?;
    }
    exec.claim(&p, &run).await?;
    let outcome = exec.drive(p, run.clone(), stop).await?;
    Ok((run, outcome))
}

/// What backfill does with runs that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackfillMode {
    /// Only create and run missing intervals (and finish unfinished ones).
    #[default]
    Missing,
    /// Also clear and rerun failed tasks of failed runs.
    RerunFailed,
    /// Rerun every interval from scratch.
    Reprocess,
}

/// Per-interval result of a backfill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillItem {
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// `skipped` (already done), or the run's outcome.
    pub result: String,
}

/// Backfill every interval whose logical date is in `[from, to]`, at most
/// `max_active_runs` at a time. `progress(done, total)` is called as runs end.
pub async fn backfill(
    exec: &Executor,
    p: Arc<Pipeline>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mode: BackfillMode,
    stop: Cancel,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Vec<BackfillItem>, ExecError> {
    let schedule = p.schedule.as_ref().ok_or_else(|| {
        ExecError::Invalid(format!(
            "pipeline {} has no schedule, so it has no intervals to backfill",
            p.id
        ))
    })?;
    let intervals = schedule.intervals_between(from, to);
    let total = intervals.len();
    let mut todo = Vec::new();
    let mut items = Vec::new();
    for iv in &intervals {
        let new = NewRun {
            pipeline_id: p.id.clone(),
            logical_date: iv.start,
            interval_end: iv.end,
            run_type: "backfill".into(),
            params: serde_json::json!({}),
        };
        let (run, created) = exec.store.create_run(&new, Utc::now()).await?;
        let rerun = match (created, run.state, mode) {
            (true, _, _) => true,
            (false, _, BackfillMode::Reprocess) => {
                exec.store.reset_tasks(&run.id, None, Utc::now()).await?;
                true
            }
            (false, RunState::Failed, BackfillMode::RerunFailed) => {
                let failed: Vec<String> = exec
                    .store
                    .task_instances(&run.id)
                    .await?
                    .into_iter()
                    .filter(|t| matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed))
                    .map(|t| t.task_id)
                    .collect();
                exec.store
                    .reset_tasks(&run.id, Some(&failed), Utc::now())
                    .await?;
                true
            }
            (false, RunState::Queued | RunState::Running, _) => true,
            (false, _, _) => false,
        };
        if rerun {
            todo.push(run);
        } else {
            items.push(BackfillItem {
                logical_date: run.logical_date,
                result: format!("skipped ({})", run.state.as_str()),
            });
        }
    }
    let mut done = items.len();
    progress(done, total);
    let limit = p.max_active_runs.max(1) as usize;
    let mut set: JoinSet<(DateTime<Utc>, Result<RunOutcome, ExecError>)> = JoinSet::new();
    let mut queue = todo.into_iter();
    loop {
        while set.len() < limit && !stop.is_cancelled() {
            let Some(run) = queue.next() else { break };
            let exec = exec.clone();
            let p = p.clone();
            let stop = stop.clone();
            set.spawn(async move {
                let date = run.logical_date;
                let r = match exec.claim(&p, &run).await {
                    Ok(()) => {
                        let fresh = exec
                            .store
                            .run_by_id(&run.id)
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or(run);
                        exec.drive(p, fresh, stop).await
                    }
                    Err(e) => Err(e),
                };
                (date, r)
            });
        }
        let Some(res) = set.join_next().await else {
            break;
        };
        let (date, r) =
            res.map_err(|e| ExecError::Invalid(format!("backfill task panicked: {e}")))?;
        done += 1;
        progress(done, total);
        items.push(BackfillItem {
            logical_date: date,
            result: match r {
                Ok(RunOutcome::Finished(s)) => s.as_str().to_owned(),
                Ok(RunOutcome::Interrupted) => "interrupted".to_owned(),
                Err(e) => format!("error: {e}"),
            },
        });
    }
    items.sort_by_key(|i| i.logical_date);
    Ok(items)
}

/// Clear tasks of a run so that they run again: all of them, or `task` (and
/// its downstream tasks when `downstream`). Returns the cleared task ids.
pub async fn clear(
    exec: &Executor,
    p: &Pipeline,
    run: &RunRecord,
    task: Option<&str>,
    downstream: bool,
) -> Result<Vec<String>, ExecError> {
    let ids: Vec<String> = match task {
        None => p.tasks.iter().map(|t| t.id.clone()).collect(),
        Some(t) => {
            let idx = *p.index.get(t).ok_or_else(|| {
                ExecError::Invalid(format!("pipeline {} has no task `{t}`", p.id))
            })?;
            if downstream {
                p.downstream_closure(idx)
                    .into_iter()
                    .map(|i| p.tasks[i].id.clone())
                    .collect()
            } else {
                vec![t.to_owned()]
            }
        }
    };
    if task.is_none() {
        exec.store.reset_tasks(&run.id, None, Utc::now()).await?;
    } else {
        exec.store
            .reset_tasks(&run.id, Some(&ids), Utc::now())
            .await?;
    }
    Ok(ids)
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Files or folders with pipelines.
    pub paths: Vec<PathBuf>,
    /// How often to look for closed intervals, changed files and other schedulers' runs.
    pub tick: Duration,
    /// Runs driven at once by this scheduler.
    pub max_runs: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            paths: vec![PathBuf::from("pipelines")],
            tick: Duration::from_secs(1),
            max_runs: 64,
        }
    }
}

/// Receives the problems of pipeline files that fail to (re)load.
pub type DiagnosticSink = Arc<dyn Fn(&[Diagnostic]) + Send + Sync>;

struct Known {
    mtime: Option<SystemTime>,
    pipeline: Option<Arc<Pipeline>>,
}

/// The long-running scheduler (`aula scheduler`).
pub struct Scheduler {
    exec: Executor,
    cfg: SchedulerConfig,
    files: BTreeMap<PathBuf, Known>,
    /// Called with the problems of a file each time it changes and fails to load.
    pub on_diagnostics: Option<DiagnosticSink>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("cfg", &self.cfg).finish()
    }
}

impl Scheduler {
    /// A scheduler over `exec`.
    pub fn new(exec: Executor, cfg: SchedulerConfig) -> Self {
        Scheduler {
            exec,
            cfg,
            files: BTreeMap::new(),
            on_diagnostics: None,
        }
    }

    /// Reload new and changed files; a file that fails keeps its last good version.
    fn reload(&mut self) -> bool {
        let files = match pipeline_files(&self.cfg.paths) {
            Ok(f) => f,
            Err(d) => {
                if let Some(cb) = &self.on_diagnostics {
                    cb(&d);
                }
                return false;
            }
        };
        let mut changed = false;
        self.files.retain(|k, _| {
            let keep = files.contains(k);
            changed |= !keep;
            keep
        });
        for f in files {
            let mtime = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
            let known = self.files.get(&f);
            if known.is_some_and(|k| k.mtime == mtime && mtime.is_some()) {
                continue;
            }
            changed = true;
            match load_file(&f, &self.exec.registry) {
                Ok(p) => {
                    tracing::info!(pipeline = %p.id, file = %f.display(), "loaded pipeline");
                    self.files.insert(
                        f,
                        Known {
                            mtime,
                            pipeline: Some(Arc::new(p)),
                        },
                    );
                }
                Err(d) => {
                    for x in &d {
                        tracing::error!("{x}");
                    }
                    if let Some(cb) = &self.on_diagnostics {
                        cb(&d);
                    }
                    let prev = self.files.get(&f).and_then(|k| k.pipeline.clone());
                    self.files.insert(
                        f,
                        Known {
                            mtime,
                            pipeline: prev,
                        },
                    );
                }
            }
        }
        changed
    }

    fn pipelines(&self) -> HashMap<String, Arc<Pipeline>> {
        let mut out = HashMap::new();
        for k in self.files.values() {
            if let Some(p) = &k.pipeline {
                out.entry(p.id.clone()).or_insert_with(|| p.clone());
            }
        }
        out
    }

    /// Create runs for intervals that have closed by `now`.
    pub async fn create_due_runs(
        &self,
        pipelines: &HashMap<String, Arc<Pipeline>>,
        now: DateTime<Utc>,
    ) -> Result<usize, ExecError> {
        let mut created = 0;
        for p in pipelines.values() {
            let (Some(s), Some(start)) = (&p.schedule, p.start_date) else {
                continue;
            };
            let after = self.exec.store.latest_scheduled(&p.id).await?;
            // An interval is due once it closed `delay` ago.
            let closed_by = now - chrono::Duration::from_std(p.delay).unwrap_or_default();
            for iv in s.due(start, p.end_date, p.catchup, after, closed_by) {
                let new = NewRun {
                    pipeline_id: p.id.clone(),
                    logical_date: iv.start,
                    interval_end: iv.end,
                    run_type: "scheduled".into(),
                    params: serde_json::json!({}),
                };
                let (_, fresh) = self.exec.store.create_run(&new, now).await?;
                if fresh {
                    created += 1;
                    tracing::info!(pipeline = %p.id, logical_date = %iv.start, "created run");
                }
            }
        }
        Ok(created)
    }

    /// Run until `stop` fires; then start no new task, let running ones end,
    /// release unfinished runs, and return.
    pub async fn run(mut self, stop: Cancel) -> Result<(), ExecError> {
        let mut drivers: JoinSet<(String, Result<RunOutcome, ExecError>)> = JoinSet::new();
        let mut active: HashMap<String, ()> = HashMap::new();
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if stop.is_cancelled() {
                break;
            }
            self.reload();
            let pipelines = self.pipelines();
            let now = Utc::now();
            if let Err(e) = self.create_due_runs(&pipelines, now).await {
                tracing::error!("creating runs: {e}");
            }
            let free = self.cfg.max_runs.saturating_sub(drivers.len());
            if free > 0 {
                let max_active: HashMap<String, u32> = pipelines
                    .iter()
                    .map(|(k, p)| (k.clone(), p.max_active_runs))
                    .collect();
                let lease =
                    now + chrono::Duration::from_std(self.exec.cfg.lease_ttl).unwrap_or_default();
                match self
                    .exec
                    .store
                    .claim_runs(&self.exec.cfg.owner, now, lease, &max_active, free)
                    .await
                {
                    Ok(runs) => {
                        for run in runs {
                            let Some(p) = pipelines.get(&run.pipeline_id).cloned() else {
                                continue;
                            };
                            active.insert(run.id.clone(), ());
                            let exec = self.exec.clone();
                            let stop = stop.clone();
                            tracing::info!(pipeline = %p.id, logical_date = %run.logical_date, "driving run");
                            drivers.spawn(async move {
                                let id = run.id.clone();
                                (id, exec.drive(p, run, stop).await)
                            });
                        }
                    }
                    Err(e) => tracing::error!("claiming runs: {e}"),
                }
            }
            tokio::select! {
                _ = ticker.tick() => {}
                Some(res) = drivers.join_next(), if !drivers.is_empty() => {
                    if let Ok((id, r)) = res {
                        active.remove(&id);
                        if let Err(e) = r {
                            tracing::error!(run_id = %id, "run: {e}");
                        }
                    }
                }
                _ = stop.cancelled() => {}
            }
        }
        tracing::info!(
            running = drivers.len(),
            "stopping: waiting for running tasks"
        );
        while let Some(res) = drivers.join_next().await {
            if let Ok((id, Err(e))) = res {
                tracing::error!(run_id = %id, "run: {e}");
            }
        }
        Ok(())
    }
}
