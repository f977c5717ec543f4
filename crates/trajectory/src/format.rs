//! Byte-level layout of the store's files (see the crate docs for the spec).
use std::collections::BTreeMap;

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::meta::{SnapshotId, SnapshotMeta};

/// The format version this build reads and writes (1: one file per
/// snapshot; 2: snapshots packed into append-only segment files).
pub const FORMAT_VERSION: u32 = 2;
/// Magic number of `index.log`.
pub const INDEX_MAGIC: [u8; 8] = *b"LSCP-IDX";
/// Magic number of `index.head`.
pub const HEAD_MAGIC: [u8; 8] = *b"LSCP-HED";
/// Magic number of a snapshot (at the start of its region in a segment file).
pub const SNAP_MAGIC: [u8; 8] = *b"LSCP-SNP";
/// Magic number of a segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LSCP-SEG";
/// Size at which a writer starts a new segment file (1 GiB); a snapshot
/// larger than this gets a segment of its own.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 1 << 30;

/// Length of the index file header: magic, version, CRC32 of both.
pub(crate) const INDEX_HEADER_LEN: u64 = 16;
/// Length of a segment file header: magic, version, CRC32 of both.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
/// Length of a record frame header: length, its complement, CRC32 of the payload.
pub(crate) const FRAME_LEN: usize = 12;
/// Length of one slot of the head file.
pub(crate) const HEAD_SLOT_LEN: usize = 32;
/// Length of the head file: two slots.
pub(crate) const HEAD_LEN: usize = 2 * HEAD_SLOT_LEN;
/// Length of a snapshot region's fixed prefix: magic, version, header length, header CRC32.
pub(crate) const SNAP_PREFIX_LEN: u64 = 20;
/// Largest record or snapshot header accepted (a guard against absurd lengths).
pub(crate) const MAX_RECORD_LEN: u32 = 256 << 20;

/// The bincode configuration of every header and record: little-endian,
/// fixed-width integers, no trailing bytes, bounded size.
pub(crate) fn bincode_opts() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_little_endian()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(u64::from(MAX_RECORD_LEN))
}

/// One tensor in a snapshot header; `offset` is relative to the data section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DiskTensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub offset: u64,
    pub crc32: u32,
}

/// The header of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DiskSnapshot {
    pub id: SnapshotId,
    pub meta: SnapshotMeta,
    pub tensors: Vec<DiskTensor>,
}

/// One record of `index.log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum IndexRecord {
    /// A committed snapshot: where its region lies (segment number, byte
    /// offset and length in the segment file), its header's CRC32, where its
    /// data section starts (from the region's start) and a copy of its header.
    Snapshot {
        segment: u32,
        offset: u64,
        len: u64,
        header_crc: u32,
        data_offset: u64,
        header: DiskSnapshot,
    },
    /// Metrics attached to an existing snapshot (merged; the latest value of a name wins).
    Metrics {
        id: SnapshotId,
        metrics: BTreeMap<String, f64>,
    },
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    bincode_opts()
        .serialize(value)
        .map_err(|source| StoreError::Encode { what, source })
}

/// The 16-byte header of `index.log` (`magic` = [`INDEX_MAGIC`]) or of a
/// segment file (`magic` = [`SEGMENT_MAGIC`]).
pub(crate) fn file_header(magic: &[u8; 8]) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

pub(crate) fn frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD_LEN)
        .ok_or_else(|| StoreError::Corrupt {
            path: "index.log".into(),
            what: "new index record".into(),
            offset: 0,
            reason: format!(
                "record of {} bytes exceeds the limit of {MAX_RECORD_LEN}",
                payload.len()
            ),
        })?;
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

/// Problems with a file's magic/version prefix.
pub(crate) enum PrefixProblem {
    Short,
    Magic(String),
    Version(u32),
    Crc { expected: u32, found: u32 },
}

