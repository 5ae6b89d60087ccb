//! The pipeline model and its loader: YAML → typed [`Pipeline`], with every
//! problem of a file reported at once as `file:line:col: message`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::operator::{Registry, TaskConfig};
use crate::schedule::{Cron, Schedule, resolve_local};
use crate::template::Templates;
use crate::yaml::{Node, NodeKind, PathSeg, Pos};

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based.
    pub col: u32,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// When a task runs, given its upstreams' outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream succeeded (skipped upstreams skip this task).
    #[default]
    AllSuccess,
    /// Every upstream finished, whatever the outcome.
    AllDone,
    /// At least one upstream failed (runs as soon as one does).
    OneFailed,
    /// No upstream failed (skipped is fine).
    NoneFailed,
}

impl TriggerRule {
    const NAMES: &'static [&'static str] =
        &["all_success", "all_done", "one_failed", "none_failed"];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "all_success" => TriggerRule::AllSuccess,
            "all_done" => TriggerRule::AllDone,
            "one_failed" => TriggerRule::OneFailed,
            "none_failed" => TriggerRule::NoneFailed,
            _ => return None,
        })
    }
}

/// How a failed try is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RetryPolicy {
    /// Retries after the first try (so `retries + 1` tries at most).
    pub retries: u32,
    /// Delay before the first retry.
    pub delay: Duration,
    /// Double the delay on every further retry.
    pub exponential: bool,
    /// Cap on the delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            delay: Duration::from_secs(30),
            exponential: false,
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Delay after try number `failed_try` (1-based) failed.
    pub fn delay_after(&self, failed_try: u32) -> Duration {
        let d = if self.exponential {
            let factor = 2u32.saturating_pow(failed_try.saturating_sub(1).min(30));
            self.delay.saturating_mul(factor)
        } else {
            self.delay
        };
        d.min(self.max_delay)
    }
}

/// One task of a pipeline.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Unique within the pipeline.
    pub id: String,
    /// Registry kind.
    pub kind: String,
    /// Upstream task ids.
    pub depends_on: Vec<String>,
    /// When to run given upstream outcomes.
    pub trigger_rule: TriggerRule,
    /// Retries.
    pub retry: RetryPolicy,
    /// Per-try time limit.
    pub timeout: Option<Duration>,
    /// Concurrency pool.
    pub pool: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Kind-specific fields.
    pub config: TaskConfig,
    /// Where the task starts in its file.
    pub pos: Pos,
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Unique id.
    pub id: String,
    /// Free text.
    pub description: Option<String>,
    /// Who to call.
    pub owner: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// None: manual runs only.
    pub schedule: Option<Schedule>,
    /// IANA time zone of the schedule and of `ds`.
    pub timezone: Tz,
    /// First logical date.
    pub start_date: Option<DateTime<Utc>>,
    /// Last logical date.
    pub end_date: Option<DateTime<Utc>>,
    /// Create every missed interval, not only the latest.
    pub catchup: bool,
    /// Concurrent runs of this pipeline.
    pub max_active_runs: u32,
    /// How long after its interval closes a scheduled run starts, so late
    /// data can land first (`@daily` + `2h`: the run for day D covers
    /// [D 00:00, D+1 00:00) and starts at D+1 02:00). Zero by default.
    pub delay: Duration,
    /// Parameter defaults.
    pub params: BTreeMap<String, Value>,
    /// Tasks in file order.
    pub tasks: Vec<TaskSpec>,
    /// Source file.
    pub file: PathBuf,
    /// Task index by id.
    pub index: HashMap<String, usize>,
    /// Upstream indices per task.
    pub upstream: Vec<Vec<usize>>,
    /// Downstream indices per task.
    pub downstream: Vec<Vec<usize>>,
}

impl Pipeline {
    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&TaskSpec> {
        self.index.get(id).map(|i| &self.tasks[*i])
    }

