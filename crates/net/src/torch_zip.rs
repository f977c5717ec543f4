//! A reader of the zip archives `torch.save` writes (PyTorch >= 1.6) when
//! they hold a dict of tensors, such as `model.state_dict()`.
//!
//! libtorch's own unpickler (`torch::pickle_load`, which tch's
//! `Tensor::loadz_multi` calls) stops at the `_metadata` attribute that
//! `state_dict()` attaches to its `OrderedDict`, so the archive is read here:
//! `<name>/data.pkl` is a pickle (protocol 2) of the dict whose tensors are
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
//! calls on persistent storages `('storage', torch.FloatStorage, key,
//! location, numel)`, whose bytes are `<name>/data/<key>` (little-endian).
//! The small pickle machine below knows exactly the opcodes and callables such
//! a file uses; anything else is refused by name.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

/// A pickled value (the payloads of some variants are only shown, in errors).
#[allow(dead_code)]
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage {
        kind: Kind,
        key: String,
    },
    Tensor {
        kind: Kind,
        key: String,
        offset: i64,
        size: Vec<i64>,
        stride: Vec<i64>,
    },
    /// The result of a callable this reader does not model (kept to name it).
    Opaque(String),
    Mark,
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn ints(v: &Value, what: &str) -> Result<Vec<i64>, String> {
    match v {
        Value::Tuple(xs) | Value::List(xs) => xs
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                other => Err(format!("{what}: expected an integer, found {other:?}")),
            })
            .collect(),
        other => Err(format!(
            "{what}: expected a tuple of integers, found {other:?}"
        )),
    }
}

/// Calls a global on its arguments (only what torch.save of a state_dict uses).
fn call(f: &Value, args: Value) -> Result<Value, String> {
    let Value::Global(module, name) = f else {
        return Err(format!("pickle REDUCE on {f:?}, not a callable"));
    };
    let Value::Tuple(args) = args else {
        return Err(format!(
            "pickle REDUCE of {module}.{name} without an argument tuple"
        ));
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") if args.is_empty() => {
            Ok(Value::Dict(Vec::new()))
        }
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let (
                Some(Value::Storage { kind, key }),
                Some(Value::Int(offset)),
                Some(size),
                Some(stride),
            ) = (args.first(), args.get(1), args.get(2), args.get(3))
            else {
                return Err(format!("unexpected arguments of {module}.{name}: {args:?}"));
            };
            Ok(Value::Tensor {
                kind: *kind,
                key: key.clone(),
                offset: *offset,
                size: ints(size, "tensor size")?,
                stride: ints(stride, "tensor stride")?,
            })
        }
        // nn.Parameter(tensor, requires_grad, hooks): the tensor.
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => args
            .into_iter()
            .next()
            .ok_or_else(|| format!("{module}.{name} without arguments")),
        _ => Ok(Value::Opaque(format!("{module}.{name}"))),
    }
}

/// Runs the pickle `data`; returns the top value.
fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = data
            .get(*pos..*pos + n)
            .ok_or_else(|| "the pickle ends early".to_string())?;
        *pos += n;
        Ok(s)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    fn pop(stack: &mut Vec<Value>) -> Result<Value, String> {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }
    fn pop_mark(stack: &mut Vec<Value>) -> Result<Vec<Value>, String> {
        let at = stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| "pickle MARK missing".to_string())?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    }
    fn line(data: &[u8], pos: &mut usize) -> Result<String, String> {
        let end = data[*pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "pickle GLOBAL without a newline".to_string())?;
        let s = String::from_utf8_lossy(&data[*pos..*pos + end]).into_owned();
        *pos += end + 1;
        Ok(s)
    }
    loop {
        let op = *take(&mut pos, 1)?.first().unwrap_or(&b'.');
        match op {
            0x80 => {
                take(&mut pos, 1)?;
            } // PROTO
            0x95 => {
                take(&mut pos, 8)?;
            } // FRAME
            b'.' => return pop(&mut stack),
            b'(' => stack.push(Value::Mark),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => stack.push(Value::Int(i64::from(take(&mut pos, 1)?[0]))),
            b'M' => {
                let b = take(&mut pos, 2)?;
                stack.push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let b = take(&mut pos, 4)?;
                stack.push(Value::Int(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = usize::from(take(&mut pos, 1)?[0]);
                let b = take(&mut pos, n)?;
                if n > 8 {
                    return Err(format!("pickle LONG1 of {n} bytes"));
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= i64::from(byte) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                let b = take(&mut pos, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                stack.push(Value::Float(f64::from_be_bytes(a)));
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => u32_at(take(&mut pos, 4)?) as usize,
                    0x8c => usize::from(take(&mut pos, 1)?[0]),
                    _ => {
                        let b = take(&mut pos, 8)?;
                        usize::try_from(u64::from_le_bytes([
                            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                        ]))
                        .map_err(|e| e.to_string())?
                    }
                };
                let s = take(&mut pos, n)?;
                stack.push(Value::Str(String::from_utf8_lossy(s).into_owned()));
            }
            b'c' => {
                let module = line(data, &mut pos)?;
                let name = line(data, &mut pos)?;
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                // STACK_GLOBAL
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    other => return Err(format!("pickle STACK_GLOBAL on {other:?}")),
                }
            }
            b'q' => {
                let k = u32::from(take(&mut pos, 1)?[0]);
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or("pickle BINPUT on an empty stack")?,
                );
            }
            b'r' => {
                let k = u32_at(take(&mut pos, 4)?);
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or("pickle LONG_BINPUT on an empty stack")?,
                );
            }
            0x94 => {
                let k = u32::try_from(memo.len()).map_err(|e| e.to_string())?;
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or("pickle MEMOIZE on an empty stack")?,
                );
            }
            b'h' | b'j' => {
                let k = if op == b'h' {
                    u32::from(take(&mut pos, 1)?[0])
                } else {
                    u32_at(take(&mut pos, 4)?)
                };
                stack.push(
                    memo.get(&k)
                        .cloned()
                        .ok_or_else(|| format!("pickle memo {k} is not set"))?,
                );
            }
            b')' => stack.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b']' => stack.push(Value::List(Vec::new())),
            b'}' => stack.push(Value::Dict(Vec::new())),
            b'a' => {
                let v = pop(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.extend(items);
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                stack.push(call(&f, args)?);
            }
            b'b' => {
                // BUILD: the state of an object (e.g. state_dict's `_metadata`): dropped.
                pop(&mut stack)?;
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                let Value::Tuple(t) = &pid else {
                    return Err(format!("pickle persistent id {pid:?} is not a tuple"));
                };
                match (t.first(), t.get(1), t.get(2)) {
                    (
                        Some(Value::Str(tag)),
                        Some(Value::Global(_, storage)),
                        Some(Value::Str(key)),
                    ) if tag == "storage" => {
                        let kind = storage_kind(storage)
                            .ok_or_else(|| format!("storage type torch.{storage} is not read"))?;
                        stack.push(Value::Storage {
                            kind,
                            key: key.clone(),
                        });
                    }
                    _ => return Err(format!("unexpected persistent id {pid:?}")),
                }
            }
            0x81 | 0x92 | b'i' | b'o' => {
                return Err(format!(
                    "the archive holds a pickled Python object (byte {}), not a dict of tensors: \
                     was it torch.save(model)? Save model.state_dict() instead",
                    pos - 1
                ))
            }
            other => {
                return Err(format!(
                "pickle opcode 0x{other:02x} at byte {} is not one torch.save of a state_dict uses",
                pos - 1
            ))
            }
        }
    }
}

