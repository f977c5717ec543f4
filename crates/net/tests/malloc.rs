//! `configure_malloc` in fresh processes (no libtest harness: the probe must
//! run on the main thread, whose glibc arena is the one the CLI's libtorch
//! work uses; libtest would run it on a thread of its own, whose arena maps
//! every block above 64 MiB whatever the settings).
//!
//! Without arguments: runs this binary again as a probe with each setting of
//! `LANDSCAPE_MALLOC` and checks what the probe saw. With `probe`: sets the
//! allocator up, allocates and frees a 256 MiB tensor through libtorch a few
//! times, allocates it once more and prints one line: the mode, the bytes
//! glibc holds in mmapped blocks while the last tensor lives, the heap's size
//! and the page faults of the last allocation.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use landscape_net::{configure_malloc, tch, MALLOC_ENV};

const BLOCK: i64 = 256 << 20;
/// Allocation rounds of the probe; the last one is measured.
const ROUNDS: usize = 40;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the valid buffer.
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init().ru_minflt
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn probe() {
    let setup = configure_malloc().expect("LANDSCAPE_MALLOC is valid");
    let n = BLOCK / 4;
    // glibc before 2.38 (Debian 12 has 2.36) does not hand a freed block
    // back to `posix_memalign` of the same size until it has merged with its
    // neighbours: here the heap grows for about nine rounds (a fresh 256 MiB
    // each, ~2.4 GiB in all), then settles and every later round reuses its
    // pages. That is the memory price of the setting (docs/protocols.md).
    let mut faults_per_round = Vec::new();
    for _ in 0..ROUNDS - 1 {
        let before = minor_faults();
        let t = tch::Tensor::ones([n], (tch::Kind::Float, tch::Device::Cpu));
        faults_per_round.push(minor_faults() - before);
        drop(t);
    }
    let before = minor_faults();
    let second = tch::Tensor::ones([n], (tch::Kind::Float, tch::Device::Cpu));
    let faults = minor_faults() - before;
    eprintln!("faults per round: {faults_per_round:?} then {faults}");
    // Page faults of the last ten rounds before the measured one: zero once
    // the heap has settled.
    let late: i64 = faults_per_round.iter().rev().take(10).sum();
    // SAFETY: mallinfo2 only reads glibc's counters.
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    let sum = second.sum(tch::Kind::Double).double_value(&[]);
    println!(
        "probe: mode={} keeps={} mmapped={} heap={} faults={faults} late={late} sum={sum}",
        setup.mode.name(),
        i64::from(setup.keeps_memory()),
        info.hblkhd,
        info.arena,
    );
}

/// Runs this binary as a probe with `env` set; its `probe:` line.
fn probe_in_child(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("probe")
        .env_remove(MALLOC_ENV)
        .env_remove("GLIBC_TUNABLES");
    for v in [
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
        "MALLOC_MMAP_MAX_",
        "MALLOC_ARENA_MAX",
        "MALLOC_ARENA_TEST",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe with {env:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("probe:"))
        .unwrap_or_else(|| panic!("no probe line in {stdout}"))
        .to_owned();
    println!("{env:?}: {line}");
    line
}

fn field(line: &str, key: &str) -> i64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn check() {
    let pages = BLOCK / 4096;
    for env in [&[][..], &[(MALLOC_ENV, "keep")][..]] {
        let line = probe_in_child(env);
        assert!(line.contains("mode=keep keeps=1"), "{line}");
        // The tensor came from the heap, not from a mapping of its own ...
        assert!(field(&line, "mmapped") < BLOCK, "{line}");
        assert!(field(&line, "heap") >= BLOCK, "{line}");
        // ... and, once the heap has settled, reused earlier rounds' pages:
        // almost no page faults, in the last ten rounds either (it does not
        // keep growing); the heap is bounded (about 9.5 blocks with glibc
        // 2.36, see the probe).
        assert!(field(&line, "faults") < pages / 10, "{line}");
        assert!(field(&line, "late") < pages / 10, "{line}");
        assert!(field(&line, "heap") <= 16 * BLOCK, "{line}");
        assert_eq!(field(&line, "sum"), BLOCK / 4, "{line}");
    }
    // Turned off: glibc maps the block afresh and faults in every page.
    let line = probe_in_child(&[(MALLOC_ENV, "system")]);
    assert!(line.contains("mode=system keeps=0"), "{line}");
    assert!(field(&line, "mmapped") >= BLOCK, "{line}");
    assert!(field(&line, "faults") >= pages / 2, "{line}");
    assert_eq!(field(&line, "sum"), BLOCK / 4, "{line}");
    // The user's own glibc settings win.
    let line = probe_in_child(&[("MALLOC_TOP_PAD_", "0")]);
    assert!(line.contains("mode=user keeps=0"), "{line}");
    // A typo is an error naming the variable, and changes nothing.
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("probe")
        .env(MALLOC_ENV, "jemalloc")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LANDSCAPE_MALLOC") && stderr.contains("`jemalloc`"),
        "{stderr}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if args.get(1).map(String::as_str) == Some("probe") {
        probe();
        return;
    }
    // cargo test passes libtest flags (--nocapture, filters, --list): a
    // listing names the one test; a filter that is not ours skips it.
    if args.iter().any(|a| a == "--list") {
        println!("malloc: test");
        return;
    }
    if let Some(filter) = args.iter().skip(1).find(|a| !a.starts_with('-')) {
        if !"malloc".contains(filter.as_str()) {
            return;
        }
    }
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        check();
        println!("test malloc ... ok");
    } else {
        println!("test malloc ... ignored (glibc only)");
    }
}
