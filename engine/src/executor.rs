//! Drives one run of a pipeline: starts tasks the moment their upstreams
//! satisfy their trigger rule, retries with backoff, enforces timeouts, and
//! records every transition in the store.
//!
//! The decisions are made in memory by the one driver holding the run's
//! lease; the store gets two small transactions per try (start, finish) and
//! one batch per wave of skipped/upstream_failed tasks. Nothing polls: the
//! driver wakes on a task finishing, a retry falling due, a heartbeat, or stop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use crate::operator::{Cancel, CancelHandle, LogStream, Registry, TaskContext, TaskLog};
use crate::spec::{Pipeline, TriggerRule};
use crate::store::{FinishTry, RunRecord, RunState, Store, StoreError, TaskState};
use crate::template::Templates;

/// Concurrency limits shared by every run of a process.
#[derive(Debug)]
pub struct Resources {
    parallelism: Arc<Semaphore>,
    pools: HashMap<String, Arc<Semaphore>>,
}

impl Resources {
    /// `parallelism` running tries at most; `pools` maps pool names to their slot counts.
    /// A task naming a pool that is not configured is limited by parallelism only.
    pub fn new(parallelism: usize, pools: &HashMap<String, usize>) -> Arc<Self> {
        Arc::new(Resources {
            parallelism: Arc::new(Semaphore::new(parallelism.max(1))),
            pools: pools
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(Semaphore::new((*v).max(1)))))
                .collect(),
        })
    }
}

/// Something that happened, for live status lines and progress bars.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A try started.
    TaskStarted {
        /// Pipeline.
        pipeline: String,
        /// Logical date.
        logical_date: DateTime<Utc>,
        /// Task.
        task: String,
        /// Try.
        try_number: u32,
    },
    /// A task changed state (a try ended, or it was skipped / upstream_failed).
    TaskFinished {
        /// Pipeline.
        pipeline: String,
        /// Logical date.
        logical_date: DateTime<Utc>,
        /// Task.
        task: String,
        /// Try (0 when it never ran).
        try_number: u32,
        /// New state.
        state: TaskState,
        /// Seconds the try took.
        seconds: f64,
        /// Error, if it failed.
        error: Option<String>,
    },
    /// The run ended.
    RunFinished {
        /// Pipeline.
        pipeline: String,
        /// Logical date.
        logical_date: DateTime<Utc>,
        /// Outcome.
        state: RunState,
    },
}

/// Receives [`Event`]s.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Settings of an executor.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Who we are in leases and try records.
    pub owner: String,
    /// How long a lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// After a timeout or hard stop, how long a task may take to wind down before it is dropped.
    pub cancel_grace: Duration,
    /// Print task log lines to stderr as they come.
    pub echo_logs: bool,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            owner: default_owner(),
            lease_ttl: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(5),
            echo_logs: false,
        }
    }
}

/// `host:pid:random`, unique per process.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &rand[..8])
}

/// Why driving a run stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Someone else holds the run.
    #[error(
        "run of {pipeline} for {logical_date} is being driven by {owner} (lease until {until})"
    )]
    Busy {
        /// Pipeline.
        pipeline: String,
        /// Logical date.
        logical_date: DateTime<Utc>,
        /// Owner.
        owner: String,
        /// Lease expiry.
        until: DateTime<Utc>,
    },
    /// Bad request (unknown task, no schedule, …).
    #[error("{0}")]
    Invalid(String),
}

/// How driving a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Finished with this state.
    Finished(RunState),
    /// Stopped (shutdown) before finishing; the run went back to the queue.
    Interrupted,
}

/// Runs pipelines' tasks against a store.
#[derive(Clone)]
pub struct Executor {
    /// Run state.
    pub store: Arc<dyn Store>,
    /// Task kinds.
    pub registry: Registry,
    /// Limits.
    pub resources: Arc<Resources>,
    /// Settings.
    pub cfg: ExecConfig,
    /// Live events.
    pub events: Option<EventSink>,
    templates: Arc<Templates>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("store", &self.store.kind())
            .field("cfg", &self.cfg)
            .finish()
    }
}

