//! ResNet-style image backbone (basic or bottleneck blocks, depths/widths/strides from the
//! config). Returns every stage's output for the neck.
//!
//! Width slots: `<p>.stem` (stem conv, unless layer 1 starts with an identity shortcut, which
//! couples it to the layer-1 stream), `<p>.layer<s>` (the residual stream of stage s: every
//! block's last conv and the projection shortcut), `<p>.layer<s>.<b>.conv1` (and `.conv2` for
//! bottlenecks: the block-internal widths).

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::{BlockKind, ResNetConfig};
use crate::model::layers::{ConvBn, ConvOpts};
use tch::{nn, Tensor};

/// Dotted name of a VarStore path.
pub fn path_name(p: &nn::Path) -> String {
    p.components().collect::<Vec<_>>().join(".")
}

#[derive(Debug)]
struct Block {
    convs: Vec<ConvBn>,
    down: Option<ConvBn>,
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for c in &self.convs {
            y = c.forward_t(&y, train);
        }
        let sc = match &self.down {
            Some(d) => d.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (y + sc).relu()
    }
}

#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    pool: bool,
    stages: Vec<Vec<Block>>,
    /// Channel layout of each stage's output.
    pub out_specs: Vec<ChannelSpec>,
}

impl ResNet {
    pub fn new(p: &nn::Path, cfg: &ResNetConfig, slots: &mut Slots) -> Self {
        let prefix = path_name(p);
        // The slot of the stream entering stage 0: the stem's own, unless stage 0 begins
        // with an identity shortcut (then stem and layer-1 stream are one slot).
        let stage0_identity = cfg.channels[0] == cfg.stem_channels && cfg.strides[0] == 1;
        let stem_slot = if stage0_identity {
            format!("{prefix}.layer1")
        } else {
            format!("{prefix}.stem")
        };
        let stem_w = slots.width(&stem_slot, cfg.stem_channels);
        let stem = ConvBn::new(
            &(p / "stem"),
            &ChannelSpec::fixed(3),
            stem_w,
            Some(&stem_slot),
            ConvOpts::cbr(cfg.stem_kernel, cfg.stem_stride),
            slots,
        );
        let mut input = ChannelSpec::slot(&stem_slot, stem_w);
        let mut in_structural = cfg.stem_channels;
        let mut stream_slot = stem_slot;
        let mut stages = Vec::new();
        let mut out_specs = Vec::new();
        for (s, (&depth, (&c, &stride))) in cfg
            .depths
            .iter()
            .zip(cfg.channels.iter().zip(&cfg.strides))
            .enumerate()
        {
            let lp = p / format!("layer{}", s + 1);
            let projection = in_structural != c || stride != 1;
            if projection {
                stream_slot = format!("{prefix}.layer{}", s + 1);
            }
            let cw = slots.width(&stream_slot, c);
            let mut blocks = Vec::new();
            for b in 0..depth {
                let bp = &lp / b;
                let bname = path_name(&bp);
                let st = if b == 0 { stride } else { 1 };
                let out_spec = ChannelSpec::slot(&stream_slot, cw);
                let convs = match cfg.block {
                    BlockKind::Basic => {
                        let s1 = format!("{bname}.conv1");
                        let w1 = slots.width(&s1, c);
                        let c1 = ConvBn::new(
                            &(&bp / "conv1"),
                            &input,
                            w1,
                            Some(&s1),
                            ConvOpts::cbr(3, st),
                            slots,
                        );
                        let c2 = ConvBn::new(
                            &(&bp / "conv2"),
                            &ChannelSpec::slot(&s1, w1),
                            cw,
                            Some(&stream_slot),
                            ConvOpts::cbr(3, 1).no_relu(),
                            slots,
                        );
                        vec![c1, c2]
                    }
                    BlockKind::Bottleneck => {
                        let m = c / 4;
                        let s1 = format!("{bname}.conv1");
                        let s2 = format!("{bname}.conv2");
                        let w1 = slots.width(&s1, m);
                        let w2 = slots.width(&s2, m);
                        let c1 = ConvBn::new(
                            &(&bp / "conv1"),
                            &input,
                            w1,
                            Some(&s1),
                            ConvOpts::cbr(1, 1),
                            slots,
                        );
                        let c2 = ConvBn::new(
                            &(&bp / "conv2"),
                            &ChannelSpec::slot(&s1, w1),
                            w2,
                            Some(&s2),
                            ConvOpts::cbr(3, st),
                            slots,
                        );
                        let c3 = ConvBn::new(
                            &(&bp / "conv3"),
                            &ChannelSpec::slot(&s2, w2),
                            cw,
                            Some(&stream_slot),
                            ConvOpts::cbr(1, 1).no_relu(),
                            slots,
                        );
                        vec![c1, c2, c3]
                    }
                };
                let down = (b == 0 && projection).then(|| {
                    ConvBn::new(
                        &(&bp / "downsample"),
                        &input,
                        cw,
                        Some(&stream_slot),
                        ConvOpts::cbr(1, st).no_relu(),
                        slots,
                    )
                });
                blocks.push(Block { convs, down });
                input = out_spec;
            }
            in_structural = c;
            out_specs.push(input.clone());
            stages.push(blocks);
        }
        Self {
            stem,
            pool: cfg.stem_pool,
            stages,
            out_specs,
        }
    }

    /// `x`: `[N, 3, H, W]` -> each stage's output.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut y = self.stem.forward_t(x, train);
        if self.pool {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        let mut outs = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            for b in stage {
                y = b.forward_t(&y, train);
            }
            outs.push(y.shallow_clone());
        }
        outs
    }
}
