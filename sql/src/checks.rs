//! Data-quality checks on lake tables.
//!
//! Every check compiles to one SQL query that returns the violating rows (or,
//! for `row_count` and `freshness`, one row describing the violation), so the
//! count, the sample shown in the task log and custom checks all work the
//! same way.

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};
use crate::session::{LakeSession, TableName};

/// How many violating rows a failing check shows.
pub const SAMPLE_ROWS: usize = 20;

/// What a failing check does to its task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fail the task.
    #[default]
    Error,
    /// Log the violations, let the task succeed.
    Warn,
}

/// One check as written in pipeline YAML.
///
/// In YAML a check is the rule's key plus optional `name` and `severity`:
/// `- unique: [id]`, `- accepted_values: {column: status, values: [new, lost]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Name shown in logs; defaults to a description of the check.
    #[serde(default)]
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// What to check.
    #[serde(flatten)]
    pub rule: Rule,
}

/// The kinds of check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// None of these columns is null.
    NotNull(Vec<String>),
    /// These columns together identify a row.
    Unique(Vec<String>),
    /// The column only holds these values (nulls allowed).
    AcceptedValues {
        /// Column.
        column: String,
        /// Allowed values, compared as text.
        values: Vec<String>,
    },
    /// Every non-null value of `column` exists as `field` in table `to`.
    Relationships {
        /// Column holding the key.
        column: String,
        /// Referenced table (`schema.table`).
        to: String,
        /// Referenced column.
        field: String,
    },
    /// The table's row count lies within bounds.
    RowCount {
        /// Inclusive lower bound.
        #[serde(default)]
        min: Option<u64>,
        /// Inclusive upper bound.
        #[serde(default)]
        max: Option<u64>,
    },
    /// The newest value of a timestamp column is at most `max_age` older than
    /// the run's `as_of` instant (the end of the data interval).
    Freshness {
        /// Timestamp column.
        column: String,
        /// Age limit: `90s`, `30m`, `36h`, `2d`.
        max_age: String,
    },
    /// Custom SQL returning the violating rows; `{{ table }}` is not expanded
    /// here (the engine renders templates before).
    Sql(String),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Check name.
    pub name: String,
    /// Table checked.
    pub table: String,
    /// Severity.
    pub severity: Severity,
    /// Number of violating rows (0 = passed).
    pub violations: u64,
    /// Up to [`SAMPLE_ROWS`] violating rows, `column=value` separated by `, `.
    pub sample: Vec<String>,
    /// The query that found the violations.
    pub sql: String,
}

impl CheckOutcome {
    /// Whether the check found nothing wrong.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }

    /// Whether this outcome fails its task.
    pub fn fails_task(&self) -> bool {
        !self.passed() && self.severity == Severity::Error
    }

