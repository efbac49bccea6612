//! SECOND 2D BEV backbone: stages of 3x3 conv-BN-ReLU, the first of each stage strided.
//! Used as the LiDAR BEV backbone (after the pillar scatter) and as the fused BEV decoder.
//!
//! Width slots: `<p>.blocks.<stage>.<layer>` (every conv; a stage's last conv is its output).

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::SecondConfig;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct Second {
    stages: Vec<Vec<ConvBn>>,
    /// Channel layout of each stage's output.
    pub out_specs: Vec<ChannelSpec>,
}

impl Second {
    pub fn new(p: &nn::Path, cfg: &SecondConfig, input: &ChannelSpec, slots: &mut Slots) -> Self {
        let prefix = path_name(p);
        let mut input = input.clone();
        let mut stages = Vec::new();
        let mut out_specs = Vec::new();
        for (i, ((&n, &stride), &c)) in cfg
            .layer_nums
            .iter()
            .zip(&cfg.strides)
            .zip(&cfg.channels)
            .enumerate()
        {
            let mut convs = Vec::new();
            for j in 0..=n {
                let slot = format!("{prefix}.blocks.{i}.{j}");
                let w = slots.width(&slot, c);
                let st = if j == 0 { stride } else { 1 };
                convs.push(ConvBn::new(
                    &(p / "blocks" / i / j),
                    &input,
                    w,
                    Some(&slot),
                    ConvOpts::cbr(3, st),
                    slots,
                ));
                input = ChannelSpec::slot(&slot, w);
            }
            out_specs.push(input.clone());
            stages.push(convs);
        }
        Self { stages, out_specs }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut y = x.shallow_clone();
        let mut outs = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            for c in stage {
                y = c.forward_t(&y, train);
            }
            outs.push(y.shallow_clone());
        }
        outs
    }
}
