//! The crate's error type.
use std::path::PathBuf;

use crate::meta::SnapshotId;

/// Everything that can go wrong opening, writing or reading a store.
///
/// Errors about stored bytes name the file and the byte offset where the
/// problem was found, and what was expected there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on a file or folder.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "read", "rename", ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `Store::open` on a folder that holds no store.
    #[error("{} is not a trajectory store (no {missing})", path.display())]
    NotAStore {
        /// The folder.
        path: PathBuf,
        /// The file that should be there.
        missing: &'static str,
    },
    /// `Store::create` on a folder that already holds a store.
    #[error("{} already holds a trajectory store", path.display())]
    AlreadyExists {
        /// The folder.
        path: PathBuf,
    },
    /// Another process (or another `Store` in this one) is writing to the store.
    #[error("{} is locked by another writer", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file does not start with the magic number of its kind: a foreign file.
    #[error("{}: bad magic number at byte 0: expected {expected:?}, found {found:?}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number of this kind of file.
        expected: String,
        /// What the file starts with (lossy text).
        found: String,
    },
    /// A file written by a newer (or unknown) format version.
    #[error("{}: format version {found} at byte 8 is not supported (this build reads version {supported})", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// Stored bytes whose CRC32 does not match the recorded one.
    #[error("{}: checksum mismatch for {what} at byte {offset}: expected {expected:#010x}, found {found:#010x}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What the bytes are (a tensor name, "header", "index record").
        what: String,
        /// Where the checksummed bytes start.
        offset: u64,
        /// The recorded checksum.
        expected: u32,
        /// The checksum of the bytes as read.
        found: u32,
    },
    /// A file is shorter than the structure it holds says.
    #[error("{}: truncated: {what} needs bytes {offset}..{end}, the file has {len}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Start of the needed range.
        offset: u64,
        /// End (exclusive) of the needed range.
        end: u64,
        /// The file's length.
        len: u64,
    },
    /// A structurally invalid record or header.
    #[error("{}: corrupt {what} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was being decoded.
        what: String,
        /// Where it starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The index holds fewer committed bytes than its head file records:
    /// committed snapshots or metrics were lost.
    #[error("{}: index truncated: the head records {expected} committed bytes ({records} records), the index has {found} valid bytes", path.display())]
    IndexTruncated {
        /// The index file.
        path: PathBuf,
        /// Committed length according to the head.
        expected: u64,
        /// Records according to the head.
        records: u64,
        /// Valid length found.
        found: u64,
    },
    /// Serializing a header or record failed.
    #[error("could not encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The bincode error.
        source: bincode::Error,
    },
    /// No snapshot has this id.
    #[error("no snapshot {id} in the store (it holds {count} snapshots)")]
    UnknownSnapshot {
        /// The id asked for.
        id: SnapshotId,
        /// How many snapshots the store holds.
        count: usize,
    },
    /// The snapshot holds no tensor of this name.
    #[error("snapshot {id} has no tensor {name:?} (it has: {available})")]
    UnknownTensor {
        /// The snapshot.
        id: SnapshotId,
        /// The name asked for.
        name: String,
        /// The names it has, comma-separated.
        available: String,
    },
    /// A tensor given to `append` is invalid (shape vs data length, name).
    #[error("invalid tensor {name:?}: {reason}")]
    InvalidTensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The snapshots selected for one matrix disagree on a tensor's shape.
    #[error("tensor {name:?} has shape {found:?} in snapshot {id}, but {expected:?} in snapshot {first}")]
    ShapeMismatch {
        /// The tensor.
        name: String,
        /// The snapshot that disagrees.
        id: SnapshotId,
        /// The first selected snapshot.
        first: SnapshotId,
        /// Its shape there.
        expected: Vec<usize>,
        /// The shape in `id`.
        found: Vec<usize>,
    },
    /// A matrix was asked for with no tensor names, or a layer that matches none.
    #[error("no tensors selected: {reason}")]
    NoTensors {
        /// Why.
        reason: String,
    },
    /// A `--filter` string that does not parse.
    #[error("bad filter {input:?}: {reason}")]
    Filter {
        /// The term that failed.
        input: String,
        /// What was expected.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}
