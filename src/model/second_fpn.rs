//! SECOND-FPN: every backbone stage brought to one common stride (transposed conv when
//! upsampling, 1x1 conv otherwise) + BN + ReLU, then concatenated along channels.
//!
//! Width slots: `<p>.deblocks.<i>`; the output is their concatenation.

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::SecondFpnConfig;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct SecondFpn {
    deblocks: Vec<ConvBn>,
    pub out_spec: ChannelSpec,
}

impl SecondFpn {
    pub fn new(
        p: &nn::Path,
        cfg: &SecondFpnConfig,
        in_specs: &[ChannelSpec],
        slots: &mut Slots,
    ) -> Self {
        let prefix = path_name(p);
        let mut deblocks = Vec::new();
        let mut outs = Vec::new();
        for (i, (&up, &c)) in cfg.upsample_strides.iter().zip(&cfg.channels).enumerate() {
            let slot = format!("{prefix}.deblocks.{i}");
            let w = slots.width(&slot, c);
            let opts = if up > 1 {
                ConvOpts {
                    kernel: up,
                    stride: up,
                    bn: true,
                    relu: true,
                    transposed: true,
                }
            } else {
                ConvOpts::cbr(1, 1)
            };
            deblocks.push(ConvBn::new(
                &(p / "deblocks" / i),
                &in_specs[i],
                w,
                Some(&slot),
                opts,
                slots,
            ));
            outs.push(ChannelSpec::slot(&slot, w));
        }
        let out_spec = ChannelSpec::concat(&outs.iter().collect::<Vec<_>>());
        Self { deblocks, out_spec }
    }

    pub fn forward_t(&self, xs: &[Tensor], train: bool) -> Tensor {
        let ys: Vec<Tensor> = self
            .deblocks
            .iter()
            .zip(xs)
            .map(|(d, x)| d.forward_t(x, train))
            .collect();
        if ys.len() == 1 {
            return ys.into_iter().next().expect("one");
        }
        Tensor::cat(&ys, 1)
    }
}
