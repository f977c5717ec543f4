//! Bakes libtorch's library folder into the run-time search path (rpath) of
//! this crate's tests and binaries, and passes it on to dependents (the CLI)
//! through the `links` metadata, so that nobody has to set `LD_LIBRARY_PATH`.
//!
//! Also records the version of the libtorch install being linked in
//! `LANDSCAPE_LIBTORCH_VERSION` (read by `landscape_net::LIBTORCH_VERSION`):
//! `__version__` of `<lib>/../version.py` for PyPI's torch wheel, else the
//! first line of `<lib>/../build-version` for a plain libtorch zip, else
//! `unknown`.
use std::path::Path;

/// The version of the libtorch install whose library folder is `lib`.
fn libtorch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    let from_py = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.trim().strip_prefix("__version__").and_then(|rest| {
                    // `__version__ = '2.13.0+cpu'` or `__version__: str = "..."`:
                    // the text between the first pair of matching quotes.
                    let open = rest.find(['\'', '"'])?;
                    let quote = rest[open..].chars().next()?;
                    let inner = &rest[open + 1..];
                    let v = inner[..inner.find(quote)?].trim();
                    (!v.is_empty()).then(|| v.to_owned())
                })
            })
        });
    from_py.or_else(|| {
        std::fs::read_to_string(root.join("build-version"))
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
            .filter(|v| !v.is_empty())
    })
}

fn main() {
    // Set by torch-sys (links = "tch") from LIBTORCH.
    let mut version = None;
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:libtorch_lib={lib}");
        let lib = Path::new(&lib);
        if let Some(root) = lib.parent() {
            // Only files that exist: cargo reruns on every build for a missing one.
            for file in ["version.py", "build-version"] {
                let path = root.join(file);
                if path.is_file() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        version = libtorch_version(lib);
    }
    // Only characters that are safe in an env value on one line.
    let version = version
        .filter(|v| v.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LANDSCAPE_LIBTORCH_VERSION={version}");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
