//! Durable run state behind one trait, [`Store`], with SQLite (default,
//! `.aula/state.db`) and PostgreSQL (`AULA_STATE_URL=postgres://…`) backends.
//!
//! Ownership: a run is driven by the scheduler holding its lease
//! (`runs.lease_owner` until `lease_expires_at`). Leases are claimed under a
//! lock (`FOR UPDATE SKIP LOCKED` plus a transaction-scoped advisory lock on
//! PostgreSQL, a write lock on SQLite) and renewed by heartbeats; every try
//! start re-checks the lease in the same transaction, so two schedulers never
//! start the same task. A run whose lease lapsed is claimed by another
//! scheduler, which records the dead owner's running tries as lost and retries them.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::operator::{BoxFuture, LogLine, LogStream};

/// Store failures: all are the database's (external) fault; most are retryable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("run-state store: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("run-state store: migrating: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another scheduler owns the run now (our lease lapsed).
    #[error("run {0}: lease lost to another scheduler")]
    LeaseLost(String),
    /// A group-committed batch failed.
    #[error("run-state store: {0}")]
    Batch(String),
    /// Bad configuration (URL).
    #[error("run-state store: {0}")]
    Config(String),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// State of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a scheduler.
    Queued,
    /// Being driven.
    Running,
    /// Every task succeeded or was skipped.
    Success,
    /// Some task failed.
    Failed,
}

impl RunState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => RunState::Running,
            "success" => RunState::Success,
            "failed" => RunState::Failed,
            _ => RunState::Queued,
        }
    }

    /// Finished.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

/// State of a task instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not started (waiting for upstreams).
    None,
    /// Ready, waiting for a pool or parallelism slot.
    Scheduled,
    /// A try is running.
    Running,
    /// Done, successfully.
    Success,
    /// Done, failed after its last try.
    Failed,
    /// Failed; another try is due at `next_try_at`.
    UpForRetry,
    /// Not run because an upstream failed.
    UpstreamFailed,
    /// Not run because of its trigger rule.
    Skipped,
}

impl TaskState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::None => "none",
            TaskState::Scheduled => "scheduled",
            TaskState::Running => "running",
            TaskState::Success => "success",
            TaskState::Failed => "failed",
            TaskState::UpForRetry => "up_for_retry",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Skipped => "skipped",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Self {
        match s {
            "scheduled" => TaskState::Scheduled,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "failed" => TaskState::Failed,
            "up_for_retry" => TaskState::UpForRetry,
            "upstream_failed" => TaskState::UpstreamFailed,
            "skipped" => TaskState::Skipped,
            _ => TaskState::None,
        }
    }

    /// Finished (no more tries).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failed | TaskState::UpstreamFailed | TaskState::Skipped
        )
    }
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Pipeline.
    pub pipeline_id: String,
    /// Logical date = interval start.
    pub logical_date: DateTime<Utc>,
    /// Interval end.
    pub interval_end: DateTime<Utc>,
    /// `scheduled`, `manual` or `backfill`.
    pub run_type: String,
    /// Param overrides.
    pub params: serde_json::Value,
}

/// A stored run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    /// Id (UUID).
    pub id: String,
    /// Pipeline.
    pub pipeline_id: String,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// Interval end.
    pub interval_end: DateTime<Utc>,
    /// How it was created.
    pub run_type: String,
    /// State.
    pub state: RunState,
    /// Param overrides.
    pub params: serde_json::Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// First driven.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub ended_at: Option<DateTime<Utc>>,
    /// Scheduler holding the lease.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// A stored task instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskInstanceRecord {
    /// Task.
    pub task_id: String,
    /// State.
    pub state: TaskState,
    /// Tries started so far.
    pub try_number: u32,
    /// When the next try is due (up_for_retry).
    pub next_try_at: Option<DateTime<Utc>>,
}

/// One try of a task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TryRecord {
    /// Task.
    pub task_id: String,
    /// 1-based.
    pub try_number: u32,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// success, failed, timeout, lost, cancelled.
    pub outcome: Option<String>,
    /// Error message.
    pub error: Option<String>,
    /// Scheduler that ran it.
    pub worker: String,
}

