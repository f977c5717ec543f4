//! Typed run identities and origins, stored in every snapshot's metadata, so
//! that legends and analyses never parse run-name strings.
use landscape_trajectory::{SnapshotId, SnapshotMeta};
use serde::{Deserialize, Serialize};

/// Which trajectory of an experiment a snapshot belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunId {
    /// The main trajectory, trained from a seeded random initialisation.
    Main,
    /// Branch `index` (1-based) of `variant`, started at `from_epoch` of main.
    Branch {
        /// The variant's name (e.g. `fig14`).
        variant: String,
        /// 1-based branch number.
        index: usize,
        /// Main-trajectory epoch the branch starts from.
        from_epoch: u32,
    },
    /// The epoch-by-epoch average of main and branch `index` of `variant`.
    Averaged {
        /// The variant's name.
        variant: String,
        /// 1-based branch number.
        index: usize,
        /// Main-trajectory epoch the branch starts from.
        from_epoch: u32,
    },
    /// A model retrained after a perturbation (`index` 1-based).
    Retrained {
        /// The variant's name.
        variant: String,
        /// 1-based number.
        index: usize,
    },
    /// Run `run` of stage `stage` (both 1-based), as in Figures 3 and 8-13.
    Stage {
        /// 1-based stage.
        stage: u32,
        /// 1-based run within the stage.
        run: u32,
    },
    /// Any other named trajectory.
    Named {
        /// Its name.
        name: String,
    },
}

impl RunId {
    /// The store's `run` field: a readable, unique name
    /// (`main`, `fig14/branch2`, `fig14/avg2`, `stage3/run5`).
    pub fn run_name(&self) -> String {
        match self {
            RunId::Main => "main".to_owned(),
            RunId::Branch { variant, index, .. } => format!("{variant}/branch{index}"),
            RunId::Averaged { variant, index, .. } => format!("{variant}/avg{index}"),
            RunId::Retrained { variant, index } => format!("{variant}/retrained{index}"),
            RunId::Stage { stage, run } => format!("stage{stage}/run{run}"),
            RunId::Named { name } => name.clone(),
        }
    }

    /// The legend text.
    pub fn label(&self) -> String {
        match self {
            RunId::Main => "main".to_owned(),
            RunId::Branch {
                index, from_epoch, ..
            } => format!("branch {index} (from epoch {from_epoch})"),
            RunId::Averaged {
                index, from_epoch, ..
            } => format!("averaged {index} (main + branch {index}, from epoch {from_epoch})"),
            RunId::Retrained { index, .. } => format!("retrained {index}"),
            RunId::Stage { stage, run } => format!("stage {stage} run {run}"),
            RunId::Named { name } => name.clone(),
        }
    }

    /// The identity stored in a snapshot's metadata (`None` for snapshots
    /// written without one).
    pub fn from_meta(meta: &SnapshotMeta) -> Option<RunId> {
        serde_json::from_str(meta.extra().get(IDENTITY_KEY)?).ok()
    }
}

/// Where a snapshot's model came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum Origin {
    /// A seeded random initialisation.
    Init {
        /// The initialisation seed.
        seed: u64,
    },
    /// One training epoch after `previous`.
    Trained {
        /// The snapshot of the epoch before.
        previous: SnapshotId,
    },
    /// A Gaussian perturbation of `parent`.
    Perturbed {
        /// The perturbed model.
        parent: SnapshotId,
        /// Noise std relative to each tensor's scale.
        alpha: f64,
        /// The noise seed.
        seed: u64,
        /// Whether biases were perturbed too.
        biases: bool,
    },
    /// A bit-identical copy of `parent` (a run that continues from another
    /// run's model, as runs 1-4 of each stage of Figure 3).
    Copied {
        /// The copied model.
        parent: SnapshotId,
    },
    /// `(1 - t) a + t b`.
    Interpolated {
        /// The first model.
        a: SnapshotId,
        /// The second model.
        b: SnapshotId,
        /// The interpolation parameter (0.5: the average).
        t: f64,
    },
    /// Read from a file made elsewhere (a PyTorch state_dict), not trained here.
    Imported {
        /// The file's name (without its folder).
        file: String,
        /// CRC-32 of the file's bytes (8 hex digits).
        crc32: String,
        /// `safetensors` or `torch.save`.
        format: String,
        /// The naming layout: `landscape` or `sequential`.
        layout: String,
    },
}

