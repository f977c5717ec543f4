//! The two on-disk layouts and the readers of their batch and meta files.
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::pickle;
use crate::{IMAGE_BYTES, NUM_CLASSES, RECORD_BYTES};

/// Which of the two published layouts a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `cifar-10-batches-bin/`: `data_batch_{1..5}.bin`, `test_batch.bin`,
    /// `batches.meta.txt`; 3,073-byte records.
    Binary,
    /// `cifar-10-batches-py/` (torchvision's copy): pickled dicts
    /// `data_batch_{1..5}`, `test_batch`, `batches.meta`.
    Python,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Binary => "binary",
            Layout::Python => "python",
        })
    }
}

impl Layout {
    /// Both layouts, the preferred one first.
    pub const ALL: [Layout; 2] = [Layout::Binary, Layout::Python];

    /// The folder name used by the official archives.
    pub fn folder_name(self) -> &'static str {
        match self {
            Layout::Binary => "cifar-10-batches-bin",
            Layout::Python => "cifar-10-batches-py",
        }
    }

    /// File names of the five training batches.
    pub fn train_files(self) -> [String; 5] {
        let ext = self.extension();
        [1, 2, 3, 4, 5].map(|i| format!("data_batch_{i}{ext}"))
    }

    /// File name of the test batch.
    pub fn test_file(self) -> String {
        format!("test_batch{}", self.extension())
    }

    /// File name of the class-name file.
    pub fn meta_file(self) -> &'static str {
        match self {
            Layout::Binary => "batches.meta.txt",
            Layout::Python => "batches.meta",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Layout::Binary => ".bin",
            Layout::Python => "",
        }
    }

    /// The layout of `dir` when it holds a first training batch of either
    /// layout (binary preferred), else `None`.
    pub fn detect(dir: &Path) -> Option<Layout> {
        Layout::ALL
            .into_iter()
            .find(|l| dir.join(&l.train_files()[0]).is_file())
    }

    /// The files a complete folder of this layout holds, for error messages.
    pub(crate) fn expected_files(self) -> String {
        let mut names: Vec<String> = self.train_files().to_vec();
        names.push(self.test_file());
        names.push(self.meta_file().to_string());
        names.join(", ")
    }

    fn missing(self, path: PathBuf) -> DatasetError {
        DatasetError::MissingFile {
            path,
            layout: match self {
                Layout::Binary => "binary",
                Layout::Python => "python",
            },
            expected: self.expected_files(),
        }
    }

    /// Reads one batch file of `records` records, appending its pixels (NCHW)
    /// to `images` and its labels to `labels`; `scratch` is a read buffer
    /// reused across files.
    pub(crate) fn read_batch(
        self,
        path: &Path,
        records: usize,
        images: &mut Vec<u8>,
        labels: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<u64> {
        if !path.is_file() {
            return Err(self.missing(path.to_path_buf()));
        }
        match self {
            Layout::Binary => read_binary_batch(path, records, images, labels, scratch),
            Layout::Python => read_python_batch(path, records, images, labels),
        }
    }

    /// Reads the class names from the meta file.
    pub(crate) fn read_meta(self, path: &Path) -> Result<(Vec<String>, u64)> {
        if !path.is_file() {
            return Err(self.missing(path.to_path_buf()));
        }
        let bytes = fs::read(path).map_err(|e| DatasetError::io(path, e))?;
        let names = match self {
            Layout::Binary => {
                let text = std::str::from_utf8(&bytes).map_err(|e| DatasetError::BadMeta {
                    path: path.to_path_buf(),
                    reason: format!("not UTF-8 text (byte offset {})", e.valid_up_to()),
                })?;
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            }
            Layout::Python => {
                let p = pickle::parse(path, &bytes)?;
                let entries =
                    p.dict_entries(p.root())
                        .ok_or_else(|| DatasetError::PickleShape {
                            path: path.to_path_buf(),
                            field: "<top>".into(),
                            expected: "a dict with `label_names`".into(),
                            found: p.get(p.root()).kind(),
                        })?;
                let id = entries
                    .iter()
                    .find(|(k, _)| k == "label_names")
                    .map(|(_, v)| *v)
                    .ok_or_else(|| DatasetError::PickleShape {
                        path: path.to_path_buf(),
                        field: "label_names".into(),
                        expected: "a list of 10 class names".into(),
                        found: "no such key".into(),
                    })?;
                p.text_list(id).ok_or_else(|| DatasetError::PickleShape {
                    path: path.to_path_buf(),
                    field: "label_names".into(),
                    expected: "a list of 10 class names".into(),
                    found: p.get(id).kind(),
                })?
            }
        };
        if names.len() != NUM_CLASSES {
            return Err(DatasetError::BadMeta {
                path: path.to_path_buf(),
                reason: format!("lists {} names", names.len()),
            });
        }
        Ok((names, bytes.len() as u64))
    }
}

