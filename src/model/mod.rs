//! The BEVFusion-style model in tch (issue #4): swappable parts chosen by a YAML config.
//!
//! Variable names start with the part's group: `camera.*` (backbone, neck, LSS view
//! transform), `lidar.*` (voxel encoder, BEV backbone), and `fuser.*`, `decoder.*`, `heads.*`
//! (the fusion group). [`Group::of_param`] relies on that.
pub mod modality;

pub use modality::{Group, ModalityMask};
