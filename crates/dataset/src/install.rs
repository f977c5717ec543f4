//! Installing CIFAR-10 from the official URL or a local archive.
//!
//! Everything is written inside a temporary folder next to the destination
//! (`<dir>/.landscape-install-XXXXXX`): the download, the extracted files.
//! Only after the archive is checked (MD5 for a download) and its content
//! read in full (every size and label) is the layout folder moved into place
//! with one `rename`, so an interruption never leaves a half-written
//! `cifar-10-batches-*` folder. A temporary folder left by a killed process is
//! removed by the next install.
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::cifar::{LoadParams, VerifyReport};
use crate::error::{DatasetError, Result};
use crate::layout::Layout;

/// The official binary archive.
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Its published MD5.
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

const TEMP_PREFIX: &str = ".landscape-install-";

/// A stage of an install, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Downloading the archive (bytes received).
    Download,
    /// Decompressing and unpacking it (compressed bytes read).
    Extract,
    /// Reading every extracted file (no byte count).
    Verify,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Download => "download",
            Stage::Extract => "extract",
            Stage::Verify => "verify",
        })
    }
}

/// Receives progress of an install; the library itself prints nothing.
pub trait Progress {
    /// A stage starts; `total` is its length in bytes when known.
    fn start(&mut self, stage: Stage, total: Option<u64>);
    /// `bytes` more bytes of the current stage are done.
    fn advance(&mut self, bytes: u64);
    /// The current stage is done.
    fn finish(&mut self, stage: Stage);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _stage: Stage, _total: Option<u64>) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self, _stage: Stage) {}
}

/// What to install and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallParams {
    archive: Option<PathBuf>,
    dir: PathBuf,
    force: bool,
    url: String,
    md5: String,
    check: LoadParams,
}

/// Where the installed data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Downloaded and MD5-checked.
    Download {
        /// The URL.
        url: String,
        /// The MD5 of what arrived (equal to the expected one).
        md5: String,
    },
    /// Extracted from a local archive (structure checked, MD5 not required).
    Archive {
        /// The archive.
        path: PathBuf,
        /// Its MD5, for the record.
        md5: String,
    },
}

/// The outcome of an install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallReport {
    /// The installed layout folder (`<dir>/cifar-10-batches-bin` or `-py`).
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// Size of the archive in bytes.
    pub archive_bytes: u64,
    /// Whether an existing installation was replaced (`force`).
    pub replaced: bool,
    /// What the installed folder holds.
    pub verify: VerifyReport,
}

impl InstallParams {
    /// Install into `dir` (the layout folder goes inside it), downloading the
    /// official archive unless [`InstallParams::archive`] is set.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            archive: None,
            dir: dir.into(),
            force: false,
            url: OFFICIAL_URL.into(),
            md5: OFFICIAL_MD5.into(),
            check: LoadParams::default(),
        }
    }

    /// Extract this local `.tar.gz` (either layout) instead of downloading.
    pub fn archive(mut self, archive: Option<PathBuf>) -> Self {
        self.archive = archive;
        self
    }

    /// Replace an existing installation of the same layout.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Download from a mirror instead; the official MD5 is still required
    /// unless `md5` is changed too.
    pub fn url(mut self, url: impl Into<String>, md5: impl Into<String>) -> Self {
        self.url = url.into();
        self.md5 = md5.into().to_ascii_lowercase();
        self
    }

    /// How the extracted folder is checked before it is moved into place
    /// (default: the official sizes, 10,000 records per batch).
    pub fn check_with(mut self, params: LoadParams) -> Self {
        self.check = params;
        self
    }

    /// The destination folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs the install, reporting progress to `progress`.
    pub fn install(&self, progress: &mut dyn Progress) -> Result<InstallReport> {
        let dir = &self.dir;
        fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
        remove_stale_temps(dir);
        // Refuse early, before a long download or extraction, when the
        // layout that would be installed is already there.
        match &self.archive {
            None => {
                self.check_free(Layout::Binary)?;
            }
            Some(archive) => {
                if let Some(layout) = peek_layout(archive) {
                    self.check_free(layout)?;
                }
            }
        }
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(dir)
            .map_err(|e| DatasetError::io(dir, e))?;

        // A download is MD5-checked before anything is extracted from it.
        let (archive, download_md5) = match &self.archive {
            Some(path) => (path.clone(), None),
            None => {
                let path = temp.path().join("cifar-10-binary.tar.gz");
                let md5 = download(&self.url, &path, progress)?;
                if md5 != self.md5 {
                    return Err(DatasetError::Checksum {
                        path,
                        expected: self.md5.clone(),
                        actual: md5,
                    });
                }
                (path, Some(md5))
            }
        };
        let archive_bytes = fs::metadata(&archive)
            .map_err(|e| DatasetError::io(&archive, e))?
            .len();

        let out = temp.path().join("extract");
        fs::create_dir(&out).map_err(|e| DatasetError::io(&out, e))?;
        let (layout, archive_md5) = extract(&archive, &out, progress)?;
        let source = match download_md5 {
            Some(md5) => Source::Download {
                url: self.url.clone(),
                md5,
            },
            None => Source::Archive {
                path: archive.clone(),
                md5: archive_md5,
            },
        };
        let extracted = out.join(layout.folder_name());

        progress.start(Stage::Verify, None);
        let report = self
            .check
            .load(&extracted)
            .map(|c| c.report())
            .map_err(|e| DatasetError::ArchiveContent {
                path: archive.clone(),
                source: Box::new(e),
            })?;
        progress.finish(Stage::Verify);

        let target = dir.join(layout.folder_name());
        let replaced = self.check_free(layout)?;
        if replaced {
            let old = temp.path().join("previous");
            fs::rename(&target, &old).map_err(|e| DatasetError::io(&target, e))?;
        }
        fs::rename(&extracted, &target).map_err(|e| DatasetError::io(&target, e))?;
        tracing::info!(path = %target.display(), "installed CIFAR-10");
        let verify = VerifyReport {
            dir: target.clone(),
            ..report
        };
        Ok(InstallReport {
            path: target,
            source,
            archive_bytes,
            replaced,
            verify,
        })
    }

    /// Whether the layout's folder exists (and may be replaced); an error if
    /// it exists without `force`.
    fn check_free(&self, layout: Layout) -> Result<bool> {
        let target = self.dir.join(layout.folder_name());
        if target.exists() {
            if self.force {
                return Ok(true);
            }
            return Err(DatasetError::AlreadyInstalled { path: target });
        }
        Ok(false)
    }
}

