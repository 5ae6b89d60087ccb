//! The education-CRM models on DataFusion against the same SQL on DuckDB,
//! over the same Parquet files, measured in one run (issue #5's benchmark):
//!
//! ```text
//! scripts/bench marts                      # 200k students, 1M payments, 10M events
//! cargo run --release -p aula-sql --example mart_bench -- \
//!     [--students N] [--payments N] [--events N] [--runs R] [--dir DIR] [--python PY]
//! ```
//!
//! The raw tables (the shape the extractors write: several versions of some
//! leads and payments, duplicated events) are generated once by DuckDB into
//! `DIR/raw` and reused. Then each engine runs, `R` times, the shipped
//! staging models (raw Parquet → staging Parquet) and the six marts (staging
//! Parquet → a result in memory): the marts of both engines read the staging
//! files DataFusion wrote. The figure per model is the best of `R`.
//! `cohort_retention` is the shipped DataFusion + Polars transform on our
//! side and an equivalent SQL query on DuckDB's. `course_engagement_daily`
//! is run as a full rebuild (lookback from 1970), its heaviest form.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver: failing loudly is the point

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aula_sql::LakeSession;
use aula_sql::transforms::CohortRetention;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::ParquetReadOptions;

const DS: &str = "2026-11-30";
const INTERVAL_START: &str = "2026-11-30T00:00:00+00:00";
const INTERVAL_END: &str = "2026-12-01T00:00:00+00:00";
const THROUGH_MONTH: i64 = 2026 * 12 + 11 - 1;

const RAW: [&str; 7] = [
    "crm_courses",
    "crm_campaigns",
    "crm_leads",
    "crm_students",
    "crm_enrollments",
    "crm_payments",
    "learning_activity",
];
const STAGING: [&str; 7] = [
    "courses",
    "campaigns",
    "leads",
    "students",
    "enrollments",
    "payments",
    "activity",
];
const MARTS: [&str; 5] = [
    "funnel_daily",
    "revenue_monthly",
    "course_engagement_daily",
    "campaign_performance",
    "student_360",
];

struct Args {
    students: u64,
    payments: u64,
    events: u64,
    runs: usize,
    dir: Option<PathBuf>,
    python: String,
}

