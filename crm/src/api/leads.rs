//! Leads and their funnel: new → contacted → qualified → converted, or lost.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppState, Paging, Val, body, fetch_page, params, update_row};
use crate::auth::{Access, Principal, Resource};
use crate::error::ApiError;
use crate::model::{Lead, LeadSource, LeadStatus, Student};
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/leads", get(list_leads).post(create_lead))
        .route("/leads/{id}", get(get_lead).patch(update_lead))
        .route("/leads/{id}/status", post(set_lead_status))
        .route("/leads/{id}/convert", post(convert_lead))
}

/// A new lead (status `new`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadCreate {
    #[schema(format = "email", max_length = 500)]
    pub email: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub full_name: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub phone: Option<String>,
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    pub source: LeadSource,
    pub campaign_id: Option<Uuid>,
    pub course_interest_id: Option<Uuid>,
    /// Defaults to false.
    pub marketing_opt_in: Option<bool>,
}

/// Changes to a lead's details (status moves through `/status` and `/convert`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadUpdate {
    #[schema(format = "email", max_length = 500)]
    pub email: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub full_name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub phone: Option<String>,
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    pub source: Option<LeadSource>,
    pub campaign_id: Option<Uuid>,
    pub course_interest_id: Option<Uuid>,
    pub marketing_opt_in: Option<bool>,
}

/// Target of a funnel move (`converted` goes through `/convert`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadMove {
    Contacted,
    Qualified,
    Lost,
}

/// A funnel move.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadStatusChange {
    pub status: LeadMove,
}

/// Options of a conversion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadConvert {
    /// Link this existing student instead of finding or creating one by e-mail.
    pub student_id: Option<Uuid>,
}

/// The converted lead and its student.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConvertResult {
    pub lead: Lead,
    pub student: Student,
    /// Whether the conversion created the student (false: an existing one was linked).
    pub student_created: bool,
}

/// A page of leads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeadPage {
    pub items: Vec<Lead>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const FIELDS: &[&str] = &[
    "email",
    "full_name",
    "phone",
    "country",
    "source",
    "campaign_id",
    "course_interest_id",
    "marketing_opt_in",
];

#[utoipa::path(post, path = "/api/v1/leads", tag = "leads", request_body = LeadCreate,
    responses((status = 201, description = "Created", body = Lead)))]
pub(crate) async fn create_lead(
    State(app): State<AppState>,
    who: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Lead>), ApiError> {
    who.require(Resource::Leads, Access::Write)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let email = b.required("email", v::email);
    let full_name = b.required("full_name", v::text);
    let phone = b.optional("phone", v::text);
    let country = b.optional("country", v::country);
    let source = b.required("source", v::enumerated::<LeadSource>);
    let campaign_id = b.optional("campaign_id", v::uuid);
    let course_id = b.optional("course_interest_id", v::uuid);
    let opt_in = b.optional("marketing_opt_in", v::boolean).unwrap_or(false);
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let lead: Lead = sqlx::query_as(
        "INSERT INTO crm.leads (email, full_name, phone, country, source, campaign_id, course_interest_id, \
         marketing_opt_in) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
    )
    .bind(email)
    .bind(full_name)
    .bind(phone)
    .bind(country)
    .bind(source.map(LeadSource::as_str))
    .bind(campaign_id)
    .bind(course_id)
    .bind(opt_in)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, "lead.created", lead.id, &lead, lead.updated_at).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(lead)))
}

#[utoipa::path(get, path = "/api/v1/leads", tag = "leads",
    params(("status" = Option<LeadStatus>, Query, description = "Funnel status"),
           ("source" = Option<LeadSource>, Query, description = "Source"),
           ("campaign_id" = Option<Uuid>, Query, description = "Campaign"),
           ("email" = Option<String>, Query, max_length = 500, pattern = "^[^\\u0000]*$", description = "Exact e-mail (case-insensitive)"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = LeadPage)))]