/// Checks magic and version at the start of `buf`.
pub(crate) fn check_magic(buf: &[u8], magic: &[u8; 8]) -> std::result::Result<(), PrefixProblem> {
    let Some(m) = buf.get(..12) else {
        return Err(PrefixProblem::Short);
    };
    if &m[..8] != magic {
        return Err(PrefixProblem::Magic(
            String::from_utf8_lossy(&m[..8]).into_owned(),
        ));
    }
    let v = u32_at(buf, 8);
    if v != FORMAT_VERSION {
        return Err(PrefixProblem::Version(v));
    }
    Ok(())
}

/// Checks a 16-byte file header written by [`file_header`].
pub(crate) fn check_file_header(
    buf: &[u8],
    magic: &[u8; 8],
) -> std::result::Result<(), PrefixProblem> {
    check_magic(buf, magic)?;
    if buf.len() < 16 {
        return Err(PrefixProblem::Short);
    }
    let (expected, found) = (u32_at(buf, 12), crc32fast::hash(&buf[..12]));
    if expected != found {
        return Err(PrefixProblem::Crc { expected, found });
    }
    Ok(())
}

pub(crate) fn prefix_error(
    problem: PrefixProblem,
    path: &std::path::Path,
    magic: &[u8; 8],
    len: u64,
    what: &str,
) -> StoreError {
    let path = path.to_path_buf();
    match problem {
        PrefixProblem::Short => StoreError::Truncated {
            path,
            what: format!("{what} prefix"),
            offset: 0,
            end: 12,
            len,
        },
        PrefixProblem::Magic(found) => StoreError::BadMagic {
            path,
            expected: String::from_utf8_lossy(magic).into_owned(),
            found,
        },
        PrefixProblem::Version(found) => StoreError::UnsupportedVersion {
            path,
            found,
            supported: FORMAT_VERSION,
        },
        PrefixProblem::Crc { expected, found } => StoreError::Checksum {
            path,
            what: format!("{what} prefix"),
            offset: 0,
            expected,
            found,
        },
    }
}

/// The committed state recorded in `index.head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub records: u64,
    pub index_len: u64,
}

/// What was found in the two slots of `index.head`.
pub(crate) struct HeadSlots {
    /// The valid slot with the most records (`None` if neither is valid).
    pub head: Option<Head>,
    /// Per slot: why it is invalid, if it is.
    pub bad: [Option<StoreError>; 2],
}

impl Head {
    /// The slot this head is written to: slots alternate with the record count.
    pub fn slot(&self) -> usize {
        (self.records % 2) as usize
    }

    pub fn encode(&self) -> [u8; HEAD_SLOT_LEN] {
        let mut h = [0u8; HEAD_SLOT_LEN];
        h[..8].copy_from_slice(&HEAD_MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..20].copy_from_slice(&self.records.to_le_bytes());
        h[20..28].copy_from_slice(&self.index_len.to_le_bytes());
        let crc = crc32fast::hash(&h[..28]);
        h[28..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Both slots holding this head (what `create` writes).
    pub fn encode_both(&self) -> [u8; HEAD_LEN] {
        let mut h = [0u8; HEAD_LEN];
        h[..HEAD_SLOT_LEN].copy_from_slice(&self.encode());
        h[HEAD_SLOT_LEN..].copy_from_slice(&self.encode());
        h
    }

    /// Decodes one slot (`buf` is the slot's 32 bytes, at byte `at` of the file).
    fn decode_slot(buf: &[u8], at: u64, path: &std::path::Path) -> Result<Head> {
        check_magic(buf, &HEAD_MAGIC)
            .map_err(|p| prefix_error(p, path, &HEAD_MAGIC, buf.len() as u64, "head slot"))?;
        let (expected, found) = (u32_at(buf, 28), crc32fast::hash(&buf[..28]));
        if expected != found {
            return Err(StoreError::Checksum {
                path: path.to_path_buf(),
                what: "head slot".into(),
                offset: at,
                expected,
                found,
            });
        }
        Ok(Head {
            records: u64_at(buf, 12),
            index_len: u64_at(buf, 20),
        })
    }

    /// Decodes both slots of the head file `buf`.
    pub fn decode_slots(buf: &[u8], path: &std::path::Path) -> Result<HeadSlots> {
        if buf.len() != HEAD_LEN {
            // Report a foreign file or an old version before the length.
            check_magic(buf, &HEAD_MAGIC)
                .map_err(|p| prefix_error(p, path, &HEAD_MAGIC, buf.len() as u64, "head"))?;
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                what: "head".into(),
                offset: 0,
                reason: format!("expected {HEAD_LEN} bytes, found {}", buf.len()),
            });
        }
        let mut head: Option<Head> = None;
        let mut bad = [None, None];
        for (k, slot) in buf.chunks_exact(HEAD_SLOT_LEN).enumerate() {
            let at = (k * HEAD_SLOT_LEN) as u64;
            match Head::decode_slot(slot, at, path) {
                Ok(h) => {
                    if head.is_none_or(|best| h.records > best.records) {
                        head = Some(h);
                    }
                }
                Err(e) => bad[k] = Some(e),
            }
        }
        Ok(HeadSlots { head, bad })
    }

