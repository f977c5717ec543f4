//! Captures, at build time, what produced this binary: the git revision of the
//! checkout it was built from (with `-dirty` for uncommitted changes), so that
//! an installed `landscape` reports its own revision wherever it runs, and the
//! version of the `tch` crate it was built with (from `Cargo.lock`); and an
//! rpath to libtorch for this crate's tests (passed on by landscape-net).
use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The version `Cargo.lock` records for package `name`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

fn main() {
    if let Ok(lib) = std::env::var("DEP_LANDSCAPE_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_LANDSCAPE_TORCH_LIBTORCH_LIB");
    // Keep libtorch_cuda NEEDED when the libtorch is a CUDA build (rustc's
    // --as-needed would drop it and libtorch would never see a GPU); see
    // crates/net/build.rs.
    if std::env::var("DEP_LANDSCAPE_TORCH_LIBTORCH_CUDA").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rerun-if-env-changed=DEP_LANDSCAPE_TORCH_LIBTORCH_CUDA");

    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let root = Path::new(&manifest).join("../..");
    let revision = match git(&root, &["rev-parse", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=LANDSCAPE_GIT_REVISION={revision}");
    let lock = root.join("Cargo.lock");
    let tch = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "tch"))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LANDSCAPE_TCH_VERSION={tch}");
    println!("cargo:rerun-if-changed={}", lock.display());
    // Re-run when the checkout moves or its sources change (the dirty flag).
    if let Some(git_dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
        let g = Path::new(&git_dir);
        for p in ["HEAD", "index", "refs"] {
            println!("cargo:rerun-if-changed={}", g.join(p).display());
        }
        for p in ["crates", "xtask", "experiments", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", root.join(p).display());
        }
    }
}
