//! `ExactSum`: the exact, order-free sum of f64 values that `aggregate`'s quantities use, so
//! a result is the same bit for bit whatever the row order, the threads or the batches.

/// Magnitudes from here on cannot be summed exactly (2¹²⁶).
pub(super) const EXACT_LIMIT: f64 = 8.507059173023462e37;

/// An exact, order-independent sum of f64 values: a 256-bit two's-complement fixed-point
/// number with 128 fraction bits. Every finite value of magnitude below 2¹²⁶ is added exactly
/// (bits below 2⁻¹²⁸ are dropped, the same way every time); the total is rounded to the
/// nearest f64 once, ties to even.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExactSum {
    hi: u128,
    lo: u128,
}

impl ExactSum {
    pub fn add(&mut self, v: f64) -> std::result::Result<(), &'static str> {
        if v == 0.0 {
            return Ok(());
        }
        if !v.is_finite() {
            return Err("is not finite");
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | (1u64 << 52), exp - 1075) };
        let shift = e + 128;
        let (hi, lo) = if shift < 0 {
            if -shift >= 64 {
                (0, 0)
            } else {
                (0, (m >> -shift) as u128)
            }
        } else if shift >= 128 {
            if shift - 128 + 53 > 126 {
                return Err("is too large to sum (|v| ≥ 2^126)");
            }
            ((m as u128) << (shift - 128), 0)
        } else {
            let lo = (m as u128) << shift;
            // m has 53 bits: they reach past bit 127 only when shift > 75.
            let hi = if shift <= 75 { 0 } else { (m as u128) >> (128 - shift) };
            (hi, lo)
        };
        let (hi, lo) = if v < 0.0 { negate(hi, lo) } else { (hi, lo) };
        self.add_raw(hi, lo);
        Ok(())
    }

    fn add_raw(&mut self, hi: u128, lo: u128) {
        let (l, carry) = self.lo.overflowing_add(lo);
        self.lo = l;
        self.hi = self.hi.wrapping_add(hi).wrapping_add(carry as u128);
    }

    pub fn add_sum(&mut self, other: &ExactSum) {
        self.add_raw(other.hi, other.lo);
    }

    /// The sum, rounded to the nearest f64 (ties to even).
    pub fn to_f64(&self) -> f64 {
        let negative = (self.hi >> 127) == 1;
        let (hi, lo) = if negative { negate(self.hi, self.lo) } else { (self.hi, self.lo) };
        let top = if hi != 0 {
            255 - hi.leading_zeros() as i32
        } else if lo != 0 {
            127 - lo.leading_zeros() as i32
        } else {
            return 0.0;
        };
        let magnitude = if top <= 52 {
            lo as f64 * pow2(-128)
        } else {
            let k = (top - 52) as u32;
            let mut mant = shr(hi, lo, k) as u64;
            let rem_top = bit(hi, lo, k - 1);
            let sticky = k >= 2 && low_bits_nonzero(hi, lo, k - 1);
            if rem_top && (sticky || mant & 1 == 1) {
                mant += 1;
            }
            mant as f64 * pow2(k as i32 - 128)
        };
        if negative {
            -magnitude
        } else {
            magnitude
        }
    }
}

/// Two's-complement negation of a 256-bit value.
fn negate(hi: u128, lo: u128) -> (u128, u128) {
    let (l, carry) = (!lo).overflowing_add(1);
    ((!hi).wrapping_add(carry as u128), l)
}

/// The low 128 bits of (hi, lo) >> k, for 0 < k < 256.
fn shr(hi: u128, lo: u128, k: u32) -> u128 {
    if k >= 128 {
        hi >> (k - 128)
    } else {
        (lo >> k) | (hi << (128 - k))
    }
}

fn bit(hi: u128, lo: u128, k: u32) -> bool {
    if k >= 128 {
        (hi >> (k - 128)) & 1 == 1
    } else {
        (lo >> k) & 1 == 1
    }
}

/// Whether any of the `k` lowest bits is set.
fn low_bits_nonzero(hi: u128, lo: u128, k: u32) -> bool {
    if k >= 128 {
        lo != 0 || (k > 128 && hi & ((1u128 << (k - 128)) - 1) != 0)
    } else {
        lo & ((1u128 << k) - 1) != 0
    }
}

fn pow2(n: i32) -> f64 {
    f64::from_bits(((n + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sum_is_exact_and_order_free() {
        let values = [0.1, 0.2, 0.3, 1e20, -1e20, 1e-30, 3.0, -0.7, 5e15, 123.456];
        let mut a = ExactSum::default();
        values.iter().for_each(|v| a.add(*v).unwrap());
        let mut b = ExactSum::default();
        values.iter().rev().for_each(|v| b.add(*v).unwrap());
        assert_eq!(a, b);
        // Python's math.fsum of the same values.
        assert_eq!(a.to_f64(), 5000000000000126.0);
        let mut c = ExactSum::default();
        [0.1, 0.2].iter().for_each(|v| c.add(*v).unwrap());
        assert_eq!(c.to_f64(), 0.30000000000000004);
        let mut d = ExactSum::default();
        [1.0, 1e-16, 1e-16].iter().for_each(|v| d.add(*v).unwrap());
        assert_eq!(d.to_f64(), 1.0000000000000002);
        let mut e = ExactSum::default();
        [-2.5, 0.5].iter().for_each(|v| e.add(*v).unwrap());
        assert_eq!(e.to_f64(), -2.0);
        for v in [1.0, 0.75, 1e-20, 7e25, -3.25e-10, f64::MIN_POSITIVE * 1e300] {
            let mut s = ExactSum::default();
            s.add(v).unwrap();
            assert_eq!(s.to_f64(), v, "{v}");
        }
        assert!(ExactSum::default().add(1e40).is_err());
    }
}