    /// Decodes the head file `buf`: the valid slot with the most records.
    /// Fails if neither slot is valid.
    pub fn decode(buf: &[u8], path: &std::path::Path) -> Result<Head> {
        let HeadSlots { head, bad } = Head::decode_slots(buf, path)?;
        match (head, bad) {
            (Some(h), bad) => {
                if let Some(e) = bad.iter().flatten().next() {
                    tracing::warn!(error = %e, "one slot of the head is damaged; using the other");
                }
                Ok(h)
            }
            (None, [Some(e), _]) | (None, [None, Some(e)]) => Err(e),
            (None, [None, None]) => Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                what: "head".into(),
                offset: 0,
                reason: "no valid slot".into(),
            }),
        }
    }
}

/// The outcome of decoding the index record that starts at `pos`.
pub(crate) enum Step {
    /// No bytes left.
    End,
    /// The file ends inside this record: an interrupted append.
    Torn { len: u64 },
    /// The frame's length and its complement disagree.
    BadFrame { len: u32, check: u32 },
    /// The payload's CRC32 is wrong; the next record starts at `next`.
    BadCrc {
        expected: u32,
        found: u32,
        next: usize,
    },
    /// The payload does not decode; the next record starts at `next`.
    Undecodable { reason: String, next: usize },
    /// A good record; the next starts at `next`.
    Record {
        record: Box<IndexRecord>,
        next: usize,
    },
}

/// Decodes the record that starts at `pos` of `buf` (the whole index file, or a tail of it).
pub(crate) fn step(buf: &[u8], pos: usize) -> Step {
    let rest = buf.len().saturating_sub(pos);
    if rest == 0 {
        return Step::End;
    }
    if rest < FRAME_LEN {
        return Step::Torn { len: rest as u64 };
    }
    let (len, check, crc) = (u32_at(buf, pos), u32_at(buf, pos + 4), u32_at(buf, pos + 8));
    if len != !check || len > MAX_RECORD_LEN {
        return Step::BadFrame { len, check };
    }
    let start = pos + FRAME_LEN;
    let next = start + len as usize;
    let Some(payload) = buf.get(start..next) else {
        return Step::Torn { len: rest as u64 };
    };
    let found = crc32fast::hash(payload);
    if found != crc {
        return Step::BadCrc {
            expected: crc,
            found,
            next,
        };
    }
    match bincode_opts().deserialize::<IndexRecord>(payload) {
        Ok(record) => Step::Record {
            record: Box::new(record),
            next,
        },
        Err(e) => Step::Undecodable {
            reason: e.to_string(),
            next,
        },
    }
}
