//! Errors of the SQL layer, classified by who is at fault.

use datafusion::error::DataFusionError;

/// Who caused an error, so the scheduler knows whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The model, check or pipeline is wrong: a retry gives the same answer.
    BadInput,
    /// Storage or a remote service failed: a retry may succeed.
    External,
    /// A bug in Aula.
    Bug,
}

/// Everything that can go wrong planning or running SQL over the lake.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The SQL text does not parse.
    #[error("{model}: invalid SQL: {message}")]
    InvalidSql {
        /// Model or check name.
        model: String,
        /// Parser message.
        message: String,
    },
    /// Planning or executing failed.
    #[error("{model}: {source}")]
    Query {
        /// Model or check name.
        model: String,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// A table name is not `schema.table`.
    #[error("table name {name:?}: expected `schema.table` (e.g. staging.leads)")]
    BadTableName {
        /// The name given.
        name: String,
    },
    /// A built-in transform could not run (bad parameters, a Polars error).
    #[error("transform {transform}: {message}")]
    Transform {
        /// Transform name.
        transform: String,
        /// What went wrong.
        message: String,
    },
    /// A check is misconfigured (bad bounds, bad duration, …).
    #[error("check {check}: {message}")]
    BadCheck {
        /// Check name.
        check: String,
        /// What is wrong.
        message: String,
    },
}

impl SqlError {
    pub(crate) fn query(model: &str, source: DataFusionError) -> Self {
        SqlError::Query {
            model: model.to_owned(),
            source,
        }
    }

    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            SqlError::InvalidSql { .. }
            | SqlError::BadTableName { .. }
            | SqlError::BadCheck { .. } => Fault::BadInput,
            // Inputs were validated before the transform ran: what fails inside is ours.
            SqlError::Transform { .. } => Fault::Bug,
            SqlError::Query { source, .. } => match source.find_root() {
                DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => Fault::External,
                DataFusionError::Internal(_) => Fault::Bug,
                _ => Fault::BadInput,
            },
        }
    }

    /// Whether running the same thing again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::External
    }
}

/// Result alias for this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
