//! FPN neck over some backbone stages: 1x1 lateral conv per stage, top-down nearest
//! upsampling and sum, then a 3x3 conv on the finest level. One output map, at the stride of
//! the first listed stage (the map the view transform lifts).
//!
//! Width slots: `<p>.lateral` (all laterals, they are summed), `<p>.out`.

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::FpnConfig;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct Fpn {
    in_stages: Vec<usize>,
    laterals: Vec<ConvBn>,
    out: ConvBn,
    pub out_spec: ChannelSpec,
}

impl Fpn {
    pub fn new(
        p: &nn::Path,
        cfg: &FpnConfig,
        stage_specs: &[ChannelSpec],
        slots: &mut Slots,
    ) -> Self {
        let prefix = path_name(p);
        let lat_slot = format!("{prefix}.lateral");
        let out_slot = format!("{prefix}.out");
        let lw = slots.width(&lat_slot, cfg.channels);
        let laterals = cfg
            .in_stages
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                ConvBn::new(
                    &(p / "lateral" / i),
                    &stage_specs[s],
                    lw,
                    Some(&lat_slot),
                    ConvOpts::cbr(1, 1).no_relu(),
                    slots,
                )
            })
            .collect();
        let ow = slots.width(&out_slot, cfg.channels);
        let out = ConvBn::new(
            &(p / "out"),
            &ChannelSpec::slot(&lat_slot, lw),
            ow,
            Some(&out_slot),
            ConvOpts::cbr(3, 1),
            slots,
        );
        Self {
            in_stages: cfg.in_stages.clone(),
            laterals,
            out,
            out_spec: ChannelSpec::slot(&out_slot, ow),
        }
    }

    pub fn forward_t(&self, stages: &[Tensor], train: bool) -> Tensor {
        let mut y: Option<Tensor> = None;
        for (i, &s) in self.in_stages.iter().enumerate().rev() {
            let l = self.laterals[i].forward_t(&stages[s], train);
            y = Some(match y {
                None => l,
                Some(top) => {
                    let (h, w) = (l.size()[2], l.size()[3]);
                    l + top.upsample_nearest2d([h, w], None, None)
                }
            });
        }
        self.out
            .forward_t(&y.expect("at least one FPN input"), train)
    }
}
