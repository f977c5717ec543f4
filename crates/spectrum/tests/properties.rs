//! Property tests: invariants that must hold for every symmetric matrix.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{eigh, gaussian_matrix, gaussian_vector};
use landscape_spectrum::{
    default_rank_rtol, degeneracy, extremes, numerical_rank, top_k, DenseOperator,
    DiagonalOperator, HutchinsonParams, LanczosParams, Operator, Scaled, Shifted, SlqParams,
};
use ndarray::{Array1, Array2};
use proptest::prelude::*;

/// A symmetric n x n matrix with entries in [-10, 10], n in `sizes`.
fn symmetric(sizes: std::ops::Range<usize>) -> impl Strategy<Value = Array2<f64>> {
    sizes.prop_flat_map(|n| {
        proptest::collection::vec(-10.0..10.0_f64, n * n).prop_map(move |v| {
            let g = Array2::from_shape_vec((n, n), v).unwrap();
            (&g + &g.t()) * 0.5
        })
    })
}

fn spectral_norm(values: &Array1<f64>) -> f64 {
    values.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// With as many steps as the dimension, the extremes are exact
    /// (within 1e-8 ‖A‖).
    #[test]
    fn extremes_exact_with_full_steps(a in symmetric(1..25), seed in 0..1000_u64) {
        let n = a.nrows();
        let (exact, _) = eigh(&a);
        let norm = spectral_norm(&exact);
        let op = DenseOperator::new(a).unwrap();
        let params = LanczosParams::default().steps(n).tol(1e-10).seed(seed);
        let ends = extremes(&op, &params).unwrap();
        prop_assert!((ends.max().value() - exact[n - 1]).abs() <= 1e-8 * norm + 1e-12);
        prop_assert!((ends.min().value() - exact[0]).abs() <= 1e-8 * norm + 1e-12);
        prop_assert!(ends.min().value() <= ends.max().value());
    }

    /// Whatever the convergence, each reported value has an exact
    /// eigenvalue within its residual (‖A v - θ v‖ bounds the distance).
    #[test]
    fn residuals_bound_the_eigenvalue_error(a in symmetric(6..40), k in 1..4_usize, seed in 0..1000_u64) {
        let n = a.nrows();
        let (exact, _) = eigh(&a);
        let norm = spectral_norm(&exact);
        let op = DenseOperator::new(a).unwrap();
        let params = LanczosParams::default().steps(k + 3).tol(1e-10).seed(seed).max_applications(40);
        let top = top_k(&op, k, &params).unwrap();
        prop_assert_eq!(top.values().len(), k);
        for (&theta, &r) in top.values().iter().zip(top.residuals()) {
            let distance = exact.iter().fold(f64::INFINITY, |m, &l| m.min((l - theta).abs()));
            prop_assert!(distance <= r * (1.0 + 1e-8) + 1e-12 * norm, "n = {}: θ = {}, r = {}, distance {}", n, theta, r, distance);
        }
        if top.converged() {
            prop_assert!(top.residuals().iter().all(|&r| r <= top.threshold()));
        }
    }

    /// Each quadrature has non-negative weights summing to 1, nodes inside
    /// the spectrum, and reproduces vᵀ A^p v for p <= 2m - 1.
    #[test]
    fn quadrature_properties(a in symmetric(1..30), m in 1..6_usize, seed in 0..1000_u64) {
        let n = a.nrows();
        let (exact, _) = eigh(&a);
        let norm = spectral_norm(&exact).max(1e-300);
        let op = DenseOperator::new(a.clone()).unwrap();
        let v = gaussian_vector(n, seed);
        let vv = v.dot(&v);
        let quad = LanczosParams::default().steps(m).run_from(&op, v.view()).unwrap().quadrature().unwrap();
        prop_assert!((quad.weights().sum() - 1.0).abs() < 1e-12);
        prop_assert!(quad.weights().iter().all(|&w| w >= 0.0));
        prop_assert!(quad.nodes().iter().all(|&t| t >= exact[0] - 1e-10 * norm && t <= exact[n - 1] + 1e-10 * norm));
        let mut apv = v.clone();
        for p in 0..(2 * m) as u32 {
            let scale = vv * norm.powi(p as i32);
            prop_assert!((vv * quad.moment(p) - v.dot(&apv)).abs() <= 1e-8 * scale, "p = {}", p);
            apv = op.matrix().dot(&apv);
        }
    }

    /// SLQ: every run's quadrature is a probability measure on the spectrum.
    #[test]
    fn slq_runs_are_probability_measures(a in symmetric(1..30), runs in 1..4_usize, steps in 1..12_usize) {
        let (exact, _) = eigh(&a);
        let norm = spectral_norm(&exact);
        let op = DenseOperator::new(a).unwrap();
        let density = SlqParams::default().runs(runs).steps(steps).run(&op).unwrap();
        prop_assert_eq!(density.quadratures().len(), runs);
        prop_assert!((density.moment(0) - 1.0).abs() < 1e-12);
        let (lo, hi) = density.node_range();
        prop_assert!(lo >= exact[0] - 1e-10 * norm - 1e-300 && hi <= exact[exact.len() - 1] + 1e-10 * norm + 1e-300);
    }

    /// Rademacher Hutchinson is exact on every diagonal matrix.
    #[test]
    fn hutchinson_exact_on_diagonal(d in proptest::collection::vec(-100.0..100.0_f64, 1..50), seed in 0..1000_u64) {
        let d = Array1::from(d);
        let op = DiagonalOperator::new(d.clone()).unwrap();
        let est = HutchinsonParams::default().probes(3).seed(seed).run(&op).unwrap();
        let scale = d.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
        prop_assert!((est.estimate() - d.sum()).abs() <= 1e-12 * scale);
    }

    /// The rank of a product of N x r and r x W Gaussian matrices is r.
    #[test]
    fn rank_of_product(rows in 1..30_usize, cols in 1..30_usize, r in 1..30_usize, seed in 0..1000_u64) {
        let r = r.min(rows).min(cols);
        let j = gaussian_matrix(rows, r, seed).dot(&gaussian_matrix(r, cols, seed + 1));
        let rank = numerical_rank(&j, default_rank_rtol(rows, cols) * 100.0).unwrap();
        prop_assert_eq!(rank.rank(), r);
        prop_assert_eq!(rank.nullity(), cols - r);
    }

    /// Degeneracy counts partition the spectrum.
    #[test]
    fn degeneracy_partitions(values in proptest::collection::vec(-10.0..10.0_f64, 1..60), rtol in 0.0..0.5_f64) {
        let d = degeneracy(Array1::from(values).view(), rtol).unwrap();
        prop_assert_eq!(d.near_zero() + d.positive() + d.negative(), d.total());
    }

    /// The adapters compute `c (A + s I) x`.
    #[test]
    fn adapters_match_dense(a in symmetric(1..20), shift in -5.0..5.0_f64, factor in -3.0..3.0_f64) {
        let n = a.nrows();
        let x = gaussian_vector(n, 7);
        let op = Scaled::new(Shifted::new(DenseOperator::new(a.clone()).unwrap(), shift).unwrap(), factor).unwrap();
        let mut y = Array1::zeros(n);
        op.apply(x.view(), y.view_mut()).unwrap();
        let want = (a.dot(&x) + &x * shift) * factor;
        prop_assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + b.abs())));
    }
}
