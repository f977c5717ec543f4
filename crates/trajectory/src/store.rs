//! The store: opening, appending, reading.
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use crate::error::{io_err, Result, StoreError};
use crate::filter::Filter;
use crate::format::{
    check_file_header, encode, file_header, frame, prefix_error, step, DiskSnapshot, DiskTensor,
    Head, IndexRecord, Step, DEFAULT_SEGMENT_LIMIT, FORMAT_VERSION, HEAD_SLOT_LEN,
    INDEX_HEADER_LEN, INDEX_MAGIC, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SNAP_MAGIC, SNAP_PREFIX_LEN,
};
use crate::meta::{SnapshotId, SnapshotInfo, SnapshotMeta, Tensor, TensorInfo, TensorRef};

/// File name of the append-only index inside a store folder.
pub const INDEX_FILE: &str = "index.log";
/// File name of the committed-length record inside a store folder.
pub const HEAD_FILE: &str = "index.head";
/// Folder of the segment files inside a store folder.
pub const SEGMENT_DIR: &str = "segments";
/// File name of the writer lock inside a store folder.
pub const LOCK_FILE: &str = "writer.lock";

/// The segment file number `segment`, relative to the store folder.
pub fn segment_file_name(segment: u32) -> String {
    format!("{SEGMENT_DIR}/{segment:06}.seg")
}

/// The number of a segment file name (`NNNNNN.seg`), if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A trajectory store: a folder of segment files and an index.
///
/// Any number of `Store`s (in any processes) may read a folder; the first
/// call that writes ([`Store::append`], [`Store::set_metrics`]) takes an
/// exclusive lock on the folder, held until the `Store` is dropped.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    infos: Vec<SnapshotInfo>,
    /// Bytes of `index.log` decoded so far (always a record boundary).
    index_end: u64,
    /// Records decoded so far.
    records: u64,
    /// Size at which appends start a new segment.
    segment_limit: u64,
    writer: Option<Writer>,
}

#[derive(Debug)]
struct Writer {
    _lock: File,
    index: File,
    head: File,
    segment: OpenSegment,
}

/// The segment a writer appends to.
#[derive(Debug)]
struct OpenSegment {
    number: u32,
    file: File,
    /// Committed end: the end of the last indexed snapshot in it.
    end: u64,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Commits do not fsync the head (see the crate docs); make it durable now.
        if let Err(e) = self.head.sync_data() {
            tracing::warn!(error = %e, "could not fsync the index head");
        }
    }
}

/// The rows of a matrix read with [`Store::read_matrix`]: one row per
/// snapshot, the named tensors concatenated (row-major each) along a row.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightMatrix {
    ids: Vec<SnapshotId>,
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    data: Array2<f32>,
}

