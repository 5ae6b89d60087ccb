//! The REST API under `/api/v1`, plus `/health`, `/ready`, `/metrics`.

mod campaigns;
mod courses;
mod enrollments;
mod leads;
mod payments;
mod students;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::validate::Query;

pub use campaigns::{CampaignCreate, CampaignPage, CampaignUpdate};
pub use courses::{CourseCreate, CoursePage, CourseUpdate};
pub use enrollments::{EnrollmentCreate, EnrollmentPage, EnrollmentUpdate};
pub use leads::{
    ConvertResult, LeadConvert, LeadCreate, LeadMove, LeadPage, LeadStatusChange, LeadUpdate,
};
pub use payments::{PaymentCreate, PaymentPage, PaymentUpdate};
pub use students::{StudentCreate, StudentPage, StudentUpdate};

pub(crate) use campaigns::__path_create_campaign;
pub(crate) use campaigns::{__path_get_campaign, __path_list_campaigns, __path_update_campaign};
pub(crate) use courses::{
    __path_create_course, __path_get_course, __path_list_courses, __path_update_course,
};
pub(crate) use enrollments::{
    __path_cancel_enrollment, __path_complete_enrollment, __path_create_enrollment,
    __path_get_enrollment, __path_list_enrollments, __path_update_enrollment,
};
pub(crate) use leads::{
    __path_convert_lead, __path_create_lead, __path_get_lead, __path_list_leads,
    __path_set_lead_status, __path_update_lead,
};
pub(crate) use payments::{
    __path_create_payment, __path_fail_payment, __path_get_payment, __path_list_payments,
    __path_refund_payment, __path_succeed_payment, __path_update_payment,
};
pub(crate) use students::{
    __path_create_student, __path_get_student, __path_list_students, __path_update_student,
};

/// Largest request body accepted (bytes); larger ones get a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Default and largest page size of a list.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size; larger `limit`s are capped to it.
pub const MAX_LIMIT: i64 = 500;

/// Shared state of every handler.
#[derive(Debug)]
pub struct App {
    /// The CRM database.
    pub pool: PgPool,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
}

/// The handlers' state.
pub type AppState = Arc<App>;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(courses::routes())
        .merge(campaigns::routes())
        .merge(leads::routes())
        .merge(students::routes())
        .merge(enrollments::routes())
        .merge(payments::routes())
        .route("/openapi.json", get(openapi_json));
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&app.pool)
        .await
    {
        Ok(_) => "ready".into_response(),
        Err(e) => ApiError::Unavailable(format!("database not reachable: {e}")).into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// The spec answers any valid token (it is data about the API, not CRM data).
async fn openapi_json(_who: crate::auth::Principal) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::spec_json(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

/// The body of a request, with the size cap answered as a 413 problem.
pub(crate) fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::field("body", r.body_text())
        }
    })
}

/// Rows that list in (`created_at`, `id`) order.
pub(crate) trait Keyed {
    fn key(&self) -> (DateTime<Utc>, Uuid);
}

macro_rules! keyed {
    ($($t:ty),+) => { $(impl Keyed for $t { fn key(&self) -> (DateTime<Utc>, Uuid) { (self.created_at, self.id) } })+ };
}
keyed!(
    crate::model::Course,
    crate::model::Campaign,
    crate::model::Lead,
    crate::model::Student,
    crate::model::Enrollment,
    crate::model::Payment
);

/// Page size and position of a list request.
pub(crate) struct Paging {
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, Uuid), String> {
    let bad = || "is not a cursor this API returned".to_owned();
    let (micros, id) = s.split_once('~').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

fn cursor_of(key: (DateTime<Utc>, Uuid)) -> String {
    format!("{}~{}", key.0.timestamp_micros(), key.1.simple())
}

impl Paging {
    pub(crate) fn from_query(q: &mut Query) -> Self {
        let limit = q
            .get("limit", |s| match s.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
                _ => Err(format!(
                    "must be an integer >= 1 (values above {MAX_LIMIT} are capped)"
                )),
            })
            .unwrap_or(DEFAULT_LIMIT);
        let after = q.get("cursor", parse_cursor);
        Self { limit, after }
    }
}

/// Finish a `SELECT * FROM … WHERE …` with keyset pagination and run it.
pub(crate) async fn fetch_page<T>(
    pool: &PgPool,
    mut qb: QueryBuilder<Postgres>,
    paging: Paging,
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + Keyed,
{
    if let Some((at, id)) = paging.after {
        qb.push(" AND (created_at, id) > (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(paging.limit + 1);
    let mut rows: Vec<T> = qb.build_query_as().fetch_all(pool).await?;
    let next = if rows.len() as i64 > paging.limit {
        rows.truncate(paging.limit as usize);
        rows.last().map(|r| cursor_of(r.key()))
    } else {
        None
    };
    Ok((rows, next))
}

/// One column assignment of a partial update.
pub(crate) enum Val {
    Text(Option<String>),
    Int(i64),
    Bool(bool),
    Date(Option<NaiveDate>),
    Ts(Option<DateTime<Utc>>),
    Id(Option<Uuid>),
}

/// Run `UPDATE crm.<table> SET … WHERE id = $id RETURNING *` (or just read the row when nothing changes).
pub(crate) async fn update_row<T>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    table: &'static str,
    id: Uuid,
    sets: Vec<(&'static str, Val)>,
) -> Result<Option<T>, ApiError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut qb = QueryBuilder::<Postgres>::new("");
    if sets.is_empty() {
        qb.push("SELECT * FROM crm.")
            .push(table)
            .push(" WHERE id = ")
            .push_bind(id)
            .push(" FOR UPDATE");
    } else {
        qb.push("UPDATE crm.").push(table).push(" SET ");
        let mut sep = qb.separated(", ");
        for (col, val) in sets {
            sep.push(col).push_unseparated(" = ");
            match val {
                Val::Text(v) => sep.push_bind_unseparated(v),
                Val::Int(v) => sep.push_bind_unseparated(v),
                Val::Bool(v) => sep.push_bind_unseparated(v),
                Val::Date(v) => sep.push_bind_unseparated(v),
                Val::Ts(v) => sep.push_bind_unseparated(v),
                Val::Id(v) => sep.push_bind_unseparated(v),
            };
        }
        qb.push(" WHERE id = ").push_bind(id).push(" RETURNING *");
    }
    Ok(qb.build_query_as().fetch_optional(&mut **tx).await?)
}

/// Query parameters as a map; parsing never fails (every value is validated by the handler).
pub(crate) fn params(raw: &axum::extract::RawQuery) -> HashMap<String, String> {
    raw.0
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}
