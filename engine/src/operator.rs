//! Task kinds: the [`Operator`] trait and its registry, plus the built-in
//! kinds `noop`, `command` and `sleep`.
//!
//! Other crates (connectors, SQL transforms) implement [`Operator`] and are
//! added to a [`Registry`] before pipelines are loaded, so that their
//! configuration is checked at load time, with line and column, not at 3 a.m.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::template::Templates;
use crate::yaml::PathSeg;

/// A boxed future, so that [`Operator`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Kind-specific task fields (everything but the common ones like `id` and `depends_on`).
pub type TaskConfig = serde_json::Map<String, Value>;

/// A problem in a task's kind-specific config, found at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path below the task (e.g. `["env", "HOME"]`).
    pub path: Vec<PathSeg>,
    /// Point at the key rather than its value (unknown fields).
    pub at_key: bool,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error about the value at `path`.
    pub fn at(path: &[&str], message: impl Into<String>) -> Self {
        ConfigError {
            path: path.iter().map(|s| PathSeg::Key((*s).to_owned())).collect(),
            at_key: false,
            message: message.into(),
        }
    }

    /// An error about the value at a path with indices.
    pub fn at_path(path: Vec<PathSeg>, message: impl Into<String>) -> Self {
        ConfigError {
            path,
            at_key: false,
            message: message.into(),
        }
    }

    /// Check that `config` only has the keys in `allowed`.
    pub fn unknown_fields(kind: &str, config: &TaskConfig, allowed: &[&str]) -> Vec<ConfigError> {
        config
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| ConfigError {
                path: vec![PathSeg::Key(k.clone())],
                at_key: true,
                message: if allowed.is_empty() {
                    format!("unknown field `{k}`: kind `{kind}` takes no fields of its own")
                } else {
                    format!(
                        "unknown field `{k}` for kind `{kind}`, expected one of: {}",
                        allowed.join(", ")
                    )
                },
            })
            .collect()
    }
}

/// Why a task try failed, and whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// What happened.
    pub message: String,
    /// False when retrying cannot help (bad config, bad input).
    pub retryable: bool,
}

impl TaskError {
    /// A failure that may pass on another try (network, exit code, timeout).
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that another try will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output of a process.
    Stdout,
    /// Standard error of a process.
    Stderr,
    /// Messages from the engine or the operator itself.
    System,
}

impl LogStream {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Self {
        match s {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            _ => LogStream::System,
        }
    }
}

/// One line of a task's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// When it was written.
    pub ts: DateTime<Utc>,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, without a trailing newline.
    pub line: String,
}

/// The task log of one try. Lines are buffered and written to the run-state
/// store with the try's outcome (one write, not one per line).
#[derive(Debug, Clone, Default)]
pub struct TaskLog {
    lines: Arc<Mutex<Vec<LogLine>>>,
    echo: bool,
}

impl TaskLog {
    /// An empty log; `echo` also prints each line to stderr (foreground runs with `--verbose`).
    pub fn new(echo: bool) -> Self {
        TaskLog {
            lines: Arc::default(),
            echo,
        }
    }

    /// Append a line.
    pub fn write(&self, stream: LogStream, line: impl Into<String>) {
        let line = line.into();
        if self.echo {
            eprintln!("    | {line}");
        }
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(LogLine {
                ts: Utc::now(),
                stream,
                line,
            });
        }
    }

    /// Take the buffered lines.
    pub fn drain(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// Cooperative cancellation (timeouts, SIGTERM past the grace period, a lost lease).
#[derive(Debug, Clone)]
pub struct Cancel {
    rx: tokio::sync::watch::Receiver<bool>,
}

/// The sending half of [`Cancel`].
#[derive(Debug)]
pub struct CancelHandle {
    tx: tokio::sync::watch::Sender<bool>,
}

impl Cancel {
    /// A new signal and the handle that fires it.
    pub fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (CancelHandle { tx }, Cancel { rx })
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when cancelled (never, if the handle is dropped without firing).
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            futures::future::pending::<()>().await;
        }
    }
}

impl CancelHandle {
    /// Fire.
    pub fn cancel(&self) {
        let _ = self.tx.send(true);
    }
}

