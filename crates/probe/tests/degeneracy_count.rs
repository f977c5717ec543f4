//! The degeneracy count of `landscape hessian` against the exact
//! eigendecomposition of the Hessian of a small network: the fig5 smoke
//! network at half its width (widths 4, 4, 4, 4: 926 parameters, so that
//! the test runs in minutes on a shared CPU) on 100 images, BN fixed.
//! The kernel-polynomial count is within 10% of the exact count at several
//! thresholds and its interval covers it; the SLQ share it replaced (30
//! Lanczos steps, three runs per seed, three seeds) is not; `analyse`
//! reports the count with its interval.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use landscape_net::tch::Device;
use landscape_net::{
    reestimate_bn, Data, Dcnn, HessianBn, HessianPrecision, LossHessian, NetConfig,
};
use landscape_probe::hessian::{self, HessianOperator, SpectrumConfig};
use landscape_spectrum::{degeneracy, DenseOperator, KpmParams, SlqParams};
use ndarray::Array2;
use ndarray_linalg::{Eigh, UPLO};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const IMAGES: usize = 100;

fn smoke() -> (Dcnn, Data) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let images: Vec<f32> = (0..IMAGES * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.7f32..1.7))
        .collect();
    let labels: Vec<u8> = (0..IMAGES).map(|i| (i % 10) as u8).collect();
    let data = Data::new(&images, &labels, Device::Cpu).unwrap();
    let cfg = NetConfig {
        widths: vec![4, 4, 4, 4],
        ..NetConfig::paper()
    };
    let mut model = Dcnn::new(&cfg, Device::Cpu, 0).unwrap();
    reestimate_bn(&mut model, &data, IMAGES).unwrap();
    (model, data)
}

#[test]
fn kpm_count_matches_the_exact_count_of_a_smoke_network_and_slq_does_not() {
    let (model, data) = smoke();
    let h = LossHessian::new(&model, &data, IMAGES, HessianBn::Fixed)
        .unwrap()
        .with_precision(HessianPrecision::F64)
        .unwrap();
    let n = h.dim();
    assert_eq!(n, 926);
    let mut full = Array2::<f64>::zeros((n, n));
    let mut e = vec![0.0; n];
    for i in 0..n {
        e[i] = 1.0;
        let col = h.hvp(&e).unwrap();
        e[i] = 0.0;
        for (j, c) in col.into_iter().enumerate() {
            full[[j, i]] = c;
        }
    }
    let asym = (&full - &full.t())
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    let sym = (&full + &full.t()) / 2.0;
    let (exact, _) = sym.eigh(UPLO::Upper).unwrap();
    let top = exact[n - 1];
    assert!(asym < 1e-10 * top, "float64 Hessian asymmetric by {asym}");

    // The estimator alone, at several thresholds, on the matrix whose
    // eigenvalues are the exact answer (tens of thousands of products: as
    // dense products they take seconds, as Hessian-vector products many
    // minutes; the Hessian-vector path is checked below, through
    // `landscape hessian`'s analysis).
    let dense = DenseOperator::new(sym.clone()).unwrap();
    let rtols = [1e-3, 3e-3, 1e-2];
    let counts = KpmParams::default()
        .probes(10)
        .max_degree(8000)
        .count_near_zero(&dense, &rtols)
        .unwrap();
    for (w, &rtol) in counts.windows().iter().zip(&rtols) {
        let exact_count = degeneracy(exact.view(), rtol).unwrap().near_zero() as f64;
        let (low, high) = w.interval();
        eprintln!(
            "rtol {rtol}: exact {exact_count}, KPM {:.1} (95% interval {low:.1}..{high:.1}; se {:.1}, bias bound {:.1}), degree {}, {} products",
            w.estimate(),
            w.standard_error(),
            w.bias_bound(),
            counts.degree(),
            counts.applications()
        );
        assert!(w.resolved(), "rtol {rtol}");
        assert!(
            (w.estimate() - exact_count).abs() <= 0.1 * exact_count,
            "rtol {rtol}: KPM {} vs exact {exact_count}",
            w.estimate()
        );
        assert!(
            low <= exact_count && exact_count <= high,
            "rtol {rtol}: {low}..{high} misses {exact_count}"
        );
    }

    // The count it replaced at 1e-3 x top: the SLQ weight inside the window
    // times the dimension (3 runs of 30 Lanczos steps per seed, seeds 0-2,
    // as `landscape hessian` did), averaged over the seeds.
    let rtol = 1e-3;
    let exact_count = degeneracy(exact.view(), rtol).unwrap().near_zero() as f64;
    let scale = exact[0].abs().max(top);
    let op = HessianOperator(h);
    let mut slq = Vec::new();
    for seed in 0..3 {
        let d = SlqParams::new()
            .runs(3)
            .steps(30)
            .seed(seed)
            .run(&op)
            .unwrap();
        let (mut inside, mut all) = (0.0, 0.0);
        for q in d.quadratures() {
            for (node, weight) in q.nodes().iter().zip(q.weights()) {
                all += weight;
                if node.abs() <= rtol * scale {
                    inside += weight;
                }
            }
        }
        slq.push(inside / all * n as f64);
    }
    let slq_mean = slq.iter().sum::<f64>() / slq.len() as f64;
    eprintln!("exact {exact_count}; SLQ counts per seed {slq:?}");
    assert!(
        (slq_mean - exact_count).abs() > 0.1 * exact_count,
        "SLQ {slq_mean} vs exact {exact_count}"
    );

    // Wired into `landscape hessian`'s analysis (float64 count by default;
    // small settings elsewhere), at 1e-2 x top.
    let rtol = 1e-2;
    let cfg = SpectrumConfig {
        chunk_size: IMAGES,
        top_k: 1,
        lanczos_steps: 30,
        probes: 4,
        slq_runs: 1,
        slq_steps: 10,
        seeds: vec![0],
        zero_rtol: rtol,
        count_probes: 10,
        count_max_degree: 8000,
        ..SpectrumConfig::default()
    };
    let report = hessian::analyse(&model, &data, &cfg).unwrap();
    let top_est = report.top[0].mean;
    assert!(
        (top_est - top).abs() <= 1e-3 * top,
        "top {top_est} vs {top}"
    );
    // The exact count at the report's own threshold (its top is Lanczos').
    let threshold = rtol * top_est;
    let exact_count = exact.iter().filter(|l| l.abs() <= threshold).count() as f64;
    let c = report.near_zero_count.as_ref().unwrap();
    assert_eq!(c.precision, "f64");
    assert!((c.threshold - threshold).abs() < 1e-15);
    eprintln!(
        "analyse at {rtol} x top: exact {exact_count}, KPM {:.1} ({:.1}..{:.1}), {} products",
        c.estimate, c.low, c.high, c.products
    );
    assert!(c.resolved);
    assert!((c.estimate - exact_count).abs() <= 0.1 * exact_count);
    assert!(c.low <= exact_count && exact_count <= c.high);
    assert!((report.near_zero_share - c.estimate / n as f64).abs() < 1e-12);
}
