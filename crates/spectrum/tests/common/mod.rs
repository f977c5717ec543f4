//! Shared builders of test matrices with exactly known spectra.
#![allow(dead_code, clippy::unwrap_used)]
use ndarray::{Array1, Array2};
use ndarray_linalg::{Eigh, QR, UPLO};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub fn gaussian_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(&mut rng))
}

pub fn gaussian_vector(n: usize, seed: u64) -> Array1<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array1::from_shape_fn(n, |_| StandardNormal.sample(&mut rng))
}

/// A GOE-like random symmetric matrix `(G + Gᵀ) / 2`, plus `shift · I`.
pub fn random_symmetric(n: usize, seed: u64, shift: f64) -> Array2<f64> {
    let g = gaussian_matrix(n, n, seed);
    let mut a = (&g + &g.t()) * 0.5;
    a.diag_mut().mapv_inplace(|d| d + shift);
    a
}

/// A random orthogonal matrix (Q of the QR of a Gaussian matrix).
pub fn random_orthogonal(n: usize, seed: u64) -> Array2<f64> {
    let (q, _) = gaussian_matrix(n, n, seed).qr().unwrap();
    q
}

/// `Q diag(λ) Qᵀ` for a random orthogonal `Q`, exactly symmetrised.
pub fn with_spectrum(lambda: &Array1<f64>, seed: u64) -> Array2<f64> {
    let q = random_orthogonal(lambda.len(), seed);
    let a = (&q * lambda).dot(&q.t());
    (&a + &a.t()) * 0.5
}

/// Eigenvalues ascending and eigenvectors (columns), by LAPACK.
pub fn eigh(a: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    a.eigh(UPLO::Lower).unwrap()
}

/// The spectrum used for the "known spectrum" tests (n = 150): a cluster
/// at the top (10, 9.99, 9.98), an isolated 9.0 and 8.5, a negative
/// cluster (-3, -2.995), the rest spread over [-1, 5].
pub fn clustered_spectrum() -> Array1<f64> {
    let mut lambda: Vec<f64> = vec![10.0, 9.99, 9.98, 9.0, 8.5, -3.0, -2.995];
    let rest = 150 - lambda.len();
    lambda.extend((0..rest).map(|i| -1.0 + 6.0 * i as f64 / (rest - 1) as f64));
    Array1::from(lambda)
}
