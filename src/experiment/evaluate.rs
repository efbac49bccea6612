//! Held-out evaluation of a model: nuScenes detection metrics (mAP, NDS) and BEV map mIoU on
//! every frame of a dataset, through the shared metrics library ([`FrameEvaluator`]). The
//! segmentation ground truth is the frame's map rasterised onto the model's segmentation grid
//! exactly as for training targets.

use crate::data::{Dataset, Frame};
use crate::metrics::{DetectionConfig, FrameEvaluator};
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::load::LoadedModel;
use crate::model::ModalityMask;
use anyhow::Result;

use super::results::Accuracy;

/// mAP, NDS and mIoU of `m` under `mask` on every frame of `data`.
pub fn evaluate(
    m: &LoadedModel,
    data: &dyn Dataset,
    mask: ModalityMask,
    batch_size: usize,
) -> Result<Accuracy> {
    let mut ev = FrameEvaluator::new(DetectionConfig::default());
    let opts = BatchOptions {
        targets: TargetMode::Always,
        flips: None,
    };
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut with_seg = 0;
    for chunk in idx.chunks(batch_size.max(1)) {
        let frames: Vec<Frame> = chunk.iter().map(|&i| data.get(i)).collect::<Result<_>>()?;
        let batch = Batch::from_frames_with(&frames, &m.cfg, m.vs.device(), &opts)?;
        let (boxes, probs) = tch::no_grad(|| {
            let out = m.model.forward(&batch, mask, false);
            (m.model.decode(&out), m.model.seg_probs(&out))
        });
        for (k, (f, b)) in frames.iter().zip(&boxes).enumerate() {
            ev.add_detections(f, b)?;
            let t = batch.targets.as_ref();
            if let (Some(p), Some(gt), Some(valid)) = (
                &probs,
                t.and_then(|t| t.seg.as_ref()),
                t.and_then(|t| t.seg_valid.as_ref()),
            ) {
                if valid.double_value(&[k as i64]) > 0.0 {
                    ev.add_segmentation(&p.get(k as i64), &gt.get(k as i64))?;
                    with_seg += 1;
                }
            }
        }
    }
    let out = ev.finish()?;
    let miou = if with_seg > 0 {
        out.segmentation.map(|s| s.miou).unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    Ok(Accuracy {
        map: out.detection.mean_ap(),
        nds: out.detection.nd_score(),
        miou,
    })
}
