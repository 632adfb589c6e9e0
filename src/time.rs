//! Timestamps: every canonical time is an `i64` count of microseconds since the Unix epoch, UTC.
//!
//! Rules, the same for every format (see README "Time rules"):
//! - RFC 3339 text (`T`, `t` or a space between date and time; fractional seconds optional) with
//!   `Z` or an offset is converted to UTC.
//! - Text without any zone is read as UTC: each of the five APIs documents its times as UTC.
//! - Fractions finer than a microsecond are truncated toward the past.
//! - Epoch numbers are seconds; magnitudes of 10¹¹ or more (year 5138 in seconds) are read as
//!   milliseconds, and of 10¹⁴ or more as microseconds; 10¹⁷ or more is rejected.

use chrono::{DateTime, Datelike, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// Parses an RFC 3339 timestamp into UTC microseconds.
/// Days since 1970-01-01 of a proleptic Gregorian date, `None` if it is not a calendar date
/// (H. Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day == 0 || day > *month_days.get(month.checked_sub(1)? as usize)? {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

pub fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<u32, &'static str> {
        let digits = b.get(from..from + len).ok_or("too short for an RFC 3339 timestamp")?;
        let mut v = 0u32;
        for &c in digits {
            if !c.is_ascii_digit() {
                return Err("expected an RFC 3339 timestamp such as 2024-01-31T12:00:00Z");
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Ok(v)
    };
    let expect = |at: usize, options: &[u8]| -> Result<(), &'static str> {
        match b.get(at) {
            Some(c) if options.contains(c) => Ok(()),
            _ => Err("expected an RFC 3339 timestamp such as 2024-01-31T12:00:00Z"),
        }
    };
    let year = num(0, 4)?;
    expect(4, b"-")?;
    let month = num(5, 2)?;
    expect(7, b"-")?;
    let day = num(8, 2)?;
    let days = days_from_civil(year as i64, month, day).ok_or("not a calendar date")?;
    if b.len() == 10 {
        // A bare date is midnight UTC.
        return Ok(days * MICROS_PER_DAY);
    }
    expect(10, b"Tt ")?;
    let hour = num(11, 2)?;
    expect(13, b":")?;
    let minute = num(14, 2)?;
    expect(16, b":")?;
    let second = num(17, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range");
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100_000;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            micros += (c - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err("expected digits after the decimal point of the seconds");
        }
    }
    let offset_seconds: i64 = match b.get(i) {
        None => 0,
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(i + 1, 2)?;
            let (om, end) = if b.get(i + 3) == Some(&b':') {
                (num(i + 4, 2)?, i + 6)
            } else if b.len() == i + 5 {
                (num(i + 3, 2)?, i + 5)
            } else {
                (0, i + 3)
            };
            if end != b.len() || oh > 23 || om > 59 {
                return Err("malformed UTC offset");
            }
            let off = (oh * 3600 + om * 60) as i64;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err("unexpected text after the time of day"),
    };
    // A leap second (:60) is folded into the next second, as chrono and polars do.
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    Ok(secs * MICROS_PER_SECOND + micros)
}

/// Reads an epoch number (seconds, or milliseconds / microseconds by magnitude) as UTC µs.
pub fn from_epoch(v: f64) -> Result<i64, &'static str> {
    if !v.is_finite() {
        return Err("epoch time is not a finite number");
    }
    let a = v.abs();
    let micros = if a < 1e11 {
        v * 1e6
    } else if a < 1e14 {
        v * 1e3
    } else if a < 1e17 {
        v
    } else {
        return Err("epoch time too large for seconds, milliseconds or microseconds");
    };
    Ok(micros.round() as i64)
}

/// Formats UTC µs as RFC 3339 (`2024-01-31T12:00:00Z`, fractions only when present).
pub fn format_utc(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(t) if micros % MICROS_PER_SECOND == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{micros}µs"),
    }
}

