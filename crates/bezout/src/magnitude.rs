//! Huge counts: an exact big integer where it fits, its base-10 logarithm always.
//!
//! Bezout bounds such as `31^50000` have tens of thousands of digits; no
//! floating-point type can hold them. A [`Magnitude`] carries the base-10
//! logarithm (computed as `N * log10(D)`, never by exponentiating a float) and,
//! when the number is an integer of at most [`EXACT_BITS`] bits, its exact value.

use std::fmt;

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// Largest exact value kept, in bits (about 1233 decimal digits).
pub const EXACT_BITS: u64 = 4096;

/// A non-negative count that may be far beyond `f64`: its `log10` and, where
/// it is an integer of at most [`EXACT_BITS`] bits, the exact value.
#[derive(Debug, Clone, PartialEq)]
pub struct Magnitude {
    log10: f64,
    exact: Option<BigUint>,
}

impl Magnitude {
    /// An exact integer.
    pub fn from_exact(value: BigUint) -> Self {
        let log10 = log10_biguint(&value);
        if value.bits() <= EXACT_BITS {
            Self {
                log10,
                exact: Some(value),
            }
        } else {
            Self { log10, exact: None }
        }
    }

    /// A value known only through its base-10 logarithm (may be `-inf` for zero).
    pub fn from_log10(log10: f64) -> Self {
        Self { log10, exact: None }
    }

    /// `base^exp`, exactly where it fits, with `log10 = exp * log10(base)` always.
    pub fn pow(base: &BigUint, exp: u64) -> Self {
        let log10 = if exp == 0 {
            0.0
        } else {
            exp as f64 * log10_biguint(base)
        };
        let bits = base.bits().saturating_mul(exp);
        let exact = if exp == 0 {
            Some(BigUint::one())
        } else if base.is_zero() || base.is_one() {
            Some(base.clone())
        } else if bits <= EXACT_BITS {
            u32::try_from(exp).ok().map(|e| base.pow(e))
        } else {
            None
        };
        Self { log10, exact }
    }

    /// `sqrt(base^exp)`, exact where `exp` is even and the result fits.
    pub fn sqrt_pow(base: &BigUint, exp: u64) -> Self {
        if exp % 2 == 0 {
            Self::pow(base, exp / 2)
        } else {
            let whole = Self::pow(base, exp);
            Self::from_log10(whole.log10 / 2.0)
        }
    }

    /// Base-10 logarithm of the value.
    pub fn log10(&self) -> f64 {
        self.log10
    }

    /// The exact value, if it is an integer small enough to keep.
    pub fn exact(&self) -> Option<&BigUint> {
        self.exact.as_ref()
    }

    /// The value as `f64`, or `None` if it overflows.
    pub fn to_f64(&self) -> Option<f64> {
        match &self.exact {
            Some(v) => v.to_f64().filter(|x| x.is_finite()),
            None if self.log10 < 308.0 => Some(10f64.powf(self.log10)),
            None => None,
        }
    }
}

impl fmt::Display for Magnitude {
    /// Exact digits up to 15 digits, then `10^x` (and `10^(10^y)` beyond 10^10000).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = &self.exact {
            let s = v.to_string();
            if s.len() <= 15 {
                return f.write_str(&group_digits(&s));
            }
        }
        if !self.log10.is_finite() {
            return write!(f, "0");
        }
        if self.log10 < 15.0 {
            return write!(f, "{:.4}", 10f64.powf(self.log10));
        }
        if self.log10 < 1e4 {
            write!(f, "10^{:.1}", self.log10)
        } else {
            write!(
                f,
                "10^{:.0} = 10^(10^{:.2})",
                self.log10,
                self.log10.log10()
            )
        }
    }
}

/// Thousands separators for a string of decimal digits.
pub fn group_digits(digits: &str) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Base-10 logarithm of a big integer, accurate to about 1e-15 relative
/// (`-inf` for zero): the top 64 bits are converted and the shift added back.
pub fn log10_biguint(value: &BigUint) -> f64 {
    let bits = value.bits();
    if bits == 0 {
        return f64::NEG_INFINITY;
    }
    let shift = bits.saturating_sub(64);
    let top = (value >> shift).to_u64().unwrap_or(u64::MAX);
    (top as f64).log10() + shift as f64 * std::f64::consts::LOG10_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log10_of_powers_of_ten_is_exact_enough() {
        for e in [0u32, 1, 5, 19, 20, 100, 1000] {
            let v = BigUint::from(10u32).pow(e);
            assert!((log10_biguint(&v) - f64::from(e)).abs() < 1e-12 * f64::from(e.max(1)));
        }
        assert_eq!(log10_biguint(&BigUint::zero()), f64::NEG_INFINITY);
    }

    #[test]
    fn pow_keeps_exact_small_values_and_drops_huge_ones() {
        let m = Magnitude::pow(&BigUint::from(3u32), 4);
        assert_eq!(m.exact(), Some(&BigUint::from(81u32)));
        assert_eq!(m.to_string(), "81");
        let huge = Magnitude::pow(&BigUint::from(31u32), 50_000);
        assert!(huge.exact().is_none());
        assert!((huge.log10() - 50_000.0 * 31f64.log10()).abs() < 1e-6);
        assert!(huge.to_f64().is_none());
        assert!(huge.to_string().contains("10^(10^4.87)"), "{huge}");
    }

    #[test]
    fn sqrt_pow_is_exact_for_even_exponents() {
        let m = Magnitude::sqrt_pow(&BigUint::from(4u32), 6);
        assert_eq!(m.exact(), Some(&BigUint::from(64u32)));
        let odd = Magnitude::sqrt_pow(&BigUint::from(4u32), 3);
        assert!(odd.exact().is_none());
        assert!((odd.to_f64().unwrap_or(0.0) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits("188810"), "188,810");
        assert_eq!(group_digits("1234567"), "1,234,567");
        assert_eq!(group_digits("12"), "12");
    }
}
