//! BEVFusion's ConvFuser: concatenate the camera and LiDAR BEV features, 3x3 conv-BN-ReLU.
//!
//! Width slot: `fuser.conv`. Its input is camera ⊕ LiDAR, so the camera BEV channels are
//! consumed at offset 0 and the LiDAR ones at offset `camera channels`.

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::FuserConfig;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct ConvFuser {
    conv: ConvBn,
    pub out_spec: ChannelSpec,
}

impl ConvFuser {
    pub fn new(
        p: &nn::Path,
        cfg: &FuserConfig,
        camera: &ChannelSpec,
        lidar: &ChannelSpec,
        slots: &mut Slots,
    ) -> Self {
        let slot = format!("{}.conv", path_name(p));
        let w = slots.width(&slot, cfg.channels);
        let input = ChannelSpec::concat(&[camera, lidar]);
        let conv = ConvBn::new(
            &(p / "conv"),
            &input,
            w,
            Some(&slot),
            ConvOpts::cbr(3, 1),
            slots,
        );
        Self {
            conv,
            out_spec: ChannelSpec::slot(&slot, w),
        }
    }

    /// `camera`, `lidar`: `[B, C_c, NX, NY]`, `[B, C_l, NX, NY]`.
    pub fn forward_t(&self, camera: &Tensor, lidar: &Tensor, train: bool) -> Tensor {
        self.conv
            .forward_t(&Tensor::cat(&[camera, lidar], 1), train)
    }
}