/// The end of a try, written in one transaction with its logs.
#[derive(Debug, Clone)]
pub struct FinishTry {
    /// Run.
    pub run_id: String,
    /// Task.
    pub task_id: String,
    /// Try.
    pub try_number: u32,
    /// End time.
    pub ended_at: DateTime<Utc>,
    /// success, failed, timeout, lost, cancelled.
    pub outcome: String,
    /// Error text.
    pub error: Option<String>,
    /// The task instance's new state.
    pub state: TaskState,
    /// Next try (up_for_retry).
    pub next_try_at: Option<DateTime<Utc>>,
    /// Log lines of the try.
    pub logs: Vec<LogLine>,
}

/// Durable run state.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Create a run unless one exists for the pipeline and logical date; returns it and whether it is new.
    fn create_run<'a>(
        &'a self,
        run: &'a NewRun,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<(RunRecord, bool)>>;
    /// The run of a pipeline for a logical date.
    fn get_run<'a>(
        &'a self,
        pipeline_id: &'a str,
        logical_date: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<Option<RunRecord>>>;
    /// A run by id.
    fn run_by_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<RunRecord>>>;
    /// Latest runs of a pipeline, newest first.
    fn list_runs<'a>(
        &'a self,
        pipeline_id: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, StoreResult<Vec<RunRecord>>>;
    /// Logical date of the newest scheduled run.
    fn latest_scheduled<'a>(
        &'a self,
        pipeline_id: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<DateTime<Utc>>>>;
    /// Claim up to `limit` runnable runs (queued, or running with a lapsed
    /// lease) of the pipelines in `max_active` (pipeline → max_active_runs).
    fn claim_runs<'a>(
        &'a self,
        owner: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_active: &'a HashMap<String, u32>,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<Vec<RunRecord>>>;
    /// Claim one run for a foreground command; false when a live lease is held by someone else.
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<bool>>;
    /// Extend our leases; returns the run ids still ours.
    fn renew_leases<'a>(
        &'a self,
        owner: &'a str,
        run_ids: &'a [String],
        until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>>;
    /// Mark a run finished and drop its lease.
    fn finish_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
        state: RunState,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// Drop a lease without finishing (graceful shutdown): the run goes back to the queue.
    fn release_run<'a>(&'a self, run_id: &'a str, owner: &'a str)
    -> BoxFuture<'a, StoreResult<()>>;
    /// Task instances of a run.
    fn task_instances<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<TaskInstanceRecord>>>;
    /// Start a try: records it only while we hold a live lease on the run, and marks the instance running.
    fn start_try<'a>(
        &'a self,
        run_id: &'a str,
        task_id: &'a str,
        try_number: u32,
        owner: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// End a try with its logs.
    fn finish_try<'a>(&'a self, fin: &'a FinishTry) -> BoxFuture<'a, StoreResult<()>>;
    /// Set states of several instances (upstream_failed, skipped, lost tries) at once.
    fn set_task_states<'a>(
        &'a self,
        run_id: &'a str,
        states: &'a [(String, TaskState)],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// Record tries of a dead owner as lost.
    fn mark_tries_lost<'a>(
        &'a self,
        run_id: &'a str,
        task_ids: &'a [String],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// Clear task instances (all when `task_ids` is None) and requeue the run.
    fn reset_tasks<'a>(
        &'a self,
        run_id: &'a str,
        task_ids: Option<&'a [String]>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// Tries of a run (of one task when given), in order.
    fn tries<'a>(
        &'a self,
        run_id: &'a str,
        task_id: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<Vec<TryRecord>>>;
    /// Log lines of one try.
    fn logs<'a>(
        &'a self,
        run_id: &'a str,
        task_id: &'a str,
        try_number: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<LogLine>>>;
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(v).unwrap_or_default()
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        let params: String = row.try_get("params")?;
        RunRecord {
            id: row.try_get("id")?,
            pipeline_id: row.try_get("pipeline_id")?,
            logical_date: from_us(row.try_get("logical_date")?),
            interval_end: from_us(row.try_get("interval_end")?),
            run_type: row.try_get("run_type")?,
            state: RunState::parse(&row.try_get::<String, _>("state")?),
            params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
            created_at: from_us(row.try_get("created_at")?),
            started_at: row.try_get::<Option<i64>, _>("started_at")?.map(from_us),
            ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_us),
            lease_owner: row.try_get("lease_owner")?,
            lease_expires_at: row
                .try_get::<Option<i64>, _>("lease_expires_at")?
                .map(from_us),
        }
    }};
}

