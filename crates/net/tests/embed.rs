//! The embedding principle: splitting a hidden channel gives a wider network
//! with exactly the same outputs (eval and batch statistics), whose gradient
//! is the narrow network's mapped through the split, so a critical point
//! stays critical.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use landscape_net::tch::{Device, Kind, Tensor};
use landscape_net::{reestimate_bn, split_channel, Data, Dcnn, HessianBn, LossHessian, NetConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_images(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    (images, labels)
}

fn narrow(data: &Data) -> Dcnn {
    let cfg = NetConfig {
        widths: vec![3, 4, 3, 2],
        ..NetConfig::paper()
    };
    let mut m = Dcnn::new(&cfg, Device::Cpu, 11).unwrap();
    reestimate_bn(&mut m, data, 64).unwrap();
    m
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().to_kind(Kind::Double).double_value(&[])
}

#[test]
fn a_split_network_computes_the_same_outputs() {
    let (images, labels) = random_images(16, 1);
    let data = Data::new(&images, &labels, Device::Cpu).unwrap();
    let xs = Tensor::from_slice(&images).reshape([16, 3, 32, 32]);
    let m = narrow(&data);
    for (layer, channel, alpha) in [(2, 0, 0.5), (3, 3, 0.3), (5, 1, 1.7)] {
        let (w, split) = split_channel(&m, layer, channel, alpha).unwrap();
        assert_eq!(split.copy, m.config().widths[layer - 2] as usize);
        assert_eq!(
            w.config().widths[layer - 2],
            m.config().widths[layer - 2] + 1
        );
        let widths = &m.config().widths;
        let cin = if layer == 2 {
            3
        } else {
            widths[layer - 3] as usize
        };
        let cnext = if layer - 2 + 1 < widths.len() {
            widths[layer - 1] as usize
        } else {
            10
        };
        assert_eq!(
            w.num_params(),
            m.num_params() + 9 * cin + 1 + 9 * cnext,
            "one incoming filter and bias, one outgoing slice"
        );
        // Eval mode (running statistics) and train mode (batch statistics).
        for train in [false, true] {
            let a = m.try_clone().unwrap().forward_t(&xs, train);
            let b = w.try_clone().unwrap().forward_t(&xs, train);
            let scale = a.abs().max().double_value(&[]);
            let d = max_diff(&a, &b);
            assert!(
                d <= 1e-5 * scale.max(1.0),
                "layer {layer}, train {train}: {d}"
            );
        }
    }
    assert!(
        split_channel(&m, 6, 0, 0.5).is_err(),
        "the last layer has no channel to split"
    );
    assert!(
        split_channel(&m, 2, 3, 0.5).is_err(),
        "channel 3 of a 3-wide layer"
    );
}

#[test]
fn the_gradient_maps_through_the_split() {
    let (images, labels) = random_images(20, 2);
    let data = Data::new(&images, &labels, Device::Cpu).unwrap();
    let m = narrow(&data);
    let (layer, channel, alpha) = (3usize, 1usize, 0.25);
    let (w, split) = split_channel(&m, layer, channel, alpha).unwrap();
    let (ln, gn) = LossHessian::new(&m, &data, 20, HessianBn::Fixed)
        .unwrap()
        .loss_and_gradient()
        .unwrap();
    let (lw, gw) = LossHessian::new(&w, &data, 20, HessianBn::Fixed)
        .unwrap()
        .loss_and_gradient()
        .unwrap();
    assert!((ln - lw).abs() <= 1e-5 * ln, "losses {ln} vs {lw}");
    // Walk the parameters of both networks tensor by tensor.
    let shapes = |net: &Dcnn| -> Vec<(String, Vec<usize>)> {
        net.export()
            .unwrap()
            .into_iter()
            .filter(|t| !t.name.contains(".bn."))
            .map(|t| (t.name, t.shape))
            .collect()
    };
    let (sn, sw) = (shapes(&m), shapes(&w));
    let (mut on, mut ow) = (0usize, 0usize);
    let mut worst = 0f64;
    let scale = gn.iter().fold(0f64, |a, v| a.max(v.abs()));
    let mut check = |want: f64, got: f64| worst = worst.max((want - got).abs());
    for ((name, a), (_, b)) in sn.iter().zip(&sw) {
        let (na, nb): (usize, usize) = (a.iter().product(), b.iter().product());
        let g = &gn[on..on + na];
        let h = &gw[ow..ow + nb];
        if name.starts_with(&format!("layer{layer}.")) {
            let per = na / a[0];
            for (i, v) in g.iter().enumerate() {
                let want = if i / per == channel { alpha * v } else { *v };
                check(want, h[i]);
            }
            for k in 0..per {
                check((1.0 - alpha) * g[channel * per + k], h[na + k]);
            }
        } else if name == &format!("layer{}.weight", layer + 1) {
            let (o, cin, kk) = (a[0], a[1], a[2] * a[3]);
            for x in 0..o {
                for c in 0..cin {
                    for k in 0..kk {
                        check(g[(x * cin + c) * kk + k], h[(x * (cin + 1) + c) * kk + k]);
                    }
                }
                for k in 0..kk {
                    check(
                        g[(x * cin + channel) * kk + k],
                        h[(x * (cin + 1) + cin) * kk + k],
                    );
                }
            }
        } else {
            for (v, u) in g.iter().zip(h) {
                check(*v, *u);
            }
        }
        on += na;
        ow += nb;
    }
    assert_eq!((on, ow), (gn.len(), gw.len()));
    assert!(
        worst <= 1e-4 * scale,
        "gradient mismatch {worst} (scale {scale})"
    );
    let _ = split;
}
