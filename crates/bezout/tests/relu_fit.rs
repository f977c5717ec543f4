//! ReLU least-squares fits at Chebyshev nodes.

use landscape_bezout::{BezoutError, ReluFitParams};
use ndarray::{Array1, Array2};
use ndarray_linalg::Solve;
use proptest::prelude::*;

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

#[test]
fn chebyshev_fit_equals_normal_equations_in_the_monomial_basis() {
    let (r, m) = (2.5, 24usize);
    for n in 0..6usize {
        let fit = ReluFitParams::new(r).nodes(m).fit(n).unwrap();
        // Normal equations A^T A c = A^T y with A_ij = x_i^j at the same Chebyshev nodes.
        let xs: Vec<f64> = (0..m)
            .map(|i| r * (std::f64::consts::PI * (i as f64 + 0.5) / m as f64).cos())
            .collect();
        let a = Array2::from_shape_fn((m, n + 1), |(i, j)| xs[i].powi(j as i32));
        let y = Array1::from_iter(xs.iter().map(|&x| relu(x)));
        let c = a.t().dot(&a).solve(&a.t().dot(&y)).unwrap();
        for &x in &[-2.5, -1.0, -0.1, 0.0, 0.3, 1.7, 2.5] {
            let mono: f64 = c
                .iter()
                .enumerate()
                .map(|(j, cj)| cj * f64::powi(x, j as i32))
                .sum();
            assert!(
                (fit.eval(x) - mono).abs() < 1e-9,
                "degree {n} at {x}: {} vs {mono}",
                fit.eval(x)
            );
        }
    }
}

#[test]
fn low_degree_fits_by_hand() {
    // With many nodes the degree-1 fit tends to the Chebyshev projection
    // r/pi + x/2 (the mean of relu(r cos t) over t is r/pi).
    let r = 3.0;
    let fit = ReluFitParams::new(r).nodes(4096).fit(1).unwrap();
    let c = fit.chebyshev_coefficients();
    assert!((c[0] - r / std::f64::consts::PI).abs() < 1e-6);
    assert!((c[1] - r / 2.0).abs() < 1e-6);
    // Its sup error is at the ends or the kink: r/pi at x = 0.
    assert!((fit.sup_error() - r / std::f64::consts::PI).abs() < 1e-6);
    assert_eq!(fit.degree(), 1);
}

#[test]
fn curve_agrees_with_single_fits_and_decays_like_r_over_pi_n() {
    let params = ReluFitParams::new(4.0).nodes(1024).grid(2001);
    let curve = params.error_curve(200).unwrap();
    for n in [0usize, 1, 2, 7, 50, 200] {
        let single = params.fit(n).unwrap().sup_error();
        assert!((curve.errors()[n] - single).abs() < 1e-12, "degree {n}");
    }
    for n in [50usize, 100, 200] {
        let predicted = 4.0 / (std::f64::consts::PI * n as f64);
        let ratio = curve.errors()[n] / predicted;
        assert!((0.8..1.25).contains(&ratio), "degree {n}: ratio {ratio}");
    }
    // The degree needed tracks the r/(pi eps) rule and stays above Bernstein's best-approximation rule.
    for eps in [0.05, 0.02, 0.01] {
        let deg = curve.degree_for(eps).unwrap() as f64;
        assert!(deg >= curve.bernstein_rule(eps));
        let ratio = deg / curve.chebyshev_rule(eps);
        assert!(
            (0.8..1.25).contains(&ratio),
            "eps {eps}: {deg} vs {}",
            curve.chebyshev_rule(eps)
        );
    }
    assert_eq!(curve.degree_for(1e-9), None);
}

#[test]
fn bad_parameters_are_rejected() {
    assert!(matches!(
        ReluFitParams::new(0.0).fit(2),
        Err(BezoutError::InvalidParam {
            field: "radius",
            ..
        })
    ));
    assert!(matches!(
        ReluFitParams::new(1.0).nodes(5).fit(5),
        Err(BezoutError::InvalidParam { field: "nodes", .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn degree_needed_falls_as_epsilon_grows(r in 0.5f64..8.0, e1 in 0.005f64..0.5, factor in 1.0f64..10.0) {
        let curve = ReluFitParams::new(r).nodes(1024).grid(1001).error_curve(400).unwrap();
        let e2 = e1 * factor;
        let tight = curve.degree_for(e1 * r).unwrap();
        let loose = curve.degree_for(e2 * r).unwrap();
        prop_assert!(loose <= tight);
        // The found degree really is within epsilon, and the one below is not.
        prop_assert!(curve.errors()[tight] <= e1 * r);
        if tight > 0 {
            prop_assert!(curve.errors()[..tight].iter().all(|&e| e > e1 * r));
        }
    }

    #[test]
    fn error_scales_linearly_with_the_radius(r in 0.1f64..10.0, n in 0usize..40) {
        let a = ReluFitParams::new(r).nodes(256).grid(801).fit(n).unwrap();
        let b = ReluFitParams::new(1.0).nodes(256).grid(801).fit(n).unwrap();
        prop_assert!((a.sup_error() - r * b.sup_error()).abs() <= 1e-9 * r);
    }
}
