//! The crate's one error type.
use std::path::PathBuf;

/// Everything that can go wrong while locating, installing, reading or
/// subsetting CIFAR-10. Every variant names the file (and, where it applies,
/// the record index or byte offset) and what was expected instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// No CIFAR-10 folder was found in any of the searched places.
    #[error(
        "CIFAR-10 not found; looked in:\n{}\nGet it with `landscape data install` (downloads the \
         official cifar-10-binary.tar.gz, 170 MB, MD5-checked, into <workspace>/data) or \
         `landscape data install --archive PATH` (a local cifar-10-binary.tar.gz or \
         cifar-10-python.tar.gz), or point `--data DIR` or the environment variable \
         LANDSCAPE_CIFAR10 at an existing cifar-10-batches-bin or cifar-10-batches-py folder",
        list_paths(.searched)
    )]
    NotFound {
        /// The places that were searched, in order.
        searched: Vec<PathBuf>,
    },

    /// A file of the layout is missing.
    #[error("{}: missing; a CIFAR-10 {layout} folder holds {expected}", .path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// The layout being read ("binary" or "python").
        layout: &'static str,
        /// The files that the layout needs.
        expected: String,
    },

    /// An I/O error on a named file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A binary batch ends early.
    #[error(
        "{}: truncated: {len} bytes, expected {expected_records} records of 3,073 bytes \
         ({expected_len} bytes); record {record} (byte offset {offset}) is {}",
        .path.display(),
        if *.len % 3073 == 0 { "missing" } else { "cut short" }
    )]
    TruncatedBatch {
        /// The batch file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The number of records it should hold.
        expected_records: usize,
        /// The length it should have.
        expected_len: u64,
        /// The first record that is incomplete.
        record: usize,
        /// Byte offset of that record.
        offset: u64,
    },

    /// A binary batch is longer than its records.
    #[error(
        "{}: oversized: {len} bytes, expected {expected_records} records of 3,073 bytes \
         ({expected_len} bytes); unexpected data from byte offset {expected_len}",
        .path.display()
    )]
    OversizedBatch {
        /// The batch file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The number of records it should hold.
        expected_records: usize,
        /// The length it should have.
        expected_len: u64,
    },

    /// A label is not a class index 0-9.
    #[error(
        "{}: record {record}{}: label {label} is outside 0-9",
        .path.display(),
        fmt_offset(*.offset)
    )]
    LabelOutOfRange {
        /// The batch file.
        path: PathBuf,
        /// Index of the record in that file.
        record: usize,
        /// Byte offset of the label (binary layout only).
        offset: Option<u64>,
        /// The label found.
        label: i64,
    },

    /// `batches.meta.txt` / `batches.meta` does not list the 10 class names.
    #[error("{}: {reason}; expected the 10 CIFAR-10 class names", .path.display())]
    BadMeta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A pickle file is malformed (or uses a feature this reader does not implement).
    #[error("{}: malformed pickle at byte offset {offset}: {reason}", .path.display())]
    Pickle {
        /// The pickle file.
        path: PathBuf,
        /// Byte offset of the offending opcode.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A pickle decodes, but not to a CIFAR-10 batch.
    #[error("{}: field `{field}`: expected {expected}, found {found}", .path.display())]
    PickleShape {
        /// The pickle file.
        path: PathBuf,
        /// The dictionary key (or `<top>` for the whole object).
        field: String,
        /// What a CIFAR-10 batch holds there.
        expected: String,
        /// What the file holds.
        found: String,
    },

    /// A `.tar.gz` archive cannot be read.
    #[error("{}: corrupt archive{}: {source}", .path.display(), fmt_entry(.entry.as_deref()))]
    CorruptArchive {
        /// The archive.
        path: PathBuf,
        /// The entry being read, when known.
        entry: Option<String>,
        /// The gzip or tar error.
        #[source]
        source: std::io::Error,
    },

    /// An archive reads fine but does not hold one CIFAR-10 layout.
    #[error("{}: not a CIFAR-10 archive: {reason}", .path.display())]
    ArchiveLayout {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An archive unpacks, but a file in it is wrong (the inner error names
    /// it inside the temporary folder it was extracted to).
    #[error("{}: the extracted data does not check out: {source}", .path.display())]
    ArchiveContent {
        /// The archive.
        path: PathBuf,
        /// What is wrong with its content.
        #[source]
        source: Box<DatasetError>,
    },

    /// The download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// The downloaded archive has the wrong MD5.
    #[error(
        "{}: MD5 {actual} does not match the official {expected}; the file was deleted, \
         try again or use `landscape data install --archive PATH`",
        .path.display()
    )]
    Checksum {
        /// Where the download was written.
        path: PathBuf,
        /// The published MD5.
        expected: String,
        /// The MD5 of what arrived.
        actual: String,
    },

    /// The destination already holds CIFAR-10.
    #[error(
        "{}: already installed; check it with `landscape data verify`, or reinstall with --force",
        .path.display()
    )]
    AlreadyInstalled {
        /// The existing folder.
        path: PathBuf,
    },

    /// A subset asks for more images than a split (or a class) has.
    #[error("{what}: asked for {requested} images, only {available} available")]
    SubsetTooLarge {
        /// Which subset (and class).
        what: String,
        /// Images requested.
        requested: usize,
        /// Images available.
        available: usize,
    },

    /// Buffers or parameters that do not fit together.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fmt_offset(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!(" (byte offset {o})"))
}

fn fmt_entry(entry: Option<&str>) -> String {
    entry.map_or_else(String::new, |e| format!(" (entry {e})"))
}