/// A bucket size, as in Polars duration strings: `30m`, `1h`, `6h`, `1d`, `1w`, `1mo`, `1q`, `1y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Minutes or hours, in microseconds.
    SubDay(i64),
    Days(u32),
    /// Weeks start on Monday.
    Weeks(u32),
    /// Months (`1q` is 3 months, `1y` 12).
    Months(u32),
}

impl Every {
    pub fn parse(s: &str) -> Result<Every, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u32 = num.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("every must be a positive count and a unit such as 1h, 6h, 1d, 1w, 1mo, 1q, 1y, not {s:?}")
        })?;
        let every = match unit {
            "m" => Every::SubDay(n as i64 * 60 * MICROS_PER_SECOND),
            "h" => Every::SubDay(n as i64 * MICROS_PER_HOUR),
            "d" => Every::Days(n),
            "w" => Every::Weeks(n),
            "mo" => Every::Months(n),
            "q" => Every::Months(n * 3),
            "y" => Every::Months(n * 12),
            _ => return Err(format!("every: unknown unit {unit:?} in {s:?}; use m, h, d, w, mo, q or y")),
        };
        if let Every::SubDay(us) = every {
            if us > MICROS_PER_DAY || MICROS_PER_DAY % us != 0 {
                return Err(format!("every: {s:?} does not divide a day; use a divisor of 24h, or days"));
            }
        }
        Ok(every)
    }
}

/// Calendar buckets of one size in one time zone. Boundaries are calendar boundaries in the
/// zone: local midnights for days, Mondays for weeks, first days for months; sub-day buckets
/// start at local wall-clock multiples of their size from midnight (00:00, 06:00, ...), so a
/// DST day has 23 or 25 hourly buckets, each a real hour. Counts of days, weeks and months are
/// aligned to 1970-01-01 (weeks: Monday 1969-12-29).
#[derive(Debug, Clone)]
pub struct Calendar {
    every: Every,
    /// `None` is UTC (integer arithmetic only).
    tz: Option<Tz>,
}

const EPOCH_DAY_OF_MONDAY: i64 = -3; // 1969-12-29

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

impl Calendar {
    pub fn new(every: Every, tz: &str) -> Result<Calendar, String> {
        let tz = match tz {
            "UTC" | "utc" | "Etc/UTC" | "Z" => None,
            name => Some(name.parse::<Tz>().map_err(|_| format!("unknown time zone {name:?}"))?),
        };
        Ok(Calendar { every, tz })
    }

    /// The start of the bucket that holds `t`.
    pub fn bucket_start(&self, t: i64) -> i64 {
        match self.tz {
            None => self.utc_start(t),
            Some(tz) => self.zoned_start(tz, t),
        }
    }

    /// The end of the bucket that starts at `start` (a value `bucket_start` returned).
    pub fn bucket_end(&self, start: i64) -> i64 {
        match self.tz {
            None => self.utc_end(start),
            Some(tz) => self.zoned_end(tz, start),
        }
    }

    fn utc_start(&self, t: i64) -> i64 {
        let day = t.div_euclid(MICROS_PER_DAY);
        match self.every {
            Every::SubDay(us) => t - t.rem_euclid(us),
            Every::Days(n) => (day - day.rem_euclid(n as i64)) * MICROS_PER_DAY,
            Every::Weeks(n) => {
                let k = 7 * n as i64;
                let since = day - EPOCH_DAY_OF_MONDAY;
                (since - since.rem_euclid(k) + EPOCH_DAY_OF_MONDAY) * MICROS_PER_DAY
            }
            Every::Months(n) => {
                let date = epoch_date().checked_add_signed(chrono::Duration::days(day)).unwrap_or_default();
                let first = floor_month(date, n);
                first.signed_duration_since(epoch_date()).num_days() * MICROS_PER_DAY
            }
        }
    }

