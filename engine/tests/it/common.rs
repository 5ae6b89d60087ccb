use std::path::{Path, PathBuf};
use std::sync::Arc;

use aula_engine::executor::{ExecConfig, Executor, Resources};
use aula_engine::operator::Registry;
use aula_engine::spec::{Pipeline, parse_pipeline};
use aula_engine::store::{self, Store};

pub(crate) fn pipeline(src: &str) -> Arc<Pipeline> {
    match parse_pipeline(Path::new("test.yaml"), src, &Registry::builtin()) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!(
            "invalid test pipeline: {}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

pub(crate) fn temp_dir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aula-it-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) async fn sqlite(label: &str) -> Arc<dyn Store> {
    store::open(&temp_dir(label).join("state.db").display().to_string())
        .await
        .unwrap()
}

pub(crate) async fn postgres(label: &str) -> (Arc<dyn Store>, String) {
    let db = aula_test_support::fresh_pg(label).await;
    (store::open(&db.url).await.unwrap(), db.url)
}

/// Both stores, for tests that must pass on each.
pub(crate) async fn stores(label: &str) -> Vec<Arc<dyn Store>> {
    vec![sqlite(label).await, postgres(label).await.0]
}

pub(crate) fn executor(store: Arc<dyn Store>) -> Executor {
    let cfg = ExecConfig {
        cancel_grace: std::time::Duration::from_millis(500),
        ..ExecConfig::default()
    };
    Executor::new(
        store,
        Registry::builtin(),
        Resources::new(16, &Default::default()),
        cfg,
    )
}
