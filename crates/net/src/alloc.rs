//! How the process's C allocator serves libtorch's tensors.
//!
//! libtorch's CPU allocator takes every tensor from the C library
//! (`posix_memalign`). glibc's default serves each block above its mmap
//! threshold (at most 32 MiB) with a fresh `mmap` and gives it back with
//! `munmap` when the tensor is freed, and it trims the heap's free top back to
//! the kernel. A training step on thousands of images allocates and frees
//! activations of hundreds of MB every time, and the kernel then zeroes and
//! faults in every page of them again: on a 2-core CPU a medium `fig14` run
//! spent 40% of its CPU time in the kernel.
//!
//! [`configure_malloc`] tells glibc (with `mallopt`) to serve blocks up to its
//! largest settable threshold from the heap and never to trim it, so memory
//! freed by one step is reused by the next without the kernel. The process
//! keeps the heap it reached at its peak (see `docs/protocols.md` for the
//! measured peak resident memory before and after). The binaries call it
//! first thing in `main`; `LANDSCAPE_MALLOC=system` leaves glibc's defaults
//! alone, and so does any `MALLOC_*_` or `GLIBC_TUNABLES=glibc.malloc.*`
//! setting of the user's own. Elsewhere than on glibc it does nothing.
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::NetError;

/// The environment variable that chooses the allocator set-up:
/// `keep` (the default) or `system`.
pub const MALLOC_ENV: &str = "LANDSCAPE_MALLOC";

/// Environment variables through which a user tunes glibc's allocator
/// directly; when one is set, [`configure_malloc`] leaves glibc alone.
const USER_MALLOC_VARS: [&str; 6] = [
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
];

/// What [`configure_malloc`] did to the C allocator.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MallocMode {
    /// glibc keeps freed memory in its heap for reuse (the default).
    Keep,
    /// glibc's defaults, asked for with `LANDSCAPE_MALLOC=system`.
    System,
    /// glibc's settings are the user's own (`MALLOC_*_` or `GLIBC_TUNABLES`).
    User,
    /// Not glibc: nothing to set.
    Unsupported,
}

impl MallocMode {
    /// The mode a value of [`MALLOC_ENV`] asks for (`None`: unset).
    ///
    /// # Errors
    ///
    /// [`NetError::Config`] naming the variable for anything but `keep`,
    /// `system` or an empty value.
    pub fn from_env_value(value: Option<&str>) -> Result<MallocMode, NetError> {
        match value.map(str::trim) {
            None | Some("" | "keep") => Ok(MallocMode::Keep),
            Some("system") => Ok(MallocMode::System),
            Some(other) => Err(NetError::Config {
                field: MALLOC_ENV.to_owned(),
                reason: format!("must be `keep` (the default) or `system`, found `{other}`"),
            }),
        }
    }

    /// The mode's name as it is written in `LANDSCAPE_MALLOC` and run.json.
    pub fn name(self) -> &'static str {
        match self {
            MallocMode::Keep => "keep",
            MallocMode::System => "system",
            MallocMode::User => "user",
            MallocMode::Unsupported => "unsupported",
        }
    }
}

/// One `mallopt` call and whether glibc accepted it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MallocSetting {
    /// The parameter, e.g. `M_MMAP_THRESHOLD`.
    pub name: String,
    /// The value passed (`-1` for the trim threshold means never trim).
    pub value: i64,
    /// Whether `mallopt` returned 1.
    pub accepted: bool,
}

/// What [`configure_malloc`] did: the mode and every `mallopt` call.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MallocSetup {
    /// What was chosen.
    pub mode: MallocMode,
    /// Every `mallopt` call made, in order (empty unless the mode is `keep`).
    pub settings: Vec<MallocSetting>,
}

impl MallocSetup {
    /// Whether the mode is `keep` and glibc accepted every call that
    /// matters (a rejected mmap threshold is made good by `M_MMAP_MAX`).
    pub fn keeps_memory(&self) -> bool {
        let ok = |name: &str| self.settings.iter().any(|s| s.name == name && s.accepted);
        self.mode == MallocMode::Keep
            && ok("M_TRIM_THRESHOLD")
            && (ok("M_MMAP_THRESHOLD") || ok("M_MMAP_MAX"))
    }

    /// One line for logs and provenance: `keep (M_MMAP_THRESHOLD=2147483647 ok, ...)`.
    pub fn summary(&self) -> String {
        if self.settings.is_empty() {
            return self.mode.name().to_owned();
        }
        let calls: Vec<String> = self
            .settings
            .iter()
            .map(|s| {
                format!(
                    "{}={} {}",
                    s.name,
                    s.value,
                    if s.accepted { "ok" } else { "rejected" }
                )
            })
            .collect();
        format!("{} ({})", self.mode.name(), calls.join(", "))
    }
}

static SETUP: OnceLock<MallocSetup> = OnceLock::new();

