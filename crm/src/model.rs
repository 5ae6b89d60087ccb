//! The contract's entities (§1) as the API serves them and as `crm.events`
//! carries them: `data` of an event is the entity's row after the change.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A text value the database held that is not one of an enum's variants
/// (someone wrote it with SQL around the checks).
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownVariant {
    kind: &'static str,
    value: String,
}

/// An enum stored as text.
pub trait TextEnum: Sized + Copy {
    /// Every variant's text.
    const ALL: &'static [&'static str];
    /// Parse the stored text.
    fn parse(s: &str) -> Option<Self>;
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $(#[doc = $s] $var),+ }

        impl $name {
            /// Every variant's text, as the database stores it.
            pub const ALL: &'static [&'static str] = &[$($s),+];

            /// The text the database stores.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$var => $s),+ }
            }

            /// Parse the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$var),)+ _ => None }
            }
        }

        impl TextEnum for $name {
            const ALL: &'static [&'static str] = &[$($s),+];
            fn parse(s: &str) -> Option<Self> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownVariant;
            fn try_from(value: String) -> Result<Self, UnknownVariant> {
                Self::parse(&value).ok_or(UnknownVariant { kind: stringify!($name), value })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Marketing channel of a campaign.
    Channel { Email => "email", Whatsapp => "whatsapp", Push => "push", Ads => "ads", Event => "event" }
);
text_enum!(
    /// Where a lead came from.
    LeadSource { Web => "web", Referral => "referral", Ads => "ads", Event => "event", Partner => "partner" }
);
text_enum!(
    /// A lead's place in the funnel.
    LeadStatus { New => "new", Contacted => "contacted", Qualified => "qualified", Converted => "converted", Lost => "lost" }
);
text_enum!(
    /// An enrollment's state.
    EnrollmentStatus { Active => "active", Completed => "completed", Cancelled => "cancelled" }
);
text_enum!(
    /// Payment service provider.
    Provider { Stripe => "stripe", Paypal => "paypal" }
);
text_enum!(
    /// A payment's state.
    PaymentStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed", Refunded => "refunded" }
);

/// A course on sale.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Course {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub code: String,
    pub title: String,
    pub category: String,
    pub price_cents: i64,
    /// ISO 4217, three upper-case letters.
    pub currency: String,
    pub starts_on: Option<NaiveDate>,
}

/// A marketing campaign.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Campaign {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub budget_cents: i64,
    pub currency: String,
}

/// A prospective student.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Lead {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub email: String,
    pub full_name: String,
    pub phone: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    #[sqlx(try_from = "String")]
    pub source: LeadSource,
    pub campaign_id: Option<Uuid>,
    pub course_interest_id: Option<Uuid>,
    #[sqlx(try_from = "String")]
    pub status: LeadStatus,
    pub marketing_opt_in: bool,
    /// Set exactly when `status` is `converted`.
    pub converted_at: Option<DateTime<Utc>>,
    /// Set exactly when `status` is `converted`.
    pub student_id: Option<Uuid>,
}

/// A student (emails are stored lower-case).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Student {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub email: String,
    pub full_name: String,
    pub country: Option<String>,
    pub marketing_opt_in: bool,
    pub lead_id: Option<Uuid>,
}

/// A student's enrollment in a course.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Enrollment {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub student_id: Uuid,
    pub course_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: EnrollmentStatus,
    pub enrolled_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A payment for an enrollment.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub enrollment_id: Uuid,
    pub student_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub provider: Provider,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    /// Set when `status` is `succeeded` or `refunded`.
    pub paid_at: Option<DateTime<Utc>>,
    /// Set when `status` is `refunded`.
    pub refunded_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
}