    /// Indices of `root` and everything downstream of it.
    pub fn downstream_closure(&self, root: usize) -> Vec<usize> {
        let mut seen = vec![false; self.tasks.len()];
        let mut stack = vec![root];
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            out.push(i);
            stack.extend(self.downstream[i].iter().copied());
        }
        out.sort_unstable();
        out
    }

    /// Interpret a `--date` argument: a date (local midnight) or a date-time, in the pipeline's zone.
    pub fn parse_date(&self, s: &str) -> Result<DateTime<Utc>, String> {
        parse_instant(s, self.timezone).ok_or_else(|| {
            format!("invalid date `{s}`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][±HH:MM]")
        })
    }
}

/// Parse a date or date-time in a zone.
pub fn parse_instant(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(resolve_local(tz, d.and_time(NaiveTime::MIN)));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(resolve_local(tz, t));
        }
    }
    None
}

const PIPELINE_FIELDS: &[&str] = &[
    "id",
    "description",
    "owner",
    "tags",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "delay",
    "params",
    "defaults",
    "tasks",
];
const DEFAULT_FIELDS: &[&str] = &[
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "timeout",
    "pool",
];
const TASK_COMMON: &[&str] = &[
    "id",
    "kind",
    "description",
    "depends_on",
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "timeout",
    "pool",
];

