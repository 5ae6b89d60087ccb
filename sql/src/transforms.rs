//! Built-in Polars transforms, for what SQL says badly.
//!
//! A transform reads its inputs with DataFusion (SQL over the lake), hands
//! them to Polars as Arrow through [`crate::polars_interop`] (no files, no
//! row copies), and hands the Polars result back to DataFusion the same way.
//! In pipeline YAML a transform is declared by name with its parameters:
//!
//! ```yaml
//! - id: cohort_retention
//!   kind: polars
//!   transform: cohort_retention
//!   params: {enrollments: staging.enrollments, activity: staging.activity}
//!   output: marts.cohort_retention
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use polars::prelude as pl;
use polars::prelude::{IntoLazy, JoinArgs, JoinType, SortMultipleOptions, col, len, lit};

use crate::error::{Result, SqlError};
use crate::polars_interop::{polars_to_record_batch, record_batch_to_polars};
use crate::session::{LakeSession, TableName};

/// Parameters of the cohort-retention transform.
#[derive(Debug, Clone)]
pub struct CohortRetention {
    /// Table of enrollments (`student_id`, `enrolled_at`).
    pub enrollments: String,
    /// Table of deduplicated learning events (`student_id`, `occurred_at`).
    pub activity: String,
    /// Logical date `YYYY-MM-DD`: the matrix runs to this date's month.
    pub ds: String,
    /// End of the data interval (RFC 3339): nothing at or after it counts.
    pub interval_end: String,
}

fn transform_error(message: impl std::fmt::Display) -> SqlError {
    SqlError::Transform {
        transform: "cohort_retention".to_owned(),
        message: message.to_string(),
    }
}

fn polars_error(e: pl::PolarsError) -> SqlError {
    transform_error(format!("polars: {e}"))
}

/// Month index (`year * 12 + month - 1`) of a `YYYY-MM-DD` date.
fn month_index(ds: &str) -> Option<i32> {
    let mut parts = ds.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: i32 = parts.next()?.parse().ok()?;
    (1..=12).contains(&month).then_some(year * 12 + month - 1)
}

/// Stack batches into one Polars frame.
fn to_frame(batches: &[RecordBatch]) -> Result<pl::DataFrame> {
    let mut frame: Option<pl::DataFrame> = None;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let df = record_batch_to_polars(batch)
            .map_err(|e| transform_error(format!("arrow → polars: {e}")))?;
        frame = Some(match frame {
            None => df,
            Some(mut acc) => {
                acc.vstack_mut(&df).map_err(polars_error)?;
                acc
            }
        });
    }
    frame.ok_or_else(|| transform_error("no rows"))
}

impl CohortRetention {
    /// The `cohort_retention` mart: cohort (month of a student's first
    /// enrollment) × months since, from the cohort's month to the month of
    /// the logical date, zeros included.
    /// Returns the schema with the batches, since an empty result has no batch.
    pub async fn run(&self, session: &LakeSession) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let enrollments = TableName::parse(&self.enrollments)?.quoted();
        let activity = TableName::parse(&self.activity)?.quoted();
        let through = month_index(&self.ds)
            .ok_or_else(|| transform_error(format!("ds {:?} is not YYYY-MM-DD", self.ds)))?;
        let end = self.interval_end.replace('\'', "");
        let month_idx = |c: &str| {
            format!("CAST(date_part('year', {c}) * 12 + date_part('month', {c}) - 1 AS INT)")
        };
        let firsts = session
            .collect(
                "cohort_retention",
                &format!(
                    "SELECT CAST(student_id AS VARCHAR) AS student_id, {} AS cohort_idx \
                     FROM (SELECT student_id, min(enrolled_at) AS first_at FROM {enrollments} \
                           WHERE enrolled_at < TIMESTAMP '{end}' GROUP BY student_id) AS firsts",
                    month_idx("first_at")
                ),
            )
            .await?;
        let active = session
            .collect(
                "cohort_retention",
                &format!(
                    "SELECT DISTINCT CAST(student_id AS VARCHAR) AS student_id, {} AS active_idx \
                     FROM {activity} WHERE occurred_at < TIMESTAMP '{end}'",
                    month_idx("occurred_at")
                ),
            )
            .await?;

