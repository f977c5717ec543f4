//! The exact near-zero eigenvalue counts of a small stored network's loss
//! Hessian (float64 products, every column, LAPACK `eigh`), beside the
//! kernel-polynomial count that `landscape hessian` prints: a check of the
//! degeneracy count on a real snapshot.
//!
//! ```sh
//! cargo run --release -p landscape-experiments --example exact_degeneracy -- runs/fig5-smoke/store 4
//! ```
//!
//! Memory and time grow as parameters^2 and parameters^3: for networks of
//! a few thousand parameters (the smoke scale).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]
use std::path::PathBuf;

use landscape_net::{DeviceChoice, HessianBn, HessianPrecision, LossHessian};
use landscape_probe::snapshot::{load_snapshot, Overrides};
use landscape_spectrum::degeneracy;
use ndarray::Array2;
use ndarray_linalg::{Eigh, UPLO};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let store = PathBuf::from(args.next().expect("usage: exact_degeneracy STORE ID"));
    let id = args
        .next()
        .expect("usage: exact_degeneracy STORE ID")
        .parse()
        .map_err(|e| anyhow::anyhow!("ID: {e:?}"))?;
    let overrides = Overrides {
        train_only: true,
        ..Overrides::default()
    };
    let snap = load_snapshot(&store, id, &overrides, DeviceChoice::Cpu, None, Some(1))?;
    let data = &snap.data.train;
    let h = LossHessian::new(&snap.model, data, data.len(), HessianBn::Fixed)?
        .with_precision(HessianPrecision::F64)?;
    let n = h.dim();
    let t0 = std::time::Instant::now();
    let mut full = Array2::<f64>::zeros((n, n));
    let mut e = vec![0.0; n];
    for i in 0..n {
        e[i] = 1.0;
        for (j, c) in h.hvp(&e)?.into_iter().enumerate() {
            full[[j, i]] = c;
        }
        e[i] = 0.0;
    }
    let sym = (&full + &full.t()) / 2.0;
    let (exact, _) = sym.eigh(UPLO::Upper)?;
    println!(
        "{n} parameters, {} images; eigenvalues {:.6e} .. {:.6e}; {:.0} s",
        data.len(),
        exact[0],
        exact[n - 1],
        t0.elapsed().as_secs_f64()
    );
    for rtol in [1e-4, 1e-3, 3e-3, 1e-2] {
        let d = degeneracy(exact.view(), rtol)?;
        println!(
            "|lambda| <= {rtol:e} x max|lambda| ({:.4e}): {} near zero, {} positive, {} negative",
            d.threshold(),
            d.near_zero(),
            d.positive(),
            d.negative()
        );
    }
    Ok(())
}