/// `(name, tensor)` of every entry of the dict pickled in a torch.save zip at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    let pkl = (0..zip.len())
        .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_owned()))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1)
        .ok_or_else(|| {
            "no `<name>/data.pkl` in the archive (not written by torch.save)".to_string()
        })?;
    let root = pkl.trim_end_matches("data.pkl").to_owned();
    let mut read_entry = |name: &str| -> Result<Vec<u8>, String> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| format!("archive entry `{name}`: {e}"))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| format!("archive entry `{name}`: {e}"))?;
        Ok(buf)
    };
    if let Ok(order) = read_entry(&format!("{root}byteorder")) {
        if order.trim_ascii() != b"little" {
            return Err(format!(
                "byte order `{}` (only little-endian archives are read)",
                String::from_utf8_lossy(&order)
            ));
        }
    }
    let top = unpickle(&read_entry(&pkl)?)?;
    let Value::Dict(entries) = top else {
        return Err(format!(
            "the archive holds {}, not a dict of tensors",
            match top {
                Value::Opaque(what) => format!("an object of {what}"),
                other => format!("{other:?}").chars().take(80).collect(),
            }
        ));
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let Value::Str(name) = k else {
            return Err(format!("a dict key is {k:?}, not a string"));
        };
        let Value::Tensor {
            kind,
            key,
            offset,
            size,
            stride,
        } = v
        else {
            return Err(format!(
                "entry `{name}` is {}, not a tensor (the archive must hold a flat dict of tensors)",
                match v {
                    Value::Opaque(what) => format!("an object of {what}"),
                    Value::Dict(_) => "a dict".to_string(),
                    other => format!("{other:?}").chars().take(60).collect(),
                }
            ));
        };
        if !storages.contains_key(&key) {
            let bytes = read_entry(&format!("{root}data/{key}"))?;
            storages.insert(key.clone(), bytes);
        }
        let bytes = &storages[&key];
        let elt = kind.elt_size_in_bytes();
        let numel = i64::try_from(bytes.len() / elt).map_err(|e| e.to_string())?;
        let t = Tensor::f_from_data_size(bytes, &[numel], kind)
            .and_then(|s| s.f_as_strided(size.as_slice(), stride.as_slice(), offset))
            .and_then(|t| t.f_contiguous())
            .map_err(|e| {
                format!("entry `{name}` (size {size:?}, stride {stride:?}, offset {offset}): {e}")
            })?;
        out.push((name, t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ints_and_strings() {
        // PROTO 2, MARK, BININT1 5, LONG1 -2, SHORT_BINUNICODE "ab", TUPLE, STOP
        let p = [
            0x80, 2, b'(', b'K', 5, 0x8a, 1, 0xfe, 0x8c, 2, b'a', b'b', b't', b'.',
        ];
        let Value::Tuple(v) = unpickle(&p).unwrap_or(Value::None) else {
            panic!("not a tuple");
        };
        assert!(matches!(v[0], Value::Int(5)));
        assert!(matches!(v[1], Value::Int(-2)));
        assert!(matches!(&v[2], Value::Str(s) if s == "ab"));
    }
}