    fn utc_end(&self, start: i64) -> i64 {
        match self.every {
            Every::SubDay(us) => start + us,
            Every::Days(n) => start + n as i64 * MICROS_PER_DAY,
            Every::Weeks(n) => start + 7 * n as i64 * MICROS_PER_DAY,
            Every::Months(n) => {
                let date = DateTime::from_timestamp_micros(start).map(|d| d.date_naive()).unwrap_or_default();
                let next = date.checked_add_months(Months::new(n)).unwrap_or(date);
                next.signed_duration_since(epoch_date()).num_days() * MICROS_PER_DAY
            }
        }
    }

    fn local(tz: Tz, t: i64) -> NaiveDateTime {
        DateTime::from_timestamp_micros(t).unwrap_or_default().with_timezone(&tz).naive_local()
    }

    /// The instants whose local time is `label` (none in a DST gap, two in an overlap).
    fn instants(tz: Tz, label: NaiveDateTime) -> Vec<i64> {
        match tz.from_local_datetime(&label) {
            LocalResult::Single(t) => vec![t.timestamp_micros()],
            LocalResult::Ambiguous(a, b) => vec![a.timestamp_micros(), b.timestamp_micros()],
            LocalResult::None => vec![],
        }
    }

    /// The first instant at or after local time `label` (the end of a DST gap if `label` is in one).
    fn first_instant_from(tz: Tz, label: NaiveDateTime) -> i64 {
        let mut l = label;
        for _ in 0..(48 * 60) {
            if let Some(t) = Self::instants(tz, l).first() {
                return *t;
            }
            l += chrono::Duration::minutes(1);
        }
        label.and_utc().timestamp_micros()
    }

    /// The local label of the bucket holding local time `l`.
    fn floor_label(&self, l: NaiveDateTime) -> NaiveDateTime {
        let date = l.date();
        let midnight = date.and_time(NaiveTime::MIN);
        match self.every {
            Every::SubDay(us) => {
                let since = (l - midnight).num_microseconds().unwrap_or(0);
                midnight + chrono::Duration::microseconds(since - since.rem_euclid(us))
            }
            Every::Days(n) => {
                let day = date.signed_duration_since(epoch_date()).num_days();
                let back = day.rem_euclid(n as i64);
                (date - chrono::Duration::days(back)).and_time(NaiveTime::MIN)
            }
            Every::Weeks(n) => {
                let day = date.signed_duration_since(epoch_date()).num_days() - EPOCH_DAY_OF_MONDAY;
                let back = day.rem_euclid(7 * n as i64);
                (date - chrono::Duration::days(back)).and_time(NaiveTime::MIN)
            }
            Every::Months(n) => floor_month(date, n).and_time(NaiveTime::MIN),
        }
    }

    /// The label after `label`: the next multiple, never past the next local midnight.
    fn next_label(&self, label: NaiveDateTime) -> NaiveDateTime {
        match self.every {
            Every::SubDay(us) => {
                let next_midnight = (label.date() + chrono::Duration::days(1)).and_time(NaiveTime::MIN);
                (label + chrono::Duration::microseconds(us)).min(next_midnight)
            }
            Every::Days(n) => label + chrono::Duration::days(n as i64),
            Every::Weeks(n) => label + chrono::Duration::days(7 * n as i64),
            Every::Months(n) => label.checked_add_months(Months::new(n)).unwrap_or(label),
        }
    }

    fn zoned_start(&self, tz: Tz, t: i64) -> i64 {
        let label = self.floor_label(Self::local(tz, t));
        // The latest occurrence of the label at or before t; in a gap, where the gap ends.
        match Self::instants(tz, label).into_iter().filter(|i| *i <= t).max() {
            Some(i) => i,
            None => Self::first_instant_from(tz, label).min(t),
        }
    }

