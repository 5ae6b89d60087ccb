//! A DataFusion session over the lake, with tables registered by their lake
//! names (`raw.crm_leads`, `staging.leads`, `marts.funnel_daily`).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, MemorySchemaProvider, TableProvider};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::error::{Result, SqlError};

/// The lake's layers; each is a schema in the session.
pub const LAYERS: [&str; 5] = ["raw", "staging", "marts", "exports", "work"];

const CATALOG: &str = "datafusion";

/// A `schema.table` lake name, split.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    /// Layer / schema, e.g. `staging`.
    pub schema: String,
    /// Table, e.g. `leads`.
    pub table: String,
}

impl TableName {
    /// Parse `schema.table`; both parts must be plain identifiers.
    pub fn parse(name: &str) -> Result<Self> {
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        match name.split_once('.') {
            Some((schema, table)) if ident(schema) && ident(table) => Ok(TableName {
                schema: schema.to_owned(),
                table: table.to_owned(),
            }),
            _ => Err(SqlError::BadTableName {
                name: name.to_owned(),
            }),
        }
    }

    /// `"schema"."table"`, safe to splice into SQL.
    pub fn quoted(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.table)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A DataFusion session whose schemas are the lake's layers.
#[derive(Clone)]
pub struct LakeSession {
    ctx: SessionContext,
}

impl Default for LakeSession {
    fn default() -> Self {
        Self::new()
    }
}

impl LakeSession {
    /// A session with the lake's layers as empty schemas. Times are UTC.
    pub fn new() -> Self {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(true)
            .set_str("datafusion.execution.time_zone", "UTC");
        let ctx = SessionContext::new_with_config(config);
        let session = LakeSession { ctx };
        for layer in LAYERS {
            session.ensure_schema(layer);
        }
        session
    }

    /// The underlying DataFusion context, for callers that register their own
    /// providers (Delta tables from `aula-warehouse`).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    fn ensure_schema(&self, schema: &str) {
        if let Some(catalog) = self.ctx.catalog(CATALOG)
            && catalog.schema(schema).is_none()
        {
            // Registering into the default in-memory catalog cannot fail.
            let _ = catalog.register_schema(schema, Arc::new(MemorySchemaProvider::new()));
        }
    }

    /// Register (or replace) a table under its lake name.
    pub fn register_table(&self, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
        let name = TableName::parse(name)?;
        self.ensure_schema(&name.schema);
        let reference =
            datafusion::common::TableReference::partial(name.schema.as_str(), name.table.as_str());
        let _ = self
            .ctx
            .deregister_table(reference.clone())
            .map_err(|e| SqlError::query(&name.to_string(), e))?;
        self.ctx
            .register_table(reference, provider)
            .map_err(|e| SqlError::query(&name.to_string(), e))?;
        Ok(())
    }

    /// Register in-memory batches under a lake name (small tables, tests).
    pub fn register_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let table =
            MemTable::try_new(schema, vec![batches]).map_err(|e| SqlError::query(name, e))?;
        self.register_table(name, Arc::new(table))
    }

    /// Plan a query; `model` names it in errors.
    pub async fn query(&self, model: &str, sql: &str) -> Result<DataFrame> {
        self.ctx
            .sql(sql)
            .await
            .map_err(|e| SqlError::query(model, e))
    }

    /// Run a query as a stream of batches: the way results reach sinks.
    pub async fn stream(&self, model: &str, sql: &str) -> Result<SendableRecordBatchStream> {
        self.query(model, sql)
            .await?
            .execute_stream()
            .await
            .map_err(|e| SqlError::query(model, e))
    }

    /// Run a query and keep every batch: for small results only (checks, tests).
    pub async fn collect(&self, model: &str, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query(model, sql)
            .await?
            .collect()
            .await
            .map_err(|e| SqlError::query(model, e))
    }

    /// Run a model and register its result in memory under `target`. The
    /// pipeline writes models to the lake instead; this serves tests and
    /// previews of small models.
    pub async fn materialize_in_memory(&self, target: &str, sql: &str) -> Result<()> {
        let frame = self.query(target, sql).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame
            .collect()
            .await
            .map_err(|e| SqlError::query(target, e))?;
        self.register_batches(target, schema, batches)
    }
}
