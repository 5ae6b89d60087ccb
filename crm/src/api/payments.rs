//! Payments: pending → succeeded | failed, succeeded → refunded.
//!
//! Clients retry payment requests (timeouts, app restarts), so creation takes
//! an `Idempotency-Key` header stored in the unique `idempotency_key` column:
//! a retry with the same key and body returns the payment recorded the first
//! time (200) instead of recording it twice. A transition to the state a
//! payment is already in is likewise answered with the payment, unchanged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppState, Paging, Val, body, fetch_page, params, update_row};
use crate::auth::{Access, Principal, Resource};
use crate::error::ApiError;
use crate::model::{Payment, PaymentStatus, Provider};
use crate::outbox;
use crate::validate::{self as v, Body, Query};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/payments", get(list_payments).post(create_payment))
        .route("/payments/{id}", get(get_payment).patch(update_payment))
        .route("/payments/{id}/succeed", post(succeed_payment))
        .route("/payments/{id}/fail", post(fail_payment))
        .route("/payments/{id}/refund", post(refund_payment))
}

/// A new payment (status `pending`) for an enrollment; the student is the enrollment's.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCreate {
    pub enrollment_id: Uuid,
    /// Defaults to the course price.
    #[schema(minimum = 1)]
    pub amount_cents: Option<i64>,
    /// Defaults to the course currency.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub provider: Provider,
}

/// Changes to a pending payment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentUpdate {
    #[schema(minimum = 1)]
    pub amount_cents: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub provider: Option<Provider>,
}

/// A page of payments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentPage {
    pub items: Vec<Payment>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The `Idempotency-Key` header, when given.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match raw.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Ok(Some(k.trim().to_owned())),
        _ => Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = PaymentCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe")),
    responses((status = 201, description = "Recorded", body = Payment),
              (status = 200, description = "A retry of an already recorded request (same Idempotency-Key)", body = Payment)))]
pub(crate) async fn create_payment(
    State(app): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Payment>), ApiError> {
    who.require(Resource::Payments, Access::Write)?;
    let key = idempotency_key(&headers)?;
    let mut b = Body::parse(
        &body(raw)?,
        &["enrollment_id", "amount_cents", "currency", "provider"],
    )?;
    let enrollment = b.required("enrollment_id", v::uuid);
    let amount = b.optional("amount_cents", v::positive);
    let currency = b.optional("currency", v::currency);
    let provider = b.required("provider", v::enumerated::<Provider>);
    b.finish()?;
    let (Some(enrollment), Some(provider)) = (enrollment, provider) else {
        return Err(ApiError::field(
            "body",
            "enrollment_id and provider are required",
        ));
    };
    let mut tx = app.pool.begin().await?;
    let found: Option<(Uuid, i64, String)> = sqlx::query_as(
        "SELECT e.student_id, c.price_cents, c.currency FROM crm.enrollments e \
         JOIN crm.courses c ON c.id = e.course_id WHERE e.id = $1",
    )
    .bind(enrollment)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((student, price, course_currency)) = found else {
        return Err(ApiError::field("enrollment_id", "no such enrollment"));
    };
    let amount = amount.unwrap_or(price);
    if amount <= 0 {
        return Err(ApiError::field(
            "amount_cents",
            "is required: the course is free",
        ));
    }
    let currency = currency.unwrap_or(course_currency);
    let inserted: Option<Payment> = sqlx::query_as(
        "INSERT INTO crm.payments (enrollment_id, student_id, amount_cents, currency, provider, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
    )
    .bind(enrollment)
    .bind(student)
    .bind(amount)
    .bind(&currency)
    .bind(provider.as_str())
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(p) = inserted else {
        // Only a keyed insert can conflict: this is a retry.
        let existing: Payment =
            sqlx::query_as("SELECT * FROM crm.payments WHERE idempotency_key = $1")
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
        let same = existing.enrollment_id == enrollment
            && existing.amount_cents == amount
            && existing.currency == currency
            && existing.provider == provider;
        if !same {
            return Err(ApiError::Conflict(
                "this Idempotency-Key was already used for a different payment request".into(),
            ));
        }
        return Ok((StatusCode::OK, Json(existing)));
    };
    outbox::record(&mut tx, "payment.created", p.id, &p, p.updated_at).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/api/v1/payments", tag = "payments",
    params(("student_id" = Option<Uuid>, Query, description = "Student"),
           ("enrollment_id" = Option<Uuid>, Query, description = "Enrollment"),
           ("status" = Option<PaymentStatus>, Query, description = "State"),
           ("provider" = Option<Provider>, Query, description = "Provider"),
           ("limit" = Option<i64>, Query, minimum = 1, description = "Page size (capped at 500)"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}~[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = PaymentPage)))]
