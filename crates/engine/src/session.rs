//! One run of an experiment: options, device, data, provenance checks and
//! `run.json`, set up the same way for every figure.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use landscape_net::{self as net, DeviceChoice, NetConfig};
use landscape_trajectory::Store;
use serde::Serialize;

use crate::config::Scale;
use crate::data::{self, DataConfig, ExperimentData};
use crate::eval::{EvalConfig, Evaluator};
use crate::provenance::{self, Fingerprint, Invocation, RunLog, RunRecord, Versions};
use crate::recorder::Recorder;

/// What to run, where: the options every `reproduce` command shares.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The scale.
    pub scale: Scale,
    /// The output folder.
    pub out: PathBuf,
    /// auto, cpu or cuda.
    pub device: DeviceChoice,
    /// CIFAR-10 folder (default: `LANDSCAPE_CIFAR10`, then the workspace's `data/`).
    pub data_dir: Option<PathBuf>,
    /// An experiment file to use instead of the bundled one.
    pub config_file: Option<PathBuf>,
    /// libtorch CPU threads (default: all cores).
    pub threads: Option<usize>,
    /// Delete the folder's earlier results and start over.
    pub fresh: bool,
    /// The command line, for `run.json`.
    pub command: Vec<String>,
}

/// A started run: its data, device, fingerprint and `run.json` log.
pub struct Session {
    /// The training and test sets.
    pub data: ExperimentData,
    /// The device.
    pub device: net::tch::Device,
    /// The output folder.
    pub out: PathBuf,
    /// What determines the stored models.
    pub fingerprint: Fingerprint,
    /// `run.json`, with phase timings.
    pub log: RunLog,
}

/// What an experiment tells [`Session::start`] about itself.
pub struct SessionSpec<'a, C> {
    /// The experiment's name (`fig14`).
    pub experiment: &'a str,
    /// The resolved configuration of the scale.
    pub config: &'a C,
    /// Its seed.
    pub seed: u64,
    /// Its data.
    pub data: &'a DataConfig,
    /// Its network.
    pub net: &'a NetConfig,
    /// Config keys that change only the analysis (see [`Fingerprint::new`]).
    pub analysis_only: &'a [&'a str],
    /// Output folders the experiment writes (deleted by a fresh run, see
    /// [`RunOptions::fresh`]).
    pub outputs: &'a [&'a str],
}

impl Session {
    /// Loads the data, computes the fingerprint, checks the output folder
    /// (refusing a different fingerprint before writing anything, or clearing
    /// it with `fresh`), then starts `run.json`.
    pub fn start<C: Serialize>(opts: &RunOptions, spec: &SessionSpec<'_, C>) -> Result<Session> {
        let threads = opts.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        net::set_threads(threads);
        let device = opts.device.resolve()?;
        let data = data::load(spec.data, opts.data_dir.as_deref(), device)?;
        tracing::info!(
            train = data.train_len(),
            test = data.test_len(),
            source = %data.source.display(),
            params = spec.net.param_count(),
            "data loaded"
        );
        let fingerprint = Fingerprint::new(
            spec.config,
            spec.analysis_only,
            &data,
            spec.net.param_count(),
            device,
        )?;
        provenance::prepare_output(&opts.out, &fingerprint, opts.fresh, spec.outputs)?;
        let record = RunRecord {
            experiment: spec.experiment.to_owned(),
            scale: opts.scale.to_string(),
            seed: spec.seed,
            config: serde_json::to_value(spec.config)?,
            fingerprint: fingerprint.clone(),
            versions: Versions::default(),
            device: format!("{device:?}"),
            device_info: net::DeviceInfo::of(device),
            threads,
            data_source: data.source.clone(),
            random_labels: data.random_labels.clone(),
            timings_s: BTreeMap::new(),
            total_s: 0.0,
            resumed: false,
            status: String::new(),
            last_invocation: Invocation {
                command: opts.command.clone(),
                allocator: landscape_net::malloc_setup()
                    .map_or_else(|| "unset".to_owned(), |m| m.summary()),
                ..Invocation::default()
            },
        };
        let log = RunLog::start(&opts.out, record)?;
        Ok(Session {
            data,
            device,
            out: opts.out.clone(),
            fingerprint,
            log,
        })
    }
}

/// A recorder on `out/store` for a session's data (a free function so that
/// the session's log stays usable while the recorder borrows its data).
pub fn recorder<'a>(
    out: &std::path::Path,
    data: &'a ExperimentData,
    eval: &EvalConfig,
    net: &NetConfig,
    device: net::tch::Device,
    fingerprint: &Fingerprint,
) -> Result<Recorder<'a>> {
    let store = Store::open_or_create(out.join("store"))?;
    Ok(Recorder::new(
        store,
        data,
        Evaluator::new(data, eval.clone()),
        net.clone(),
        device,
        &fingerprint.hash,
    ))
}
