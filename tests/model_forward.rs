//! The model's forward API: shapes, losses, gradients per parameter group, modality
//! masking, data-free batches, FLOPs, width slots.

mod model_support;

use altermoma::model::batch::Batch;
use altermoma::model::bevfusion::trainable_parameters;
use altermoma::model::load::LoadedModel;
use altermoma::model::{flops, BevFusion, Group, ModalityMask};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn forward_loss_and_gradients_reach_every_group() {
    tch::manual_seed(0);
    let cfg = model_support::tiny();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = BevFusion::new(&vs.root(), &cfg).unwrap();
    let frames = model_support::frames(1, 2);
    let batch = Batch::from_frames(&frames, &cfg, Device::Cpu).unwrap();
    assert_eq!(batch.images.size(), vec![2, 3, 3, 96, 176]);
    let out = model.forward(&batch, ModalityMask::FUSION, true);
    let g = cfg.bev.grid();
    let (cc, lc) = model.bev_channels();
    assert_eq!(
        out.camera_bev.size(),
        vec![2, cc, g.nx() as i64, g.ny() as i64]
    );
    assert_eq!(
        out.lidar_bev.size(),
        vec![2, lc, g.nx() as i64, g.ny() as i64]
    );
    assert_eq!(
        out.det.as_ref().unwrap().heatmap.size(),
        vec![2, 10, 64, 64]
    );
    assert_eq!(out.seg.as_ref().unwrap().size(), vec![2, 6, 64, 64]);
    // both branches really produce something
    assert!(f64::try_from(out.camera_bev.abs().sum(Kind::Float)).unwrap() > 0.0);
    assert!(f64::try_from(out.lidar_bev.abs().sum(Kind::Float)).unwrap() > 0.0);
    let (loss, br) = model.loss(&out, &batch).unwrap();
    assert!(br.heatmap > 0.0 && br.bbox > 0.0 && br.seg > 0.0, "{br:?}");
    assert!((f64::try_from(&loss).unwrap() - br.total).abs() < 1e-3 * br.total);
    loss.backward();
    let params = trainable_parameters(&vs, None);
    let mut per_group = std::collections::BTreeMap::new();
    for (name, p) in &params {
        let gr = p.grad();
        assert!(gr.defined(), "no gradient for {name}");
        let s = f64::try_from(gr.abs().sum(Kind::Float)).unwrap();
        assert!(s > 0.0, "zero gradient for {name}");
        *per_group.entry(Group::of_param(name)).or_insert(0usize) += 1;
    }
    for g in Group::ALL {
        assert!(
            per_group.get(&g).copied().unwrap_or(0) > 0,
            "group {g:?} has no parameters"
        );
    }
    // every variable belongs to a known part
    for name in vs.variables().keys() {
        let first = name.split('.').next().unwrap();
        assert!(
            ["camera", "lidar", "fuser", "decoder", "heads"].contains(&first),
            "{name}"
        );
    }
}

