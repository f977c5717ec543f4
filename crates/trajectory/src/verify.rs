//! Checking every byte of a store.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bincode::Options;
use rayon::prelude::*;

use crate::error::{io_err, Result};
use crate::format::{
    bincode_opts, check_file_header, check_magic, step, u32_at, DiskSnapshot, Head, HeadSlots,
    IndexRecord, PrefixProblem, Step, FORMAT_VERSION, HEAD_MAGIC, HEAD_SLOT_LEN, INDEX_HEADER_LEN,
    INDEX_MAGIC, MAX_RECORD_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SNAP_MAGIC, SNAP_PREFIX_LEN,
};
use crate::meta::SnapshotId;
use crate::store::{parse_segment_name, segment_file_name, HEAD_FILE, INDEX_FILE, SEGMENT_DIR};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// What an interrupted append leaves (unindexed bytes at the end of the
    /// last segment, an unindexed new segment, an incomplete last index
    /// record, a head behind the index): harmless, cleared by the next append.
    Warning,
    /// Damage: stored bytes that are missing or not what was written.
    Error,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file does not exist.
    Missing,
    /// The file's length differs from the recorded one.
    Length {
        /// Recorded length.
        expected: u64,
        /// Actual length.
        found: u64,
    },
    /// The file does not start with the expected magic number.
    BadMagic {
        /// Expected magic.
        expected: String,
        /// What the file starts with.
        found: String,
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// A CRC32 mismatch.
    Checksum {
        /// What the bytes are.
        what: String,
        /// Recorded checksum.
        expected: u32,
        /// Checksum of the bytes as read.
        found: u32,
    },
    /// Bytes that do not decode, or disagree with another copy.
    Corrupt {
        /// What is wrong.
        reason: String,
    },
    /// The index is shorter than its head records: committed records are lost.
    IndexTruncated {
        /// Committed length according to the head.
        expected: u64,
        /// Valid length found.
        found: u64,
    },
    /// An incomplete record at the end of the index.
    TornRecord {
        /// Its bytes.
        len: u64,
    },
    /// Complete records past the head's committed length (a crash between
    /// the index append and the head update).
    HeadBehind {
        /// Committed length according to the head.
        head: u64,
        /// Valid length found.
        found: u64,
    },
    /// A segment file that the index does not refer to.
    Unindexed,
    /// Bytes past the last indexed snapshot of a segment.
    UnindexedTail {
        /// Where they start.
        start: u64,
        /// How many.
        len: u64,
    },
    /// A temporary file.
    Temporary,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "file missing"),
            Problem::Length { expected, found } => {
                write!(f, "length {found} bytes, expected {expected}")
            }
            Problem::BadMagic { expected, found } => {
                write!(f, "bad magic {found:?}, expected {expected:?}")
            }
            Problem::UnsupportedVersion { found } => {
                write!(
                    f,
                    "format version {found}, this build reads {FORMAT_VERSION}"
                )
            }
            Problem::Checksum {
                what,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{what}: checksum {found:#010x}, expected {expected:#010x}"
                )
            }
            Problem::Corrupt { reason } => write!(f, "corrupt: {reason}"),
            Problem::IndexTruncated { expected, found } => {
                write!(
                    f,
                    "index truncated: {found} valid bytes, the head commits {expected}"
                )
            }
            Problem::TornRecord { len } => write!(
                f,
                "incomplete last record ({len} bytes, an interrupted append)"
            ),
            Problem::HeadBehind { head, found } => {
                write!(
                    f,
                    "records past the head's {head} bytes up to {found} (an interrupted append)"
                )
            }
            Problem::Unindexed => write!(
                f,
                "segment file not in the index (an interrupted append, or lost index records)"
            ),
            Problem::UnindexedTail { start, len } => write!(
                f,
                "{len} bytes from byte {start} belong to no indexed snapshot (an interrupted append, or lost index records)"
            ),
            Problem::Temporary => write!(f, "temporary file (an interrupted append)"),
        }
    }
}

