//! Every malformed file under tests/corpus/ must give exactly the messages in
//! its `.expected` file (one `file:line:col: message` per line).
//! `AULA_BLESS=1` rewrites the expectations (review the diff!).

use std::path::Path;

use aula_engine::operator::Registry;
use aula_engine::spec::parse_pipeline;

#[test]
fn malformed_pipelines_give_exact_messages() {
    let dir = aula_test_support::package_dir().join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus must hold at least 30 files, found {}",
        files.len()
    );
    let bless = std::env::var("AULA_BLESS").is_ok();
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let src = std::fs::read_to_string(f).unwrap();
        let got = match parse_pipeline(Path::new(name), &src, &Registry::builtin()) {
            Ok(_) => String::from("(valid)\n"),
            Err(d) => d.iter().map(|x| format!("{x}\n")).collect(),
        };
        let exp_path = f.with_extension("expected");
        if bless {
            std::fs::write(&exp_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&exp_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", f.display()));
        if got != expected {
            failures.push(format!("{name}:\n  expected:\n{expected}  got:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_examples_load() {
    let dir = aula_test_support::package_dir().join("../pipelines/examples");
    if dir.exists() {
        let loaded = aula_engine::load_paths(&[dir], &Registry::builtin());
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    }
}

#[test]
fn ten_thousand_tasks_validate() {
    let src = aula_engine::bench::wide_file(10_000);
    let t = std::time::Instant::now();
    let p = parse_pipeline(Path::new("big.yaml"), &src, &Registry::builtin()).unwrap();
    assert_eq!(p.tasks.len(), 10_000);
    eprintln!("validated 10,000 tasks in {:?}", t.elapsed());
}

#[test]
fn deep_chain_cycle_check_does_not_overflow() {
    let mut src = aula_engine::bench::chain_file(20_000);
    src.push_str("  - id: loop\n    kind: noop\n    depends_on: [t19999]\n");
    src = src.replace(
        "  - id: t0\n    kind: noop\n",
        "  - id: t0\n    kind: noop\n    depends_on: [loop]\n",
    );
    let err = parse_pipeline(Path::new("deep.yaml"), &src, &Registry::builtin()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].message.contains("dependency cycle"), "{}", err[0]);
}

/// A kind from another crate: its load-time errors get line and column too.
struct Custom;

impl aula_engine::Operator for Custom {
    fn kind(&self) -> &'static str {
        "custom"
    }

    fn validate(
        &self,
        config: &aula_engine::operator::TaskConfig,
    ) -> Vec<aula_engine::operator::ConfigError> {
        use aula_engine::operator::ConfigError;
        use aula_engine::yaml::PathSeg;
        let mut errs = ConfigError::unknown_fields("custom", config, &["options"]);
        if let Some(mode) = config.get("options").and_then(|o| o.get("mode"))
            && mode != "fast"
        {
            errs.push(ConfigError::at_path(
                vec![PathSeg::Key("options".into()), PathSeg::Key("mode".into())],
                format!("unknown mode {mode}, expected \"fast\""),
            ));
        }
        errs
    }

    fn execute<'a>(
        &'a self,
        _config: &'a aula_engine::operator::TaskConfig,
        ctx: &'a aula_engine::TaskContext,
    ) -> aula_engine::operator::BoxFuture<'a, Result<(), aula_engine::TaskError>> {
        Box::pin(async move {
            ctx.log.write(
                aula_engine::operator::LogStream::System,
                format!("custom ran for {}", ctx.ds()),
            );
            Ok(())
        })
    }
}

#[test]
fn operators_from_other_crates_validate_at_load_time() {
    let mut registry = Registry::builtin();
    registry.register(std::sync::Arc::new(Custom));
    let src = "id: p\ntasks:\n  - id: a\n    kind: custom\n    options:\n      mode: slow\n    extra: 1\n";
    let err = parse_pipeline(Path::new("custom.yaml"), src, &registry).unwrap_err();
    let got: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "custom.yaml:6:13: tasks[0].options.mode: unknown mode \"slow\", expected \"fast\"",
            "custom.yaml:7:5: tasks[0]: unknown field `extra` for kind `custom`, expected one of: options (or a common task field: id, kind, description, depends_on, trigger_rule, retries, retry_delay, retry_exponential_backoff, max_retry_delay, timeout, pool)",
        ]
    );
    assert!(
        parse_pipeline(
            Path::new("custom.yaml"),
            "id: p\ntasks:\n  - {id: a, kind: custom, options: {mode: fast}}\n",
            &registry
        )
        .is_ok()
    );
}
