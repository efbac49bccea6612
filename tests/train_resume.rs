//! Training: a killed-and-resumed run ends with the same weights as an uninterrupted one;
//! masks keep pruned weights at exactly zero; the loss goes down; outputs are written.

mod model_support;

use altermoma::model::load::LoadedModel;
use altermoma::model::ModalityMask;
use altermoma::train::{train, TrainOptions};
use model_support::VecDataset;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

fn opts(dir: &std::path::Path, steps: usize) -> TrainOptions {
    let cfg = model_support::tiny();
    let mut o = TrainOptions::new(&cfg.train, ModalityMask::FUSION, dir);
    o.recipe.steps = steps;
    o.recipe.batch_size = 2;
    o.recipe.warmup_steps = 2;
    o.recipe.checkpoint_every = 2;
    o.recipe.log_every = 1;
    o.seed = 7;
    o
}

fn fresh(seed: i64) -> LoadedModel {
    tch::manual_seed(seed);
    LoadedModel::new(&model_support::tiny(), Device::Cpu).unwrap()
}

#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_one() {
    let data = VecDataset(model_support::frames(11, 6));
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // torch's seed is process-global and tests run in parallel: copy the initial weights
    let mut ma = fresh(1);
    let mut mb = fresh(1);
    mb.vs.copy(&ma.vs).unwrap();
    let sa = train(&mut ma, &data, None, &opts(a.path(), 5), None).unwrap();
    assert_eq!(sa.steps_done, 5);
    assert!(!sa.stopped_early);

    let mut ob = opts(b.path(), 5);
    ob.stop_after = Some(3);
    let sb = train(&mut mb, &data, None, &ob, None).unwrap();
    assert!(sb.stopped_early && sb.steps_done == 3);
    assert!(
        !sb.model_path.exists(),
        "no final model before the run is done"
    );
    drop(mb);
    // a new process: different initial weights, everything comes from the saved state
    let mut mc = fresh(99);
    let mut oc = opts(b.path(), 5);
    oc.resume = true;
    let sc = train(&mut mc, &data, None, &oc, None).unwrap();
    assert_eq!(sc.steps_done, 5);
    assert_eq!(sc.history.len(), 5);
    for (ra, rc) in sa.history.iter().zip(&sc.history) {
        assert_eq!(ra.step, rc.step);
        assert!(
            (ra.loss - rc.loss).abs() <= 1e-6 * ra.loss.abs().max(1.0),
            "{ra:?} vs {rc:?}"
        );
    }
    let la = LoadedModel::from_checkpoint(&sa.model_path, Device::Cpu).unwrap();
    let lc = LoadedModel::from_checkpoint(&sc.model_path, Device::Cpu).unwrap();
    let (va, vc) = (la.vs.variables(), lc.vs.variables());
    assert_eq!(va.len(), vc.len());
    let mut max_diff = 0f64;
    for (k, t) in &va {
        let d = f64::try_from((t - &vc[k]).abs().max()).unwrap();
        max_diff = max_diff.max(d);
    }
    assert!(max_diff <= 1e-6, "max weight difference {max_diff}");
    // outputs
    assert!(a.path().join("metrics.csv").exists() && a.path().join("loss.png").exists());
    let csv = std::fs::read_to_string(a.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    // a resume with other options is refused
    let mut od = opts(b.path(), 9);
    od.resume = true;
    let e = train(&mut fresh(1), &data, None, &od, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("other options"), "{e}");
}

#[test]
fn masks_stay_zero_and_loss_goes_down() {
    let data = VecDataset(model_support::frames(12, 2));
    let dir = tempfile::tempdir().unwrap();
    let mut m = fresh(2);
    tch::manual_seed(5);
    let mut masks = BTreeMap::new();
    for (name, t) in m.vs.variables() {
        if name.ends_with("conv.weight") && t.size().len() == 4 {
            masks.insert(
                name,
                Tensor::rand(t.size(), (Kind::Float, Device::Cpu))
                    .gt(0.5)
                    .to_kind(Kind::Float),
            );
        }
    }
    let mut o = opts(dir.path(), 24);
    o.recipe.flip = false;
    o.recipe.lr = 0.003;
    o.recipe.log_every = 4;
    o.recipe.checkpoint_every = 100;
    let s = train(&mut m, &data, Some(&data), &o, Some(&masks)).unwrap();
    let first = s.history.first().unwrap().loss;
    let last = s.history.last().unwrap().loss;
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    assert!(s.final_val.is_some());
    let vars = m.vs.variables();
    for (name, mk) in &masks {
        let leaked = f64::try_from((&vars[name] * (-mk + 1.0)).abs().sum(Kind::Float)).unwrap();
        assert_eq!(leaked, 0.0, "{name}: pruned weights moved");
        let kept = f64::try_from((&vars[name] * mk).abs().sum(Kind::Float)).unwrap();
        assert!(kept > 0.0);
    }
    let back = LoadedModel::from_checkpoint(&s.model_path, Device::Cpu).unwrap();
    assert_eq!(back.metadata["kind"], "masked");
    assert_eq!(back.masks.len(), masks.len());
    assert!(back.metadata["train_meta"].contains("\"modality\":\"fusion\""));
}
