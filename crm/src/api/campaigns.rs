//! Campaigns: where leads come from (admins and sales write them).

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
use crate::model::{Campaign, Channel};
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/campaigns", get(list_campaigns).post(create_campaign))
        .route("/campaigns/{id}", get(get_campaign).patch(update_campaign))
}

/// A new campaign.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignCreate {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub name: String,
    pub channel: Channel,
    pub starts_on: NaiveDate,
    /// Not before `starts_on`.
    pub ends_on: Option<NaiveDate>,
    #[schema(minimum = 0)]
    pub budget_cents: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// Changes to a campaign (absent members stay).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignUpdate {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    pub name: Option<String>,
    pub channel: Option<Channel>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    #[schema(minimum = 0)]
    pub budget_cents: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// A page of campaigns.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignPage {
    pub items: Vec<Campaign>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const FIELDS: &[&str] = &[
    "name",
    "channel",
    "starts_on",
    "ends_on",
    "budget_cents",
    "currency",
];

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = CampaignCreate,
    responses((status = 201, description = "Created", body = Campaign)))]
pub(crate) async fn create_campaign(
    State(app): State<AppState>,
    who: Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    who.require(Resource::Campaigns, Access::Write)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let name = b.required("name", v::text);
    let channel = b.required("channel", v::enumerated::<Channel>);
    let starts_on = b.required("starts_on", v::date);
    let ends_on = b.optional("ends_on", v::date);
    let budget = b.required("budget_cents", v::non_negative);
    let currency = b.required("currency", v::currency);
    if let (Some(s), Some(e)) = (starts_on, ends_on)
        && e < s
    {
        b.error("ends_on", "must not be before starts_on");
    }
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let c: Campaign = sqlx::query_as(
        "INSERT INTO crm.campaigns (name, channel, starts_on, ends_on, budget_cents, currency) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
    )
    .bind(name)
    .bind(channel.map(Channel::as_str))
    .bind(starts_on)
    .bind(ends_on)
    .bind(budget)
    .bind(currency)
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, "campaign.created", c.id, &c, c.updated_at).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    params(("channel" = Option<Channel>, Query, description = "Channel"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = CampaignPage)))]
pub(crate) async fn list_campaigns(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<CampaignPage>, ApiError> {
    who.require(Resource::Campaigns, Access::Read)?;
    let mut q = Query::new(params(&raw), &["channel"]);
    let paging = Paging::from_query(&mut q);
    let channel = q.get("channel", v::q_enum::<Channel>);
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.campaigns WHERE TRUE");
    if let Some(c) = channel {
        qb.push(" AND channel = ").push_bind(c.as_str());
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(CampaignPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign", body = Campaign)))]
pub(crate) async fn get_campaign(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    who.require(Resource::Campaigns, Access::Read)?;
    let id = v::path_id("campaign", &id)?;
    sqlx::query_as("SELECT * FROM crm.campaigns WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id}")))
}

#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", request_body(content = Option<CampaignUpdate>),
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "Updated", body = Campaign)))]
pub(crate) async fn update_campaign(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Campaign>, ApiError> {
    who.require(Resource::Campaigns, Access::Write)?;
    let id = v::path_id("campaign", &id)?;
    let mut b = Body::parse(&body(raw)?, FIELDS)?;
    let mut sets = Vec::new();
    if let Some(Some(t)) = b.patch("name", false, v::text) {
        sets.push(("name", Val::Text(Some(t))));
    }
    if let Some(Some(c)) = b.patch("channel", false, v::enumerated::<Channel>) {
        sets.push(("channel", Val::Text(Some(c.as_str().to_owned()))));
    }
    if let Some(Some(d)) = b.patch("starts_on", false, v::date) {
        sets.push(("starts_on", Val::Date(Some(d))));
    }
    if let Some(d) = b.patch("ends_on", true, v::date) {
        sets.push(("ends_on", Val::Date(d)));
    }
    if let Some(Some(n)) = b.patch("budget_cents", false, v::non_negative) {
        sets.push(("budget_cents", Val::Int(n)));
    }
    if let Some(Some(c)) = b.patch("currency", false, v::currency) {
        sets.push(("currency", Val::Text(Some(c))));
    }
    b.finish()?;
    let changed = !sets.is_empty();
    let mut tx = app.pool.begin().await?;
    let c: Campaign = update_row(&mut tx, "campaigns", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id}")))?;
    if changed {
        outbox::record(&mut tx, "campaign.updated", c.id, &c, c.updated_at).await?;
    }
    tx.commit().await?;
    Ok(Json(c))
}
