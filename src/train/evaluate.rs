//! Running a model over a dataset: per-frame detections (LiDAR frame) and BEV segmentation
//! probabilities, and the mean validation loss.

use crate::data::{Dataset, Frame};
use crate::geometry::Box3D;
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::bevfusion::{BevFusion, LossBreakdown};
use crate::model::ModalityMask;
use anyhow::Result;
use tch::{Device, Tensor};

/// One frame's predictions.
#[derive(Debug)]
pub struct FramePrediction {
    /// Dataset index.
    pub index: usize,
    pub token: String,
    /// Detections in the frame's LiDAR frame, sorted by score.
    pub boxes: Vec<Box3D>,
    /// Map probabilities `[6, SX, SY]` on the segmentation grid (CPU), if the model has a
    /// segmentation head.
    pub seg: Option<Tensor>,
}

/// Run the model (eval mode, no gradients) over `indices` of `data` in batches of
/// `batch_size`, calling `sink` with each frame and its predictions in order.
pub fn predict_each(
    model: &BevFusion,
    data: &dyn Dataset,
    indices: &[usize],
    mask: ModalityMask,
    batch_size: usize,
    device: Device,
    mut sink: impl FnMut(&Frame, FramePrediction) -> Result<()>,
) -> Result<()> {
    let opts = BatchOptions {
        targets: TargetMode::Never,
        flips: None,
    };
    for chunk in indices.chunks(batch_size.max(1)) {
        let frames: Vec<Frame> = chunk.iter().map(|&i| data.get(i)).collect::<Result<_>>()?;
        let batch = Batch::from_frames_with(&frames, &model.cfg, device, &opts)?;
        let (boxes, seg) = tch::no_grad(|| {
            let out = model.forward(&batch, mask, false);
            (
                model.decode(&out),
                model.seg_probs(&out).map(|p| p.to_device(Device::Cpu)),
            )
        });
        for (k, (f, b)) in frames.iter().zip(boxes).enumerate() {
            let pred = FramePrediction {
                index: chunk[k],
                token: f.token.clone(),
                boxes: b,
                seg: seg.as_ref().map(|s| s.get(k as i64)),
            };
            sink(f, pred)?;
        }
    }
    Ok(())
}

/// Predictions for every frame of `data`.
pub fn predict(
    model: &BevFusion,
    data: &dyn Dataset,
    mask: ModalityMask,
    batch_size: usize,
    device: Device,
) -> Result<Vec<FramePrediction>> {
    let mut out = Vec::with_capacity(data.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    predict_each(model, data, &idx, mask, batch_size, device, |_, p| {
        out.push(p);
        Ok(())
    })?;
    Ok(out)
}

/// Mean task loss (eval mode, no gradients) over `indices` of `data`.
pub fn validation_loss(
    model: &BevFusion,
    data: &dyn Dataset,
    indices: &[usize],
    mask: ModalityMask,
    batch_size: usize,
    device: Device,
) -> Result<LossBreakdown> {
    let opts = BatchOptions {
        targets: TargetMode::Always,
        flips: None,
    };
    let mut acc = LossBreakdown::default();
    let mut n = 0.0;
    for chunk in indices.chunks(batch_size.max(1)) {
        let frames: Vec<Frame> = chunk.iter().map(|&i| data.get(i)).collect::<Result<_>>()?;
        let batch = Batch::from_frames_with(&frames, &model.cfg, device, &opts)?;
        let (_, br) = tch::no_grad(|| model.loss(&model.forward(&batch, mask, false), &batch))?;
        let w = chunk.len() as f64;
        acc.total += br.total * w;
        acc.heatmap += br.heatmap * w;
        acc.bbox += br.bbox * w;
        acc.seg += br.seg * w;
        n += w;
    }
    if n > 0.0 {
        acc.total /= n;
        acc.heatmap /= n;
        acc.bbox /= n;
        acc.seg /= n;
    }
    Ok(acc)
}
