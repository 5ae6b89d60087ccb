//! Bearer-JWT authentication and role-based authorisation.
//!
//! Production tokens come from an identity provider (Keycloak-style): RS256,
//! keys published at a JWKS URL, issuer and audience checked. Development and
//! tests use an HS256 shared secret. Roles (`admin`, `sales`, `readonly`) are
//! read from `roles`, `realm_access.roles` or `resource_access.<aud>.roles`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::api::AppState;
use crate::error::{ApiError, CrmError};
use crate::secret::Secret;

/// How tokens are verified.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// HS256 with a shared secret (development).
    Hs256 {
        /// The signing secret.
        secret: Secret,
        /// Expected `iss`, when set.
        issuer: Option<String>,
        /// Expected `aud`, when set.
        audience: Option<String>,
    },
    /// RS256 with keys from a JWKS endpoint.
    Jwks {
        /// The JWKS URL (`…/protocol/openid-connect/certs` on Keycloak).
        url: String,
        /// Expected `iss`.
        issuer: String,
        /// Expected `aud`.
        audience: String,
    },
}

/// A CRM role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads everything, writes the sales side (not the course catalogue).
    Sales,
    /// Reads everything, writes nothing.
    Readonly,
}

/// What a request wants to touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Courses,
    Campaigns,
    Leads,
    Students,
    Enrollments,
    Payments,
}

/// Reading or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Role {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "sales" => Some(Self::Sales),
            "readonly" => Some(Self::Readonly),
            _ => None,
        }
    }

    /// The permission table: who may do what to which resource.
    pub fn allows(self, resource: Resource, access: Access) -> bool {
        match (self, access) {
            (_, Access::Read) => true,
            (Self::Admin, Access::Write) => true,
            (Self::Sales, Access::Write) => resource != Resource::Courses,
            (Self::Readonly, Access::Write) => false,
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `sub` of the token.
    pub subject: String,
    /// Known roles in the token.
    pub roles: Vec<Role>,
}

impl Principal {
    /// 403 unless one of the caller's roles allows `access` to `resource`.
    pub fn require(&self, resource: Resource, access: Access) -> Result<(), ApiError> {
        if self.roles.iter().any(|r| r.allows(resource, access)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the token's roles do not allow {} access to {}",
                match access {
                    Access::Read => "read",
                    Access::Write => "write",
                },
                format!("{resource:?}").to_lowercase()
            )))
        }
    }
}

/// Verifies tokens; caches JWKS keys and refreshes them on an unknown `kid`.
pub struct Authenticator {
    config: AuthConfig,
    jwks: RwLock<Option<(Instant, HashMap<String, DecodingKey>)>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Do not refetch the JWKS more often than this when unknown `kid`s arrive.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

impl Authenticator {
    /// An authenticator for `config`.
    pub fn new(config: AuthConfig) -> Result<Arc<Self>, CrmError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CrmError::Config(format!("http client for JWKS: {e}")))?;
        Ok(Arc::new(Self {
            config,
            jwks: RwLock::new(None),
            http,
        }))
    }

    async fn fetch_jwks(&self, url: &str) -> Result<HashMap<String, DecodingKey>, CrmError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| CrmError::Jwks(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(CrmError::Jwks(format!("GET {url}: HTTP {}", resp.status())));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| CrmError::Jwks(format!("GET {url}: {e}")))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| CrmError::Jwks(format!("{url}: not a JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    keys.insert(kid, k);
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping unusable JWKS key"),
            }
        }
        Ok(keys)
    }

    async fn jwks_key(&self, url: &str, kid: &str) -> Result<DecodingKey, ApiError> {
        if let Some((_, keys)) = &*self.jwks.read().await
            && let Some(k) = keys.get(kid)
        {
            return Ok(k.clone());
        }
        let mut guard = self.jwks.write().await;
        let stale = guard
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= JWKS_MIN_REFRESH);
        if stale {
            let keys = self
                .fetch_jwks(url)
                .await
                .map_err(|e| ApiError::Unavailable(format!("cannot verify tokens now: {e}")))?;
            *guard = Some((Instant::now(), keys));
        }
        guard
            .as_ref()
            .and_then(|(_, keys)| keys.get(kid).cloned())
            .ok_or_else(|| ApiError::Unauthorized(format!("token signed with unknown key {kid:?}")))
    }

    /// Verify a bearer token and read its roles.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let bad =
            |e: jsonwebtoken::errors::Error| ApiError::Unauthorized(format!("invalid token: {e}"));
        let (key, mut validation, audience) = match &self.config {
            AuthConfig::Hs256 {
                secret,
                issuer,
                audience,
            } => {
                let mut v = Validation::new(Algorithm::HS256);
                if let Some(iss) = issuer {
                    v.set_issuer(&[iss]);
                }
                match audience {
                    Some(aud) => v.set_audience(&[aud]),
                    None => v.validate_aud = false,
                }
                (
                    DecodingKey::from_secret(secret.expose().as_bytes()),
                    v,
                    audience.clone(),
                )
            }
            AuthConfig::Jwks {
                url,
                issuer,
                audience,
            } => {
                let header = decode_header(token).map_err(bad)?;
                if header.alg != Algorithm::RS256 {
                    return Err(ApiError::Unauthorized(
                        "token must be signed with RS256".into(),
                    ));
                }
                let kid = header.kid.unwrap_or_default();
                let key = self.jwks_key(url, &kid).await?;
                let mut v = Validation::new(Algorithm::RS256);
                v.set_issuer(&[issuer]);
                v.set_audience(&[audience]);
                (key, v, Some(audience.clone()))
            }
        };
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Value>(token, &key, &validation).map_err(bad)?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut lists: Vec<&Value> = Vec::new();
        lists.extend(claims.get("roles"));
        lists.extend(claims.pointer("/realm_access/roles"));
        if let Some(aud) = &audience {
            lists.extend(
                claims
                    .get("resource_access")
                    .and_then(|r| r.get(aud))
                    .and_then(|r| r.get("roles")),
            );
        }
        let roles = lists
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(Role::parse)
            .collect();
        Ok(Principal { subject, roles })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("Authorization must be `Bearer <token>`".into())
            })?;
        state.auth.verify(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table() {
        use Access::*;
        use Resource::*;
        assert!(Role::Admin.allows(Courses, Write));
        assert!(!Role::Sales.allows(Courses, Write));
        assert!(Role::Sales.allows(Leads, Write));
        assert!(Role::Readonly.allows(Payments, Read));
        assert!(!Role::Readonly.allows(Payments, Write));
    }
}
