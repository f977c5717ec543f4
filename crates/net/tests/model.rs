//! The network's shape, its agreement with PyTorch, and export/import.
//!
//! Reference numbers come from this script, run with the same torch 2.13 the
//! crate links (`PYTHONPATH=~/.cache/landscape/torch-2.13.0-cp311 python3 ref.py`):
//!
//! ```python
//! import math, torch
//! import torch.nn.functional as F
//! torch.set_num_threads(1)
//! widths, classes = [4, 5, 6, 7], 10
//! def det(n, l, scale):  # deterministic values, computed in f64 then rounded to f32
//!     return torch.tensor([scale * math.sin(0.7 * i + 1.3 * l + 0.1) for i in range(n)], dtype=torch.float32)
//! ins, outs = [3] + widths, widths + [classes]
//! layers = []
//! for l, (ci, co) in enumerate(zip(ins, outs)):
//!     fan = ci * 9
//!     w = det(co * fan, l, 1.0 / math.sqrt(fan)).view(co, ci, 3, 3)
//!     b = det(co, l + 10, 0.1)
//!     rm = torch.tensor([0.1 * math.sin(c + l) for c in range(co)], dtype=torch.float32)
//!     rv = torch.tensor([1.0 + 0.5 * math.cos(0.3 * c + l) ** 2 for c in range(co)], dtype=torch.float32)
//!     layers.append((w, b, rm, rv))
//! x = torch.tensor([math.cos(0.37 * i) for i in range(3 * 3 * 32 * 32)], dtype=torch.float32).view(3, 3, 32, 32)
//! def act(z, poly):
//!     if poly is None: return F.relu(z)
//!     acc = torch.zeros_like(z)
//!     for c in reversed(poly): acc = acc * z + c
//!     return acc
//! def forward(train, poly=None):
//!     h = x
//!     for l, (w, b, rm, rv) in enumerate(layers):
//!         h = F.conv2d(h, w, b, stride=2, padding=1)
//!         if l < 4:
//!             h = act(F.batch_norm(h, rm, rv, None, None, train, 0.1, 1e-5), poly)
//!     return h.flatten(1)
//! fmt = lambda t: ", ".join(f"{v:.7e}" for v in t.flatten().tolist())
//! print("EVAL_RELU", fmt(forward(False)))
//! print("TRAIN_RELU", fmt(forward(True)))
//! print("RUNNING_MEAN_L2", fmt(layers[0][2]))  # after one train-mode pass
//! print("RUNNING_VAR_L5", fmt(layers[3][3]))
//! print("TRAIN_POLY", fmt(forward(True, [0.1, 0.5, 0.3, -0.02])))
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::excessive_precision,
    clippy::disallowed_methods
)] // host tensors on purpose (CPU tests)
use landscape_net::tch::{Device, Kind, Tensor};
use landscape_net::{Activation, Dcnn, NamedTensor, NetConfig, NetError};

