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

/// Detection and segmentation quality of a model on a dataset (nuScenes definitions, see
/// [`crate::metrics`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvalReport {
    pub modality: String,
    pub frames: usize,
    pub map: f64,
    pub nds: f64,
    /// Per class: AP averaged over the distance thresholds.
    pub class_ap: Vec<(String, f64)>,
    /// mATE, mASE, mAOE, mAVE, mAAE.
    pub tp_errors: [f64; 5],
    /// BEV map mIoU (max over thresholds per class, mean over classes), when frames have maps.
    pub miou: Option<f64>,
    pub class_iou: Vec<(String, f64)>,
}

/// Evaluate `model` on frames `indices` of `data` under `mask`.
pub fn evaluate(
    model: &BevFusion,
    data: &dyn Dataset,
    indices: &[usize],
    mask: ModalityMask,
    batch_size: usize,
    device: Device,
) -> Result<EvalReport> {
    use crate::metrics::{
        evaluate_detections, BevMiou, DetectionConfig, DetectionResults, GroundTruthBuilder, ResultsMeta,
        SampleResults,
    };
    let mut gt = GroundTruthBuilder::new();
    let meta = ResultsMeta { use_camera: mask.camera, use_lidar: mask.lidar, ..Default::default() };
    let mut preds = DetectionResults::new(meta);
    let mut miou = BevMiou::map_classes();
    let mut with_map = 0;
    predict_each(model, data, indices, mask, batch_size, device, |frame, p| {
        gt.add_frame(frame)?;
        preds.samples.push(SampleResults::from_frame(frame, &p.boxes, 500));
        if let (Some(probs), Some(truth)) = (&p.seg, crate::model::batch::seg_ground_truth(frame, &model.cfg)) {
            let pv = Vec::<f32>::try_from(probs.contiguous().view([-1]))?;
            miou.update(&pv, &truth)?;
            with_map += 1;
        }
        Ok(())
    })?;
    let gt = gt.finish();
    let m = evaluate_detections(&gt, &preds, &DetectionConfig::default())?;
    let names = m.class_names();
    let class_ap = names.iter().map(|n| n.to_string()).zip(m.mean_dist_aps()).collect();
    let (miou_v, class_iou) = if with_map > 0 {
        let r = miou.finish();
        (Some(r.miou), r.class_names.iter().cloned().zip(r.iou_max.iter().copied()).collect())
    } else {
        (None, vec![])
    };
    Ok(EvalReport {
        modality: mask.name().to_string(),
        frames: indices.len(),
        map: m.mean_ap(),
        nds: m.nd_score(),
        class_ap,
        tp_errors: m.tp_errors(),
        miou: miou_v,
        class_iou,
    })
}