        let matrix_schema = Arc::new(Schema::new(vec![
            Field::new("cohort_idx", DataType::Int32, false),
            Field::new("months_since", DataType::Int32, false),
            Field::new("cohort_size", DataType::Int64, false),
            Field::new("active_students", DataType::Int64, false),
        ]));
        let matrix = if firsts.iter().all(|b| b.num_rows() == 0) {
            RecordBatch::new_empty(matrix_schema.clone())
        } else {
            let firsts = to_frame(&firsts)?;
            let active = if active.iter().all(|b| b.num_rows() == 0) {
                None
            } else {
                Some(to_frame(&active)?)
            };
            let df = outside_runtime(move || cohort_matrix(firsts, active, through))
                .await?
                .map_err(polars_error)?;
            polars_to_record_batch(&df, Some(&matrix_schema))
                .map_err(|e| transform_error(format!("polars → arrow: {e}")))?
        };

        // Back to DataFusion for the contract's column types.
        session.register_batches("work.cohort_matrix", matrix_schema, vec![matrix])?;
        let frame = session
            .query(
                "cohort_retention",
                "SELECT make_date(CAST(cohort_idx / 12 AS INT), CAST(cohort_idx % 12 + 1 AS INT), 1) AS cohort_month, \
                        arrow_cast(months_since, 'UInt16') AS months_since, \
                        arrow_cast(cohort_size, 'UInt64') AS cohort_size, \
                        arrow_cast(active_students, 'UInt64') AS active_students \
                 FROM work.cohort_matrix ORDER BY cohort_month, months_since",
            )
            .await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| SqlError::Query {
            model: "cohort_retention".to_owned(),
            source: e,
        })?;
        Ok((schema, batches))
    }
}

/// Run Polars on a thread of its own: its engine blocks on its own async
/// runtime, which must not happen on one of the caller's tokio workers.
async fn outside_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("aula-polars".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| transform_error(format!("cannot start the Polars thread: {e}")))?;
    rx.await
        .map_err(|_| transform_error("the Polars thread panicked"))
}

/// The matrix in Polars: cohort sizes, the full cohort × month grid, and the
/// distinct active students of each cell (0 where none).
fn cohort_matrix(
    firsts: pl::DataFrame,
    active: Option<pl::DataFrame>,
    through: i32,
) -> pl::PolarsResult<pl::DataFrame> {
    let sizes = firsts
        .clone()
        .lazy()
        .filter(col("cohort_idx").lt_eq(lit(through)))
        .group_by([col("cohort_idx")])
        .agg([len().cast(pl::DataType::Int64).alias("cohort_size")])
        .collect()?;

    // The grid: every cohort, every month from its own to the logical date's.
    let cohorts = sizes.column("cohort_idx")?.i32()?;
    let counts = sizes.column("cohort_size")?.i64()?;
    let (mut grid_cohort, mut grid_month, mut grid_size) = (Vec::new(), Vec::new(), Vec::new());
    for (cohort, size) in cohorts.iter().zip(counts.iter()) {
        if let (Some(cohort), Some(size)) = (cohort, size) {
            for since in 0..=(through - cohort) {
                grid_cohort.push(cohort);
                grid_month.push(since);
                grid_size.push(size);
            }
        }
    }
    let grid = pl::df!(
        "cohort_idx" => grid_cohort,
        "months_since" => grid_month,
        "cohort_size" => grid_size,
    )?;

    let keys = [col("cohort_idx"), col("months_since")];
    let with_activity = match active {
        None => grid.lazy().with_column(lit(0i64).alias("active_students")),
        Some(active) => {
            let cells = firsts
                .lazy()
                .join(
                    active.lazy(),
                    [col("student_id")],
                    [col("student_id")],
                    JoinArgs::new(JoinType::Inner),
                )
                .filter(
                    col("active_idx")
                        .gt_eq(col("cohort_idx"))
                        .and(col("active_idx").lt_eq(lit(through))),
                )
                .with_column((col("active_idx") - col("cohort_idx")).alias("months_since"))
                .group_by(keys.clone())
                .agg([col("student_id")
                    .n_unique()
                    .cast(pl::DataType::Int64)
                    .alias("active_students")]);
            grid.lazy()
                .join(cells, keys.clone(), keys, JoinArgs::new(JoinType::Left))
                .with_column(col("active_students").fill_null(lit(0i64)))
        }
    };
    with_activity
        .select([
            col("cohort_idx"),
            col("months_since"),
            col("cohort_size"),
            col("active_students"),
        ])
        .sort(
            ["cohort_idx", "months_since"],
            SortMultipleOptions::default(),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::month_index;

    #[test]
    fn month_indexes_count_from_year_zero() {
        assert_eq!(month_index("2026-01-15"), Some(2026 * 12));
        assert_eq!(month_index("2026-12-01"), Some(2026 * 12 + 11));
        assert_eq!(month_index("2026-13-01"), None);
        assert_eq!(month_index("March"), None);
    }
}
