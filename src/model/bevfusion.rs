//! The whole BEVFusion-style model: camera branch (ResNet + FPN + LSS/DepthLSS), LiDAR
//! branch (pillars + SECOND + SECOND-FPN), ConvFuser, SECOND + SECOND-FPN decoder,
//! CenterPoint detection head and BEV segmentation head.
//!
//! Variables are named `camera.*`, `lidar.*`, `fuser.*`, `decoder.*`, `heads.*`, so
//! [`Group::of_param`] gives AlterMOMA's group of each. Modality masking is part of
//! [`BevFusion::forward`]: a masked branch is not run and its BEV features are exactly zero.
//! The stages are public methods so callers (the node's pipeline, benchmarks) can time them.

use crate::geometry::{BevGrid, Box3D};
use crate::model::batch::Batch;
use crate::model::centerpoint::{self, CenterPointHead, DetOutput};
use crate::model::channels::{ChannelGroup, ChannelSpec, Slots};
use crate::model::config::ModelConfig;
use crate::model::conv_fuser::ConvFuser;
use crate::model::fpn::Fpn;
use crate::model::lss::Lss;
use crate::model::pillar::PillarEncoder;
use crate::model::resnet::ResNet;
use crate::model::second::Second;
use crate::model::second_fpn::SecondFpn;
use crate::model::seg_head::SegHead;
use crate::model::{Group, ModalityMask};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{nn, Kind, Tensor};

/// Everything one forward pass produces.
#[derive(Debug)]
pub struct ModelOutput {
    pub mask: ModalityMask,
    /// `[B, C_cam, NX, NY]` (zeros when the camera is masked).
    pub camera_bev: Tensor,
    /// `[B, C_lidar, NX, NY]` (zeros when the LiDAR is masked).
    pub lidar_bev: Tensor,
    /// Fuser output `[B, C_f, NX, NY]`.
    pub fused: Tensor,
    /// Decoder output `[B, C_d, NX, NY]`.
    pub bev: Tensor,
    pub det: Option<DetOutput>,
    /// Segmentation logits `[B, 6, SX, SY]`.
    pub seg: Option<Tensor>,
}

/// Loss terms of a batch (already weighted), for logs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossBreakdown {
    pub total: f64,
    pub heatmap: f64,
    pub bbox: f64,
    pub seg: f64,
}

#[derive(Debug)]
pub struct BevFusion {
    pub cfg: ModelConfig,
    backbone: ResNet,
    neck: Fpn,
    vtransform: Lss,
    encoder: PillarEncoder,
    lidar_backbone: Second,
    lidar_neck: SecondFpn,
    fuser: ConvFuser,
    decoder: Second,
    decoder_neck: SecondFpn,
    det: Option<CenterPointHead>,
    seg: Option<SegHead>,
    groups: Vec<ChannelGroup>,
    camera_channels: i64,
    lidar_channels: i64,
}

/// The width slots of a config, from a structure-only build (constant init, CPU).
pub fn plan_slots(cfg: &ModelConfig) -> Slots {
    crate::model::layers::with_fast_init(|| {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut slots = Slots::new(&cfg.widths);
        tch::no_grad(|| BevFusion::build(&vs.root(), cfg, &mut slots));
        slots
    })
}

impl BevFusion {
    /// Build the model's variables under `p` (normally a VarStore's root). Fails when
    /// `cfg.widths` names a slot the model does not have.
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Result<Self> {
        let mut slots = Slots::new(&cfg.widths);
        let mut m = Self::build(p, cfg, &mut slots);
        let unused = slots.unused_overrides();
        if !unused.is_empty() {
            bail!(
                "model config `{}`: `widths` names unknown slot(s): {}",
                cfg.name,
                unused.join(", ")
            );
        }
        m.groups = slots.into_groups();
        Ok(m)
    }

