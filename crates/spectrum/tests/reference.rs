//! Checks against exact answers: dense symmetric matrices small enough for
//! a full LAPACK eigendecomposition.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{
    clustered_spectrum, eigh, gaussian_matrix, gaussian_vector, random_symmetric, with_spectrum,
};
use landscape_spectrum::{
    bottom_k, default_rank_rtol, degeneracy, extremes, numerical_rank, top_k, DenseOperator,
    DiagonalOperator, FnOperator, HutchinsonParams, LanczosParams, Operator, ProbeDistribution,
    Scaled, Shifted, SlqParams, SmoothedDensity, SpectrumError,
};
use ndarray::{array, s, Array1, Array2};

fn max_abs(a: &Array1<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// Top-5 Lanczos eigenvalues match `eigh` within 1e-8 relative, residuals
/// are below `tol · max|θ|`, eigenvectors align with the exact ones.
#[test]
fn top5_matches_eigh_on_random_symmetric() {
    for (n, seed, steps) in [(50, 1, 30), (120, 2, 40), (200, 3, 60)] {
        let a = random_symmetric(n, seed, 0.0);
        let (exact, vectors) = eigh(&a);
        let op = DenseOperator::new(a).unwrap();
        let params = LanczosParams::default().steps(steps).tol(1e-10).seed(seed);
        let top = top_k(&op, 5, &params).unwrap();
        assert!(top.converged(), "n = {n}: not converged");
        for j in 0..5 {
            let want = exact[n - 1 - j];
            let got = top.values()[j];
            assert!(
                (got - want).abs() <= 1e-8 * want.abs(),
                "n = {n}, eigenvalue {j}: {got} vs {want}"
            );
            assert!(top.residuals()[j] <= top.threshold());
            // Unit vector along the exact eigenvector (up to sign).
            let v = top.vectors().column(j).to_owned();
            assert!((v.dot(&v) - 1.0).abs() < 1e-12);
            let cos = v.dot(&vectors.column(n - 1 - j)).abs();
            assert!(cos > 1.0 - 1e-8, "n = {n}, vector {j}: |cos| = {cos}");
        }
        // Descending order; the count includes one residual check per vector.
        assert!(top.values().windows(2).into_iter().all(|w| w[0] >= w[1]));
        assert!(top.applications() >= steps.min(n) + 5);
    }
}

/// A known spectrum `Q diag(λ) Qᵀ` with a top cluster (10, 9.99, 9.98) and
/// negative eigenvalues (-3, -2.995), with restarts (steps 40 of n = 150).
#[test]
fn known_spectrum_clustered_and_negative() {
    let lambda = clustered_spectrum();
    let a = with_spectrum(&lambda, 11);
    let op = DenseOperator::new(a).unwrap();
    let params = LanczosParams::default()
        .steps(15)
        .tol(1e-10)
        .max_applications(5000);
    let mut sorted = lambda.to_vec();
    sorted.sort_by(|x, y| y.total_cmp(x));

    let top = top_k(&op, 5, &params).unwrap();
    assert!(top.converged());
    assert!(top.restarts() > 0, "expected thick restarts");
    for (j, &want) in sorted.iter().take(5).enumerate() {
        assert!(
            (top.values()[j] - want).abs() <= 1e-8 * want.abs(),
            "top {j}: {} vs {want}",
            top.values()[j]
        );
        assert!(top.residuals()[j] <= top.threshold());
    }

    let bottom = bottom_k(&op, 2, &params).unwrap();
    assert!(bottom.converged());
    assert!((bottom.values()[0] + 3.0).abs() <= 1e-8 * 3.0);
    assert!((bottom.values()[1] + 2.995).abs() <= 1e-8 * 3.0);

    let ends = extremes(&op, &params).unwrap();
    assert!(ends.converged());
    assert!((ends.max().value() - 10.0).abs() <= 1e-8 * 10.0);
    assert!((ends.min().value() + 3.0).abs() <= 1e-8 * 3.0);
    assert!(ends.max().residual() <= ends.threshold());
    assert!(ends.min().residual() <= ends.threshold());
    assert!(!ends.is_positive_semidefinite(1e-6));
    assert!((ends.ratio() + 0.3).abs() < 1e-8);
}

/// The most negative eigenvalue of random symmetric matrices matches `eigh`.
#[test]
fn extremes_match_eigh_on_random_symmetric() {
    for (n, seed) in [(60, 21), (150, 22)] {
        let a = random_symmetric(n, seed, 0.5);
        let (exact, _) = eigh(&a);
        let scale = exact[0].abs().max(exact[n - 1].abs());
        let op = DenseOperator::new(a).unwrap();
        let ends = extremes(&op, &LanczosParams::default().steps(40).tol(1e-10)).unwrap();
        assert!(ends.converged());
        assert!((ends.min().value() - exact[0]).abs() <= 1e-8 * scale);
        assert!((ends.max().value() - exact[n - 1]).abs() <= 1e-8 * scale);
        // The residual really is ‖A v - λ v‖.
        let v = ends.min().vector().to_owned();
        let r = op.matrix().dot(&v) - &v * ends.min().value();
        assert!((r.dot(&r).sqrt() - ends.min().residual()).abs() < 1e-12 * scale);
    }
}

/// A positive semidefinite operator with a 30-dimensional null space is
/// recognised as a minimum; its negation as a maximum (not PSD).
#[test]
fn extremes_of_semidefinite_operator() {
    let mut lambda = Array1::linspace(0.1, 4.0, 80);
    lambda.slice_mut(s![..30]).fill(0.0);
    let op = DenseOperator::new(with_spectrum(&lambda, 5)).unwrap();
    let params = LanczosParams::default().steps(40).tol(1e-10);
    let ends = extremes(&op, &params).unwrap();
    assert!(ends.min().value().abs() < 1e-9);
    assert!((ends.max().value() - 4.0).abs() < 1e-9);
    assert!(ends.is_positive_semidefinite(1e-8));

    let negated = Scaled::new(&op, -1.0).unwrap();
    let ends = extremes(&negated, &params).unwrap();
    assert!((ends.min().value() + 4.0).abs() < 1e-9);
    assert!(!ends.is_positive_semidefinite(1e-8));

    let shifted = Shifted::new(&op, -1.0).unwrap();
    let ends = extremes(&shifted, &params).unwrap();
    assert!((ends.min().value() + 1.0).abs() < 1e-9);
    assert!((ends.max().value() - 3.0).abs() < 1e-9);
}

/// Only 3 distinct eigenvalues: Lanczos stops after 3 steps on an invariant
/// subspace, without NaNs, with exactly those 3 Ritz values; the
/// eigensolver restarts from fresh vectors and reports the multiplicity.
#[test]
fn breakdown_with_three_distinct_eigenvalues() {
    let mut lambda = Array1::from_elem(100, -1.0);
    lambda.slice_mut(s![40..70]).fill(2.0);
    lambda.slice_mut(s![70..]).fill(5.0);
    for op in [
        DenseOperator::new(with_spectrum(&lambda, 8))
            .map(|d| Box::new(d) as Box<dyn Operator>)
            .unwrap(),
        Box::new(DiagonalOperator::new(lambda.clone()).unwrap()),
    ] {
        let run = LanczosParams::default().steps(50).run(&op).unwrap();
        assert!(run.breakdown());
        assert_eq!(run.len(), 3);
        assert_eq!(run.applications(), 3);
        assert!(run.alpha().iter().chain(run.beta()).all(|v| v.is_finite()));
        let ritz = run.ritz().unwrap();
        for (got, want) in ritz.values().iter().zip([-1.0, 2.0, 5.0]) {
            assert!((got - want).abs() < 1e-10, "{got} vs {want}");
        }
        assert!(ritz.bounds().iter().all(|b| *b < 1e-10));

        let params = LanczosParams::default().steps(30).tol(1e-10);
        let top = top_k(&op, 4, &params).unwrap();
        assert!(top.converged());
        for &v in top.values() {
            assert!((v - 5.0).abs() < 1e-10, "top values {}", top.values());
        }
    }
}

/// The Krylov basis is orthonormal and `Qᵀ A Q = T` (full reorthogonalisation).
#[test]
fn lanczos_basis_is_orthonormal_and_projects_to_t() {
    let a = random_symmetric(120, 4, 0.0);
    let op = DenseOperator::new(a.clone()).unwrap();
    let run = LanczosParams::default()
        .steps(60)
        .keep_basis(true)
        .seed(3)
        .run(&op)
        .unwrap();
    assert_eq!(run.len(), 60);
    let q = run.basis().unwrap().to_owned();
    assert_eq!(q.dim(), (120, 60));
    let gram = q.t().dot(&q);
    let orth = (&gram - &Array2::<f64>::eye(60)).mapv(f64::abs);
    assert!(
        orth.iter().all(|&e| e < 1e-12),
        "‖QᵀQ - I‖max = {}",
        orth.iter().fold(0.0_f64, |m, &e| m.max(e))
    );
    let projected = q.t().dot(&a).dot(&q);
    let diff = (&projected - &run.tridiagonal()).mapv(f64::abs);
    let norm_a = max_abs(&eigh(&a).0);
    assert!(diff.iter().all(|&e| e < 1e-10 * norm_a));
    // Ritz vectors: residuals ‖A y - θ y‖ equal the bounds |β_m s_mk|.
    let ritz = run.ritz().unwrap();
    let y = run.ritz_vectors().unwrap().unwrap();
    for k in [0, 30, 59] {
        let v = y.column(k);
        let r = a.dot(&v) - &v * ritz.values()[k];
        assert!((r.dot(&r).sqrt() - ritz.bounds()[k]).abs() < 1e-9 * norm_a);
    }
}

/// Hutchinson's estimate lies within 3 standard errors of the exact trace,
/// and the standard error shrinks like 1/√probes.
#[test]
fn hutchinson_trace_within_three_standard_errors() {
    let a = random_symmetric(100, 31, 0.7);
    let exact = a.diag().sum();
    let op = DenseOperator::new(a).unwrap();
    for distribution in [ProbeDistribution::Rademacher, ProbeDistribution::Gaussian] {
        let est = HutchinsonParams::default()
            .probes(200)
            .seed(5)
            .distribution(distribution)
            .run(&op)
            .unwrap();
        assert_eq!(est.applications(), 200);
        assert_eq!(est.samples().len(), 200);
        assert!(
            (est.estimate() - exact).abs() <= 3.0 * est.standard_error(),
            "{distribution:?}: {} vs {exact} (se {})",
            est.estimate(),
            est.standard_error()
        );
        // 4x the probes: about half the standard error (its own sampling
        // error at 100 and 400 probes is ~7% and ~4%).
        let few = HutchinsonParams::default()
            .probes(100)
            .seed(6)
            .distribution(distribution)
            .run(&op)
            .unwrap();
        let many = HutchinsonParams::default()
            .probes(400)
            .seed(7)
            .distribution(distribution)
            .run(&op)
            .unwrap();
        let ratio = many.standard_error() / few.standard_error();
        assert!(
            (0.4..0.6).contains(&ratio),
            "{distribution:?}: se ratio {ratio}"
        );
    }
}

/// Rademacher probes are exact on a diagonal matrix, for the trace and the diagonal.
#[test]
fn hutchinson_rademacher_exact_on_diagonal() {
    let d = Array1::linspace(-3.0, 7.0, 64);
    let op = DiagonalOperator::new(d.clone()).unwrap();
    let est = HutchinsonParams::default()
        .probes(5)
        .diagonal(true)
        .run(&op)
        .unwrap();
    assert!((est.estimate() - d.sum()).abs() < 1e-12 * max_abs(&d) * 64.0);
    assert!(est.standard_error() < 1e-12);
    let diag = est.diagonal().unwrap();
    assert!(diag.iter().zip(&d).all(|(a, b)| (a - b).abs() < 1e-12));
}

/// The diagonal estimate converges to the true diagonal on a dense matrix.
#[test]
fn hutchinson_diagonal_estimate() {
    let mut a = random_symmetric(40, 12, 0.0) * 0.1;
    a.diag_mut().assign(&Array1::linspace(1.0, 5.0, 40));
    let op = DenseOperator::new(a.clone()).unwrap();
    let est = HutchinsonParams::default()
        .probes(2000)
        .diagonal(true)
        .run(&op)
        .unwrap();
    let diag = est.diagonal().unwrap();
    // Error per entry ~ sqrt(Σ_j≠i a_ij²) / sqrt(2000) ≈ 0.1 · 4.5 / 45 = 0.01.
    for (got, want) in diag.iter().zip(a.diag()) {
        assert!((got - want).abs() < 0.05, "{got} vs {want}");
    }
}

/// The real check of the SLQ weights: for one run from `v`, the Gauss
/// quadrature reproduces `vᵀ A^p v` for every p <= 2m - 1 to 1e-8
/// relative (to `‖v‖² ‖A‖^p`), and not for p = 2m (checked for m <= 3,
/// where the degree-2m error is large enough to see).
#[test]
fn quadrature_is_exact_up_to_degree_2m_minus_1() {
    let a = random_symmetric(80, 41, 0.3);
    let norm_a = max_abs(&eigh(&a).0);
    let a = a / norm_a; // ‖A‖₂ = 1
    let op = DenseOperator::new(a.clone()).unwrap();
    let v = gaussian_vector(80, 42);
    let vv = v.dot(&v);
    for m in [1, 3, 6, 10] {
        let run = LanczosParams::default()
            .steps(m)
            .run_from(&op, v.view())
            .unwrap();
        assert_eq!(run.len(), m);
        assert!((run.start_norm() - vv.sqrt()).abs() < 1e-12 * vv.sqrt());
        let quad = run.quadrature().unwrap();
        assert!((quad.weights().sum() - 1.0).abs() < 1e-12);
        let mut apv = v.clone(); // A^p v
        for p in 0..=2 * m as u32 {
            let exact = v.dot(&apv);
            let estimate = vv * quad.moment(p);
            let err = (estimate - exact).abs();
            if p < 2 * m as u32 {
                assert!(err <= 1e-8 * vv, "m = {m}, p = {p}: {estimate} vs {exact}");
            } else if m <= 3 {
                assert!(err > 1e-4 * vv, "m = {m}, p = 2m = {p} is exact?");
            }
            apv = a.dot(&apv);
        }
    }
}

/// SLQ estimates of tr(A)/n and tr(A²)/n agree with the exact values within
/// 4 standard errors (over 100 runs); the standard error of tr(A)/n is
/// within a factor 1.5 of its theoretical value; moment 0 is 1; each run's
/// weights sum to 1 and its nodes lie inside the spectrum.
#[test]
fn slq_moments_match_exact_traces() {
    let n = 200;
    let a = random_symmetric(n, 51, 1.0);
    let (exact, _) = eigh(&a);
    let op = DenseOperator::new(a.clone()).unwrap();
    for distribution in [ProbeDistribution::Rademacher, ProbeDistribution::Gaussian] {
        let density = SlqParams::default()
            .runs(100)
            .steps(20)
            .seed(9)
            .distribution(distribution)
            .run(&op)
            .unwrap();
        assert_eq!(density.quadratures().len(), 100);
        assert_eq!(density.applications(), 100 * 20);
        let moments = density.moments(2);
        assert!((moments[0] - 1.0).abs() < 1e-12);
        let m1 = exact.sum() / n as f64;
        let m2 = exact.mapv(|l| l * l).sum() / n as f64;
        let se1 = density.moment_standard_error(1).unwrap();
        let se2 = density.moment_standard_error(2).unwrap();
        assert!(
            (moments[1] - m1).abs() <= 4.0 * se1,
            "{distribution:?}: m1 {} vs {m1} (se {se1})",
            moments[1]
        );
        assert!(
            (moments[2] - m2).abs() <= 4.0 * se2,
            "{distribution:?}: m2 {} vs {m2} (se {se2})",
            moments[2]
        );
        // Var(vᵀAv) for unit v: 2/(n+2) (tr(A²)/n - (tr(A)/n)²) uniform on the
        // sphere; 2/n² Σ_{i≠j} a_ij² for normalised Rademacher.
        let variance = match distribution {
            ProbeDistribution::Gaussian => 2.0 / (n as f64 + 2.0) * (m2 - m1 * m1),
            _ => {
                let off: f64 =
                    a.iter().map(|x| x * x).sum::<f64>() - a.diag().mapv(|x| x * x).sum();
                2.0 * off / (n * n) as f64
            }
        };
        let theory = (variance / 100.0).sqrt();
        assert!(
            se1 > theory / 1.5 && se1 < theory * 1.5,
            "{distribution:?}: se {se1} vs theory {theory}"
        );
        assert!((density.trace() - n as f64 * moments[1]).abs() < 1e-9);
        for q in density.quadratures() {
            assert!((q.weights().sum() - 1.0).abs() < 1e-12);
            assert!(q.weights().iter().all(|&w| w >= 0.0));
            assert!(q
                .nodes()
                .iter()
                .all(|&t| t >= exact[0] - 1e-10 && t <= exact[n - 1] + 1e-10));
        }
    }
}

/// The extreme SLQ nodes converge to the extreme eigenvalues with enough steps.
#[test]
fn slq_extreme_nodes_approach_extreme_eigenvalues() {
    let lambda = clustered_spectrum();
    let op = DenseOperator::new(with_spectrum(&lambda, 13)).unwrap();
    let density = SlqParams::default().runs(3).steps(80).run(&op).unwrap();
    let (lo, hi) = density.node_range();
    assert!((lo + 3.0).abs() < 1e-6, "lowest node {lo}");
    assert!((hi - 10.0).abs() < 1e-6, "highest node {hi}");
}

/// The smoothed density integrates to 1 within 1e-3 over the default grid
/// (PyHessian's σ, margin 6σ), matches the Gaussian mixture of the exact
/// spectrum roughly, and the log floor is applied.
#[test]
fn smoothed_density_integrates_to_one() {
    let lambda = clustered_spectrum();
    let op = DenseOperator::new(with_spectrum(&lambda, 17)).unwrap();
    let density = SlqParams::default().runs(10).steps(60).run(&op).unwrap();
    let sigma = density.default_sigma();
    let (lo, hi) = density.node_range();
    assert!((sigma - (1e-5 * (hi - lo)).sqrt()).abs() < 1e-15);
    let grid = density.grid(4000, 6.0 * sigma).unwrap();
    assert_eq!(grid.len(), 4000);
    assert!((grid[0] - (lo - 6.0 * sigma)).abs() < 1e-12);
    let smooth = density.smoothed(grid.view(), sigma).unwrap();
    assert!(
        (smooth.integral() - 1.0).abs() < 1e-3,
        "integral {}",
        smooth.integral()
    );
    assert!((smooth.normalised().integral() - 1.0).abs() < 1e-12);
    let floored = smooth.floored(SmoothedDensity::LOG_FLOOR);
    assert!(floored
        .iter()
        .all(|&d| d >= SmoothedDensity::LOG_FLOOR && d.log10().is_finite()));
    // A wide broadening (σ = 0.5) of the estimate is close to that of the
    // exact spectrum: the SLQ error is small at coarse resolution.
    let wide = density.grid(400, 3.0).unwrap();
    let smooth = density.smoothed(wide.view(), 0.5).unwrap();
    let exact = wide.mapv(|t| {
        lambda
            .iter()
            .map(|l| (-0.5 * ((t - l) / 0.5).powi(2)).exp())
            .sum::<f64>()
            / (150.0 * 0.5 * (2.0 * std::f64::consts::PI).sqrt())
    });
    let peak = max_abs(&exact);
    let err = max_abs(&(&smooth.density().to_owned() - &exact));
    assert!(err < 0.1 * peak, "max error {err} against peak {peak}");
}

/// The rank of a product of random N x r and r x W matrices is r; the
/// nullity W - r; a full random matrix has rank min(N, W).
#[test]
fn numerical_rank_of_low_rank_product() {
    for (rows, r, cols) in [(30, 7, 80), (50, 50, 120), (60, 1, 20), (40, 25, 25)] {
        let j = gaussian_matrix(rows, r, 61).dot(&gaussian_matrix(r, cols, 62));
        let rank = numerical_rank(&j, default_rank_rtol(rows, cols)).unwrap();
        assert_eq!(rank.rank(), r, "{rows} x {cols} of rank {r}");
        assert_eq!(rank.nullity(), cols - r);
        assert_eq!(rank.left_nullity(), rows - r);
        assert_eq!(rank.singular_values().len(), rows.min(cols));
        assert!(rank
            .singular_values()
            .windows(2)
            .into_iter()
            .all(|w| w[0] >= w[1]));
        // A clear gap: the (r+1)-th singular value is rounding noise.
        if r < rows.min(cols) {
            assert!(rank.singular_values()[r] < 1e-12 * rank.singular_values()[0]);
        }
    }
    let full = numerical_rank(&gaussian_matrix(20, 35, 63), 1e-10).unwrap();
    assert_eq!(full.rank(), 20);
    assert_eq!(full.nullity(), 15);
}

/// Degeneracy counts of an exactly computed spectrum with 25 zero and 10
/// negative eigenvalues.
#[test]
fn degeneracy_counts_of_known_spectrum() {
    let mut lambda = Array1::linspace(0.5, 20.0, 100);
    lambda.slice_mut(s![..25]).fill(0.0);
    lambda.slice_mut(s![25..35]).mapv_inplace(|l| -0.1 * l);
    let (values, _) = eigh(&with_spectrum(&lambda, 71));
    let d = degeneracy(values.view(), 1e-10).unwrap();
    assert_eq!(
        (d.total(), d.near_zero(), d.negative(), d.positive()),
        (100, 25, 10, 65)
    );
    assert!((d.scale() - 20.0).abs() < 1e-10);
    assert!((d.near_zero_fraction() - 0.25).abs() < 1e-15);
    // Top-k Lanczos values feed the same function.
    let op = DiagonalOperator::new(lambda).unwrap();
    let top = top_k(&op, 3, &LanczosParams::default().steps(30).tol(1e-10)).unwrap();
    assert_eq!(degeneracy(top.values(), 1e-10).unwrap().positive(), 3);
}

#[test]
fn errors_name_the_parameter() {
    let asym = array![[1.0, 2.0], [2.5, 1.0]];
    assert!(matches!(
        DenseOperator::new(asym),
        Err(SpectrumError::NotSymmetric { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        DenseOperator::new(Array2::zeros((2, 3))),
        Err(SpectrumError::NotSquare {
            rows: 2,
            cols: 3,
            ..
        })
    ));
    let op = DiagonalOperator::new(Array1::linspace(1.0, 2.0, 10)).unwrap();
    let err = top_k(&op, 0, &LanczosParams::default()).unwrap_err();
    assert!(
        matches!(err, SpectrumError::InvalidParameter { name: "k", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("1 <= k <= 10"), "{err}");
    let err = top_k(
        &op,
        5,
        &LanczosParams::default().steps(5).max_applications(100),
    )
    .unwrap_err();
    assert!(
        matches!(err, SpectrumError::InvalidParameter { name: "steps", .. }),
        "{err}"
    );
    let err = LanczosParams::default().tol(0.0).run(&op).unwrap_err();
    assert!(matches!(
        err,
        SpectrumError::InvalidParameter { name: "tol", .. }
    ));
    let err = HutchinsonParams::default().probes(1).run(&op).unwrap_err();
    assert!(matches!(
        err,
        SpectrumError::InvalidParameter { name: "probes", .. }
    ));
    let err = SlqParams::default().runs(0).run(&op).unwrap_err();
    assert!(matches!(
        err,
        SpectrumError::InvalidParameter { name: "runs", .. }
    ));
    let err = LanczosParams::default()
        .run_from(&op, Array1::zeros(3).view())
        .unwrap_err();
    assert!(matches!(
        err,
        SpectrumError::DimensionMismatch {
            found: 3,
            expected: 10,
            ..
        }
    ));
    let err = LanczosParams::default()
        .run_from(&op, Array1::zeros(10).view())
        .unwrap_err();
    assert!(matches!(err, SpectrumError::ZeroVector { .. }));
    let mut y = Array1::zeros(4);
    assert!(matches!(
        op.apply(Array1::zeros(10).view(), y.view_mut()),
        Err(SpectrumError::DimensionMismatch {
            found: 4,
            expected: 10,
            ..
        })
    ));
    assert!(matches!(
        numerical_rank(&Array2::<f64>::zeros((0, 3)), 1e-10),
        Err(SpectrumError::Empty { .. })
    ));
    assert!(matches!(
        degeneracy(array![1.0, f64::NAN].view(), 1e-10),
        Err(SpectrumError::NonFinite { index: 1, .. })
    ));
}

/// An implementor's error reaches the caller as `SpectrumError::Operator`
/// with its source; a NaN product as `NonFiniteProduct`.
#[test]
fn operator_failures_propagate() {
    #[derive(Debug, thiserror::Error)]
    #[error("CUDA out of memory")]
    struct Oom;

    let calls = std::cell::Cell::new(0);
    let failing = FnOperator::new(20, |x, mut y| {
        calls.set(calls.get() + 1);
        if calls.get() == 3 {
            return Err(SpectrumError::operator(Oom));
        }
        y.assign(&x);
        Ok(())
    });
    let err = top_k(&failing, 1, &LanczosParams::default().steps(10)).unwrap_err();
    assert!(matches!(err, SpectrumError::Operator(_)), "{err:?}");
    assert!(err.to_string().contains("CUDA out of memory"));
    assert!(std::error::Error::source(&err).is_some());

    let nan = FnOperator::new(5, |x, mut y| {
        y.assign(&x);
        y[2] = f64::NAN;
        Ok(())
    });
    let err = SlqParams::default().run(&nan).unwrap_err();
    assert!(
        matches!(
            err,
            SpectrumError::NonFiniteProduct {
                application: 1,
                index: 2,
                ..
            }
        ),
        "{err}"
    );
}

/// A budget too small to converge is reported, not an error.
#[test]
fn unconverged_run_is_reported() {
    let a = random_symmetric(200, 81, 0.0);
    let op = DenseOperator::new(a).unwrap();
    let params = LanczosParams::default()
        .steps(10)
        .tol(1e-12)
        .max_applications(10);
    let top = top_k(&op, 3, &params).unwrap();
    assert!(!top.converged());
    assert_eq!(top.applications(), 10 + 3);
    assert!(top.residuals().iter().any(|&r| r > top.threshold()));
}

#[test]
fn params_roundtrip_through_serde_with_defaults() {
    let params = LanczosParams::default().steps(33).seed(4).tol(1e-9);
    let json = serde_json::to_string(&params).unwrap();
    assert_eq!(
        serde_json::from_str::<LanczosParams>(&json).unwrap(),
        params
    );
    let partial: LanczosParams = serde_json::from_str(r#"{"steps": 12}"#).unwrap();
    assert_eq!(partial, LanczosParams::default().steps(12));
    let h: HutchinsonParams = serde_json::from_str(r#"{"distribution": "gaussian"}"#).unwrap();
    assert_eq!(
        h,
        HutchinsonParams::default().distribution(ProbeDistribution::Gaussian)
    );
    let s: SlqParams = serde_json::from_str(r#"{"runs": 3}"#).unwrap();
    assert_eq!(s, SlqParams::default().runs(3));
}