const EVAL_RELU: [f32; 30] = [
    -3.9090578e-02,
    2.1768395e-02,
    7.5484596e-02,
    9.3848586e-02,
    6.5275580e-02,
    2.9473961e-04,
    -7.3362641e-02,
    -1.2376643e-01,
    -1.2976727e-01,
    -9.0908244e-02,
    -2.7586633e-02,
    3.3589173e-02,
    8.7458611e-02,
    1.0581016e-01,
    7.7059209e-02,
    1.1737327e-02,
    -6.2419426e-02,
    -1.1347403e-01,
    -1.2026809e-01,
    -8.2333721e-02,
    -5.0569564e-02,
    1.1920667e-02,
    6.7404374e-02,
    8.7647691e-02,
    6.1039839e-02,
    -1.9172446e-03,
    -7.3520273e-02,
    -1.2186750e-01,
    -1.2583809e-01,
    -8.5003145e-02,
];
const TRAIN_RELU: [f32; 30] = [
    1.5051856e+00,
    1.3923753e+00,
    1.2534559e+00,
    1.0628836e+00,
    8.1196481e-01,
    5.1430547e-01,
    2.0085685e-01,
    -9.3132988e-02,
    -3.4314370e-01,
    -5.4534191e-01,
    1.3282055e+00,
    1.2451096e+00,
    1.1379427e+00,
    9.8072112e-01,
    7.6429009e-01,
    5.0177836e-01,
    2.2365052e-01,
    -3.5333797e-02,
    -2.5113890e-01,
    -4.2040455e-01,
    1.3982759e-01,
    1.9157018e-01,
    2.3382033e-01,
    2.3852713e-01,
    1.9429496e-01,
    1.1186958e-01,
    1.9223664e-02,
    -5.1449835e-02,
    -7.8721128e-02,
    -6.1838921e-02,
];
const RUNNING_MEAN_L2: [f32; 4] = [5.0118151e-03, 8.5094295e-02, 9.1110602e-02, 1.7489815e-02];
const RUNNING_VAR_L5: [f32; 7] = [
    1.3781674e+00,
    1.3783380e+00,
    1.3035151e+00,
    1.1804851e+00,
    1.0527537e+00,
    9.6532661e-01,
    9.4897228e-01,
];
const TRAIN_POLY: [f32; 30] = [
    7.5813931e-01,
    6.8643659e-01,
    5.9839362e-01,
    4.6776232e-01,
    2.8501984e-01,
    6.2828660e-02,
    -1.6890436e-01,
    -3.7606171e-01,
    -5.3532481e-01,
    -6.4411592e-01,
    1.1516045e+00,
    1.0457257e+00,
    9.1853428e-01,
    7.4432456e-01,
    5.1417685e-01,
    2.4140933e-01,
    -4.3371290e-02,
    -3.0531332e-01,
    -5.2034020e-01,
    -6.8510246e-01,
    8.3617896e-02,
    1.3892302e-01,
    1.8546414e-01,
    1.9513124e-01,
    1.5645975e-01,
    8.0118589e-02,
    -6.0037090e-03,
    -6.9804490e-02,
    -8.9949034e-02,
    -6.5784767e-02,
];

fn det(n: usize, l: usize, scale: f64) -> Vec<f32> {
    (0..n)
        .map(|i| (scale * (0.7 * i as f64 + 1.3 * l as f64 + 0.1).sin()) as f32)
        .collect()
}

/// The fixed weights of `ref.py`, as named tensors.
fn reference_tensors() -> Vec<NamedTensor> {
    let widths = [4usize, 5, 6, 7];
    let ins = [3usize, 4, 5, 6, 7];
    let outs = [4usize, 5, 6, 7, 10];
    let mut out = Vec::new();
    for l in 0..5 {
        let (ci, co) = (ins[l], outs[l]);
        let fan = ci * 9;
        let n = l + 2;
        out.push(NamedTensor {
            name: format!("layer{n}.weight"),
            shape: vec![co, ci, 3, 3],
            data: det(co * fan, l, 1.0 / (fan as f64).sqrt()),
        });
        out.push(NamedTensor {
            name: format!("layer{n}.bias"),
            shape: vec![co],
            data: det(co, l + 10, 0.1),
        });
        if l < widths.len() {
            let rm = (0..co)
                .map(|c| (0.1 * ((c + l) as f64).sin()) as f32)
                .collect();
            let rv = (0..co)
                .map(|c| (1.0 + 0.5 * (0.3 * c as f64 + l as f64).cos().powi(2)) as f32)
                .collect();
            out.push(NamedTensor {
                name: format!("layer{n}.bn.running_mean"),
                shape: vec![co],
                data: rm,
            });
            out.push(NamedTensor {
                name: format!("layer{n}.bn.running_var"),
                shape: vec![co],
                data: rv,
            });
        }
    }
    out
}

fn reference_input() -> Tensor {
    let x: Vec<f32> = (0..3 * 3 * 32 * 32)
        .map(|i| (0.37 * i as f64).cos() as f32)
        .collect();
    Tensor::from_slice(&x).view([3, 3, 32, 32])
}

fn small_config() -> NetConfig {
    NetConfig {
        widths: vec![4, 5, 6, 7],
        classes: 10,
        activation: Activation::Relu,
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.flatten(0, -1).to_kind(Kind::Float).to_device(Device::Cpu)).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, PyTorch gives {w}"
        );
    }
}