    fn build(p: &nn::Path, cfg: &ModelConfig, slots: &mut Slots) -> Self {
        let cam = p / "camera";
        let backbone = ResNet::new(&(&cam / "backbone"), &cfg.camera.backbone, slots);
        let neck = Fpn::new(
            &(&cam / "neck"),
            &cfg.camera.neck,
            &backbone.out_specs,
            slots,
        );
        let stride = cfg
            .camera
            .backbone
            .stage_stride(cfg.camera.neck.in_stages[0]);
        let vtransform = Lss::new(&(&cam / "vtransform"), cfg, &neck.out_spec, stride, slots);
        let lid = p / "lidar";
        let encoder = PillarEncoder::new(&(&lid / "encoder"), cfg, slots);
        let lidar_backbone = Second::new(
            &(&lid / "backbone"),
            &cfg.lidar.backbone,
            &encoder.out_spec,
            slots,
        );
        let lidar_neck = SecondFpn::new(
            &(&lid / "neck"),
            &cfg.lidar.neck,
            &lidar_backbone.out_specs,
            slots,
        );
        let fuser = ConvFuser::new(
            &(p / "fuser"),
            &cfg.fuser,
            &vtransform.out_spec,
            &lidar_neck.out_spec,
            slots,
        );
        let dec = p / "decoder";
        let decoder = Second::new(
            &(&dec / "backbone"),
            &cfg.decoder.backbone,
            &fuser.out_spec,
            slots,
        );
        let decoder_neck = SecondFpn::new(
            &(&dec / "neck"),
            &cfg.decoder.neck,
            &decoder.out_specs,
            slots,
        );
        let heads = p / "heads";
        let det = cfg
            .heads
            .det
            .as_ref()
            .map(|c| CenterPointHead::new(&(&heads / "det"), c, &decoder_neck.out_spec, slots));
        let seg = cfg.heads.seg.as_ref().map(|c| {
            SegHead::new(
                &(&heads / "seg"),
                c,
                cfg.bev.grid(),
                &decoder_neck.out_spec,
                slots,
            )
        });
        Self {
            cfg: cfg.clone(),
            camera_channels: vtransform.out_spec.size(),
            lidar_channels: lidar_neck.out_spec.size(),
            backbone,
            neck,
            vtransform,
            encoder,
            lidar_backbone,
            lidar_neck,
            fuser,
            decoder,
            decoder_neck,
            det,
            seg,
            groups: Vec::new(),
        }
    }

    /// The fused BEV grid (detection head grid).
    pub fn bev_grid(&self) -> BevGrid {
        self.cfg.bev.grid()
    }

    /// The segmentation output grid, when the model has a segmentation head.
    pub fn seg_grid(&self) -> Option<BevGrid> {
        self.seg.as_ref().map(|s| s.grid())
    }

    /// Channels of the camera / LiDAR BEV features.
    pub fn bev_channels(&self) -> (i64, i64) {
        (self.camera_channels, self.lidar_channels)
    }

    /// The LSS view transform (its geometry cache, bins).
    pub fn vtransform(&self) -> &Lss {
        &self.vtransform
    }

    /// Image features at the view transform's stride: `[B*N, C, fh, fw]`.
    pub fn image_features(&self, batch: &Batch, train: bool) -> Tensor {
        let s = batch.images.size();
        let x = batch.images.view([s[0] * s[1], s[2], s[3], s[4]]);
        let stages = self.backbone.forward_t(&x, train);
        self.neck.forward_t(&stages, train)
    }

    /// Camera branch: images -> camera BEV `[B, C_cam, NX, NY]`. `use_lidar_hint`: feed the
    /// LiDAR depth hint to DepthLSS (ignored by plain LSS).
    pub fn camera_bev(&self, batch: &Batch, use_lidar_hint: bool, train: bool) -> Tensor {
        let f = self.image_features(batch, train);
        self.vtransform.forward_t(&f, batch, use_lidar_hint, train)
    }

    /// LiDAR branch: voxels -> LiDAR BEV `[B, C_lidar, NX, NY]`.
    pub fn lidar_bev(&self, batch: &Batch, train: bool) -> Tensor {
        let canvas = self
            .encoder
            .forward_t(&batch.voxels, batch.size as i64, train);
        let stages = self.lidar_backbone.forward_t(&canvas, train);
        let y = self.lidar_neck.forward_t(&stages, train);
        // Frames without points contribute nothing (the convs' biases included).
        y * batch
            .lidar_valid
            .view([batch.size as i64, 1, 1, 1])
            .to_kind(Kind::Float)
    }

    fn zeros_bev(&self, batch: &Batch, channels: i64) -> Tensor {
        let g = self.bev_grid();
        Tensor::zeros(
            [batch.size as i64, channels, g.nx() as i64, g.ny() as i64],
            (Kind::Float, batch.device),
        )
    }

    /// ConvFuser on the two BEV maps.
    pub fn fuse(&self, camera_bev: &Tensor, lidar_bev: &Tensor, train: bool) -> Tensor {
        self.fuser.forward_t(camera_bev, lidar_bev, train)
    }

    /// BEV decoder (SECOND + SECOND-FPN) on the fused map.
    pub fn decode_bev(&self, fused: &Tensor, train: bool) -> Tensor {
        let stages = self.decoder.forward_t(fused, train);
        self.decoder_neck.forward_t(&stages, train)
    }

