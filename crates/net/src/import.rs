//! Networks trained elsewhere: a PyTorch `state_dict` of the paper's
//! architecture, read from a `.safetensors` file or from a `.pt`/`.pth` file
//! written by `torch.save(model.state_dict(), path)`.
//!
//! # Accepted names
//!
//! Two layouts, optionally under a `module.` (DataParallel) or `_orig_mod.`
//! (`torch.compile`) prefix on every name:
//!
//! - **landscape** (the names of [`Dcnn::tensor_names`]): `layer2.weight`,
//!   `layer2.bias`, `layer2.bn.running_mean`, `layer2.bn.running_var`, ...,
//!   and the last convolution's `layer6.weight`, `layer6.bias` (no BN);
//! - **sequential** (the `nn.Sequential` of `paper_net()` in
//!   `crates/net/benches/train_bench.py`: conv, `BatchNorm2d(affine=False)`,
//!   ReLU, four times, then the last conv and `Flatten`): `0.weight`,
//!   `0.bias`, `1.running_mean`, `1.running_var`, `1.num_batches_tracked`,
//!   `3.weight`, ..., `12.weight`, `12.bias`. Hidden convolution `i`
//!   (0-based) is module `3 i`, its BN module `3 i + 1`.
//!
//! `num_batches_tracked` is ignored. The widths and the number of classes
//! are read from the shapes (activation ReLU), or checked against a given
//! [`NetConfig`]. Every missing, extra and mis-shaped tensor is named in one
//! error. Tensors stored as `float64`, `float16` or `bfloat16` are converted
//! to `f32` (and listed in [`StateDict::converted`]); other element types are
//! refused.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::config::KERNEL;
use crate::model::tensor_values;
use crate::{Dcnn, NamedTensor, NetConfig, NetError, FIRST_LAYER};

/// What the error messages say about the accepted names.
pub const ACCEPTED_LAYOUTS: &str = "accepted layouts: landscape's names (`layer2.weight`, \
`layer2.bias`, `layer2.bn.running_mean`, `layer2.bn.running_var`, ..., `layer6.weight`, \
`layer6.bias`) or the nn.Sequential of paper_net() (`0.weight`, `0.bias`, `1.running_mean`, \
`1.running_var`, `3.weight`, ..., `12.weight`, `12.bias`), optionally all under `module.` or \
`_orig_mod.`; `num_batches_tracked` is ignored";

/// The file format of a state_dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateDictFormat {
    /// A `.safetensors` file.
    Safetensors,
    /// A zip archive written by `torch.save` (PyTorch >= 1.6 default).
    TorchSave,
}

impl StateDictFormat {
    /// `safetensors` or `torch.save`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateDictFormat::Safetensors => "safetensors",
            StateDictFormat::TorchSave => "torch.save",
        }
    }
}

/// How the tensors of a state_dict are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateDictLayout {
    /// `layer2.weight`, `layer2.bn.running_mean`, ...
    Landscape,
    /// `0.weight`, `1.running_mean`, ... (the `nn.Sequential` of `paper_net()`).
    Sequential,
}

impl StateDictLayout {
    /// `landscape` or `sequential`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateDictLayout::Landscape => "landscape",
            StateDictLayout::Sequential => "sequential",
        }
    }
}

/// One tensor as read from a file, before any renaming.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// The name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type in the file (`float32`, `float64`, `int64`, ...).
    pub dtype: String,
    /// Its values as `f32` (empty for the ignored integer `num_batches_tracked`).
    pub data: Vec<f32>,
}

/// A state_dict of the paper's network, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct StateDict {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its format.
    pub format: StateDictFormat,
    /// Its naming layout.
    pub layout: StateDictLayout,
    /// The prefix stripped from every name (`module.`), if any.
    pub prefix: Option<String>,
    /// The network (inferred from the shapes, or the one asked for).
    pub config: NetConfig,
    /// The tensors under landscape's names, in [`Dcnn::export`] order.
    pub tensors: Vec<NamedTensor>,
    /// `(name in the file, element type)` of every tensor converted to `f32`.
    pub converted: Vec<(String, String)>,
    /// Names in the file that were ignored (`num_batches_tracked`).
    pub ignored: Vec<String>,
}

