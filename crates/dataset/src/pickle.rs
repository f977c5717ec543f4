//! A minimal, non-executing pickle reader for CIFAR-10's Python layout.
//!
//! The files in `cifar-10-batches-py/` are pickled dicts whose `data` entry is
//! a numpy `uint8` array. `serde-pickle` cannot decode numpy arrays (they are
//! pickled as calls to `numpy.core.multiarray._reconstruct` followed by a
//! `BUILD` with the raw buffer), so this module runs the pickle machine itself
//! over the opcodes of protocols 2 to 5, without calling anything: globals,
//! `REDUCE`, `NEWOBJ` and `BUILD` become inert nodes of an object graph. The
//! graph is then matched against the few shapes that occur in CIFAR-10
//! files:
//!
//! * a numpy array: `_reconstruct(ndarray, (0,), b'b')` built with the state
//!   `(version, shape, dtype, fortran_order, raw_bytes)` (protocols 2-4), or
//!   `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5);
//! * a dtype: `numpy.dtype('u1', ...)` built with `(3, '<' | '|' | '>', ...)`;
//! * bytes written by Python 3 at protocol 2: `_codecs.encode(text, 'latin1')`.
//!
//! Objects live in an arena and the stack and memo hold indices into it, so
//! an object memoized before it is filled (a dict, then `SETITEMS`) is seen
//! filled when fetched from the memo, as in Python.
use std::borrow::Cow;
use std::path::Path;

use crate::error::{DatasetError, Result};

/// Index of an object in the arena.
pub(crate) type Id = usize;

/// One decoded pickle object.
#[derive(Debug, Clone)]
pub(crate) enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global { module: String, name: String },
    Reduce { func: Id, args: Id },
    Instance { cls: Id, args: Id },
    Built { base: Box<Obj>, state: Id },
}

impl Obj {
    /// A short description for error messages.
    pub(crate) fn kind(&self) -> String {
        match self {
            Obj::None => "None".into(),
            Obj::Bool(_) => "a bool".into(),
            Obj::Int(i) => format!("the integer {i}"),
            Obj::Float(f) => format!("the float {f}"),
            Obj::Bytes(b) => format!("{} bytes", b.len()),
            Obj::Str(s) => format!("the string {:?}", truncate(s)),
            Obj::List(v) => format!("a list of {} items", v.len()),
            Obj::Tuple(v) => format!("a tuple of {} items", v.len()),
            Obj::Dict(v) => format!("a dict of {} items", v.len()),
            Obj::Global { module, name } => format!("the global {module}.{name}"),
            Obj::Reduce { .. } => "a call (REDUCE)".into(),
            Obj::Instance { cls, args } => format!("an object (NEWOBJ of #{cls} with #{args})"),
            Obj::Built { base, .. } => format!("{} with state (BUILD)", base.kind()),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A decoded pickle: the arena and the id of the top-level object.
#[derive(Debug)]
pub(crate) struct Pickle {
    arena: Vec<Obj>,
    root: Id,
}

/// A numpy array found in a pickle.
#[derive(Debug)]
pub(crate) struct NdArray<'a> {
    /// Element type, e.g. `u1`, `<i8`.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Whether the buffer is in Fortran (column-major) order.
    pub fortran: bool,
    /// The raw buffer.
    pub data: Cow<'a, [u8]>,
}

/// A numpy integer dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dtype {
    /// Signed?
    pub signed: bool,
    /// Size in bytes (1, 2, 4 or 8).
    pub size: usize,
    /// Big-endian?
    pub big_endian: bool,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let order = if self.size == 1 {
            "|"
        } else if self.big_endian {
            ">"
        } else {
            "<"
        };
        let kind = if self.signed { 'i' } else { 'u' };
        write!(f, "{order}{kind}{}", self.size)
    }
}

impl NdArray<'_> {
    /// The elements as integers (C order is assumed by the caller).
    pub(crate) fn to_i64(&self) -> Vec<i64> {
        let size = self.dtype.size;
        self.data
            .chunks_exact(size)
            .map(|c| {
                let mut buf = [0u8; 8];
                if self.dtype.big_endian {
                    buf[8 - size..].copy_from_slice(c);
                    buf.reverse();
                } else {
                    buf[..size].copy_from_slice(c);
                }
                let raw = u64::from_le_bytes(buf);
                if self.dtype.signed && size < 8 {
                    let shift = 64 - 8 * size as u32;
                    ((raw << shift) as i64) >> shift
                } else {
                    raw as i64
                }
            })
            .collect()
    }
}

struct Machine<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed (for errors).
    op_at: usize,
    arena: Vec<Obj>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: Vec<Option<Id>>,
}

