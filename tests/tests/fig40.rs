//! End-to-end test of `landscape reproduce fig40` through the real binary at
//! the `smoke` scale: one store per training-set size, the stored networks
//! have the parameter counts the summary reports, and every reported
//! validation error is the stored evaluation of that network's last epoch.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use landscape_engine::identity::RunId;
use landscape_tests::{csv_rows, json, smoke_ok};
use landscape_trajectory::Store;

const BIN: &str = env!("CARGO_BIN_EXE_landscape-e2e");

#[test]
fn fig40_smoke_run_is_wired_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = smoke_ok(BIN, "fig40", &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("widening_does_not_hurt"), "{stdout}");
    let cfg = json(&out.join("run.json"))["config"].clone();
    let summary = json(&out.join("summary.json"));
    let sizes: Vec<u64> = cfg["train_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let ratios = cfg["param_ratios"].as_array().unwrap().len();
    let seeds = cfg["seeds"].as_array().unwrap().len();
    let epochs = cfg["epochs"].as_u64().unwrap() as u32;
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), sizes.len() * ratios);
    for (pi, p) in points.iter().enumerate() {
        let n = p["train_size"].as_u64().unwrap();
        assert_eq!(n, sizes[pi / ratios]);
        let store = Store::open(out.join(format!("store-n{n}"))).unwrap();
        let wi = pi % ratios;
        for (k, r) in p["runs"].as_array().unwrap().iter().enumerate() {
            let seed = r["seed"].as_u64().unwrap();
            assert_eq!(seed, cfg["seeds"][k].as_u64().unwrap());
            let want = RunId::Named {
                name: format!("width{}/seed{seed}", wi + 1),
            };
            let snaps: Vec<_> = store
                .snapshots()
                .iter()
                .filter(|s| RunId::from_meta(s.meta()).as_ref() == Some(&want))
                .cloned()
                .collect();
            assert_eq!(snaps.len() as u32, epochs + 1, "{want:?}");
            let last = snaps.iter().max_by_key(|s| s.meta().epoch()).unwrap();
            assert_eq!(
                r["last"]["test_error"].as_f64().unwrap(),
                last.meta().metric("test_error").unwrap(),
                "the reported validation error is the stored one"
            );
            // The stored network has the reported parameter count (conv
            // weights and biases; BN has no affine parameters).
            let params: usize = store
                .read_snapshot(last.id())
                .unwrap()
                .iter()
                .filter(|t| !t.name.starts_with("optim.") && !t.name.contains(".bn."))
                .map(|t| t.data.len())
                .sum();
            assert_eq!(params as u64, p["params"].as_u64().unwrap());
        }
    }
    // Wider networks at each N, as the ratios ask.
    for w in points.chunks(ratios) {
        let params: Vec<u64> = w.iter().map(|p| p["params"].as_u64().unwrap()).collect();
        assert!(params.windows(2).all(|x| x[0] < x[1]), "{params:?}");
    }
    let rows = csv_rows(&out.join("fig40").join("points.csv"));
    assert_eq!(rows.len(), points.len() * seeds);
    assert!(out.join("fig40").join("fig40.svg").is_file());
    // A second run adds nothing.
    smoke_ok(BIN, "fig40", &out, &[]);
    assert_eq!(
        json(&out.join("run.json"))["last_invocation"]["snapshots_written"],
        0
    );
}
