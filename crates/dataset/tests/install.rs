//! Installing from local archives and from a (local, test-only) HTTP server,
//! atomically; and locating the data.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::{tar_gz, write_binary, write_python, N};
use landscape_dataset::{
    locate_in, DatasetError, InstallParams, Layout, LoadParams, NoProgress, Progress, Source, Stage,
};
use md5::{Digest, Md5};

fn check() -> LoadParams {
    LoadParams::new().records_per_batch(N)
}

/// A binary (or Python) fixture packed as `<tmp>/src/<name>.tar.gz`.
fn archive(tmp: &Path, layout: Layout) -> PathBuf {
    let src = tmp.join("src");
    let dir = match layout {
        Layout::Binary => write_binary(&src),
        Layout::Python => write_python(&src),
    };
    let out = tmp.join(format!("{}.tar.gz", layout.folder_name()));
    tar_gz(&dir, &out);
    out
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    bytes: u64,
}

impl Progress for Recorder {
    fn start(&mut self, stage: Stage, total: Option<u64>) {
        self.events.push(format!("start {stage} {total:?}"));
    }
    fn advance(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
    fn finish(&mut self, stage: Stage) {
        self.events.push(format!("finish {stage}"));
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn installs_binary_archive_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Binary);
    let dest = tmp.path().join("data");
    let mut rec = Recorder::default();
    let report = InstallParams::new(&dest)
        .archive(Some(arch.clone()))
        .check_with(check())
        .install(&mut rec)
        .unwrap();
    let size = fs::metadata(&arch).unwrap().len();
    assert_eq!(report.path, dest.join("cifar-10-batches-bin"));
    assert_eq!(report.archive_bytes, size);
    assert!(!report.replaced);
    assert_eq!(
        report.source,
        Source::Archive {
            path: arch.clone(),
            md5: md5_hex(&fs::read(&arch).unwrap()),
        }
    );
    assert_eq!(report.verify.dir, report.path);
    assert_eq!(report.verify.train_images(), 5 * N);
    // Only the layout folder is left: no temporary folder.
    assert_eq!(listing(&dest), ["cifar-10-batches-bin"]);
    assert_eq!(
        rec.events,
        [
            format!("start extract Some({size})"),
            "finish extract".into(),
            "start verify None".into(),
            "finish verify".into()
        ]
    );
    assert_eq!(rec.bytes, size);
    let c = check().load(&report.path).unwrap();
    assert_eq!(
        c.train(),
        check()
            .load(&tmp.path().join("src/cifar-10-batches-bin"))
            .unwrap()
            .train()
    );
}

#[test]
fn installs_python_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Python);
    let dest = tmp.path().join("data");
    let report = InstallParams::new(&dest)
        .archive(Some(arch))
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap();
    assert_eq!(report.path, dest.join("cifar-10-batches-py"));
    assert_eq!(report.verify.layout, Layout::Python);
    assert_eq!(listing(&dest), ["cifar-10-batches-py"]);
}

#[test]
fn refuses_to_overwrite_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Binary);
    let dest = tmp.path().join("data");
    let params = InstallParams::new(&dest)
        .archive(Some(arch))
        .check_with(check());
    params.install(&mut NoProgress).unwrap();
    fs::write(dest.join("cifar-10-batches-bin/marker"), "old").unwrap();
    match params.install(&mut NoProgress).unwrap_err() {
        DatasetError::AlreadyInstalled { path } => {
            assert_eq!(path, dest.join("cifar-10-batches-bin"))
        }
        e => panic!("unexpected {e}"),
    }
    assert!(dest.join("cifar-10-batches-bin/marker").exists());
    let report = params.force(true).install(&mut NoProgress).unwrap();
    assert!(report.replaced);
    assert!(!dest.join("cifar-10-batches-bin/marker").exists());
    assert_eq!(listing(&dest), ["cifar-10-batches-bin"]);
}

#[test]
fn truncated_archive_is_corrupt_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Binary);
    let bytes = fs::read(&arch).unwrap();
    fs::write(&arch, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let dest = tmp.path().join("data");
    let err = InstallParams::new(&dest)
        .archive(Some(arch.clone()))
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap_err();
    match &err {
        DatasetError::CorruptArchive { path, .. } => assert_eq!(path, &arch),
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("corrupt archive"), "{err}");
    assert!(listing(&dest).is_empty(), "{:?}", listing(&dest));
}

#[test]
fn non_gzip_file_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("not-an-archive.tar.gz");
    fs::write(&arch, b"this is not gzip data at all").unwrap();
    let dest = tmp.path().join("data");
    let err = InstallParams::new(&dest)
        .archive(Some(arch))
        .install(&mut NoProgress)
        .unwrap_err();
    assert!(matches!(err, DatasetError::CorruptArchive { .. }), "{err}");
    assert!(listing(&dest).is_empty());
}