/// Decodes a whole pickle file held in memory.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Pickle> {
    let mut m = Machine {
        path,
        bytes,
        pos: 0,
        op_at: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    };
    let root = m.run()?;
    Ok(Pickle {
        arena: m.arena,
        root,
    })
}

impl Machine<'_> {
    fn err(&self, reason: impl Into<String>) -> DatasetError {
        DatasetError::Pickle {
            path: self.path.to_path_buf(),
            offset: self.op_at as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "needs {n} more bytes but the file ends at byte {}",
                self.bytes.len()
            ))),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len_u32(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.le::<4>()?) as usize)
    }

    fn len_u64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.le::<8>()?);
        usize::try_from(n).map_err(|_| self.err(format!("length {n} does not fit in memory")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err("text argument without a terminating newline"));
        };
        let text = String::from_utf8(rest[..nl].to_vec())
            .map_err(|_| self.err("text argument is not UTF-8"))?;
        self.pos += nl + 1;
        Ok(text)
    }

    fn utf8(&mut self, n: usize) -> Result<String> {
        let raw = self.take(n)?.to_vec();
        String::from_utf8(raw).map_err(|_| self.err("string is not valid UTF-8"))
    }

    fn push(&mut self, obj: Obj) {
        self.arena.push(obj);
        self.stack.push(self.arena.len() - 1);
    }

    fn pop(&mut self) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&self) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: usize) -> Result<()> {
        let id = self.top()?;
        if self.memo.len() <= index {
            if index > self.bytes.len() {
                return Err(self.err(format!("memo index {index} is implausibly large")));
            }
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(id);
        Ok(())
    }

    fn memo_get(&mut self, index: usize) -> Result<()> {
        let id = self
            .memo
            .get(index)
            .copied()
            .flatten()
            .ok_or_else(|| self.err(format!("memo index {index} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn str_of(&self, id: Id) -> Option<&str> {
        match &self.arena[id] {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    fn run(&mut self) -> Result<Id> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("unsupported protocol {proto}")));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let id = self.pop()?;
                    return Ok(id);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'N' => self.push(Obj::None),
                0x88 => self.push(Obj::Bool(true)),
                0x89 => self.push(Obj::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.push(Obj::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le::<2>()?);
                    self.push(Obj::Int(i64::from(v)));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le::<4>()?);
                    self.push(Obj::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        usize::from(self.u8()?)
                    } else {
                        self.len_u32()?
                    };
                    if n > 8 {
                        return Err(
                            self.err(format!("integer of {n} bytes does not fit in 64 bits"))
                        );
                    }
                    let raw = self.take(n)?;
                    let mut buf = [0u8; 8];
                    buf[..n].copy_from_slice(raw);
                    if n > 0 && raw[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff);
                    }
                    self.push(Obj::Int(i64::from_le_bytes(buf)));
                }
                b'I' | b'L' => {
                    let text = self.line()?;
                    let t = text.trim_end_matches('L');
                    let v = match t {
                        "00" => 0,
                        "01" => 1,
                        _ => t
                            .parse::<i64>()
                            .map_err(|_| self.err(format!("bad integer literal {text:?}")))?,
                    };
                    self.push(Obj::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le::<8>()?);
                    self.push(Obj::Float(v));
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.le::<4>()?);
                    let n = usize::try_from(n)
                        .map_err(|_| self.err(format!("negative string length {n}")))?;
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => usize::from(self.u8()?),
                        b'B' => self.len_u32()?,
                        _ => self.len_u64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(b));
                }
                0x8c | b'X' | 0x8d => {
                    let n = match op {
                        0x8c => usize::from(self.u8()?),
                        b'X' => self.len_u32()?,
                        _ => self.len_u64()?,
                    };
                    let s = self.utf8(n)?;
                    self.push(Obj::Str(s));
                }
                b']' => self.push(Obj::List(Vec::new())),
                b'}' => self.push(Obj::Dict(Vec::new())),
                b')' => self.push(Obj::Tuple(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Obj::Tuple(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push(Obj::Dict(pairs));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend_list(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend_list(list, items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.extend_dict(dict, vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    let dict = self.top()?;
                    self.extend_dict(dict, pairs)?;
                }
                b'q' => {
                    let i = usize::from(self.u8()?);
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.len_u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len();
                    self.memo_put(i)?;
                }
                b'p' => {
                    let text = self.line()?;
                    let i = text
                        .parse::<usize>()
                        .map_err(|_| self.err(format!("bad memo index {text:?}")))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = usize::from(self.u8()?);
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.len_u32()?;
                    self.memo_get(i)?;
                }
                b'g' => {
                    let text = self.line()?;
                    let i = text
                        .parse::<usize>()
                        .map_err(|_| self.err(format!("bad memo index {text:?}")))?;
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Obj::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name))
                    else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    let (module, name) = (module.to_owned(), name.to_owned());
                    self.push(Obj::Global { module, name });
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(Obj::Reduce { func, args });
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    self.push(Obj::Instance { cls, args });
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    let base = std::mem::replace(&mut self.arena[obj], Obj::None);
                    self.arena[obj] = Obj::Built {
                        base: Box::new(base),
                        state,
                    };
                }
                other => {
                    return Err(self.err(format!(
                        "opcode 0x{other:02x} ({:?}) is not supported by this reader",
                        char::from(other)
                    )))
                }
            }
        }
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>> {
        if items.len() % 2 != 0 {
            return Err(self.err("odd number of items for a dict"));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    fn extend_list(&mut self, list: Id, items: Vec<Id>) -> Result<()> {
        match &mut self.arena[list] {
            Obj::List(v) => {
                v.extend(items);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("APPEND(S) on {kind}, not a list")))
            }
        }
    }

    fn extend_dict(&mut self, dict: Id, pairs: Vec<(Id, Id)>) -> Result<()> {
        match &mut self.arena[dict] {
            Obj::Dict(v) => {
                v.extend(pairs);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("SETITEM(S) on {kind}, not a dict")))
            }
        }
    }
}

