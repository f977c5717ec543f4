//! The difference of two test errors measured on the same test images, with
//! its 95% interval, and the three-way judgement of a margin against it.
//!
//! From per-image correctness (`true` = right) of two models `a` and `b` on
//! the same `n` images, the difference `error(b) - error(a)` (percentage
//! points) is the mean of `d_i = right_a(i) - right_b(i)` (in `{-1, 0, 1}`)
//! times 100. Two intervals:
//!
//! * the normal approximation of the paired difference (McNemar's variance):
//!   with `n10` images only `a` gets right and `n01` only `b`,
//!   `Var(mean d) = ((n10 + n01) / n - ((n10 - n01) / n)^2) / n`; with several
//!   seeds (each seed a pair of models on the same images), the variance of
//!   the mean over seeds adds the between-seed variance of the per-seed
//!   differences over `S` (sample variance, `S - 1`) to the image variance of
//!   the seed-averaged `d_i` over `n`;
//! * a paired bootstrap (the judged interval): each resample draws `S` seeds
//!   with replacement, then `n` images with replacement (the same images for
//!   every seed, as the test set is shared), and takes the mean of `d` over
//!   them; the interval is the 2.5% and 97.5% percentiles of
//!   [`RESAMPLES`] such means, from a fixed seed (deterministic).
use anyhow::{bail, Result};
use serde::Serialize;

use super::Verdict;

/// Bootstrap resamples.
pub const RESAMPLES: usize = 2000;
/// The bootstrap's fixed seed.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_0b00_75ab;
/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The judged interval's method, as reported.
pub const METHOD: &str =
    "paired bootstrap over seeds then test images (2000 resamples, percentile)";

/// The difference `error(b) - error(a)` of two models on the same images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedDifference {
    /// Mean over seeds of `error(b) - error(a)`, percentage points.
    pub difference: f64,
    /// The bootstrap's 95% interval (percentage points): the judged one.
    pub interval_95: [f64; 2],
    /// The normal approximation's 95% interval (McNemar variance).
    pub normal_interval_95: [f64; 2],
    /// Its standard error (percentage points).
    pub standard_error: f64,
    /// How `interval_95` was computed.
    pub method: String,
    /// Test images per seed.
    pub images: usize,
    /// Seeds (pairs of models).
    pub seeds: usize,
    /// Images only `a` gets right, summed over seeds.
    pub only_a_right: usize,
    /// Images only `b` gets right, summed over seeds.
    pub only_b_right: usize,
}

impl PairedDifference {
    /// From `pairs[s] = (right_a, right_b)`, one pair per seed, every vector
    /// over the same images in the same order.
    pub fn of(pairs: &[(Vec<bool>, Vec<bool>)]) -> Result<Self> {
        let Some((first, _)) = pairs.first() else {
            bail!("no pair of models to compare");
        };
        let n = first.len();
        if n == 0 {
            bail!("no test images to compare the models on");
        }
        if let Some(s) = pairs.iter().position(|(a, b)| a.len() != n || b.len() != n) {
            bail!(
                "seed {s}: the two models were judged on {} and {} images, seed 0 on {n}",
                pairs[s].0.len(),
                pairs[s].1.len()
            );
        }
        let seeds = pairs.len();
        let d: Vec<Vec<i8>> = pairs
            .iter()
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| i8::from(x) - i8::from(y))
                    .collect()
            })
            .collect();
        let count = |v: i8| d.iter().flatten().filter(|&&x| x == v).count();
        let (n10, n01) = (count(1), count(-1));
        let nf = n as f64;
        let sf = seeds as f64;
        let per_seed: Vec<f64> = d
            .iter()
            .map(|r| r.iter().map(|&x| f64::from(x)).sum::<f64>() / nf)
            .collect();
        let mean = per_seed.iter().sum::<f64>() / sf;
        // Image variance of the seed-averaged d_i (population form: McNemar's).
        let per_image: Vec<f64> = (0..n)
            .map(|i| d.iter().map(|r| f64::from(r[i])).sum::<f64>() / sf)
            .collect();
        let image_var = per_image.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / nf / nf;
        let seed_var = if seeds > 1 {
            per_seed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (sf - 1.0) / sf
        } else {
            0.0
        };
        let se = (image_var + seed_var).sqrt();
        Ok(PairedDifference {
            difference: 100.0 * mean,
            interval_95: bootstrap(&d, RESAMPLES, BOOTSTRAP_SEED).map(|x| 100.0 * x),
            normal_interval_95: [100.0 * (mean - Z95 * se), 100.0 * (mean + Z95 * se)],
            standard_error: 100.0 * se,
            method: METHOD.to_owned(),
            images: n,
            seeds,
            only_a_right: n10,
            only_b_right: n01,
        })
    }

    /// [`judge`] of the bootstrap interval against `margin`.
    pub fn judge(&self, margin: f64) -> Verdict {
        judge(self.interval_95, margin)
    }

    /// As a finding's numbers: `difference`, `interval_95`, `normal_interval_95`,
    /// `standard_error`, `method`, `images`, `seeds`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "difference": self.difference,
            "interval_95": self.interval_95,
            "normal_interval_95": self.normal_interval_95,
            "standard_error": self.standard_error,
            "method": self.method,
            "images": self.images,
            "seeds": self.seeds,
            "only_a_right": self.only_a_right,
            "only_b_right": self.only_b_right,
        })
    }
}

