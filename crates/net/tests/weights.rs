//! Polynomial activations and weight-space operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::excessive_precision)]
use landscape_net::tch::{Device, Kind, Reduction, Tensor};
use landscape_net::{
    average, evaluate, interpolate, perturb, reestimate_bn, Activation, Data, Dcnn, NamedTensor,
    NetConfig, NetError, PerturbScale,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn named<'a>(tensors: &'a [NamedTensor], name: &str) -> &'a NamedTensor {
    tensors.iter().find(|t| t.name == name).unwrap()
}

fn random_data(n: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.5f32..1.5))
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Data::new(&images, &labels, Device::Cpu).unwrap()
}

fn bits(t: &[NamedTensor]) -> Vec<Vec<u32>> {
    t.iter()
        .map(|x| x.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn polynomial_fit_error_falls_with_degree() {
    let mut last = f64::INFINITY;
    for degree in [2, 4, 8, 16, 24] {
        let fit = Activation::fit_relu(degree, 2.0).unwrap();
        assert_eq!(fit.degree, degree);
        let Activation::Poly {
            coefficients,
            radius,
        } = &fit.activation
        else {
            panic!("not a polynomial")
        };
        assert_eq!(coefficients.len(), degree + 1);
        assert_eq!(*radius, 2.0);
        assert!(
            fit.sup_error < last,
            "degree {degree}: sup error {} does not improve on {last}",
            fit.sup_error
        );
        // The sup error is attained somewhere: check it bounds a few points and is not wildly pessimistic.
        for x in [-2.0, -1.0, -0.3, 0.0, 0.2, 1.7, 2.0] {
            assert!((fit.activation.eval_f64(x) - f64::max(x, 0.0)).abs() <= fit.sup_error + 1e-12);
        }
        last = fit.sup_error;
    }
    // Best uniform approximation of |x| is ~ 0.28 r / degree; ReLU = (x + |x|) / 2.
    assert!(
        last < 0.05,
        "degree 24 on [-2, 2] should be within 0.05 of ReLU, got {last}"
    );
    assert!(Activation::fit_relu(0, 1.0).is_err());
    assert!(matches!(
        Activation::fit_relu(4, -1.0),
        Err(NetError::Fit { .. })
    ));
}

#[test]
fn polynomial_activation_in_graph_matches_horner_and_differentiates() {
    let fit = Activation::fit_relu(6, 3.0).unwrap();
    let Activation::Poly { coefficients, .. } = fit.activation.clone() else {
        panic!()
    };
    let xs: Vec<f64> = (0..41).map(|i| -3.0 + 0.15 * i as f64).collect();
    let x = Tensor::from_slice(&xs.iter().map(|&v| v as f32).collect::<Vec<_>>())
        .set_requires_grad(true);
    let y = fit.activation.apply(&x).unwrap();
    y.sum(Kind::Float).backward();
    let got: Vec<f32> = Vec::try_from(&y.detach()).unwrap();
    let grad: Vec<f32> = Vec::try_from(&x.grad()).unwrap();
    for (i, &v) in xs.iter().enumerate() {
        let want = fit.activation.eval_f64(v);
        let dwant: f64 = coefficients
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, c)| k as f64 * c * v.powi(k as i32 - 1))
            .sum();
        assert!((f64::from(got[i]) - want).abs() < 1e-5);
        assert!((f64::from(grad[i]) - dwant).abs() < 1e-4);
    }
}

