//! Timestamps: every canonical time is an `i64` count of microseconds since the Unix epoch, UTC.
//!
//! Rules, the same for every format (see README "Time rules"):
//! - RFC 3339 text (`T`, `t` or a space between date and time; fractional seconds optional) with
//!   `Z` or an offset is converted to UTC.
//! - Text without any zone is read as UTC: each of the five APIs documents its times as UTC.
//! - Fractions finer than a microsecond are truncated toward the past.
//! - Epoch numbers are seconds; magnitudes of 10¹¹ or more (year 5138 in seconds) are read as
//!   milliseconds, and of 10¹⁴ or more as microseconds; 10¹⁷ or more is rejected.

use chrono::{DateTime, NaiveDate};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// Parses an RFC 3339 timestamp into UTC microseconds.
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
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("not a calendar date")?;
    let days = date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
