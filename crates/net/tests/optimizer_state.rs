//! Optimiser state: momentum buffers are saved and restored exactly, so a
//! killed run with momentum and weight decay resumes bit-identically.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use landscape_net::tch::Device;
use landscape_net::{
    set_threads, train, train_from_state, Bgd, BgdConfig, Data, Dcnn, NamedTensor, NetConfig,
    NetError, OptimizerState, Phase, Schedule, Sgd, SgdConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small() -> NetConfig {
    NetConfig {
        widths: vec![16, 16, 16, 16],
        ..NetConfig::paper()
    }
}

fn random_data(n: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Data::new(&images, &labels, Device::Cpu).unwrap()
}

fn bits(t: &[NamedTensor]) -> Vec<(String, Vec<u32>)> {
    t.iter()
        .map(|x| (x.name.clone(), x.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn sgd_cfg() -> SgdConfig {
    SgdConfig {
        batch_size: 16,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
    }
}

fn bgd_cfg() -> BgdConfig {
    BgdConfig {
        lr: 0.1,
        ghost_batch: Some(25),
        momentum: 0.9,
        weight_decay: 5e-4,
    }
}

/// A fresh model (different initial weights) holding `weights`.
fn restored(weights: &[NamedTensor]) -> Dcnn {
    let mut net = Dcnn::new(&small(), Device::Cpu, 999).unwrap();
    net.import(weights).unwrap();
    net
}

/// Largest `|a - b|` over all values of two exports.
fn max_diff(a: &[NamedTensor], b: &[NamedTensor]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn sgd_with_momentum_resumes_bit_identically_only_with_its_state() {
    set_threads(1);
    let data = random_data(60, 5);
    let seed = 7;

    // 4 epochs straight.
    let mut straight = Dcnn::new(&small(), Device::Cpu, 6).unwrap();
    let mut opt = Sgd::new(&straight, sgd_cfg()).unwrap();
    assert!(opt.state().unwrap().is_empty(), "no step taken yet");
    for e in 1..=4 {
        opt.epoch(&mut straight, &data, e, seed).unwrap();
    }
    let want = straight.export().unwrap();

    // 2 epochs, "killed": keep only the exported weights and state.
    let mut first = Dcnn::new(&small(), Device::Cpu, 6).unwrap();
    let mut opt = Sgd::new(&first, sgd_cfg()).unwrap();
    for e in 1..=2 {
        opt.epoch(&mut first, &data, e, seed).unwrap();
    }
    let weights = first.export().unwrap();
    let state = opt.state().unwrap();
    drop((first, opt));

    // Every parameter has a buffer, under its export name and shape.
    let params: Vec<&NamedTensor> = weights
        .iter()
        .filter(|t| !t.name.contains(".bn."))
        .collect();
    assert_eq!(state.momentum.len(), params.len());
    for (b, p) in state.momentum.iter().zip(&params) {
        assert_eq!((&b.name, &b.shape), (&p.name, &p.shape));
        assert_eq!(b.data.len(), p.data.len());
        assert!(b.data.iter().any(|&v| v != 0.0), "{}: zero buffer", b.name);
    }

    // Resumed with the state: bit-identical to the straight run.
    let mut resumed = restored(&weights);
    let mut opt = Sgd::new(&resumed, sgd_cfg()).unwrap();
    opt.set_state(&resumed, &state).unwrap();
    assert_eq!(bits(&opt.state().unwrap().momentum), bits(&state.momentum));
    for e in 3..=4 {
        opt.epoch(&mut resumed, &data, e, seed).unwrap();
    }
    assert_eq!(bits(&resumed.export().unwrap()), bits(&want));

    // Resumed without it (fresh buffers): a different result.
    let mut fresh = restored(&weights);
    let mut opt = Sgd::new(&fresh, sgd_cfg()).unwrap();
    for e in 3..=4 {
        opt.epoch(&mut fresh, &data, e, seed).unwrap();
    }
    let got = fresh.export().unwrap();
    let diff = max_diff(&got, &want);
    assert!(
        diff > 1e-4,
        "the state should matter: max weight difference {diff}"
    );
}

#[test]
fn bgd_with_momentum_resumes_bit_identically_only_with_its_state() {
    set_threads(1);
    let data = random_data(60, 8);

    let mut straight = Dcnn::new(&small(), Device::Cpu, 3).unwrap();
    let w0 = straight.export().unwrap();
    let mut opt = Bgd::new(&straight, bgd_cfg()).unwrap();
    opt.epoch(&mut straight, &data, 1).unwrap();
    // After one step the buffer is the (weight-decayed) gradient and the
    // step was lr times it: buffer = (w0 - w1) / lr.
    let w1 = straight.export().unwrap();
    let state1 = opt.state().unwrap();
    assert_eq!(state1.momentum.len(), 10);
    for b in &state1.momentum {
        let (p0, p1) = (
            w0.iter().find(|t| t.name == b.name).unwrap(),
            w1.iter().find(|t| t.name == b.name).unwrap(),
        );
        for ((v, a), c) in b.data.iter().zip(&p0.data).zip(&p1.data) {
            let step = f64::from(*a) - f64::from(*c);
            assert!(
                (f64::from(*v) * 0.1 - step).abs() < 1e-6 + 1e-3 * step.abs(),
                "{}: buffer {v} vs (w0 - w1) / lr = {}",
                b.name,
                step / 0.1
            );
        }
    }
    for e in 2..=4 {
        opt.epoch(&mut straight, &data, e).unwrap();
    }
    let want = straight.export().unwrap();

    let mut first = Dcnn::new(&small(), Device::Cpu, 3).unwrap();
    let mut opt = Bgd::new(&first, bgd_cfg()).unwrap();
    for e in 1..=2 {
        opt.epoch(&mut first, &data, e).unwrap();
    }
    let weights = first.export().unwrap();
    let state = opt.state().unwrap();

    let mut resumed = restored(&weights);
    let mut opt = Bgd::new(&resumed, bgd_cfg()).unwrap();
    opt.set_state(&resumed, &state).unwrap();
    for e in 3..=4 {
        opt.epoch(&mut resumed, &data, e).unwrap();
    }
    assert_eq!(bits(&resumed.export().unwrap()), bits(&want));

    let mut fresh = restored(&weights);
    let mut opt = Bgd::new(&fresh, bgd_cfg()).unwrap();
    for e in 3..=4 {
        opt.epoch(&mut fresh, &data, e).unwrap();
    }
    let diff = max_diff(&fresh.export().unwrap(), &want);
    assert!(
        diff > 1e-4,
        "the state should matter: max weight difference {diff}"
    );
}

#[test]
fn train_from_state_resumes_after_any_epoch_across_phases() {
    set_threads(1);
    let data = random_data(50, 11);
    let schedule = Schedule::new(vec![
        Phase::Sgd {
            sgd: sgd_cfg(),
            epochs: 3,
        },
        Phase::Bgd {
            bgd: bgd_cfg(),
            epochs: 3,
        },
    ]);
    let seed = 4;

    // The uninterrupted run, snapshotting (weights, state) after every epoch.
    let mut net = Dcnn::new(&small(), Device::Cpu, 2).unwrap();
    let mut snaps: Vec<(Vec<NamedTensor>, OptimizerState, usize)> = Vec::new();
    train_from_state(&mut net, &data, &schedule, seed, 0, None, |s, m, opt| {
        assert_eq!(s.epoch, snaps.len() + 1);
        snaps.push((m.export()?, opt.state()?, opt.phase()));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.2).collect::<Vec<_>>(),
        vec![0, 0, 0, 1, 1, 1]
    );
    assert!(snaps.iter().all(|s| s.1.momentum.len() == 10));
    let want = bits(&snaps[5].0);

    // `train` (fresh state per phase) gives the same run.
    let mut plain = Dcnn::new(&small(), Device::Cpu, 2).unwrap();
    train(&mut plain, &data, &schedule, seed, |_, _| Ok(())).unwrap();
    assert_eq!(bits(&plain.export().unwrap()), want);

    // Killed after epoch k, resumed from that snapshot: the same end, for
    // every k (k = 3 ends the SGD phase: its state is not carried into BGD).
    for k in 1..=5 {
        let (weights, state, _) = &snaps[k - 1];
        let mut resumed = restored(weights);
        let mut epochs = Vec::new();
        train_from_state(
            &mut resumed,
            &data,
            &schedule,
            seed,
            k,
            Some(state),
            |s, m, opt| {
                epochs.push(s.epoch);
                // Every later snapshot matches the uninterrupted run's.
                let (w, st, _) = &snaps[s.epoch - 1];
                assert_eq!(bits(&m.export()?), bits(w), "epoch {}", s.epoch);
                assert_eq!(bits(&opt.state()?.momentum), bits(&st.momentum));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(epochs, (k + 1..=6).collect::<Vec<_>>());
        assert_eq!(bits(&resumed.export().unwrap()), want, "resumed after {k}");
    }

    // Without the state, resuming inside a phase does not reproduce the run.
    for k in [2, 5] {
        let mut resumed = restored(&snaps[k - 1].0);
        train_from_state(&mut resumed, &data, &schedule, seed, k, None, |_, _, _| {
            Ok(())
        })
        .unwrap();
        let diff = max_diff(&resumed.export().unwrap(), &snaps[5].0);
        assert!(diff > 1e-5, "after {k}: max weight difference {diff}");
    }
}

#[test]
fn invalid_states_are_rejected_naming_the_tensor() {
    set_threads(1);
    let data = random_data(30, 2);
    let mut net = Dcnn::new(&small(), Device::Cpu, 1).unwrap();
    let mut opt = Sgd::new(&net, sgd_cfg()).unwrap();
    opt.epoch(&mut net, &data, 1, 0).unwrap();
    let good = opt.state().unwrap();

    let expect_tensor_error = |opt: &mut Sgd, state: &OptimizerState, name: &str| {
        let err = opt.set_state(&net, state).unwrap_err();
        match &err {
            NetError::Tensor { name: got, .. } => assert_eq!(got, name, "{err}"),
            other => panic!("expected a Tensor error naming {name}, got {other:?}"),
        }
        assert!(err.to_string().contains(name), "{err}");
        // A failed set_state changes nothing.
        assert_eq!(
            bits(&opt.state().unwrap().momentum),
            bits(&good.momentum),
            "state changed by a failed set_state"
        );
    };

    let mut renamed = good.clone();
    renamed.momentum[2].name = "layer9.weight".to_string();
    expect_tensor_error(&mut opt, &renamed, "layer9.weight");

    let mut reshaped = good.clone();
    reshaped.momentum[2].shape = vec![16, 16, 3, 2];
    expect_tensor_error(&mut opt, &reshaped, "layer3.weight");

    let mut short = good.clone();
    short.momentum[3].data.pop();
    expect_tensor_error(&mut opt, &short, "layer3.bias");

    let mut twice = good.clone();
    twice.momentum.push(good.momentum[0].clone());
    expect_tensor_error(&mut opt, &twice, "layer2.weight");

    // A model of another shape.
    let other = Dcnn::new(
        &NetConfig {
            widths: vec![8, 16, 16, 16],
            ..NetConfig::paper()
        },
        Device::Cpu,
        1,
    )
    .unwrap();
    assert!(matches!(
        opt.set_state(&other, &good),
        Err(NetError::Tensor { .. })
    ));

    // Momentum 0 keeps no buffers and accepts none.
    let mut plain = Sgd::new(
        &net,
        SgdConfig {
            momentum: 0.0,
            ..sgd_cfg()
        },
    )
    .unwrap();
    plain.epoch(&mut net, &data, 2, 0).unwrap();
    assert!(plain.state().unwrap().is_empty());
    plain.set_state(&net, &OptimizerState::default()).unwrap();
    assert!(matches!(
        plain.set_state(&net, &good),
        Err(NetError::Tensor { name, .. }) if name == "layer2.weight"
    ));

    // A subset is fine: the missing parameters simply have no buffer yet.
    let mut bgd = Bgd::new(&net, bgd_cfg()).unwrap();
    let subset = OptimizerState {
        momentum: good.momentum[4..6].to_vec(),
    };
    bgd.set_state(&net, &subset).unwrap();
    assert_eq!(bits(&bgd.state().unwrap().momentum), bits(&subset.momentum));

    // train_from_state checks the state before running any epoch.
    let schedule = Schedule::new(vec![Phase::Sgd {
        sgd: sgd_cfg(),
        epochs: 3,
    }]);
    let mut ran = 0;
    let err = train_from_state(
        &mut net,
        &data,
        &schedule,
        0,
        1,
        Some(&reshaped),
        |_, _, _| {
            ran += 1;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, NetError::Tensor { name, .. } if name == "layer3.weight"),
        "{err:?}"
    );
    assert_eq!(ran, 0);
}
