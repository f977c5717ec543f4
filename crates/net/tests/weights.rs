//! Polynomial activations and weight-space operations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::excessive_precision,
    clippy::disallowed_methods
)] // host tensors on purpose (CPU tests)
use landscape_net::tch::{Device, Kind, Reduction, Tensor};
use landscape_net::{
    average, evaluate, evaluate_batch_stats, interpolate, perturb, perturb_with, reestimate_bn,
    Activation, Data, Dcnn, NamedTensor, NetConfig, NetError, PerturbScale, PerturbSpec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn named<'a>(tensors: &'a [NamedTensor], name: &str) -> &'a NamedTensor {
    tensors.iter().find(|t| t.name == name).unwrap()
}

fn random_data(n: usize, seed: u64) -> Data {
    random_data_on(n, seed, Device::Cpu)
}

fn random_data_on(n: usize, seed: u64, device: Device) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.5f32..1.5))
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Data::new(&images, &labels, device).unwrap()
}

/// A CPU copy of `t` (the identity on the CPU).
fn cpu(t: &Tensor) -> Tensor {
    t.to_device(Device::Cpu)
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

/// On every device (the CPU, plus CUDA when available); CUDA's statistics
/// also equal the CPU's within 1e-4.
#[test]
fn bn_reestimation_gives_the_exact_whole_set_statistics() {
    let mut on_cpu = Vec::new();
    for device in landscape_net::testing::devices().unwrap() {
        let stats = bn_reestimation_on(device);
        if device == Device::Cpu {
            on_cpu = stats;
        } else {
            landscape_net::testing::assert_close("BN statistics", device, &on_cpu, &stats, 1e-4)
                .unwrap();
        }
    }
}

/// The checks on `device`; returns every exported value (f64).
fn bn_reestimation_on(device: Device) -> Vec<f64> {
    let cfg = NetConfig {
        widths: vec![6, 6, 6, 6],
        ..NetConfig::paper()
    };
    let data = random_data_on(50, 4, device);
    let mut a = Dcnn::new(&cfg, device, 8).unwrap();
    reestimate_bn(&mut a, &data, 7).unwrap();
    let mut b = Dcnn::new(&cfg, device, 8).unwrap();
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
    let z = cpu(&data.images()).conv2d(&wt, Some(&bt), [2, 2], [1, 1], [1, 1], 1);
    let mean: Vec<f32> =
        Vec::try_from(&z.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float)).unwrap();
    let var: Vec<f32> = Vec::try_from(&z.var_dim([0i64, 2, 3].as_slice(), true, false)).unwrap();
    for c in 0..6 {
        assert!((named(&ea, "layer2.bn.running_mean").data[c] - mean[c]).abs() < 1e-5);
        assert!((named(&ea, "layer2.bn.running_var").data[c] / var[c] - 1.0).abs() < 1e-4);
    }
    ea.iter()
        .flat_map(|t| t.data.iter().map(|&x| f64::from(x)))
        .collect()
}

/// On every device (the CPU, plus CUDA when available); CUDA's loss also
/// equals the CPU's within 1e-5 and its per-example correctness is the same.
#[test]
fn evaluation_reports_loss_error_and_per_example_correctness() {
    let mut on_cpu = None;
    for device in landscape_net::testing::devices().unwrap() {
        let ev = evaluation_on(device);
        match &on_cpu {
            None => on_cpu = Some(ev),
            Some(c) => {
                landscape_net::testing::assert_close("loss", device, &[c.0], &[ev.0], 1e-5)
                    .unwrap();
                assert_eq!(c.1, ev.1, "per-example correctness on {device:?}");
            }
        }
    }
}

/// The checks on `device`; returns the loss and the per-example correctness.
fn evaluation_on(device: Device) -> (f64, Vec<bool>) {
    let cfg = NetConfig {
        widths: vec![6, 6, 6, 6],
        ..NetConfig::paper()
    };
    let data = random_data_on(37, 5, device);
    let net = Dcnn::new(&cfg, device, 9).unwrap();
    let ev = evaluate(&net, &data, 10).unwrap();
    assert_eq!(ev.correct.len(), 37);
    let wrong = ev.correct.iter().filter(|c| !**c).count();
    assert!((ev.error_percent - 100.0 * wrong as f64 / 37.0).abs() < 1e-12);
    let logits = landscape_net::tch::no_grad(|| net.forward_t(&data.images(), false));
    let loss = logits
        .cross_entropy_loss::<Tensor>(&data.labels(), None, Reduction::Mean, -100, 0.0)
        .double_value(&[]);
    assert!((ev.loss - loss).abs() < 1e-5);
    let pred: Vec<i64> = Vec::try_from(&cpu(&logits.argmax(1, false))).unwrap();
    let labels: Vec<i64> = Vec::try_from(&cpu(&data.labels())).unwrap();
    for i in 0..37 {
        assert_eq!(ev.correct[i], pred[i] == labels[i]);
    }
    // Evaluation changes nothing.
    assert_eq!(evaluate(&net, &data, 37).unwrap().correct, ev.correct);
    assert!(Data::new(&[0.0; 10], &[1], device).is_err());
    (ev.loss, ev.correct)
}

