//! Timing of `dissimilarity_matrix` (1 - cosine) and `MdsParams::fit_owned`
//! (k = 2, automatic solver) on random f32 data: `bench_mds DIM N...`.
//! Run by `cargo xtask bench mds`, which prints it beside numpy + scipy.
//! Prints one line per n: `rust n=.. d=.. dissimilarity_s=.. mds_s=.. total_s=.. ...`.
use std::time::Instant;

use landscape_mds::{dissimilarity_matrix, gram_matrix, ClassicalMds, Dissimilarity};
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Snapshot-like rows: a shared direction plus independent noise.
fn data(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let common: Vec<f32> = (0..d).map(|_| rng.random::<f32>() - 0.5).collect();
    Array2::from_shape_fn((n, d), |(_, j)| {
        common[j] + 0.5 * (rng.random::<f32>() - 0.5)
    })
}

/// Largest relative error of sampled Gram entries against a compensated
/// (Neumaier) f64 sum, relative to `‖x_i‖ ‖x_j‖`.
fn gram_error(x: &Array2<f32>) -> f64 {
    let n = x.nrows().min(64);
    let g = gram_matrix(&x.slice(s![..n, ..])).unwrap_or_else(|e| panic!("gram: {e}"));
    let mut worst = 0.0_f64;
    for i in 0..n {
        for j in 0..n {
            let (mut sum, mut comp) = (0.0_f64, 0.0_f64);
            for (a, b) in x.row(i).iter().zip(x.row(j).iter()) {
                let p = f64::from(*a) * f64::from(*b);
                let t = sum + p;
                comp += if sum.abs() >= p.abs() {
                    (sum - t) + p
                } else {
                    (p - t) + sum
                };
                sum = t;
            }
            let exact = sum + comp;
            let scale = (g[[i, i]] * g[[j, j]]).sqrt();
            worst = worst.max((g[[i, j]] - exact).abs() / scale);
        }
    }
    worst
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (dim, sizes) = match args.split_first() {
        Some((dim, sizes)) if !sizes.is_empty() => (*dim, sizes.to_vec()),
        _ => (30_000, vec![1_000, 4_000]),
    };
    for n in sizes {
        let x = data(n, dim, 7);
        let t0 = Instant::now();
        let d = dissimilarity_matrix(&x, Dissimilarity::Cosine)
            .unwrap_or_else(|e| panic!("dissimilarity: {e}"));
        let t1 = Instant::now();
        let e = ClassicalMds::params(2)
            .fit_owned(d)
            .unwrap_or_else(|e| panic!("mds: {e}"));
        let t2 = Instant::now();
        println!(
            "rust n={n} d={dim} dissimilarity_s={:.3} mds_s={:.3} total_s={:.3} solver={:?} lambda1={:.10e} lambda2={:.10e} strain={:.6} gram_rel_err={:.2e}",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t2 - t0).as_secs_f64(),
            e.solver(),
            e.eigenvalues()[0],
            e.eigenvalues()[1],
            e.strain(),
            gram_error(&x),
        );
    }
}