#[test]
fn archive_without_a_layout_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(&tmp.path().join("src"));
    let renamed = tmp.path().join("src/my-cifar");
    fs::rename(&dir, &renamed).unwrap();
    let arch = tmp.path().join("a.tar.gz");
    tar_gz(&renamed, &arch);
    let err = InstallParams::new(tmp.path().join("data"))
        .archive(Some(arch))
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap_err();
    match &err {
        DatasetError::ArchiveLayout { reason, .. } => {
            assert!(reason.contains("my-cifar"), "{reason}")
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn archive_with_a_bad_batch_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary(&tmp.path().join("src"));
    let batch = dir.join("data_batch_2.bin");
    let mut bytes = fs::read(&batch).unwrap();
    bytes.truncate(bytes.len() - 1);
    fs::write(&batch, bytes).unwrap();
    let arch = tmp.path().join("a.tar.gz");
    tar_gz(&dir, &arch);
    let dest = tmp.path().join("data");
    let err = InstallParams::new(&dest)
        .archive(Some(arch))
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap_err();
    match &err {
        DatasetError::ArchiveContent { source, .. } => match source.as_ref() {
            DatasetError::TruncatedBatch { path, record, .. } => {
                assert!(path.ends_with("cifar-10-batches-bin/data_batch_2.bin"));
                assert_eq!(*record, N - 1);
            }
            e => panic!("unexpected inner {e}"),
        },
        e => panic!("unexpected {e}"),
    }
    assert!(listing(&dest).is_empty());
}

#[test]
fn stale_temporary_folders_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Binary);
    let dest = tmp.path().join("data");
    fs::create_dir_all(dest.join(".landscape-install-abc123/extract")).unwrap();
    InstallParams::new(&dest)
        .archive(Some(arch))
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap();
    assert_eq!(listing(&dest), ["cifar-10-batches-bin"]);
}

/// Serves `body` once over HTTP on localhost; returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

#[test]
fn download_is_md5_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = archive(tmp.path(), Layout::Binary);
    let body = fs::read(&arch).unwrap();
    let dest = tmp.path().join("data");

    // The official MD5 does not match the fixture: nothing is installed.
    let url = serve_once(body.clone());
    let err = InstallParams::new(&dest)
        .url(&url, landscape_dataset::OFFICIAL_MD5)
        .check_with(check())
        .install(&mut NoProgress)
        .unwrap_err();
    match &err {
        DatasetError::Checksum {
            expected, actual, ..
        } => {
            assert_eq!(expected, landscape_dataset::OFFICIAL_MD5);
            assert_eq!(actual, &md5_hex(&body));
        }
        e => panic!("unexpected {e}"),
    }
    assert!(listing(&dest).is_empty());

    // With the matching MD5 it installs, reporting download progress.
    let url = serve_once(body.clone());
    let mut rec = Recorder::default();
    let report = InstallParams::new(&dest)
        .url(&url, md5_hex(&body).to_uppercase())
        .check_with(check())
        .install(&mut rec)
        .unwrap();
    assert_eq!(
        rec.events[0],
        format!("start download Some({})", body.len())
    );
    assert_eq!(rec.bytes, 2 * body.len() as u64); // downloaded, then extracted
    assert!(matches!(report.source, Source::Download { .. }));
    assert_eq!(listing(&dest), ["cifar-10-batches-bin"]);
}

#[test]
fn unreachable_url_is_a_download_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Bind then drop a listener to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = InstallParams::new(tmp.path().join("data"))
        .url(format!("http://127.0.0.1:{port}/x.tar.gz"), "00")
        .install(&mut NoProgress)
        .unwrap_err();
    assert!(matches!(err, DatasetError::Download { .. }), "{err}");
    assert!(listing(&tmp.path().join("data")).is_empty());
}

#[test]
fn locate_order_and_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let explicit = tmp.path().join("explicit");
    let env = tmp.path().join("env");
    let bin = write_binary(&ws.join("data"));
    let py_only = write_python(&explicit);
    let env_bin = write_binary(&env);

    // Workspace: data/cifar-10-batches-bin, then -py.
    assert_eq!(locate_in(None, None, Some(&ws)).unwrap(), bin);
    fs::remove_dir_all(&bin).unwrap();
    write_python(&ws.join("data"));
    assert_eq!(
        locate_in(None, None, Some(&ws)).unwrap(),
        ws.join("data/cifar-10-batches-py")
    );
    // The environment variable beats the workspace; --data beats both.
    assert_eq!(locate_in(None, Some(&env), Some(&ws)).unwrap(), env_bin);
    assert_eq!(
        locate_in(Some(&explicit), Some(&env), Some(&ws)).unwrap(),
        py_only
    );
    // A layout folder itself may be given.
    assert_eq!(locate_in(Some(&env_bin), None, None).unwrap(), env_bin);

    // A given place that holds nothing is an error, not a fallback.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = locate_in(Some(&empty), Some(&env), Some(&ws)).unwrap_err();
    let msg = err.to_string();
    match err {
        DatasetError::NotFound { searched } => assert_eq!(
            searched,
            [
                empty.clone(),
                empty.join("cifar-10-batches-bin"),
                empty.join("cifar-10-batches-py")
            ]
        ),
        e => panic!("unexpected {e}"),
    }
    assert!(
        msg.contains("landscape data install --archive PATH"),
        "{msg}"
    );
    assert!(msg.contains("LANDSCAPE_CIFAR10"), "{msg}");
    assert!(matches!(
        locate_in(None, None, Some(&empty)),
        Err(DatasetError::NotFound { .. })
    ));
}