impl WeightMatrix {
    /// The snapshot of each row.
    pub fn ids(&self) -> &[SnapshotId] {
        &self.ids
    }
    /// The tensors along a row, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// The shape of each tensor along a row.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }
    /// The matrix (snapshots x values).
    pub fn matrix(&self) -> &Array2<f32> {
        &self.data
    }
    /// The ids and the matrix.
    pub fn into_parts(self) -> (Vec<SnapshotId>, Array2<f32>) {
        (self.ids, self.data)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync folder", dir))
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync folder.
fn write_atomic(path: &Path, bytes: &[&[u8]]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    for b in bytes {
        f.write_all(b).map_err(io_err("write", &tmp))?;
    }
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err("rename", &tmp))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Opens segment `number` for appending at its committed end `end`: a
/// segment holding no committed snapshot is (re)created with a fresh
/// header; bytes past `end` (an interrupted append) are truncated.
fn open_segment_for_append(dir: &Path, number: u32, end: u64) -> Result<OpenSegment> {
    let path = dir.join(segment_file_name(number));
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    if end <= SEGMENT_HEADER_LEN {
        let seg_dir = dir.join(SEGMENT_DIR);
        fs::create_dir_all(&seg_dir).map_err(io_err("create folder", &seg_dir))?;
        let file = opts
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.write_all_at(&file_header(&SEGMENT_MAGIC), 0)
            .map_err(io_err("write", &path))?;
        file.sync_all().map_err(io_err("fsync", &path))?;
        sync_dir(&seg_dir)?;
        tracing::debug!(path = %path.display(), "started a segment");
        return Ok(OpenSegment {
            number,
            file,
            end: SEGMENT_HEADER_LEN,
        });
    }
    let file = opts.open(&path).map_err(io_err("open", &path))?;
    let len = file.metadata().map_err(io_err("stat", &path))?.len();
    if len < end {
        return Err(StoreError::Truncated {
            path,
            what: "committed snapshots".into(),
            offset: SEGMENT_HEADER_LEN,
            end,
            len,
        });
    }
    if len > end {
        tracing::warn!(
            path = %path.display(),
            bytes = len - end,
            "truncating unindexed bytes left by an interrupted append"
        );
        file.set_len(end).map_err(io_err("truncate", &path))?;
        file.sync_all().map_err(io_err("fsync", &path))?;
    }
    Ok(OpenSegment { number, file, end })
}

fn validate(tensors: &[TensorRef<'_>]) -> Result<()> {
    let mut seen = HashSet::new();
    for t in tensors {
        let bad = |reason: String| StoreError::InvalidTensor {
            name: t.name.to_string(),
            reason,
        };
        if t.name.is_empty() {
            return Err(bad("empty name".into()));
        }
        if !seen.insert(t.name) {
            return Err(bad("name given twice".into()));
        }
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {:?} overflows", t.shape)))?;
        if numel != t.data.len() {
            return Err(bad(format!(
                "shape {:?} holds {numel} values, data has {}",
                t.shape,
                t.data.len()
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Creates a new, empty store in `dir` (created if missing). Fails with
    /// [`StoreError::AlreadyExists`] if `dir` already holds one.
    pub fn create(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if dir.join(INDEX_FILE).exists() || dir.join(HEAD_FILE).exists() {
            return Err(StoreError::AlreadyExists { path: dir });
        }
        fs::create_dir_all(dir.join(SEGMENT_DIR))
            .map_err(io_err("create folder", dir.join(SEGMENT_DIR)))?;
        write_atomic(&dir.join(INDEX_FILE), &[&file_header(&INDEX_MAGIC)])?;
        let head = Head {
            records: 0,
            index_len: INDEX_HEADER_LEN,
        };
        write_atomic(&dir.join(HEAD_FILE), &[&head.encode_both()])?;
        tracing::debug!(dir = %dir.display(), "created trajectory store");
        Ok(Store {
            dir,
            infos: Vec::new(),
            index_end: INDEX_HEADER_LEN,
            records: 0,
            segment_limit: DEFAULT_SEGMENT_LIMIT,
            writer: None,
        })
    }

    /// Opens the store in `dir` for reading (writing starts on the first append).
    ///
    /// Fails on a missing or foreign index, a newer format version, a damaged
    /// record before the end of the index, or an index shorter than its head
    /// records. A record cut short at the very end (an interrupted append) is
    /// ignored.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        let index_path = dir.join(INDEX_FILE);
        if !index_path.exists() {
            return Err(StoreError::NotAStore {
                path: dir,
                missing: INDEX_FILE,
            });
        }
        // The head first: the index only grows, so it is at least as long as
        // any head written before we read it.
        let head_path = dir.join(HEAD_FILE);
        let head = match fs::read(&head_path) {
            Ok(buf) => Some(Head::decode(&buf, &head_path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read", &head_path)(e)),
        };
        let buf = fs::read(&index_path).map_err(io_err("read", &index_path))?;
        check_file_header(&buf, &INDEX_MAGIC)
            .map_err(|p| prefix_error(p, &index_path, &INDEX_MAGIC, buf.len() as u64, "index"))?;
        let head = match head {
            Some(h) => h,
            // `create` writes the index before the head: a crash in between
            // leaves an empty index and no head.
            None if buf.len() as u64 == INDEX_HEADER_LEN => Head {
                records: 0,
                index_len: INDEX_HEADER_LEN,
            },
            None => {
                return Err(StoreError::NotAStore {
                    path: dir,
                    missing: HEAD_FILE,
                })
            }
        };
        let mut store = Store {
            dir,
            infos: Vec::new(),
            index_end: INDEX_HEADER_LEN,
            records: 0,
            segment_limit: DEFAULT_SEGMENT_LIMIT,
            writer: None,
        };
        store.apply_from(&buf, INDEX_HEADER_LEN as usize, Some(head))?;
        Ok(store)
    }

    /// Opens the store in `dir`, creating it if `dir` holds none.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref();
        if dir.join(INDEX_FILE).exists() {
            Store::open(dir)
        } else {
            Store::create(dir)
        }
    }

    /// Decodes and applies the records of `buf` from byte `pos` (`buf` is
    /// the index file from byte `base`), stopping at a torn tail.
    fn apply_from(&mut self, buf: &[u8], pos: usize, head: Option<Head>) -> Result<()> {
        let path = self.dir.join(INDEX_FILE);
        let base = self.index_end - pos as u64;
        let mut pos = pos;
        let mut head_seen =
            head.is_none_or(|h| h.index_len == self.index_end && h.records == self.records);
        loop {
            let offset = base + pos as u64;
            let corrupt = |reason: String| StoreError::Corrupt {
                path: path.clone(),
                what: "index record".into(),
                offset,
                reason,
            };
            match step(buf, pos) {
                Step::End => break,
                Step::Torn { len } => {
                    tracing::debug!(
                        offset,
                        len,
                        "ignoring an incomplete record at the end of the index"
                    );
                    break;
                }
                Step::BadFrame { len, check } => {
                    return Err(corrupt(format!(
                        "length {len:#010x} does not match its check {check:#010x}"
                    )))
                }
                Step::BadCrc {
                    expected, found, ..
                } => {
                    return Err(StoreError::Checksum {
                        path,
                        what: "index record".into(),
                        offset,
                        expected,
                        found,
                    })
                }
                Step::Undecodable { reason, .. } => return Err(corrupt(reason)),
                Step::Record { record, next } => {
                    self.apply(*record).map_err(corrupt)?;
                    pos = next;
                    self.index_end = base + pos as u64;
                    self.records += 1;
                    if let Some(h) = head {
                        if h.index_len == self.index_end {
                            if h.records != self.records {
                                return Err(corrupt(format!(
                                    "the head records {} records up to byte {}, the index has {}",
                                    h.records, h.index_len, self.records
                                )));
                            }
                            head_seen = true;
                        }
                    }
                }
            }
        }
        match head {
            Some(h) if !head_seen => Err(StoreError::IndexTruncated {
                path,
                expected: h.index_len,
                records: h.records,
                found: self.index_end,
            }),
            _ => Ok(()),
        }
    }

    /// Applies one decoded record to the in-memory state.
    fn apply(&mut self, record: IndexRecord) -> std::result::Result<(), String> {
        match record {
            IndexRecord::Snapshot {
                segment,
                offset: region,
                len: file_len,
                data_offset,
                header,
                ..
            } => {
                let region_end = region
                    .checked_add(file_len)
                    .filter(|_| region >= SEGMENT_HEADER_LEN)
                    .ok_or_else(|| {
                        format!("snapshot region {region}+{file_len} is not inside a segment")
                    })?;
                let data_offset = data_offset
                    .checked_add(region)
                    .filter(|d| *d >= region + SNAP_PREFIX_LEN && *d <= region_end)
                    .ok_or_else(|| {
                        format!(
                            "data offset {data_offset} lies outside the snapshot's {file_len} bytes"
                        )
                    })?;
                let expected = self.infos.len() as u64;
                if header.id.0 != expected {
                    return Err(format!(
                        "snapshot id {} out of sequence (expected {expected})",
                        header.id
                    ));
                }
                let mut tensors = Vec::with_capacity(header.tensors.len());
                for t in header.tensors {
                    let shape: Vec<usize> = t
                        .shape
                        .iter()
                        .map(|&d| usize::try_from(d))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| {
                            format!("tensor {:?}: shape {:?} too large", t.name, t.shape)
                        })?;
                    let numel = shape
                        .iter()
                        .try_fold(1usize, |a, &d| a.checked_mul(d))
                        .ok_or_else(|| {
                            format!("tensor {:?}: shape {:?} overflows", t.name, t.shape)
                        })?;
                    let offset = data_offset
                        .checked_add(t.offset)
                        .filter(|o| {
                            (numel as u64)
                                .checked_mul(4)
                                .and_then(|b| o.checked_add(b))
                                .is_some_and(|end| end <= region_end)
                        })
                        .ok_or_else(|| {
                            format!(
                                "tensor {:?} lies beyond the snapshot's {file_len} bytes",
                                t.name
                            )
                        })?;
                    tensors.push(TensorInfo {
                        name: t.name,
                        shape,
                        numel,
                        offset,
                        crc32: t.crc32,
                    });
                }
                self.infos.push(SnapshotInfo {
                    id: header.id,
                    meta: header.meta,
                    segment,
                    file: PathBuf::from(segment_file_name(segment)),
                    offset: region,
                    file_len,
                    data_offset,
                    tensors,
                });
            }
            IndexRecord::Metrics { id, metrics } => {
                let info = usize::try_from(id.0)
                    .ok()
                    .and_then(|i| self.infos.get_mut(i))
                    .ok_or_else(|| format!("metrics for unknown snapshot {id}"))?;
                info.meta.merge_metrics(&metrics);
            }
        }
        Ok(())
    }

    /// Reads the records appended (by any process) since this `Store` last
    /// looked; returns how many snapshots were added.
    pub fn refresh(&mut self) -> Result<usize> {
        let path = self.dir.join(INDEX_FILE);
        let f = File::open(&path).map_err(io_err("open", &path))?;
        let len = f.metadata().map_err(io_err("stat", &path))?.len();
        let tail_len = usize::try_from(len.saturating_sub(self.index_end)).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; tail_len];
        f.read_exact_at(&mut buf, self.index_end)
            .map_err(io_err("read", &path))?;
        let before = self.infos.len();
        self.apply_from(&buf, 0, None)?;
        Ok(self.infos.len() - before)
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every snapshot, by id (the id is the position).
    pub fn snapshots(&self) -> &[SnapshotInfo] {
        &self.infos
    }

    /// How many snapshots the store holds.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// Whether the store holds no snapshot.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// One snapshot's description.
    pub fn get(&self, id: SnapshotId) -> Result<&SnapshotInfo> {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.infos.get(i))
            .ok_or(StoreError::UnknownSnapshot {
                id,
                count: self.infos.len(),
            })
    }

    /// The snapshots `filter` selects, by id.
    pub fn find(&self, filter: &Filter) -> Vec<&SnapshotInfo> {
        self.infos.iter().filter(|i| filter.matches(i)).collect()
    }

    /// Sets the size at which appends start a new segment file (default
    /// [`DEFAULT_SEGMENT_LIMIT`], 1 GiB). A snapshot larger than the limit
    /// gets a segment of its own. Affects only later appends.
    pub fn set_segment_limit(&mut self, bytes: u64) {
        self.segment_limit = bytes;
    }

    /// The segment the last committed snapshot lies in, and its end there.
    fn committed_segment_end(&self) -> (u32, u64) {
        self.infos.last().map_or((0, SEGMENT_HEADER_LEN), |i| {
            (i.segment, i.offset + i.file_len)
        })
    }

    fn ensure_writer(&mut self) -> Result<&mut Writer> {
        if self.writer.is_none() {
            let lock_path = self.dir.join(LOCK_FILE);
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err("open", &lock_path))?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked { path: lock_path })
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
            }
            // Now the only writer: catch up, then clear what a killed writer left.
            self.refresh()?;
            let index_path = self.dir.join(INDEX_FILE);
            let index = OpenOptions::new()
                .write(true)
                .open(&index_path)
                .map_err(io_err("open", &index_path))?;
            let len = index.metadata().map_err(io_err("stat", &index_path))?.len();
            if len > self.index_end {
                tracing::warn!(
                    path = %index_path.display(),
                    bytes = len - self.index_end,
                    "truncating an incomplete record left by an interrupted append"
                );
                index
                    .set_len(self.index_end)
                    .map_err(io_err("truncate", &index_path))?;
                index.sync_all().map_err(io_err("fsync", &index_path))?;
            }
            // The segment to append to, its unindexed tail cut off; later
            // segments hold no indexed snapshot (a crash right after a roll).
            let (number, end) = self.committed_segment_end();
            let segment = open_segment_for_append(&self.dir, number, end)?;
            let seg_dir = self.dir.join(SEGMENT_DIR);
            let entries = fs::read_dir(&seg_dir).map_err(io_err("list", &seg_dir))?;
            let mut removed = false;
            for entry in entries {
                let entry = entry.map_err(io_err("list", &seg_dir))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let stale =
                    name.ends_with(".tmp") || parse_segment_name(&name).is_some_and(|n| n > number);
                if stale {
                    let path = entry.path();
                    tracing::warn!(path = %path.display(), "removing an unindexed segment left by an interrupted append");
                    fs::remove_file(&path).map_err(io_err("remove", &path))?;
                    removed = true;
                }
            }
            if removed {
                sync_dir(&seg_dir)?;
            }
            let head_path = self.dir.join(HEAD_FILE);
            let head_file = OpenOptions::new()
                .write(true)
                .open(&head_path)
                .map_err(io_err("open", &head_path))?;
            let writer = Writer {
                _lock: lock,
                index,
                head: head_file,
                segment,
            };
            let head = Head {
                records: self.records,
                index_len: self.index_end,
            };
            Self::write_head(&writer, &head_path, &head)?;
            writer
                .head
                .sync_data()
                .map_err(io_err("fsync", &head_path))?;
            self.writer = Some(writer);
        }
        self.writer.as_mut().ok_or(StoreError::Locked {
            path: self.dir.join(LOCK_FILE),
        })
    }

    /// Writes `head` into its slot of the head file (in place, one write).
    fn write_head(writer: &Writer, path: &Path, head: &Head) -> Result<()> {
        writer
            .head
            .write_all_at(&head.encode(), (head.slot() * HEAD_SLOT_LEN) as u64)
            .map_err(io_err("write", path))
    }

    /// Writes a record at the index's committed end, fsyncs it, then
    /// records the new committed length in the head (not fsynced: see the
    /// crate docs).
    fn commit(&mut self, record: IndexRecord) -> Result<()> {
        let framed = frame(&encode("index record", &record)?)?;
        let index_path = self.dir.join(INDEX_FILE);
        let at = self.index_end;
        let writer = self.ensure_writer()?;
        writer
            .index
            .write_all_at(&framed, at)
            .map_err(io_err("append", &index_path))?;
        writer
            .index
            .sync_data()
            .map_err(io_err("fsync", &index_path))?;
        let end = at + framed.len() as u64;
        self.apply(record).map_err(|reason| StoreError::Corrupt {
            path: index_path,
            what: "new index record".into(),
            offset: at,
            reason,
        })?;
        self.index_end = end;
        self.records += 1;
        let head = Head {
            records: self.records,
            index_len: end,
        };
        let head_path = self.dir.join(HEAD_FILE);
        let writer = self.ensure_writer()?;
        Self::write_head(writer, &head_path, &head)
    }

    /// Appends a snapshot and returns its id. Its bytes are written at the
    /// committed end of the current segment file and fsynced before the
    /// index records them, so a crash at any point leaves either no trace
    /// of it (bytes past the committed end, which readers ignore and the
    /// next writer truncates) or all of it.
    pub fn append(&mut self, meta: SnapshotMeta, tensors: &[TensorRef<'_>]) -> Result<SnapshotId> {
        validate(tensors)?;
        self.ensure_writer()?;
        let id = SnapshotId(self.infos.len() as u64);
        let total: usize = tensors.iter().map(|t| t.data.len()).sum();
        let mut data = Vec::with_capacity(4 * total);
        let mut disk = Vec::with_capacity(tensors.len());
        for t in tensors {
            let start = data.len();
            for x in t.data {
                data.extend_from_slice(&x.to_le_bytes());
            }
            disk.push(DiskTensor {
                name: t.name.to_string(),
                shape: t.shape.iter().map(|&d| d as u64).collect(),
                offset: start as u64,
                crc32: crc32fast::hash(&data[start..]),
            });
        }
        let header = DiskSnapshot {
            id,
            meta,
            tensors: disk,
        };
        let header_bytes = encode("snapshot header", &header)?;
        let header_crc = crc32fast::hash(&header_bytes);
        let header_len =
            u32::try_from(header_bytes.len()).map_err(|_| StoreError::InvalidTensor {
                name: String::new(),
                reason: format!(
                    "snapshot header of {} bytes is too large",
                    header_bytes.len()
                ),
            })?;
        let mut head = Vec::with_capacity(SNAP_PREFIX_LEN as usize + header_bytes.len());
        head.extend_from_slice(&SNAP_MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&header_len.to_le_bytes());
        head.extend_from_slice(&header_crc.to_le_bytes());
        head.extend_from_slice(&header_bytes);
        let data_offset = head.len() as u64;
        let len = data_offset + data.len() as u64;

        let dir = self.dir.clone();
        let limit = self.segment_limit;
        let writer = self.ensure_writer()?;
        let seg = &writer.segment;
        if seg.end > SEGMENT_HEADER_LEN && seg.end.saturating_add(len) > limit {
            let next = seg
                .number
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt {
                    path: dir.join(SEGMENT_DIR),
                    what: "segment number".into(),
                    offset: 0,
                    reason: "no segment number left".into(),
                })?;
            writer.segment = open_segment_for_append(&dir, next, SEGMENT_HEADER_LEN)?;
        }
        let seg = &writer.segment;
        let (segment, offset) = (seg.number, seg.end);
        let path = dir.join(segment_file_name(segment));
        seg.file
            .write_all_at(&head, offset)
            .and_then(|()| seg.file.write_all_at(&data, offset + data_offset))
            .and_then(|()| seg.file.sync_data())
            .map_err(io_err("append to", &path))?;
        self.commit(IndexRecord::Snapshot {
            segment,
            offset,
            len,
            header_crc,
            data_offset,
            header,
        })?;
        if let Some(w) = self.writer.as_mut() {
            w.segment.end = offset + len;
        }
        tracing::trace!(%id, segment, offset, bytes = len, "appended snapshot");
        Ok(id)
    }

    /// Attaches metrics to an existing snapshot without rewriting it: they
    /// are merged into its metadata, a name given again replacing the old value.
    pub fn set_metrics(&mut self, id: SnapshotId, metrics: BTreeMap<String, f64>) -> Result<()> {
        self.get(id)?;
        self.commit(IndexRecord::Metrics { id, metrics })
    }

    fn open_snapshot(&self, info: &SnapshotInfo) -> Result<(File, PathBuf)> {
        let path = self.dir.join(&info.file);
        let f = File::open(&path).map_err(io_err("open", &path))?;
        Ok((f, path))
    }

    /// Reads `len` bytes at `offset` of `f`, naming a short file precisely.
    fn read_at(f: &File, path: &Path, buf: &mut [u8], offset: u64, what: &str) -> Result<()> {
        f.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                StoreError::Truncated {
                    path: path.to_path_buf(),
                    what: what.to_string(),
                    offset,
                    end: offset + buf.len() as u64,
                    len: f.metadata().map(|m| m.len()).unwrap_or(0),
                }
            } else {
                io_err("read", path)(e)
            }
        })
    }

