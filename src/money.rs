//! Exact decimal money: `Decimal` is an `i128` count of 10⁻⁹ units, the physical form of the
//! canonical `decimal(38, 9)` columns. Values are read from a JSON number's *text*, never through
//! `f64`, and every rounding is half-to-even, done once at the end of a computation.

use std::fmt;

/// Digits after the decimal point of every money column.
pub const SCALE: u32 = 9;
const ONE: i128 = 1_000_000_000;
/// The largest magnitude a decimal(38, 9) holds: 38 nines.
const MAX_ABS: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// A decimal(38, 9) value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(pub i128);

impl Decimal {
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Multiplies by an integer, exactly.
    pub fn checked_mul_int(self, k: i128) -> Option<Decimal> {
        self.0.checked_mul(k).filter(|v| v.abs() <= MAX_ABS).map(Decimal)
    }

    /// Parses a decimal from text such as `3.148992`, `-12`, `1.5e-3` or `"0.25"` without the
    /// quotes. More than nine fraction digits are rounded half-to-even.
    pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
        parse_decimal(text, 0)
    }

    /// The number in `text` times 10^`shift`, as `parse` reads it (so `parse_shifted(t, 9)` is
    /// `t` to 18 decimal places): no text is built to move the point.
    pub fn parse_shifted(text: &str, shift: i32) -> Result<Decimal, DecimalError> {
        parse_decimal(text, shift)
    }
}

/// Why a text is not a decimal(38, 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    NotANumber,
    OutOfRange,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecimalError::NotANumber => f.write_str("not a decimal number"),
            DecimalError::OutOfRange => f.write_str("outside the range of decimal(38, 9)"),
        }
    }
}

impl fmt::Display for Decimal {
    /// Plain notation with trailing fraction zeros removed (`3.148992`, `12`, `-0.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let int = abs / ONE as u128;
        let mut frac = abs % ONE as u128;
        if neg {
            f.write_str("-")?;
        }
        write!(f, "{int}")?;
        if frac != 0 {
            let mut digits = SCALE as usize;
            while frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
            write!(f, ".{frac:0digits$}")?;
        }
        Ok(())
    }
}

/// `n / d` rounded half-to-even; `d > 0`. One 128-bit division (two cost about as much as
/// the rest of pricing a row), none when `d` is 1.
pub fn div_round_half_even(n: i128, d: i128) -> Option<i128> {
    if d <= 0 {
        return None;
    }
    if d == 1 {
        return Some(n);
    }
    let (mut q, mut r) = (n / d, n % d);
    if r < 0 {
        // Floor division: 0 <= r < d.
        q -= 1;
        r += d;
    }
    let up = match r.cmp(&(d - r)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => q % 2 != 0,
    };
    Some(if up { q + 1 } else { q })
}