/// Matching the object graph against CIFAR-10's shapes.
impl Pickle {
    pub(crate) fn root(&self) -> Id {
        self.root
    }

    pub(crate) fn get(&self, id: Id) -> &Obj {
        &self.arena[id]
    }

    /// The entries of a dict, keys decoded as text (str keys, or bytes keys
    /// as written by Python 2 and by `encoding="bytes"` users).
    pub(crate) fn dict_entries(&self, id: Id) -> Option<Vec<(Cow<'_, str>, Id)>> {
        match self.get(id) {
            Obj::Dict(pairs) => Some(
                pairs
                    .iter()
                    .filter_map(|&(k, v)| self.text(k).map(|k| (k, v)))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// A str, bytes (as Latin-1), or `_codecs.encode(str, 'latin1')` as text.
    pub(crate) fn text(&self, id: Id) -> Option<Cow<'_, str>> {
        match self.get(id) {
            Obj::Str(s) => Some(Cow::Borrowed(s)),
            _ => self
                .bytes(id)
                .map(|b| Cow::Owned(b.iter().map(|&c| char::from(c)).collect())),
        }
    }

    /// Bytes: `bytes`, Python 2 `str`, or Python 3's protocol-2 encoding of
    /// bytes as `_codecs.encode(text, 'latin1')`.
    pub(crate) fn bytes(&self, id: Id) -> Option<Cow<'_, [u8]>> {
        match self.get(id) {
            Obj::Bytes(b) => Some(Cow::Borrowed(b)),
            Obj::Reduce { func, args } => {
                let Obj::Global { module, name } = self.get(*func) else {
                    return None;
                };
                if module != "_codecs" || name != "encode" {
                    return None;
                }
                let items = self.tuple(*args)?;
                let [text, enc] = items else { return None };
                let enc = self.str_ref(*enc)?;
                if enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1" {
                    return None;
                }
                let text = self.str_ref(*text)?;
                text.chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect::<Option<Vec<u8>>>()
                    .map(Cow::Owned)
            }
            _ => None,
        }
    }

