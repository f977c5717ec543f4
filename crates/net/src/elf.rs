//! The shared libraries an ELF file needs (`DT_NEEDED`), read with the
//! standard library only: used by the link tests (through
//! `landscape_net::testing::elf_needed`) and, as a source file
//! included with `#[path]`, by `cargo xtask gpu-check`, which must not link
//! libtorch.
use std::path::Path;

/// The `DT_NEEDED` entries (shared libraries the dynamic linker loads) of the
/// 64-bit little-endian ELF file at `path`, in order.
pub fn elf_needed(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bad = |what: &str| format!("{}: {what}", path.display());
    let u16_at = |o: usize| -> Result<u64, String> {
        let b = bytes.get(o..o + 2).ok_or_else(|| bad("truncated ELF"))?;
        Ok(u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |o: usize| -> Result<u64, String> {
        let b = bytes.get(o..o + 4).ok_or_else(|| bad("truncated ELF"))?;
        Ok(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    };
    let u64_at = |o: usize| -> Result<u64, String> {
        let b = bytes.get(o..o + 8).ok_or_else(|| bad("truncated ELF"))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    };
    let idx = |v: u64| usize::try_from(v).map_err(|_| bad("offset out of range"));
    if bytes.get(0..4) != Some(b"\x7fELF".as_slice()) || bytes.get(4) != Some(&2) {
        return Err(bad("not a 64-bit ELF file"));
    }
    if bytes.get(5) != Some(&1) {
        return Err(bad("not a little-endian ELF file"));
    }
    let shoff = idx(u64_at(0x28)?)?;
    let shentsize = idx(u16_at(0x3a)?)?;
    let shnum = idx(u16_at(0x3c)?)?;
    // Section header i: (type, offset, size, link).
    let section = |i: usize| -> Result<(u64, usize, usize, usize), String> {
        let h = shoff + i * shentsize;
        Ok((
            u32_at(h + 4)?,
            idx(u64_at(h + 0x18)?)?,
            idx(u64_at(h + 0x20)?)?,
            idx(u32_at(h + 0x28)?)?,
        ))
    };
    const SHT_DYNAMIC: u64 = 6;
    const DT_NULL: u64 = 0;
    const DT_NEEDED: u64 = 1;
    let mut needed = Vec::new();
    for i in 0..shnum {
        let (kind, offset, size, link) = section(i)?;
        if kind != SHT_DYNAMIC {
            continue;
        }
        let (_, strtab, strsize, _) = section(link)?;
        let strings = bytes
            .get(strtab..strtab + strsize)
            .ok_or_else(|| bad("string table out of range"))?;
        for e in (offset..offset + size).step_by(16) {
            let tag = u64_at(e)?;
            if tag == DT_NULL {
                break;
            }
            if tag == DT_NEEDED {
                let at = idx(u64_at(e + 8)?)?;
                let rest = strings.get(at..).ok_or_else(|| bad("name out of range"))?;
                let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                needed.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            }
        }
    }
    Ok(needed)
}
