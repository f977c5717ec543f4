//! Crash-safe snapshot store for weight trajectories, read layer by layer.
//!
//! Every experiment of the project records hundreds of models (a *snapshot*
//! each: named `f32` tensors plus metadata), and every analysis reads one
//! layer's weights from a chosen set of them. A [`Store`] is a folder:
//!
//! ```text
//! store/
//!   index.log            append-only log of checksummed records (bincode)
//!   index.head           committed length of index.log (two slots)
//!   writer.lock          exclusive lock held by the one writer
//!   segments/000000.seg, 000001.seg, ...   append-only pack files of snapshots
//! ```
//!
//! Snapshots are packed back to back into a few large segment files (a new
//! one is started when the current one would pass
//! [`DEFAULT_SEGMENT_LIMIT`], 1 GiB), so reading one layer of a thousand
//! snapshots opens one file, not a thousand.
//!
//! # Use
//!
//! ```
//! use landscape_trajectory::{Filter, SnapshotKind, SnapshotMeta, Store, TensorRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let mut store = Store::create(dir.path().join("store"))?;
//! let w = vec![0.5f32; 2 * 3];
//! let b = vec![0.1f32; 2];
//! let id = store.append(
//!     SnapshotMeta::new("main", SnapshotKind::Trained).with_epoch(0),
//!     &[
//!         TensorRef { name: "layer2.weight", shape: &[2, 3], data: &w },
//!         TensorRef { name: "layer2.bias", shape: &[2], data: &b },
//!     ],
//! )?;
//! store.set_metrics(id, [("test_error".to_string(), 12.5)].into())?;
//! let m = store.read_layer(&"run=main,epoch=0..10".parse::<Filter>()?, 2)?;
//! assert_eq!(m.matrix().dim(), (1, 8));
//! assert!(store.verify()?.is_intact());
//! # Ok(()) }
//! ```
//!
//! # On-disk format (version 2)
//!
//! All integers are little-endian. CRC32 is the IEEE polynomial
//! (`crc32fast`). Headers and records are encoded with **bincode 1.3.3**
//! (pinned), configured as little-endian, fixed-width integers (`u64` for
//! lengths and `usize`), no trailing bytes. Version 1 (one file per
//! snapshot, `snapshots/NNNNNNNN.snap`) is not read: opening such a store
//! fails with [`StoreError::UnsupportedVersion`].
//!
//! **`index.log`** starts with a 16-byte header: magic `LSCP-IDX` (8 bytes),
//! format version `u32`, CRC32 of those 12 bytes `u32`. Then records, each
//! framed as `len: u32`, `!len: u32` (its bitwise complement, so a damaged
//! length is told apart from an interrupted append), `crc32(payload): u32`,
//! and `len` bytes of payload, the bincode of an enum:
//!
//! - `Snapshot { segment: u32, offset: u64, len: u64, header_crc: u32,
//!   data_offset: u64, header }`: a committed snapshot: the number of its
//!   segment file, the byte offset and length of its region there, the
//!   CRC32 of its header, where its data section starts (from the region's
//!   start), and a copy of its header (below). Snapshot ids are sequential:
//!   the n-th snapshot record has id n.
//! - `Metrics { id, metrics: BTreeMap<String, f64> }`: metrics attached
//!   later; merged into the snapshot's metadata in log order (the last value
//!   of a name wins). Tensors are never rewritten.
//!
//! **`index.head`** (64 bytes): two 32-byte slots, each magic `LSCP-HED`,
//! version `u32`, number of committed records `u64`, committed length of
//! `index.log` `u64`, CRC32 of the slot's first 28 bytes. After the n-th
//! record the writer overwrites slot `n % 2` in place; readers take the
//! valid slot with the most records, so a torn slot write never loses the
//! head. The index must hold at least what the head commits: losing
//! committed records (a truncation at a record boundary) is detected.
//!
//! **A segment file** `segments/NNNNNN.seg` (the number, 6 digits) starts
//! with a 16-byte header: magic `LSCP-SEG`, version `u32`, CRC32 of those
//! 12 bytes. Then snapshot regions, back to back in id order, each laid out
//! as follows (offsets from the region's start):
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `LSCP-SNP` |
//! | 8..12 | format version `u32` |
//! | 12..16 | header length `h` `u32` |
//! | 16..20 | CRC32 of the header `u32` |
//! | 20..20+h | header: bincode of `{ id: u64, meta: SnapshotMeta, tensors: Vec<{ name: String, shape: Vec<u64>, offset: u64, crc32: u32 }> }` |
//! | 20+h.. | data section: each tensor's values as raw little-endian `f32`, row-major, at `offset` from the section's start, back to back in the order given |
//!
//! Bytes past the last indexed region of the last segment are what an
//! interrupted append left: readers never look at them. Every other byte
//! of every file is covered by a magic number, a version, a length
//! cross-check or a CRC32. `SnapshotMeta` is serialized field by field
//! (`run: String, parent: Option<u64>, kind: enum, stage: Option<u32>,
//! epoch: Option<u32>, step: Option<u64>, metrics: BTreeMap<String, f64>,
//! extra: BTreeMap<String, String>`): changing it changes the format version.
//!
//! # Crash safety and concurrency
//!
//! An append writes the snapshot's region at the committed end of the
//! current segment (the end of its last indexed snapshot), fdatasyncs the
//! segment, writes the index record at the index's committed end and
//! fdatasyncs the index, then overwrites a head slot (two fdatasyncs per
//! append, no rename, no new file). A snapshot is committed once its index
//! record is durable. A process killed at any moment leaves unindexed bytes
//! at the end of the segment, a segment started but not yet indexed, an
//! incomplete last index record or a head behind the index: readers ignore
//! all four ([`verify`] reports them as warnings) and the next writer
//! clears them, under the writer lock, before appending (it truncates the
//! segment and the index to their committed ends and removes segments after
//! the last indexed one).
//!
//! The head is not fsynced per append (the index records it describes
//! are): after a power loss it may lag the index, which is harmless, and
//! the writer fsyncs it when it takes the lock and when it is dropped. A
//! writer refuses (with a typed error) to append to a segment shorter than
//! its committed end, and a store whose index lost committed records does
//! not open, so damage is never "repaired" by truncating good snapshots.
//!
//! Readers never lock: [`Store::open`] and [`Store::refresh`] see exactly
//! the snapshots whose index records are complete, and their bytes are
//! durable by then. One writer at a time: the first write of a [`Store`]
//! takes an exclusive lock on `writer.lock` (released by the OS if the
//! process dies).
//!
//! # Reading
//!
//! The index holds where every tensor lies, so [`Store::read_tensor`] and
//! [`Store::read_matrix`] read only the bytes asked for: each segment file
//! involved is opened once per call, and the rows are read with positional
//! reads (`pread`) in parallel (rayon), runs of adjacent tensors in one
//! read, every tensor's CRC32 checked. A damaged, truncated or foreign file
//! gives a typed [`StoreError`] naming the file and byte offset, never a
//! panic nor a silently wrong matrix.

mod error;
mod filter;
mod format;
mod meta;
mod store;
mod verify;

pub use error::{Result, StoreError};
pub use filter::Filter;
pub use format::{
    DEFAULT_SEGMENT_LIMIT, FORMAT_VERSION, HEAD_MAGIC, INDEX_MAGIC, SEGMENT_MAGIC, SNAP_MAGIC,
};
pub use meta::{
    SnapshotId, SnapshotInfo, SnapshotKind, SnapshotMeta, Tensor, TensorInfo, TensorRef,
};
pub use store::{
    segment_file_name, Store, WeightMatrix, HEAD_FILE, INDEX_FILE, LOCK_FILE, SEGMENT_DIR,
};
pub use verify::{verify, Finding, Problem, Severity, VerifyReport};

impl Store {
    /// Checks every byte of this store; see [`verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        verify(self.dir())
    }
}
