//! Hessian-vector products through double backward: they match central
//! finite differences of gradients, the Hessian they build is symmetric, and
//! with fixed BN statistics it does not depend on the chunk size (while batch
//! statistics give a different Hessian). The numeric tests run on every
//! device of `landscape_net::testing::devices()` (the CPU, plus CUDA when
//! available), CUDA's products also compared with the CPU's.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use landscape_net::tch::Device;
use landscape_net::testing::{assert_close, devices};
use landscape_net::{
    reestimate_bn, Activation, Data, Dcnn, HessianBn, LossHessian, NamedTensor, NetConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny(activation: Activation) -> NetConfig {
    NetConfig {
        widths: vec![1, 1, 1, 1],
        activation,
        ..NetConfig::paper()
    }
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

/// A smooth network (polynomial activation) with re-estimated BN statistics.
fn smooth_model(data: &Data) -> Dcnn {
    let act = Activation::fit_relu(4, 3.0).unwrap().activation;
    let mut m = Dcnn::new(&tiny(act), data.device(), 3).unwrap();
    reestimate_bn(&mut m, data, 64).unwrap();
    m
}

/// `model` with `eps * v` added to its trainable parameters.
fn shifted(model: &Dcnn, v: &[f64], eps: f64) -> Dcnn {
    let mut t: Vec<NamedTensor> = model.export().unwrap();
    let mut at = 0;
    for x in &mut t {
        if x.name.contains(".bn.") {
            continue;
        }
        for d in &mut x.data {
            *d = (f64::from(*d) + eps * v[at]) as f32;
            at += 1;
        }
    }
    assert_eq!(at, v.len());
    let mut m = Dcnn::new(model.config(), model.device(), 0).unwrap();
    m.import(&t).unwrap();
    m
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

#[test]
fn hvp_matches_finite_differences_of_gradients() {
    let mut cpu_products: Vec<Vec<f64>> = Vec::new();
    for device in devices().unwrap() {
        let products = hvp_matches_finite_differences_on(device);
        if device == Device::Cpu {
            cpu_products = products;
        } else {
            for (k, (a, b)) in cpu_products.iter().zip(&products).enumerate() {
                assert_close(&format!("Hv {k}"), device, a, b, 1e-3).unwrap();
            }
        }
    }
}

/// The products `Hv` of three random unit vectors on `device`, each checked
/// against central differences of gradients.
fn hvp_matches_finite_differences_on(device: Device) -> Vec<Vec<f64>> {
    let data = random_data_on(24, 1, device);
    let model = smooth_model(&data);
    let h = LossHessian::new(&model, &data, 10, HessianBn::Fixed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut products = Vec::new();
    for _ in 0..3 {
        let v: Vec<f64> = (0..h.dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v: Vec<f64> = v.iter().map(|x| x / norm(&v)).collect();
        let hv = h.hvp(&v).unwrap();
        let eps = 1e-2;
        let gp = LossHessian::new(&shifted(&model, &v, eps), &data, 10, HessianBn::Fixed)
            .unwrap()
            .loss_and_gradient()
            .unwrap()
            .1;
        let gm = LossHessian::new(&shifted(&model, &v, -eps), &data, 10, HessianBn::Fixed)
            .unwrap()
            .loss_and_gradient()
            .unwrap()
            .1;
        let fd: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let diff: Vec<f64> = hv.iter().zip(&fd).map(|(a, b)| a - b).collect();
        let rel = norm(&diff) / norm(&fd);
        // Central differences err by O(eps^2) (about 1e-4 here) plus f32
        // rounding of the gradients divided by eps (about 1e-5).
        assert!(rel < 1e-2, "|Hv - FD| / |FD| = {rel} on {device:?}");
        products.push(hv);
    }
    assert_eq!(h.products(), 3);
    products
}

fn unit(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let s = norm(&v);
    v.iter().map(|x| x / s).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn the_hessian_is_symmetric_and_chunk_free_with_fixed_statistics() {
    let mut cpu_products: Vec<Vec<f64>> = Vec::new();
    for device in devices().unwrap() {
        let products = symmetric_and_chunk_free_on(device);
        if device == Device::Cpu {
            cpu_products = products;
        } else {
            for (k, (a, b)) in cpu_products.iter().zip(&products).enumerate() {
                assert_close(&format!("Hv {k}"), device, a, b, 1e-3).unwrap();
            }
        }
    }
}

/// The symmetry, kept-graph, chunk and BN-mode checks on `device`; returns the
/// products of the whole-batch operator.
fn symmetric_and_chunk_free_on(device: Device) -> Vec<Vec<f64>> {
    let data = random_data_on(20, 2, device);
    let model = smooth_model(&data);
    let whole = LossHessian::new(&model, &data, 20, HessianBn::Fixed).unwrap();
    let chunked = LossHessian::new(&model, &data, 7, HessianBn::Fixed).unwrap();
    let batch = LossHessian::new(&model, &data, 20, HessianBn::Batch).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut products = Vec::new();
    for _ in 0..3 {
        let (u, v) = (unit(&mut rng, whole.dim()), unit(&mut rng, whole.dim()));
        let (hu, hv) = (whole.hvp(&u).unwrap(), whole.hvp(&v).unwrap());
        let scale = norm(&hu).max(norm(&hv));
        assert!(scale > 0.0);
        // Symmetry: u'Hv = v'Hu.
        let asym = (dot(&u, &hv) - dot(&v, &hu)).abs();
        assert!(asym < 1e-4 * scale, "u'Hv - v'Hu = {asym} (|Hv| {scale})");
        // One chunk keeps the gradient's graph after the first product: a
        // later product equals a fresh operator's first one.
        let fresh = LossHessian::new(&model, &data, 20, HessianBn::Fixed)
            .unwrap()
            .hvp(&v)
            .unwrap();
        let d: Vec<f64> = hv.iter().zip(&fresh).map(|(a, b)| a - b).collect();
        assert!(
            norm(&d) <= 1e-6 * norm(&hv),
            "kept graph vs fresh {}",
            norm(&d) / norm(&hv)
        );
        // Chunks of 7 (3 chunks) give the same product as one chunk of 20.
        let hc = chunked.hvp(&v).unwrap();
        let d: Vec<f64> = hv.iter().zip(&hc).map(|(a, b)| a - b).collect();
        assert!(
            norm(&d) < 1e-4 * norm(&hv),
            "chunk dependence {}",
            norm(&d) / norm(&hv)
        );
        // Batch statistics make another function of the weights, hence another Hessian.
        let hb = batch.hvp(&v).unwrap();
        let d: Vec<f64> = hv.iter().zip(&hb).map(|(a, b)| a - b).collect();
        assert!(
            norm(&d) > 1e-3 * norm(&hv),
            "batch and fixed BN gave the same product"
        );
        products.push(hu);
        products.push(hv);
    }
    products
}

#[test]
fn gradient_and_jacobian_shapes_and_errors() {
    let data = random_data(6, 3);
    let model = smooth_model(&data);
    let h = LossHessian::new(&model, &data, 4, HessianBn::Fixed).unwrap();
    assert_eq!(h.dim(), model.num_params());
    let (loss, g) = h.loss_and_gradient().unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    assert_eq!(g.len(), h.dim());
    let j = h.output_jacobian().unwrap();
    assert_eq!(j.len(), 6 * 10);
    assert!(j.iter().all(|r| r.len() == h.dim()));
    assert!(
        h.hvp(&[1.0]).is_err(),
        "a vector of the wrong length is refused"
    );
    assert!(LossHessian::new(&model, &data, 0, HessianBn::Fixed).is_err());
}
