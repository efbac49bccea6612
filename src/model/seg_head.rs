//! BEV map segmentation head (BEVFusion's): decoder features resampled bilinearly onto the
//! segmentation grid, two 3x3 conv-BN-ReLU, a 1x1 classifier for the six
//! `classes::MAP_CLASSES`; sigmoid focal (or BCE) loss per class, summed over classes.
//!
//! Width slots: `heads.seg.conv1`, `heads.seg.conv2` (the classifier's outputs are classes).

use crate::classes::MAP_CLASSES;
use crate::geometry::BevGrid;
use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::{SegHeadConfig, SegLoss};
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Kind, Tensor};

#[derive(Debug)]
pub struct SegHead {
    cfg: SegHeadConfig,
    bev: BevGrid,
    conv1: ConvBn,
    conv2: ConvBn,
    classifier: ConvBn,
}

impl SegHead {
    pub fn new(
        p: &nn::Path,
        cfg: &SegHeadConfig,
        bev: BevGrid,
        input: &ChannelSpec,
        slots: &mut Slots,
    ) -> Self {
        let prefix = path_name(p);
        let s1 = format!("{prefix}.conv1");
        let s2 = format!("{prefix}.conv2");
        let w1 = slots.width(&s1, cfg.channels);
        let conv1 = ConvBn::new(
            &(p / "conv1"),
            input,
            w1,
            Some(&s1),
            ConvOpts::cbr(3, 1),
            slots,
        );
        let w2 = slots.width(&s2, cfg.channels);
        let conv2 = ConvBn::new(
            &(p / "conv2"),
            &ChannelSpec::slot(&s1, w1),
            w2,
            Some(&s2),
            ConvOpts::cbr(3, 1),
            slots,
        );
        let classifier = ConvBn::new(
            &(p / "classifier"),
            &ChannelSpec::slot(&s2, w2),
            MAP_CLASSES.len() as i64,
            None,
            ConvOpts::plain(1),
            slots,
        );
        Self {
            cfg: cfg.clone(),
            bev,
            conv1,
            conv2,
            classifier,
        }
    }

    pub fn grid(&self) -> BevGrid {
        self.cfg.grid.grid()
    }

    /// Resample `[B, C, NX, NY]` BEV features onto the segmentation grid (bilinear).
    fn grid_transform(&self, x: &Tensor) -> Tensor {
        let g = self.grid();
        if g == self.bev {
            return x.shallow_clone();
        }
        let (sx, sy) = (g.nx() as i64, g.ny() as i64);
        let opts = (Kind::Float, x.device());
        let b = &self.bev;
        // Normalised [-1, 1] coordinates of the output cell centres in the input grid.
        let xs = (Tensor::arange(sx, opts) + 0.5) * g.resolution + g.x_min;
        let ys = (Tensor::arange(sy, opts) + 0.5) * g.resolution + g.y_min;
        let nxs = (xs - b.x_min) / (b.x_max - b.x_min) * 2.0 - 1.0;
        let nys = (ys - b.y_min) / (b.y_max - b.y_min) * 2.0 - 1.0;
        // grid_sample's last dim is (w, h) = (y, x) for our [.., NX, NY] layout.
        let gx = nxs.view([sx, 1]).expand([sx, sy], false);
        let gy = nys.view([1, sy]).expand([sx, sy], false);
        let grid = Tensor::stack(&[gy, gx], 2)
            .unsqueeze(0)
            .expand([x.size()[0], sx, sy, 2], false);
        x.grid_sampler(&grid.to_kind(x.kind()), 0, 0, false)
    }

    /// Class logits `[B, 6, SX, SY]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.grid_transform(x);
        let y = self
            .conv2
            .forward_t(&self.conv1.forward_t(&y, train), train);
        self.classifier.forward_t(&y, train)
    }

    /// Loss against binary targets `[B, 6, SX, SY]`; frames with `valid[b] = 0` (no map) do
    /// not count.
    pub fn loss(&self, logits: &Tensor, target: &Tensor, valid: &Tensor) -> Tensor {
        let logits = logits.to_kind(Kind::Float);
        let ce = logits.binary_cross_entropy_with_logits::<Tensor>(
            target,
            None,
            None,
            tch::Reduction::None,
        );
        let per = match self.cfg.loss {
            SegLoss::Bce => ce,
            SegLoss::Focal => {
                let p = logits.sigmoid();
                let p_t = &p * target + (-&p + 1.0) * (-target + 1.0);
                let a = self.cfg.focal_alpha;
                let alpha_t = target * a + (-target + 1.0) * (1.0 - a);
                ce * (-p_t + 1.0).pow_tensor_scalar(self.cfg.focal_gamma) * alpha_t
            }
        };
        let s = per.size();
        let w = valid.view([s[0], 1, 1, 1]);
        let cells = (s[2] * s[3]) as f64;
        // mean over valid frames and cells, per class; summed over classes
        (per * w).sum(Kind::Float) / (valid.sum(Kind::Float).clamp_min(1.0) * cells)
    }
}