fn fail(file: &Path, reason: impl Into<String>) -> NetError {
    NetError::Import {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads every tensor of a `.safetensors` file or a `torch.save` zip.
pub fn read_tensors(path: &Path) -> Result<(StateDictFormat, Vec<RawTensor>), NetError> {
    let bytes = std::fs::read(path).map_err(|e| fail(path, format!("cannot read: {e}")))?;
    let by_ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_zip = bytes.starts_with(b"PK\x03\x04");
    if by_ext.as_deref() == Some("safetensors") || (!is_zip && bytes.get(8) == Some(&b'{')) {
        Ok((
            StateDictFormat::Safetensors,
            read_safetensors(path, &bytes)?,
        ))
    } else if is_zip {
        drop(bytes);
        Ok((StateDictFormat::TorchSave, read_torch_save(path)?))
    } else {
        Err(fail(
            path,
            "neither a .safetensors file nor a zip archive written by torch.save (files in \
             PyTorch's legacy pre-1.6 format are not read: load and save again with \
             torch.save(model.state_dict(), path) in a recent PyTorch)",
        ))
    }
}

fn kind_of(dtype: safetensors::Dtype) -> Option<(Kind, &'static str)> {
    use safetensors::Dtype as D;
    Some(match dtype {
        D::F32 => (Kind::Float, "float32"),
        D::F64 => (Kind::Double, "float64"),
        D::F16 => (Kind::Half, "float16"),
        D::BF16 => (Kind::BFloat16, "bfloat16"),
        D::I64 => (Kind::Int64, "int64"),
        D::I32 => (Kind::Int, "int32"),
        D::I16 => (Kind::Int16, "int16"),
        D::I8 => (Kind::Int8, "int8"),
        D::U8 => (Kind::Uint8, "uint8"),
        D::BOOL => (Kind::Bool, "bool"),
        _ => return None,
    })
}

fn kind_name(kind: Kind) -> String {
    match kind {
        Kind::Float => "float32".into(),
        Kind::Double => "float64".into(),
        Kind::Half => "float16".into(),
        Kind::BFloat16 => "bfloat16".into(),
        Kind::Int64 => "int64".into(),
        Kind::Int => "int32".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// A tensor's values as `f32` (refusing non-float element types except for
/// the ignored `num_batches_tracked`).
fn raw(path: &Path, name: String, t: &Tensor) -> Result<RawTensor, NetError> {
    let kind = t.kind();
    let shape = t
        .size()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let dtype = kind_name(kind);
    let data = if is_float(kind) {
        tensor_values(t)?
    } else if is_counter(&name) {
        Vec::new()
    } else {
        return Err(fail(
            path,
            format!(
                "tensor `{name}` has element type {dtype}: weights and BN statistics must be \
                 float32 (float64, float16 and bfloat16 are converted to float32)"
            ),
        ));
    };
    Ok(RawTensor {
        name,
        shape,
        dtype,
        data,
    })
}

fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<Vec<RawTensor>, NetError> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| fail(path, format!("not a valid .safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let Some((kind, dtype)) = kind_of(view.dtype()) else {
            return Err(fail(
                path,
                format!(
                    "tensor `{name}` has element type {:?}, which is not read (use float32)",
                    view.dtype()
                ),
            ));
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| fail(path, format!("tensor `{name}` ({dtype}, {shape:?}): {e}")))?;
        out.push(raw(path, name, &t)?);
    }
    Ok(out)
}

fn read_torch_save(path: &Path) -> Result<Vec<RawTensor>, NetError> {
    let named = crate::torch_zip::read(path).map_err(|e| {
        fail(
            path,
            format!(
                "cannot read as a torch.save of a state_dict (a flat dict of tensors; save with \
                 torch.save(model.state_dict(), path), not torch.save(model, path) nor a dict \
                 holding the state_dict): {e}"
            ),
        )
    })?;
    named
        .into_iter()
        .map(|(name, t)| raw(path, name, &t))
        .collect()
}

/// `module.` / `_orig_mod.` when every name starts with it (repeatedly).
fn common_prefix(names: &[&str]) -> Option<String> {
    let mut prefix = String::new();
    loop {
        let next = ["module.", "_orig_mod."].into_iter().find(|p| {
            !names.is_empty()
                && names
                    .iter()
                    .all(|n| n.len() > prefix.len() && n[prefix.len()..].starts_with(p))
        });
        match next {
            Some(p) => prefix.push_str(p),
            None => break,
        }
    }
    (!prefix.is_empty()).then_some(prefix)
}

/// The landscape name of a sequential name (`3.weight` -> `layer3.weight`,
/// `4.running_var` -> `layer3.bn.running_var`), if it has one.
fn sequential_to_landscape(name: &str) -> Option<String> {
    let (idx, field) = name.split_once('.')?;
    let idx: usize = idx.parse().ok()?;
    let layer = FIRST_LAYER + idx / 3;
    match (idx % 3, field) {
        (0, "weight" | "bias") => Some(format!("layer{layer}.{field}")),
        (1, "running_mean" | "running_var") => Some(format!("layer{layer}.bn.{field}")),
        _ => None,
    }
}

/// The paper layer number of a landscape name (`layer3.bn.running_mean` -> 3).
fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("layer")?;
    let (n, _) = rest.split_once('.')?;
    n.parse().ok()
}

/// Expected `(name, shape)` of every tensor of `config`, in export order.
fn expected_tensors(config: &NetConfig) -> Vec<(String, Vec<usize>)> {
    let shapes = config.layer_shapes();
    let hidden = config.widths.len();
    let k = KERNEL as usize;
    let mut out = Vec::new();
    for (i, &(cin, cout)) in shapes.iter().enumerate() {
        let (cin, cout) = (cin as usize, cout as usize);
        let n = FIRST_LAYER + i;
        out.push((format!("layer{n}.weight"), vec![cout, cin, k, k]));
        out.push((format!("layer{n}.bias"), vec![cout]));
        if i < hidden {
            out.push((format!("layer{n}.bn.running_mean"), vec![cout]));
            out.push((format!("layer{n}.bn.running_var"), vec![cout]));
        }
    }
    out
}

impl StateDict {
    /// Reads `path` (format by extension or content) and checks it against
    /// `expected`, or infers the network from the shapes when `None`.
    pub fn read(path: &Path, expected: Option<&NetConfig>) -> Result<Self, NetError> {
        let (format, raws) = read_tensors(path)?;
        Self::from_tensors(path, format, raws, expected)
    }

    /// Checks already-read tensors (see [`StateDict::read`]).
    pub fn from_tensors(
        path: &Path,
        format: StateDictFormat,
        raws: Vec<RawTensor>,
        expected: Option<&NetConfig>,
    ) -> Result<Self, NetError> {
        if raws.is_empty() {
            return Err(fail(path, format!("holds no tensors; {ACCEPTED_LAYOUTS}")));
        }
        let names: Vec<&str> = raws.iter().map(|r| r.name.as_str()).collect();
        let prefix = common_prefix(&names);
        let plen = prefix.as_ref().map_or(0, String::len);
        let bare = |n: &str| n[plen..].to_owned();
        let landscape = raws.iter().any(|r| bare(&r.name).starts_with("layer"));
        let sequential = raws
            .iter()
            .any(|r| bare(&r.name).starts_with(|c: char| c.is_ascii_digit()));
        let layout = match (landscape, sequential) {
            (true, false) => StateDictLayout::Landscape,
            (false, true) => StateDictLayout::Sequential,
            (true, true) => {
                return Err(fail(
                    path,
                    format!(
                        "mixes names of two layouts (`layer...` and numbered); {ACCEPTED_LAYOUTS}"
                    ),
                ))
            }
            (false, false) => {
                return Err(fail(
                    path,
                    format!(
                        "has none of the expected names (found {}); {ACCEPTED_LAYOUTS}",
                        list(names.iter().take(8).map(|n| format!("`{n}`")))
                    ),
                ))
            }
        };
        // Renamed tensors, keyed by landscape name; the file's name is kept
        // for messages. Names without a landscape counterpart stay as found.
        let mut ignored = Vec::new();
        let mut converted = Vec::new();
        let mut found: BTreeMap<String, (String, RawTensor)> = BTreeMap::new();
        for r in raws {
            if is_counter(&r.name) {
                ignored.push(r.name);
                continue;
            }
            let b = bare(&r.name);
            let key = match layout {
                StateDictLayout::Landscape => b,
                StateDictLayout::Sequential => sequential_to_landscape(&b).unwrap_or(b),
            };
            if r.dtype != "float32" {
                converted.push((r.name.clone(), r.dtype.clone()));
            }
            found.insert(key, (r.name.clone(), r));
        }
        let config = match expected {
            Some(c) => {
                c.validate()?;
                c.clone()
            }
            None => infer_config(path, &found)?,
        };
        let want = expected_tensors(&config);
        let file_name = |landscape_name: &str| -> String {
            match layout {
                StateDictLayout::Landscape => {
                    format!("`{}{landscape_name}`", prefix.as_deref().unwrap_or(""))
                }
                StateDictLayout::Sequential => {
                    let seq = landscape_to_sequential(landscape_name);
                    format!(
                        "`{}{seq}` ({landscape_name})",
                        prefix.as_deref().unwrap_or("")
                    )
                }
            }
        };
        let wanted: BTreeSet<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
        let mut missing = Vec::new();
        let mut misshaped = Vec::new();
        for (name, shape) in &want {
            match found.get(name) {
                None => missing.push(format!("{} {shape:?}", file_name(name))),
                Some((_, r)) if &r.shape != shape => misshaped.push(format!(
                    "{} has shape {:?}, expected {shape:?}",
                    file_name(name),
                    r.shape
                )),
                Some(_) => {}
            }
        }
        let extra: Vec<String> = found
            .iter()
            .filter(|(k, _)| !wanted.contains(k.as_str()))
            .map(|(_, (orig, r))| format!("`{orig}` {:?}", r.shape))
            .collect();
        if !(missing.is_empty() && misshaped.is_empty() && extra.is_empty()) {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", list(missing)));
            }
            if !extra.is_empty() {
                parts.push(format!("extra {}", list(extra)));
            }
            if !misshaped.is_empty() {
                parts.push(format!("mis-shaped: {}", list(misshaped)));
            }
            return Err(fail(
                path,
                format!(
                    "is not a state_dict of the network {} ({} layout): {}; {ACCEPTED_LAYOUTS}",
                    describe(&config),
                    layout.as_str(),
                    parts.join("; ")
                ),
            ));
        }
        let tensors = want
            .iter()
            .map(|(name, shape)| {
                let (_, r) = found
                    .remove(name)
                    .ok_or_else(|| fail(path, format!("tensor `{name}` is missing")))?;
                Ok(NamedTensor {
                    name: name.clone(),
                    shape: shape.clone(),
                    data: r.data,
                })
            })
            .collect::<Result<Vec<_>, NetError>>()?;
        Ok(StateDict {
            file: path.to_path_buf(),
            format,
            layout,
            prefix,
            config,
            tensors,
            converted,
            ignored,
        })
    }

    /// The network with these weights and BN running statistics on `device`.
    pub fn to_model(&self, device: Device) -> Result<Dcnn, NetError> {
        let mut model = Dcnn::new(&self.config, device, 0)?;
        model.import(&self.tensors)?;
        Ok(model)
    }
}

/// `widths [4, 6, 8, 6], 10 classes`.
fn describe(c: &NetConfig) -> String {
    format!("with widths {:?} and {} classes", c.widths, c.classes)
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn landscape_to_sequential(name: &str) -> String {
    let Some(layer) = layer_of(name) else {
        return name.to_owned();
    };
    let i = layer.saturating_sub(FIRST_LAYER);
    match name.rsplit_once('.') {
        Some((_, f @ ("weight" | "bias"))) => format!("{}.{f}", 3 * i),
        Some((_, f)) => format!("{}.{f}", 3 * i + 1),
        None => name.to_owned(),
    }
}

/// Widths and classes from the out-channels of every layer present (its
/// weight, bias or BN statistics); the last layer is the highest-numbered.
fn infer_config(
    path: &Path,
    found: &BTreeMap<String, (String, RawTensor)>,
) -> Result<NetConfig, NetError> {
    // Votes for the out-channels of every layer: the first dimension of its
    // weight, bias and BN statistics, and the second of the next weight.
    let mut votes: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (name, (_, r)) in found {
        let Some(layer) = layer_of(name) else {
            continue;
        };
        if layer < FIRST_LAYER {
            continue;
        }
        if let Some(&c) = r.shape.first() {
            *votes.entry(layer).or_default().entry(c).or_default() += 1;
        }
        if name.ends_with(".weight") && layer > FIRST_LAYER {
            if let Some(&c) = r.shape.get(1) {
                *votes.entry(layer - 1).or_default().entry(c).or_default() += 1;
            }
        }
    }
    let outs: BTreeMap<usize, usize> = votes
        .into_iter()
        .filter_map(|(layer, v)| {
            let best = v
                .iter()
                .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))?;
            Some((layer, *best.0))
        })
        .collect();
    let Some(&last) = outs.keys().next_back() else {
        return Err(fail(
            path,
            format!("has no convolution to read the network from; {ACCEPTED_LAYOUTS}"),
        ));
    };
    let mut channels = Vec::new();
    let mut unknown = Vec::new();
    for layer in FIRST_LAYER..=last {
        match outs.get(&layer) {
            Some(&c) => channels.push(c as i64),
            None => {
                unknown.push(format!("layer{layer}"));
                channels.push(0);
            }
        }
    }
    if !unknown.is_empty() {
        return Err(fail(
            path,
            format!(
                "has no tensor of {} (its weight, bias or BN statistics), so the widths cannot \
                 be read from the shapes; {ACCEPTED_LAYOUTS}",
                list(unknown)
            ),
        ));
    }
    let classes = channels.pop().unwrap_or(0);
    let config = NetConfig {
        widths: channels,
        classes,
        ..NetConfig::paper()
    };
    config
        .validate()
        .map_err(|e| fail(path, format!("the network read from the shapes: {e}")))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_names_map_to_landscape_names() {
        assert_eq!(
            sequential_to_landscape("0.weight").as_deref(),
            Some("layer2.weight")
        );
        assert_eq!(
            sequential_to_landscape("10.running_var").as_deref(),
            Some("layer5.bn.running_var")
        );
        assert_eq!(
            sequential_to_landscape("12.bias").as_deref(),
            Some("layer6.bias")
        );
        assert_eq!(sequential_to_landscape("2.weight"), None);
        assert_eq!(sequential_to_landscape("1.weight"), None);
        assert_eq!(
            landscape_to_sequential("layer5.bn.running_var"),
            "10.running_var"
        );
        assert_eq!(landscape_to_sequential("layer6.weight"), "12.weight");
    }

    #[test]
    fn prefixes_are_stripped_only_when_shared() {
        assert_eq!(
            common_prefix(&["module.0.weight", "module.0.bias"]).as_deref(),
            Some("module.")
        );
        assert_eq!(
            common_prefix(&["_orig_mod.module.0.weight"]).as_deref(),
            Some("_orig_mod.module.")
        );
        assert_eq!(common_prefix(&["module.0.weight", "0.bias"]), None);
    }
}
