//! Training for uld, generic over the detector: supervised and
//! teacher-student mining runs, with optimisers whose state is saved,
//! learning-rate schedules, the EMA teacher, atomic checkpoints and exact
//! resume; the pieces a run is made of (`run`), validation, mined-lesion
//! export, the experiments (`experiment`: the mining benchmark, the demo)
//! and detection on whole scans (`scan`, `scan_outputs`, `scan_run`).

pub mod bank;
pub mod batch;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod config_changes;
pub mod detect;
pub mod device;
pub mod ema;
pub mod experiment;
pub mod metrics;
pub mod mined;
pub mod mined_export;
pub mod mining;
pub mod mirror;
pub mod nan_guard;
pub mod objective;
pub mod optim;
pub mod reviewed;
pub mod run;
pub mod run_summary;
pub mod scan;
pub mod scan_outputs;
pub mod scan_run;
pub mod schedule;
pub mod shard;
pub mod step;
pub mod tracklets;
pub mod trained;
pub mod trainer;
pub mod validate;
pub mod validation;

pub use checkpoint::{latest_step, load_latest, save_checkpoint};
pub use config::{Mode, TrainConfig};
pub use detect::{DetectSettings, ItemDetections, KeyImageDetections, detect_items};
pub use ema::ema_update;
pub use metrics::MetricsLog;
pub use mining::{MiningConfig, PseudoLabels, merge_pseudo_labels};
pub use nan_guard::{NanGuard, Verdict};
pub use objective::{CompleteAnnotations, Mining, Objective, Supervised, complete_from_manifest};
pub use optim::{Optimizer, OptimizerConfig};
pub use schedule::{Decay, LrSchedule};
pub use step::Precision;
pub use trained::{
    TrainedDetector, Weights, load_trained, load_trained_weights, load_trained_with,
};
pub use trainer::{Observer, Outcome, Silent, StepLog, Student, train};
pub use validation::{Validation, Validator};