impl Origin {
    /// The origin stored in a snapshot's metadata.
    pub fn from_meta(meta: &SnapshotMeta) -> Option<Origin> {
        serde_json::from_str(meta.extra().get(ORIGIN_KEY)?).ok()
    }

    /// The snapshot this one was made from, if any (the store's `parent`).
    pub fn parent(&self) -> Option<SnapshotId> {
        match self {
            Origin::Init { .. } | Origin::Imported { .. } => None,
            Origin::Trained { previous } => Some(*previous),
            Origin::Perturbed { parent, .. } | Origin::Copied { parent } => Some(*parent),
            Origin::Interpolated { b, .. } => Some(*b),
        }
    }
}

/// Metadata key of the run identity (JSON).
pub const IDENTITY_KEY: &str = "identity";
/// Metadata key of the origin (JSON).
pub const ORIGIN_KEY: &str = "origin";
/// Metadata key of the provenance fingerprint (hex).
pub const FINGERPRINT_KEY: &str = "fingerprint";
/// The snapshot kind of imported models (`other:imported` in tables and filters).
pub const IMPORTED_KIND: &str = "imported";
/// Metadata key of the BN evaluation policy.
pub const BN_EVAL_KEY: &str = "bn_eval";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use landscape_trajectory::SnapshotKind;

    #[test]
    fn identities_round_trip_through_metadata() {
        let ids = [
            RunId::Main,
            RunId::Branch {
                variant: "fig14".into(),
                index: 2,
                from_epoch: 10,
            },
            RunId::Averaged {
                variant: "fig16".into(),
                index: 1,
                from_epoch: 0,
            },
            RunId::Stage { stage: 3, run: 5 },
            RunId::Named { name: "x/y".into() },
        ];
        for id in ids {
            let meta = SnapshotMeta::new(id.run_name(), SnapshotKind::Trained)
                .with_extra(IDENTITY_KEY, serde_json::to_string(&id).unwrap());
            assert_eq!(RunId::from_meta(&meta), Some(id));
        }
        let o = Origin::Perturbed {
            parent: SnapshotId(4),
            alpha: 0.25,
            seed: 9,
            biases: false,
        };
        let meta = SnapshotMeta::new("r", SnapshotKind::Perturbed)
            .with_extra(ORIGIN_KEY, serde_json::to_string(&o).unwrap());
        assert_eq!(Origin::from_meta(&meta), Some(o));
        let c = Origin::Copied {
            parent: SnapshotId(7),
        };
        assert_eq!(c.parent(), Some(SnapshotId(7)));
        let meta = SnapshotMeta::new("r", SnapshotKind::Trained)
            .with_extra(ORIGIN_KEY, serde_json::to_string(&c).unwrap());
        assert_eq!(Origin::from_meta(&meta), Some(c));
        let i = Origin::Imported {
            file: "model.pt".into(),
            crc32: "0123abcd".into(),
            format: "torch.save".into(),
            layout: "sequential".into(),
        };
        assert_eq!(i.parent(), None);
        let meta = SnapshotMeta::new("r", SnapshotKind::Other("imported".into()))
            .with_extra(ORIGIN_KEY, serde_json::to_string(&i).unwrap());
        assert_eq!(Origin::from_meta(&meta), Some(i));
        assert_eq!(
            RunId::from_meta(&SnapshotMeta::new("main", SnapshotKind::Trained)),
            None
        );
    }
}