/// Everything a task try sees.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// Run id.
    pub run_id: String,
    /// Pipeline id.
    pub pipeline_id: String,
    /// Task id.
    pub task_id: String,
    /// Logical date (= data interval start).
    pub logical_date: DateTime<Utc>,
    /// Data interval start (inclusive).
    pub data_interval_start: DateTime<Utc>,
    /// Data interval end (exclusive).
    pub data_interval_end: DateTime<Utc>,
    /// The pipeline's time zone; `ds` is the logical date's day in it.
    pub timezone: chrono_tz::Tz,
    /// Parameters: the pipeline's defaults overridden by the run's.
    pub params: BTreeMap<String, Value>,
    /// 1 for the first try.
    pub try_number: u32,
    /// The try's log.
    pub log: TaskLog,
    /// Fires on timeout or shutdown.
    pub cancel: Cancel,
    /// Template renderer.
    pub templates: Arc<Templates>,
}

impl TaskContext {
    /// `YYYY-MM-DD` of the logical date in the pipeline's time zone.
    pub fn ds(&self) -> String {
        self.logical_date
            .with_timezone(&self.timezone)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The template context.
    pub fn template_vars(&self) -> Value {
        let local = |t: DateTime<Utc>| t.with_timezone(&self.timezone).to_rfc3339();
        serde_json::json!({
            "ds": self.ds(),
            "ds_nodash": self.ds().replace('-', ""),
            "ts": local(self.logical_date),
            "logical_date": local(self.logical_date),
            "data_interval_start": local(self.data_interval_start),
            "data_interval_end": local(self.data_interval_end),
            "params": self.params,
            "pipeline_id": self.pipeline_id,
            "task_id": self.task_id,
            "run_id": self.run_id,
            "try_number": self.try_number,
        })
    }

    /// Render a templated string with this context.
    pub fn render(&self, template: &str) -> Result<String, TaskError> {
        self.templates
            .render(template, &self.template_vars())
            .map_err(TaskError::fatal)
    }
}

/// A task kind. Implementations must be cheap to share: one instance serves every task of its kind.
pub trait Operator: Send + Sync + 'static {
    /// The `kind:` name in pipeline files.
    fn kind(&self) -> &'static str;

    /// Check the kind-specific fields at load time. Paths in errors are
    /// relative to the task, so the loader can report line and column.
    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError>;

    /// Run one try. Must return promptly once `ctx.cancel` fires.
    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>>;
}

/// The task kinds a loader and executor know.
#[derive(Clone)]
pub struct Registry {
    ops: BTreeMap<String, Arc<dyn Operator>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ops.keys()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// No kinds at all.
    pub fn empty() -> Self {
        Registry {
            ops: BTreeMap::new(),
        }
    }

    /// `noop`, `command` and `sleep`.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(Arc::new(Noop));
        r.register(Arc::new(Command));
        r.register(Arc::new(Sleep));
        r
    }

    /// Add (or replace) a kind.
    pub fn register(&mut self, op: Arc<dyn Operator>) {
        self.ops.insert(op.kind().to_owned(), op);
    }

    /// Look a kind up.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Operator>> {
        self.ops.get(kind)
    }

    /// Known kind names, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        self.ops.keys().map(String::as_str).collect()
    }
}

/// Does nothing, successfully. For joins, markers and benchmarks.
#[derive(Debug)]
pub struct Noop;

impl Operator for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        ConfigError::unknown_fields("noop", config, &[])
    }

    fn execute<'a>(
        &'a self,
        _config: &'a TaskConfig,
        _ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Waits for `duration`, then succeeds. For tests and demos.
#[derive(Debug)]
pub struct Sleep;

impl Operator for Sleep {
    fn kind(&self) -> &'static str {
        "sleep"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let mut errs = ConfigError::unknown_fields("sleep", config, &["duration"]);
        match config.get("duration") {
            None => errs.push(ConfigError::at(
                &[],
                "missing field `duration` for kind `sleep`, expected a duration like 30s, 5m or 1h",
            )),
            Some(Value::String(s)) => {
                if let Err(e) = crate::duration::parse(s) {
                    errs.push(ConfigError::at(&["duration"], e));
                }
            }
            Some(v) => errs.push(ConfigError::at(
                &["duration"],
                format!(
                    "expected a duration like 30s, 5m or 1h, found {}",
                    json_type(v)
                ),
            )),
        }
        errs
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let d = config
                .get("duration")
                .and_then(Value::as_str)
                .ok_or_else(|| TaskError::fatal("sleep: missing duration"))
                .and_then(|s| crate::duration::parse(s).map_err(TaskError::fatal))?;
            tokio::select! {
                _ = tokio::time::sleep(d) => Ok(()),
                _ = ctx.cancel.cancelled() => Err(TaskError::retryable("cancelled")),
            }
        })
    }
}

