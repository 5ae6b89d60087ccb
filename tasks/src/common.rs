//! Shared plumbing of the data kinds: typed configs with field paths,
//! connections, the lake, and error mapping.

use std::path::{Path, PathBuf};

use aula_engine::operator::{ConfigError, TaskConfig};
use aula_engine::yaml::PathSeg;
use aula_engine::{TaskContext, TaskError};
use aula_sql::LakeSession;
use aula_warehouse::{Lake, TableName};
use serde::de::DeserializeOwned;

/// Parse a kind's fields into its typed config; errors carry the field path.
pub(crate) fn parse<T: DeserializeOwned>(config: &TaskConfig) -> Result<T, ConfigError> {
    let value = serde_json::Value::Object(config.clone());
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(PathSeg::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(PathSeg::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        ConfigError::at_path(path, e.into_inner().to_string())
    })
}

/// Parse at run time (load time already validated it).
pub(crate) fn parse_run<T: DeserializeOwned>(config: &TaskConfig) -> Result<T, TaskError> {
    parse(config).map_err(|e| TaskError::fatal(format!("invalid task config: {}", e.message)))
}

/// The URL of connection `name` from `AULA_CONN_<NAME>` (never logged).
pub(crate) fn connection(name: &str) -> Result<String, TaskError> {
    let var = format!(
        "AULA_CONN_{}",
        name.to_ascii_uppercase().replace(['.', '-'], "_")
    );
    std::env::var(&var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            TaskError::fatal(format!("connection `{name}`: set {var} in the environment"))
        })
}

/// The lake of `AULA_LAKE_URL`.
pub(crate) fn lake() -> Result<Lake, TaskError> {
    Lake::from_env().map_err(lake_error)
}

pub(crate) fn lake_error(e: aula_warehouse::LakeError) -> TaskError {
    if e.is_retryable() {
        TaskError::retryable(e.to_string())
    } else {
        TaskError::fatal(e.to_string())
    }
}

pub(crate) fn sql_error(e: aula_sql::SqlError) -> TaskError {
    if e.is_retryable() {
        TaskError::retryable(e.to_string())
    } else {
        TaskError::fatal(e.to_string())
    }
}

pub(crate) fn connector_error(e: aula_connectors::ConnectorError) -> TaskError {
    if e.is_retryable() {
        TaskError::retryable(e.to_string())
    } else {
        TaskError::fatal(e.to_string())
    }
}

pub(crate) fn table_name(name: &str) -> Result<TableName, TaskError> {
    TableName::parse(name).map_err(lake_error)
}

/// Check a lake table name at load time.
pub(crate) fn validate_table(field: &str, name: &str, errors: &mut Vec<ConfigError>) {
    if let Err(e) = TableName::parse(name) {
        errors.push(ConfigError::at(&[field], e.to_string()));
    }
}

/// Read a SQL file under the pipelines folder; `..` may not escape it.
pub(crate) fn sql_file(dir: &Path, rel: &str) -> Result<(PathBuf, String), String> {
    if Path::new(rel).is_absolute() || rel.split(['/', '\\']).any(|p| p == "..") {
        return Err(format!(
            "`{rel}`: expected a path inside the pipelines folder"
        ));
    }
    let path = dir.join(rel);
    std::fs::read_to_string(&path)
        .map(|text| (path.clone(), text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Check at load time that a model's SQL file exists and parses.
pub(crate) fn validate_sql_file(dir: &Path, rel: &str, errors: &mut Vec<ConfigError>) {
    match sql_file(dir, rel) {
        Err(e) => errors.push(ConfigError::at(&["sql"], e)),
        Ok((path, text)) => {
            if let Err(e) = aula_sql::model::referenced_tables(&path.display().to_string(), &text) {
                errors.push(ConfigError::at(&["sql"], e.to_string()));
            }
        }
    }
}

/// Register the lake tables a query reads in `session` under their names.
pub(crate) async fn register_inputs(
    lake: &Lake,
    session: &LakeSession,
    tables: &[String],
) -> Result<(), TaskError> {
    for table in tables {
        // Unqualified names are CTEs or functions DataFusion resolves itself.
        let Ok(name) = TableName::parse(table) else {
            continue;
        };
        if !lake.exists(&name).await.map_err(lake_error)? {
            return Err(TaskError::fatal(format!(
                "lake table {name} does not exist yet: which task writes it, and did it run?"
            )));
        }
        lake.register(session.context(), &name, table)
            .await
            .map_err(lake_error)?;
    }
    Ok(())
}

/// The run context as template variables, plus extra keys.
pub(crate) fn render_with(
    ctx: &TaskContext,
    template: &str,
    extra: &[(&str, serde_json::Value)],
) -> Result<String, TaskError> {
    let mut vars = ctx.template_vars();
    if let Some(map) = vars.as_object_mut() {
        for (k, v) in extra {
            map.insert((*k).to_owned(), v.clone());
        }
    }
    ctx.templates
        .render(template, &vars)
        .map_err(TaskError::fatal)
}

/// RFC 3339 with a `Z`, the form SQL `TIMESTAMP '…'` literals take.
pub(crate) fn utc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
