//! Schedules, data intervals and logical dates.
//!
//! A schedule fires at wall-clock times in the pipeline's IANA time zone.
//! Consecutive fire times bound a data interval `[start, end)`; the run for it
//! is created when `end` has passed and its logical date is `start`.
//!
//! DST: cron fields are matched against *local* wall-clock time. A local time
//! that does not exist (spring forward) fires at the first instant after the
//! gap; a local time that occurs twice (fall back) fires once, at its first
//! occurrence. So `@daily` is one run per calendar day all year round, and a
//! 23- or 25-hour day is just a shorter or longer interval.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

/// A parsed 5-field cron expression (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    dom_star: bool,
    dow_star: bool,
    source: String,
}

const EXPECTED: &str = "expected 5 fields (minute hour day-of-month month day-of-week) or one of @hourly, @daily, @weekly, @monthly, @yearly";

fn parse_field(field: &str, name: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{name} field `{field}`: step `{s}` is not a number"))?;
                if step == 0 {
                    return Err(format!("{name} field `{field}`: step must be at least 1"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(lo + u32::try_from(i).unwrap_or(0));
            }
            let v: u32 = s
                .parse()
                .map_err(|_| format!("{name} field `{field}`: `{s}` is not a number"))?;
            // Day-of-week 7 is Sunday as well as 0.
            let v = if name == "day-of-week" && v == 7 {
                0
            } else {
                v
            };
            if v < lo || v > hi {
                return Err(format!(
                    "{name} field `{field}`: {s} is out of range {lo}-{hi}"
                ));
            }
            Ok(v)
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!(
                    "{name} field `{field}`: range {a}-{b} is backwards"
                ));
            }
            (a, b)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    if bits == 0 {
        return Err(format!("{name} field `{field}` is empty"));
    }
    Ok(bits)
}

impl Cron {
    /// Parse a 5-field expression or a `@` macro.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let source = expr.trim().to_owned();
        let expanded = match source.as_str() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            s if s.starts_with('@') => {
                return Err(format!("unknown schedule macro `{s}`; {EXPECTED}"));
            }
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "invalid cron expression `{source}`: found {} fields, {EXPECTED}",
                fields.len()
            ));
        }
        let wrap = |r: Result<u64, String>| {
            r.map_err(|e| format!("invalid cron expression `{source}`: {e}"))
        };
        const MONTHS: &[&str] = &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        Ok(Cron {
            minutes: wrap(parse_field(fields[0], "minute", 0, 59, &[]))?,
            hours: wrap(parse_field(fields[1], "hour", 0, 23, &[]))?,
            days: wrap(parse_field(fields[2], "day-of-month", 1, 31, &[]))?,
            months: wrap(parse_field(fields[3], "month", 1, 12, MONTHS))?,
            weekdays: wrap(parse_field(fields[4], "day-of-week", 0, 7, DAYS))?,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
            source,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        // Vixie cron: when both are restricted, either may match.
        match (self.dom_star, self.dow_star) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// The first local wall-clock time strictly after `t` that matches.
    pub fn next_local(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = t + Duration::days(366 * 5);
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_time(NaiveTime::MIN);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_time(NaiveTime::MIN);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// Map a local wall-clock time to an instant: the earliest of an ambiguous
/// pair, the first instant after the gap for a time that does not exist.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // The first local minute after the gap (gaps are at most a few hours).
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// When a pipeline runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The cron expression.
    pub cron: Cron,
    /// The time zone its fields are read in.
    pub tz: Tz,
}

/// One data interval `[start, end)`; its logical date is `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// Inclusive start, also the logical date.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl Schedule {
    /// Build from parts.
    pub fn new(cron: Cron, tz: Tz) -> Self {
        Schedule { cron, tz }
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut local = t.with_timezone(&self.tz).naive_local();
        // A few iterations guard against DST mappings that land on or before `t`.
        for _ in 0..8 {
            let next = self.cron.next_local(local)?;
            let instant = resolve_local(self.tz, next);
            if instant > t {
                return Some(instant);
            }
            local = next;
        }
        None
    }

    /// The latest fire time at or before `t`.
    pub fn at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Step back in growing windows until a fire time is found, then walk forward.
        let mut back = Duration::hours(2);
        for _ in 0..20 {
            let from = t - back;
            let mut cur = self.next_after(from)?;
            if cur <= t {
                loop {
                    match self.next_after(cur) {
                        Some(n) if n <= t => cur = n,
                        _ => return Some(cur),
                    }
                }
            }
            back = back * 4;
        }
        None
    }

    /// The interval that starts at a fire time `start`.
    pub fn interval_starting(&self, start: DateTime<Utc>) -> Option<Interval> {
        Some(Interval {
            start,
            end: self.next_after(start)?,
        })
    }

    /// The interval containing `t` (`start <= t < end`).
    pub fn interval_containing(&self, t: DateTime<Utc>) -> Option<Interval> {
        let start = self.at_or_before(t)?;
        self.interval_starting(start)
    }

    /// Every interval whose start is in `[from, to]` (both instants), in order.
    pub fn intervals_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Interval> {
        let mut out = Vec::new();
        let mut start = match self.at_or_before(from) {
            Some(s) if s == from => s,
            _ => match self.next_after(from) {
                Some(s) => s,
                None => return out,
            },
        };
        while start <= to {
            let Some(end) = self.next_after(start) else {
                break;
            };
            out.push(Interval { start, end });
            start = end;
        }
        out
    }

    /// Intervals that have closed by `now` and should have a run.
    ///
    /// `after`: logical date of the latest run already created, if any.
    /// With catchup every missed interval since `start_date` (or `after`) is
    /// returned; without, only the latest closed one (when it is newer than `after`).
    pub fn due(
        &self,
        start_date: DateTime<Utc>,
        end_date: Option<DateTime<Utc>>,
        catchup: bool,
        after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Vec<Interval> {
        let in_range = |iv: &Interval| {
            iv.start >= start_date && end_date.is_none_or(|e| iv.start <= e) && iv.end <= now
        };
        if catchup {
            let first = match after {
                Some(a) => self.next_after(a),
                None => self
                    .at_or_before(start_date)
                    .filter(|s| *s == start_date)
                    .or_else(|| self.next_after(start_date)),
            };
            let mut out = Vec::new();
            let Some(mut start) = first else { return out };
            while let Some(end) = self.next_after(start) {
                let iv = Interval { start, end };
                if !in_range(&iv) {
                    break;
                }
                out.push(iv);
                start = end;
                if out.len() >= 100_000 {
                    break;
                }
            }
            out
        } else {
            // The latest closed interval: it ends at the last fire time <= now.
            let Some(end) = self.at_or_before(now) else {
                return Vec::new();
            };
            let Some(start) = self.at_or_before(end - Duration::microseconds(1)) else {
                return Vec::new();
            };
            let mut iv = Interval { start, end };
            if let Some(e) = end_date
                && iv.start > e
            {
                match self.at_or_before(e) {
                    Some(s) => match self.interval_starting(s) {
                        Some(i) => iv = i,
                        None => return Vec::new(),
                    },
                    None => return Vec::new(),
                }
            }
            if !in_range(&iv) || after.is_some_and(|a| a >= iv.start) {
                return Vec::new();
            }
            vec![iv]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_fields() {
        assert!(Cron::parse("*/15 * * * *").is_ok());
        assert!(Cron::parse("0 3 * * mon-fri").is_ok());
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("* * *").is_err());
        assert!(Cron::parse("@fortnightly").is_err());
    }
}