fn parse_decimal(text: &str, extra_exp: i32) -> Result<Decimal, DecimalError> {
    let b = text.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    // Mantissa digits, accumulated exactly (up to 38 significant digits).
    let mut mantissa: i128 = 0;
    let mut frac_digits: i32 = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut dropped_nonzero = false; // digits beyond what fits: only ever past the 9th decimal
    let mut sig_digits = 0u32;
    let mut extra_int_digits: i32 = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            seen_digit = true;
            let d = (c - b'0') as i128;
            if sig_digits < 38 {
                mantissa = mantissa * 10 + d;
                if mantissa != 0 {
                    sig_digits += 1;
                }
                if seen_point {
                    frac_digits += 1;
                }
            } else if seen_point {
                dropped_nonzero |= d != 0;
            } else {
                extra_int_digits += 1;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if !seen_digit {
        return Err(DecimalError::NotANumber);
    }
    let mut exp: i32 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let mut eneg = false;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            eneg = b[i] == b'-';
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add((b[i] - b'0') as i32);
            i += 1;
        }
        if start == i {
            return Err(DecimalError::NotANumber);
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(DecimalError::NotANumber);
    }
    // value = mantissa × 10^(exp + extra_int_digits − frac_digits); we want value × 10^9.
    let shift = exp
        .saturating_add(extra_exp)
        .saturating_add(extra_int_digits)
        .saturating_sub(frac_digits)
        .saturating_add(SCALE as i32);
    let scaled = if mantissa == 0 {
        0
    } else if shift >= 0 {
        if shift > 38 {
            return Err(DecimalError::OutOfRange);
        }
        mantissa.checked_mul(10i128.pow(shift as u32)).ok_or(DecimalError::OutOfRange)?
    } else {
        let down = (-shift) as u32;
        if down > 38 {
            // Far below 10⁻⁹: rounds to zero (half-even of < 0.5 units).
            0
        } else {
            let d = 10i128.pow(down);
            let q = mantissa / d;
            let r = mantissa % d;
            // r against d − r, not 2r against d: 2r overflows i128 when d is 10^38.
            let up = match r.cmp(&(d - r)) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => dropped_nonzero || q % 2 != 0,
            };
            q + up as i128
        }
    };
    if scaled > MAX_ABS {
        return Err(DecimalError::OutOfRange);
    }
    Ok(Decimal(if neg { -scaled } else { scaled }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parses_plain_and_exponent_forms() {
        assert_eq!(d("3.148992").0, 3_148_992_000);
        assert_eq!(d("-12").0, -12 * ONE);
        assert_eq!(d("1.5e-3").0, 1_500_000);
        assert_eq!(d("2E2").0, 200 * ONE);
        assert_eq!(d("0.000000001").0, 1);
        assert_eq!(d("0").0, 0);
    }

    #[test]
    fn rounds_half_even_past_nine_places() {
        assert_eq!(d("0.0000000005").0, 0);
        assert_eq!(d("0.0000000015").0, 2);
        assert_eq!(d("0.00000000050001").0, 1);
        assert_eq!(d("-0.0000000025").0, -2);
    }

    #[test]
    fn rounding_next_to_the_ninth_place_never_overflows() {
        // 38 significant digits just below 10⁻⁹: the remainder is close to 10^38.
        let z = |n: usize| "0".repeat(n);
        let nines = "9".repeat(38);
        assert_eq!(d(&format!("0.{}{nines}", z(9))).0, 1);
        assert_eq!(d(&format!("-0.{}{nines}", z(9))).0, -1);
        assert_eq!(d(&format!("0.{}4{nines}", z(9))).0, 0);
        assert_eq!(d(&format!("0.{}5{}", z(9), z(37))).0, 0, "a tie rounds to even");
        assert_eq!(d(&format!("0.{}15{}", z(8), z(37))).0, 2, "a tie rounds to even");
        assert_eq!(d(&format!("0.{}5{}1", z(9), z(36))).0, 1, "just above the tie");
        assert_eq!(d(&format!("0.{}5{}1", z(9), z(40))).0, 1, "a dropped digit breaks the tie");
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        assert_eq!(Decimal::parse("abc"), Err(DecimalError::NotANumber));
        assert_eq!(Decimal::parse("1.2.3"), Err(DecimalError::NotANumber));
        assert_eq!(Decimal::parse(""), Err(DecimalError::NotANumber));
        assert_eq!(Decimal::parse("1e400"), Err(DecimalError::OutOfRange));
        assert_eq!(Decimal::parse("NaN"), Err(DecimalError::NotANumber));
    }

    #[test]
    fn long_mantissas_read_exactly() {
        // Every length and point position up to 40 digits (38 significant kept, the rest
        // rounded), with and without leading zeros, against the value read as an integer.
        let digits = "9817263545362718091827364554637281900123";
        for len in 1..=digits.len() {
            for point in 0..=len {
                let (int, frac) = digits[..len].split_at(point);
                let text = format!("{}.{frac}", if int.is_empty() { "0" } else { int });
                // Oracle: up to 38 significant digits as an integer, then scaled to 9 places.
                let kept = len.min(38);
                let m: i128 = digits[..kept].parse().unwrap();
                let scale = 9 + point as i32 - kept as i32;
                let want = if scale >= 0 {
                    m.checked_mul(10i128.pow(scale as u32)).filter(|v| *v <= MAX_ABS)
                } else {
                    let dropped_nonzero = digits[kept..len].bytes().any(|b| b != b'0');
                    let div = 10i128.pow((-scale) as u32);
                    let (q, r) = (m / div, m % div);
                    let up = 2 * r > div || (2 * r == div && (dropped_nonzero || q % 2 != 0));
                    Some(q + i128::from(up)).filter(|v| *v <= MAX_ABS)
                };
                assert_eq!(Decimal::parse(&text).ok().map(|d| d.0), want, "{text}");
                let padded = format!("000000000000000000000{text}");
                assert_eq!(Decimal::parse(&padded).ok().map(|d| d.0), want, "{padded}");
            }
        }
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(d("3.148992").to_string(), "3.148992");
        assert_eq!(d("-0.5").to_string(), "-0.5");
        assert_eq!(d("12").to_string(), "12");
    }

    #[test]
    fn division_rounds_half_even() {
        assert_eq!(div_round_half_even(5, 2), Some(2));
        assert_eq!(div_round_half_even(7, 2), Some(4));
        assert_eq!(div_round_half_even(-5, 2), Some(-2));
        assert_eq!(div_round_half_even(-7, 2), Some(-4));
        assert_eq!(div_round_half_even(1, 0), None);
        // Against the exact rational rounding, on both sides of zero and near the limits.
        let cases =
            [(0, 3), (1, 3), (2, 3), (3, 2), (-3, 2), (15, 10), (25, 10), (-25, 10), (-15, 10), (7, 1), (-7, 1)];
        let big =
            [(i128::MAX, 10), (i128::MIN, 10), (i128::MAX, i128::MAX), (i128::MIN + 1, i128::MAX), (i128::MAX - 1, 2)];
        for (n, d) in cases.into_iter().chain(big) {
            let (q, r) = (n.div_euclid(d), n.rem_euclid(d));
            // The old way: floor division by euclid, then the remainder against half.
            let want = if r > d - r || (r == d - r && q % 2 != 0) { q + 1 } else { q };
            assert_eq!(div_round_half_even(n, d), Some(want), "{n} / {d}");
        }
        assert_eq!(d("0.005112").checked_mul_int(60), Some(d("0.30672")));
    }
}