    fn zoned_end(&self, tz: Tz, start: i64) -> i64 {
        let label = self.floor_label(Self::local(tz, start));
        let next = self.next_label(label);
        // A repeated label (DST overlap) is a boundary of its own for sub-day buckets.
        let again = match self.every {
            Every::SubDay(_) => Self::instants(tz, label).into_iter().find(|i| *i > start),
            _ => None,
        };
        let after = Self::instants(tz, next)
            .into_iter()
            .find(|i| *i > start)
            .unwrap_or_else(|| Self::first_instant_from(tz, next));
        match again {
            Some(a) => a.min(after),
            None => after,
        }
    }
}

fn floor_month(date: NaiveDate, n: u32) -> NaiveDate {
    let months = (date.year() as i64 - 1970) * 12 + date.month0() as i64;
    let m = months - months.rem_euclid(n as i64);
    NaiveDate::from_ymd_opt((1970 + m.div_euclid(12)) as i32, (m.rem_euclid(12) + 1) as u32, 1).unwrap_or(date)
}

/// Hours per unit of a duration unit as an exact ratio `(numerator, denominator)` (a `minute`
/// is 1/60 h), `None` for a unit that is not a duration. The one table of duration units:
/// formats convert durations to Hours with it, pricing converts between a rate's unit and a row's.
pub fn hours_per(unit: &str) -> Option<(i128, i128)> {
    match unit.trim().to_ascii_lowercase().as_str() {
        "second" | "seconds" | "sec" | "secs" | "s" => Some((1, 3600)),
        "minute" | "minutes" | "min" | "mins" => Some((1, 60)),
        "hour" | "hours" | "hr" | "hrs" | "h" => Some((1, 1)),
        "day" | "days" => Some((24, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_matches_chrono_for_every_day_of_four_centuries() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut date = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap();
        while date.year() < 2200 {
            let want = date.signed_duration_since(epoch).num_days();
            assert_eq!(days_from_civil(date.year() as i64, date.month(), date.day()), Some(want), "{date}");
            date = date.succ_opt().unwrap();
        }
        for (y, m, d) in [(2023, 2, 29), (1900, 2, 29), (2024, 13, 1), (2024, 0, 1), (2024, 4, 31), (2024, 1, 0)] {
            assert_eq!(days_from_civil(y, m, d), None, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
    }

    #[test]
    fn parses_zulu_offsets_and_fractions() {
        let base = parse_rfc3339("2019-12-27T18:11:19Z").unwrap();
        assert_eq!(base, 1_577_470_279 * MICROS_PER_SECOND);
        assert_eq!(parse_rfc3339("2019-12-27T18:11:19.117Z").unwrap(), base + 117_000);
        assert_eq!(parse_rfc3339("2019-12-27T19:11:19+01:00").unwrap(), base);
        assert_eq!(parse_rfc3339("2019-12-27T16:11:19-0200").unwrap(), base);
        assert_eq!(parse_rfc3339("2019-12-27 18:11:19").unwrap(), base);
        assert_eq!(parse_rfc3339("2019-12-27T18:11:19.1234567Z").unwrap(), base + 123_456);
        assert_eq!(parse_rfc3339("2019-12-27T18:11:19+00:00").unwrap(), base);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "yesterday",
            "2019-13-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "2019-12-27T25:00:00Z",
            "2019-12-27T18:11:19Zjunk",
            "2019-12-27T18:11:19.Z",
            "2019-12-27T18:11:19+1:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn epoch_magnitude_rule() {
        assert_eq!(from_epoch(1_724_945_437.0).unwrap(), 1_724_945_437 * MICROS_PER_SECOND);
        assert_eq!(from_epoch(1_724_945_437_000.0).unwrap(), 1_724_945_437 * MICROS_PER_SECOND);
        assert_eq!(from_epoch(1_724_945_437_000_000.0).unwrap(), 1_724_945_437 * MICROS_PER_SECOND);
        assert!(from_epoch(1e18).is_err());
        assert!(from_epoch(f64::NAN).is_err());
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_utc(parse_rfc3339("2024-02-29T23:59:59Z").unwrap()), "2024-02-29T23:59:59Z");
        assert_eq!(format_utc(parse_rfc3339("2024-02-29T23:59:59.5Z").unwrap()), "2024-02-29T23:59:59.500000Z");
    }

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn buckets(cal: &Calendar, from: &str, to: &str) -> Vec<(String, String)> {
        let (mut b, end) = (cal.bucket_start(at(from)), at(to));
        let mut out = vec![];
        while b < end {
            let e = cal.bucket_end(b);
            out.push((format_utc(b), format_utc(e)));
            b = e;
        }
        out
    }

    #[test]
    fn parses_every() {
        assert_eq!(Every::parse("6h").unwrap(), Every::SubDay(6 * MICROS_PER_HOUR));
        assert_eq!(Every::parse("1q").unwrap(), Every::Months(3));
        assert_eq!(Every::parse("2y").unwrap(), Every::Months(24));
        assert!(Every::parse("0d").is_err());
        assert!(Every::parse("7h").is_err());
        assert!(Every::parse("1x").is_err());
    }

    #[test]
    fn utc_calendar_units() {
        let week = Calendar::new(Every::Weeks(1), "UTC").unwrap();
        // 2024-03-13 is a Wednesday; its week starts Monday 2024-03-11.
        assert_eq!(format_utc(week.bucket_start(at("2024-03-13T10:00:00Z"))), "2024-03-11T00:00:00Z");
        let q = Calendar::new(Every::Months(3), "UTC").unwrap();
        assert_eq!(format_utc(q.bucket_start(at("2024-05-20T00:00:00Z"))), "2024-04-01T00:00:00Z");
        assert_eq!(format_utc(q.bucket_end(at("2024-04-01T00:00:00Z"))), "2024-07-01T00:00:00Z");
        let mo = Calendar::new(Every::Months(1), "UTC").unwrap();
        assert_eq!(format_utc(mo.bucket_end(at("2024-02-01T00:00:00Z"))), "2024-03-01T00:00:00Z");
        assert_eq!(format_utc(mo.bucket_start(at("1969-12-31T23:00:00Z"))), "1969-12-01T00:00:00Z");
    }

    #[test]
    fn berlin_days_are_23_and_25_hours_around_dst() {
        let day = Calendar::new(Every::Days(1), "Europe/Berlin").unwrap();
        let spring = buckets(&day, "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z");
        assert_eq!(spring, vec![("2024-03-30T23:00:00Z".into(), "2024-03-31T22:00:00Z".into())]);
        let autumn = buckets(&day, "2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z");
        assert_eq!(autumn, vec![("2024-10-26T22:00:00Z".into(), "2024-10-27T23:00:00Z".into())]);
    }

    #[test]
    fn berlin_hours_are_real_hours_on_dst_days() {
        let hour = Calendar::new(Every::SubDay(MICROS_PER_HOUR), "Europe/Berlin").unwrap();
        assert_eq!(buckets(&hour, "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z").len(), 23);
        let autumn = buckets(&hour, "2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z");
        assert_eq!(autumn.len(), 25);
        assert!(autumn.iter().all(|(s, e)| at(e) - at(s) == MICROS_PER_HOUR));
        let six = Calendar::new(Every::SubDay(6 * MICROS_PER_HOUR), "Europe/Berlin").unwrap();
        // Local 00, 06, 12, 18: the first bucket of the spring day is 5 real hours.
        let b = buckets(&six, "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z");
        assert_eq!(b[0], ("2024-03-30T23:00:00Z".into(), "2024-03-31T04:00:00Z".into()));
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn india_half_hour_offset_hours() {
        let hour = Calendar::new(Every::SubDay(MICROS_PER_HOUR), "Asia/Kolkata").unwrap();
        assert_eq!(format_utc(hour.bucket_start(at("2024-01-01T10:10:00Z"))), "2024-01-01T09:30:00Z");
    }
}
