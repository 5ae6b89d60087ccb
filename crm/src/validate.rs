//! Request validation that names every invalid field at once.
//!
//! Bodies are parsed into a JSON object first and each member is checked on
//! its own, so a client that sends three bad fields hears about all three in
//! one 422 rather than one per round trip.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::model::TextEnum;

/// Longest text we accept in any field.
const MAX_TEXT: usize = 500;

/// A parser of one JSON value.
pub(crate) type Parser<T> = fn(&Value) -> Result<T, String>;

/// A JSON object body under validation.
pub(crate) struct Body {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Body {
    /// Parse a body that must be a JSON object with only `allowed` members.
    pub(crate) fn parse(bytes: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(bytes)
                .map_err(|e| ApiError::field("body", format!("not valid JSON: {e}")))?
        };
        // No body (or `null`) is an empty object: every member is then absent.
        let value = if value.is_null() {
            Value::Object(Map::new())
        } else {
            value
        };
        let Value::Object(map) = value else {
            return Err(ApiError::field("body", "must be a JSON object"));
        };
        let errors = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| FieldError::new(k.as_str(), "unknown field"))
            .collect();
        Ok(Self { map, errors })
    }

    fn take<T>(&mut self, name: &str, parse: Parser<T>) -> Slot<T> {
        match self.map.get(name) {
            None => Slot::Absent,
            Some(Value::Null) => Slot::Null,
            Some(v) => match parse(v) {
                Ok(t) => Slot::Value(t),
                Err(msg) => {
                    self.errors.push(FieldError::new(name, msg));
                    Slot::Invalid
                }
            },
        }
    }

    /// A member that must be present and valid.
    pub(crate) fn required<T>(&mut self, name: &str, parse: Parser<T>) -> Option<T> {
        match self.take(name, parse) {
            Slot::Value(t) => Some(t),
            Slot::Absent | Slot::Null => {
                self.errors.push(FieldError::new(name, "is required"));
                None
            }
            Slot::Invalid => None,
        }
    }

    /// A member that may be absent or null.
    pub(crate) fn optional<T>(&mut self, name: &str, parse: Parser<T>) -> Option<T> {
        match self.take(name, parse) {
            Slot::Value(t) => Some(t),
            _ => None,
        }
    }

    /// A member of a partial update: absent = keep; null = clear when the
    /// column is `nullable`, keep otherwise.
    pub(crate) fn patch<T>(
        &mut self,
        name: &str,
        nullable: bool,
        parse: Parser<T>,
    ) -> Option<Option<T>> {
        match self.take(name, parse) {
            Slot::Absent | Slot::Invalid => None,
            Slot::Null if nullable => Some(None),
            // A non-nullable column: null means "keep", as if absent.
            Slot::Null => None,
            Slot::Value(t) => Some(Some(t)),
        }
    }

    /// Record a rule that spans fields.
    pub(crate) fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// All errors so far, as one 422.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }
}

enum Slot<T> {
    Absent,
    Null,
    Value(T),
    Invalid,
}

/// Non-empty text (trimmed), at most [`MAX_TEXT`] characters.
pub(crate) fn text(v: &Value) -> Result<String, String> {
    let raw = v.as_str().ok_or("must be a string")?;
    if raw.chars().count() > MAX_TEXT {
        return Err(format!("must be at most {MAX_TEXT} characters"));
    }
    let s = raw.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(s.to_owned())
}

/// An e-mail address: something@something, no spaces.
pub(crate) fn email(v: &Value) -> Result<String, String> {
    let s = text(v)?;
    match s.split_once('@') {
        Some((user, host))
            if !user.is_empty() && !host.is_empty() && !s.contains(char::is_whitespace) =>
        {
            Ok(s)
        }
        _ => Err("must be an e-mail address".into()),
    }
}

/// ISO 4217 code: three upper-case ASCII letters.
pub(crate) fn currency(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err("must be an ISO 4217 code (three upper-case letters)".into())
    }
}