const RUN_COLS: &str = "id, pipeline_id, logical_date, interval_end, run_type, state, params, created_at, started_at, ended_at, lease_owner, lease_expires_at";

/// The SQL is the same for both databases (numbered `$n` parameters, BIGINT
/// microsecond times); only claim locking differs.
macro_rules! sql_store {
    ($name:ident, $db:ty, $pool:ty, $kind:literal, $claim_lock:literal, $claim_select:literal) => {
        impl Store for $name {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn create_run<'a>(&'a self, run: &'a NewRun, now: DateTime<Utc>) -> BoxFuture<'a, StoreResult<(RunRecord, bool)>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let id = uuid::Uuid::new_v4().to_string();
                    let inserted = sqlx::query(
                        "INSERT INTO runs (id, pipeline_id, logical_date, interval_end, run_type, state, params, created_at) \
                         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) ON CONFLICT (pipeline_id, logical_date) DO NOTHING",
                    )
                    .bind(&id)
                    .bind(&run.pipeline_id)
                    .bind(us(run.logical_date))
                    .bind(us(run.interval_end))
                    .bind(&run.run_type)
                    .bind(run.params.to_string())
                    .bind(us(now))
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        > 0;
                    let rec = self.get_run(&run.pipeline_id, run.logical_date).await?;
                    match rec {
                        Some(r) => Ok((r, inserted)),
                        None => Err(StoreError::Db(sqlx::Error::RowNotFound)),
                    }
                })
            }

            fn get_run<'a>(&'a self, pipeline_id: &'a str, logical_date: DateTime<Utc>) -> BoxFuture<'a, StoreResult<Option<RunRecord>>> {
                Box::pin(async move {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLS} FROM runs WHERE pipeline_id = $1 AND logical_date = $2")))
                        .bind(pipeline_id)
                        .bind(us(logical_date))
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(run_from_row!(&r)),
                        None => None,
                    })
                })
            }

            fn run_by_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<RunRecord>>> {
                Box::pin(async move {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLS} FROM runs WHERE id = $1")))
                        .bind(run_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(run_from_row!(&r)),
                        None => None,
                    })
                })
            }

            fn list_runs<'a>(&'a self, pipeline_id: &'a str, limit: i64) -> BoxFuture<'a, StoreResult<Vec<RunRecord>>> {
                Box::pin(async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RUN_COLS} FROM runs WHERE pipeline_id = $1 ORDER BY logical_date DESC LIMIT $2"
                    )))
                    .bind(pipeline_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        out.push(run_from_row!(r));
                    }
                    Ok(out)
                })
            }

            fn latest_scheduled<'a>(&'a self, pipeline_id: &'a str) -> BoxFuture<'a, StoreResult<Option<DateTime<Utc>>>> {
                Box::pin(async move {
                    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(logical_date) FROM runs WHERE pipeline_id = $1 AND run_type = 'scheduled'")
                        .bind(pipeline_id)
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(v.map(from_us))
                })
            }

            fn claim_runs<'a>(
                &'a self,
                owner: &'a str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                max_active: &'a HashMap<String, u32>,
                limit: usize,
            ) -> BoxFuture<'a, StoreResult<Vec<RunRecord>>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let mut tx = self.pool.begin().await?;
                    sqlx::query($claim_lock).execute(&mut *tx).await?;
                    let rows = sqlx::query($claim_select).bind(us(now)).fetch_all(&mut *tx).await?;
                    let active_rows = sqlx::query(
                        "SELECT pipeline_id, COUNT(*) AS n FROM runs WHERE state = 'running' AND lease_expires_at >= $1 GROUP BY pipeline_id",
                    )
                    .bind(us(now))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut active: HashMap<String, u32> = HashMap::new();
                    for r in &active_rows {
                        let p: String = r.try_get("pipeline_id")?;
                        let n: i64 = r.try_get("n")?;
                        active.insert(p, u32_of(n));
                    }
                    let mut chosen: Vec<String> = Vec::new();
                    for r in &rows {
                        if chosen.len() >= limit {
                            break;
                        }
                        let id: String = r.try_get("id")?;
                        let p: String = r.try_get("pipeline_id")?;
                        let Some(max) = max_active.get(&p) else { continue };
                        let a = active.entry(p).or_insert(0);
                        if *a < *max {
                            *a += 1;
                            chosen.push(id);
                        }
                    }
                    let mut out = Vec::new();
                    for id in &chosen {
                        sqlx::query(
                            "UPDATE runs SET state = 'running', lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3) WHERE id = $4",
                        )
                        .bind(owner)
                        .bind(us(lease_until))
                        .bind(us(now))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLS} FROM runs WHERE id = $1")))
                            .bind(id)
                            .fetch_one(&mut *tx)
                            .await?;
                        out.push(run_from_row!(&row));
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            }

            fn claim_run<'a>(&'a self, run_id: &'a str, owner: &'a str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> BoxFuture<'a, StoreResult<bool>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let n = sqlx::query(
                        "UPDATE runs SET state = 'running', lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), ended_at = NULL \
                         WHERE id = $4 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at < $3)",
                    )
                    .bind(owner)
                    .bind(us(lease_until))
                    .bind(us(now))
                    .bind(run_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(n > 0)
                })
            }

            fn renew_leases<'a>(&'a self, owner: &'a str, run_ids: &'a [String], until: DateTime<Utc>) -> BoxFuture<'a, StoreResult<Vec<String>>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let mut kept = Vec::new();
                    let mut tx = self.pool.begin().await?;
                    for id in run_ids {
                        let n = sqlx::query("UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3")
                            .bind(us(until))
                            .bind(id)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if n > 0 {
                            kept.push(id.clone());
                        }
                    }
                    tx.commit().await?;
                    Ok(kept)
                })
            }

            fn finish_run<'a>(&'a self, run_id: &'a str, owner: &'a str, state: RunState, now: DateTime<Utc>) -> BoxFuture<'a, StoreResult<()>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let n = sqlx::query(
                        "UPDATE runs SET state = $1, ended_at = $2, lease_owner = NULL, lease_expires_at = NULL WHERE id = $3 AND lease_owner = $4",
                    )
                    .bind(state.as_str())
                    .bind(us(now))
                    .bind(run_id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    if n == 0 { Err(StoreError::LeaseLost(run_id.to_owned())) } else { Ok(()) }
                })
            }

            fn release_run<'a>(&'a self, run_id: &'a str, owner: &'a str) -> BoxFuture<'a, StoreResult<()>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    sqlx::query("UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, state = 'queued' WHERE id = $1 AND lease_owner = $2")
                        .bind(run_id)
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn task_instances<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<TaskInstanceRecord>>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT task_id, state, try_number, next_try_at FROM task_instances WHERE run_id = $1 ORDER BY task_id")
                        .bind(run_id)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        out.push(TaskInstanceRecord {
                            task_id: r.try_get("task_id")?,
                            state: TaskState::parse(&r.try_get::<String, _>("state")?),
                            try_number: u32_of(r.try_get("try_number")?),
                            next_try_at: r.try_get::<Option<i64>, _>("next_try_at")?.map(from_us),
                        });
                    }
                    Ok(out)
                })
            }

            fn start_try<'a>(
                &'a self,
                run_id: &'a str,
                task_id: &'a str,
                try_number: u32,
                owner: &'a str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> BoxFuture<'a, StoreResult<()>> {
                let _ = lease_until;
                let op = move |reply| WriteOp::Start { run_id: run_id.to_owned(), task_id: task_id.to_owned(), try_number, owner: owner.to_owned(), now, reply };
                Box::pin(submit(&self.writer, op))
            }

            fn finish_try<'a>(&'a self, fin: &'a FinishTry) -> BoxFuture<'a, StoreResult<()>> {
                Box::pin(submit(&self.writer, |reply| WriteOp::Finish { fin: fin.clone(), reply }))
            }

            fn set_task_states<'a>(&'a self, run_id: &'a str, states: &'a [(String, TaskState)], now: DateTime<Utc>) -> BoxFuture<'a, StoreResult<()>> {
                if states.is_empty() {
                    return Box::pin(async { Ok(()) });
                }
                Box::pin(submit(&self.writer, move |reply| WriteOp::States { run_id: run_id.to_owned(), states: states.to_vec(), now, reply }))
            }

            fn mark_tries_lost<'a>(&'a self, run_id: &'a str, task_ids: &'a [String], now: DateTime<Utc>) -> BoxFuture<'a, StoreResult<()>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let mut tx = self.pool.begin().await?;
                    for t in task_ids {
                        sqlx::query(
                            "UPDATE task_tries SET ended_at = $1, outcome = 'lost', error = 'the scheduler running this try stopped heartbeating' \
                             WHERE run_id = $2 AND task_id = $3 AND ended_at IS NULL",
                        )
                        .bind(us(now))
                        .bind(run_id)
                        .bind(t)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn reset_tasks<'a>(&'a self, run_id: &'a str, task_ids: Option<&'a [String]>, now: DateTime<Utc>) -> BoxFuture<'a, StoreResult<()>> {
                Box::pin(async move {
                    let _guard = self.write_guard().await;
                    let mut tx = self.pool.begin().await?;
                    match task_ids {
                        None => {
                            sqlx::query("UPDATE task_instances SET state = 'none', next_try_at = NULL, updated_at = $1 WHERE run_id = $2")
                                .bind(us(now))
                                .bind(run_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(ids) => {
                            for t in ids {
                                sqlx::query("UPDATE task_instances SET state = 'none', next_try_at = NULL, updated_at = $1 WHERE run_id = $2 AND task_id = $3")
                                    .bind(us(now))
                                    .bind(run_id)
                                    .bind(t)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                    }
                    sqlx::query("UPDATE runs SET state = 'queued', ended_at = NULL WHERE id = $1 AND state <> 'running'")
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn tries<'a>(&'a self, run_id: &'a str, task_id: Option<&'a str>) -> BoxFuture<'a, StoreResult<Vec<TryRecord>>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT task_id, try_number, started_at, ended_at, outcome, error, worker FROM task_tries \
                         WHERE run_id = $1 AND ($2 IS NULL OR task_id = $2) ORDER BY started_at, task_id, try_number",
                    )
                    .bind(run_id)
                    .bind(task_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        out.push(TryRecord {
                            task_id: r.try_get("task_id")?,
                            try_number: u32_of(r.try_get("try_number")?),
                            started_at: from_us(r.try_get("started_at")?),
                            ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(from_us),
                            outcome: r.try_get("outcome")?,
                            error: r.try_get("error")?,
                            worker: r.try_get("worker")?,
                        });
                    }
                    Ok(out)
                })
            }

            fn logs<'a>(&'a self, run_id: &'a str, task_id: &'a str, try_number: u32) -> BoxFuture<'a, StoreResult<Vec<LogLine>>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT ts, stream, line FROM task_logs WHERE run_id = $1 AND task_id = $2 AND try_number = $3 ORDER BY seq")
                        .bind(run_id)
                        .bind(task_id)
                        .bind(i64::from(try_number))
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        out.push(LogLine {
                            ts: from_us(r.try_get("ts")?),
                            stream: LogStream::parse(&r.try_get::<String, _>("stream")?),
                            line: r.try_get("line")?,
                        });
                    }
                    Ok(out)
                })
            }
        }
    };
}