pub(crate) async fn list_payments(
    State(app): State<AppState>,
    who: Principal,
    raw: RawQuery,
) -> Result<Json<PaymentPage>, ApiError> {
    who.require(Resource::Payments, Access::Read)?;
    let mut q = Query::new(
        params(&raw),
        &["student_id", "enrollment_id", "status", "provider"],
    );
    let paging = Paging::from_query(&mut q);
    let student = q.get("student_id", v::q_uuid);
    let enrollment = q.get("enrollment_id", v::q_uuid);
    let status = q.get("status", v::q_enum::<PaymentStatus>);
    let provider = q.get("provider", v::q_enum::<Provider>);
    q.finish()?;
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM crm.payments WHERE TRUE");
    if let Some(s) = student {
        qb.push(" AND student_id = ").push_bind(s);
    }
    if let Some(e) = enrollment {
        qb.push(" AND enrollment_id = ").push_bind(e);
    }
    if let Some(s) = status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(p) = provider {
        qb.push(" AND provider = ").push_bind(p.as_str());
    }
    let (items, next_cursor) = fetch_page(&app.pool, qb, paging).await?;
    Ok(Json(PaymentPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, description = "The payment", body = Payment)))]
pub(crate) async fn get_payment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    who.require(Resource::Payments, Access::Read)?;
    let id = v::path_id("payment", &id)?;
    sqlx::query_as("SELECT * FROM crm.payments WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("payment {id}")))
}

async fn lock_payment(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Payment, ApiError> {
    sqlx::query_as("SELECT * FROM crm.payments WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("payment {id}")))
}

#[utoipa::path(patch, path = "/api/v1/payments/{id}", tag = "payments", request_body(content = Option<PaymentUpdate>),
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, description = "Updated", body = Payment)))]
pub(crate) async fn update_payment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Payment>, ApiError> {
    who.require(Resource::Payments, Access::Write)?;
    let id = v::path_id("payment", &id)?;
    let mut b = Body::parse(&body(raw)?, &["amount_cents", "currency", "provider"])?;
    let mut sets = Vec::new();
    if let Some(Some(n)) = b.patch("amount_cents", false, v::positive) {
        sets.push(("amount_cents", Val::Int(n)));
    }
    if let Some(Some(c)) = b.patch("currency", false, v::currency) {
        sets.push(("currency", Val::Text(Some(c))));
    }
    if let Some(Some(p)) = b.patch("provider", false, v::enumerated::<Provider>) {
        sets.push(("provider", Val::Text(Some(p.as_str().to_owned()))));
    }
    b.finish()?;
    let mut tx = app.pool.begin().await?;
    let current = lock_payment(&mut tx, id).await?;
    if sets.is_empty() {
        return Ok(Json(current));
    }
    if current.status != PaymentStatus::Pending {
        return Err(ApiError::Conflict(format!(
            "payment {id} is {} and can no longer be edited",
            current.status
        )));
    }
    let p: Payment = update_row(&mut tx, "payments", id, sets)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("payment {id}")))?;
    outbox::record(&mut tx, "payment.updated", p.id, &p, p.updated_at).await?;
    tx.commit().await?;
    Ok(Json(p))
}

async fn transition(
    app: &AppState,
    who: &Principal,
    raw_id: &str,
    to: PaymentStatus,
) -> Result<Json<Payment>, ApiError> {
    use PaymentStatus::*;
    who.require(Resource::Payments, Access::Write)?;
    let id = v::path_id("payment", raw_id)?;
    let mut tx = app.pool.begin().await?;
    let current = lock_payment(&mut tx, id).await?;
    if current.status == to {
        // A retried transition: already done, nothing to record.
        return Ok(Json(current));
    }
    let (sql, kind) = match (current.status, to) {
        (Pending, Succeeded) => (
            "UPDATE crm.payments SET status = 'succeeded', paid_at = now() WHERE id = $1 RETURNING *",
            "payment.succeeded",
        ),
        (Pending, Failed) => (
            "UPDATE crm.payments SET status = 'failed' WHERE id = $1 RETURNING *",
            "payment.failed",
        ),
        (Succeeded, Refunded) => (
            "UPDATE crm.payments SET status = 'refunded', refunded_at = greatest(now(), paid_at) WHERE id = $1 RETURNING *",
            "payment.refunded",
        ),
        (from, to) => {
            return Err(ApiError::Conflict(format!(
                "a {from} payment cannot become {to}"
            )));
        }
    };
    let p: Payment = sqlx::query_as(sql).bind(id).fetch_one(&mut *tx).await?;
    outbox::record(&mut tx, kind, p.id, &p, p.updated_at).await?;
    tx.commit().await?;
    Ok(Json(p))
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/succeed", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, description = "Succeeded (or already was)", body = Payment)))]
pub(crate) async fn succeed_payment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    transition(&app, &who, &id, PaymentStatus::Succeeded).await
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/fail", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, description = "Failed (or already was)", body = Payment)))]
pub(crate) async fn fail_payment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    transition(&app, &who, &id, PaymentStatus::Failed).await
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/refund", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, description = "Refunded (or already was)", body = Payment)))]
pub(crate) async fn refund_payment(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    transition(&app, &who, &id, PaymentStatus::Refunded).await
}
