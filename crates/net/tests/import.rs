//! PyTorch state_dicts of the paper's architecture, read from `.safetensors`
//! and `torch.save` files, against reference numbers computed by PyTorch.
//!
//! The fixtures in `tests/fixtures/pytorch/` and the numbers below come from
//! `tests/fixtures/pytorch/make_fixture.py` (torch 2.13, one thread):
//!
//! ```python
//! torch.manual_seed(0)
//! model = paper_net(widths=(4, 6, 8, 6))        # conv/BN(affine=False)/ReLU x4, conv, Flatten
//! model.train()
//! with torch.no_grad():
//!     for _ in range(3):                        # non-trivial BN running statistics
//!         model(torch.randn(16, 3, 32, 32) * 1.5 + 0.3)
//!     model[-2].weight.mul_(20.0); model[-2].bias.mul_(20.0)
//! model.eval()
//! torch.save(model.state_dict(), "small.pt")    # and small.safetensors, small_module_f64.safetensors
//! i = torch.arange(8 * 3 * 32 * 32)
//! x = (((37 * i) % 101 - 50).to(torch.float32) / 25.0).view(8, 3, 32, 32)
//! labels = torch.arange(8) % 10
//! logits = model(x); loss = F.cross_entropy(logits, labels)
//! # small: eval-mode loss 3.08571911
//! # small: logits[0] [2.0155592, -1.61567676, 0.074408412, -0.693658292, ...]
//! # other (seed 1): eval-mode loss 3.2279954
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // host tensors on purpose (CPU tests)
use std::path::{Path, PathBuf};

use landscape_net::{
    evaluate, Data, NetConfig, NetError, StateDict, StateDictFormat, StateDictLayout,
};
use tch::{Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// The probe input of make_fixture.py and its labels.
fn probe() -> Data {
    let n = 8 * 3 * 32 * 32;
    let x: Vec<f32> = (0..n)
        .map(|i: i64| ((37 * i) % 101 - 50) as f32 / 25.0)
        .collect();
    let labels: Vec<u8> = (0..8u8).map(|i| i % 10).collect();
    Data::new(&x, &labels, Device::Cpu).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-3)
}

const SMALL_LOSS: f64 = 3.08571911;
const SMALL_LOGITS_0: [f64; 10] = [
    2.0155592,
    -1.61567676,
    0.074408412,
    -0.693658292,
    -1.35743606,
    -0.244093806,
    -0.844543099,
    1.63330948,
    -1.59497356,
    0.764078617,
];
const SMALL_LOGITS_7: [f64; 10] = [
    1.97446442,
    -1.61259782,
    0.301975429,
    -0.825646341,
    -1.25545859,
    -0.0841812193,
    -0.666584134,
    1.68518519,
    -1.78082013,
    0.809469581,
];
const OTHER_LOSS: f64 = 3.2279954;
const OTHER_LOGITS_0: [f64; 10] = [
    1.83975196,
    0.967204928,
    0.551103473,
    -1.86208653,
    -2.44217658,
    0.183389068,
    -1.68258905,
    2.67880464,
    1.3905406,
    -0.95138216,
];

fn check_against_pytorch(sd: &StateDict, loss: f64, logits0: &[f64], logits7: Option<&[f64]>) {
    tch::set_num_threads(1);
    assert_eq!(sd.config.widths, vec![4, 6, 8, 6]);
    assert_eq!(sd.config.classes, 10);
    let model = sd.to_model(Device::Cpu).unwrap();
    let data = probe();
    let e = evaluate(&model, &data, 8).unwrap();
    assert!(
        close(e.loss, loss, 1e-5),
        "{}: loss {} vs PyTorch {loss}",
        sd.file.display(),
        e.loss
    );
    let logits = tch::no_grad(|| model.f_forward_t(&data.images(), false)).unwrap();
    let row = |r: i64| -> Vec<f64> {
        let t = logits.get(r).to_kind(Kind::Double);
        Vec::<f64>::try_from(&t).unwrap()
    };
    for (r, want) in [(0, Some(logits0)), (7, logits7)] {
        let Some(want) = want else { continue };
        for (k, (got, want)) in row(r).iter().zip(want).enumerate() {
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(0.1),
                "{}: logits[{r}][{k}] {got} vs PyTorch {want}",
                sd.file.display()
            );
        }
    }
}