/// Runs a process. `command` is a string (run by `sh -c`) or a list (argv);
/// `env` maps variable names to values; `cwd` sets the working directory.
/// Every string is a template. Exit code 0 succeeds; anything else fails (retryable).
#[derive(Debug)]
pub struct Command;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Operator for Command {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn validate(&self, config: &TaskConfig) -> Vec<ConfigError> {
        let mut errs = ConfigError::unknown_fields("command", config, &["command", "env", "cwd"]);
        match config.get("command") {
            None => errs.push(ConfigError::at(&[], "missing field `command` for kind `command`, expected a string (run by sh -c) or a list of arguments")),
            Some(Value::String(s)) if s.trim().is_empty() => errs.push(ConfigError::at(&["command"], "expected a non-empty command")),
            Some(Value::String(_)) => {}
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    errs.push(ConfigError::at(&["command"], "expected a non-empty list of arguments"));
                }
                for (i, item) in items.iter().enumerate() {
                    if !matches!(item, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                        errs.push(ConfigError::at_path(
                            vec![PathSeg::Key("command".into()), PathSeg::Index(i)],
                            format!("expected a string argument, found {}", json_type(item)),
                        ));
                    }
                }
            }
            Some(v) => errs.push(ConfigError::at(&["command"], format!("expected a string or a list of arguments, found {}", json_type(v)))),
        }
        match config.get("env") {
            None => {}
            Some(Value::Object(vars)) => {
                for (k, v) in vars {
                    if k.is_empty() || k.contains('=') || k.contains('\0') {
                        errs.push(ConfigError::at(
                            &["env", k],
                            format!("`{k}` is not a valid environment variable name"),
                        ));
                    }
                    if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                        errs.push(ConfigError::at(
                            &["env", k],
                            format!("expected a string value, found {}", json_type(v)),
                        ));
                    }
                }
            }
            Some(v) => errs.push(ConfigError::at(
                &["env"],
                format!(
                    "expected a mapping of variable names to values, found {}",
                    json_type(v)
                ),
            )),
        }
        match config.get("cwd") {
            None | Some(Value::String(_)) => {}
            Some(v) => errs.push(ConfigError::at(
                &["cwd"],
                format!("expected a directory path, found {}", json_type(v)),
            )),
        }
        errs
    }

    fn execute<'a>(
        &'a self,
        config: &'a TaskConfig,
        ctx: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(run_command(config, ctx))
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn run_command(config: &TaskConfig, ctx: &TaskContext) -> Result<(), TaskError> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let argv: Vec<String> = match config.get("command") {
        Some(Value::String(s)) => vec!["sh".into(), "-c".into(), ctx.render(s)?],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| ctx.render(&scalar_text(i)))
            .collect::<Result<_, _>>()?,
        _ => return Err(TaskError::fatal("command: missing `command`")),
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(TaskError::fatal("command: empty argument list"));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .env("AULA_PIPELINE_ID", &ctx.pipeline_id)
        .env("AULA_TASK_ID", &ctx.task_id)
        .env("AULA_RUN_ID", &ctx.run_id)
        .env("AULA_DS", ctx.ds())
        .env("AULA_TRY_NUMBER", ctx.try_number.to_string());
    if let Some(Value::Object(vars)) = config.get("env") {
        for (k, v) in vars {
            cmd.env(k, ctx.render(&scalar_text(v))?);
        }
    }
    if let Some(Value::String(dir)) = config.get("cwd") {
        cmd.current_dir(ctx.render(dir)?);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| TaskError::fatal(format!("cannot start `{program}`: {e}")))?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let log_out = ctx.log.clone();
    let log_err = ctx.log.clone();
    let pump_out = async move {
        if let Some(out) = out {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                log_out.write(LogStream::Stdout, l);
            }
        }
    };
    let pump_err = async move {
        if let Some(err) = err {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                log_err.write(LogStream::Stderr, l);
            }
        }
    };
    let wait = async {
        let (status, (), ()) = tokio::join!(child.wait(), pump_out, pump_err);
        status
    };
    tokio::select! {
        status = wait => {
            let status = status.map_err(|e| TaskError::retryable(format!("waiting for `{program}`: {e}")))?;
            if status.success() {
                Ok(())
            } else {
                Err(TaskError::retryable(match status.code() {
                    Some(code) => format!("`{program}` exited with code {code}"),
                    None => format!("`{program}` was killed by a signal"),
                }))
            }
        }
        _ = ctx.cancel.cancelled() => {
            // kill_on_drop reaps the child when the future is dropped.
            Err(TaskError::retryable("cancelled"))
        }
    }
}
