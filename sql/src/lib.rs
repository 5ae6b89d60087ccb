//! DataFusion SQL models, Polars transforms and data-quality checks over the lake.

pub mod checks;
pub mod error;
pub mod model;
pub mod polars_interop;
pub mod session;
pub mod transforms;

pub use error::{Fault, Result, SqlError};
pub use session::{LakeSession, TableName};