/// `Holds` when the interval's lower end is at least `margin`, `DoesNotHold`
/// when its upper end is below it, `Undecided` when it straddles the margin
/// (or is not a pair of numbers).
pub fn judge(interval: [f64; 2], margin: f64) -> Verdict {
    let [lo, hi] = interval;
    if lo.is_nan() || hi.is_nan() {
        Verdict::Undecided
    } else if lo >= margin {
        Verdict::Holds
    } else if hi < margin {
        Verdict::DoesNotHold
    } else {
        Verdict::Undecided
    }
}

/// Whether a difference is positive: `Holds` when the interval's lower end
/// is above 0, `DoesNotHold` when its upper end is at most 0, `Undecided`
/// otherwise (a claim of "lower", without a margin).
pub fn judge_positive(interval: [f64; 2]) -> Verdict {
    let [lo, hi] = interval;
    if lo.is_nan() || hi.is_nan() {
        Verdict::Undecided
    } else if lo > 0.0 {
        Verdict::Holds
    } else if hi <= 0.0 {
        Verdict::DoesNotHold
    } else {
        Verdict::Undecided
    }
}

/// SplitMix64: a small, fixed generator, so intervals never change with a
/// dependency's version.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`; the modulo bias is below 2^-40 here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 2.5% and 97.5% percentiles (linear interpolation between order
/// statistics) of `resamples` means of `d`, each over `S` seeds drawn with
/// replacement and `n` images drawn with replacement (shared by the seeds).
fn bootstrap(d: &[Vec<i8>], resamples: usize, seed: u64) -> [f64; 2] {
    let (s, n) = (d.len(), d.first().map_or(0, Vec::len));
    if s == 0 || n == 0 || resamples == 0 {
        return [f64::NAN, f64::NAN];
    }
    let mut rng = SplitMix(seed);
    let mut weight = vec![0i64; s];
    let mut means = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        weight.iter_mut().for_each(|w| *w = 0);
        for _ in 0..s {
            weight[rng.below(s)] += 1;
        }
        let mut sum = 0i64;
        for _ in 0..n {
            let i = rng.below(n);
            sum += d
                .iter()
                .zip(&weight)
                .map(|(r, &w)| w * i64::from(r[i]))
                .sum::<i64>();
        }
        means.push(sum as f64 / (s * n) as f64);
    }
    means.sort_by(f64::total_cmp);
    [quantile(&means, 0.025), quantile(&means, 0.975)]
}