    fn str_ref(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    fn tuple(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Obj::Tuple(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn int(&self, id: Id) -> Option<i64> {
        match self.get(id) {
            Obj::Int(i) => Some(*i),
            Obj::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// A list of integers.
    pub(crate) fn int_list(&self, id: Id) -> Option<Vec<i64>> {
        match self.get(id) {
            Obj::List(items) | Obj::Tuple(items) => items
                .iter()
                .map(|&i| self.int(i))
                .collect::<Option<Vec<_>>>(),
            _ => None,
        }
    }

    /// A list of strings (str or bytes).
    pub(crate) fn text_list(&self, id: Id) -> Option<Vec<String>> {
        match self.get(id) {
            Obj::List(items) | Obj::Tuple(items) => items
                .iter()
                .map(|&i| self.text(i).map(Cow::into_owned))
                .collect(),
            _ => None,
        }
    }

    fn is_numpy(module: &str, prefix: &str, name: &str, want: &str) -> bool {
        name == want && (module == prefix || module.starts_with(&format!("{prefix}.")))
    }

    /// A numpy integer dtype, or why not.
    fn dtype(&self, id: Id) -> std::result::Result<Dtype, String> {
        let Obj::Built { base, state } = self.get(id) else {
            return Err(format!("a numpy dtype, found {}", self.get(id).kind()));
        };
        let Obj::Reduce { func, args } = base.as_ref() else {
            return Err(format!("a numpy dtype, found {}", base.kind()));
        };
        match self.get(*func) {
            Obj::Global { module, name } if Self::is_numpy(module, "numpy", name, "dtype") => {}
            other => return Err(format!("numpy.dtype, found {}", other.kind())),
        }
        let spec = self
            .tuple(*args)
            .and_then(|a| a.first())
            .and_then(|&s| self.text(s))
            .ok_or_else(|| "a dtype name such as 'u1'".to_string())?;
        let order = self
            .tuple(*state)
            .and_then(|s| s.get(1))
            .and_then(|&o| self.text(o))
            .map(Cow::into_owned)
            .unwrap_or_else(|| "|".into());
        let (signed, size) = match spec.as_ref() {
            "u1" => (false, 1),
            "i1" => (true, 1),
            "u2" => (false, 2),
            "i2" => (true, 2),
            "u4" => (false, 4),
            "i4" => (true, 4),
            "u8" => (false, 8),
            "i8" => (true, 8),
            other => return Err(format!("an integer dtype, found dtype {other:?}")),
        };
        Ok(Dtype {
            signed,
            size,
            big_endian: order == ">",
        })
    }

    fn shape(&self, id: Id) -> Option<Vec<usize>> {
        self.tuple(id)?
            .iter()
            .map(|&d| self.int(d).and_then(|d| usize::try_from(d).ok()))
            .collect()
    }

    /// A numpy integer array, or a description of what the object is instead.
    pub(crate) fn ndarray(&self, id: Id) -> std::result::Result<NdArray<'_>, String> {
        match self.get(id) {
            // Protocols 2-4: _reconstruct(ndarray, (0,), b'b') + BUILD(state).
            Obj::Built { base, state } => {
                let Obj::Reduce { func, .. } = base.as_ref() else {
                    return Err(format!("a numpy array, found {}", base.kind()));
                };
                match self.get(*func) {
                    Obj::Global { module, name }
                        if Self::is_numpy(module, "numpy", name, "_reconstruct") => {}
                    other => {
                        return Err(format!("a numpy array, found a call of {}", other.kind()))
                    }
                }
                let items = self.tuple(*state).ok_or_else(|| {
                    format!(
                        "a numpy array state tuple, found {}",
                        self.get(*state).kind()
                    )
                })?;
                // (version, shape, dtype, fortran, data) or the older 4-tuple.
                let items = match items.len() {
                    5 => &items[1..],
                    4 => items,
                    n => return Err(format!("a numpy array state of 4 or 5 items, found {n}")),
                };
                let shape = self
                    .shape(items[0])
                    .ok_or_else(|| "a numpy shape tuple of non-negative integers".to_string())?;
                let dtype = self.dtype(items[1])?;
                let fortran = self.int(items[2]).unwrap_or(0) != 0;
                let data = self.bytes(items[3]).ok_or_else(|| {
                    format!("a numpy raw buffer, found {}", self.get(items[3]).kind())
                })?;
                Self::checked(dtype, shape, fortran, data)
            }
            // Protocol 5: numpy.core.numeric._frombuffer(buf, dtype, shape, order).
            Obj::Reduce { func, args } => {
                match self.get(*func) {
                    Obj::Global { module, name }
                        if Self::is_numpy(module, "numpy", name, "_frombuffer") => {}
                    other => {
                        return Err(format!("a numpy array, found a call of {}", other.kind()))
                    }
                }
                let items = self
                    .tuple(*args)
                    .filter(|a| a.len() == 4)
                    .ok_or_else(|| "_frombuffer(buffer, dtype, shape, order)".to_string())?;
                let data = self
                    .bytes(items[0])
                    .ok_or_else(|| format!("a buffer, found {}", self.get(items[0]).kind()))?;
                let dtype = self.dtype(items[1])?;
                let shape = self
                    .shape(items[2])
                    .ok_or_else(|| "a numpy shape tuple of non-negative integers".to_string())?;
                let fortran = self.text(items[3]).is_some_and(|o| o == "F");
                Self::checked(dtype, shape, fortran, data)
            }
            other => Err(format!("a numpy array, found {}", other.kind())),
        }
    }

    fn checked<'a>(
        dtype: Dtype,
        shape: Vec<usize>,
        fortran: bool,
        data: Cow<'a, [u8]>,
    ) -> std::result::Result<NdArray<'a>, String> {
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("a numpy shape that fits in memory, found {shape:?}"))?;
        let want = count.checked_mul(dtype.size);
        if want != Some(data.len()) {
            return Err(format!(
                "a raw buffer of {count} x {} bytes for shape {shape:?}, found {} bytes",
                dtype.size,
                data.len()
            ));
        }
        Ok(NdArray {
            dtype,
            shape,
            fortran,
            data,
        })
    }
}
