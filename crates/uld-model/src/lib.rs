//! The uld detector on libtorch (tch): a 2.5D ResNet backbone taking `3 * G`
//! slices (or, with 3DCE fusion, each group of 3 with shared weights), an
//! FPN, a dense anchor-free FCOS-style head with a localisation-quality
//! branch, target assignment with ignore regions and per-box weights, focal,
//! GIoU and quality losses, and decoding with top-k and NMS.
//!
//! Only this crate (and the trainer and binary built on it) links torch.

pub mod autocast;
pub mod backbone;
pub mod bench;
pub mod config;
pub mod decode;
pub mod detector;
pub mod fpn;
pub mod head;
pub mod loss;
pub mod macs;
pub mod norm;
pub mod pretrained;
pub mod targets;

pub use config::ModelConfig;
pub use decode::Detection;
pub use detector::{BuildDetector, Detector, FcosDetector, build_detector};
pub use head::{HeadOutput, LevelShape, RawImageOutput};
pub use loss::{BatchTargets, FcosLoss, LossTerms, LossValues};
pub use targets::{AssignedTargets, ImageTargets, assign};