#[test]
fn torch_save_matches_pytorch() {
    let sd = StateDict::read(&fixture("small.pt"), None).unwrap();
    assert_eq!(sd.format, StateDictFormat::TorchSave);
    assert_eq!(sd.layout, StateDictLayout::Sequential);
    assert_eq!(sd.prefix, None);
    assert_eq!(sd.ignored.len(), 4, "{:?}", sd.ignored);
    assert!(sd.converted.is_empty());
    check_against_pytorch(&sd, SMALL_LOSS, &SMALL_LOGITS_0, Some(&SMALL_LOGITS_7));
    let other = StateDict::read(&fixture("other.pt"), None).unwrap();
    check_against_pytorch(&other, OTHER_LOSS, &OTHER_LOGITS_0, None);
}

#[test]
fn safetensors_matches_pytorch() {
    let sd = StateDict::read(&fixture("small.safetensors"), None).unwrap();
    assert_eq!(sd.format, StateDictFormat::Safetensors);
    assert_eq!(sd.layout, StateDictLayout::Landscape);
    check_against_pytorch(&sd, SMALL_LOSS, &SMALL_LOGITS_0, Some(&SMALL_LOGITS_7));
}

#[test]
fn both_layouts_prefix_and_float64_give_identical_weights() {
    let seq = StateDict::read(&fixture("small.pt"), None).unwrap();
    let land = StateDict::read(&fixture("small.safetensors"), None).unwrap();
    let f64_module = StateDict::read(&fixture("small_module_f64.safetensors"), None).unwrap();
    assert_eq!(f64_module.layout, StateDictLayout::Sequential);
    assert_eq!(f64_module.prefix.as_deref(), Some("module."));
    assert_eq!(f64_module.converted.len(), 18);
    assert!(f64_module
        .converted
        .iter()
        .all(|(n, t)| n.starts_with("module.") && t == "float64"));
    assert_eq!(seq.tensors, land.tensors);
    assert_eq!(seq.tensors, f64_module.tensors);
    assert_eq!(seq.config, land.config);
    // Names and order are those of the network's own export.
    let model = seq.to_model(Device::Cpu).unwrap();
    let names: Vec<String> = seq.tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, model.tensor_names());
    assert_eq!(model.export().unwrap(), seq.tensors);
    // A given configuration is checked, not inferred.
    let cfg = NetConfig {
        widths: vec![4, 6, 8, 6],
        ..NetConfig::paper()
    };
    assert_eq!(
        StateDict::read(&fixture("small.pt"), Some(&cfg))
            .unwrap()
            .tensors,
        seq.tensors
    );
    let err = StateDict::read(&fixture("small.pt"), Some(&NetConfig::paper()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`0.weight` (layer2.weight) has shape [4, 3, 3, 3], expected [32, 3, 3, 3]"),
        "{err}"
    );
}

/// Writes `tensors` (name, shape, float32 values) as a .safetensors file.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<i64>, Kind, Vec<f64>)]) {
    let owned: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, s, k, v)| {
            (
                n.clone(),
                Tensor::from_slice(v).view(s.as_slice()).to_kind(*k),
            )
        })
        .collect();
    Tensor::write_safetensors(&owned, path).unwrap();
}

