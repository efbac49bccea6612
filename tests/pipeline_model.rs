//! The per-frame pipeline with the real model (tiny config, random weights): its staged run is
//! exactly the model's forward pass, the same bytes give the same detections, and dense,
//! masked and structured checkpoints load.

use altermoma::model::batch::Batch;
use altermoma::model::load::LoadedModel;
use altermoma::model::{ModalityMask, ModelConfig};
use altermoma::pipeline::loader::load_pipeline;
use altermoma::pipeline::synthetic_input::{ring_rig, synthetic_input, SyntheticSpec};
use altermoma::pipeline::{FrameInput, PipelineOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Device;

fn tiny() -> ModelConfig {
    ModelConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/model/tiny.yaml")).unwrap()
}

fn save(dir: &Path, name: &str, m: &LoadedModel) -> PathBuf {
    let p = dir.join(name);
    m.save(&p, &BTreeMap::new()).unwrap();
    p
}

fn input(cfg: &ModelConfig, k: u64) -> FrameInput {
    let names: Vec<String> = (0..cfg.camera.default_rig.num_cameras).map(|i| format!("CAM_{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let [h, w] = cfg.camera.image_size;
    let spec = SyntheticSpec { image_width: w as u32, image_height: h as u32, ..Default::default() };
    synthetic_input(&spec, &ring_rig(&refs), k, 1_700_000_000_000_000_000 + k as i64, "lidar_top")
}

fn all() -> PipelineOptions {
    PipelineOptions { score_threshold: 0.0, max_detections: 100_000, warmup_frames: 1, ..Default::default() }
}

#[test]
fn staged_pipeline_is_exactly_the_model_forward_in_every_mode() {
    let cfg = tiny();
    tch::manual_seed(11);
    let dir = tempfile::tempdir().unwrap();
    let ck = save(dir.path(), "dense.safetensors", &LoadedModel::new(&cfg, Device::Cpu).unwrap());
    let mut pipe = load_pipeline(&ck, "cpu", false, 0, all()).unwrap();
    let reference = LoadedModel::from_checkpoint(&ck, Device::Cpu).unwrap();
    let full = input(&cfg, 1);
    for mask in [ModalityMask::FUSION, ModalityMask::LIDAR_ONLY, ModalityMask::CAMERA_ONLY] {
        let mut x = full.clone();
        if !mask.lidar {
            x.points = None;
        }
        if !mask.camera {
            x.cameras.iter_mut().for_each(|c| *c = None);
        }
        let out = pipe.run(&x).unwrap();
        assert_eq!(out.mode, mask);
        let _g = tch::no_grad_guard();
        let calibs: Vec<_> = full.cameras.iter().map(|c| c.as_ref().unwrap().calib.clone()).collect();
        let batch = Batch::from_frames(&[x.to_frame(&calibs)], &cfg, Device::Cpu).unwrap();
        let fwd = reference.model.forward(&batch, mask, false);
        let mut want = reference.model.decode(&fwd).remove(0);
        want.sort_by(|a, b| b.score.total_cmp(&a.score));
        assert!(!want.is_empty(), "random weights still give detections at score 0");
        assert_eq!(out.detections, want, "{}", mask.name());
        let probs = Vec::<f32>::try_from(reference.model.seg_probs(&fwd).unwrap().reshape([-1])).unwrap();
        assert_eq!(out.segmentation.as_ref().unwrap().probs, probs, "{}", mask.name());
        let t = out.timings;
        assert!(t.voxelize > 0.0 && t.fuse > 0.0 && t.heads > 0.0 && t.postprocess > 0.0, "{t:?}");
    }
}

#[test]
fn same_bytes_give_the_same_detections_and_checkpoint_kinds_load() {
    let cfg = tiny();
    tch::manual_seed(5);
    let dir = tempfile::tempdir().unwrap();
    let dense = LoadedModel::new(&cfg, Device::Cpu).unwrap();
    let ck = save(dir.path(), "dense.safetensors", &dense);
    let x = input(&cfg, 2);
    let opts = PipelineOptions { score_threshold: 0.1, max_detections: 50, warmup_frames: 1, ..Default::default() };
    let mut a = load_pipeline(&ck, "cpu", false, 0, opts.clone()).unwrap();
    let mut b = load_pipeline(&ck, "auto", false, 0, opts.clone()).unwrap();
    let calibs: Vec<_> = x.cameras.iter().map(|c| c.as_ref().map(|c| c.calib.clone())).collect();
    b.warm_up(&x.camera_names, &calibs).unwrap();
    let (oa, ob) = (a.run(&x).unwrap(), b.run(&x).unwrap());
    assert_eq!(oa.detections, ob.detections);
    assert!(oa.detections.len() <= 50 && oa.detections.iter().all(|d| d.score >= 0.1));
    assert_eq!(oa.segmentation.unwrap().probs, ob.segmentation.unwrap().probs);
    assert!(a.info().name.contains("tiny (dense"), "{}", a.info().name);

    // masked: half of one weight pruned
    let mut masked = LoadedModel::from_checkpoint(&ck, Device::Cpu).unwrap();
    let (name, var) = masked.vs.variables().into_iter().find(|(n, t)| n.ends_with("weight") && t.dim() == 4).unwrap();
    let mask = tch::Tensor::rand_like(&var).gt(0.5).to_kind(tch::Kind::Float);
    tch::no_grad(|| {
        let _ = var.shallow_clone().g_mul_(&mask);
    });
    masked.masks.insert(name, mask);
    let mk = save(dir.path(), "masked.safetensors", &masked);
    let mut p = load_pipeline(&mk, "cpu", false, 0, opts.clone()).unwrap();
    assert!(p.info().name.contains("masked") && p.info().name.contains("pruned"), "{}", p.info().name);
    p.run(&x).unwrap();

    // structured: a physically narrower model
    let mut narrow = cfg.clone();
    let (slot, w) = cfg.width_slots().into_iter().find(|(_, w)| *w >= 16).unwrap();
    narrow.widths.insert(slot, w / 2);
    let st = save(dir.path(), "structured.safetensors", &LoadedModel::new(&narrow, Device::Cpu).unwrap());
    let mut p = load_pipeline(&st, "cpu", false, 0, opts.clone()).unwrap();
    assert!(p.info().name.contains("structured"), "{}", p.info().name);
    p.run(&x).unwrap();

    // a file that is not a checkpoint is a clear error
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let e = load_pipeline(&bad, "cpu", false, 0, opts).err().unwrap();
    assert!(format!("{e:#}").contains("bad.safetensors"), "{e:#}");
}
