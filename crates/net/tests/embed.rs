//! The embedding principle: splitting a hidden channel gives a wider network
//! with exactly the same outputs (eval and batch statistics), whose gradient
//! is the narrow network's mapped through the split, so a critical point
//! stays critical; on a network small enough for the whole Hessian, the wide
//! Hessian is the narrow one beside a block with a flat subspace S (the
//! theory in `src/embed.rs`), and wrongly wired splits break that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // host tensors on purpose (CPU tests)
use landscape_net::tch::{Device, Kind, Tensor};
use landscape_net::{
    reestimate_bn, split_channel, Activation, Data, Dcnn, HessianBn, LossHessian, NetConfig,
};
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

// ---------------------------------------------------------------------------
// The Hessian at a split point (see the module docs of `embed.rs`): on a
// network small enough to form the whole Hessian, the wide Hessian in the
// coordinates (T, incoming difference, S) is the narrow one beside a block
// K = [[A, G], [G^T, 0]], the quadratic form vanishes on S, and the counts of
// non-positive (non-negative) eigenvalues grow by at least dim S.

use ndarray::{s, Array2};
use ndarray_linalg::{Eigh, UPLO};

/// The trainable parameters of `m`, flattened in `LossHessian` order.
fn flat_params(m: &Dcnn) -> Vec<f64> {
    m.export()
        .unwrap()
        .into_iter()
        .filter(|t| !t.name.contains(".bn."))
        .flat_map(|t| t.data.into_iter().map(f64::from))
        .collect()
}

/// `m` with its trainable parameters replaced by `p` (BN statistics kept).
fn with_params(m: &Dcnn, p: &[f64]) -> Dcnn {
    let mut t = m.export().unwrap();
    let mut at = 0;
    for x in &mut t {
        if x.name.contains(".bn.") {
            continue;
        }
        for d in &mut x.data {
            *d = p[at] as f32;
            at += 1;
        }
    }
    assert_eq!(at, p.len());
    let mut out = Dcnn::new(m.config(), Device::Cpu, 0).unwrap();
    out.import(&t).unwrap();
    out
}

/// The whole Hessian, column by column (H e_i), symmetrised.
fn full_hessian(m: &Dcnn, data: &Data) -> Array2<f64> {
    let h = LossHessian::new(m, data, data.len(), HessianBn::Fixed).unwrap();
    let n = h.dim();
    let mut a = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        let mut e = vec![0.0; n];
        e[i] = 1.0;
        for (j, v) in h.hvp(&e).unwrap().into_iter().enumerate() {
            a[[j, i]] = v;
        }
    }
    (&a + &a.t()) / 2.0
}

/// Eigenvalues, ascending.
fn eigenvalues(a: &Array2<f64>) -> Vec<f64> {
    let (e, _) = a.eigh(UPLO::Upper).unwrap();
    let mut e = e.to_vec();
    e.sort_by(f64::total_cmp);
    e
}

/// (negative, zero, positive) counts with |lambda| <= tau counted as zero.
fn inertia(e: &[f64], tau: f64) -> (usize, usize, usize) {
    let neg = e.iter().filter(|&&x| x < -tau).count();
    let pos = e.iter().filter(|&&x| x > tau).count();
    (neg, e.len() - neg - pos, pos)
}

fn count_le(e: &[f64], t: f64) -> usize {
    e.iter().filter(|&&x| x <= t).count()
}

fn count_ge(e: &[f64], t: f64) -> usize {
    e.iter().filter(|&&x| x >= t).count()
}

fn max_abs(a: ndarray::ArrayView2<'_, f64>) -> f64 {
    a.iter().fold(0f64, |m, v| m.max(v.abs()))
}