/// A write of the hot path (try start, try end, batch of states), queued for group commit.
#[derive(Debug)]
enum WriteOp {
    Start {
        run_id: String,
        task_id: String,
        try_number: u32,
        owner: String,
        now: DateTime<Utc>,
        reply: Reply,
    },
    Finish {
        fin: FinishTry,
        reply: Reply,
    },
    States {
        run_id: String,
        states: Vec<(String, TaskState)>,
        now: DateTime<Utc>,
        reply: Reply,
    },
}

type Reply = tokio::sync::oneshot::Sender<StoreResult<()>>;
type Writer = tokio::sync::mpsc::UnboundedSender<WriteOp>;

impl WriteOp {
    fn reply(self, r: StoreResult<()>) {
        let tx = match self {
            WriteOp::Start { reply, .. }
            | WriteOp::Finish { reply, .. }
            | WriteOp::States { reply, .. } => reply,
        };
        let _ = tx.send(r);
    }
}

async fn submit(writer: &Writer, op: impl FnOnce(Reply) -> WriteOp) -> StoreResult<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    writer
        .send(op(tx))
        .map_err(|_| StoreError::Config("the store's writer has stopped".into()))?;
    rx.await
        .map_err(|_| StoreError::Config("the store's writer has stopped".into()))?
}

