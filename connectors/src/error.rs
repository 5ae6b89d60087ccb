//! Errors of the connectors, saying who is at fault and whether a retry helps.

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request or the data is wrong (a type Aula cannot map, a bad
    /// connection URL, too many poison messages): a retry fails the same way.
    BadInput,
    /// The server failed or is unreachable: a retry may succeed.
    External,
    /// A broken invariant inside Aula.
    Bug,
}

/// Everything that can go wrong moving data in or out.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Bad configuration or request (URL, table name, schema, option).
    #[error("{system}: {message}")]
    BadInput {
        /// `PostgreSQL`, `Kafka`, `ClickHouse`.
        system: &'static str,
        /// What is wrong, naming the field or column.
        message: String,
    },
    /// A column whose type Aula cannot map to Arrow: found before any data moves.
    #[error("PostgreSQL: column `{column}` has type {pg_type}, which Aula cannot map to Arrow")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its PostgreSQL type.
        pg_type: String,
    },
    /// A value that does not fit its Arrow column (a numeric with more digits
    /// than the column's scale, an infinite date, a multi-dimensional array).
    #[error("PostgreSQL: column `{column}`, row {row}: {message}")]
    BadValue {
        /// The column.
        column: String,
        /// Row number in this extract (0-based).
        row: u64,
        /// What is wrong.
        message: String,
    },
    /// Too many Kafka messages failed to parse.
    #[error(
        "Kafka: {bad} of {total} messages failed to parse, more than the allowed {allowed_pct}% (first error: {first_error})"
    )]
    TooManyBadMessages {
        /// Messages that failed.
        bad: u64,
        /// Messages read.
        total: u64,
        /// Threshold.
        allowed_pct: f64,
        /// The first parse error.
        first_error: String,
    },
    /// The server failed, refused or went away.
    #[error("{system}: {message}")]
    External {
        /// `PostgreSQL`, `Kafka`, `ClickHouse`.
        system: &'static str,
        /// What happened (never includes a password).
        message: String,
    },
    /// Arrow refused to build a batch: a bug in the decoder.
    #[error("building Arrow data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl ConnectorError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            ConnectorError::BadInput { .. }
            | ConnectorError::UnsupportedType { .. }
            | ConnectorError::BadValue { .. }
            | ConnectorError::TooManyBadMessages { .. } => Fault::BadInput,
            ConnectorError::External { .. } => Fault::External,
            ConnectorError::Arrow(_) => Fault::Bug,
        }
    }

    /// Whether running the same request again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::External
    }

    pub(crate) fn pg(e: impl std::fmt::Display) -> Self {
        ConnectorError::External {
            system: "PostgreSQL",
            message: e.to_string(),
        }
    }

    pub(crate) fn kafka(e: impl std::fmt::Display) -> Self {
        ConnectorError::External {
            system: "Kafka",
            message: e.to_string(),
        }
    }

    pub(crate) fn clickhouse(e: impl std::fmt::Display) -> Self {
        ConnectorError::External {
            system: "ClickHouse",
            message: e.to_string(),
        }
    }

    pub(crate) fn bad(system: &'static str, message: impl Into<String>) -> Self {
        ConnectorError::BadInput {
            system,
            message: message.into(),
        }
    }
}

/// Result alias for the connectors.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