/// Installs CIFAR-10 as `params` say (see [`InstallParams::install`]).
pub fn install(params: &InstallParams, progress: &mut dyn Progress) -> Result<InstallReport> {
    params.install(progress)
}

/// Removes temporary folders left in `dir` by an interrupted install.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            match fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed an interrupted install"),
                Err(e) => tracing::warn!(path = %path.display(), "could not remove: {e}"),
            }
        }
    }
}

/// A reader that reports the bytes it reads and hashes them.
struct Counting<'a, R> {
    inner: R,
    progress: &'a mut dyn Progress,
    md5: Md5,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}

fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads `url` to `path`, returning the MD5 of the bytes written.
fn download(url: &str, path: &Path, progress: &mut dyn Progress) -> Result<String> {
    let fail = |reason: String| DatasetError::Download {
        url: url.to_string(),
        reason,
    };
    tracing::info!(url, "downloading CIFAR-10");
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok());
    progress.start(Stage::Download, total);
    let mut reader = response.into_reader();
    let mut file = File::create(path).map_err(|e| DatasetError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("after {received} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| DatasetError::io(path, e))?;
        received += n as u64;
        progress.advance(n as u64);
    }
    file.sync_all().map_err(|e| DatasetError::io(path, e))?;
    if let Some(total) = total {
        if received != total {
            return Err(fail(format!(
                "connection closed after {received} of {total} bytes"
            )));
        }
    }
    progress.finish(Stage::Download);
    Ok(to_hex(&hasher.finalize()))
}

/// The layout named by the first entries of `archive`, if they are readable
/// and name one (a hint only: [`extract`] decides).
fn peek_layout(archive: &Path) -> Option<Layout> {
    let file = File::open(archive).ok()?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut entries = tar.entries().ok()?;
    let entry = entries.next()?.ok()?;
    let path = entry.path().ok()?;
    let first = path
        .components()
        .find(|c| matches!(c, std::path::Component::Normal(_)))?;
    Layout::ALL
        .into_iter()
        .find(|l| first.as_os_str() == l.folder_name())
}

/// Unpacks `archive` into `out` and returns the layout it holds and the
/// archive's MD5.
fn extract(archive: &Path, out: &Path, progress: &mut dyn Progress) -> Result<(Layout, String)> {
    let file = File::open(archive).map_err(|e| DatasetError::io(archive, e))?;
    let total = file.metadata().map(|m| m.len()).ok();
    progress.start(Stage::Extract, total);
    let corrupt = |entry: Option<String>, source: io::Error| DatasetError::CorruptArchive {
        path: archive.to_path_buf(),
        entry,
        source,
    };
    let md5 = {
        let counting = Counting {
            inner: BufReader::with_capacity(1 << 20, file),
            progress: &mut *progress,
            md5: Md5::new(),
        };
        let gz = flate2::read::GzDecoder::new(counting);
        let mut tar = tar::Archive::new(gz);
        let entries = tar.entries().map_err(|e| corrupt(None, e))?;
        let mut count = 0usize;
        for entry in entries {
            let mut entry = entry.map_err(|e| corrupt(None, e))?;
            let name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "<unreadable name>".into());
            let unpacked = entry
                .unpack_in(out)
                .map_err(|e| corrupt(Some(name.clone()), e))?;
            if !unpacked {
                return Err(DatasetError::ArchiveLayout {
                    path: archive.to_path_buf(),
                    reason: format!("entry {name} points outside the archive's folder"),
                });
            }
            count += 1;
        }
        if count == 0 {
            return Err(DatasetError::ArchiveLayout {
                path: archive.to_path_buf(),
                reason: "it holds no files".into(),
            });
        }
        // Read the gzip stream to its end (this checks its CRC), then hash
        // whatever follows it.
        let mut gz = tar.into_inner();
        io::copy(&mut gz, &mut io::sink()).map_err(|e| corrupt(None, e))?;
        let mut counting = gz.into_inner();
        io::copy(&mut counting, &mut io::sink()).map_err(|e| DatasetError::io(archive, e))?;
        to_hex(&counting.md5.finalize())
    };
    progress.finish(Stage::Extract);

    let found: Vec<Layout> = Layout::ALL
        .into_iter()
        .filter(|l| out.join(l.folder_name()).is_dir())
        .collect();
    match found.as_slice() {
        [layout] => Ok((*layout, md5)),
        [] => {
            let mut top: Vec<String> = fs::read_dir(out)
                .map_err(|e| DatasetError::io(out, e))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            top.sort();
            Err(DatasetError::ArchiveLayout {
                path: archive.to_path_buf(),
                reason: format!(
                    "expected a top-level folder cifar-10-batches-bin or cifar-10-batches-py, \
                     found {top:?}"
                ),
            })
        }
        _ => Err(DatasetError::ArchiveLayout {
            path: archive.to_path_buf(),
            reason: "it holds both cifar-10-batches-bin and cifar-10-batches-py; \
                     extract one at a time"
                .into(),
        }),
    }
}