pub(crate) async fn list_leads(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<LeadPage>, ApiError> {
    who.require(Resource::Leads, Access::Read)?;
    let mut q = Query::new(params(&raw), &["status", "source", "campaign_id", "email"]);
    let paging = Paging::from_query(&mut q);
    let status = q.get("status", v::q_enum::<LeadStatus>);
    let source = q.get("source", v::q_enum::<LeadSource>);
    let campaign = q.get("campaign_id", v::q_uuid);
    let email = q.get("email", v::q_text).flatten();
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.leads WHERE TRUE");
    if let Some(s) = status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(s) = source {
        qb.push(" AND source = ").push_bind(s.as_str());
    }
    if let Some(c) = campaign {
        qb.push(" AND campaign_id = ").push_bind(c);
    }
    if let Some(e) = email {
        qb.push(" AND lower(email) = ").push_bind(e.to_lowercase());
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(LeadPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "leads",
    params(("id" = Uuid, Path, description = "Lead id")),
    responses((status = 200, description = "The lead", body = Lead)))]
pub(crate) async fn get_lead(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Lead>, ApiError> {
    who.require(Resource::Leads, Access::Read)?;
    let id = v::path_id("lead", &id)?;
    sqlx::query_as("SELECT * FROM crm.leads WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("lead {id}")))
}

#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = "leads", request_body(content = Option<LeadUpdate>),
    params(("id" = Uuid, Path, description = "Lead id")),
    responses((status = 200, description = "Updated", body = Lead)))]
pub(crate) async fn update_lead(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Lead>, ApiError> {
    who.require(Resource::Leads, Access::Write)?;
    let id = v::path_id("lead", &id)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let mut sets = Vec::new();
    if let Some(Some(e)) = b.patch("email", false, v::email) {
        sets.push(("email", Val::Text(Some(e))));
    }
    if let Some(Some(t)) = b.patch("full_name", false, v::text) {
        sets.push(("full_name", Val::Text(Some(t))));
    }
    if let Some(p) = b.patch("phone", true, v::text) {
        sets.push(("phone", Val::Text(p)));
    }
    if let Some(c) = b.patch("country", true, v::country) {
        sets.push(("country", Val::Text(c)));
    }
    if let Some(Some(s)) = b.patch("source", false, v::enumerated::<LeadSource>) {
        sets.push(("source", Val::Text(Some(s.as_str().to_owned()))));
    }
    if let Some(c) = b.patch("campaign_id", true, v::uuid) {
        sets.push(("campaign_id", Val::Id(c)));
    }
    if let Some(c) = b.patch("course_interest_id", true, v::uuid) {
        sets.push(("course_interest_id", Val::Id(c)));
    }
    if let Some(Some(o)) = b.patch("marketing_opt_in", false, v::boolean) {
        sets.push(("marketing_opt_in", Val::Bool(o)));
    }
    b.finish()?;
    let changed = !sets.is_empty();
    let mut tx = app.pool.begin().await?;
    let lead: Lead = update_row(&mut tx, "leads", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("lead {id}")))?;
    if changed {
        outbox::record(&mut tx, "lead.updated", lead.id, &lead, lead.updated_at).await?;
    }
    tx.commit().await?;
    Ok(Json(lead))
}

async fn lock_lead(tx: &mut sqlx::Transaction<'_, Postgres>, id: Uuid) -> Result<Lead, ApiError> {
    sqlx::query_as("SELECT * FROM crm.leads WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("lead {id}")))
}

/// Whether the funnel allows `from` → `to`.
fn may_move(from: LeadStatus, to: LeadStatus) -> bool {
    use LeadStatus::*;
    matches!(
        (from, to),
        (New, Contacted) | (New | Contacted, Qualified) | (New | Contacted | Qualified, Lost)
    )
}

#[utoipa::path(post, path = "/api/v1/leads/{id}/status", tag = "leads", request_body = LeadStatusChange,
    params(("id" = Uuid, Path, description = "Lead id")),
    responses((status = 200, description = "Moved", body = Lead)))]
pub(crate) async fn set_lead_status(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Lead>, ApiError> {
    who.require(Resource::Leads, Access::Write)?;
    let id = v::path_id("lead", &id)?;
    let mut b = Body::parse(&body(raw)?, &["status"])?;
    let to = b.required("status", v::enumerated::<LeadStatus>);
    if matches!(to, Some(LeadStatus::New | LeadStatus::Converted)) {
        b.error(
            "status",
            "must be contacted, qualified or lost (convert through /convert)",
        );
    }
    b.finish()?;
    let Some(to) = to else {
        return Err(ApiError::field("status", "is required"));
    };
    let mut tx = app.pool.begin().await?;
    let lead = lock_lead(&mut tx, id).await?;
    if !may_move(lead.status, to) {
        return Err(ApiError::Conflict(format!(
            "a {} lead cannot become {to}",
            lead.status
        )));
    }
    let lead: Lead = sqlx::query_as("UPDATE crm.leads SET status = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(to.as_str())
        .fetch_one(&mut *tx)
        .await?;
    outbox::record(&mut tx, "lead.updated", lead.id, &lead, lead.updated_at).await?;
    tx.commit().await?;
    Ok(Json(lead))
}

/// Convert a lead: link or create its student and mark it converted, atomically.
///
/// The lead row is locked first, so concurrent conversions of one lead
/// serialise: the first wins, the others see `converted` and get a 409.
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "leads", request_body(content = Option<LeadConvert>),
    params(("id" = Uuid, Path, description = "Lead id")),
    responses((status = 200, description = "Converted", body = ConvertResult)))]
pub(crate) async fn convert_lead(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<ConvertResult>, ApiError> {
    who.require(Resource::Leads, Access::Write)?;
    who.require(Resource::Students, Access::Write)?;
    let id = v::path_id("lead", &id)?;
    let mut b = Body::parse(&body(raw)?, &["student_id"])?;
    let link = b.optional("student_id", v::uuid);
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let lead = lock_lead(&mut tx, id).await?;
    match lead.status {
        LeadStatus::Converted => {
            return Err(ApiError::Conflict(format!(
                "lead {id} is already converted (student {})",
                lead.student_id.map(|s| s.to_string()).unwrap_or_default()
            )));
        }
        LeadStatus::Lost => {
            return Err(ApiError::Conflict(format!(
                "lead {id} is lost and cannot be converted"
            )));
        }
        _ => {}
    }
    let (student, created) = match link {
        Some(sid) => {
            let s: Student = sqlx::query_as("SELECT * FROM crm.students WHERE id = $1 FOR UPDATE")
                .bind(sid)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| ApiError::field("student_id", "no such student"))?;
            (s, false)
        }
        None => {
            let inserted: Option<Student> = sqlx::query_as(
                "INSERT INTO crm.students (email, full_name, country, marketing_opt_in, lead_id) \
                 VALUES (lower($1), $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING *",
            )
            .bind(&lead.email)
            .bind(&lead.full_name)
            .bind(&lead.country)
            .bind(lead.marketing_opt_in)
            .bind(lead.id)
            .fetch_optional(&mut *tx)
            .await?;
            match inserted {
                Some(s) => (s, true),
                None => {
                    let s: Student = sqlx::query_as(
                        "SELECT * FROM crm.students WHERE email = lower($1) FOR UPDATE",
                    )
                    .bind(&lead.email)
                    .fetch_one(&mut *tx)
                    .await?;
                    (s, false)
                }
            }
        }
    };
    if created {
        outbox::record(
            &mut tx,
            "student.created",
            student.id,
            &student,
            student.updated_at,
        )
        .await?;
    }
    let lead: Lead = sqlx::query_as(
        "UPDATE crm.leads SET status = 'converted', converted_at = now(), student_id = $2 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(student.id)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, "lead.converted", lead.id, &lead, lead.updated_at).await?;
    tx.commit().await?;
    Ok(Json(ConvertResult {
        lead,
        student,
        student_created: created,
    }))
}
