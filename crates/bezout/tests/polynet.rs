//! The polynomial network's derivatives and symmetries.

use landscape_bezout::{Activation, BezoutError, PolyNet};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(net: &PolyNet, n: usize, seed: u64) -> (Array1<f64>, Array2<f64>, Array1<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = Array1::from_shape_fn(net.n_params(), |_| rng.random_range(-0.8..0.8));
    let x = Array2::from_shape_fn((n, net.sizes()[0]), |_| rng.random_range(-1.0..1.0));
    let y = Array1::from_shape_fn(n, |_| rng.random_range(-1.0..1.0));
    (w, x, y)
}

fn loss_grad(net: &PolyNet, w: &Array1<f64>, x: &Array2<f64>, y: &Array1<f64>) -> Array1<f64> {
    let (f, j) = net.outputs_and_jacobian(w.view(), x.view());
    j.t().dot(&(&f - y))
}

#[test]
fn parameter_count_by_hand() {
    let net = PolyNet::new(3, &[4, 5], Activation::cubic(), true).unwrap();
    assert_eq!(net.n_params(), (3 * 4 + 4) + (4 * 5 + 5) + (5 + 1));
    let no_bias = PolyNet::new(2, &[2], Activation::cubic(), false).unwrap();
    assert_eq!(no_bias.n_params(), 8);
    assert!(matches!(
        PolyNet::new(2, &[], Activation::cubic(), true),
        Err(BezoutError::InvalidParam { .. })
    ));
    assert!(matches!(
        Activation::new(vec![1.0, 0.0]),
        Err(BezoutError::InvalidParam {
            field: "activation",
            ..
        })
    ));
}

#[test]
fn output_by_hand() {
    // One unit: y = a sigma(v x + b) + c with sigma(z) = z + z^2 / 2.
    let net = PolyNet::new(1, &[1], Activation::quadratic(), true).unwrap();
    let w = Array1::from(vec![2.0, 0.5, 3.0, -1.0]); // v, b, a, c
    let x = Array2::from_shape_vec((1, 1), vec![0.25]).unwrap();
    let z: f64 = 2.0 * 0.25 + 0.5;
    assert!((net.outputs(w.view(), x.view())[0] - (3.0 * (z + z * z / 2.0) - 1.0)).abs() < 1e-15);
}

#[test]
fn jacobian_matches_finite_differences() {
    for (hidden, act) in [
        (vec![3], Activation::cubic()),
        (vec![3, 4], Activation::quadratic()),
    ] {
        let net = PolyNet::new(2, &hidden, act, true).unwrap();
        let (w, x, _) = random(&net, 5, 1);
        let (_, j) = net.outputs_and_jacobian(w.view(), x.view());
        let h = 1e-6;
        for p in 0..net.n_params() {
            let mut wp = w.clone();
            wp[p] += h;
            let mut wm = w.clone();
            wm[p] -= h;
            let fd =
                (net.outputs(wp.view(), x.view()) - net.outputs(wm.view(), x.view())) / (2.0 * h);
            for i in 0..5 {
                assert!(
                    (fd[i] - j[[i, p]]).abs() < 1e-7,
                    "param {p} row {i}: {} vs {}",
                    fd[i],
                    j[[i, p]]
                );
            }
        }
    }
}

#[test]
fn hessian_matches_finite_differences_of_the_gradient() {
    let net = PolyNet::new(2, &[3, 2], Activation::cubic(), true).unwrap();
    let (w, x, y) = random(&net, 6, 2);
    let hess = net.loss_hessian(w.view(), x.view(), y.view());
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    for p in 0..net.n_params() {
        let mut wp = w.clone();
        wp[p] += h;
        let mut wm = w.clone();
        wm[p] -= h;
        let fd = (loss_grad(&net, &wp, &x, &y) - loss_grad(&net, &wm, &x, &y)) / (2.0 * h);
        for q in 0..net.n_params() {
            worst = worst.max((fd[q] - hess[[q, p]]).abs());
            assert!((hess[[p, q]] - hess[[q, p]]).abs() < 1e-12);
        }
    }
    assert!(worst < 1e-7, "worst {worst}");
    // Not just J^T J: away from a zero the residual term matters.
    let (_, j) = net.outputs_and_jacobian(w.view(), x.view());
    let gn = j.t().dot(&j);
    assert!((&hess - &gn).iter().fold(0.0f64, |m, v| m.max(v.abs())) > 1e-3);
}

#[test]
fn canonical_form_is_invariant_under_the_symmetries() {
    let net = PolyNet::new(2, &[3], Activation::odd_cubic(), true).unwrap();
    assert!(net.activation().is_odd());
    assert_eq!(net.symmetry_order(), 6.0 * 8.0);
    let (w, x, _) = random(&net, 4, 3);
    // Layout: W1 (3x2) at 0..6, b1 at 6..9, W2 (1x3) at 9..12, b2 at 12.
    let mut v = w.clone();
    // Swap units 0 and 2.
    for (a, b) in [(0, 4), (1, 5), (6, 8), (9, 11)] {
        v.swap(a, b);
    }
    // Flip the sign of unit 1 (odd activation: incoming, bias and outgoing).
    for i in [2, 3, 7, 10] {
        v[i] = -v[i];
    }
    let f = net.outputs(w.view(), x.view());
    let g = net.outputs(v.view(), x.view());
    assert!(
        (&f - &g).iter().all(|d| d.abs() < 1e-12),
        "the transformed weights compute the same function"
    );
    assert!((&w - &v).iter().any(|d| d.abs() > 1e-3));
    let (cw, cv) = (net.canonical(w.view()), net.canonical(v.view()));
    assert!((&cw - &cv).iter().all(|d| d.abs() < 1e-15));
    assert!((net.outputs(cw.view(), x.view()) - &f)
        .iter()
        .all(|d| d.abs() < 1e-12));
}