    /// Task heads on the decoded BEV.
    pub fn heads(&self, bev: &Tensor, train: bool) -> (Option<DetOutput>, Option<Tensor>) {
        let det = self.det.as_ref().map(|h| h.forward_t(bev, train));
        let seg = self.seg.as_ref().map(|h| h.forward_t(bev, train));
        (det, seg)
    }

    /// The whole forward pass under a modality mask.
    pub fn forward(&self, batch: &Batch, mask: ModalityMask, train: bool) -> ModelOutput {
        let camera_bev = if mask.camera {
            self.camera_bev(batch, mask.lidar, train)
        } else {
            self.zeros_bev(batch, self.camera_channels)
        };
        let lidar_bev = if mask.lidar {
            self.lidar_bev(batch, train)
        } else {
            self.zeros_bev(batch, self.lidar_channels)
        };
        let fused = self.fuse(&camera_bev, &lidar_bev, train);
        let bev = self.decode_bev(&fused, train);
        let (det, seg) = self.heads(&bev, train);
        ModelOutput {
            mask,
            camera_bev,
            lidar_bev,
            fused,
            bev,
            det,
            seg,
        }
    }

    /// Task loss (weighted sum of heatmap focal, box L1 and segmentation terms). Fails when
    /// the batch has no targets.
    pub fn loss(&self, out: &ModelOutput, batch: &Batch) -> Result<(Tensor, LossBreakdown)> {
        let Some(t) = &batch.targets else {
            bail!("the batch has no training targets (frames without annotations)")
        };
        let mut total = Tensor::zeros([], (Kind::Float, batch.device));
        let mut br = LossBreakdown::default();
        if let (Some(d), Some(dt), Some(dc)) = (&out.det, &t.det, &self.cfg.heads.det) {
            let (hm, bbox) = centerpoint::losses(d, dt);
            let hm = hm * dc.heatmap_weight;
            let bbox = bbox * dc.bbox_weight;
            br.heatmap = f64::try_from(&hm.detach()).unwrap_or(f64::NAN);
            br.bbox = f64::try_from(&bbox.detach()).unwrap_or(f64::NAN);
            total = total + hm + bbox;
        }
        if let (Some(s), Some(st), Some(sv), Some(head)) =
            (&out.seg, &t.seg, &t.seg_valid, &self.seg)
        {
            let l =
                head.loss(s, st, sv) * self.cfg.heads.seg.as_ref().map(|c| c.weight).unwrap_or(1.0);
            br.seg = f64::try_from(&l.detach()).unwrap_or(f64::NAN);
            total = total + l;
        }
        br.total = br.heatmap + br.bbox + br.seg;
        Ok((total, br))
    }

    /// Detections per frame in the model's LiDAR frame (sorted by score). Empty when the
    /// model has no detection head.
    pub fn decode(&self, out: &ModelOutput) -> Vec<Vec<Box3D>> {
        match (&out.det, &self.cfg.heads.det) {
            (Some(d), Some(c)) => centerpoint::decode(d, c, &self.bev_grid()),
            _ => vec![Vec::new(); out.bev.size()[0] as usize],
        }
    }

    /// Segmentation probabilities `[B, 6, SX, SY]` (sigmoid of the logits).
    pub fn seg_probs(&self, out: &ModelOutput) -> Option<Tensor> {
        out.seg
            .as_ref()
            .map(|s| s.detach().to_kind(Kind::Float).sigmoid())
    }

    /// Every width slot and the tensor slices coupled to it (see [`crate::model::channels`]).
    pub fn channel_groups(&self) -> Vec<ChannelGroup> {
        self.groups.clone()
    }

    /// The layout of the camera and LiDAR BEV channels as the fuser consumes them.
    pub fn bev_specs(&self) -> (ChannelSpec, ChannelSpec) {
        (
            self.vtransform.out_spec.clone(),
            self.lidar_neck.out_spec.clone(),
        )
    }
}

/// Variables of `vs` (trainable and buffers) in one group, by name.
pub fn group_variables(vs: &nn::VarStore, group: Group) -> BTreeMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .filter(|(n, _)| Group::of_param(n) == group)
        .collect()
}

/// Trainable parameters by name (sorted), optionally restricted to one group.
pub fn trainable_parameters(vs: &nn::VarStore, group: Option<Group>) -> BTreeMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .filter(|(n, _)| group.is_none_or(|g| Group::of_param(n) == g))
        .collect()
}
