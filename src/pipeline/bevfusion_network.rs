//! [`BevFusionNetwork`]: the BEVFusion-style model ([`crate::model::BevFusion`]) as the
//! pipeline's [`Network`], run stage by stage so that each stage is timed: batch building
//! (voxelisation, image resize and normalisation: `voxelize`), camera branch, LiDAR branch,
//! fuser + BEV decoder (`fuse`), task heads, box decoding (`postprocess`). The composition is
//! exactly [`crate::model::BevFusion::forward`]'s: a masked branch contributes zeros.
//!
//! On CUDA each stage ends with a device synchronisation so its time is real; FP16 runs the
//! forward under autocast (weights stay float32).

use super::network::{Network, NetworkInfo, NetworkOutput};
use super::output::StageTimings;
use crate::data::Frame;
use crate::model::batch::{Batch, BatchOptions, BatchWorkspace, TargetMode};
use crate::model::bevfusion::ModelOutput;
use crate::model::load::LoadedModel;
use crate::model::ModalityMask;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub struct BevFusionNetwork {
    loaded: LoadedModel,
    device: Device,
    fp16: bool,
    name: String,
    /// Host buffers of batch building, reused frame after frame.
    workspace: BatchWorkspace,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl BevFusionNetwork {
    /// Load a dense, masked or structured-pruned checkpoint.
    pub fn load(path: &Path, device: Device, fp16: bool) -> Result<Self> {
        let loaded = LoadedModel::from_checkpoint(path, device)?;
        Ok(Self::new(loaded, device, fp16 && device != Device::Cpu))
    }

    /// Wrap an already loaded model.
    pub fn new(loaded: LoadedModel, device: Device, fp16: bool) -> Self {
        let kind = loaded.metadata.get("kind").cloned().unwrap_or_else(|| "dense".into());
        let mut name = format!("{} ({kind}", loaded.cfg.name);
        if !loaded.masks.is_empty() {
            let (mut zeros, mut total) = (0i64, 0i64);
            for m in loaded.masks.values() {
                total += m.numel() as i64;
                zeros += m.numel() as i64 - m.count_nonzero(None::<i64>).int64_value(&[]);
            }
            name += &format!(", {:.1}% of masked parameters pruned", 100.0 * zeros as f64 / total.max(1) as f64);
        }
        let params: i64 = loaded.vs.variables().values().map(|t| t.numel() as i64).sum();
        name += &format!(", {:.2} M parameters)", params as f64 / 1e6);
        Self { loaded, device, fp16, name, workspace: BatchWorkspace::default() }
    }

    fn sync(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    pub fn model(&self) -> &LoadedModel {
        &self.loaded
    }
}

impl Network for BevFusionNetwork {
    fn info(&self) -> NetworkInfo {
        let mut device = crate::device::describe(self.device);
        if self.fp16 {
            device += " fp16";
        }
        NetworkInfo {
            name: self.name.clone(),
            device,
            // LSS shares its weights across cameras: any rig size works.
            num_cameras: None,
            seg_grid: self.loaded.model.seg_grid(),
            max_points: None,
            input_size: Some((
                self.loaded.cfg.camera.image_size[1] as u32,
                self.loaded.cfg.camera.image_size[0] as u32,
            )),
        }
    }

    fn infer(&mut self, frame: &Frame, mask: ModalityMask, t: &mut StageTimings) -> Result<NetworkOutput> {
        let _guard = tch::no_grad_guard();
        let model = &self.loaded.model;
        let cfg = &self.loaded.cfg;
        let t0 = Instant::now();
        let opts = BatchOptions { targets: TargetMode::Never, flips: None };
        let batch = Batch::from_frames_in(std::slice::from_ref(frame), cfg, self.device, &opts, &mut self.workspace)
            .context("building the model input")?;
        self.sync();
        t.voxelize += ms(t0);

        let (cam_ch, lidar_ch) = model.bev_channels();
        let g = model.bev_grid();
        let zeros = |c: i64| Tensor::zeros([1, c, g.nx() as i64, g.ny() as i64], (Kind::Float, self.device));
        let out = tch::autocast(self.fp16, || {
            let t1 = Instant::now();
            let camera_bev = if mask.camera { model.camera_bev(&batch, mask.lidar, false) } else { zeros(cam_ch) };
            self.sync();
            t.camera += ms(t1);
            let t2 = Instant::now();
            let lidar_bev = if mask.lidar { model.lidar_bev(&batch, false) } else { zeros(lidar_ch) };
            self.sync();
            t.lidar += ms(t2);
            let t3 = Instant::now();
            let fused = model.fuse(&camera_bev, &lidar_bev, false);
            let bev = model.decode_bev(&fused, false);
            self.sync();
            t.fuse += ms(t3);
            let t4 = Instant::now();
            let (det, seg) = model.heads(&bev, false);
            self.sync();
            t.heads += ms(t4);
            ModelOutput { mask, camera_bev, lidar_bev, fused, bev, det, seg }
        });
        let t5 = Instant::now();
        let boxes = model.decode(&out).into_iter().next().unwrap_or_default();
        let seg_probs = match model.seg_probs(&out) {
            Some(p) => {
                Some(Vec::<f32>::try_from(p.to_device(Device::Cpu).reshape([-1])).context("segmentation to CPU")?)
            }
            None => None,
        };
        t.postprocess += ms(t5);
        Ok(NetworkOutput { boxes, seg_probs })
    }
}
