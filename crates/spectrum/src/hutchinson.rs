//! Hutchinson's stochastic estimator of the trace (and the diagonal).
use ndarray::{Array1, ArrayView1, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpectrumError};
use crate::lanczos::operator_dim;
use crate::operator::{apply_counted, Operator};
use crate::probe::{random_vector, ProbeDistribution};

/// Parameters of Hutchinson's trace estimator; validated by
/// [`HutchinsonParams::run`].
///
/// ```
/// use landscape_spectrum::{DiagonalOperator, HutchinsonParams};
/// use ndarray::array;
///
/// let op = DiagonalOperator::new(array![1.0, 2.0, 3.0])?;
/// let trace = HutchinsonParams::default().probes(10).run(&op)?;
/// // Rademacher probes are exact on a diagonal matrix.
/// assert!((trace.estimate() - 6.0).abs() < 1e-12);
/// # Ok::<(), landscape_spectrum::SpectrumError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HutchinsonParams {
    probes: usize,
    seed: u64,
    distribution: ProbeDistribution,
    diagonal: bool,
}

impl Default for HutchinsonParams {
    fn default() -> Self {
        Self {
            probes: 100,
            seed: 0,
            distribution: ProbeDistribution::Rademacher,
            diagonal: false,
        }
    }
}

impl HutchinsonParams {
    /// The defaults: 100 Rademacher probes, seed 0, no diagonal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of probe vectors (one operator application each; default 100, at least 2).
    pub fn probes(mut self, probes: usize) -> Self {
        self.probes = probes;
        self
    }

    /// Seed of the probes (ChaCha8; default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Distribution of the probe entries (default [`ProbeDistribution::Rademacher`]).
    pub fn distribution(mut self, distribution: ProbeDistribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// Also estimate the diagonal (Bekas, Kokiopoulou & Saad 2007:
    /// `Σ z ∘ A z / Σ z ∘ z`, entrywise; default `false`).
    pub fn diagonal(mut self, diagonal: bool) -> Self {
        self.diagonal = diagonal;
        self
    }

    /// The number of probes.
    pub fn get_probes(&self) -> usize {
        self.probes
    }

    /// Estimates `tr(A)` as the mean of `zᵀ A z` over the probes `z`.
    pub fn run<O: Operator + ?Sized>(&self, op: &O) -> Result<TraceEstimate> {
        if self.probes < 2 {
            return Err(SpectrumError::invalid(
                "probes",
                self.probes,
                "at least 2 (the standard error needs two samples)",
            ));
        }
        let n = operator_dim(op)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut az = Array1::<f64>::zeros(n);
        let mut applications = 0;
        let mut samples = Vec::with_capacity(self.probes);
        let mut sums = self
            .diagonal
            .then(|| (Array1::<f64>::zeros(n), Array1::<f64>::zeros(n)));
        for _ in 0..self.probes {
            let z = random_vector(&mut rng, n, self.distribution);
            apply_counted(op, z.view(), az.view_mut(), &mut applications)?;
            samples.push(z.dot(&az));
            if let Some((zaz, zz)) = &mut sums {
                Zip::from(zaz)
                    .and(zz)
                    .and(&z)
                    .and(&az)
                    .for_each(|s, t, &z, &a| {
                        *s += z * a;
                        *t += z * z;
                    });
            }
        }
        let samples = Array1::from(samples);
        let count = self.probes as f64;
        let estimate = samples.sum() / count;
        let variance = samples.iter().map(|s| (s - estimate).powi(2)).sum::<f64>() / (count - 1.0);
        let diagonal = sums.map(|(zaz, zz)| {
            Zip::from(&zaz)
                .and(&zz)
                .map_collect(|&s, &t| if t > 0.0 { s / t } else { 0.0 })
        });
        Ok(TraceEstimate {
            estimate,
            standard_error: (variance / count).sqrt(),
            samples,
            diagonal,
            applications,
        })
    }
}

/// The result of [`HutchinsonParams::run`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEstimate {
    estimate: f64,
    standard_error: f64,
    samples: Array1<f64>,
    diagonal: Option<Array1<f64>>,
    applications: usize,
}

impl TraceEstimate {
    /// The estimate of `tr(A)`: the mean of the samples.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// Its standard error: the samples' standard deviation (with `probes - 1`
    /// degrees of freedom) over `√probes`.
    pub fn standard_error(&self) -> f64 {
        self.standard_error
    }

    /// The per-probe values `zᵀ A z`.
    pub fn samples(&self) -> ArrayView1<'_, f64> {
        self.samples.view()
    }

    /// The estimate of the diagonal, when asked for ([`HutchinsonParams::diagonal`]).
    pub fn diagonal(&self) -> Option<ArrayView1<'_, f64>> {
        self.diagonal.as_ref().map(|d| d.view())
    }

    /// Operator applications used (one per probe).
    pub fn applications(&self) -> usize {
        self.applications
    }
}