fn named<'a>(tensors: &'a [NamedTensor], name: &str) -> &'a NamedTensor {
    tensors.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn paper_network_has_the_stated_parameter_count_and_output_shape() {
    let cfg = NetConfig::paper();
    assert_eq!(cfg.widths, vec![32, 64, 152, 56]);
    assert_eq!(cfg.param_count(), 188_810);
    let rel = (cfg.param_count() as f64 - 188_810.0).abs() / 188_810.0;
    assert!(
        rel < 0.02,
        "paper preset is {:.2}% away from 188,810",
        rel * 100.0
    );
    let net = Dcnn::new(&cfg, Device::Cpu, 1).unwrap();
    assert_eq!(net.num_params(), cfg.param_count());
    let xs = Tensor::zeros([5, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert_eq!(net.forward_t(&xs, false).size(), vec![5, 10]);
    assert_eq!(net.forward_t(&xs, true).size(), vec![5, 10]);
    assert_eq!(
        net.layer_tensor_names(2),
        vec!["layer2.weight", "layer2.bias"]
    );
    assert_eq!(
        net.layer_tensor_names(6),
        vec!["layer6.weight", "layer6.bias"]
    );
    assert!(net.layer_tensor_names(7).is_empty());
    let names: Vec<String> = net.export().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names.len(), 4 * 4 + 2);
    assert_eq!(
        &names[..4],
        [
            "layer2.weight",
            "layer2.bias",
            "layer2.bn.running_mean",
            "layer2.bn.running_var"
        ]
    );
    assert_eq!(&names[16..], ["layer6.weight", "layer6.bias"]);
    assert!(matches!(
        net.f_forward_t(
            &Tensor::zeros([2, 3, 16, 16], (Kind::Float, Device::Cpu)),
            false
        ),
        Err(NetError::Tensor { .. })
    ));
}

#[test]
fn fewer_layers_average_the_last_feature_map() {
    let cfg = NetConfig {
        widths: vec![8, 8],
        classes: 3,
        activation: Activation::Relu,
    };
    assert_eq!(
        cfg.param_count(),
        (27 + 1) * 8 + (72 + 1) * 8 + (72 + 1) * 3
    );
    let net = Dcnn::new(&cfg, Device::Cpu, 0).unwrap();
    let xs = Tensor::ones([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert_eq!(net.forward_t(&xs, false).size(), vec![2, 3]);
    let bad = NetConfig {
        widths: vec![8; 5],
        ..NetConfig::paper()
    };
    assert!(matches!(bad.validate(), Err(NetError::Config { .. })));
    let bad = NetConfig {
        widths: vec![8, 0, 8, 8],
        ..NetConfig::paper()
    };
    match bad.validate() {
        Err(NetError::Config { field, .. }) => assert_eq!(field, "widths[1]"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// On every device (the CPU, plus CUDA when available): the same numbers as
/// PyTorch within 1e-5.
#[test]
fn forward_matches_pytorch_on_fixed_weights() {
    for device in landscape_net::testing::devices().unwrap() {
        forward_matches_pytorch_on(device);
    }
}

fn forward_matches_pytorch_on(device: Device) {
    let mut net = Dcnn::new(&small_config(), device, 0).unwrap();
    net.import(&reference_tensors()).unwrap();
    let xs = reference_input().to_device(device);
    let eval = tch_no_grad(|| net.forward_t(&xs, false));
    assert_close(&values(&eval), &EVAL_RELU, 1e-5, "eval-mode logits");
    let train = net.forward_t(&xs, true);
    assert_close(&values(&train), &TRAIN_RELU, 1e-5, "train-mode logits");
    let exported = net.export().unwrap();
    assert_close(
        &named(&exported, "layer2.bn.running_mean").data,
        &RUNNING_MEAN_L2,
        1e-5,
        "layer 2 running mean",
    );
    assert_close(
        &named(&exported, "layer5.bn.running_var").data,
        &RUNNING_VAR_L5,
        1e-5,
        "layer 5 running var",
    );
    net.set_activation(Activation::Poly {
        coefficients: vec![0.1, 0.5, 0.3, -0.02],
        radius: 3.0,
    })
    .unwrap();
    let poly = net.forward_t(&xs, true);
    assert_close(
        &values(&poly),
        &TRAIN_POLY,
        1e-5,
        "train-mode logits, polynomial activation",
    );
}

fn tch_no_grad<T>(f: impl FnOnce() -> T) -> T {
    landscape_net::tch::no_grad(f)
}

#[test]
fn export_import_round_trips_bit_exact() {
    let cfg = NetConfig {
        widths: vec![6, 7, 8, 9],
        ..NetConfig::paper()
    };
    let a = Dcnn::new(&cfg, Device::Cpu, 11).unwrap();
    // Make the BN statistics non-trivial.
    let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let _ = a.forward_t(&xs, true);
    let exported = a.export().unwrap();
    let mut b = Dcnn::new(&cfg, Device::Cpu, 12).unwrap();
    assert_ne!(b.export().unwrap(), exported);
    b.import(&exported).unwrap();
    let again = b.export().unwrap();
    for (x, y) in exported.iter().zip(&again) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.shape, y.shape);
        let xb: Vec<u32> = x.data.iter().map(|v| v.to_bits()).collect();
        let yb: Vec<u32> = y.data.iter().map(|v| v.to_bits()).collect();
        assert_eq!(xb, yb, "{}", x.name);
    }
    let c = b.try_clone().unwrap();
    assert_eq!(c.export().unwrap(), exported);
    // A clone is independent of its source.
    let _ = b.forward_t(&xs, true);
    assert_eq!(c.export().unwrap(), exported);

    // Shape, name and count checks, and nothing changes on failure.
    let mut wrong = exported.clone();
    wrong[4].shape = vec![7, 6, 3, 1];
    match b.import(&wrong) {
        Err(NetError::Tensor { name, .. }) => assert_eq!(name, "layer3.weight"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    let mut wrong = exported.clone();
    wrong.swap(0, 1);
    assert!(matches!(b.import(&wrong), Err(NetError::Tensor { .. })));
    assert!(matches!(
        b.import(&exported[1..]),
        Err(NetError::Tensor { .. })
    ));
    let mut wrong = exported.clone();
    wrong[0].data.pop();
    assert!(matches!(b.import(&wrong), Err(NetError::Tensor { .. })));
    let before = c.export().unwrap();
    let mut c2 = c.try_clone().unwrap();
    assert!(c2.import(&wrong).is_err());
    assert_eq!(c2.export().unwrap(), before);
}

#[test]
fn initialisation_is_seeded_and_pytorch_scaled() {
    let cfg = NetConfig::paper();
    let a = Dcnn::new(&cfg, Device::Cpu, 5).unwrap().export().unwrap();
    let b = Dcnn::new(&cfg, Device::Cpu, 5).unwrap().export().unwrap();
    let c = Dcnn::new(&cfg, Device::Cpu, 6).unwrap().export().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Kaiming-uniform(a = sqrt 5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so std = bound / sqrt 3.
    let w3 = named(&a, "layer3.weight");
    // layer 3's fan-in is layer 2's width times the 3x3 kernel.
    let bound = 1.0 / ((cfg.widths[0] * 9) as f64).sqrt();
    assert!(w3.data.iter().all(|&v| f64::from(v).abs() <= bound));
    let n = w3.data.len() as f64;
    let var = w3.data.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
    assert!((var.sqrt() / (bound / 3f64.sqrt()) - 1.0).abs() < 0.02);
    assert!(named(&a, "layer4.bn.running_mean")
        .data
        .iter()
        .all(|&v| v == 0.0));
    assert!(named(&a, "layer4.bn.running_var")
        .data
        .iter()
        .all(|&v| v == 1.0));
}

#[test]
fn config_serde_is_tagged_and_strict() {
    let cfg = NetConfig::paper();
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(
        json,
        r#"{"widths":[32,64,152,56],"classes":10,"activation":{"kind":"relu"}}"#
    );
    let poly: NetConfig = serde_json::from_str(
        r#"{"activation":{"kind":"poly","coefficients":[0.0,0.5,0.25],"radius":4.0}}"#,
    )
    .unwrap();
    assert_eq!(poly.widths, cfg.widths);
    assert_eq!(
        poly.activation,
        Activation::Poly {
            coefficients: vec![0.0, 0.5, 0.25],
            radius: 4.0
        }
    );
    assert!(serde_json::from_str::<NetConfig>(r#"{"width":[1]}"#).is_err());
    assert_eq!(
        "cpu".parse::<landscape_net::DeviceChoice>().unwrap(),
        landscape_net::DeviceChoice::Cpu
    );
    assert!("tpu".parse::<landscape_net::DeviceChoice>().is_err());
    assert_eq!(
        landscape_net::DeviceChoice::Cpu.resolve().unwrap(),
        Device::Cpu
    );
}

#[test]
fn preactivations_per_example_counts_hidden_units() {
    let m = landscape_net::Dcnn::new(
        &landscape_net::NetConfig::paper(),
        landscape_net::tch::Device::Cpu,
        0,
    )
    .unwrap();
    assert_eq!(
        m.preactivations_per_example(),
        32 * 16 * 16 + 64 * 8 * 8 + 152 * 4 * 4 + 56 * 2 * 2
    );
}
