//! SQL models: what a model reads, so the DAG can order models by their data
//! (dbt's `ref`, derived from the SQL itself).

use std::collections::BTreeSet;

use datafusion::sql::parser::DFParser;
use datafusion::sql::resolve::resolve_table_references;

use crate::error::{Result, SqlError};

/// The lake tables (`schema.table`) a model's SQL reads, CTE names excluded,
/// sorted and deduplicated. Unqualified names are returned as written.
pub fn referenced_tables(model: &str, sql: &str) -> Result<Vec<String>> {
    let statements = DFParser::parse_sql(sql).map_err(|e| SqlError::InvalidSql {
        model: model.to_owned(),
        message: e.to_string(),
    })?;
    let mut tables = BTreeSet::new();
    for statement in statements {
        let (refs, _ctes) =
            resolve_table_references(&statement, true).map_err(|e| SqlError::InvalidSql {
                model: model.to_owned(),
                message: e.to_string(),
            })?;
        for r in refs {
            tables.insert(match r.schema() {
                Some(schema) => format!("{schema}.{}", r.table()),
                None => r.table().to_owned(),
            });
        }
    }
    Ok(tables.into_iter().collect())
}
