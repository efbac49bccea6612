//! The BEVFusion-style model in tch (issue #4): swappable parts chosen by a YAML config.
//!
//! Variable names start with the part's group: `camera.*` (backbone, neck, LSS view
//! transform), `lidar.*` (voxel encoder, BEV backbone), and `fuser.*`, `decoder.*`, `heads.*`
//! (the fusion group). [`Group::of_param`] relies on that.
//!
//! Files, one concept each: [`config`] (the YAML), [`batch`] (frames -> inputs and targets),
//! [`voxelize`], [`pillar`], [`resnet`], [`fpn`], [`lss`] + [`depth_lss`], [`second`],
//! [`second_fpn`], [`conv_fuser`], [`centerpoint`] + [`circle_nms`], [`seg_head`],
//! [`bevfusion`] (the whole model), [`channels`] (width slots for structured pruning),
//! [`flops`], [`load`] (checkpoints), [`layers`] (conv/BN building blocks).
pub mod batch;
pub mod bevfusion;
pub mod centerpoint;
pub mod channels;
pub mod circle_nms;
pub mod config;
pub mod conv_fuser;
pub mod depth_lss;
pub mod flops;
pub mod fpn;
pub mod layers;
pub mod load;
pub mod lss;
pub mod modality;
pub mod pillar;
pub mod resnet;
pub mod second;
pub mod second_fpn;
pub mod seg_head;
pub mod voxelize;

pub use bevfusion::{BevFusion, LossBreakdown, ModelOutput};
pub use channels::{ChannelGroup, ChannelMember};
pub use config::ModelConfig;
pub use modality::{Group, ModalityMask};
