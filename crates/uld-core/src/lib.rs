//! The geometry and data types every uld crate shares: boxes in one
//! convention, greedy NMS, CT volumes and typed errors.

pub mod atomic;
pub mod boxes;
pub mod error;
pub mod json;
pub mod nms;
pub mod overrides;
pub mod testdata;
pub mod volume;

pub use atomic::{write_atomically, write_atomically_via};
pub use boxes::{Box2, Box3};
pub use error::{Error, Location, Result};
pub use nms::{nms, nms_limited};
pub use volume::{Frame, Volume, WorldTransform};