/// One thing found wrong, located as precisely as possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// The file, relative to the store folder.
    pub file: PathBuf,
    /// The byte offset in the file, where known.
    pub offset: Option<u64>,
    /// The snapshot concerned, where known.
    pub snapshot: Option<SnapshotId>,
    /// The tensor concerned, where known.
    pub tensor: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev}: {}", self.file.display())?;
        if let Some(o) = self.offset {
            write!(f, " @ byte {o}")?;
        }
        if let Some(s) = self.snapshot {
            write!(f, " (snapshot {s}")?;
            if let Some(t) = &self.tensor {
                write!(f, ", tensor {t:?}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The outcome of [`verify`]: what was checked and every finding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    findings: Vec<Finding>,
    snapshots: usize,
    tensors: usize,
    bytes: u64,
}

impl VerifyReport {
    /// Every finding, errors first, then by file and offset.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }
    /// The findings that are damage.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
    /// Whether nothing is damaged (warnings allowed).
    pub fn is_intact(&self) -> bool {
        self.errors().next().is_none()
    }
    /// Whether there is nothing at all to report.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
    /// Snapshots whose files were checked.
    pub fn snapshots_checked(&self) -> usize {
        self.snapshots
    }
    /// Tensors whose checksums were checked.
    pub fn tensors_checked(&self) -> usize {
        self.tensors
    }
    /// Bytes read.
    pub fn bytes_checked(&self) -> u64 {
        self.bytes
    }
}

struct Ctx {
    findings: Vec<Finding>,
}

impl Ctx {
    fn add(&mut self, severity: Severity, file: &str, offset: Option<u64>, problem: Problem) {
        self.findings.push(Finding {
            severity,
            file: file.into(),
            offset,
            snapshot: None,
            tensor: None,
            problem,
        });
    }
}

fn prefix_problem(p: PrefixProblem, magic: &[u8; 8], len: u64) -> Problem {
    match p {
        PrefixProblem::Short => Problem::Length {
            expected: 12,
            found: len,
        },
        PrefixProblem::Magic(found) => Problem::BadMagic {
            expected: String::from_utf8_lossy(magic).into_owned(),
            found,
        },
        PrefixProblem::Version(found) => Problem::UnsupportedVersion { found },
        PrefixProblem::Crc { expected, found } => Problem::Checksum {
            what: "file header".into(),
            expected,
            found,
        },
    }
}

/// Checks every byte of the store in `dir`: both head slots, every index
/// record, every segment's header and layout (indexed regions back to back,
/// no gap or overlap), every snapshot's prefix, header (against its index
/// copy) and tensor checksums, and lists leftovers of interrupted appends. Never fails on
/// damage (that is what the report is for); fails only if `dir` cannot be listed.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    fs::read_dir(dir).map_err(io_err("list", dir))?;
    let mut cx = Ctx {
        findings: Vec::new(),
    };
    let mut bytes = 0u64;

    // Head.
    let head = match fs::read(dir.join(HEAD_FILE)) {
        Ok(buf) => {
            bytes += buf.len() as u64;
            match Head::decode_slots(&buf, Path::new(HEAD_FILE)) {
                Ok(HeadSlots { head, bad }) => {
                    for (k, e) in bad.iter().enumerate() {
                        let Some(e) = e else { continue };
                        let at = k * HEAD_SLOT_LEN;
                        let slot = &buf[at..at + HEAD_SLOT_LEN];
                        let problem = match check_magic(slot, &HEAD_MAGIC) {
                            Err(p) => prefix_problem(p, &HEAD_MAGIC, buf.len() as u64),
                            Ok(()) => match e {
                                crate::error::StoreError::Checksum {
                                    expected, found, ..
                                } => Problem::Checksum {
                                    what: format!("head slot {k}"),
                                    expected: *expected,
                                    found: *found,
                                },
                                e => Problem::Corrupt {
                                    reason: e.to_string(),
                                },
                            },
                        };
                        cx.add(Severity::Error, HEAD_FILE, Some(at as u64), problem);
                    }
                    head
                }
                Err(e) => {
                    let problem = match check_magic(&buf, &HEAD_MAGIC) {
                        Err(p) => prefix_problem(p, &HEAD_MAGIC, buf.len() as u64),
                        Ok(()) => Problem::Corrupt {
                            reason: e.to_string(),
                        },
                    };
                    cx.add(Severity::Error, HEAD_FILE, Some(0), problem);
                    None
                }
            }
        }
        Err(_) => {
            cx.add(Severity::Error, HEAD_FILE, None, Problem::Missing);
            None
        }
    };

    // Index.
    let mut snapshots: Vec<Region> = Vec::new();
    match fs::read(dir.join(INDEX_FILE)) {
        Err(_) => cx.add(Severity::Error, INDEX_FILE, None, Problem::Missing),
        Ok(buf) => {
            bytes += buf.len() as u64;
            match check_file_header(&buf, &INDEX_MAGIC) {
                Err(p) => cx.add(
                    Severity::Error,
                    INDEX_FILE,
                    Some(0),
                    prefix_problem(p, &INDEX_MAGIC, buf.len() as u64),
                ),
                Ok(()) => {
                    let mut pos = INDEX_HEADER_LEN as usize;
                    let mut valid_end = pos as u64;
                    let mut clean = true;
                    loop {
                        let at = Some(pos as u64);
                        match step(&buf, pos) {
                            Step::End => break,
                            Step::Torn { len } => {
                                cx.add(
                                    Severity::Warning,
                                    INDEX_FILE,
                                    at,
                                    Problem::TornRecord { len },
                                );
                                break;
                            }
                            Step::BadFrame { len, check } => {
                                let reason = format!(
                                    "record length {len:#010x} does not match its check {check:#010x} (limit {MAX_RECORD_LEN}); the rest of the index cannot be read"
                                );
                                cx.add(
                                    Severity::Error,
                                    INDEX_FILE,
                                    at,
                                    Problem::Corrupt { reason },
                                );
                                clean = false;
                                break;
                            }
                            Step::BadCrc {
                                expected,
                                found,
                                next,
                            } => {
                                let what = "index record".into();
                                cx.add(
                                    Severity::Error,
                                    INDEX_FILE,
                                    at,
                                    Problem::Checksum {
                                        what,
                                        expected,
                                        found,
                                    },
                                );
                                clean = false;
                                pos = next;
                            }
                            Step::Undecodable { reason, next } => {
                                cx.add(
                                    Severity::Error,
                                    INDEX_FILE,
                                    at,
                                    Problem::Corrupt { reason },
                                );
                                clean = false;
                                pos = next;
                            }
                            Step::Record { record, next } => {
                                if let IndexRecord::Snapshot {
                                    segment,
                                    offset,
                                    len,
                                    header_crc,
                                    data_offset,
                                    header,
                                } = *record
                                {
                                    snapshots.push(Region {
                                        segment,
                                        offset,
                                        len,
                                        header_crc,
                                        data_offset,
                                        header,
                                    });
                                }
                                pos = next;
                                if clean {
                                    valid_end = pos as u64;
                                }
                            }
                        }
                    }
                    if let Some(h) = head {
                        if clean && valid_end < h.index_len {
                            cx.add(
                                Severity::Error,
                                INDEX_FILE,
                                Some(valid_end),
                                Problem::IndexTruncated {
                                    expected: h.index_len,
                                    found: valid_end,
                                },
                            );
                        } else if clean && valid_end > h.index_len {
                            cx.add(
                                Severity::Warning,
                                HEAD_FILE,
                                None,
                                Problem::HeadBehind {
                                    head: h.index_len,
                                    found: valid_end,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    // Segment files: headers and layout (regions back to back, no gap).
    let mut by_segment: BTreeMap<u32, Vec<&Region>> = BTreeMap::new();
    for r in &snapshots {
        by_segment.entry(r.segment).or_default().push(r);
    }
    let last_indexed = by_segment.keys().next_back().copied();
    let mut files: BTreeMap<u32, (File, u64)> = BTreeMap::new();
    for (&number, regions) in &mut by_segment {
        let rel = segment_file_name(number);
        let Ok(f) = File::open(dir.join(&rel)) else {
            cx.add(Severity::Error, &rel, None, Problem::Missing);
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        bytes += SEGMENT_HEADER_LEN.min(len);
        match f.read_exact_at(&mut header, 0) {
            Err(_) => cx.add(
                Severity::Error,
                &rel,
                Some(0),
                Problem::Length {
                    expected: SEGMENT_HEADER_LEN,
                    found: len,
                },
            ),
            Ok(()) => {
                if let Err(p) = check_file_header(&header, &SEGMENT_MAGIC) {
                    cx.add(
                        Severity::Error,
                        &rel,
                        Some(0),
                        prefix_problem(p, &SEGMENT_MAGIC, len),
                    );
                }
            }
        }
        regions.sort_by_key(|r| r.offset);
        let mut end = SEGMENT_HEADER_LEN;
        for r in regions.iter() {
            if r.offset != end {
                let reason = if r.offset > end {
                    format!(
                        "bytes {end}..{} belong to no indexed snapshot, before snapshot {}",
                        r.offset, r.header.id
                    )
                } else {
                    format!(
                        "snapshot {} at byte {} overlaps the previous one (ending at byte {end})",
                        r.header.id, r.offset
                    )
                };
                cx.add(
                    Severity::Error,
                    &rel,
                    Some(end),
                    Problem::Corrupt { reason },
                );
            }
            end = end.max(r.offset.saturating_add(r.len));
        }
        if len > end {
            // Only the segment being appended to may have a tail.
            let severity = if Some(number) == last_indexed {
                Severity::Warning
            } else {
                Severity::Error
            };
            let problem = Problem::UnindexedTail {
                start: end,
                len: len - end,
            };
            cx.add(severity, &rel, Some(end), problem);
        }
        files.insert(number, (f, len));
    }

    // Snapshots, in parallel.
    let per_region: Vec<(Vec<Finding>, usize, u64)> = snapshots
        .par_iter()
        .filter_map(|r| {
            let (f, len) = files.get(&r.segment)?;
            Some(check_snapshot(f, *len, r))
        })
        .collect();
    let mut n_tensors = 0;
    for (f, t, b) in per_region {
        cx.findings.extend(f);
        n_tensors += t;
        bytes += b;
    }

    // Leftovers: segments no record refers to, temporary files.
    if let Ok(entries) = fs::read_dir(dir.join(SEGMENT_DIR)) {
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{SEGMENT_DIR}/{name}");
            if name.ends_with(".tmp") {
                cx.add(Severity::Warning, &rel, None, Problem::Temporary);
                continue;
            }
            let number = parse_segment_name(&name);
            if number.is_some_and(|n| by_segment.contains_key(&n)) {
                continue;
            }
            // A segment before the last indexed one lost its records; one
            // after it (or a foreign file) is what a crash right after
            // starting a segment leaves.
            let severity = match (number, last_indexed) {
                (Some(n), Some(last)) if n < last => Severity::Error,
                _ => Severity::Warning,
            };
            cx.add(severity, &rel, None, Problem::Unindexed);
        }
    }
    if let Ok(entries) = fs::read_dir(dir) {
        let tmp: BTreeSet<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        for name in tmp {
            cx.add(Severity::Warning, &name, None, Problem::Temporary);
        }
    }

    let mut findings = cx.findings;
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.offset.cmp(&b.offset))
    });
    Ok(VerifyReport {
        findings,
        snapshots: snapshots.len(),
        tensors: n_tensors,
        bytes,
    })
}

/// A snapshot's region as its index record describes it.
struct Region {
    segment: u32,
    offset: u64,
    len: u64,
    header_crc: u32,
    /// From the region's start.
    data_offset: u64,
    header: DiskSnapshot,
}

/// Checks one snapshot's region of segment file `f` (of `found_len` bytes).
fn check_snapshot(f: &File, found_len: u64, r: &Region) -> (Vec<Finding>, usize, u64) {
    let file = segment_file_name(r.segment);
    let base = r.offset;
    let region_end = base.saturating_add(r.len);
    let data_offset = r.data_offset;
    let header_crc = r.header_crc;
    let header = &r.header;
    let mut out = Vec::new();
    let id = Some(header.id);
    let mut add = |offset: Option<u64>, tensor: Option<String>, problem: Problem| {
        out.push(Finding {
            severity: Severity::Error,
            file: file.as_str().into(),
            offset,
            snapshot: id,
            tensor,
            problem,
        });
    };
    if found_len < region_end {
        add(
            Some(found_len.max(base)),
            None,
            Problem::Length {
                expected: region_end,
                found: found_len,
            },
        );
    }
    // Reads `len` bytes at `offset` from the region's start.
    let read = |offset: u64, len: u64| -> Option<Vec<u8>> {
        if offset.checked_add(len)? > r.len {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, base + offset).ok().map(|()| buf)
    };
    let mut bytes = 0u64;
    let mut tensors = 0usize;
    // Prefix and header.
    match read(0, SNAP_PREFIX_LEN) {
        None => {}
        Some(prefix) => {
            bytes += SNAP_PREFIX_LEN;
            if let Err(p) = check_magic(&prefix, &SNAP_MAGIC) {
                add(Some(base), None, prefix_problem(p, &SNAP_MAGIC, found_len));
            }
            let header_len = u64::from(u32_at(&prefix, 12));
            if SNAP_PREFIX_LEN + header_len != data_offset {
                let reason = format!(
                    "header length {header_len} at byte {}, the index records {}",
                    base + 12,
                    data_offset.saturating_sub(SNAP_PREFIX_LEN)
                );
                add(Some(base + 12), None, Problem::Corrupt { reason });
            }
            if u32_at(&prefix, 16) != header_crc {
                let reason = format!(
                    "header checksum {:#010x} at byte {}, the index records {header_crc:#010x}",
                    u32_at(&prefix, 16),
                    base + 16
                );
                add(Some(base + 16), None, Problem::Corrupt { reason });
            }
            if let Some(h) = read(SNAP_PREFIX_LEN, data_offset.saturating_sub(SNAP_PREFIX_LEN)) {
                bytes += h.len() as u64;
                let found = crc32fast::hash(&h);
                let at = Some(base + SNAP_PREFIX_LEN);
                if found != header_crc {
                    add(
                        at,
                        None,
                        Problem::Checksum {
                            what: "snapshot header".into(),
                            expected: header_crc,
                            found,
                        },
                    );
                } else {
                    match bincode_opts().deserialize::<DiskSnapshot>(&h) {
                        Ok(decoded) if decoded == *header => {}
                        Ok(_) => add(
                            at,
                            None,
                            Problem::Corrupt {
                                reason: "snapshot header differs from its index record".into(),
                            },
                        ),
                        Err(e) => add(
                            at,
                            None,
                            Problem::Corrupt {
                                reason: e.to_string(),
                            },
                        ),
                    }
                }
            }
        }
    }
    // Tensors.
    for t in &header.tensors {
        let numel = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let start = data_offset.saturating_add(t.offset);
        let offset = base.saturating_add(start);
        let Some(b) = numel
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| read(start, n))
        else {
            add(
                Some(offset),
                Some(t.name.clone()),
                Problem::Length {
                    expected: region_end,
                    found: found_len,
                },
            );
            continue;
        };
        bytes += b.len() as u64;
        tensors += 1;
        let found = crc32fast::hash(&b);
        if found != t.crc32 {
            add(
                Some(offset),
                Some(t.name.clone()),
                Problem::Checksum {
                    what: format!("tensor {:?}", t.name),
                    expected: t.crc32,
                    found,
                },
            );
        }
    }
    (out, tensors, bytes)
}
