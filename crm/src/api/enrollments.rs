//! Enrollments: active → completed or cancelled.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppState, Paging, Val, body, fetch_page, params, update_row};
use crate::auth::{Access, Principal, Resource};
use crate::error::ApiError;
use crate::model::{Enrollment, EnrollmentStatus};
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/enrollments",
            get(list_enrollments).post(create_enrollment),
        )
        .route(
            "/enrollments/{id}",
            get(get_enrollment).patch(update_enrollment),
        )
        .route("/enrollments/{id}/complete", post(complete_enrollment))
        .route("/enrollments/{id}/cancel", post(cancel_enrollment))
}

/// A new enrollment (status `active`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentCreate {
    pub student_id: Uuid,
    pub course_id: Uuid,
    /// Defaults to now.
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// Changes to an enrollment (its state moves through `/complete` and `/cancel`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentUpdate {
    pub enrolled_at: Option<DateTime<Utc>>,
}

/// A page of enrollments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentPage {
    pub items: Vec<Enrollment>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/enrollments", tag = "enrollments", request_body = EnrollmentCreate,
    responses((status = 201, description = "Created", body = Enrollment)))]
pub(crate) async fn create_enrollment(
    State(app): State<AppState>,
    who: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Enrollment>), ApiError> {
    who.require(Resource::Enrollments, Access::Write)?;
    let mut b = Body::parse(&body(raw)?, &["student_id", "course_id", "enrolled_at"])?;
    let student = b.required("student_id", v::uuid);
    let course = b.required("course_id", v::uuid);
    let at = b.optional("enrolled_at", v::timestamp);
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let e: Enrollment = sqlx::query_as(
        "INSERT INTO crm.enrollments (student_id, course_id, enrolled_at) \
         VALUES ($1, $2, coalesce($3, now())) RETURNING *",
    )
    .bind(student)
    .bind(course)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, "enrollment.created", e.id, &e, e.updated_at).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(get, path = "/api/v1/enrollments", tag = "enrollments",
    params(("student_id" = Option<Uuid>, Query, description = "Student"),
           ("course_id" = Option<Uuid>, Query, description = "Course"),
           ("status" = Option<EnrollmentStatus>, Query, description = "State"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = EnrollmentPage)))]
pub(crate) async fn list_enrollments(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<EnrollmentPage>, ApiError> {
    who.require(Resource::Enrollments, Access::Read)?;
    let mut q = Query::new(params(&raw), &["student_id", "course_id", "status"]);
    let paging = Paging::from_query(&mut q);
    let student = q.get("student_id", v::q_uuid);
    let course = q.get("course_id", v::q_uuid);
    let status = q.get("status", v::q_enum::<EnrollmentStatus>);
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.enrollments WHERE TRUE");
    if let Some(s) = student {
        qb.push(" AND student_id = ").push_bind(s);
    }
    if let Some(c) = course {
        qb.push(" AND course_id = ").push_bind(c);
    }
    if let Some(s) = status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(EnrollmentPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/enrollments/{id}", tag = "enrollments",
    params(("id" = Uuid, Path, description = "Enrollment id")),
    responses((status = 200, description = "The enrollment", body = Enrollment)))]
pub(crate) async fn get_enrollment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Enrollment>, ApiError> {
    who.require(Resource::Enrollments, Access::Read)?;
    let id = v::path_id("enrollment", &id)?;
    sqlx::query_as("SELECT * FROM crm.enrollments WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("enrollment {id}")))
}

#[utoipa::path(patch, path = "/api/v1/enrollments/{id}", tag = "enrollments", request_body(content = Option<EnrollmentUpdate>),
    params(("id" = Uuid, Path, description = "Enrollment id")),
    responses((status = 200, description = "Updated", body = Enrollment)))]
pub(crate) async fn update_enrollment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Enrollment>, ApiError> {
    who.require(Resource::Enrollments, Access::Write)?;
    let id = v::path_id("enrollment", &id)?;
    let mut b = Body::parse(&body(raw)?, &["enrolled_at"])?;
    let mut sets = Vec::new();
    if let Some(Some(t)) = b.patch("enrolled_at", false, v::timestamp) {
        sets.push(("enrolled_at", Val::Ts(Some(t))));
    }
    b.finish()?;
    let changed = !sets.is_empty();
    let mut tx = app.pool.begin().await?;
    let e: Enrollment = update_row(&mut tx, "enrollments", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("enrollment {id}")))?;
    if changed {
        outbox::record(&mut tx, "enrollment.updated", e.id, &e, e.updated_at).await?;
    }
    tx.commit().await?;
    Ok(Json(e))
}

async fn finish(
    app: &AppState,
    who: &Principal,
    raw_id: &str,
    to: EnrollmentStatus,
) -> Result<Json<Enrollment>, ApiError> {
    who.require(Resource::Enrollments, Access::Write)?;
    let id = v::path_id("enrollment", raw_id)?;
    let mut tx = app.pool.begin().await?;
    let current: Enrollment =
        sqlx::query_as("SELECT * FROM crm.enrollments WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("enrollment {id}")))?;
    if current.status != EnrollmentStatus::Active {
        return Err(ApiError::Conflict(format!(
            "enrollment {id} is {} and only an active enrollment can become {to}",
            current.status
        )));
    }
    let (sql, kind) = match to {
        EnrollmentStatus::Completed => (
            "UPDATE crm.enrollments SET status = 'completed', completed_at = now() WHERE id = $1 RETURNING *",
            "enrollment.completed",
        ),
        _ => (
            "UPDATE crm.enrollments SET status = 'cancelled', cancelled_at = now() WHERE id = $1 RETURNING *",
            "enrollment.cancelled",
        ),
    };
    let e: Enrollment = sqlx::query_as(sql).bind(id).fetch_one(&mut *tx).await?;
    outbox::record(&mut tx, kind, e.id, &e, e.updated_at).await?;
    tx.commit().await?;
    Ok(Json(e))
}

#[utoipa::path(post, path = "/api/v1/enrollments/{id}/complete", tag = "enrollments",
    params(("id" = Uuid, Path, description = "Enrollment id")),
    responses((status = 200, description = "Completed", body = Enrollment)))]
pub(crate) async fn complete_enrollment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Enrollment>, ApiError> {
    finish(&app, &who, &id, EnrollmentStatus::Completed).await
}

#[utoipa::path(post, path = "/api/v1/enrollments/{id}/cancel", tag = "enrollments",
    params(("id" = Uuid, Path, description = "Enrollment id")),
    responses((status = 200, description = "Cancelled", body = Enrollment)))]
pub(crate) async fn cancel_enrollment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Enrollment>, ApiError> {
    finish(&app, &who, &id, EnrollmentStatus::Cancelled).await
}