#[test]
fn perturbation_statistics_match_alpha() {
    let cfg = NetConfig::paper();
    let base = Dcnn::new(&cfg, Device::Cpu, 3).unwrap();
    let before = base.export().unwrap();
    for (scale, alpha) in [(PerturbScale::Std, 0.1), (PerturbScale::MeanAbs, 0.5)] {
        let mut net = base.try_clone().unwrap();
        perturb(&mut net, alpha, scale, 99).unwrap();
        let after = net.export().unwrap();
        for name in ["layer3.weight", "layer4.weight", "layer5.weight"] {
            let (w, p) = (named(&before, name), named(&after, name));
            let n = w.data.len() as f64;
            let mean = w.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let s = match scale {
                PerturbScale::Std => (w
                    .data
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0))
                    .sqrt(),
                PerturbScale::MeanAbs => {
                    w.data.iter().map(|&v| f64::from(v).abs()).sum::<f64>() / n
                }
            };
            let d: Vec<f64> = w
                .data
                .iter()
                .zip(&p.data)
                .map(|(a, b)| f64::from(*b) - f64::from(*a))
                .collect();
            let dmean = d.iter().sum::<f64>() / n;
            let dstd = (d.iter().map(|v| (v - dmean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert!(
                (dstd / (alpha * s) - 1.0).abs() < 0.03,
                "{name} {scale:?}: noise std {dstd} vs alpha*s {}",
                alpha * s
            );
            assert!(
                dmean.abs() < 4.0 * alpha * s / n.sqrt(),
                "{name}: noise mean {dmean}"
            );
        }
        // Biases are perturbed too, BN statistics are not.
        assert_ne!(named(&before, "layer6.bias"), named(&after, "layer6.bias"));
        for t in before.iter().filter(|t| t.name.contains(".bn.")) {
            assert_eq!(t, named(&after, &t.name));
        }
    }
    // Seeded.
    let mut a = base.try_clone().unwrap();
    let mut b = base.try_clone().unwrap();
    perturb(&mut a, 0.2, PerturbScale::Std, 7).unwrap();
    perturb(&mut b, 0.2, PerturbScale::Std, 7).unwrap();
    assert_eq!(bits(&a.export().unwrap()), bits(&b.export().unwrap()));
    assert!(perturb(&mut a, f64::NAN, PerturbScale::Std, 7).is_err());
}

#[test]
fn interpolation_endpoints_are_exact_and_midpoint_is_the_average() {
    let cfg = NetConfig {
        widths: vec![8, 8, 8, 8],
        ..NetConfig::paper()
    };
    let a = Dcnn::new(&cfg, Device::Cpu, 1).unwrap();
    let b = Dcnn::new(&cfg, Device::Cpu, 2).unwrap();
    let xs = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let _ = b.forward_t(&xs, true); // non-trivial BN statistics in b
    let (ea, eb) = (a.export().unwrap(), b.export().unwrap());
    assert_eq!(
        bits(&interpolate(&a, &b, 0.0).unwrap().export().unwrap()),
        bits(&ea)
    );
    assert_eq!(
        bits(&interpolate(&a, &b, 1.0).unwrap().export().unwrap()),
        bits(&eb)
    );
    let mid = interpolate(&a, &b, 0.25).unwrap().export().unwrap();
    for ((x, y), m) in ea.iter().zip(&eb).zip(&mid) {
        for ((p, q), r) in x.data.iter().zip(&y.data).zip(&m.data) {
            assert!((0.75 * p + 0.25 * q - r).abs() < 1e-6, "{}", x.name);
        }
    }
    let half = interpolate(&a, &b, 0.5).unwrap().export().unwrap();
    let avg = average(&[&a, &b]).unwrap().export().unwrap();
    assert_eq!(bits(&half), bits(&avg));
    assert_eq!(bits(&average(&[&a]).unwrap().export().unwrap()), bits(&ea));
    let other = Dcnn::new(
        &NetConfig {
            widths: vec![8, 8, 8, 9],
            ..NetConfig::paper()
        },
        Device::Cpu,
        1,
    )
    .unwrap();
    assert!(matches!(
        interpolate(&a, &other, 0.5),
        Err(NetError::Incompatible { index: 1, .. })
    ));
    assert!(average(&[]).is_err());
}

#[test]
fn bn_reestimation_gives_the_exact_whole_set_statistics() {
    let cfg = NetConfig {
        widths: vec![6, 6, 6, 6],
        ..NetConfig::paper()
    };
    let data = random_data(50, 4);
    let mut a = Dcnn::new(&cfg, Device::Cpu, 8).unwrap();
    reestimate_bn(&mut a, &data, 7).unwrap();
    let mut b = Dcnn::new(&cfg, Device::Cpu, 8).unwrap();
    reestimate_bn(&mut b, &data, 1000).unwrap();
    let (ea, eb) = (a.export().unwrap(), b.export().unwrap());
    for (x, y) in ea.iter().zip(&eb) {
        for (p, q) in x.data.iter().zip(&y.data) {
            assert!(
                (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                "{}: chunked {p} vs whole {q}",
                x.name
            );
        }
    }
    // Layer 2: direct statistics of the first convolution over the whole set.
    let w = named(&ea, "layer2.weight");
    let bias = named(&ea, "layer2.bias");
    let wt = Tensor::from_slice(&w.data).view([6, 3, 3, 3]);
    let bt = Tensor::from_slice(&bias.data);
    let z = data
        .images()
        .conv2d(&wt, Some(&bt), [2, 2], [1, 1], [1, 1], 1);
    let mean: Vec<f32> =
        Vec::try_from(&z.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float)).unwrap();
    let var: Vec<f32> = Vec::try_from(&z.var_dim([0i64, 2, 3].as_slice(), true, false)).unwrap();
    for c in 0..6 {
        assert!((named(&ea, "layer2.bn.running_mean").data[c] - mean[c]).abs() < 1e-5);
        assert!((named(&ea, "layer2.bn.running_var").data[c] / var[c] - 1.0).abs() < 1e-4);
    }
}

#[test]
fn evaluation_reports_loss_error_and_per_example_correctness() {
    let cfg = NetConfig {
        widths: vec![6, 6, 6, 6],
        ..NetConfig::paper()
    };
    let data = random_data(37, 5);
    let net = Dcnn::new(&cfg, Device::Cpu, 9).unwrap();
    let ev = evaluate(&net, &data, 10).unwrap();
    assert_eq!(ev.correct.len(), 37);
    let wrong = ev.correct.iter().filter(|c| !**c).count();
    assert!((ev.error_percent - 100.0 * wrong as f64 / 37.0).abs() < 1e-12);
    let logits = landscape_net::tch::no_grad(|| net.forward_t(&data.images(), false));
    let loss = logits
        .cross_entropy_loss::<Tensor>(&data.labels(), None, Reduction::Mean, -100, 0.0)
        .double_value(&[]);
    assert!((ev.loss - loss).abs() < 1e-5);
    let pred: Vec<i64> = Vec::try_from(&logits.argmax(1, false)).unwrap();
    let labels: Vec<i64> = Vec::try_from(&data.labels()).unwrap();
    for i in 0..37 {
        assert_eq!(ev.correct[i], pred[i] == labels[i]);
    }
    // Evaluation changes nothing.
    assert_eq!(evaluate(&net, &data, 37).unwrap().correct, ev.correct);
    assert!(Data::new(&[0.0; 10], &[1], Device::Cpu).is_err());
}
