//! The shipped pipelines load with every data kind registered, and bad
//! kind-specific fields are reported with their line and column.

use std::path::PathBuf;

use aula_engine::load_paths;

fn pipelines_dir() -> PathBuf {
    aula_test_support::package_dir()
        .join("..")
        .join("pipelines")
}

#[test]
fn shipped_pipelines_validate() {
    let dir = pipelines_dir();
    let loaded = load_paths(std::slice::from_ref(&dir), &aula_tasks::registry(&dir));
    let problems: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let nightly = &loaded.pipelines["crm_nightly"];
    assert_eq!(nightly.tasks.len(), 28);
    assert!(loaded.pipelines.contains_key("events_hourly"));
}

#[test]
fn bad_data_task_fields_name_their_line_and_column() {
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("sql")).expect("mkdir");
    std::fs::write(dir.join("sql/ok.sql"), "SELECT * FROM staging.leads").expect("write");
    std::fs::write(dir.join("sql/broken.sql"), "SELEC oops FROM").expect("write");
    let yaml = "\
id: bad_kinds
schedule: \"@daily\"
start_date: 2026-01-01
tasks:
  - id: model
    kind: sql
    sql: sql/missing.sql
    output: marts.x
  - id: broken
    kind: sql
    sql: sql/broken.sql
    output: nodot
  - id: checks
    kind: check
    table: staging.leads
    checks:
      - unique: [id]
      - row_count: {min: 5, max: 1}
  - id: extract
    kind: postgres.extract
    connection: crm_db
    output: raw.x
    incremental: {column: updated_at, windw: interval}
  - id: incr
    kind: sql
    sql: sql/ok.sql
    output: marts.y
    materialize: incremental
";
    let file = dir.join("bad.yaml");
    std::fs::write(&file, yaml).expect("write");
    let loaded = load_paths(&[file], &aula_tasks::registry(&dir));
    let problems: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect();
    let has = |line: u32, needle: &str| {
        loaded
            .diagnostics
            .iter()
            .any(|d| d.line == line && d.message.contains(needle))
    };
    assert!(has(7, "missing.sql"), "{problems:#?}");
    assert!(has(11, "invalid SQL"), "{problems:#?}");
    assert!(has(12, "nodot"), "{problems:#?}");
    assert!(has(18, "min 5 is above max 1"), "{problems:#?}");
    assert!(has(23, "unknown field `windw`"), "{problems:#?}");
    assert!(has(28, "need partition_by"), "{problems:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    std::env::temp_dir().join(format!("aula-tasks-{}", std::process::id()))
}