/// Unbiased standard deviation, computed here independently of the crate.
fn std_of(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    (values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0))
        .sqrt()
}

/// The perturbation written out: one ChaCha8 stream, element by element,
/// over the parameters (weights, and biases if asked) in export order.
fn reference_perturbation(
    before: &[NamedTensor],
    alpha: f64,
    biases: bool,
    seed: u64,
) -> Vec<NamedTensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    before
        .iter()
        .map(|t| {
            let perturbed = t.name.ends_with(".weight") || (biases && t.name.ends_with(".bias"));
            if !perturbed {
                return t.clone();
            }
            let sigma = alpha * std_of(&t.data);
            let data = t
                .data
                .iter()
                .map(|&v| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    (f64::from(v) + sigma * z) as f32
                })
                .collect();
            NamedTensor { data, ..t.clone() }
        })
        .collect()
}

#[test]
fn perturb_with_can_leave_biases_alone_and_reports_sigma() {
    let base = Dcnn::new(&NetConfig::paper(), Device::Cpu, 5).unwrap();
    let before = base.export().unwrap();
    let alpha = 0.7;
    let spec = PerturbSpec {
        alpha,
        scale: PerturbScale::Std,
        biases: false,
    };
    let mut net = base.try_clone().unwrap();
    let report = perturb_with(&mut net, &spec, 21).unwrap();
    let after = net.export().unwrap();

    // Biases and BN statistics are bit-identical; the weights changed (all
    // but the rare element whose noise is below half an f32 ulp).
    for (b, a) in before.iter().zip(&after) {
        if b.name.ends_with(".weight") {
            let changed = b.data.iter().zip(&a.data).filter(|(x, y)| x != y).count();
            assert!(changed as f64 >= 0.999 * b.data.len() as f64, "{}", b.name);
        } else {
            assert_eq!(bits(std::slice::from_ref(b)), bits(std::slice::from_ref(a)));
        }
    }
    // Random numbers are drawn for the weights only, in export order.
    assert_eq!(
        bits(&after),
        bits(&reference_perturbation(&before, alpha, false, 21))
    );

    // The report: each weight tensor's sigma = alpha * std(W).
    let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layer2.weight",
            "layer3.weight",
            "layer4.weight",
            "layer5.weight",
            "layer6.weight"
        ]
    );
    for t in &report.tensors {
        let s = std_of(&named(&before, &t.name).data);
        assert!(
            (t.scale / s - 1.0).abs() < 1e-12,
            "{}: {} vs {s}",
            t.name,
            t.scale
        );
        assert!(
            (t.sigma / (alpha * s) - 1.0).abs() < 1e-12,
            "{}: sigma {} vs alpha * std(W) = {}",
            t.name,
            t.sigma,
            alpha * s
        );
    }

    // The noise, standardised by the reported sigma, has mean 0 and std 1
    // within sampling error (std of a sample std ~ 1 / sqrt(2n)).
    for t in &report.tensors {
        let (w, p) = (named(&before, &t.name), named(&after, &t.name));
        if w.data.len() < 10_000 {
            continue;
        }
        let z: Vec<f64> = w
            .data
            .iter()
            .zip(&p.data)
            .map(|(a, b)| (f64::from(*b) - f64::from(*a)) / t.sigma)
            .collect();
        let n = z.len() as f64;
        let mean = z.iter().sum::<f64>() / n;
        let sd = (z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            (sd - 1.0).abs() < 5.0 / (2.0 * n).sqrt(),
            "{}: standardised noise std {sd} over {n} values",
            t.name
        );
        assert!(mean.abs() < 5.0 / n.sqrt(), "{}: mean {mean}", t.name);
    }
    assert!(
        report
            .tensors
            .iter()
            .filter(|t| { named(&before, &t.name).data.len() >= 10_000 })
            .count()
            >= 3
    );
}