/// Group commit: every write queued while the previous batch was committing
/// goes into one transaction, with multi-row statements. Under load (many
/// tasks finishing at once) this turns N transactions into one.
macro_rules! batch_writer {
    ($fn_name:ident, $db:ty, $pool:ty, $share:literal, $async_commit:expr) => {
        async fn $fn_name(
            pool: $pool,
            lock: Option<Arc<tokio::sync::Mutex<()>>>,
            mut rx: tokio::sync::mpsc::UnboundedReceiver<WriteOp>,
        ) {
            while let Some(first) = rx.recv().await {
                let mut ops = vec![first];
                while ops.len() < 512 {
                    match rx.try_recv() {
                        Ok(op) => ops.push(op),
                        Err(_) => break,
                    }
                }
                let _guard = match &lock {
                    Some(l) => Some(l.lock().await),
                    None => None,
                };
                match apply_batch::<$db>(&pool, &ops, $share, $async_commit).await {
                    Ok(results) => {
                        for (op, r) in ops.into_iter().zip(results) {
                            op.reply(r);
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if std::env::var("AULA_DEBUG_BATCH").is_ok() {
                            eprintln!("batch failed: {msg}: {ops:#?}");
                        }
                        for op in ops {
                            op.reply(Err(StoreError::Batch(msg.clone())));
                        }
                    }
                }
            }
        }
    };
}

async fn apply_batch<DB>(
    pool: &sqlx::Pool<DB>,
    ops: &[WriteOp],
    share: &'static str,
    async_commit: Option<&'static str>,
) -> StoreResult<Vec<StoreResult<()>>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB>,
    for<'r> Option<i64>: sqlx::Decode<'r, DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut results: Vec<StoreResult<()>> = ops.iter().map(|_| Ok(())).collect();
    let mut tx = pool.begin().await?;
    // Only try starts must be on disk before we go on (they are what stops a
    // second scheduler from starting the task). Ends and state batches may be
    // committed without waiting for the WAL flush: the next synchronous commit
    // (the next start, or the run's end) flushes them too, in order, and one
    // lost in a database crash only means the task runs again.
    if let Some(stmt) = async_commit
        && !ops.iter().any(|o| matches!(o, WriteOp::Start { .. }))
    {
        sqlx::query(stmt).execute(&mut *tx).await?;
    }
    // Try starts: only while the starter holds a live lease on the run.
    let starts: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, WriteOp::Start { .. }))
        .map(|(i, _)| i)
        .collect();
    if !starts.is_empty() {
        let mut ids: Vec<&str> = starts
            .iter()
            .filter_map(|i| match &ops[*i] {
                WriteOp::Start { run_id, .. } => Some(run_id.as_str()),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut qb = sqlx::QueryBuilder::<DB>::new(
            "SELECT id, lease_owner, lease_expires_at FROM runs WHERE id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in &ids {
            sep.push_bind(id.to_string());
        }
        qb.push(")");
        qb.push(share);
        let rows = qb.build().fetch_all(&mut *tx).await?;
        let mut leases: HashMap<String, (Option<String>, Option<i64>)> = HashMap::new();
        for r in &rows {
            leases.insert(
                r.try_get::<String, _>(0usize)?,
                (r.try_get(1usize)?, r.try_get(2usize)?),
            );
        }
        let mut ok = Vec::new();
        for &i in &starts {
            if let WriteOp::Start {
                run_id, owner, now, ..
            } = &ops[i]
            {
                let live = matches!(leases.get(run_id), Some((Some(o), Some(exp))) if o == owner && *exp >= us(*now));
                if live {
                    ok.push(i);
                } else {
                    results[i] = Err(StoreError::LeaseLost(run_id.clone()));
                }
            }
        }
        if !ok.is_empty() {
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO task_tries (run_id, task_id, try_number, started_at, worker) ",
            );
            qb.push_values(ok.iter().map(|i| &ops[*i]), |mut b, op| {
                if let WriteOp::Start {
                    run_id,
                    task_id,
                    try_number,
                    owner,
                    now,
                    ..
                } = op
                {
                    b.push_bind(run_id.clone())
                        .push_bind(task_id.clone())
                        .push_bind(i64::from(*try_number))
                        .push_bind(us(*now))
                        .push_bind(owner.clone());
                }
            });
            qb.build().execute(&mut *tx).await?;
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO task_instances (run_id, task_id, state, try_number, next_try_at, updated_at) ",
            );
            qb.push_values(ok.iter().map(|i| &ops[*i]), |mut b, op| {
                if let WriteOp::Start {
                    run_id,
                    task_id,
                    try_number,
                    now,
                    ..
                } = op
                {
                    b.push_bind(run_id.clone())
                        .push_bind(task_id.clone())
                        .push_bind("running")
                        .push_bind(i64::from(*try_number))
                        .push_bind(None::<i64>)
                        .push_bind(us(*now));
                }
            });
            qb.push(" ON CONFLICT (run_id, task_id) DO UPDATE SET state = excluded.state, try_number = excluded.try_number, next_try_at = NULL, updated_at = excluded.updated_at");
            qb.build().execute(&mut *tx).await?;
        }
    }
    // Try ends (with their logs).
    let fins: Vec<&FinishTry> = ops
        .iter()
        .filter_map(|o| match o {
            WriteOp::Finish { fin, .. } => Some(fin),
            _ => None,
        })
        .collect();
    for chunk in fins.chunks(200) {
        let mut qb = sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO task_tries (run_id, task_id, try_number, started_at, worker, ended_at, outcome, error) ",
        );
        qb.push_values(chunk, |mut b, f| {
            b.push_bind(f.run_id.clone())
                .push_bind(f.task_id.clone())
                .push_bind(i64::from(f.try_number))
                .push_bind(us(f.ended_at))
                .push_bind(String::new())
                .push_bind(us(f.ended_at))
                .push_bind(f.outcome.clone())
                .push_bind(f.error.clone());
        });
        qb.push(" ON CONFLICT (run_id, task_id, try_number) DO UPDATE SET ended_at = excluded.ended_at, outcome = excluded.outcome, error = excluded.error");
        qb.build().execute(&mut *tx).await?;
        let mut qb = sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO task_instances (run_id, task_id, state, try_number, next_try_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, f| {
            b.push_bind(f.run_id.clone())
                .push_bind(f.task_id.clone())
                .push_bind(f.state.as_str())
                .push_bind(i64::from(f.try_number))
                .push_bind(f.next_try_at.map(us))
                .push_bind(us(f.ended_at));
        });
        qb.push(" ON CONFLICT (run_id, task_id) DO UPDATE SET state = excluded.state, next_try_at = excluded.next_try_at, updated_at = excluded.updated_at");
        qb.build().execute(&mut *tx).await?;
    }
    for f in &fins {
        for (chunk_no, chunk) in f.logs.chunks(1000).enumerate() {
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO task_logs (run_id, task_id, try_number, seq, ts, stream, line) ",
            );
            qb.push_values(chunk.iter().enumerate(), |mut b, (i, l)| {
                b.push_bind(f.run_id.clone())
                    .push_bind(f.task_id.clone())
                    .push_bind(i64::from(f.try_number))
                    .push_bind(i64::try_from(chunk_no * 1000 + i).unwrap_or(i64::MAX))
                    .push_bind(us(l.ts))
                    .push_bind(l.stream.as_str())
                    .push_bind(l.line.clone());
            });
            qb.build().execute(&mut *tx).await?;
        }
    }
    // Batches of states (skipped, upstream_failed).
    let mut states: Vec<(&str, &str, TaskState, i64)> = Vec::new();
    for o in ops {
        if let WriteOp::States {
            run_id,
            states: st,
            now,
            ..
        } = o
        {
            for (t, s) in st {
                states.push((run_id, t, *s, us(*now)));
            }
        }
    }
    for chunk in states.chunks(500) {
        let mut qb = sqlx::QueryBuilder::<DB>::new(
            "INSERT INTO task_instances (run_id, task_id, state, try_number, next_try_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (run, task, state, now)| {
            b.push_bind(run.to_string())
                .push_bind(task.to_string())
                .push_bind(state.as_str())
                .push_bind(0i64)
                .push_bind(None::<i64>)
                .push_bind(*now);
        });
        qb.push(" ON CONFLICT (run_id, task_id) DO UPDATE SET state = excluded.state, next_try_at = NULL, updated_at = excluded.updated_at");
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(results)
}

