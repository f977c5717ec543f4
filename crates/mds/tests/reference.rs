//! Comparison with an independent classical MDS computed by numpy/scipy.
//!
//! The numbers below were produced once by this script (numpy 2.4.6,
//! scipy 1.17.1):
//!
//! ```python
//! import numpy as np, scipy.linalg as sl
//! X = np.array([[0.5, -1.25, 2.0, 0.75, 1.5],
//!               [1.0, 0.25, -0.5, 2.0, 0.0],
//!               [-1.5, 0.75, 1.0, 0.5, -0.25],
//!               [2.0, 1.5, 0.25, -1.0, 0.5],
//!               [0.0, -0.5, -1.75, 1.25, 1.0],
//!               [1.25, 2.0, 0.5, 0.25, -1.5],
//!               [-0.75, -1.0, 0.75, -2.0, 0.25]], dtype=np.float32).astype(np.float64)
//! G = X @ X.T
//! nrm = np.sqrt(np.diag(G))
//! D = 1.0 - G / np.outer(nrm, nrm)
//! np.fill_diagonal(D, 0.0)
//! n = len(X)
//! J = np.eye(n) - np.ones((n, n)) / n
//! B = -0.5 * J @ (D ** 2) @ J
//! w, V = sl.eigh(B)
//! w, V = w[::-1], V[:, ::-1]
//! for j in range(2):                      # largest |value| positive
//!     i = np.argmax(np.abs(V[:, j]))
//!     if V[i, j] < 0: V[:, j] *= -1
//! Xk = V[:, :2] * np.sqrt(w[:2])
//! print(D[0, 1], D[2, 6], w, Xk)
//! pos = w[w > 0].sum(); neg = -w[w < 0].sum()
//! print(w[:2].sum() / pos, neg / (pos + neg))
//! print(np.sqrt(((B - Xk @ Xk.T) ** 2).sum() / (B ** 2).sum()))
//! ```
use approx::assert_abs_diff_eq;
use landscape_mds::{dissimilarity_matrix, ClassicalMds, Dissimilarity, EigenSolver};
use ndarray::{array, Array2};

fn data() -> Array2<f32> {
    array![
        [0.5, -1.25, 2.0, 0.75, 1.5],
        [1.0, 0.25, -0.5, 2.0, 0.0],
        [-1.5, 0.75, 1.0, 0.5, -0.25],
        [2.0, 1.5, 0.25, -1.0, 0.5],
        [0.0, -0.5, -1.75, 1.25, 1.0],
        [1.25, 2.0, 0.5, 0.25, -1.5],
        [-0.75, -1.0, 0.75, -2.0, 0.25]
    ]
}

const EIGENVALUES: [f64; 7] = [
    2.2922604564549345,
    1.4279640122729909,
    0.920976289699697,
    0.3308716100299125,
    -5.551115123125783e-16,
    -0.32696477483668596,
    -0.5973176015721798,
];

const COORDINATES: [[f64; 2]; 7] = [
    [0.25001875059410195, -0.4141064847868324],
    [-0.85884217273993, -0.1015660948948245],
    [0.31962698344223256, 0.04030219425591608],
    [-0.038831665077383025, 0.4901070636969979],
    [-0.4503825803959909, -0.675714043423594],
    [-0.2751235790898768, 0.7362595243385099],
    [1.0535342632668463, -0.07528215918617602],
];

#[test]
fn cosine_dissimilarities_match_numpy() {
    let d = dissimilarity_matrix(&data(), Dissimilarity::Cosine).unwrap();
    assert_abs_diff_eq!(d[[0, 1]], 0.898435092083761, epsilon = 1e-14);
    assert_abs_diff_eq!(d[[2, 6]], 0.9876288396829133, epsilon = 1e-14);
    assert_eq!(d[[3, 3]], 0.0);
}

#[test]
fn classical_mds_matches_scipy() {
    let d = dissimilarity_matrix(&data(), Dissimilarity::Cosine).unwrap();
    let e = ClassicalMds::params(2)
        .solver(EigenSolver::Full)
        .fit(&d)
        .unwrap();
    assert_eq!(e.eigenvalues().len(), 7);
    for (got, want) in e.eigenvalues().iter().zip(EIGENVALUES) {
        assert_abs_diff_eq!(*got, want, epsilon = 1e-12);
    }
    for (i, row) in COORDINATES.iter().enumerate() {
        for (j, want) in row.iter().enumerate() {
            assert_abs_diff_eq!(e.coordinates()[[i, j]], *want, epsilon = 1e-12);
        }
    }
    assert_abs_diff_eq!(
        e.explained_ratio().unwrap(),
        0.7482241192482953,
        epsilon = 1e-12
    );
    assert_abs_diff_eq!(
        e.negative_mass().unwrap(),
        0.1567548793114225,
        epsilon = 1e-12
    );
    assert_abs_diff_eq!(e.strain(), 0.40385162576105954, epsilon = 1e-12);
}

#[test]
fn partial_solver_matches_scipy_top_pair() {
    let d = dissimilarity_matrix(&data(), Dissimilarity::Cosine).unwrap();
    let e = ClassicalMds::params(2)
        .solver(EigenSolver::Partial)
        .fit(&d)
        .unwrap();
    assert_eq!(e.solver(), EigenSolver::Partial);
    assert_eq!(e.eigenvalues().len(), 2);
    assert_abs_diff_eq!(e.eigenvalues()[0], EIGENVALUES[0], epsilon = 1e-12);
    assert_abs_diff_eq!(e.eigenvalues()[1], EIGENVALUES[1], epsilon = 1e-12);
    for (i, row) in COORDINATES.iter().enumerate() {
        for (j, want) in row.iter().enumerate() {
            assert_abs_diff_eq!(e.coordinates()[[i, j]], *want, epsilon = 1e-9);
        }
    }
    assert_abs_diff_eq!(e.strain(), 0.40385162576105954, epsilon = 1e-10);
    assert!(e.explained_ratio().is_none() && e.negative_mass().is_none());
}