/// ISO 3166-1 alpha-2 code: two upper-case ASCII letters.
pub(crate) fn country(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err("must be an ISO 3166-1 alpha-2 code (two upper-case letters)".into())
    }
}

/// An integer, also when written `12.0` (JSON Schema counts that as an integer).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// An integer ≥ 0.
pub(crate) fn non_negative(v: &Value) -> Result<i64, String> {
    match integer(v) {
        Some(n) if n >= 0 => Ok(n),
        _ => Err("must be an integer >= 0".into()),
    }
}

/// An integer > 0.
pub(crate) fn positive(v: &Value) -> Result<i64, String> {
    match integer(v) {
        Some(n) if n > 0 => Ok(n),
        _ => Err("must be an integer > 0".into()),
    }
}

pub(crate) fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| "must be true or false".into())
}

pub(crate) fn date(v: &Value) -> Result<NaiveDate, String> {
    let s = v.as_str().ok_or("must be a string")?;
    parse_date(s)
}

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| "must be a date (YYYY-MM-DD)".into())
}

pub(crate) fn timestamp(v: &Value) -> Result<DateTime<Utc>, String> {
    let s = v.as_str().ok_or("must be a string")?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp".into())
}

pub(crate) fn uuid(v: &Value) -> Result<Uuid, String> {
    let s = v.as_str().ok_or("must be a string")?;
    Uuid::parse_str(s).map_err(|_| "must be a UUID".into())
}

/// A path id: a malformed one names no entity, so it is a 404.
pub(crate) fn path_id(entity: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("{entity} {raw}")))
}

/// Query-string parameters under validation.
pub(crate) struct Query {
    params: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl Query {
    pub(crate) fn new(params: HashMap<String, String>, allowed: &[&str]) -> Self {
        let errors = params
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()) && !matches!(k.as_str(), "limit" | "cursor"))
            .map(|k| FieldError::new(k.as_str(), "unknown query parameter"))
            .collect();
        Self { params, errors }
    }

    pub(crate) fn get<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.params.get(name)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.errors.push(FieldError::new(name, msg));
                None
            }
        }
    }

    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }
}

pub(crate) fn q_uuid(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|_| "must be a UUID".into())
}

/// A free-text filter; empty (`?email=`) filters on nothing.
pub(crate) fn q_text(s: &str) -> Result<Option<String>, String> {
    if s.len() > MAX_TEXT || s.contains('\0') {
        Err(format!(
            "must be at most {MAX_TEXT} bytes without NUL characters"
        ))
    } else if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(s.to_owned()))
    }
}

/// An enum member in a query string, by its stored text.
pub(crate) fn q_enum<E: TextEnum>(s: &str) -> Result<E, String> {
    E::parse(s).ok_or_else(|| format!("must be one of {}", E::ALL.join(", ")))
}

/// An enum member in a body, by its stored text.
pub(crate) fn enumerated<E: TextEnum>(v: &Value) -> Result<E, String> {
    q_enum(v.as_str().ok_or("must be a string")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bad_field_is_named() {
        let body = br#"{"code": "", "price_cents": -1, "currency": "eur", "extra": 1}"#;
        let mut b =
            Body::parse(body, &["code", "title", "price_cents", "currency"]).expect("object");
        b.required("code", text);
        b.required("title", text);
        b.required("price_cents", non_negative);
        b.required("currency", currency);
        let Err(ApiError::Invalid(errs)) = b.finish() else {
            panic!("must fail")
        };
        let mut fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["code", "currency", "extra", "price_cents", "title"]
        );
    }

    #[test]
    fn scalars_parse() {
        assert_eq!(country(&json!("BR")), Ok("BR".to_owned()));
        assert!(country(&json!("br")).is_err());
        assert!(email(&json!("a b@c")).is_err());
        assert!(positive(&json!(0)).is_err());
        assert!(date(&json!("2026-02-30")).is_err());
        assert!(timestamp(&json!("2026-03-01T10:15:00Z")).is_ok());
    }
}