#[test]
fn perturb_is_perturb_with_biases_and_keeps_its_random_stream() {
    let base = Dcnn::new(
        &NetConfig {
            widths: vec![8, 12, 16, 8],
            ..NetConfig::paper()
        },
        Device::Cpu,
        2,
    )
    .unwrap();
    let before = base.export().unwrap();
    let mut a = base.try_clone().unwrap();
    perturb(&mut a, 0.3, PerturbScale::Std, 4).unwrap();
    // The same numbers as the reference, weights and biases alike.
    assert_eq!(
        bits(&a.export().unwrap()),
        bits(&reference_perturbation(&before, 0.3, true, 4))
    );
    let mut b = base.try_clone().unwrap();
    let spec = PerturbSpec {
        alpha: 0.3,
        scale: PerturbScale::Std,
        biases: true,
    };
    let report = perturb_with(&mut b, &spec, 4).unwrap();
    assert_eq!(bits(&a.export().unwrap()), bits(&b.export().unwrap()));
    assert_eq!(report.tensors.len(), 10);
    assert_eq!(report.tensors[1].name, "layer2.bias");
    // MeanAbs is reported as such.
    let mut c = base.try_clone().unwrap();
    let spec = PerturbSpec {
        alpha: 2.0,
        scale: PerturbScale::MeanAbs,
        biases: false,
    };
    let report = perturb_with(&mut c, &spec, 4).unwrap();
    let w = named(&before, "layer4.weight");
    let mean_abs = w.data.iter().map(|&v| f64::from(v).abs()).sum::<f64>() / w.data.len() as f64;
    let t = report
        .tensors
        .iter()
        .find(|t| t.name == "layer4.weight")
        .unwrap();
    assert!((t.sigma - 2.0 * mean_abs).abs() < 1e-12 * mean_abs);

    // Alpha 0 (the default spec) changes nothing; a bad alpha is refused.
    let mut d = base.try_clone().unwrap();
    let report = perturb_with(&mut d, &PerturbSpec::default(), 4).unwrap();
    assert!(report.tensors.iter().all(|t| t.sigma == 0.0));
    assert_eq!(bits(&d.export().unwrap()), bits(&before));
    let bad = PerturbSpec {
        alpha: -1.0,
        ..PerturbSpec::default()
    };
    assert!(matches!(
        perturb_with(&mut d, &bad, 4),
        Err(NetError::Config { field, .. }) if field == "alpha"
    ));

    // Serde: missing fields take the defaults, unknown ones are refused.
    let spec: PerturbSpec = serde_json::from_str(r#"{"alpha": 0.25}"#).unwrap();
    assert_eq!(
        spec,
        PerturbSpec {
            alpha: 0.25,
            scale: PerturbScale::Std,
            biases: false
        }
    );
    let spec: PerturbSpec =
        serde_json::from_str(r#"{"alpha": 1.0, "scale": "mean_abs", "biases": true}"#).unwrap();
    assert_eq!((spec.scale, spec.biases), (PerturbScale::MeanAbs, true));
    assert!(serde_json::from_str::<PerturbSpec>(r#"{"alpha": 1.0, "bias": true}"#).is_err());
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"sigma\""), "{json}");
}

#[test]
fn batch_stats_evaluation_normalises_each_chunk_and_keeps_running_stats() {
    let cfg = NetConfig {
        widths: vec![8, 8, 8, 8],
        ..NetConfig::paper()
    };
    let data = random_data(60, 6);
    let net = Dcnn::new(&cfg, Device::Cpu, 3).unwrap();
    let before = net.export().unwrap();
    let images = data.images();
    let labels = data.labels();

    // What a train-mode forward pass (on a copy: it moves the copy's running
    // statistics) gives for examples start..start+len as one batch.
    let manual = |start: i64, len: i64| -> (f64, Vec<bool>) {
        let copy = net.try_clone().unwrap();
        let xs = images.narrow(0, start, len);
        let ys = labels.narrow(0, start, len);
        let logits = landscape_net::tch::no_grad(|| copy.forward_t(&xs, true));
        let loss = logits
            .cross_entropy_loss::<Tensor>(&ys, None, Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        let pred: Vec<i64> = Vec::try_from(&logits.argmax(1, false)).unwrap();
        let ys: Vec<i64> = Vec::try_from(&ys).unwrap();
        (loss, pred.iter().zip(&ys).map(|(p, y)| p == y).collect())
    };

    // One chunk holding the whole set.
    let whole = evaluate_batch_stats(&net, &data, 1000).unwrap();
    assert_eq!(
        bits(&net.export().unwrap()),
        bits(&before),
        "running stats moved"
    );
    let (loss, correct) = manual(0, 60);
    assert!(
        (whole.loss - loss / 60.0).abs() < 1e-5,
        "{} vs {}",
        whole.loss,
        loss / 60.0
    );
    assert_eq!(whole.correct, correct);
    let wrong = correct.iter().filter(|c| !**c).count();
    assert!((whole.error_percent - 100.0 * wrong as f64 / 60.0).abs() < 1e-12);

    // Chunks of 25, 25, 10: each normalised with its own statistics.
    let chunked = evaluate_batch_stats(&net, &data, 25).unwrap();
    assert_eq!(
        bits(&net.export().unwrap()),
        bits(&before),
        "running stats moved"
    );
    let parts = [manual(0, 25), manual(25, 25), manual(50, 10)];
    let loss = parts.iter().map(|p| p.0).sum::<f64>() / 60.0;
    assert!(
        (chunked.loss - loss).abs() < 1e-5,
        "{} vs {loss}",
        chunked.loss
    );
    let correct: Vec<bool> = parts.iter().flat_map(|p| p.1.clone()).collect();
    assert_eq!(chunked.correct, correct);
    assert!(
        (chunked.loss - whole.loss).abs() > 1e-4,
        "chunking should matter: {} vs {}",
        chunked.loss,
        whole.loss
    );

    // A fresh model's running statistics (mean 0, variance 1) are far from
    // its batch statistics: eval mode gives another loss.
    let eval = evaluate(&net, &data, 1000).unwrap();
    assert!(
        (eval.loss - whole.loss).abs() > 1e-2,
        "eval {} vs batch stats {}",
        eval.loss,
        whole.loss
    );
    // After re-estimation on the same set, the running statistics are the
    // whole-set statistics except that the variance is unbiased (m / (m - 1)
    // with m = 60 * 2 * 2 = 240 values per channel at layer 5, more below):
    // eval mode then nearly matches one whole-set batch (here within 6e-6,
    // against 0.026 for the fresh statistics).
    let mut re = net.try_clone().unwrap();
    reestimate_bn(&mut re, &data, 1000).unwrap();
    let eval = evaluate(&re, &data, 1000).unwrap();
    assert!(
        (eval.loss - whole.loss).abs() < 1e-4,
        "eval after re-estimation {} vs batch stats {}",
        eval.loss,
        whole.loss
    );

    assert!(matches!(
        evaluate_batch_stats(&net, &data, 0),
        Err(NetError::Config { .. })
    ));
}

/// The one-pass evaluator is the layer-by-layer re-estimation followed by an
/// evaluation, bit for bit: same statistics, loss, error and per-example
/// verdicts, for chunk sizes that do and do not divide the set, and when its
/// cache is over budget (it then runs the two functions).
#[test]
fn one_pass_reestimate_and_evaluate_is_bit_identical_to_the_two_steps() {
    use landscape_net::{eval_cache_bytes, reestimate_and_evaluate};
    let cfg = NetConfig {
        widths: vec![6, 8, 6, 4],
        ..NetConfig::paper()
    };
    let data = random_data(45, 11);
    for chunk in [7usize, 45, 1000] {
        for budget in [usize::MAX, 0] {
            let mut base = Dcnn::new(&cfg, Device::Cpu, 3).unwrap();
            // Non-trivial statistics to start from (they must be replaced).
            reestimate_bn(&mut base, &random_data(30, 99), 5).unwrap();
            let spec = PerturbSpec {
                alpha: 0.3,
                ..PerturbSpec::default()
            };
            perturb_with(&mut base, &spec, 5).unwrap();
            let mut one = Dcnn::new(&cfg, Device::Cpu, 0).unwrap();
            one.import(&base.export().unwrap()).unwrap();
            let mut two = Dcnn::new(&cfg, Device::Cpu, 0).unwrap();
            two.import(&base.export().unwrap()).unwrap();
            let e1 = reestimate_and_evaluate(&mut one, &data, chunk, budget).unwrap();
            reestimate_bn(&mut two, &data, chunk).unwrap();
            let e2 = evaluate(&two, &data, chunk).unwrap();
            assert_eq!(e1.loss.to_bits(), e2.loss.to_bits(), "chunk {chunk}");
            assert_eq!(e1.error_percent, e2.error_percent);
            assert_eq!(e1.correct, e2.correct);
            assert_eq!(
                bits(&one.export().unwrap()),
                bits(&two.export().unwrap()),
                "chunk {chunk}: BN statistics differ"
            );
            // The statistics were re-estimated, not kept.
            assert_ne!(bits(&one.export().unwrap()), bits(&base.export().unwrap()));
        }
    }
    // 6 x 16 x 16 floats per image is the largest hidden output.
    let m = Dcnn::new(&cfg, Device::Cpu, 0).unwrap();
    assert_eq!(eval_cache_bytes(&m, &data), 45 * 6 * 16 * 16 * 4);
}