fn args() -> Args {
    let mut a = Args {
        students: 200_000,
        payments: 1_000_000,
        events: 10_000_000,
        runs: 2,
        dir: None,
        python: std::env::var("AULA_BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = || value.replace('_', "").parse::<u64>().expect("a number");
        match flag.as_str() {
            "--students" => a.students = num(),
            "--payments" => a.payments = num(),
            "--events" => a.events = num(),
            "--runs" => a.runs = num().max(1) as usize,
            "--dir" => a.dir = Some(PathBuf::from(&value)),
            "--python" => a.python = value,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn models_dir() -> PathBuf {
    std::env::var_os("AULA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .join("pipelines")
        .join("sql")
}

fn render(path: &str) -> String {
    let file = models_dir().join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    minijinja::Environment::new()
        .render_str(
            &text,
            minijinja::context! {
                ds => DS,
                data_interval_start => INTERVAL_START,
                data_interval_end => INTERVAL_END,
                lookback_start => "1970-01-01T00:00:00+00:00",
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// DuckDB's form of the Polars cohort-retention transform: cohort = month
/// of a student's first enrollment, one row per cohort and month since it
/// up to the logical date's month, zeros included.
fn cohort_sql() -> String {
    format!(
        "WITH firsts AS (
            SELECT student_id, min(enrolled_at) AS first_at FROM staging.enrollments
            WHERE enrolled_at < TIMESTAMP '{INTERVAL_END}' GROUP BY student_id),
         cohorts AS (
            SELECT student_id, CAST(year(first_at) * 12 + month(first_at) - 1 AS INT) AS cohort_idx FROM firsts),
         active AS (
            SELECT DISTINCT student_id, CAST(year(occurred_at) * 12 + month(occurred_at) - 1 AS INT) AS active_idx
            FROM staging.activity WHERE occurred_at < TIMESTAMP '{INTERVAL_END}'),
         sizes AS (SELECT cohort_idx, count(*) AS cohort_size FROM cohorts GROUP BY cohort_idx),
         grid AS (
            SELECT cohort_idx, cohort_size, unnest(range(0, {THROUGH_MONTH} - cohort_idx + 1)) AS months_since
            FROM sizes),
         hits AS (
            SELECT c.cohort_idx, a.active_idx - c.cohort_idx AS months_since, count(*) AS active_students
            FROM cohorts AS c JOIN active AS a ON a.student_id = c.student_id
            WHERE a.active_idx >= c.cohort_idx AND a.active_idx <= {THROUGH_MONTH}
            GROUP BY 1, 2)
         SELECT g.cohort_idx, g.months_since, g.cohort_size, coalesce(h.active_students, 0) AS active_students
         FROM grid AS g LEFT JOIN hits AS h USING (cohort_idx, months_since)
         ORDER BY 1, 2"
    )
}

#[derive(Default, Clone, Copy)]
struct Figure {
    seconds: f64,
    rows: u64,
}

fn keep_best(best: &mut BTreeMap<String, Figure>, name: &str, f: Figure) {
    best.entry(name.to_owned())
        .and_modify(|b| {
            if f.seconds < b.seconds {
                *b = f;
            }
        })
        .or_insert(f);
}

fn parquet_glob(dir: &Path) -> String {
    format!("{}/*.parquet", dir.display())
}

async fn register_parquet(session: &LakeSession, name: &str, dir: &Path) {
    let frame = session
        .context()
        .read_parquet(format!("{}/", dir.display()), ParquetReadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    session
        .register_table(name, frame.into_view())
        .expect("register");
}

async fn datafusion_run(dir: &Path, best: &mut BTreeMap<String, Figure>) {
    let session = LakeSession::new();
    for t in RAW {
        register_parquet(&session, &format!("raw.{t}"), &dir.join("raw").join(t)).await;
    }
    for t in STAGING {
        let sql = render(&format!("staging/{t}.sql"));
        let out = dir.join("staging").join(t);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("staging dir");
        let start = Instant::now();
        let frame = session.query(t, &sql).await.expect("plan");
        let written = frame
            .write_parquet(
                &format!("{}/", out.display()),
                DataFrameWriteOptions::new(),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("staging.{t}: {e}"));
        let seconds = start.elapsed().as_secs_f64();
        let rows = written
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::UInt64Array>()
            })
            .map(|a| a.value(0))
            .unwrap_or(0);
        keep_best(best, &format!("staging.{t}"), Figure { seconds, rows });
    }
    for t in STAGING {
        register_parquet(
            &session,
            &format!("staging.{t}"),
            &dir.join("staging").join(t),
        )
        .await;
    }
    for m in MARTS {
        let sql = render(&format!("marts/{m}.sql"));
        let start = Instant::now();
        let batches = session
            .collect(m, &sql)
            .await
            .unwrap_or_else(|e| panic!("marts.{m}: {e}"));
        let seconds = start.elapsed().as_secs_f64();
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        keep_best(best, &format!("marts.{m}"), Figure { seconds, rows });
    }
    let cohort = CohortRetention {
        enrollments: "staging.enrollments".to_owned(),
        activity: "staging.activity".to_owned(),
        ds: DS.to_owned(),
        interval_end: INTERVAL_END.to_owned(),
    };
    let start = Instant::now();
    let (_, batches) = cohort.run(&session).await.expect("cohort_retention");
    let seconds = start.elapsed().as_secs_f64();
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    keep_best(best, "marts.cohort_retention", Figure { seconds, rows });
}

fn duckdb_run(args: &Args, script: &Path, dir: &Path, best: &mut BTreeMap<String, Figure>) {
    let mut views = serde_json::Map::new();
    for t in RAW {
        views.insert(
            format!("raw.{t}"),
            parquet_glob(&dir.join("raw").join(t)).into(),
        );
    }
    for t in STAGING {
        views.insert(
            format!("staging.{t}"),
            parquet_glob(&dir.join("staging").join(t)).into(),
        );
    }
    let duck_out = dir.join("duckdb_staging");
    std::fs::create_dir_all(&duck_out).expect("duckdb dir");
    let mut steps = Vec::new();
    for t in STAGING {
        steps.push(serde_json::json!({
            "name": format!("staging.{t}"),
            "sql": render(&format!("staging/{t}.sql")),
            "output": duck_out.join(format!("{t}.parquet")),
        }));
    }
    for m in MARTS {
        steps.push(serde_json::json!({"name": format!("marts.{m}"), "sql": render(&format!("marts/{m}.sql"))}));
    }
    steps.push(serde_json::json!({"name": "marts.cohort_retention", "sql": cohort_sql()}));
    let spec = serde_json::json!({
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        "views": views,
        "steps": steps,
    });
    let spec_path = dir.join("duckdb_spec.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).expect("json")).expect("spec");
    let out = Command::new(&args.python)
        .arg(script)
        .arg("run")
        .arg(&spec_path)
        .output()
        .expect("run python (set AULA_BENCH_PYTHON to a python with duckdb)");
    assert!(
        out.status.success(),
        "duckdb run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("duckdb json line");
        keep_best(
            best,
            v["name"].as_str().expect("name"),
            Figure {
                seconds: v["seconds"].as_f64().expect("seconds"),
                rows: v["rows"].as_u64().expect("rows"),
            },
        );
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("mart_bench_duckdb.py");
    let script = std::env::var_os("AULA_ROOT")
        .map(|r| PathBuf::from(r).join("sql/examples/mart_bench_duckdb.py"))
        .filter(|p| p.exists())
        .unwrap_or(script);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "aula-mart-bench-{}-{}-{}",
            args.students, args.payments, args.events
        ))
    });
    let done = dir.join("raw").join(".generated");
    if !done.exists() {
        println!(
            "generating {} students, {} payments, {} events into {} (DuckDB, once)",
            args.students,
            args.payments,
            args.events,
            dir.display()
        );
        let _ = std::fs::remove_dir_all(dir.join("raw"));
        let status = Command::new(&args.python)
            .arg(&script)
            .arg("generate")
            .arg(&dir)
            .args([
                args.students.to_string(),
                args.payments.to_string(),
                args.events.to_string(),
            ])
            .status()
            .expect("run python");
        assert!(status.success(), "generation failed");
        std::fs::write(&done, b"").expect("marker");
    }

    let mut ours = BTreeMap::new();
    let mut duck = BTreeMap::new();
    for run in 1..=args.runs {
        // Alternate which engine goes first so neither always gets the warmer cache.
        if run % 2 == 1 {
            datafusion_run(&dir, &mut ours).await;
            duckdb_run(&args, &script, &dir, &mut duck);
        } else {
            duckdb_run(&args, &script, &dir, &mut duck);
            datafusion_run(&dir, &mut ours).await;
        }
        eprintln!("run {run}/{} done", args.runs);
    }

    println!(
        "\n{:<32} {:>10} {:>10} {:>12} {:>12} {:>7}",
        "model", "rows", "duck rows", "DataFusion s", "DuckDB s", "ratio"
    );
    let mut total = (0.0, 0.0);
    let mut mismatches = 0;
    let names = STAGING
        .iter()
        .map(|t| format!("staging.{t}"))
        .chain(MARTS.iter().map(|m| format!("marts.{m}")))
        .chain(std::iter::once("marts.cohort_retention".to_owned()));
    for name in names {
        let o = ours.get(&name).copied().unwrap_or_default();
        let d = duck.get(&name).copied().unwrap_or_default();
        total.0 += o.seconds;
        total.1 += d.seconds;
        let flag = if o.rows == d.rows {
            ""
        } else {
            mismatches += 1;
            "  ROW COUNT DIFFERS"
        };
        println!(
            "{:<32} {:>10} {:>10} {:>12.3} {:>12.3} {:>6.2}×{flag}",
            name,
            o.rows,
            d.rows,
            o.seconds,
            d.seconds,
            o.seconds / d.seconds
        );
    }
    println!(
        "{:<32} {:>10} {:>10} {:>12.3} {:>12.3} {:>6.2}×  (goal ≤ 1.00× DuckDB's time)",
        "total",
        "",
        "",
        total.0,
        total.1,
        total.0 / total.1
    );
    assert_eq!(mismatches, 0, "the engines disagree on row counts");
}