#[test]
fn masking_a_branch_zeroes_its_bev_features_exactly() {
    tch::manual_seed(1);
    let cfg = model_support::tiny();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = BevFusion::new(&vs.root(), &cfg).unwrap();
    let frames = model_support::frames(2, 2);
    let batch = Batch::from_frames(&frames, &cfg, Device::Cpu).unwrap();

    let cam_only = model.forward(&batch, ModalityMask::CAMERA_ONLY, true);
    assert_eq!(
        f64::try_from(cam_only.lidar_bev.abs().sum(Kind::Float)).unwrap(),
        0.0
    );
    assert!(f64::try_from(cam_only.camera_bev.abs().sum(Kind::Float)).unwrap() > 0.0);
    let (loss, _) = model.loss(&cam_only, &batch).unwrap();
    loss.backward();
    for (name, p) in trainable_parameters(&vs, Some(Group::Lidar)) {
        let g = p.grad();
        assert!(
            !g.defined() || f64::try_from(g.abs().sum(Kind::Float)).unwrap() == 0.0,
            "{name} got gradient"
        );
    }
    for (_, p) in trainable_parameters(&vs, None) {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let lidar_only = model.forward(&batch, ModalityMask::LIDAR_ONLY, false);
    assert_eq!(
        f64::try_from(lidar_only.camera_bev.abs().sum(Kind::Float)).unwrap(),
        0.0
    );
    assert!(f64::try_from(lidar_only.lidar_bev.abs().sum(Kind::Float)).unwrap() > 0.0);

    // sensor drop-out inside a frame: no images / no points -> that branch is zero there
    let mut f = model_support::frames(3, 2);
    for c in &mut f[0].cameras {
        c.image = None;
    }
    f[1].points = None;
    let b2 = Batch::from_frames(&f, &cfg, Device::Cpu).unwrap();
    let out = tch::no_grad(|| model.forward(&b2, ModalityMask::FUSION, false));
    assert_eq!(
        f64::try_from(out.camera_bev.get(0).abs().sum(Kind::Float)).unwrap(),
        0.0
    );
    assert!(f64::try_from(out.camera_bev.get(1).abs().sum(Kind::Float)).unwrap() > 0.0);
    assert_eq!(
        f64::try_from(out.lidar_bev.get(1).abs().sum(Kind::Float)).unwrap(),
        0.0
    );
    assert!(f64::try_from(out.lidar_bev.get(0).abs().sum(Kind::Float)).unwrap() > 0.0);
}

#[test]
fn data_free_batch_flops_and_decode() {
    let cfg = model_support::tiny();
    let batch = Batch::ones(&cfg, 2, Device::Cpu).unwrap();
    assert!(batch.targets.is_none());
    assert_eq!(batch.num_cameras, cfg.camera.default_rig.num_cameras);
    let r = flops::count(&cfg, ModalityMask::FUSION).unwrap();
    for part in [
        "camera.backbone",
        "camera.neck",
        "camera.vtransform",
        "lidar.encoder",
        "lidar.backbone",
        "fuser",
        "decoder.backbone",
        "heads.det",
        "heads.seg",
    ] {
        assert!(r.get(part) > 0.0, "{part}: {r:?}");
    }
    let lidar_only = flops::count(&cfg, ModalityMask::LIDAR_ONLY).unwrap();
    assert_eq!(lidar_only.group(Group::Camera), 0.0);
    assert!((lidar_only.group(Group::Fusion) - r.group(Group::Fusion)).abs() < 1e-9);
    // hand count of the fuser: conv3x3 (C_cam + C_lidar -> C_f) on the BEV grid
    let g = cfg.bev.grid();
    let fuser_in = cfg.camera.vtransform.channels + cfg.lidar.neck.channels.iter().sum::<i64>();
    let expect = 2.0 * (g.nx() * g.ny()) as f64 * (fuser_in * cfg.fuser.channels * 9) as f64 / 1e9;
    assert!(
        (r.get("fuser") - expect).abs() < 1e-12,
        "{} vs {expect}",
        r.get("fuser")
    );

    tch::manual_seed(3);
    let m = LoadedModel::new(&cfg, Device::Cpu).unwrap();
    let out = tch::no_grad(|| m.model.forward(&batch, ModalityMask::FUSION, false));
    let dets = m.model.decode(&out);
    assert_eq!(dets.len(), 2);
    for d in &dets {
        assert!(d.len() <= cfg.heads.det.as_ref().unwrap().post_max);
        assert!(d.windows(2).all(|w| w[0].score >= w[1].score));
    }
    let probs = m.model.seg_probs(&out).unwrap();
    let (lo, hi) = (
        f64::try_from(probs.min()).unwrap(),
        f64::try_from(probs.max()).unwrap(),
    );
    assert!(lo >= 0.0 && hi <= 1.0);
}

/// Slicing every channel group of a dense model to a smaller width gives exactly the
/// variables of the model rebuilt from the config with those widths: the groups are complete.
#[test]
fn channel_groups_rebuild_a_physically_smaller_model() {
    tch::manual_seed(4);
    let cfg = model_support::tiny();
    let dense = LoadedModel::new(&cfg, Device::Cpu).unwrap();
    let groups = dense.model.channel_groups();
    let vars = dense.vs.variables();
    for g in &groups {
        assert!(!g.members.is_empty(), "{}", g.slot);
        for m in &g.members {
            let v = vars
                .get(&m.param)
                .unwrap_or_else(|| panic!("{} names missing {}", g.slot, m.param));
            assert!(
                m.offset + g.size <= v.size()[m.dim],
                "{} / {}",
                g.slot,
                m.param
            );
        }
    }
    // keep the first half of every slot's channels (at least 1)
    let mut small_cfg = cfg.clone();
    for g in &groups {
        small_cfg.widths.insert(g.slot.clone(), (g.size / 2).max(1));
    }
    small_cfg.check_width_slots().unwrap();
    // per (param, dim): the removed index ranges of every slot living in it, applied at once
    let mut removed: std::collections::BTreeMap<(String, usize), Vec<i64>> = Default::default();
    for g in &groups {
        let keep = (g.size / 2).max(1);
        for m in &g.members {
            removed
                .entry((m.param.clone(), m.dim))
                .or_default()
                .extend(m.offset + keep..m.offset + g.size);
        }
    }
    let mut sliced: std::collections::BTreeMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.detach().copy()))
        .collect();
    for ((param, dim), gone) in &removed {
        let t = &sliced[param];
        let idx: Vec<i64> = (0..t.size()[*dim]).filter(|i| !gone.contains(i)).collect();
        let t2 = t.index_select(*dim as i64, &Tensor::from_slice(&idx));
        sliced.insert(param.clone(), t2);
    }
    let mut small = LoadedModel::new(&small_cfg, Device::Cpu).unwrap();
    let mut ck = altermoma::checkpoint::Checkpoint::new();
    ck.tensors = sliced;
    ck.load_into_var_store(&mut small.vs, &[]).unwrap();
    let n_small: i64 = small
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let n_dense: i64 = dense
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert!(n_small * 3 < n_dense, "{n_small} vs {n_dense}");
    let batch = Batch::from_frames(&model_support::frames(5, 1), &small_cfg, Device::Cpu).unwrap();
    let out = tch::no_grad(|| small.model.forward(&batch, ModalityMask::FUSION, false));
    assert_eq!(out.det.unwrap().heatmap.size(), vec![1, 10, 64, 64]);
    let f_small = flops::count(&small_cfg, ModalityMask::FUSION)
        .unwrap()
        .total();
    let f_dense = flops::count(&cfg, ModalityMask::FUSION).unwrap().total();
    assert!(f_small < 0.5 * f_dense, "{f_small} vs {f_dense}");
}