batch_writer!(sqlite_writer, sqlx::Sqlite, sqlx::SqlitePool, "", None);
batch_writer!(
    pg_writer,
    sqlx::Postgres,
    sqlx::PgPool,
    " FOR SHARE",
    Some("SET LOCAL synchronous_commit = off")
);

/// SQLite store (WAL, one file).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    // SQLite has one writer; queueing writers here instead of in SQLite's
    // busy handler (which sleeps) keeps each transition sub-millisecond.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    writer: Writer,
}

impl SqliteStore {
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.write_lock.lock().await)
    }
}

impl SqliteStore {
    /// Open (creating the file and its folder) and migrate.
    pub async fn open(path: &std::path::Path) -> StoreResult<Self> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let write_lock: Arc<tokio::sync::Mutex<()>> = Arc::default();
        let (writer, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(sqlite_writer(pool.clone(), Some(write_lock.clone()), rx));
        Ok(SqliteStore {
            pool,
            write_lock,
            writer,
        })
    }
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    "sqlite",
    // Take the write lock first so the claim is serialised.
    "UPDATE runs SET state = state WHERE 1 = 0",
    "SELECT id, pipeline_id FROM runs WHERE (state = 'queued' OR (state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < $1))) \
     ORDER BY CASE state WHEN 'running' THEN 0 ELSE 1 END, logical_date, id LIMIT 500"
);

