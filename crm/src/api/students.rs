//! Students (emails stored lower-case, unique).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppState, Paging, Val, body, fetch_page, params, update_row};
use crate::auth::{Access, Principal, Resource};
use crate::error::ApiError;
use crate::model::Student;
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/students", get(list_students).post(create_student))
        .route("/students/{id}", get(get_student).patch(update_student))
}

/// A new student.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentCreate {
    /// Stored lower-case; unique.
    #[schema(format = "email", max_length = 500)]
    pub email: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub full_name: String,
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// Defaults to false.
    pub marketing_opt_in: Option<bool>,
    pub lead_id: Option<Uuid>,
}

/// Changes to a student (absent members stay).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentUpdate {
    #[schema(format = "email", max_length = 500)]
    pub email: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub full_name: Option<String>,
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    pub marketing_opt_in: Option<bool>,
}

/// A page of students.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StudentPage {
    pub items: Vec<Student>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn lower_email(v: &serde_json::Value) -> Result<String, String> {
    v::email(v).map(|e| e.to_lowercase())
}

#[utoipa::path(post, path = "/api/v1/students", tag = "students", request_body = StudentCreate,
    responses((status = 201, description = "Created", body = Student)))]
pub(crate) async fn create_student(
    State(app): State<AppState>,
    who: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Student>), ApiError> {
    who.require(Resource::Students, Access::Write)?;
    let mut b = Body::parse(
        &body(raw)?,
        &[
            "email",
            "full_name",
            "country",
            "marketing_opt_in",
            "lead_id",
        ],
    )?;
    let email = b.required("email", lower_email);
    let full_name = b.required("full_name", v::text);
    let country = b.optional("country", v::country);
    let opt_in = b.optional("marketing_opt_in", v::boolean).unwrap_or(false);
    let lead_id = b.optional("lead_id", v::uuid);
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let s: Student = sqlx::query_as(
        "INSERT INTO crm.students (email, full_name, country, marketing_opt_in, lead_id) \
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(email)
    .bind(full_name)
    .bind(country)
    .bind(opt_in)
    .bind(lead_id)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, "student.created", s.id, &s, s.updated_at).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(get, path = "/api/v1/students", tag = "students",
    params(("email" = Option<String>, Query, max_length = 500, pattern = "^[^\\u0000]*$", description = "Exact e-mail (case-insensitive)"),
           ("country" = Option<String>, Query, max_length = 500, pattern = "^[^\\u0000]*$", description = "ISO 3166-1 alpha-2"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = StudentPage)))]
pub(crate) async fn list_students(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<StudentPage>, ApiError> {
    who.require(Resource::Students, Access::Read)?;
    let mut q = Query::new(params(&raw), &["email", "country"]);
    let paging = Paging::from_query(&mut q);
    let email = q.get("email", v::q_text).flatten();
    let country = q.get("country", v::q_text).flatten();
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.students WHERE TRUE");
    if let Some(e) = email {
        qb.push(" AND email = ").push_bind(e.to_lowercase());
    }
    if let Some(c) = country {
        qb.push(" AND country = ").push_bind(c);
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(StudentPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/students/{id}", tag = "students",
    params(("id" = uuid::Uuid, Path, description = "Student id")),
    responses((status = 200, description = "The student", body = Student)))]
pub(crate) async fn get_student(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Student>, ApiError> {
    who.require(Resource::Students, Access::Read)?;
    let id = v::path_id("student", &id)?;
    sqlx::query_as("SELECT * FROM crm.students WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("student {id}")))
}

#[utoipa::path(patch, path = "/api/v1/students/{id}", tag = "students", request_body(content = Option<StudentUpdate>),
    params(("id" = uuid::Uuid, Path, description = "Student id")),
    responses((status = 200, description = "Updated", body = Student)))]
pub(crate) async fn update_student(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Student>, ApiError> {
    who.require(Resource::Students, Access::Write)?;
    let id = v::path_id("student", &id)?;
    let mut b = Body::parse(
        &body(raw)?,
        &["email", "full_name", "country", "marketing_opt_in"],
    )?;
    let mut sets = Vec::new();
    if let Some(Some(e)) = b.patch("email", false, lower_email) {
        sets.push(("email", Val::Text(Some(e))));
    }
    if let Some(Some(t)) = b.patch("full_name", false, v::text) {
        sets.push(("full_name", Val::Text(Some(t))));
    }
    if let Some(c) = b.patch("country", true, v::country) {
        sets.push(("country", Val::Text(c)));
    }
    if let Some(Some(o)) = b.patch("marketing_opt_in", false, v::boolean) {
        sets.push(("marketing_opt_in", Val::Bool(o)));
    }
    b.finish()?;
    let changed = !sets.is_empty();
    let mut tx = app.pool.begin().await?;
    let s: Student = update_row(&mut tx, "students", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("student {id}")))?;
    if changed {
        outbox::record(&mut tx, "student.updated", s.id, &s, s.updated_at).await?;
    }
    tx.commit().await?;
    Ok(Json(s))
}
