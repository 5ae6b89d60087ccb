//! Durations as written in pipeline files: `500ms`, `30s`, `5m`, `1h`, `2d`, or combinations like `1h30m`.

use std::time::Duration;

const EXPECTED: &str =
    "expected a number followed by a unit (ms, s, m, h, d), e.g. 30s, 5m, 1h or 1h30m";

/// Parse a duration.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("invalid duration `{s}`: {EXPECTED}"));
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration `{s}`: {EXPECTED}"));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{s}`: {EXPECTED}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("invalid duration `{s}`: missing unit; {EXPECTED}")),
            other => {
                return Err(format!(
                    "invalid duration `{s}`: unknown unit `{other}`; {EXPECTED}"
                ));
            }
        };
        total = total.saturating_add(n.saturating_mul(ms));
    }
    if total > u128::from(u64::MAX / 2) {
        return Err(format!("invalid duration `{s}`: too large"));
    }
    Ok(Duration::from_millis(
        u64::try_from(total).unwrap_or(u64::MAX),
    ))
}

/// Format a duration compactly (`1.2s`, `340ms`).
pub fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse("5 minutes").is_err());
        assert!(parse("10").is_err());
        assert!(parse("m").is_err());
    }
}