struct Decoder<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn list_some(names: &[&str]) -> String {
    if names.len() > 12 {
        format!("{}, … ({} in all)", names[..12].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

impl Decoder<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        });
    }

    /// Mapping entries with duplicate-key and unknown-field checks.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        allowed: Option<&[&str]>,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let NodeKind::Map(entries) = &node.kind else {
            let expected = match allowed {
                Some(a) => format!("a mapping with {what} fields ({})", list_some(a)),
                None => format!("a mapping ({what})"),
            };
            let at = if path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            };
            self.err(
                node.pos,
                format!("{at}expected {expected}, found {}", node.type_name()),
            );
            return None;
        };
        let mut out: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.err(
                    k.pos,
                    format!(
                        "{}expected a string key, found {}",
                        if path.is_empty() {
                            String::new()
                        } else {
                            format!("{path}: ")
                        },
                        k.type_name()
                    ),
                );
                continue;
            };
            let at = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            if let Some(first) = seen.get(key) {
                self.err(
                    k.pos,
                    format!("{at}: duplicate key `{key}`, already set at {first}"),
                );
                continue;
            }
            seen.insert(key, k.pos);
            if let Some(allowed) = allowed
                && !allowed.contains(&key)
            {
                let p = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                self.err(
                    k.pos,
                    format!(
                        "{p}unknown field `{key}` in {what}, expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            out.push((key, k, v));
        }
        Some(out)
    }

    fn string(&mut self, node: &Node, path: &str, expected: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { value, .. } if !node.is_null() => Some(value.clone()),
            _ => {
                self.err(
                    node.pos,
                    format!("{path}: expected {expected}, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn opt_string(&mut self, node: &Node, path: &str, expected: &str) -> Option<String> {
        if node.is_null() {
            None
        } else {
            self.string(node, path, expected)
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match (&node.kind, node.to_json()) {
            (NodeKind::Scalar { plain: true, .. }, Value::Bool(b)) => Some(b),
            _ => {
                self.err(
                    node.pos,
                    format!("{path}: expected true or false, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u32> {
        match (&node.kind, node.to_json()) {
            (NodeKind::Scalar { plain: true, .. }, Value::Number(n))
                if n.as_u64().is_some_and(|v| v >= min && v <= max) =>
            {
                n.as_u64().and_then(|v| u32::try_from(v).ok())
            }
            (_, v) => {
                let found = match v {
                    Value::Number(n) => format!("{n}"),
                    _ => node.type_name().to_owned(),
                };
                self.err(
                    node.pos,
                    format!("{path}: expected a whole number from {min} to {max}, found {found}"),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let NodeKind::Scalar { value, .. } = &node.kind else {
            self.err(
                node.pos,
                format!(
                    "{path}: expected a duration like 30s, 5m or 1h, found {}",
                    node.type_name()
                ),
            );
            return None;
        };
        match crate::duration::parse(value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(node.pos, format!("{path}: {e}"));
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, path: &str, what: &str) -> Vec<(String, Pos)> {
        match &node.kind {
            _ if node.is_null() => Vec::new(),
            NodeKind::Scalar { value, .. } => vec![(value.clone(), node.pos)],
            NodeKind::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = self.string(item, &format!("{path}[{i}]"), what) {
                        out.push((s, item.pos));
                    }
                }
                out
            }
            NodeKind::Map(_) => {
                self.err(
                    node.pos,
                    format!("{path}: expected a list of {what}s, found a mapping"),
                );
                Vec::new()
            }
        }
    }

    fn date(&mut self, node: &Node, path: &str, tz: Tz) -> Option<DateTime<Utc>> {
        let s = self.string(
            node,
            path,
            "a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS)",
        )?;
        let parsed = parse_instant(&s, tz);
        if parsed.is_none() {
            self.err(node.pos, format!("{path}: invalid date `{s}`, expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (optionally with an offset)"));
        }
        parsed
    }

    fn retry_fields(
        &mut self,
        entries: &[(&str, &Node, &Node)],
        path: &str,
        base: RetryPolicy,
        timeout: Option<Duration>,
        pool: Option<String>,
    ) -> (RetryPolicy, Option<Duration>, Option<String>) {
        let (mut retry, mut timeout, mut pool) = (base, timeout, pool);
        for (key, _, v) in entries {
            let p = if path.is_empty() {
                (*key).to_owned()
            } else {
                format!("{path}.{key}")
            };
            match *key {
                "retries" => {
                    if let Some(n) = self.uint(v, &p, 0, 100) {
                        retry.retries = n;
                    }
                }
                "retry_delay" => {
                    if let Some(d) = self.duration(v, &p) {
                        retry.delay = d;
                    }
                }
                "retry_exponential_backoff" => {
                    if let Some(b) = self.boolean(v, &p) {
                        retry.exponential = b;
                    }
                }
                "max_retry_delay" => {
                    if let Some(d) = self.duration(v, &p) {
                        retry.max_delay = d;
                    }
                }
                "timeout" => {
                    if v.is_null() {
                        timeout = None;
                    } else if let Some(d) = self.duration(v, &p) {
                        if d.is_zero() {
                            self.err(v.pos, format!("{p}: expected a positive duration"));
                        }
                        timeout = Some(d);
                    }
                }
                "pool" => {
                    if let Some(s) = self.opt_string(v, &p, "a pool name") {
                        if valid_id(&s) {
                            pool = Some(s);
                        } else {
                            self.err(v.pos, format!("{p}: invalid pool name `{s}`, expected letters, digits, `_`, `-` or `.`"));
                        }
                    }
                }
                _ => {}
            }
        }
        (retry, timeout, pool)
    }
}

/// Walk every string in a JSON-ish YAML subtree.
fn each_string<'n>(
    node: &'n Node,
    path: &mut Vec<PathSeg>,
    f: &mut dyn FnMut(&'n Node, &str, &[PathSeg]),
) {
    match &node.kind {
        NodeKind::Scalar { value, .. } => f(node, value, path),
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                each_string(item, path, f);
                path.pop();
            }
        }
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                path.push(PathSeg::Key(k.as_str().unwrap_or("?").to_owned()));
                each_string(v, path, f);
                path.pop();
            }
        }
    }
}

fn path_text(base: &str, path: &[PathSeg]) -> String {
    let mut s = base.to_owned();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Parse and validate one pipeline file's text.
pub fn parse_pipeline(
    file: &Path,
    src: &str,
    registry: &Registry,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let root = match crate::yaml::parse(src) {
        Ok(n) => n,
        Err(e) => {
            return Err(vec![Diagnostic {
                file: file.to_path_buf(),
                line: e.pos.line,
                col: e.pos.col,
                message: e.message,
            }]);
        }
    };
    let mut d = Decoder {
        file,
        diags: Vec::new(),
    };
    let Some(entries) = d.fields(&root, "", "pipeline", Some(PIPELINE_FIELDS)) else {
        return Err(d.diags);
    };
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, k, v)| (*k, *v))
    };

    let id = match get("id") {
        Some((_, v)) => d.string(v, "id", "a pipeline id").and_then(|s| {
            if valid_id(&s) {
                Some(s)
            } else {
                d.err(
                    v.pos,
                    format!(
                        "id: invalid pipeline id `{s}`, expected letters, digits, `_`, `-` or `.`"
                    ),
                );
                None
            }
        }),
        None => {
            d.err(root.pos, "missing field `id`, expected the pipeline's id");
            None
        }
    };
    let description = get("description").and_then(|(_, v)| d.opt_string(v, "description", "text"));
    let owner =
        get("owner").and_then(|(_, v)| d.opt_string(v, "owner", "a name or e-mail address"));
    let tags = get("tags")
        .map(|(_, v)| d.string_list(v, "tags", "tag"))
        .unwrap_or_default()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let timezone = match get("timezone") {
        None => Tz::UTC,
        Some((_, v)) => match d.string(v, "timezone", "an IANA time zone like Europe/Madrid") {
            Some(s) => match s.parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    d.err(v.pos, format!("timezone: unknown time zone `{s}`, expected an IANA name like UTC, Europe/Madrid or America/New_York"));
                    Tz::UTC
                }
            },
            None => Tz::UTC,
        },
    };
    let mut schedule_pos = None;
    let schedule = match get("schedule") {
        Some((_, v)) if !v.is_null() => {
            schedule_pos = Some(v.pos);
            d.string(
                v,
                "schedule",
                "a cron expression or @hourly/@daily/@weekly/@monthly",
            )
            .and_then(|s| match Cron::parse(&s) {
                Ok(c) => Some(Schedule::new(c, timezone)),
                Err(e) => {
                    d.err(v.pos, format!("schedule: {e}"));
                    None
                }
            })
        }
        _ => None,
    };
    let start_date = get("start_date")
        .filter(|(_, v)| !v.is_null())
        .and_then(|(_, v)| d.date(v, "start_date", timezone));
    let end_date = get("end_date")
        .filter(|(_, v)| !v.is_null())
        .and_then(|(_, v)| d.date(v, "end_date", timezone));
    if let (Some(s), Some(e), Some((_, v))) = (start_date, end_date, get("end_date"))
        && e < s
    {
        d.err(v.pos, "end_date: expected a date on or after start_date");
    }
    if let Some(pos) = schedule_pos
        && get("start_date").is_none()
    {
        d.err(pos, "schedule: a scheduled pipeline needs `start_date` (YYYY-MM-DD), the first logical date");
    }
    let catchup = get("catchup")
        .and_then(|(_, v)| d.boolean(v, "catchup"))
        .unwrap_or(false);
    let max_active_runs = get("max_active_runs")
        .and_then(|(_, v)| d.uint(v, "max_active_runs", 1, 10_000))
        .unwrap_or(1);
    let delay = get("delay")
        .and_then(|(_, v)| d.duration(v, "delay"))
        .unwrap_or(Duration::ZERO);
    let mut params = BTreeMap::new();
    if let Some((_, v)) = get("params")
        && !v.is_null()
        && let Some(p) = d.fields(v, "params", "parameter defaults", None)
    {
        for (k, kn, val) in p {
            if !valid_id(k) || k.contains('.') || k.contains('-') {
                d.err(
                    kn.pos,
                    format!(
                        "params: invalid parameter name `{k}`, expected letters, digits and `_`"
                    ),
                );
            }
            params.insert(k.to_owned(), val.to_json());
        }
    }
    let param_names: BTreeSet<String> = params.keys().cloned().collect();
    let (mut retry, mut timeout, mut pool) = (RetryPolicy::default(), None, None);
    if let Some((_, v)) = get("defaults")
        && !v.is_null()
        && let Some(e) = d.fields(v, "defaults", "defaults", Some(DEFAULT_FIELDS))
    {
        (retry, timeout, pool) = d.retry_fields(&e, "defaults", retry, timeout, pool);
    }

    // Tasks.
    let templates = Templates::new();
    let mut tasks: Vec<TaskSpec> = Vec::new();
    let mut dep_pos: Vec<Vec<Pos>> = Vec::new();
    let mut ords: Vec<usize> = Vec::new();
    match get("tasks") {
        None => d.err(root.pos, "missing field `tasks`, expected a list of tasks"),
        Some((_, v)) => match &v.kind {
            NodeKind::Seq(items) if items.is_empty() => {
                d.err(v.pos, "tasks: expected at least one task")
            }
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("tasks[{i}]");
                    let Some(entries) = d.fields(item, &path, "task", None) else {
                        continue;
                    };
                    let tget = |name: &str| {
                        entries
                            .iter()
                            .find(|(k, _, _)| *k == name)
                            .map(|(_, _, v)| *v)
                    };
                    let tid = match tget("id") {
                        Some(v) => d.string(v, &format!("{path}.id"), "a task id").and_then(|s| {
                            if valid_id(&s) {
                                Some(s)
                            } else {
                                d.err(v.pos, format!("{path}.id: invalid task id `{s}`, expected letters, digits, `_`, `-` or `.`"));
                                None
                            }
                        }),
                        None => {
                            d.err(item.pos, format!("{path}: missing field `id`, expected the task's id"));
                            None
                        }
                    };
                    let kind = match tget("kind") {
                        Some(v) => d.string(v, &format!("{path}.kind"), "a task kind").and_then(|k| {
                            if registry.get(&k).is_some() {
                                Some(k)
                            } else {
                                d.err(v.pos, format!("{path}.kind: unknown task kind `{k}`, expected one of: {}", registry.kinds().join(", ")));
                                None
                            }
                        }),
                        None => {
                            d.err(item.pos, format!("{path}: missing field `kind`, expected one of: {}", registry.kinds().join(", ")));
                            None
                        }
                    };
                    let deps = tget("depends_on")
                        .map(|v| d.string_list(v, &format!("{path}.depends_on"), "task id"))
                        .unwrap_or_default();
                    let trigger_rule = match tget("trigger_rule") {
                        None => TriggerRule::AllSuccess,
                        Some(v) => match d.string(v, &format!("{path}.trigger_rule"), "a trigger rule") {
                            Some(s) => TriggerRule::parse(&s).unwrap_or_else(|| {
                                d.err(v.pos, format!("{path}.trigger_rule: unknown trigger rule `{s}`, expected one of: {}", TriggerRule::NAMES.join(", ")));
                                TriggerRule::AllSuccess
                            }),
                            None => TriggerRule::AllSuccess,
                        },
                    };
                    let description = tget("description")
                        .and_then(|v| d.opt_string(v, &format!("{path}.description"), "text"));
                    let common: Vec<(&str, &Node, &Node)> = entries
                        .iter()
                        .filter(|(k, _, _)| TASK_COMMON.contains(k))
                        .copied()
                        .collect();
                    let (t_retry, t_timeout, t_pool) =
                        d.retry_fields(&common, &path, retry, timeout, pool.clone());
                    // Kind-specific config.
                    let mut config = TaskConfig::new();
                    for (k, _, v) in entries.iter().filter(|(k, _, _)| !TASK_COMMON.contains(k)) {
                        config.insert((*k).to_owned(), v.to_json());
                    }
                    if let Some(op) = kind.as_ref().and_then(|k| registry.get(k)) {
                        for e in op.validate(&config) {
                            let (node, key) = item.locate(&e.path);
                            let pos = if e.at_key {
                                key.map_or(node.pos, |k| k.pos)
                            } else {
                                node.pos
                            };
                            let p = path_text(&path, if e.at_key { &[] } else { &e.path });
                            let hint = if e.at_key && e.message.starts_with("unknown field") {
                                format!(" (or a common task field: {})", TASK_COMMON.join(", "))
                            } else {
                                String::new()
                            };
                            d.err(pos, format!("{p}: {}{hint}", e.message));
                        }
                    }
                    // Templates in kind-specific fields.
                    for (k, _, v) in entries.iter().filter(|(k, _, _)| !TASK_COMMON.contains(k)) {
                        let mut p = vec![PathSeg::Key((*k).to_owned())];
                        let mut found = Vec::new();
                        each_string(v, &mut p, &mut |n, s, path| {
                            if let Err(e) = templates.check(s, &param_names) {
                                found.push((n.pos, path_text(&format!("tasks[{i}]"), path), e));
                            }
                        });
                        for (pos, p, e) in found {
                            d.err(pos, format!("{p}: {e}"));
                        }
                    }
                    if let (Some(id), Some(kind)) = (tid, kind) {
                        dep_pos.push(deps.iter().map(|(_, p)| *p).collect());
                        ords.push(i);
                        tasks.push(TaskSpec {
                            id,
                            kind,
                            depends_on: deps.into_iter().map(|(s, _)| s).collect(),
                            trigger_rule,
                            retry: t_retry,
                            timeout: t_timeout,
                            pool: t_pool,
                            description,
                            config,
                            pos: item.pos,
                        });
                    } else if let Some(id) =
                        tget("id").and_then(|v| v.as_str()).filter(|s| valid_id(s))
                    {
                        // Keep the id known so that its dependants are not reported as well.
                        dep_pos.push(Vec::new());
                        ords.push(i);
                        tasks.push(TaskSpec {
                            id: id.to_owned(),
                            kind: String::new(),
                            depends_on: Vec::new(),
                            trigger_rule,
                            retry: t_retry,
                            timeout: t_timeout,
                            pool: t_pool,
                            description: None,
                            config,
                            pos: item.pos,
                        });
                    }
                }
            }
            _ => d.err(
                v.pos,
                format!("tasks: expected a list of tasks, found {}", v.type_name()),
            ),
        },
    }

    // Graph checks.
    let mut index: HashMap<String, usize> = HashMap::with_capacity(tasks.len());
    let mut dup = vec![false; tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        if let Some(first) = index.get(&t.id) {
            let fp = tasks[*first].pos;
            let pos = id_pos(&root, ords[i]).unwrap_or(t.pos);
            d.err(
                pos,
                format!(
                    "tasks[{}].id: duplicate task id `{}`, already defined at {fp}",
                    ords[i], t.id
                ),
            );
            dup[i] = true;
        } else {
            index.insert(t.id.clone(), i);
        }
    }
    let n = tasks.len();
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    let all_ids: Vec<&str> = {
        let mut v: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for (i, t) in tasks.iter().enumerate() {
        if dup[i] {
            continue;
        }
        let ord = ords[i];
        for (j, dep) in t.depends_on.iter().enumerate() {
            let pos = dep_pos[i].get(j).copied().unwrap_or(t.pos);
            match index.get(dep) {
                None => d.err(
                    pos,
                    format!(
                        "tasks[{ord}].depends_on: unknown task `{dep}`, expected one of: {}",
                        list_some(&all_ids)
                    ),
                ),
                Some(&u) if u == i => d.err(
                    pos,
                    format!("tasks[{ord}].depends_on: task `{dep}` depends on itself"),
                ),
                Some(&u) => {
                    if !upstream[i].contains(&u) {
                        upstream[i].push(u);
                        downstream[u].push(i);
                    }
                }
            }
        }
    }
    for cycle in find_cycles(&upstream) {
        // Report at the dependency entry that closes the cycle, on the first task of it.
        let first = cycle[0];
        let next = cycle[1 % cycle.len()];
        let names: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&first))
            .map(|i| tasks[*i].id.as_str())
            .collect();
        let dep_idx = tasks[first]
            .depends_on
            .iter()
            .position(|x| *x == tasks[next].id);
        let pos = dep_idx
            .and_then(|j| dep_pos[first].get(j).copied())
            .unwrap_or(tasks[first].pos);
        d.err(
            pos,
            format!(
                "tasks[{}].depends_on: dependency cycle: {}",
                ords[first],
                names.join(" -> ")
            ),
        );
    }

    if !d.diags.is_empty() {
        d.diags.sort_by_key(|x| (x.line, x.col));
        return Err(d.diags);
    }
    let id = id.unwrap_or_default();
    Ok(Pipeline {
        id,
        description,
        owner,
        tags,
        schedule,
        timezone,
        start_date,
        end_date,
        catchup,
        max_active_runs,
        delay,
        params,
        tasks,
        file: file.to_path_buf(),
        index,
        upstream,
        downstream,
    })
}