struct Done {
    idx: usize,
    try_number: u32,
    state: TaskState,
    next_try_at: Option<DateTime<Utc>>,
    started: bool,
    lease_lost: bool,
}

fn lease_until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30))
}

impl Executor {
    /// A new executor.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        resources: Arc<Resources>,
        cfg: ExecConfig,
    ) -> Self {
        Executor {
            store,
            registry,
            resources,
            cfg,
            events: None,
            templates: Arc::new(Templates::new()),
        }
    }

    /// Send live events to `sink`.
    pub fn with_events(mut self, sink: EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    fn emit(&self, ev: Event) {
        if let Some(sink) = &self.events {
            sink(&ev);
        }
    }

    /// Claim a run for a foreground command (fails if a live scheduler holds it).
    pub async fn claim(&self, pipeline: &Pipeline, run: &RunRecord) -> Result<(), ExecError> {
        let now = Utc::now();
        if self
            .store
            .claim_run(
                &run.id,
                &self.cfg.owner,
                now,
                lease_until(now, self.cfg.lease_ttl),
            )
            .await?
        {
            return Ok(());
        }
        let cur = self
            .store
            .run_by_id(&run.id)
            .await?
            .unwrap_or_else(|| run.clone());
        Err(ExecError::Busy {
            pipeline: pipeline.id.clone(),
            logical_date: run.logical_date,
            owner: cur.lease_owner.unwrap_or_default(),
            until: cur.lease_expires_at.unwrap_or(now),
        })
    }

    /// Drive a run we hold the lease of until it finishes, or until `stop`
    /// fires (then no new task starts, running ones finish, and the run is released).
    pub async fn drive(
        &self,
        pipeline: Arc<Pipeline>,
        run: RunRecord,
        stop: Cancel,
    ) -> Result<RunOutcome, ExecError> {
        let span = tracing::info_span!("run", pipeline = %pipeline.id, run_id = %run.id, logical_date = %run.logical_date);
        self.drive_inner(pipeline, run, stop).instrument(span).await
    }

    async fn drive_inner(
        &self,
        pipeline: Arc<Pipeline>,
        run: RunRecord,
        stop: Cancel,
    ) -> Result<RunOutcome, ExecError> {
        let n = pipeline.tasks.len();
        let mut state = vec![TaskState::None; n];
        let mut tries = vec![0u32; n];
        let mut next_try: Vec<Option<DateTime<Utc>>> = vec![None; n];
        let now = Utc::now();
        let mut lost = Vec::new();
        let mut lost_states = Vec::new();
        for ti in self.store.task_instances(&run.id).await? {
            let Some(&i) = pipeline.index.get(&ti.task_id) else {
                continue;
            };
            tries[i] = ti.try_number;
            state[i] = match ti.state {
                TaskState::Running => {
                    // The previous owner died mid-try.
                    lost.push(ti.task_id.clone());
                    let t = &pipeline.tasks[i];
                    let s = if ti.try_number <= t.retry.retries {
                        TaskState::UpForRetry
                    } else {
                        TaskState::Failed
                    };
                    if s == TaskState::UpForRetry {
                        next_try[i] = Some(
                            now + chrono::Duration::from_std(t.retry.delay_after(ti.try_number))
                                .unwrap_or_default(),
                        );
                    }
                    tracing::warn!(task = %ti.task_id, try_number = ti.try_number, "try lost with its scheduler; {}", if s == TaskState::Failed { "no tries left" } else { "retrying" });
                    lost_states.push((ti.task_id.clone(), s));
                    s
                }
                TaskState::Scheduled => TaskState::None,
                TaskState::UpForRetry => {
                    next_try[i] = ti.next_try_at;
                    TaskState::UpForRetry
                }
                s => s,
            };
        }
        if !lost.is_empty() {
            self.store.mark_tries_lost(&run.id, &lost, now).await?;
            self.store
                .set_task_states(&run.id, &lost_states, now)
                .await?;
        }

        let params: BTreeMap<String, serde_json::Value> = {
            let mut p = pipeline.params.clone();
            if let serde_json::Value::Object(over) = &run.params {
                for (k, v) in over {
                    p.insert(k.clone(), v.clone());
                }
            }
            p
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut cancels: HashMap<usize, CancelHandle> = HashMap::new();
        let mut running = 0usize;
        let mut stopping = stop.is_cancelled();
        let mut lease_lost = false;
        let mut work: VecDeque<usize> = (0..n).filter(|i| state[*i] == TaskState::None).collect();
        let mut heartbeat = tokio::time::interval(self.cfg.lease_ttl / 3);
        heartbeat.tick().await;
        let mut batch: Vec<(String, TaskState)> = Vec::new();

        loop {
            // Resolve waiting tasks whose upstreams are settled.
            let mut launch: Vec<usize> = Vec::new();
            while let Some(i) = work.pop_front() {
                if state[i] != TaskState::None {
                    continue;
                }
                match evaluate(&pipeline, &state, i) {
                    Decision::Wait => {}
                    Decision::Run => {
                        // Mark it now: the task may be queued for evaluation again in this pass.
                        state[i] = TaskState::Scheduled;
                        launch.push(i);
                    }
                    Decision::Set(s) => {
                        state[i] = s;
                        batch.push((pipeline.tasks[i].id.clone(), s));
                        self.emit(Event::TaskFinished {
                            pipeline: pipeline.id.clone(),
                            logical_date: run.logical_date,
                            task: pipeline.tasks[i].id.clone(),
                            try_number: tries[i],
                            state: s,
                            seconds: 0.0,
                            error: None,
                        });
                        work.extend(pipeline.downstream[i].iter().copied());
                    }
                }
            }
            if !batch.is_empty() {
                self.store
                    .set_task_states(&run.id, &batch, Utc::now())
                    .await?;
                batch.clear();
            }
            // Retries that are due.
            let now = Utc::now();
            let mut earliest_retry: Option<DateTime<Utc>> = None;
            for i in 0..n {
                if state[i] == TaskState::UpForRetry {
                    match next_try[i] {
                        Some(t) if t > now => {
                            earliest_retry = Some(earliest_retry.map_or(t, |e| e.min(t)))
                        }
                        _ if stopping => {}
                        _ => {
                            state[i] = TaskState::Scheduled;
                            launch.push(i);
                        }
                    }
                }
            }
            if !stopping {
                for i in launch {
                    state[i] = TaskState::Scheduled;
                    tries[i] += 1;
                    running += 1;
                    let (handle, cancel) = Cancel::new();
                    cancels.insert(i, handle);
                    self.spawn_try(
                        pipeline.clone(),
                        &run,
                        &params,
                        i,
                        tries[i],
                        cancel,
                        stop.clone(),
                        tx.clone(),
                    );
                }
            }
            if running == 0 && (stopping || earliest_retry.is_none()) {
                break;
            }
            let retry_sleep = async {
                match earliest_retry {
                    Some(t) => {
                        tokio::time::sleep((t - Utc::now()).to_std().unwrap_or_default()).await
                    }
                    None => futures::future::pending::<()>().await,
                }
            };
            tokio::select! {
                done = rx.recv() => {
                    let Some(done) = done else { break };
                    let mut next = Some(done);
                    while let Some(d) = next.take() {
                        running -= 1;
                        cancels.remove(&d.idx);
                        if d.lease_lost {
                            lease_lost = true;
                        }
                        if !d.started {
                            // Never started (stopping): back to waiting, try number unused.
                            tries[d.idx] = d.try_number - 1;
                            state[d.idx] = if next_try[d.idx].is_some() { TaskState::UpForRetry } else { TaskState::None };
                        } else {
                            state[d.idx] = d.state;
                            next_try[d.idx] = d.next_try_at;
                            if d.state.is_terminal() {
                                work.extend(pipeline.downstream[d.idx].iter().copied());
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if lease_lost && !stopping {
                        stopping = true;
                        for c in cancels.values() {
                            c.cancel();
                        }
                    }
                }
                _ = retry_sleep => {}
                _ = stop.cancelled(), if !stopping => {
                    stopping = true;
                }
                _ = heartbeat.tick() => {
                    let now = Utc::now();
                    let kept = self.store.renew_leases(&self.cfg.owner, std::slice::from_ref(&run.id), lease_until(now, self.cfg.lease_ttl)).await?;
                    if kept.is_empty() {
                        tracing::error!("lease lost: another scheduler took this run over; cancelling its tasks");
                        lease_lost = true;
                        stopping = true;
                        for c in cancels.values() {
                            c.cancel();
                        }
                    }
                }
            }
        }

        if lease_lost {
            return Err(ExecError::Store(StoreError::LeaseLost(run.id.clone())));
        }
        if state.iter().all(|s| s.is_terminal()) {
            let failed = state
                .iter()
                .any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed));
            let rs = if failed {
                RunState::Failed
            } else {
                RunState::Success
            };
            self.store
                .finish_run(&run.id, &self.cfg.owner, rs, Utc::now())
                .await?;
            self.emit(Event::RunFinished {
                pipeline: pipeline.id.clone(),
                logical_date: run.logical_date,
                state: rs,
            });
            tracing::debug!(state = rs.as_str(), "run finished");
            Ok(RunOutcome::Finished(rs))
        } else {
            self.store.release_run(&run.id, &self.cfg.owner).await?;
            tracing::info!("run interrupted; released for another scheduler");
            Ok(RunOutcome::Interrupted)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_try(
        &self,
        pipeline: Arc<Pipeline>,
        run: &RunRecord,
        params: &BTreeMap<String, serde_json::Value>,
        idx: usize,
        try_number: u32,
        cancel: Cancel,
        stop: Cancel,
        tx: mpsc::UnboundedSender<Done>,
    ) {
        let this = self.clone();
        let run = run.clone();
        let params = params.clone();
        tokio::spawn(async move {
            let done = this
                .one_try(&pipeline, &run, params, idx, try_number, cancel, Some(stop))
                .await;
            let _ = tx.send(done);
        });
    }

    /// Run one try of task `idx` (permits, store bookkeeping, timeout, retry decision).
    #[allow(clippy::too_many_arguments)]
    async fn one_try(
        &self,
        pipeline: &Pipeline,
        run: &RunRecord,
        params: BTreeMap<String, serde_json::Value>,
        idx: usize,
        try_number: u32,
        cancel: Cancel,
        stop: Option<Cancel>,
    ) -> Done {
        let task = &pipeline.tasks[idx];
        let not_started = Done {
            idx,
            try_number,
            state: TaskState::None,
            next_try_at: None,
            started: false,
            lease_lost: false,
        };
        // Slots: pool first, then global parallelism; give up if stopping.
        let stop_fut = async {
            match &stop {
                Some(s) => s.cancelled().await,
                None => futures::future::pending().await,
            }
        };
        let acquire = async {
            let pool = match task.pool.as_ref().and_then(|p| self.resources.pools.get(p)) {
                Some(sem) => sem.clone().acquire_owned().await.ok(),
                None => None,
            };
            let global = self
                .resources
                .parallelism
                .clone()
                .acquire_owned()
                .await
                .ok();
            (pool, global)
        };
        let _permits = tokio::select! {
            p = acquire => p,
            _ = stop_fut => return not_started,
        };
        let started_at = Utc::now();
        let lease = lease_until(started_at, self.cfg.lease_ttl);
        match self
            .store
            .start_try(
                &run.id,
                &task.id,
                try_number,
                &self.cfg.owner,
                started_at,
                lease,
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost(_)) => {
                return Done {
                    lease_lost: true,
                    ..not_started
                };
            }
            Err(e) => {
                tracing::error!(task = %task.id, "cannot record the start of a try: {e}");
                return Done {
                    lease_lost: true,
                    ..not_started
                };
            }
        }
        self.emit(Event::TaskStarted {
            pipeline: pipeline.id.clone(),
            logical_date: run.logical_date,
            task: task.id.clone(),
            try_number,
        });
        let span = tracing::info_span!("task_try", pipeline = %pipeline.id, task = %task.id, logical_date = %run.logical_date, try_number);
        let log = TaskLog::new(self.cfg.echo_logs);
        let clock = Instant::now();
        let (outcome, error) = async {
            let Some(op) = self.registry.get(&task.kind) else {
                return ("failed", Some((format!("unknown task kind `{}`", task.kind), false)));
            };
            let ctx = TaskContext {
                run_id: run.id.clone(),
                pipeline_id: pipeline.id.clone(),
                task_id: task.id.clone(),
                logical_date: run.logical_date,
                data_interval_start: run.logical_date,
                data_interval_end: run.interval_end,
                timezone: pipeline.timezone,
                params,
                try_number,
                log: log.clone(),
                cancel: cancel.clone(),
                templates: self.templates.clone(),
            };
            let (handle, inner_cancel) = Cancel::new();
            let ctx = TaskContext { cancel: inner_cancel, ..ctx };
            let mut fut = op.execute(&task.config, &ctx);
            let limit = task.timeout.unwrap_or(Duration::MAX / 4);
            let outer = cancel.clone();
            let res = tokio::select! {
                r = &mut fut => Some(r),
                _ = tokio::time::sleep(limit) => None,
                _ = outer.cancelled() => {
                    handle.cancel();
                    let _ = tokio::time::timeout(self.cfg.cancel_grace, &mut fut).await;
                    return ("cancelled", Some(("cancelled: the run's lease was lost or the scheduler stopped".to_owned(), true)));
                }
            };
            match res {
                Some(Ok(())) => ("success", None),
                Some(Err(e)) => ("failed", Some((e.message, e.retryable))),
                None => {
                    handle.cancel();
                    let _ = tokio::time::timeout(self.cfg.cancel_grace, &mut fut).await;
                    let msg = format!("timed out after {}", crate::duration::human(limit));
                    log.write(LogStream::System, msg.clone());
                    ("timeout", Some((msg, true)))
                }
            }
        }
        .instrument(span.clone())
        .await;
        let ended_at = Utc::now();
        let (state, next_try_at) = match &error {
            None => (TaskState::Success, None),
            Some((_, retryable)) if *retryable && try_number <= task.retry.retries => {
                let d = task.retry.delay_after(try_number);
                (
                    TaskState::UpForRetry,
                    Some(ended_at + chrono::Duration::from_std(d).unwrap_or_default()),
                )
            }
            Some(_) => (TaskState::Failed, None),
        };
        if let Some((msg, _)) = &error {
            log.write(
                LogStream::System,
                format!("try {try_number} {outcome}: {msg}"),
            );
            span.in_scope(|| tracing::warn!(outcome, "{msg}"));
        }
        let fin = FinishTry {
            run_id: run.id.clone(),
            task_id: task.id.clone(),
            try_number,
            ended_at,
            outcome: outcome.to_owned(),
            error: error.as_ref().map(|(m, _)| m.clone()),
            state,
            next_try_at,
            logs: log.drain(),
        };
        if let Err(e) = self.store.finish_try(&fin).await {
            tracing::error!(task = %task.id, "cannot record the end of a try: {e}");
        }
        self.emit(Event::TaskFinished {
            pipeline: pipeline.id.clone(),
            logical_date: run.logical_date,
            task: task.id.clone(),
            try_number,
            state,
            seconds: clock.elapsed().as_secs_f64(),
            error: error.map(|(m, _)| m),
        });
        Done {
            idx,
            try_number,
            state,
            next_try_at,
            started: true,
            lease_lost: false,
        }
    }

    /// Run one task of a run once, ignoring its upstreams (`aula task run`).
    /// The run's own state is left as it was.
    pub async fn run_task(
        &self,
        pipeline: Arc<Pipeline>,
        run: &RunRecord,
        task_id: &str,
    ) -> Result<TaskState, ExecError> {
        let idx = *pipeline.index.get(task_id).ok_or_else(|| {
            ExecError::Invalid(format!("pipeline {} has no task `{task_id}`", pipeline.id))
        })?;
        self.claim(&pipeline, run).await?;
        let prev = self
            .store
            .task_instances(&run.id)
            .await?
            .into_iter()
            .find(|t| t.task_id == task_id)
            .map_or(0, |t| t.try_number);
        let mut params = pipeline.params.clone();
        if let serde_json::Value::Object(over) = &run.params {
            params.extend(over.clone());
        }
        let (_h, cancel) = Cancel::new();
        let mut try_number = prev + 1;
        let state = loop {
            let done = self
                .one_try(
                    &pipeline,
                    run,
                    params.clone(),
                    idx,
                    try_number,
                    cancel.clone(),
                    None,
                )
                .await;
            if done.lease_lost {
                return Err(ExecError::Store(StoreError::LeaseLost(run.id.clone())));
            }
            match (done.state, done.next_try_at) {
                (TaskState::UpForRetry, Some(t)) => {
                    tokio::time::sleep((t - Utc::now()).to_std().unwrap_or_default()).await;
                    try_number += 1;
                }
                (s, _) => break s,
            }
        };
        // Give the run back in the state it had.
        let now = Utc::now();
        let all_done = {
            let tis = self.store.task_instances(&run.id).await?;
            pipeline.tasks.iter().all(|t| {
                tis.iter()
                    .any(|ti| ti.task_id == t.id && ti.state.is_terminal())
            })
        };
        if all_done {
            let tis = self.store.task_instances(&run.id).await?;
            let failed = tis
                .iter()
                .any(|t| matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed));
            self.store
                .finish_run(
                    &run.id,
                    &self.cfg.owner,
                    if failed {
                        RunState::Failed
                    } else {
                        RunState::Success
                    },
                    now,
                )
                .await?;
        } else {
            self.store.release_run(&run.id, &self.cfg.owner).await?;
        }
        Ok(state)
    }
}

enum Decision {
    Wait,
    Run,
    Set(TaskState),
}

fn evaluate(p: &Pipeline, state: &[TaskState], i: usize) -> Decision {
    let ups = &p.upstream[i];
    let (mut done, mut failed, mut skipped) = (0, 0, 0);
    for &u in ups {
        match state[u] {
            TaskState::Success => done += 1,
            TaskState::Failed | TaskState::UpstreamFailed => {
                done += 1;
                failed += 1;
            }
            TaskState::Skipped => {
                done += 1;
                skipped += 1;
            }
            _ => {}
        }
    }
    let all_done = done == ups.len();
    match p.tasks[i].trigger_rule {
        TriggerRule::AllSuccess => {
            if failed > 0 {
                Decision::Set(TaskState::UpstreamFailed)
            } else if !all_done {
                Decision::Wait
            } else if skipped > 0 {
                Decision::Set(TaskState::Skipped)
            } else {
                Decision::Run
            }
        }
        TriggerRule::AllDone => {
            if all_done {
                Decision::Run
            } else {
                Decision::Wait
            }
        }
        TriggerRule::OneFailed => {
            if failed > 0 {
                Decision::Run
            } else if all_done {
                Decision::Set(TaskState::Skipped)
            } else {
                Decision::Wait
            }
        }
        TriggerRule::NoneFailed => {
            if failed > 0 {
                Decision::Set(TaskState::UpstreamFailed)
            } else if all_done {
                Decision::Run
            } else {
                Decision::Wait
            }
        }
    }
}
