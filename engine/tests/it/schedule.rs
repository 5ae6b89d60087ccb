//! Intervals across DST changes and month ends; catchup on and off.

use aula_engine::schedule::{Cron, Interval, Schedule};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

fn sched(expr: &str, tz: &str) -> Schedule {
    Schedule::new(Cron::parse(expr).unwrap(), tz.parse::<Tz>().unwrap())
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(tz: &str, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    tz.parse::<Tz>()
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn daily_across_spring_forward_is_23_hours() {
    let s = sched("@daily", "Europe/Madrid");
    let iv = s.interval_containing(utc("2026-03-29T12:00:00Z")).unwrap();
    assert_eq!(iv.start, utc("2026-03-29T00:00:00+01:00"));
    assert_eq!(iv.end, utc("2026-03-30T00:00:00+02:00"));
    assert_eq!((iv.end - iv.start).num_hours(), 23);
}

#[test]
fn daily_across_fall_back_is_25_hours() {
    let s = sched("@daily", "America/New_York");
    let iv = s.interval_containing(utc("2025-11-02T12:00:00Z")).unwrap();
    assert_eq!(iv.start, utc("2025-11-02T00:00:00-04:00"));
    assert_eq!(iv.end, utc("2025-11-03T00:00:00-05:00"));
    assert_eq!((iv.end - iv.start).num_hours(), 25);
}

#[test]
fn nonexistent_local_time_fires_at_end_of_gap() {
    // 02:30 does not exist in New York on 2025-03-09: fire at 03:00 EDT.
    let s = sched("30 2 * * *", "America/New_York");
    let next = s.next_after(utc("2025-03-08T12:00:00Z")).unwrap();
    assert_eq!(next, utc("2025-03-08T02:30:00-05:00").max(next));
    let after = s.next_after(utc("2025-03-09T00:00:00-05:00")).unwrap();
    assert_eq!(after, utc("2025-03-09T03:00:00-04:00"));
    // And the day after is back to 02:30.
    assert_eq!(
        s.next_after(after).unwrap(),
        utc("2025-03-10T02:30:00-04:00")
    );
}

#[test]
fn ambiguous_local_time_fires_once() {
    // 01:30 happens twice in New York on 2025-11-02: fire once, at the first.
    let s = sched("30 1 * * *", "America/New_York");
    let first = s.next_after(utc("2025-11-02T00:00:00-04:00")).unwrap();
    assert_eq!(first, utc("2025-11-02T01:30:00-04:00"));
    assert_eq!(
        s.next_after(first).unwrap(),
        utc("2025-11-03T01:30:00-05:00")
    );
}

#[test]
fn hourly_over_fall_back_never_repeats_or_goes_backwards() {
    let s = sched("@hourly", "Europe/Madrid");
    let ivs = s.intervals_between(utc("2025-10-25T20:00:00Z"), utc("2025-10-26T06:00:00Z"));
    for w in ivs.windows(2) {
        assert_eq!(w[0].end, w[1].start);
        assert!(w[0].start < w[0].end);
    }
    assert!(
        ivs.iter()
            .all(|iv| (iv.end - iv.start).num_minutes() <= 120)
    );
}

#[test]
fn monthly_and_month_ends() {
    let s = sched("@monthly", "UTC");
    let iv = s.interval_containing(utc("2024-02-15T00:00:00Z")).unwrap();
    assert_eq!(
        iv,
        Interval {
            start: utc("2024-02-01T00:00:00Z"),
            end: utc("2024-03-01T00:00:00Z")
        }
    );
    assert_eq!((iv.end - iv.start).num_days(), 29); // leap year
    // Day 31 only exists in some months.
    let s31 = sched("0 0 31 * *", "UTC");
    let ivs = s31.intervals_between(utc("2024-01-01T00:00:00Z"), utc("2024-12-31T00:00:00Z"));
    let months: Vec<u32> = ivs
        .iter()
        .map(|iv| chrono::Datelike::month(&iv.start))
        .collect();
    assert_eq!(months, vec![1, 3, 5, 7, 8, 10, 12]);
    // Last day of month boundaries in a zone.
    let m = sched("@monthly", "Asia/Tokyo");
    let iv = m.interval_containing(utc("2024-12-31T16:30:00Z")).unwrap();
    assert_eq!(iv.start, local("Asia/Tokyo", 2025, 1, 1, 0, 0));
}

#[test]
fn weekly_is_sunday_midnight_and_weekday_names_work() {
    let s = sched("@weekly", "UTC");
    let iv = s.interval_containing(utc("2024-05-15T10:00:00Z")).unwrap(); // a Wednesday
    assert_eq!(iv.start, utc("2024-05-12T00:00:00Z"));
    assert_eq!(iv.end, utc("2024-05-19T00:00:00Z"));
    let wd = sched("0 6 * * mon-fri", "UTC");
    let ivs = wd.intervals_between(utc("2024-05-11T00:00:00Z"), utc("2024-05-18T00:00:00Z"));
    assert_eq!(ivs.len(), 5);
    // Both day fields restricted: either matches (Vixie cron).
    let both = sched("0 0 1 * mon", "UTC");
    let ivs = both.intervals_between(utc("2024-07-01T00:00:00Z"), utc("2024-07-31T00:00:00Z"));
    assert_eq!(ivs.len(), 5); // Jul 1 (a Monday) + 8, 15, 22, 29
}

#[test]
fn catchup_creates_every_missed_interval() {
    let s = sched("@daily", "Europe/Madrid");
    let start = local("Europe/Madrid", 2026, 3, 27, 0, 0);
    let now = utc("2026-03-31T10:00:00Z");
    let due = s.due(start, None, true, None, now);
    assert_eq!(due.len(), 4); // 27, 28, 29 (23 h), 30 — the 31st has not closed
    assert_eq!(due[0].start, start);
    assert_eq!((due[2].end - due[2].start).num_hours(), 23);
    // Resuming after the latest created run only yields newer ones.
    let more = s.due(start, None, true, Some(due[1].start), now);
    assert_eq!(more.len(), 2);
    // end_date stops it.
    let capped = s.due(
        start,
        Some(local("Europe/Madrid", 2026, 3, 28, 0, 0)),
        true,
        None,
        now,
    );
    assert_eq!(capped.len(), 2);
}

#[test]
fn no_catchup_creates_only_the_latest() {
    let s = sched("0 * * * *", "UTC");
    let start = utc("2020-01-01T00:00:00Z");
    let now = utc("2026-01-01T10:30:00Z");
    let due = s.due(start, None, false, None, now);
    assert_eq!(
        due,
        vec![Interval {
            start: utc("2026-01-01T09:00:00Z"),
            end: utc("2026-01-01T10:00:00Z")
        }]
    );
    assert!(
        s.due(start, None, false, Some(due[0].start), now)
            .is_empty()
    );
    // Before start_date nothing is due.
    assert!(
        s.due(utc("2027-01-01T00:00:00Z"), None, false, None, now)
            .is_empty()
    );
}