/// A network of widths 2, 3, 3, 2 with a smooth activation (the degree-4
/// polynomial fit of ReLU: no dead units, a Hessian with no exact zeros from
/// the activation) on 8 random images, BN statistics estimated once and then
/// held fixed, trained by full-batch gradient descent on that (fixed-BN)
/// loss towards a critical point.
fn trained_tiny() -> (Dcnn, Data) {
    let (images, labels) = random_images(8, 5);
    let data = Data::new(&images, &labels, Device::Cpu).unwrap();
    let cfg = NetConfig {
        widths: vec![2, 3, 3, 2],
        activation: Activation::fit_relu(4, 3.0).unwrap().activation,
        ..NetConfig::paper()
    };
    let mut m = Dcnn::new(&cfg, Device::Cpu, 21).unwrap();
    reestimate_bn(&mut m, &data, 64).unwrap();
    // Gradient descent with backtracking (the step halves when the loss
    // would rise), so the polynomial network cannot blow up.
    let grad = |m: &Dcnn| {
        LossHessian::new(m, &data, 8, HessianBn::Fixed)
            .unwrap()
            .loss_and_gradient()
            .unwrap()
    };
    let (mut loss, mut g) = grad(&m);
    let mut lr = 0.1;
    for _ in 0..STEPS {
        let p: Vec<f64> = flat_params(&m)
            .iter()
            .zip(&g)
            .map(|(x, d)| x - lr * d)
            .collect();
        let next = with_params(&m, &p);
        let (l, gn) = grad(&next);
        if l.is_finite() && l <= loss {
            (m, loss, g) = (next, l, gn);
            lr *= 1.2;
        } else {
            lr *= 0.5;
        }
    }
    (m, data)
}

const STEPS: usize = 200;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `P`: the columns T e_i (narrow basis), then the incoming differences,
/// then the outgoing differences (S), as a wide x wide matrix.
fn coordinates(narrow: &Dcnn, wide: &Dcnn, split: &landscape_net::Split) -> Array2<f64> {
    let (n, w) = (narrow.num_params(), wide.num_params());
    let (m, p) = (
        split.incoming_len(narrow).unwrap(),
        split.outgoing_len(narrow).unwrap(),
    );
    assert_eq!(n + m + p, w);
    let mut cols = Array2::<f64>::zeros((w, w));
    for i in 0..n {
        let mut e = vec![0.0; n];
        e[i] = 1.0;
        let c = split.embed_vector(narrow, &e).unwrap();
        cols.column_mut(i).assign(&ndarray::Array1::from(c));
    }
    for i in 0..m {
        let mut e = vec![0.0; m];
        e[i] = 1.0;
        let c = split.incoming_difference(wide, &e).unwrap();
        cols.column_mut(n + i).assign(&ndarray::Array1::from(c));
    }
    for i in 0..p {
        let mut e = vec![0.0; p];
        e[i] = 1.0;
        let c = split.outgoing_difference(wide, &e).unwrap();
        cols.column_mut(n + m + i).assign(&ndarray::Array1::from(c));
    }
    cols
}

