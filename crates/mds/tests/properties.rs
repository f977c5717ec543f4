//! Property tests of the invariants classical MDS must satisfy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use approx::assert_abs_diff_eq;
use landscape_mds::{
    dissimilarity_matrix, procrustes, ClassicalMds, Dissimilarity, EigenSolver, MdsError,
};
use ndarray::{array, Array1, Array2, Axis, ShapeBuilder};
use proptest::prelude::*;

/// n points in R^dim with coordinates in [-10, 10].
fn points(n: std::ops::Range<usize>, dim: usize) -> impl Strategy<Value = Array2<f64>> {
    n.prop_flat_map(move |n| {
        proptest::collection::vec(-10.0..10.0_f64, n * dim)
            .prop_map(move |v| Array2::from_shape_vec((n, dim), v).unwrap())
    })
}

fn distances(x: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    Array2::from_shape_fn((n, n), |(i, j)| {
        let diff = &x.row(i) - &x.row(j);
        diff.dot(&diff).sqrt()
    })
}

/// An orthogonal matrix: the product of Givens rotations by `angles`.
fn rotation(dim: usize, angles: &[f64]) -> Array2<f64> {
    let mut r = Array2::<f64>::eye(dim);
    for (t, &angle) in angles.iter().enumerate() {
        let (a, b) = (t % dim, (t + 1) % dim);
        if a == b {
            continue;
        }
        let mut g = Array2::<f64>::eye(dim);
        g[[a, a]] = angle.cos();
        g[[b, b]] = angle.cos();
        g[[a, b]] = -angle.sin();
        g[[b, a]] = angle.sin();
        r = r.dot(&g);
    }
    r
}

fn max_rel_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b.iter())
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn f32_rows(x: &Array2<f64>) -> Array2<f32> {
    x.mapv(|v| v as f32)
}

