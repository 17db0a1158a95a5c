//! Augmentation with exact geometry: every geometric change is a recorded
//! [`Affine2`], so boxes (and a teacher's predictions) move between the
//! original slice, the sample and any view exactly.

mod intensity;
mod views;
mod warp;

// The maps live in a leaf module that samples use too.
pub use crate::affine::{Affine2, ClipRule, MappedBoxes};
pub use intensity::{add_noise, cut_out, jitter};
pub use views::{StrongConfig, View, WeakConfig, strong_affine, strong_view, weak_view};
pub use warp::warp_affine;
