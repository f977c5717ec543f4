//! Training: BGD memorises a small fixture, runs are repeatable, divergence is caught.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::excessive_precision)]
use landscape_net::tch::Device;
use landscape_net::{
    evaluate, set_threads, train, train_from, Activation, Bgd, BgdConfig, Data, Dcnn, EpochStats,
    NamedTensor, NetConfig, NetError, Phase, Schedule, Sgd, SgdConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small() -> NetConfig {
    NetConfig {
        widths: vec![16, 16, 16, 16],
        ..NetConfig::paper()
    }
}

/// `n` images: a class template (one of 10 random +-1 patterns) plus unit
/// Gaussian-ish noise, with uniformly random labels.
fn pattern_data(n: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 3 * 32 * 32;
    let templates: Vec<Vec<f32>> = (0..10)
        .map(|_| {
            (0..d)
                .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    let mut images = Vec::with_capacity(n * d);
    for &l in &labels {
        for &t in &templates[usize::from(l)] {
            images.push(0.5 * t + rng.random_range(-1.0f32..1.0));
        }
    }
    Data::new(&images, &labels, Device::Cpu).unwrap()
}

fn random_data(n: usize, seed: u64) -> Data {
    random_data_on(n, seed, Device::Cpu)
}

fn random_data_on(n: usize, seed: u64, device: Device) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Data::new(&images, &labels, device).unwrap()
}

fn bits(t: &[NamedTensor]) -> Vec<Vec<u32>> {
    t.iter()
        .map(|x| x.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn bgd_drives_training_error_to_zero() {
    let data = pattern_data(300, 1);
    let mut net = Dcnn::new(&small(), Device::Cpu, 2).unwrap();
    let start = evaluate(&net, &data, 100).unwrap();
    assert!(
        start.error_percent > 50.0,
        "untrained error {}",
        start.error_percent
    );
    let mut bgd = Bgd::new(
        &net,
        BgdConfig {
            lr: 0.5,
            ghost_batch: Some(100),
            momentum: 0.9,
            weight_decay: 0.0,
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    let mut reached = None;
    for epoch in 1..=60 {
        let stats = bgd.epoch(&mut net, &data, epoch).unwrap();
        assert_eq!(
            (stats.epoch, stats.steps, stats.activation_out_of_range),
            (epoch, 1, 0)
        );
        losses.push(stats.mean_loss);
        if epoch % 5 == 0 && evaluate(&net, &data, 100).unwrap().error_percent == 0.0 {
            reached = Some(epoch);
            break;
        }
    }
    let reached = reached.unwrap_or_else(|| {
        panic!("BGD did not reach 0% training error in 60 steps; losses {losses:?}")
    });
    assert!(
        losses.last().unwrap() < &losses[0],
        "loss did not fall: {losses:?}"
    );
    eprintln!("BGD reached 0% training error after {reached} steps");
}

/// On every device (the CPU, plus CUDA when available); CUDA's step also
/// equals the CPU's within 1e-4.
#[test]
fn bgd_gradient_is_the_mean_over_all_examples() {
    let mut on_cpu = Vec::new();
    for device in landscape_net::testing::devices().unwrap() {
        let after = bgd_step_on(device);
        if device == Device::Cpu {
            on_cpu = after;
        } else {
            landscape_net::testing::assert_close("BGD step", device, &on_cpu, &after, 1e-4)
                .unwrap();
        }
    }
}

/// The check on `device`; returns the mean loss and the weights after the step.
fn bgd_step_on(device: Device) -> Vec<f64> {
    // With chunks at least as large as the set, BGD's single step equals one
    // SGD step with the whole set as the batch.
    let data = random_data_on(40, 3, device);
    let mut a = Dcnn::new(&small(), device, 4).unwrap();
    let mut b = a.try_clone().unwrap();
    let mut bgd = Bgd::new(
        &a,
        BgdConfig {
            lr: 0.1,
            ghost_batch: Some(40),
            ..BgdConfig::default()
        },
    )
    .unwrap();
    let sa = bgd.epoch(&mut a, &data, 1).unwrap();
    let mut sgd = Sgd::new(
        &b,
        SgdConfig {
            batch_size: 40,
            lr: 0.1,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    let sb = sgd.epoch(&mut b, &data, 1, 0).unwrap();
    assert!((sa.mean_loss - sb.mean_loss).abs() < 1e-5);
    let exported = a.export().unwrap();
    for (x, y) in exported.iter().zip(&b.export().unwrap()) {
        for (p, q) in x.data.iter().zip(&y.data) {
            assert!((p - q).abs() < 1e-5, "{}: {p} vs {q}", x.name);
        }
    }
    std::iter::once(sa.mean_loss)
        .chain(
            exported
                .iter()
                .flat_map(|t| t.data.iter().map(|&x| f64::from(x))),
        )
        .collect()
}

#[test]
fn same_seed_gives_bit_identical_weights_and_resuming_reproduces() {
    set_threads(1);
    let data = random_data(60, 5);
    let schedule = Schedule::new(vec![
        Phase::Sgd {
            sgd: SgdConfig {
                batch_size: 16,
                lr: 0.05,
                momentum: 0.0,
                weight_decay: 1e-4,
            },
            epochs: 2,
        },
        Phase::Bgd {
            bgd: BgdConfig {
                lr: 0.05,
                ghost_batch: Some(25),
                ..BgdConfig::default()
            },
            epochs: 2,
        },
    ]);
    let run = |seed: u64| {
        let mut net = Dcnn::new(&small(), Device::Cpu, 6).unwrap();
        let mut seen: Vec<EpochStats> = Vec::new();
        let mut snapshots = Vec::new();
        train(&mut net, &data, &schedule, seed, |s, m| {
            seen.push(s.clone());
            snapshots.push(m.export()?);
            Ok(())
        })
        .unwrap();
        (seen, snapshots)
    };
    let (stats_a, snaps_a) = run(7);
    let (stats_b, snaps_b) = run(7);
    let (_, snaps_c) = run(8);
    assert_eq!(
        stats_a.iter().map(|s| s.epoch).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        stats_a.iter().map(|s| s.steps).collect::<Vec<_>>(),
        vec![4, 4, 1, 1]
    );
    assert_eq!(stats_a, stats_b);
    for (a, b) in snaps_a.iter().zip(&snaps_b) {
        assert_eq!(bits(a), bits(b));
    }
    assert_ne!(
        bits(&snaps_a[0]),
        bits(&snaps_c[0]),
        "another seed shuffles differently"
    );

    // Stop after epoch 1, restore the snapshot, resume: same epochs 2..=4.
    let mut resumed = Dcnn::new(&small(), Device::Cpu, 999).unwrap();
    resumed.import(&snaps_a[0]).unwrap();
    let mut later = Vec::new();
    train_from(&mut resumed, &data, &schedule, 7, 1, |s, m| {
        later.push((s.epoch, m.export()?));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        later.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    for ((_, got), want) in later.iter().zip(&snaps_a[1..]) {
        assert_eq!(bits(got), bits(want));
    }
}

#[test]
fn huge_learning_rate_stops_with_diverged_naming_epoch_and_step() {
    let data = random_data(40, 9);
    let mut net = Dcnn::new(&small(), Device::Cpu, 1).unwrap();
    let schedule = Schedule::new(vec![Phase::Sgd {
        sgd: SgdConfig {
            batch_size: 10,
            lr: 1e300,
            ..SgdConfig::default()
        },
        epochs: 3,
    }]);
    let mut epochs_seen = 0;
    let err = train(&mut net, &data, &schedule, 0, |_, _| {
        epochs_seen += 1;
        Ok(())
    })
    .unwrap_err();
    match err {
        NetError::Diverged { epoch, step, loss } => {
            assert_eq!(
                (epoch, step),
                (1, 1),
                "the first step overflows the weights, the second loss is not finite"
            );
            assert!(!loss.is_finite());
            assert_eq!(epochs_seen, 0);
            assert!(err.to_string().contains("epoch 1, step 1"), "{err}");
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
    let mut net = Dcnn::new(&small(), Device::Cpu, 1).unwrap();
    let mut bgd = Bgd::new(
        &net,
        BgdConfig {
            lr: 1e300,
            ghost_batch: Some(15),
            ..BgdConfig::default()
        },
    )
    .unwrap();
    bgd.epoch(&mut net, &data, 1).unwrap();
    assert!(matches!(
        bgd.epoch(&mut net, &data, 2),
        Err(NetError::Diverged {
            epoch: 2,
            step: 0,
            ..
        })
    ));
}

#[test]
fn polynomial_network_trains_and_counts_out_of_range_activations() {
    let data = pattern_data(100, 11);
    let fit = Activation::fit_relu(4, 3.0).unwrap();
    let mut net = Dcnn::new(&small().with_activation(fit.activation), Device::Cpu, 3).unwrap();
    let mut sgd = Sgd::new(
        &net,
        SgdConfig {
            batch_size: 20,
            lr: 0.02,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    let stats: Vec<EpochStats> = (1..=8)
        .map(|e| sgd.epoch(&mut net, &data, e, 1).unwrap())
        .collect();
    // BN outputs are roughly N(0, 1): a fraction of a percent falls outside [-3, 3], and they are counted.
    let per_epoch = 100 * 16 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2) as u64;
    for s in &stats {
        assert!(
            s.activation_out_of_range > 0 && s.activation_out_of_range < per_epoch / 10,
            "{s:?}"
        );
    }
    assert!(stats[7].mean_loss < 0.8 * stats[0].mean_loss, "{stats:?}");
    let mut relu = Dcnn::new(&small(), Device::Cpu, 3).unwrap();
    let mut sgd = Sgd::new(&relu, SgdConfig::default()).unwrap();
    assert_eq!(
        sgd.epoch(&mut relu, &data, 1, 1)
            .unwrap()
            .activation_out_of_range,
        0
    );
}

#[test]
fn invalid_settings_are_rejected_with_the_field() {
    let net = Dcnn::new(&small(), Device::Cpu, 1).unwrap();
    match Sgd::new(
        &net,
        SgdConfig {
            batch_size: 0,
            ..SgdConfig::default()
        },
    ) {
        Err(NetError::Config { field, .. }) => assert_eq!(field, "sgd.batch_size"),
        other => panic!("{other:?}"),
    }
    match Bgd::new(
        &net,
        BgdConfig {
            lr: -1.0,
            ..BgdConfig::default()
        },
    ) {
        Err(NetError::Config { field, .. }) => assert_eq!(field, "bgd.lr"),
        other => panic!("{other:?}"),
    }
    let json = r#"[{"kind":"sgd","epochs":60},{"kind":"bgd","bgd":{"lr":0.05},"epochs":400}]"#;
    let s: Schedule = serde_json::from_str(json).unwrap();
    assert_eq!(s.total_epochs(), 460);
    assert_eq!(
        s.phases[0],
        Phase::Sgd {
            sgd: SgdConfig::default(),
            epochs: 60
        }
    );
    assert_eq!(
        s.phases[1],
        Phase::Bgd {
            bgd: BgdConfig {
                lr: 0.05,
                ..BgdConfig::default()
            },
            epochs: 400
        }
    );
    assert_eq!(BgdConfig::default().ghost_batch, None);
    assert!(serde_json::from_str::<SgdConfig>(r#"{"batch":10}"#).is_err());
    let mut three = Dcnn::new(
        &NetConfig {
            classes: 3,
            ..small()
        },
        Device::Cpu,
        1,
    )
    .unwrap();
    let mut sgd = Sgd::new(&three, SgdConfig::default()).unwrap();
    assert!(matches!(
        sgd.epoch(&mut three, &random_data(30, 1), 1, 0),
        Err(NetError::Data(_))
    ));
}