/// The `q` quantile of sorted `v` (linear interpolation, `v` not empty).
fn quantile(v: &[f64], q: f64) -> f64 {
    let x = q * (v.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    v[lo] + (x - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `n11` both right, `n10` only a, `n01` only b, `n00` both wrong.
    fn pair(n11: usize, n10: usize, n01: usize, n00: usize) -> (Vec<bool>, Vec<bool>) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (k, x, y) in [
            (n11, true, true),
            (n10, true, false),
            (n01, false, true),
            (n00, false, false),
        ] {
            a.extend(std::iter::repeat_n(x, k));
            b.extend(std::iter::repeat_n(y, k));
        }
        (a, b)
    }

    #[test]
    fn mcnemar_variance_by_hand() {
        // 100 images: 60 both right, 15 only a, 5 only b, 20 both wrong.
        // d mean = (15 - 5) / 100 = 0.1; Var = (0.2 - 0.01) / 100 = 0.0019.
        let p = PairedDifference::of(&[pair(60, 15, 5, 20)]).unwrap();
        assert!((p.difference - 10.0).abs() < 1e-12);
        assert!((p.standard_error - 100.0 * 0.0019f64.sqrt()).abs() < 1e-12);
        let half = Z95 * 100.0 * 0.0019f64.sqrt(); // 8.543 points
        assert!((p.normal_interval_95[0] - (10.0 - half)).abs() < 1e-9);
        assert!((p.normal_interval_95[1] - (10.0 + half)).abs() < 1e-9);
        assert_eq!((p.only_a_right, p.only_b_right), (15, 5));
        assert_eq!((p.images, p.seeds), (100, 1));
        // The bootstrap agrees with the normal interval to about a point.
        assert!(
            (p.interval_95[0] - p.normal_interval_95[0]).abs() < 1.0,
            "{p:?}"
        );
        assert!(
            (p.interval_95[1] - p.normal_interval_95[1]).abs() < 1.0,
            "{p:?}"
        );
        // Deterministic.
        assert_eq!(PairedDifference::of(&[pair(60, 15, 5, 20)]).unwrap(), p);
    }

    #[test]
    fn agreeing_models_have_a_point_interval() {
        let p = PairedDifference::of(&[pair(70, 0, 0, 30)]).unwrap();
        assert_eq!(p.difference, 0.0);
        assert_eq!(p.interval_95, [0.0, 0.0]);
        assert_eq!(p.normal_interval_95, [0.0, 0.0]);
        // Every disagreement one way: the difference is exact.
        let p = PairedDifference::of(&[pair(70, 10, 0, 20)]).unwrap();
        assert!((p.difference - 10.0).abs() < 1e-12);
        // Var = (0.1 - 0.01) / 100: se 3 points.
        assert!((p.standard_error - 3.0).abs() < 1e-12);
    }

    #[test]
    fn judged_against_the_margin() {
        assert_eq!(
            judge([2.0, 5.0], 2.0),
            Verdict::Holds,
            "lower end at the margin"
        );
        assert_eq!(judge([-1.0, 1.999], 2.0), Verdict::DoesNotHold);
        assert_eq!(
            judge([1.0, 2.0], 2.0),
            Verdict::Undecided,
            "upper end at the margin"
        );
        assert_eq!(judge([-0.5, 3.5], 2.0), Verdict::Undecided);
        assert_eq!(judge([f64::NAN, 1.0], 2.0), Verdict::Undecided);
        assert_eq!(judge_positive([0.1, 3.0]), Verdict::Holds);
        assert_eq!(judge_positive([0.0, 0.0]), Verdict::DoesNotHold, "a tie");
        assert_eq!(judge_positive([-2.0, 0.0]), Verdict::DoesNotHold);
        assert_eq!(judge_positive([-0.1, 3.0]), Verdict::Undecided);
        // 1,000 images, 8 points apart (paper-like): holds against 2.
        let p = PairedDifference::of(&[pair(600, 120, 40, 240)]).unwrap();
        assert!((p.difference - 8.0).abs() < 1e-12);
        assert_eq!(p.judge(2.0), Verdict::Holds, "{p:?}");
        // +1.7 points on 1,000 images against a 2-point margin: undecided.
        let p = PairedDifference::of(&[pair(600, 77, 60, 263)]).unwrap();
        assert!((p.difference - 1.7).abs() < 1e-12);
        assert_eq!(p.judge(2.0), Verdict::Undecided, "{p:?}");
        // b better by 5 points: does not hold.
        let p = PairedDifference::of(&[pair(600, 30, 80, 290)]).unwrap();
        assert!((p.difference + 5.0).abs() < 1e-12);
        assert_eq!(p.judge(2.0), Verdict::DoesNotHold, "{p:?}");
    }

    #[test]
    fn seeds_add_their_spread() {
        // Two seeds on 100 images: +10 and +2 points.
        let one = pair(60, 15, 5, 20);
        let two = pair(60, 6, 4, 30);
        let p = PairedDifference::of(&[one.clone(), two.clone()]).unwrap();
        assert!((p.difference - 6.0).abs() < 1e-12);
        assert_eq!((p.seeds, p.images), (2, 100));
        assert_eq!((p.only_a_right, p.only_b_right), (21, 9));
        // By hand: the seed-averaged d_i are 0 on 84 images (60 + 4 where
        // the seeds disagree in sign + 20), 1 on 6, 0.5 on 5, -0.5 on 5; mean
        // 0.06. Image variance: (84 * 0.06^2 + 6 * 0.94^2 + 5 * 0.44^2 +
        // 5 * 0.56^2) / 100 / 100 = 8.14e-4. Between seeds: ((0.1 - 0.06)^2
        // + (0.02 - 0.06)^2) / (2 - 1) / 2 = 1.6e-3.
        let se = (8.14e-4f64 + 1.6e-3).sqrt();
        assert!((p.standard_error - 100.0 * se).abs() < 1e-9, "{p:?}");
        // The spread between seeds widens the interval beyond one seed's.
        let single = PairedDifference::of(&[one]).unwrap();
        let width = |i: [f64; 2]| i[1] - i[0];
        assert!(width(p.normal_interval_95) > 0.0);
        assert!(p.interval_95[0] <= p.difference && p.difference <= p.interval_95[1]);
        assert!(width(single.interval_95) > 0.0);
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        assert!(PairedDifference::of(&[]).is_err());
        assert!(PairedDifference::of(&[(vec![], vec![])]).is_err());
        let e = PairedDifference::of(&[pair(1, 1, 1, 1), (vec![true], vec![true])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("seed 1"), "{e}");
    }
}
