//! The lake: Delta Lake tables on a local folder or S3, written in atomic
//! commits (append-once, replace a partition, merge by key) and read back
//! through DataFusion.
//!
//! Table names map to paths: `raw.crm_leads` is `<root>/raw/crm_leads`. On
//! S3 every commit is a conditional put of `_delta_log/N.json`, so
//! concurrent writers can never overwrite each other's commits.

pub mod error;
pub mod lake;
pub mod location;

pub use error::{BoxError, Fault, LakeError};
pub use lake::{
    AppTxn, BatchStream, Lake, OptimizeReport, TableInfo, VacuumReport, VersionInfo, WriteMode,
    WriteOptions, WriteOutcome,
};
pub use location::{LakeLocation, S3Settings, TableName};

/// The DataFusion version the lake uses (re-exported so callers build
/// sessions and scalar values of the same version).
pub use deltalake::datafusion;