    fn check_crc(path: &Path, t: &TensorInfo, bytes: &[u8]) -> Result<()> {
        let found = crc32fast::hash(bytes);
        if found != t.crc32 {
            return Err(StoreError::Checksum {
                path: path.to_path_buf(),
                what: format!("tensor {:?}", t.name),
                offset: t.offset,
                expected: t.crc32,
                found,
            });
        }
        Ok(())
    }

    fn decode_into(dst: &mut [f32], bytes: &[u8]) {
        for (d, c) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }

    fn tensor_info<'a>(info: &'a SnapshotInfo, name: &str) -> Result<&'a TensorInfo> {
        info.tensor(name).ok_or_else(|| StoreError::UnknownTensor {
            id: info.id,
            name: name.to_string(),
            available: info
                .tensors
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Reads one tensor of one snapshot (only its bytes), checking its CRC32.
    pub fn read_tensor(&self, id: SnapshotId, name: &str) -> Result<Tensor> {
        let info = self.get(id)?;
        let t = Self::tensor_info(info, name)?;
        let (f, path) = self.open_snapshot(info)?;
        let mut bytes = vec![0u8; 4 * t.numel];
        Self::read_at(&f, &path, &mut bytes, t.offset, &format!("tensor {name:?}"))?;
        Self::check_crc(&path, t, &bytes)?;
        let mut data = vec![0f32; t.numel];
        Self::decode_into(&mut data, &bytes);
        Ok(Tensor {
            name: t.name.clone(),
            shape: t.shape.clone(),
            data,
        })
    }

    /// Reads every tensor of one snapshot (one read of its data section),
    /// checking each CRC32.
    pub fn read_snapshot(&self, id: SnapshotId) -> Result<Vec<Tensor>> {
        let info = self.get(id)?;
        let (f, path) = self.open_snapshot(info)?;
        let end = info.offset + info.file_len;
        let mut bytes = vec![0u8; usize::try_from(end - info.data_offset).unwrap_or(0)];
        Self::read_at(&f, &path, &mut bytes, info.data_offset, "tensor data")?;
        info.tensors
            .iter()
            .map(|t| {
                let start = (t.offset - info.data_offset) as usize;
                let b =
                    bytes
                        .get(start..start + 4 * t.numel)
                        .ok_or_else(|| StoreError::Truncated {
                            path: path.clone(),
                            what: format!("tensor {:?}", t.name),
                            offset: t.offset,
                            end: t.offset + t.byte_len(),
                            len: end,
                        })?;
                Self::check_crc(&path, t, b)?;
                let mut data = vec![0f32; t.numel];
                Self::decode_into(&mut data, b);
                Ok(Tensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data,
                })
            })
            .collect()
    }

    /// Reads the named tensors of every snapshot `filter` selects as one
    /// matrix, a row per snapshot (by id). Only those bytes are read, in
    /// parallel; every CRC32 is checked.
    pub fn read_matrix(&self, filter: &Filter, names: &[&str]) -> Result<WeightMatrix> {
        let ids: Vec<SnapshotId> = self.find(filter).iter().map(|i| i.id).collect();
        self.read_matrix_ids(&ids, names)
    }

    /// Like [`Store::read_matrix`] with the weight tensors of layer `layer`
    /// (see [`SnapshotInfo::layer_tensor_names`], as named in the first
    /// selected snapshot).
    pub fn read_layer(&self, filter: &Filter, layer: u32) -> Result<WeightMatrix> {
        let ids: Vec<SnapshotId> = self.find(filter).iter().map(|i| i.id).collect();
        let Some(first) = ids.first() else {
            return Err(StoreError::NoTensors {
                reason: "the filter selects no snapshot".into(),
            });
        };
        let info = self.get(*first)?;
        let names = info.layer_tensor_names(layer);
        if names.is_empty() {
            return Err(StoreError::NoTensors {
                reason: format!("snapshot {first} has no tensor named layer{layer}.*"),
            });
        }
        self.read_matrix_ids(&ids, &names)
    }

    /// Like [`Store::read_matrix`] for the given snapshots, rows in that order.
    pub fn read_matrix_ids(&self, ids: &[SnapshotId], names: &[&str]) -> Result<WeightMatrix> {
        if names.is_empty() {
            return Err(StoreError::NoTensors {
                reason: "no tensor names given".into(),
            });
        }
        // Plan: per row, the requested tensors (row-major in `plan`). The
        // tensors' positions in the first row are tried first: snapshots of
        // one network list their tensors in the same order.
        let mut plan: Vec<&TensorInfo> = Vec::with_capacity(ids.len() * names.len());
        let mut rows: Vec<&SnapshotInfo> = Vec::with_capacity(ids.len());
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(names.len());
        let mut hints: Vec<usize> = Vec::with_capacity(names.len());
        for (row, &id) in ids.iter().enumerate() {
            let info = self.get(id)?;
            for (k, name) in names.iter().enumerate() {
                let t = match hints.get(k).and_then(|&h| info.tensors.get(h)) {
                    Some(t) if t.name == *name => t,
                    _ => Self::tensor_info(info, name)?,
                };
                if row == 0 {
                    shapes.push(t.shape.clone());
                    hints.push(
                        info.tensors
                            .iter()
                            .position(|x| std::ptr::eq(x, t))
                            .unwrap_or(0),
                    );
                } else if shapes[k] != t.shape {
                    return Err(StoreError::ShapeMismatch {
                        name: name.to_string(),
                        id,
                        first: ids[0],
                        expected: shapes[k].clone(),
                        found: t.shape.clone(),
                    });
                }
                plan.push(t);
            }
            rows.push(info);
        }
        // Each segment file is opened once; rows are read from it with
        // positional reads in parallel.
        let mut segments: BTreeMap<u32, (File, PathBuf)> = BTreeMap::new();
        for info in &rows {
            if let std::collections::btree_map::Entry::Vacant(e) = segments.entry(info.segment) {
                e.insert(self.open_snapshot(info)?);
            }
        }
        let width: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        let mut data = Array2::<f32>::zeros((ids.len(), width));
        data.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(rows.par_iter().zip(plan.par_chunks(names.len())))
            .with_min_len(32)
            .try_for_each_init(
                Vec::new,
                |buf: &mut Vec<u8>, (mut row, (info, tensors))| -> Result<()> {
                    let (f, path) =
                        segments
                            .get(&info.segment)
                            .ok_or(StoreError::UnknownSnapshot {
                                id: info.id,
                                count: self.infos.len(),
                            })?;
                    let mut col = 0usize;
                    let mut rest = tensors;
                    while let Some(first) = rest.first() {
                        // A run of tensors adjacent in the file: one read.
                        let mut n = 1;
                        let mut end = first.offset + first.byte_len();
                        while let Some(t) = rest.get(n).filter(|t| t.offset == end) {
                            end += t.byte_len();
                            n += 1;
                        }
                        let (run, tail) = rest.split_at(n);
                        rest = tail;
                        buf.resize(usize::try_from(end - first.offset).unwrap_or(0), 0);
                        Self::read_at(f, path, buf, first.offset, "tensor data")?;
                        let mut at = 0usize;
                        for t in run {
                            let bytes = &buf[at..at + 4 * t.numel];
                            Self::check_crc(path, t, bytes)?;
                            let mut dst = row.slice_mut(ndarray::s![col..col + t.numel]);
                            match dst.as_slice_mut() {
                                Some(d) => Self::decode_into(d, bytes),
                                None => {
                                    let mut tmp = vec![0f32; t.numel];
                                    Self::decode_into(&mut tmp, bytes);
                                    dst.assign(&ndarray::ArrayView1::from(&tmp));
                                }
                            }
                            at += 4 * t.numel;
                            col += t.numel;
                        }
                    }
                    Ok(())
                },
            )?;
        Ok(WeightMatrix {
            ids: ids.to_vec(),
            names: names.iter().map(|n| n.to_string()).collect(),
            shapes,
            data,
        })
    }
}