/// PostgreSQL store: several schedulers may share it.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    writer: Writer,
}

impl PgStore {
    async fn write_guard(&self) -> Option<()> {
        None
    }
}

impl PgStore {
    /// Connect and migrate.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let (writer, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(pg_writer(pool.clone(), None, rx));
        Ok(PgStore { pool, writer })
    }
}

sql_store!(
    PgStore,
    sqlx::Postgres,
    sqlx::PgPool,
    "postgres",
    // Serialise claims (rare and short) so max_active_runs is exact across schedulers.
    "SELECT pg_advisory_xact_lock(726173)",
    "SELECT id, pipeline_id FROM runs WHERE (state = 'queued' OR (state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < $1))) \
     ORDER BY CASE state WHEN 'running' THEN 0 ELSE 1 END, logical_date, id LIMIT 500 FOR UPDATE SKIP LOCKED"
);

/// Open the store a URL names: `postgres://…`, `sqlite:PATH`, or a plain path.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path =
            std::path::PathBuf::from_str(path).map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Arc::new(SqliteStore::open(&path).await?))
    }
}

/// The default store: `AULA_STATE_URL`, else `.aula/state.db`.
pub async fn open_default() -> StoreResult<Arc<dyn Store>> {
    let url = std::env::var("AULA_STATE_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ".aula/state.db".to_owned());
    open(&url).await
}