fn id_pos(root: &Node, i: usize) -> Option<Pos> {
    let (n, _) = root.locate(&[
        PathSeg::Key("tasks".into()),
        PathSeg::Index(i),
        PathSeg::Key("id".into()),
    ]);
    Some(n.pos)
}

/// Cycles in a graph given as upstream lists: one per strongly connected
/// component, as the task indices along the cycle (iterative; deep chains are fine).
/// Each returned cycle `[a, b, c]` means a depends on b, b on c, and c on a.
fn find_cycles(upstream: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = upstream.len();
    // 0 = new, 1 = on stack, 2 = done
    let mut color = vec![0u8; n];
    let mut cycles = Vec::new();
    let mut in_cycle = vec![false; n];
    for s in 0..n {
        if color[s] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(s, 0)];
        color[s] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if *next < upstream[v].len() {
                let u = upstream[v][*next];
                *next += 1;
                match color[u] {
                    0 => {
                        color[u] = 1;
                        stack.push((u, 0));
                    }
                    1 => {
                        let start = stack.iter().position(|(x, _)| *x == u).unwrap_or(0);
                        let cycle: Vec<usize> = stack[start..].iter().map(|(x, _)| *x).collect();
                        if !cycle.iter().any(|x| in_cycle[*x]) {
                            for x in &cycle {
                                in_cycle[*x] = true;
                            }
                            cycles.push(cycle);
                        }
                    }
                    _ => {}
                }
            } else {
                color[v] = 2;
                stack.pop();
            }
        }
    }
    cycles
}

