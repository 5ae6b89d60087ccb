//! Errors of the lake, saying who is at fault and whether a retry can help.

use std::fmt;

/// Who caused a failure: the engine decides from this whether to retry a
/// task and whom to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request (a table name, a URL, a write option, the data) is wrong:
    /// a retry fails the same way.
    BadInput,
    /// The object store or the input stream failed: a retry may succeed.
    External,
    /// A broken invariant inside Aula or a library.
    Bug,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::BadInput => "bad input",
            Fault::External => "external system",
            Fault::Bug => "bug",
        })
    }
}

/// A boxed error from the stream that feeds a write.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake URL cannot be used (bad input).
    #[error("lake URL {url:?} is not usable: {reason}")]
    BadUrl {
        /// The URL as given (lake URLs carry no secrets: credentials come from the environment).
        url: String,
        /// Why.
        reason: String,
    },
    /// A table name is not `schema.table` of lower-case identifiers (bad input).
    #[error("table name {name:?} is not valid: {reason}")]
    BadTableName {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// The table does not exist (bad input: nothing has been written yet).
    #[error("lake table {0} does not exist")]
    NoSuchTable(String),
    /// The write request does not fit the data or the table (bad input).
    #[error("cannot write lake table {table}: {reason}")]
    BadWrite {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
    /// Another writer committed a conflicting change first; retrying the task helps.
    #[error("lake table {table}: a concurrent commit conflicted with this one: {message}")]
    Conflict {
        /// The table.
        table: String,
        /// The conflict as the Delta library describes it.
        message: String,
    },
    /// The stream feeding a write failed (external: the source system).
    #[error("lake table {table}: the input stream failed: {source}")]
    Input {
        /// The table.
        table: String,
        /// The source's error.
        source: BoxError,
    },
    /// The Delta library or the object store failed.
    #[error("lake table {table}: {source}")]
    Delta {
        /// The table (or the lake root).
        table: String,
        /// The library's error.
        #[source]
        source: deltalake::DeltaTableError,
    },
    /// The object store failed outside a Delta operation (listing tables).
    #[error("lake storage: {0}")]
    Store(#[from] object_store::Error),
    /// A DataFusion plan over lake data failed.
    #[error("lake query on {table}: {source}")]
    Query {
        /// The table.
        table: String,
        /// The engine's error.
        #[source]
        source: deltalake::datafusion::error::DataFusionError,
    },
}

impl LakeError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            LakeError::BadUrl { .. }
            | LakeError::BadTableName { .. }
            | LakeError::NoSuchTable(_)
            | LakeError::BadWrite { .. } => Fault::BadInput,
            LakeError::Conflict { .. } | LakeError::Input { .. } | LakeError::Store(_) => {
                Fault::External
            }
            LakeError::Delta { source, .. } => delta_fault(source),
            LakeError::Query { .. } => Fault::External,
        }
    }

    /// Whether running the same request again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::External
    }

    pub(crate) fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        let table = table.into();
        match source {
            deltalake::DeltaTableError::Transaction { source } => match source {
                deltalake::kernel::transaction::TransactionError::CommitConflict(c) => {
                    LakeError::Conflict {
                        table,
                        message: c.to_string(),
                    }
                }
                deltalake::kernel::transaction::TransactionError::MaxCommitAttempts(n) => {
                    LakeError::Conflict {
                        table,
                        message: format!("gave up after {n} commit attempts"),
                    }
                }
                other => LakeError::Delta {
                    table,
                    source: deltalake::DeltaTableError::Transaction { source: other },
                },
            },
            other => LakeError::Delta {
                table,
                source: other,
            },
        }
    }
}

fn delta_fault(e: &deltalake::DeltaTableError) -> Fault {
    use deltalake::DeltaTableError as E;
    match e {
        E::ObjectStore { .. } | E::Io { .. } | E::Transaction { .. } => Fault::External,
        E::SchemaMismatch { .. }
        | E::InvalidTableLocation(_)
        | E::NotATable(_)
        | E::InvalidPartitionFilter { .. } => Fault::BadInput,
        _ => Fault::External,
    }
}

/// Result alias for the lake.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
