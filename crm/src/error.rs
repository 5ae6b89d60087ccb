//! Errors: [`CrmError`] for the service's own operations (who is at fault and
//! whether a retry helps), [`ApiError`] for HTTP answers as RFC 7807 problems.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Failures of the CRM service outside a single request.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Bad configuration given by the operator (fix the environment; a retry does not help).
    #[error("configuration: {0}")]
    Config(String),
    /// The database refused or failed (external system; a retry may help).
    #[error("database ({context}): {source}")]
    Database {
        /// What we were doing.
        context: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed (the schema on the server does not match ours, or the server failed).
    #[error("migrating the crm schema: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The Kafka broker failed (external system; a retry may help).
    #[error("broker: {0}")]
    Broker(String),
    /// Binding or serving the HTTP socket failed (external; a retry may help once the port is free).
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// A JWKS endpoint could not be read or parsed (external system or its configuration).
    #[error("jwks: {0}")]
    Jwks(String),
}

impl CrmError {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database { .. } | Self::Broker(_) | Self::Io(_) | Self::Jwks(_)
        )
    }

    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let context = context.into();
        move |source| Self::Database { context, source }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field (JSON member or query parameter) at fault.
    pub field: String,
    /// Why it is invalid.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 7807 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Every invalid field (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
}

/// An HTTP request that could not be served; each variant is one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule (client's fault; resend it fixed).
    #[error("invalid request: {0:?}")]
    Invalid(Vec<FieldError>),
    /// No such entity.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique key or a state transition conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// No usable credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The credentials' roles do not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The body is larger than the cap.
    #[error("request body too large")]
    TooLarge,
    /// The database is unreachable or overloaded (retry later).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected server failure.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, detail, errors) = match self {
            Self::Invalid(errs) => (
                "validation",
                format!(
                    "{} invalid field(s): {}",
                    errs.len(),
                    errs.iter()
                        .map(|e| e.field.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                errs.clone(),
            ),
            Self::NotFound(what) => ("not-found", format!("{what} not found"), vec![]),
            Self::Conflict(why) => ("conflict", why.clone(), vec![]),
            Self::Unauthorized(why) => ("unauthorized", why.clone(), vec![]),
            Self::Forbidden(why) => ("forbidden", why.clone(), vec![]),
            Self::TooLarge => (
                "too-large",
                "request body exceeds the size cap".into(),
                vec![],
            ),
            Self::Unavailable(why) => ("unavailable", why.clone(), vec![]),
            Self::Internal(_) => ("internal", "internal server error".into(), vec![]),
        };
        Problem {
            kind: format!("https://aula.dev/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(msg) = &self {
            tracing::error!(error = %msg, "request failed");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Which request field a constraint guards, so database rejections name the field.
fn constraint_field(constraint: &str) -> String {
    // Constraint names are `<table>_<column>_(check|fkey|key)`, ours are explicit.
    const TABLES: [&str; 6] = [
        "courses",
        "campaigns",
        "leads",
        "students",
        "enrollments",
        "payments",
    ];
    let mut name = constraint;
    for t in TABLES {
        if let Some(rest) = name.strip_prefix(t).and_then(|r| r.strip_prefix('_')) {
            name = rest;
            break;
        }
    }
    for suffix in ["_check", "_fkey", "_key"] {
        if let Some(rest) = name.strip_suffix(suffix) {
            return rest.to_owned();
        }
    }
    name.to_owned()
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or("").to_owned();
                match db.code().as_deref() {
                    Some("23505") => Self::Conflict(format!(
                        "a row with the same {} already exists",
                        constraint_field(&constraint)
                    )),
                    Some("23503") => Self::field(
                        &constraint_field(&constraint),
                        "refers to a row that does not exist",
                    ),
                    Some("23514") | Some("23502") => Self::field(
                        &constraint_field(&constraint),
                        format!("violates the rule {constraint}"),
                    ),
                    Some("22P02") | Some("22007") | Some("22008") | Some("22003")
                    | Some("22001") => Self::field("body", db.message().to_owned()),
                    Some("40001") | Some("40P01") => {
                        Self::Conflict("a concurrent change won; retry the request".into())
                    }
                    _ => Self::Internal(e.to_string()),
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable("the database is not reachable; retry later".into())
            }
            _ => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::constraint_field;

    #[test]
    fn constraints_name_their_field() {
        assert_eq!(constraint_field("leads_campaign_id_fkey"), "campaign_id");
        assert_eq!(constraint_field("courses_code_key"), "code");
        assert_eq!(
            constraint_field("payments_amount_cents_check"),
            "amount_cents"
        );
        assert_eq!(
            constraint_field("enrollments_student_course_key"),
            "student_course"
        );
    }
}
