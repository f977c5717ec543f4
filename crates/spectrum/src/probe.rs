//! Random probe vectors.
use ndarray::Array1;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// The distribution of the entries of random probe vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeDistribution {
    /// Independent ±1 with probability ½ each: the lowest-variance choice
    /// for Hutchinson's estimator (variance `2 Σ_{i≠j} a_ij²`), exact on
    /// diagonal matrices.
    #[default]
    Rademacher,
    /// Independent standard normal entries (variance `2 ‖A‖_F²` for
    /// Hutchinson's estimator; normalised, uniform on the sphere).
    Gaussian,
}

/// A vector of `n` independent entries from `distribution`.
pub(crate) fn random_vector(
    rng: &mut ChaCha8Rng,
    n: usize,
    distribution: ProbeDistribution,
) -> Array1<f64> {
    match distribution {
        ProbeDistribution::Rademacher => (0..n)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect(),
        ProbeDistribution::Gaussian => (0..n)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect(),
    }
}