fn read_binary_batch(
    path: &Path,
    records: usize,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
    raw: &mut Vec<u8>,
) -> Result<u64> {
    let expected_len = (records * RECORD_BYTES) as u64;
    let check_len = |len: u64| -> Result<()> {
        if len < expected_len {
            let record = (len / RECORD_BYTES as u64) as usize;
            return Err(DatasetError::TruncatedBatch {
                path: path.to_path_buf(),
                len,
                expected_records: records,
                expected_len,
                record,
                offset: (record * RECORD_BYTES) as u64,
            });
        }
        if len > expected_len {
            return Err(DatasetError::OversizedBatch {
                path: path.to_path_buf(),
                len,
                expected_records: records,
                expected_len,
            });
        }
        Ok(())
    };
    // Check the size before reading 30 MB, and again on what was read.
    let mut file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let meta = file.metadata().map_err(|e| DatasetError::io(path, e))?;
    check_len(meta.len())?;
    raw.clear();
    file.read_to_end(raw)
        .map_err(|e| DatasetError::io(path, e))?;
    check_len(raw.len() as u64)?;

    images.reserve(records * IMAGE_BYTES);
    labels.reserve(records);
    for (i, rec) in raw.chunks_exact(RECORD_BYTES).enumerate() {
        let label = rec[0];
        if usize::from(label) >= NUM_CLASSES {
            return Err(DatasetError::LabelOutOfRange {
                path: path.to_path_buf(),
                record: i,
                offset: Some((i * RECORD_BYTES) as u64),
                label: i64::from(label),
            });
        }
        labels.push(label);
        images.extend_from_slice(&rec[1..]);
    }
    Ok(expected_len)
}

fn read_python_batch(
    path: &Path,
    records: usize,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<u64> {
    let bytes = fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let p = pickle::parse(path, &bytes)?;
    let shape_err = |field: &str, expected: String, found: String| DatasetError::PickleShape {
        path: path.to_path_buf(),
        field: field.into(),
        expected,
        found,
    };
    let entries = p.dict_entries(p.root()).ok_or_else(|| {
        shape_err(
            "<top>",
            "a dict with `data` and `labels`".into(),
            p.get(p.root()).kind(),
        )
    })?;
    let find = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
                shape_err(key, "this key".into(), format!("only the keys {keys:?}"))
            })
    };

    // Pixels: a numpy uint8 array (records, 3072), or raw bytes.
    let data_id = find("data")?;
    let want_shape = format!("a uint8 array of shape ({records}, {IMAGE_BYTES}) in C order");
    if let Some(raw) = p.bytes(data_id) {
        if raw.len() != records * IMAGE_BYTES {
            return Err(shape_err(
                "data",
                want_shape,
                format!("{} raw bytes", raw.len()),
            ));
        }
        images.extend_from_slice(&raw);
    } else {
        let arr = p
            .ndarray(data_id)
            .map_err(|found| shape_err("data", want_shape.clone(), found))?;
        if arr.dtype.size != 1 || arr.dtype.signed {
            return Err(shape_err(
                "data",
                want_shape,
                format!("dtype {}", arr.dtype),
            ));
        }
        let rows_ok = arr.shape == [records, IMAGE_BYTES] || (arr.shape == [records, 3, 32, 32]);
        if !rows_ok || arr.fortran {
            return Err(shape_err(
                "data",
                want_shape,
                format!(
                    "shape {:?}{}",
                    arr.shape,
                    if arr.fortran { " in Fortran order" } else { "" }
                ),
            ));
        }
        images.extend_from_slice(&arr.data);
    }

    // Labels: a list of ints, or a numpy integer array.
    let labels_id = find("labels")?;
    let values = match p.int_list(labels_id) {
        Some(v) => v,
        None => {
            let arr = p
                .ndarray(labels_id)
                .map_err(|found| shape_err("labels", "a list of integers 0-9".into(), found))?;
            if arr.shape.len() != 1 {
                return Err(shape_err(
                    "labels",
                    "a one-dimensional list of integers".into(),
                    format!("an array of shape {:?}", arr.shape),
                ));
            }
            arr.to_i64()
        }
    };
    if values.len() != records {
        return Err(shape_err(
            "labels",
            format!("{records} labels"),
            format!("{} labels", values.len()),
        ));
    }
    labels.reserve(records);
    for (i, &v) in values.iter().enumerate() {
        match u8::try_from(v) {
            Ok(l) if usize::from(l) < NUM_CLASSES => labels.push(l),
            _ => {
                return Err(DatasetError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    record: i,
                    offset: None,
                    label: v,
                })
            }
        }
    }
    Ok(bytes.len() as u64)
}