/// Largest |s' H s| / |s|^2 over a few random s of S, through Hessian-vector products.
fn form_on_s(wide: &Dcnn, data: &Data, split: &landscape_net::Split, p: usize) -> f64 {
    let h = LossHessian::new(wide, data, data.len(), HessianBn::Fixed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut worst = 0f64;
    for _ in 0..4 {
        let d: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let s = split.outgoing_difference(wide, &d).unwrap();
        let hs = h.hvp(&s).unwrap();
        let q: f64 = s.iter().zip(&hs).map(|(a, b)| a * b).sum::<f64>() / norm(&s).powi(2);
        worst = worst.max(q.abs());
    }
    worst
}

#[test]
fn the_split_hessian_is_the_narrow_one_beside_a_block_with_a_flat_subspace() {
    let (m, data) = trained_tiny();
    let (layer, channel, alpha) = (3usize, 1usize, 0.5);
    let (w, split) = split_channel(&m, layer, channel, alpha).unwrap();
    let (p, inc) = (
        split.outgoing_len(&m).unwrap(),
        split.incoming_len(&m).unwrap(),
    );
    assert_eq!((p, inc), (3 * 9, 2 * 9 + 1));
    // The wide parameters are T of the narrow ones.
    let tn = split.embed_vector(&m, &flat_params(&m)).unwrap();
    let pw = flat_params(&w);
    let d = tn
        .iter()
        .zip(&pw)
        .fold(0f64, |a, (x, y)| a.max((x - y).abs()));
    assert!(d <= 1e-6, "T(narrow parameters) vs wide parameters: {d}");

    let (ln, gn) = LossHessian::new(&m, &data, 8, HessianBn::Fixed)
        .unwrap()
        .loss_and_gradient()
        .unwrap();
    let (lw, gw) = LossHessian::new(&w, &data, 8, HessianBn::Fixed)
        .unwrap()
        .loss_and_gradient()
        .unwrap();
    eprintln!(
        "after {STEPS} BGD steps: loss {ln:.3e} (wide {lw:.3e}), gradient norm narrow {:.3e}, wide {:.3e}",
        norm(&gn),
        norm(&gw)
    );
    assert!((ln - lw).abs() <= 1e-5 * ln.max(1e-3));

    let hn = full_hessian(&m, &data);
    let hw = full_hessian(&w, &data);
    let (en, ew) = (eigenvalues(&hn), eigenvalues(&hw));
    let scale_n = en[en.len() - 1].abs().max(en[0].abs());
    let scale = ew[ew.len() - 1].abs().max(ew[0].abs());
    // f32 Hessian-vector products: entries are good to about 1e-6 of the scale.
    let noise = 1e-5 * scale;

    // The wide Hessian in the coordinates (T, incoming difference, S).
    let pm = coordinates(&m, &w, &split);
    let hc = pm.t().dot(&hw).dot(&pm);
    let (n, mi) = (m.num_params(), inc);
    let tt = hc.slice(s![..n, ..n]).to_owned() - &hn;
    let blocks = [
        ("T,T - narrow", max_abs(tt.view())),
        ("T,incoming", max_abs(hc.slice(s![..n, n..n + mi]))),
        ("T,S", max_abs(hc.slice(s![..n, n + mi..]))),
        ("S,S", max_abs(hc.slice(s![n + mi.., n + mi..]))),
    ];
    for (name, v) in blocks {
        eprintln!("block {name}: max |entry| = {v:.3e} (scale {scale:.3e})");
        assert!(v <= 1e-4 * scale, "block {name}: {v} vs scale {scale}");
    }
    let g = hc.slice(s![n..n + mi, n + mi..]).to_owned();
    let g_max = max_abs(g.view());
    let k = hc.slice(s![n.., n..]).to_owned();
    let ek = eigenvalues(&k);
    let q = form_on_s(&w, &data, &split, p);
    eprintln!(
        "G (incoming x outgoing difference): max |entry| {g_max:.3e}; s'Hs/|s|^2 on random s of S: {q:.3e} (relative {:.1e})",
        q / scale
    );
    assert!(q <= 1e-5 * scale, "the form on S: {q} vs scale {scale}");

    // Counts. tau relative to the narrow spectrum; the wide thresholds carry
    // the factor 2 of |T u + s|^2 >= |u|^2 / 2 (alpha = 1/2) and the noise.
    let tau = 1e-4 * scale_n;
    let (nn, nw, nk) = (inertia(&en, tau), inertia(&ew, tau), inertia(&ek, tau));
    eprintln!(
        "narrow: {} parameters, lambda in [{:.4e}, {:.4e}], (negative, |lambda| <= {tau:.1e}, positive) = {nn:?}",
        en.len(),
        en[0],
        en[en.len() - 1]
    );
    eprintln!(
        "wide:   {} parameters, lambda in [{:.4e}, {:.4e}], (negative, zero, positive) = {nw:?}; K (in the new coordinates): {nk:?}; dim S = {p}",
        ew.len(),
        ew[0],
        ew[ew.len() - 1]
    );
    assert!(
        nn.2 >= 30 && nn.0 + nn.1 >= 1,
        "the test network should have a rich spectrum: {nn:?}"
    );
    let (le_n, le_w) = (count_le(&en, tau), count_le(&ew, 2.0 * tau + noise));
    let (ge_n, ge_w) = (count_ge(&en, -tau), count_ge(&ew, -2.0 * tau - noise));
    eprintln!(
        "eigenvalues <= tau: narrow {le_n}, wide (<= 2 tau) {le_w}; >= -tau: narrow {ge_n}, wide {ge_w}"
    );
    assert!(
        le_w >= le_n + p,
        "non-positive: wide {le_w} < narrow {le_n} + {p}"
    );
    assert!(
        ge_w >= ge_n + p,
        "non-negative: wide {ge_w} < narrow {ge_n} + {p}"
    );
    // Irreversibility: strictly negative and strictly positive counts do not drop.
    let (neg_n, neg_w) = (count_le(&en, -tau), count_le(&ew, -tau / 2.0 + noise));
    let (pos_n, pos_w) = (count_ge(&en, tau), count_ge(&ew, tau / 2.0 - noise));
    assert!(neg_w >= neg_n, "negative: wide {neg_w} < narrow {neg_n}");
    assert!(pos_w >= pos_n, "positive: wide {pos_w} < narrow {pos_n}");
    // Sylvester: K's negative eigenvalues are the wide net's extra ones.
    assert!(
        nk.0 + nk.1 >= p && nk.2 + nk.1 >= p,
        "K {nk:?} must have at least {p} non-positive and {p} non-negative eigenvalues"
    );
    // G != 0 here (cross-entropy: the output gradient is not zero), so the
    // form on span{s, H s} certifies a negative eigenvalue of the wide Hessian.
    assert!(g_max > 10.0 * noise, "G vanished: {g_max} (noise {noise})");
    let h = LossHessian::new(&w, &data, 8, HessianBn::Fixed).unwrap();
    let mut best = f64::INFINITY;
    for i in 0..p {
        let mut e = vec![0.0; p];
        e[i] = 1.0;
        let s = split.outgoing_difference(&w, &e).unwrap();
        best = best.min(saddle_certificate(&h, &s));
    }
    eprintln!(
        "negative curvature certified from S: {best:.4e}; wide smallest eigenvalue {:.4e}, narrow {:.4e}",
        ew[0], en[0]
    );
    assert!(best < -noise, "no negative curvature found from S: {best}");
    assert!(
        ew[0] <= best + noise,
        "the smallest eigenvalue {} exceeds the certificate {best}",
        ew[0]
    );

    wrong_splits_break_the_structure(&m, &w, &split, &data, &hn, &pm, scale);
}

/// The smallest eigenvalue of the form on span{s, H s}, an upper bound on
/// the smallest eigenvalue of H (negative when s'Hs = 0 and Hs != 0).
fn saddle_certificate(h: &LossHessian<'_>, s: &[f64]) -> f64 {
    let u: Vec<f64> = s.iter().map(|x| x / norm(s)).collect();
    let hu = h.hvp(&u).unwrap();
    let a = dot(&u, &hu);
    let mut r: Vec<f64> = hu.iter().zip(&u).map(|(x, y)| x - a * y).collect();
    let b = norm(&r);
    if b == 0.0 {
        return a;
    }
    for x in &mut r {
        *x /= b;
    }
    let c = dot(&r, &h.hvp(&r).unwrap());
    (a + c) / 2.0 - (((a - c) / 2.0).powi(2) + b * b).sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `T' H T u` against `H_n u` on a few random `u` (`T` the first columns of
/// `pm`): the largest relative difference (zero when `T` embeds the narrow
/// network).
fn t_block_error(
    narrow: &Dcnn,
    wide: &Dcnn,
    split: &landscape_net::Split,
    data: &Data,
    hn: &Array2<f64>,
    pm: &Array2<f64>,
) -> f64 {
    let h = LossHessian::new(wide, data, data.len(), HessianBn::Fixed).unwrap();
    let n = narrow.num_params();
    let t = pm.slice(s![.., ..n]);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let mut worst = 0f64;
    for _ in 0..3 {
        let u: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let tu = split.embed_vector(narrow, &u).unwrap();
        let pulled = t.t().dot(&ndarray::Array1::from(h.hvp(&tu).unwrap()));
        let want = hn.dot(&ndarray::Array1::from(u));
        let err = (&pulled - &want).mapv(|x| x * x).sum().sqrt();
        worst = worst.max(err / want.mapv(|x| x * x).sum().sqrt());
    }
    worst
}

/// Wrongly wired splits break what the right one satisfies: with the
/// outgoing weights not shared (both copies keep them all) the function
/// changes and `T` no longer carries the narrow Hessian (while `S` stays
/// flat: the copies are still identical); with the incoming filter copied
/// from the wrong channel, `S` is no longer flat.
fn wrong_splits_break_the_structure(
    m: &Dcnn,
    w: &Dcnn,
    split: &landscape_net::Split,
    data: &Data,
    hn: &Array2<f64>,
    pm: &Array2<f64>,
    scale: f64,
) {
    let (layer, c) = (split.layer, split.channel);
    let next = format!("layer{}.weight", layer + 1);
    let this = format!("layer{layer}.");
    let t = w.export().unwrap();
    let mut unshared = t.clone();
    for x in &mut unshared {
        if x.name == next {
            let (cin, kk) = (x.shape[1], x.shape[2] * x.shape[3]);
            for a in 0..x.shape[0] {
                for b in [c, split.copy] {
                    for k in 0..kk {
                        x.data[(a * cin + b) * kk + k] *= 2.0;
                    }
                }
            }
        }
    }
    let mut crossed = t.clone();
    let other = usize::from(c == 0);
    for x in &mut crossed {
        if x.name.starts_with(&this) {
            let per = x.data.len() / x.shape[0];
            let src: Vec<f32> = x.data[other * per..(other + 1) * per].to_vec();
            x.data[split.copy * per..(split.copy + 1) * per].copy_from_slice(&src);
        }
    }
    let p = split.outgoing_len(m).unwrap();
    let ln = LossHessian::new(m, data, data.len(), HessianBn::Fixed)
        .unwrap()
        .loss_and_gradient()
        .unwrap()
        .0;
    let mut right_tt = f64::NAN;
    for (name, tensors) in [
        ("right", t.clone()),
        ("outgoing not shared", unshared),
        ("incoming from the wrong channel", crossed),
    ] {
        let mut net = Dcnn::new(w.config(), Device::Cpu, 0).unwrap();
        net.import(&tensors).unwrap();
        let loss = LossHessian::new(&net, data, data.len(), HessianBn::Fixed)
            .unwrap()
            .loss_and_gradient()
            .unwrap()
            .0;
        let tt = t_block_error(m, &net, split, data, hn, pm);
        let q = form_on_s(&net, data, split, p) / scale;
        eprintln!(
            "{name} split: loss {loss:.4e} (narrow {ln:.4e}); |T'HTu - H_n u| / |H_n u| {tt:.2e}, |s'Hs| on random s of S {q:.2e}"
        );
        match name {
            // f32 products of dense vectors: agreement to a few 1e-3.
            "right" => {
                assert!(tt <= 1e-2 && q <= 1e-5, "{tt} {q}");
                right_tt = tt;
            }
            "outgoing not shared" => {
                assert!((loss - ln).abs() > 1e-3 * ln, "the function should change");
                assert!(
                    tt > 10.0 * right_tt.max(1e-3),
                    "T should not carry the narrow Hessian: {tt} (right split {right_tt})"
                );
                assert!(q <= 1e-5, "the copies are identical, S stays flat: {q}");
            }
            // The right split gives 0 to rounding (below 1e-5 of the top).
            _ => assert!(q > 1e-5, "S should not be flat: {q}"),
        }
    }
}