/// Load one file.
pub fn load_file(path: &Path, registry: &Registry) -> Result<Pipeline, Vec<Diagnostic>> {
    match std::fs::read_to_string(path) {
        Ok(src) => parse_pipeline(path, &src, registry),
        Err(e) => Err(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot read file: {e}"),
        }]),
    }
}

/// Pipeline files (`*.yaml`, `*.yml`) under the given files or folders, sorted.
pub fn pipeline_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                match std::fs::read_dir(&dir) {
                    Ok(rd) => {
                        for entry in rd.flatten() {
                            let path = entry.path();
                            if path.is_dir() {
                                stack.push(path);
                            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                                files.push(path);
                            }
                        }
                    }
                    Err(e) => errs.push(Diagnostic {
                        file: dir.clone(),
                        line: 1,
                        col: 1,
                        message: format!("cannot read folder: {e}"),
                    }),
                }
            }
        } else if p.exists() {
            files.push(p.clone());
        } else {
            errs.push(Diagnostic {
                file: p.clone(),
                line: 1,
                col: 1,
                message: "no such file or folder".into(),
            });
        }
    }
    files.sort();
    files.dedup();
    if errs.is_empty() {
        Ok(files)
    } else {
        Err(errs)
    }
}

/// The result of loading a folder: good pipelines and every problem found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Valid pipelines by id.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Load every pipeline file under `paths`; duplicate pipeline ids across files are errors.
pub fn load_paths(paths: &[PathBuf], registry: &Registry) -> Loaded {
    let mut out = Loaded::default();
    let files = match pipeline_files(paths) {
        Ok(f) => f,
        Err(e) => {
            out.diagnostics = e;
            return out;
        }
    };
    for f in files {
        match load_file(&f, registry) {
            Ok(p) => {
                if let Some(prev) = out.pipelines.get(&p.id) {
                    out.diagnostics.push(Diagnostic {
                        file: f.clone(),
                        line: 1,
                        col: 1,
                        message: format!(
                            "duplicate pipeline id `{}`, already defined in {}",
                            p.id,
                            prev.file.display()
                        ),
                    });
                } else {
                    out.pipelines.insert(p.id.clone(), p);
                }
            }
            Err(mut e) => out.diagnostics.append(&mut e),
        }
    }
    out
}