/// The small network's tensors under sequential names, as f64 values.
fn sequential_tensors() -> Vec<(String, Vec<i64>, Kind, Vec<f64>)> {
    let sd = StateDict::read(&fixture("small.pt"), None).unwrap();
    sd.tensors
        .iter()
        .map(|t| {
            let layer: usize = t.name[5..6].parse().unwrap();
            let i = 3 * (layer - 2);
            let name = match t.name.rsplit_once('.').unwrap().1 {
                f @ ("weight" | "bias") => format!("{i}.{f}"),
                f => format!("{}.{f}", i + 1),
            };
            (
                name,
                t.shape.iter().map(|&d| d as i64).collect(),
                Kind::Float,
                t.data.iter().map(|&v| f64::from(v)).collect(),
            )
        })
        .collect()
}

fn import_error(path: &Path) -> String {
    match StateDict::read(path, None) {
        Err(e @ NetError::Import { .. }) => e.to_string(),
        other => panic!("expected an import error, got {other:?}"),
    }
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = sequential_tensors();
    // Missing.
    let p = dir.path().join("missing.safetensors");
    let t: Vec<_> = base
        .iter()
        .filter(|t| t.0 != "7.running_var")
        .cloned()
        .collect();
    write_safetensors(&p, &t);
    let err = import_error(&p);
    assert!(err.contains("missing.safetensors"), "{err}");
    assert!(
        err.contains("missing `7.running_var` (layer4.bn.running_var) [8]"),
        "{err}"
    );
    assert!(err.contains("accepted layouts"), "{err}");
    // Extra (an affine BN's weight) and mis-shaped (a bias too long) at once.
    let p = dir.path().join("extra.safetensors");
    let mut t = base.clone();
    t.push(("4.weight".into(), vec![6], Kind::Float, vec![1.0; 6]));
    for x in &mut t {
        if x.0 == "3.bias" {
            *x = ("3.bias".into(), vec![7], Kind::Float, vec![0.5; 7]);
        }
    }
    write_safetensors(&p, &t);
    let err = import_error(&p);
    assert!(err.contains("extra `4.weight` [6]"), "{err}");
    assert!(
        err.contains("`3.bias` (layer3.bias) has shape [7], expected [6]"),
        "{err}"
    );
    // Landscape names: a missing layer's weight and an unknown name.
    let p = dir.path().join("landscape.safetensors");
    let sd = StateDict::read(&fixture("small.pt"), None).unwrap();
    let mut t: Vec<_> = sd
        .tensors
        .iter()
        .filter(|t| t.name != "layer6.weight")
        .map(|t| {
            (
                t.name.clone(),
                t.shape.iter().map(|&d| d as i64).collect::<Vec<_>>(),
                Kind::Float,
                t.data.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            )
        })
        .collect();
    t.push(("fc.weight".into(), vec![2], Kind::Float, vec![0.0; 2]));
    write_safetensors(&p, &t);
    let err = import_error(&p);
    assert!(
        err.contains("missing `layer6.weight` [10, 6, 3, 3]"),
        "{err}"
    );
    assert!(err.contains("extra `fc.weight` [2]"), "{err}");
    // float16 is converted; integers are refused.
    let p = dir.path().join("half.safetensors");
    let t: Vec<_> = base
        .iter()
        .map(|(n, s, _, v)| (n.clone(), s.clone(), Kind::Half, v.clone()))
        .collect();
    write_safetensors(&p, &t);
    let half = StateDict::read(&p, None).unwrap();
    assert_eq!(half.converted.len(), 18);
    assert!(half.converted.iter().all(|(_, k)| k == "float16"));
    let p = dir.path().join("int.safetensors");
    let mut t = base.clone();
    t[0].2 = Kind::Int64;
    write_safetensors(&p, &t);
    let err = import_error(&p);
    assert!(
        err.contains("tensor `0.weight` has element type int64"),
        "{err}"
    );
    // Not a state_dict at all.
    let p = dir.path().join("junk.pt");
    std::fs::write(&p, b"not a model").unwrap();
    let err = import_error(&p);
    assert!(
        err.contains("junk.pt") && err.contains("torch.save"),
        "{err}"
    );
}