/// Three points in R^5 asked for k = 3: the centred configuration has rank 2,
/// so the third eigenvalue is rounding noise whose eigenvector can be the ones
/// vector. It must get zero coordinates, not an off-centre shift (a case
/// proptest found).
#[test]
fn rank_deficient_axis_is_zero_and_centred() {
    let x = Array2::from_shape_vec(
        (3, 5),
        vec![
            0.0,
            -5.22706250682357,
            0.0,
            -0.21915677063951844,
            0.0, //
            0.0,
            4.170200589142681,
            6.132383460370444,
            7.046933847364768,
            0.0, //
            9.30063171683239,
            7.92855058566596,
            0.0,
            0.0,
            0.0,
        ],
    )
    .unwrap();
    let d = distances(&x);
    for solver in [EigenSolver::Full, EigenSolver::Partial] {
        let e = ClassicalMds::params(3).solver(solver).fit(&d).unwrap();
        let c = e.coordinates();
        let scale = c.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
        for mean in c.mean_axis(Axis(0)).unwrap() {
            assert!(mean.abs() < 1e-12 * scale, "{solver:?}: mean {mean}");
        }
        assert!(c.column(2).iter().all(|&v| v == 0.0), "{solver:?}: {c}");
        assert!(max_rel_diff(&distances(c), &d) < 1e-8);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Points in R^k are recovered up to a rigid motion: same pairwise distances.
    #[test]
    fn recovers_points_in_rk(x in points(3..30, 2), k in 2..4_usize) {
        let d = distances(&x);
        let k = k.min(x.nrows());
        for solver in [EigenSolver::Full, EigenSolver::Partial] {
            let e = ClassicalMds::params(k).solver(solver).fit(&d).unwrap();
            let got = distances(e.coordinates());
            prop_assert!(max_rel_diff(&got, &d) < 1e-8, "{:?}: {}", solver, max_rel_diff(&got, &d));
            prop_assert!(e.strain() < 1e-6);
        }
    }

    /// The embedding is centred and its eigenvalues are sorted.
    #[test]
    fn centred_and_sorted(x in points(2..40, 5), k in 1..4_usize) {
        let d = distances(&x);
        let k = k.min(x.nrows());
        let e = ClassicalMds::params(k).fit(&d).unwrap();
        let scale = e.coordinates().iter().fold(1.0_f64, |m, v| m.max(v.abs()));
        for mean in e.coordinates().mean_axis(Axis(0)).unwrap() {
            prop_assert!(mean.abs() < 1e-9 * scale);
        }
        let ev = e.eigenvalues();
        prop_assert!(ev.windows(2).into_iter().all(|w| w[0] >= w[1]));
    }

    /// Output distances do not change under rotation, translation and
    /// permutation of the input points.
    #[test]
    fn invariant_under_rigid_motion_and_permutation(
        x in points(4..25, 3),
        angles in proptest::collection::vec(-3.0..3.0_f64, 3),
        shift in proptest::collection::vec(-50.0..50.0_f64, 3),
        seed in any::<u64>(),
    ) {
        let n = x.nrows();
        let base = ClassicalMds::params(2).fit(&distances(&x)).unwrap();
        let moved = x.dot(&rotation(3, &angles)) + &Array1::from(shift);
        // A permutation from the seed (Fisher-Yates with a tiny LCG).
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let permuted = moved.select(Axis(0), &perm);
        let other = ClassicalMds::params(2).fit(&distances(&permuted)).unwrap();
        let want = distances(base.coordinates()).select(Axis(0), &perm).select(Axis(1), &perm);
        let got = distances(other.coordinates());
        // Unless the 2nd and 3rd eigenvalues (nearly) tie, the 2-D picture is unique.
        let ev = base.eigenvalues();
        prop_assume!(ev[1] - ev[2] > 1e-3 * ev[0]);
        prop_assert!(max_rel_diff(&got, &want) < 1e-6, "{}", max_rel_diff(&got, &want));
    }

    /// 1 - cosine does not change when rows are scaled by positive numbers.
    #[test]
    fn cosine_invariant_under_positive_row_scaling(
        x in points(2..20, 6),
        factors in proptest::collection::vec(0.01..100.0_f64, 20),
    ) {
        prop_assume!(x.rows().into_iter().all(|r| r.dot(&r) > 1e-3));
        let d = dissimilarity_matrix(&f32_rows(&x), Dissimilarity::Cosine).unwrap();
        let mut scaled = x.clone();
        for (mut row, f) in scaled.rows_mut().into_iter().zip(&factors) {
            row *= *f;
        }
        let ds = dissimilarity_matrix(&f32_rows(&scaled), Dissimilarity::Cosine).unwrap();
        for (a, b) in d.iter().zip(ds.iter()) {
            prop_assert!((a - b).abs() < 1e-5);
        }
    }

    /// Procrustes of an embedding onto a rotated, shifted copy has zero residual.
    #[test]
    fn procrustes_recovers_rotation(x in points(3..30, 3), angles in proptest::collection::vec(-3.0..3.0_f64, 3)) {
        let e = ClassicalMds::params(3.min(x.nrows())).fit(&distances(&x)).unwrap();
        let a = e.coordinates();
        let r = rotation(a.ncols(), &angles);
        let b = a.dot(&r) + 5.0;
        let p = procrustes(a, &b, false).unwrap();
        prop_assert!(p.residual() < 1e-8 * (1.0 + b.iter().fold(0.0_f64, |m, v| m.max(v.abs()))));
        let mapped = p.apply(a).unwrap();
        prop_assert!(max_rel_diff(&mapped, &b) < 1e-9);
    }

    /// The partial (Lanczos) and full eigensolvers agree, on non-Euclidean
    /// (cosine) dissimilarities too.
    #[test]
    fn partial_and_full_agree(x in points(5..60, 8), k in 1..4_usize) {
        prop_assume!(x.rows().into_iter().all(|r| r.dot(&r) > 1e-3));
        let d = dissimilarity_matrix(&f32_rows(&x), Dissimilarity::Cosine).unwrap();
        let full = ClassicalMds::params(k).solver(EigenSolver::Full).fit(&d).unwrap();
        let part = ClassicalMds::params(k).solver(EigenSolver::Partial).fit(&d).unwrap();
        let ev = full.eigenvalues();
        for i in 0..k {
            prop_assert!((ev[i] - part.eigenvalues()[i]).abs() < 1e-9 * ev[0].abs().max(1e-12));
        }
        // Coordinates agree where the eigenvalue is separated from its neighbours.
        let gap = (0..k).all(|i| ev[i] - ev[i + 1] > 1e-3 * ev[0] && (i == 0 || ev[i - 1] - ev[i] > 1e-3 * ev[0]));
        if gap {
            let diff = max_rel_diff(part.coordinates(), full.coordinates());
            prop_assert!(diff < 1e-5, "{diff}");
        }
        prop_assert!((full.strain() - part.strain()).abs() < 1e-8);
    }

    /// A partial solver forced to restart many times (a basis of only a few
    /// vectors more than k) converges to the same eigenpairs as the full one,
    /// without falling back to it.
    #[test]
    fn restarted_partial_agrees_with_full(x in points(12..60, 8), k in 1..4_usize, room in 1..6_usize) {
        prop_assume!(x.rows().into_iter().all(|r| r.dot(&r) > 1e-3));
        let d = dissimilarity_matrix(&f32_rows(&x), Dissimilarity::Cosine).unwrap();
        let full = ClassicalMds::params(k).solver(EigenSolver::Full).fit(&d).unwrap();
        let part = ClassicalMds::params(k)
            .solver(EigenSolver::Partial)
            .max_krylov(k + room)
            .max_restarts(10_000)
            .fit(&d)
            .unwrap();
        prop_assert_eq!(part.solver(), EigenSolver::Partial);
        let ev = full.eigenvalues();
        for i in 0..k {
            prop_assert!((ev[i] - part.eigenvalues()[i]).abs() < 1e-9 * ev[0].abs().max(1e-12));
        }
        prop_assert!((full.strain() - part.strain()).abs() < 1e-8);
    }

    /// Placing the training points with Gower's formula gives back their coordinates.
    #[test]
    fn placement_reproduces_training_points(x in points(4..30, 4)) {
        let d = distances(&x);
        let e = ClassicalMds::params(2).fit(&d).unwrap();
        let placed = e.place(&d).unwrap();
        prop_assert!(max_rel_diff(&placed, e.coordinates()) < 1e-8);
    }
}

#[test]
fn placement_of_a_new_point_in_the_plane() {
    let x = array![[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [4.0, 3.0], [1.0, 2.0]];
    let e = ClassicalMds::params(2).fit(&distances(&x)).unwrap();
    // A new point at (2, 1): its distances to the five points.
    let new = array![[2.0_f64, 1.0]];
    let d_new = Array2::from_shape_fn((1, 5), |(_, j)| {
        let diff = &new.row(0) - &x.row(j);
        diff.dot(&diff).sqrt()
    });
    let placed = e.place(&d_new).unwrap();
    // In the embedding's frame: align the training points onto x and map the new one.
    let p = procrustes(e.coordinates(), &x, false).unwrap();
    let mapped = p.apply(&placed).unwrap();
    assert_abs_diff_eq!(mapped[[0, 0]], 2.0, epsilon = 1e-9);
    assert_abs_diff_eq!(mapped[[0, 1]], 1.0, epsilon = 1e-9);
}

#[test]
fn large_n_auto_uses_partial_and_agrees_with_full() {
    let n = 900;
    let x = Array2::from_shape_fn((n, 12), |(i, j)| {
        ((i * 31 + j * 17) % 97) as f64 / 97.0 + (j as f64) * 0.1
    });
    let d = dissimilarity_matrix(&f32_rows(&x), Dissimilarity::Cosine).unwrap();
    let auto = ClassicalMds::params(2).fit(&d).unwrap();
    assert_eq!(auto.solver(), EigenSolver::Partial);
    let full = ClassicalMds::params(2)
        .solver(EigenSolver::Full)
        .fit(&d)
        .unwrap();
    assert_abs_diff_eq!(
        auto.eigenvalues()[0],
        full.eigenvalues()[0],
        epsilon = 1e-10
    );
    assert_abs_diff_eq!(
        auto.eigenvalues()[1],
        full.eigenvalues()[1],
        epsilon = 1e-10
    );
    assert!(max_rel_diff(auto.coordinates(), full.coordinates()) < 1e-6);
}

#[test]
fn sign_convention_is_deterministic_and_largest_positive() {
    let x = array![[0.0, 0.0], [5.0, 0.0], [1.0, 1.0], [2.0, -3.0]];
    let e = ClassicalMds::params(2).fit(&distances(&x)).unwrap();
    for col in e.coordinates().columns() {
        let i = col
            .iter()
            .enumerate()
            .fold(0, |b, (i, v)| if v.abs() > col[b].abs() { i } else { b });
        assert!(col[i] > 0.0);
    }
    let again = ClassicalMds::params(2).fit(&distances(&x)).unwrap();
    assert_eq!(e.coordinates(), again.coordinates());
}

#[test]
fn typed_errors_instead_of_panics() {
    let params = ClassicalMds::params(2);
    assert!(matches!(
        params.fit(&Array2::<f64>::zeros((0, 0))),
        Err(MdsError::Empty { .. })
    ));
    assert!(matches!(
        params.fit(&Array2::<f64>::zeros((3, 4))),
        Err(MdsError::NotSquare { rows: 3, cols: 4 })
    ));
    let mut nan = Array2::<f64>::zeros((3, 3));
    nan[[1, 2]] = f64::NAN;
    assert!(matches!(
        params.fit(&nan),
        Err(MdsError::NonFinite { row: 1, col: 2, .. })
    ));
    let asym = array![[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.5, 0.0]];
    assert!(matches!(
        params.fit(&asym),
        Err(MdsError::NotSymmetric { row: 1, col: 2, .. })
    ));
    let diag = array![[0.0, 1.0], [1.0, 0.5]];
    assert!(matches!(
        params.fit(&diag),
        Err(MdsError::NonZeroDiagonal { row: 1, .. })
    ));
    let neg = array![[0.0, -1.0], [-1.0, 0.0]];
    assert!(matches!(
        params.fit(&neg),
        Err(MdsError::Negative { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        ClassicalMds::params(3).fit(&array![[0.0, 1.0], [1.0, 0.0]]),
        Err(MdsError::InvalidDimension { k: 3, n: 2 })
    ));
    assert!(matches!(
        ClassicalMds::params(0).fit(&array![[0.0]]),
        Err(MdsError::InvalidDimension { k: 0, n: 1 })
    ));

    let zero_row = array![[1.0_f32, 2.0], [0.0, 0.0], [3.0, 1.0]];
    let err = dissimilarity_matrix(&zero_row, Dissimilarity::Cosine).unwrap_err();
    assert!(matches!(err, MdsError::ZeroRow { row: 1 }));
    assert!(err.to_string().contains("row 1"));
    // Zero rows are fine for Euclidean distances.
    let d = dissimilarity_matrix(&zero_row, Dissimilarity::Euclidean).unwrap();
    assert_abs_diff_eq!(d[[0, 1]], 5.0_f64.sqrt(), epsilon = 1e-12);
    let inf = array![[1.0_f32, 2.0], [3.0, f32::INFINITY]];
    assert!(matches!(
        dissimilarity_matrix(&inf, Dissimilarity::Cosine),
        Err(MdsError::NonFinite { row: 1, col: 1, .. })
    ));
    assert!(matches!(
        dissimilarity_matrix(&Array2::<f32>::zeros((0, 3)), Dissimilarity::Cosine),
        Err(MdsError::Empty { .. })
    ));
    let e = params.fit(&array![[0.0, 1.0], [1.0, 0.0]]).unwrap();
    assert!(matches!(
        e.place(&Array2::<f64>::zeros((1, 3))),
        Err(MdsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        procrustes(
            &Array2::<f64>::zeros((3, 2)),
            &Array2::<f64>::zeros((2, 2)),
            false
        ),
        Err(MdsError::ShapeMismatch { .. })
    ));
    assert!("chebyshev".parse::<Dissimilarity>().is_err());
    assert_eq!(
        "squared-euclidean".parse::<Dissimilarity>().unwrap(),
        Dissimilarity::SquaredEuclidean
    );
}

#[test]
fn euclidean_metrics_match_direct_computation() {
    let x = array![[1.0_f32, 2.0, 3.0], [-1.0, 0.5, 2.0], [4.0, -2.0, 0.0]];
    let d = dissimilarity_matrix(&x, Dissimilarity::Euclidean).unwrap();
    let sq = dissimilarity_matrix(&x, Dissimilarity::SquaredEuclidean).unwrap();
    let direct = distances(&x.mapv(f64::from));
    for ((a, b), c) in d.iter().zip(sq.iter()).zip(direct.iter()) {
        assert_abs_diff_eq!(*a, *c, epsilon = 1e-12);
        assert_abs_diff_eq!(*b, c * c, epsilon = 1e-10);
    }
}

#[test]
fn gram_blocks_cover_large_inputs() {
    // More rows than one block (512) and more columns than one chunk: the
    // block-triangular product and its mirror must match a direct product.
    let (n, dim) = (1100, 5000);
    let x = Array2::from_shape_fn((n, dim), |(i, j)| {
        (((i * 7 + j * 13) % 101) as f32 - 50.0) / 50.0
    });
    let g = landscape_mds::gram_matrix(&x).unwrap();
    let x64 = x.mapv(f64::from);
    for &(i, j) in &[
        (0, 0),
        (3, 1099),
        (1099, 3),
        (600, 10),
        (10, 600),
        (1050, 1051),
        (511, 512),
    ] {
        let want = x64.row(i).dot(&x64.row(j));
        assert_abs_diff_eq!(g[[i, j]], want, epsilon = 1e-9 * want.abs().max(1.0));
    }
    assert_eq!(g, g.t());
}

/// `fit_owned` (in place) and `fit` (on a copy) give bit-identical
/// embeddings, for standard and column-major inputs, over several 64-row
/// tiles of the blocked passes; an input that is symmetric only within the
/// tolerance is embedded as its symmetric part.
#[test]
fn fit_owned_matches_fit_in_every_layout() {
    let n = 150;
    let x = Array2::from_shape_fn((n, 6), |(i, j)| {
        (((i * 37 + j * 11) % 101) as f64 / 101.0).powi(j as i32 % 3 + 1)
    });
    let d = distances(&x);
    let params = ClassicalMds::params(3).solver(EigenSolver::Full);
    let reference = params.fit(&d).unwrap();
    let owned = params.fit_owned(d.clone()).unwrap();
    assert_eq!(reference.coordinates(), owned.coordinates());
    assert_eq!(reference.eigenvalues(), owned.eigenvalues());
    assert_eq!(reference.strain(), owned.strain());

    // Column-major storage of the same (symmetric) matrix.
    let fortran = Array2::from_shape_vec((n, n).f(), d.t().iter().copied().collect()).unwrap();
    assert_eq!(fortran, d);
    assert!(!fortran.is_standard_layout());
    assert_eq!(
        params.fit(&fortran).unwrap().coordinates(),
        reference.coordinates()
    );
    assert_eq!(
        params.fit_owned(fortran).unwrap().coordinates(),
        reference.coordinates()
    );

    // Rounding-level asymmetry (1e-13 relative) across tiles is averaged away.
    let mut skewed = d.clone();
    skewed[[3, 140]] *= 1.0 + 1e-13;
    skewed[[100, 20]] *= 1.0 - 1e-13;
    let mut symmetric = skewed.clone();
    for (i, j) in [(3, 140), (100, 20)] {
        let m = 0.5 * (skewed[[i, j]] + skewed[[j, i]]);
        symmetric[[i, j]] = m;
        symmetric[[j, i]] = m;
    }
    let a = params.fit_owned(skewed).unwrap();
    let b = params.fit(&symmetric).unwrap();
    assert_eq!(a.coordinates(), b.coordinates());
}

/// Errors found by the blocked validation name the entry at fault, also
/// below the diagonal and beyond the first tile.
#[test]
fn validation_names_entries_beyond_the_first_tile() {
    let n = 150;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 3) % 17) as f64);
    let d = distances(&x);
    let params = ClassicalMds::params(2);

    let mut nan = d.clone();
    nan[[140, 3]] = f64::NAN;
    assert!(matches!(
        params.fit_owned(nan),
        Err(MdsError::NonFinite {
            row: 140,
            col: 3,
            ..
        })
    ));
    let mut neg = d.clone();
    neg[[70, 130]] = -0.5;
    neg[[130, 70]] = -0.5;
    assert!(matches!(
        params.fit_owned(neg),
        Err(MdsError::Negative {
            row: 70,
            col: 130,
            ..
        })
    ));
    let mut asym = d.clone();
    asym[[149, 64]] += 1e-3;
    let err = params.fit(&asym).unwrap_err();
    assert!(
        matches!(
            err,
            MdsError::NotSymmetric {
                row: 64,
                col: 149,
                ..
            }
        ),
        "{err}"
    );
    let mut diag = d.clone();
    diag[[129, 129]] = 1.0;
    assert!(matches!(
        params.fit_owned(diag),
        Err(MdsError::NonZeroDiagonal { row: 129, .. })
    ));
}

/// The partial solver with `spectrum(true)` reports every eigenvalue, the
/// explained share and the negative mass, equal to the full solver's, and
/// the same coordinates as without it.
#[test]
fn partial_solver_with_spectrum_reports_what_the_full_one_does() {
    let n = 120;
    let x = Array2::from_shape_fn((n, 7), |(i, j)| {
        ((i * 13 + j * 29) % 61) as f64 / 61.0 + if j == 0 { i as f64 * 0.02 } else { 0.0 }
    });
    let d = dissimilarity_matrix(&f32_rows(&x), Dissimilarity::Cosine).unwrap();
    let full = ClassicalMds::params(2)
        .solver(EigenSolver::Full)
        .fit(&d)
        .unwrap();
    let plain = ClassicalMds::params(2)
        .solver(EigenSolver::Partial)
        .fit(&d)
        .unwrap();
    let with = ClassicalMds::params(2)
        .solver(EigenSolver::Partial)
        .spectrum(true)
        .fit(&d)
        .unwrap();
    assert_eq!(with.solver(), EigenSolver::Partial);
    assert_eq!(plain.eigenvalues().len(), 2);
    assert_eq!(plain.explained_ratio(), None);
    assert_eq!(plain.negative_mass(), None);
    assert_eq!(with.eigenvalues().len(), n);
    assert_eq!(with.coordinates(), plain.coordinates());
    let scale = full.eigenvalues()[0];
    for (a, b) in with.eigenvalues().iter().zip(full.eigenvalues()) {
        assert!((a - b).abs() < 1e-9 * scale, "{a} vs {b}");
    }
    let (r, m) = (
        with.explained_ratio().unwrap(),
        with.negative_mass().unwrap(),
    );
    assert!((r - full.explained_ratio().unwrap()).abs() < 1e-9, "{r}");
    assert!((m - full.negative_mass().unwrap()).abs() < 1e-9, "{m}");
    assert!(m > 0.0, "1 - cosine is not Euclidean: some negative mass");
    assert!(r > 0.0 && r < 1.0);
}