    /// A human summary for the task log.
    pub fn report(&self) -> String {
        let verdict = match (self.passed(), self.severity) {
            (true, _) => "passed".to_owned(),
            (false, Severity::Error) => format!("FAILED: {} violating row(s)", self.violations),
            (false, Severity::Warn) => format!("WARN: {} violating row(s)", self.violations),
        };
        let mut out = format!("check {} on {}: {verdict}", self.name, self.table);
        for row in &self.sample {
            out.push_str("\n    ");
            out.push_str(row);
        }
        out
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Parse `90s`, `30m`, `36h`, `2d` into seconds.
pub fn parse_age(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit_secs)
}

impl Check {
    /// The check's name: given, or derived from the rule.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.rule {
            Rule::NotNull(cols) => format!("not_null({})", cols.join(", ")),
            Rule::Unique(cols) => format!("unique({})", cols.join(", ")),
            Rule::AcceptedValues { column, .. } => format!("accepted_values({column})"),
            Rule::Relationships { column, to, field } => {
                format!("relationships({column} -> {to}.{field})")
            }
            Rule::RowCount { .. } => "row_count".to_owned(),
            Rule::Freshness { column, max_age } => format!("freshness({column} <= {max_age})"),
            Rule::Sql(_) => "sql".to_owned(),
        }
    }

    /// The SQL returning this check's violations on `table`.
    pub fn violations_sql(&self, table: &str, as_of: &str) -> Result<String> {
        let t = TableName::parse(table)?.quoted();
        let bad = |message: &str| SqlError::BadCheck {
            check: self.display_name(),
            message: message.to_owned(),
        };
        Ok(match &self.rule {
            Rule::NotNull(cols) => {
                if cols.is_empty() {
                    return Err(bad("not_null needs at least one column"));
                }
                let cond: Vec<String> = cols
                    .iter()
                    .map(|c| format!("{} IS NULL", quote_ident(c)))
                    .collect();
                format!("SELECT * FROM {t} WHERE {}", cond.join(" OR "))
            }
            Rule::Unique(cols) => {
                if cols.is_empty() {
                    return Err(bad("unique needs at least one column"));
                }
                let cols: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
                let cols = cols.join(", ");
                format!(
                    "SELECT {cols}, count(*) AS copies FROM {t} GROUP BY {cols} HAVING count(*) > 1"
                )
            }
            Rule::AcceptedValues { column, values } => {
                if values.is_empty() {
                    return Err(bad("accepted_values needs at least one value"));
                }
                let list: Vec<String> = values.iter().map(|v| quote_literal(v)).collect();
                let c = quote_ident(column);
                format!(
                    "SELECT * FROM {t} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                    list.join(", ")
                )
            }
            Rule::Relationships { column, to, field } => {
                let other = TableName::parse(to)?.quoted();
                let c = quote_ident(column);
                let f = quote_ident(field);
                format!(
                    "SELECT child.* FROM {t} AS child \
                     LEFT JOIN (SELECT DISTINCT {f} AS aula_key FROM {other}) AS parent \
                     ON child.{c} = parent.aula_key \
                     WHERE child.{c} IS NOT NULL AND parent.aula_key IS NULL"
                )
            }
            Rule::RowCount { min, max } => {
                if min.is_none() && max.is_none() {
                    return Err(bad("row_count needs min, max or both"));
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    return Err(bad(&format!("row_count min {lo} is above max {hi}")));
                }
                let mut cond = Vec::new();
                if let Some(lo) = min {
                    cond.push(format!("row_count < {lo}"));
                }
                if let Some(hi) = max {
                    cond.push(format!("row_count > {hi}"));
                }
                format!(
                    "SELECT row_count FROM (SELECT count(*) AS row_count FROM {t}) AS counted WHERE {}",
                    cond.join(" OR ")
                )
            }
            Rule::Freshness { column, max_age } => {
                let secs = parse_age(max_age).ok_or_else(|| {
                    bad(&format!(
                        "max_age {max_age:?}: expected a number and s, m, h or d"
                    ))
                })?;
                let c = quote_ident(column);
                format!(
                    "SELECT newest FROM (SELECT max({c}) AS newest FROM {t}) AS latest \
                     WHERE newest IS NULL OR newest < TIMESTAMP {} - INTERVAL '{secs} seconds'",
                    quote_literal(as_of)
                )
            }
            Rule::Sql(sql) => sql.trim().trim_end_matches(';').to_owned(),
        })
    }

    /// Run the check on `table` as of the instant `as_of` (RFC 3339).
    pub async fn run(
        &self,
        session: &LakeSession,
        table: &str,
        as_of: &str,
    ) -> Result<CheckOutcome> {
        let name = self.display_name();
        let sql = self.violations_sql(table, as_of)?;
        let counted = session
            .collect(
                &name,
                &format!("SELECT count(*) AS n FROM ({sql}) AS violations"),
            )
            .await?;
        let violations = counted
            .first()
            .filter(|b| b.num_rows() > 0)
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0)
            .max(0) as u64;
        let sample = if violations > 0 {
            let rows = session
                .collect(
                    &name,
                    &format!("SELECT * FROM ({sql}) AS violations LIMIT {SAMPLE_ROWS}"),
                )
                .await?;
            format_rows(&rows)
        } else {
            Vec::new()
        };
        Ok(CheckOutcome {
            name,
            table: table.to_owned(),
            severity: self.severity,
            violations,
            sample,
            sql,
        })
    }
}

/// Rows as `column=value, …` strings (nulls as `NULL`).
pub fn format_rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .zip(schema.fields())
                .map(|(f, field)| match f {
                    Ok(f) => format!("{}={}", field.name(), f.value(row)),
                    Err(_) => format!("{}=<unprintable>", field.name()),
                })
                .collect();
            out.push(cells.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("90s"), Some(90));
        assert_eq!(parse_age("30m"), Some(1800));
        assert_eq!(parse_age("36h"), Some(129_600));
        assert_eq!(parse_age("2d"), Some(172_800));
        assert_eq!(parse_age("2w"), None);
        assert_eq!(parse_age("h"), None);
    }

    #[test]
    fn checks_read_from_yaml_shapes() {
        let check: Check = serde_json::from_str(
            r#"{"accepted_values": {"column": "status", "values": ["new"]}, "severity": "warn"}"#,
        )
        .expect("valid check");
        assert_eq!(check.severity, Severity::Warn);
        assert_eq!(check.display_name(), "accepted_values(status)");
        let bad = serde_json::from_str::<Check>(r#"{"not_nul": ["id"]}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn literals_and_identifiers_are_quoted() {
        let check = Check {
            name: None,
            severity: Severity::Error,
            rule: Rule::AcceptedValues {
                column: "st\"atus".into(),
                values: vec!["o'k".into()],
            },
        };
        let sql = check
            .violations_sql("staging.leads", "2026-01-01T00:00:00Z")
            .expect("sql");
        assert!(sql.contains("\"st\"\"atus\""), "{sql}");
        assert!(sql.contains("'o''k'"), "{sql}");
        assert!(check.violations_sql("leads", "x").is_err());
    }
}
