//! Courses: the catalogue (admins write it).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;

use super::{AppState, Paging, Val, body, fetch_page, params, update_row};
use crate::auth::{Access, Principal, Resource};
use crate::error::ApiError;
use crate::model::Course;
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/courses", get(list_courses).post(create_course))
        .route("/courses/{id}", get(get_course).patch(update_course))
}

/// A new course.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseCreate {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub code: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub title: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub category: String,
    #[schema(minimum = 0)]
    pub price_cents: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    pub starts_on: Option<NaiveDate>,
}

/// Changes to a course (absent members stay).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseUpdate {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub code: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub title: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub category: Option<String>,
    #[schema(minimum = 0)]
    pub price_cents: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub starts_on: Option<NaiveDate>,
}

/// A page of courses.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CoursePage {
    pub items: Vec<Course>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const FIELDS: &[&str] = &[
    "code",
    "title",
    "category",
    "price_cents",
    "currency",
    "starts_on",
];

#[utoipa::path(post, path = "/api/v1/courses", tag = "courses", request_body = CourseCreate,
    responses((status = 201, description = "Created", body = Course)))]
pub(crate) async fn create_course(
    State(app): State<AppState>,
    who: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Course>), ApiError> {
    who.require(Resource::Courses, Access::Write)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let code = b.required("code", v::text);
    let title = b.required("title", v::text);
    let category = b.required("category", v::text);
    let price = b.required("price_cents", v::non_negative);
    let currency = b.required("currency", v::currency);
    let starts_on = b.optional("starts_on", v::date);
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let course: Course = sqlx::query_as(
        "INSERT INTO crm.courses (code, title, category, price_cents, currency, starts_on) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
    )
    .bind(code)
    .bind(title)
    .bind(category)
    .bind(price)
    .bind(currency)
    .bind(starts_on)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(
        &mut tx,
        "course.created",
        course.id,
        &course,
        course.updated_at,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(course)))
}

#[utoipa::path(get, path = "/api/v1/courses", tag = "courses",
    params(("category" = Option<String>, Query, max_length = 500, pattern = "^[^\\u0000]*$", description = "Exact category"),
           ("currency" = Option<String>, Query, max_length = 500, pattern = "^[^\\u0000]*$", description = "ISO 4217 code"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = CoursePage)))]
pub(crate) async fn list_courses(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<CoursePage>, ApiError> {
    who.require(Resource::Courses, Access::Read)?;
    let mut q = Query::new(params(&raw), &["category", "currency"]);
    let paging = Paging::from_query(&mut q);
    let category = q.get("category", v::q_text).flatten();
    let currency = q.get("currency", v::q_text).flatten();
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.courses WHERE TRUE");
    if let Some(c) = category {
        qb.push(" AND category = ").push_bind(c);
    }
    if let Some(c) = currency {
        qb.push(" AND currency = ").push_bind(c);
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(CoursePage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/courses/{id}", tag = "courses",
    params(("id" = uuid::Uuid, Path, description = "Course id")),
    responses((status = 200, description = "The course", body = Course)))]
pub(crate) async fn get_course(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Course>, ApiError> {
    who.require(Resource::Courses, Access::Read)?;
    let id = v::path_id("course", &id)?;
    sqlx::query_as("SELECT * FROM crm.courses WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("course {id}")))
}

#[utoipa::path(patch, path = "/api/v1/courses/{id}", tag = "courses", request_body(content = Option<CourseUpdate>),
    params(("id" = uuid::Uuid, Path, description = "Course id")),
    responses((status = 200, description = "Updated", body = Course)))]
pub(crate) async fn update_course(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Course>, ApiError> {
    who.require(Resource::Courses, Access::Write)?;
    let id = v::path_id("course", &id)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let mut sets = Vec::new();
    for col in ["code", "title", "category"] {
        if let Some(Some(t)) = b.patch(col, false, v::text) {
            sets.push((col, Val::Text(Some(t))));
        }
    }
    if let Some(Some(n)) = b.patch("price_cents", false, v::non_negative) {
        sets.push(("price_cents", Val::Int(n)));
    }
    if let Some(Some(c)) = b.patch("currency", false, v::currency) {
        sets.push(("currency", Val::Text(Some(c))));
    }
    if let Some(d) = b.patch("starts_on", true, v::date) {
        sets.push(("starts_on", Val::Date(d)));
    }
    b.finish()?;
    let changed = !sets.is_empty();
    let mut tx = app.pool.begin().await?;
    let course: Course = update_row(&mut tx, "courses", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("course {id}")))?;
    if changed {
        outbox::record(
            &mut tx,
            "course.updated",
            course.id,
            &course,
            course.updated_at,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(course))
}