/// Sets the C allocator up for libtorch's large tensors, once per process
/// (later calls return the first result); call it before libtorch allocates
/// anything big. See the module docs; the choice is logged at debug level and
/// [`malloc_setup`] returns it afterwards.
///
/// # Errors
///
/// [`NetError::Config`] when `LANDSCAPE_MALLOC` holds an unknown value (nothing
/// is changed then).
pub fn configure_malloc() -> Result<MallocSetup, NetError> {
    if let Some(done) = SETUP.get() {
        return Ok(done.clone());
    }
    let mut mode = MallocMode::from_env_value(std::env::var(MALLOC_ENV).ok().as_deref())?;
    if mode == MallocMode::Keep && user_tunes_malloc() {
        mode = MallocMode::User;
    }
    if mode == MallocMode::Keep && !cfg!(all(target_os = "linux", target_env = "gnu")) {
        mode = MallocMode::Unsupported;
    }
    let settings = if mode == MallocMode::Keep {
        keep_memory()
    } else {
        Vec::new()
    };
    let setup = SETUP.get_or_init(|| MallocSetup { mode, settings });
    tracing::debug!(allocator = %setup.summary(), "C allocator set up");
    if setup.mode == MallocMode::Keep && !setup.keeps_memory() {
        tracing::warn!(
            allocator = %setup.summary(),
            "glibc refused to keep freed memory: large tensors will be mapped afresh each time"
        );
    }
    Ok(setup.clone())
}

/// What [`configure_malloc`] did in this process, if it was called.
pub fn malloc_setup() -> Option<&'static MallocSetup> {
    SETUP.get()
}

fn user_tunes_malloc() -> bool {
    USER_MALLOC_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some())
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."))
}

/// The `mallopt` calls of the `keep` mode.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_memory() -> Vec<MallocSetting> {
    // The largest mmap threshold mallopt can express: tensors below 2 GiB come
    // from the heap. (glibc before 2.35 refuses more than 32 MiB; then
    // M_MMAP_MAX = 0 turns mmap off for the heap's blocks instead.)
    let mut out = vec![mallopt(
        "M_MMAP_THRESHOLD",
        libc::M_MMAP_THRESHOLD,
        i32::MAX,
    )];
    if !out[0].accepted {
        out.push(mallopt("M_MMAP_MAX", libc::M_MMAP_MAX, 0));
    }
    // -1: never give the heap's free top back to the kernel (glibc would
    // otherwise return all of it as soon as it exceeds the threshold, and the
    // next step would fault it in again).
    out.push(mallopt("M_TRIM_THRESHOLD", libc::M_TRIM_THRESHOLD, -1));
    // Grow the heap by at least 64 MiB at a time (fewer brk calls while it
    // grows; untouched pages cost no memory).
    out.push(mallopt("M_TOP_PAD", libc::M_TOP_PAD, 64 << 20));
    out
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_memory() -> Vec<MallocSetting> {
    Vec::new()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallopt(name: &str, param: libc::c_int, value: libc::c_int) -> MallocSetting {
    // SAFETY: mallopt only stores the value in glibc's allocator parameters,
    // under glibc's own lock; it takes no pointers.
    #[allow(unsafe_code)]
    let ret = unsafe { libc::mallopt(param, value) };
    tracing::debug!(param = name, value, ret, "mallopt");
    MallocSetting {
        name: name.to_owned(),
        value: i64::from(value),
        accepted: ret == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse() {
        assert_eq!(
            MallocMode::from_env_value(None).ok(),
            Some(MallocMode::Keep)
        );
        assert_eq!(
            MallocMode::from_env_value(Some("")).ok(),
            Some(MallocMode::Keep)
        );
        assert_eq!(
            MallocMode::from_env_value(Some("keep")).ok(),
            Some(MallocMode::Keep)
        );
        assert_eq!(
            MallocMode::from_env_value(Some(" system ")).ok(),
            Some(MallocMode::System)
        );
        let err = MallocMode::from_env_value(Some("jemalloc"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("LANDSCAPE_MALLOC"), "{err}");
        assert!(err.contains("`jemalloc`"), "{err}");
    }

    #[test]
    fn summary_names_every_call() {
        let setup = MallocSetup {
            mode: MallocMode::Keep,
            settings: vec![
                MallocSetting {
                    name: "M_MMAP_THRESHOLD".into(),
                    value: 7,
                    accepted: false,
                },
                MallocSetting {
                    name: "M_MMAP_MAX".into(),
                    value: 0,
                    accepted: true,
                },
                MallocSetting {
                    name: "M_TRIM_THRESHOLD".into(),
                    value: -1,
                    accepted: true,
                },
            ],
        };
        assert_eq!(
            setup.summary(),
            "keep (M_MMAP_THRESHOLD=7 rejected, M_MMAP_MAX=0 ok, M_TRIM_THRESHOLD=-1 ok)"
        );
        assert!(setup.keeps_memory());
        let system = MallocSetup {
            mode: MallocMode::System,
            settings: Vec::new(),
        };
        assert_eq!(system.summary(), "system");
        assert!(!system.keeps_memory());
    }
}
