//! The pruning harness on the real BEVFusion-style model (tiny config, hand-made frames):
//! every method prunes to the exact sparsity with the mask on theta_init, the model's own
//! trainer keeps pruned weights at exactly zero, SynFlow is data-free on the real model, and
//! structured AlterMOMA writes a physically smaller checkpoint that loads without a mask.

mod model_support;

use altermoma::model::load::LoadedModel;
use altermoma::model::ModalityMask;
use altermoma::pruning::bevfusion::{
    frame_batches, save_masked, save_structured, PrunableBevFusion,
};
use altermoma::pruning::finetune::finetune;
use altermoma::pruning::harness::{prune, Granularity, Method, PruneConfig};
use altermoma::pruning::model_api::{
    named_vars, FitConfig, PrunableModel, PrunableScope, Snapshot,
};
use altermoma::pruning::MaskSet;
use model_support::{frames, tiny, VecDataset};
use tch::Device;

fn fresh(seed: i64) -> LoadedModel {
    tch::manual_seed(seed);
    LoadedModel::new(&tiny(), Device::Cpu).unwrap()
}

fn cheap(method: Method, sparsity: f64) -> PruneConfig {
    let mut c = PruneConfig {
        method,
        sparsity,
        ..Default::default()
    };
    c.altermoma.reactivation.steps = 2;
    c.synflow.iterations = 3;
    c.prospr.inner_steps = 1;
    c.prospr.inner_lr = 1e-3;
    c.imp.rounds = 2;
    c.imp.retrain.steps = 2;
    c
}

#[test]
fn every_method_prunes_bevfusion_to_the_exact_sparsity_on_theta_init() {
    tch::set_num_threads(1);
    let data = VecDataset(frames(1, 4));
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny();
    for method in [
        Method::Altermoma,
        Method::Snip,
        Method::Synflow,
        Method::Prospr,
        Method::Imp,
        Method::Random,
    ] {
        let mut pm = PrunableBevFusion::new(fresh(3), &data, dir.path().join(method.name()));
        let init = Snapshot::take(pm.var_store());
        let mut src = frame_batches(&data, &cfg, 1, 0, Device::Cpu);
        let out = prune(&mut pm, &mut src, &cheap(method, 0.85)).unwrap();
        let masks = out.masks.unwrap();
        let n = masks.overall();
        assert_eq!(
            n.pruned,
            (0.85 * n.numel as f64).round() as i64,
            "{method:?}"
        );
        // Only conv/linear weights are masked; every prunable weight has a mask.
        assert_eq!(
            masks.len(),
            pm.prunable_params(PrunableScope::Weights).len()
        );
        let vars = named_vars(pm.var_store());
        for (k, v) in vars.iter() {
            let want = match masks.get(k) {
                Some(mk) => init.get(k).unwrap() * mk,
                None => init.get(k).unwrap().shallow_clone(),
            };
            assert!(v.equal(&want), "{method:?}: {k} is not theta_init * mask");
        }
        // One global threshold: the groups end up with different sparsities.
        let g = masks.per_group();
        assert_eq!(g.len(), 3, "{method:?}");
    }
}

#[test]
fn masks_survive_finetuning_with_the_real_trainer_and_checkpoints() {
    tch::set_num_threads(1);
    let data = VecDataset(frames(2, 4));
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny();
    let mut pm = PrunableBevFusion::new(fresh(5), &data, dir.path().join("work"));
    let mut src = frame_batches(&data, &cfg, 1, 0, Device::Cpu);
    let masks = prune(&mut pm, &mut src, &cheap(Method::Snip, 0.9))
        .unwrap()
        .masks
        .unwrap();
    let fit = FitConfig {
        steps: 6,
        lr: 5e-3,
        weight_decay: 0.5,
        warmup_steps: 0,
        clip_grad_norm: 10.0,
        seed: 1,
    };
    let before = Snapshot::take(pm.var_store());
    finetune(&mut pm, &fit, &masks).unwrap();
    assert_eq!(masks.violations(pm.var_store()), 0);
    let moved = named_vars(pm.var_store())
        .iter()
        .any(|(k, v)| masks.get(k).is_some() && !v.equal(before.get(k).unwrap()));
    assert!(moved, "fine-tuning must change the kept weights");

    let path = dir.path().join("pruned.safetensors");
    save_masked(&pm.m, &masks, &path, &Default::default()).unwrap();
    let back = LoadedModel::from_checkpoint(&path, Device::Cpu).unwrap();
    assert_eq!(back.metadata["kind"], "masked");
    let back_masks = MaskSet::from_map(&back.masks);
    assert_eq!(back_masks.overall(), masks.overall());
    assert_eq!(back_masks.violations(&back.vs), 0);
}

#[test]
fn structured_altermoma_writes_a_smaller_model_that_loads_without_masks() {
    tch::set_num_threads(1);
    let data = VecDataset(frames(3, 3));
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny();
    let mut pm = PrunableBevFusion::new(fresh(7), &data, dir.path().join("work"));
    let dense_gflops = pm.gflops();
    let mut c = cheap(Method::Altermoma, 0.5);
    c.granularity = Granularity::Channel;
    let mut src = frame_batches(&data, &cfg, 1, 0, Device::Cpu);
    let out = prune(&mut pm, &mut src, &c).unwrap();
    let sel = out.selection.unwrap();
    let path = dir.path().join("small.safetensors");
    let new_cfg = save_structured(
        &cfg,
        &out.shrunk.unwrap(),
        &sel.widths,
        &path,
        &Default::default(),
    )
    .unwrap();
    assert!(!new_cfg.widths.is_empty());
    let small = LoadedModel::from_checkpoint(&path, Device::Cpu).unwrap();
    assert!(small.masks.is_empty());
    assert_eq!(small.metadata["kind"], "structured");
    let small_pm = PrunableBevFusion::new(small, &data, dir.path().join("w2"));
    let g = small_pm.gflops();
    assert!(g < 0.7 * dense_gflops, "GFLOPs {g} vs dense {dense_gflops}");
    let b = frame_batches(&data, &cfg, 2, 1, Device::Cpu)().unwrap();
    let l = small_pm
        .loss(&b, ModalityMask::FUSION)
        .unwrap()
        .double_value(&[]);
    assert!(l.is_finite());
}
