//! Structured (channel) pruning on the conv + BN + residual + concat toy model: channel
//! scores from per-weight scores, coupled slots, minimum widths, and a physically smaller
//! model that computes exactly what the dense model computes with those channels removed.

use altermoma::checkpoint::Checkpoint;
use altermoma::model::ModalityMask;
use altermoma::pruning::harness::{prune, Granularity, Method, PruneConfig};
use altermoma::pruning::model_api::{named_vars, PrunableModel, PrunableScope};
use altermoma::pruning::report::{ChannelStats, PruneReport};
use altermoma::pruning::structured::{
    channel_scores, min_width, select_channels, shrink, ChannelAggregation, StructuredConfig,
};
use altermoma::pruning::toy::{toy_conv_default_widths, ToyConvFusion};
use altermoma::pruning::Scores;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

fn init() {
    tch::set_num_threads(1);
}

/// Zero every consumer (input-channel, dim 1) slice of the removed channels in the dense
/// model: then nothing reads those channels and the dense model computes what the shrunk one
/// does.
fn zero_removed_consumers(m: &ToyConvFusion, kept: &BTreeMap<String, Vec<i64>>) {
    let vars = named_vars(m.var_store());
    tch::no_grad(|| {
        for g in m.channel_groups() {
            let k = &kept[&g.slot];
            for mem in g.members.iter().filter(|mem| mem.dim == 1) {
                let v = &vars[&mem.param];
                for j in (0..g.size).filter(|j| !k.contains(j)) {
                    let _ = v.narrow(1, mem.offset + j, 1).zero_();
                }
            }
        }
    });
}

#[test]
fn channel_scores_sum_each_channels_weights() {
    init();
    let m = ToyConvFusion::new(&BTreeMap::new(), 1).unwrap();
    let groups = m.channel_groups();
    let params = m.prunable_params(PrunableScope::Weights);
    // Score = 1 everywhere: a channel's score is the number of scored weights it touches.
    let ones: Scores = params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                Tensor::ones(p.shape.as_slice(), (Kind::Float, tch::Device::Cpu)),
            )
        })
        .collect();
    let ch = channel_scores(&groups, &ones, ChannelAggregation::Sum).unwrap();
    let w = toy_conv_default_widths();
    let (c, mm, f) = (w["camera.c"], w["camera.m"], w["fuser.f"]);
    let idx = groups.iter().position(|g| g.slot == "camera.c").unwrap();
    // stem out row (3*9) + conv_a input column (m*9) + conv_b out row (m*9) + fuser input
    // column (f*9).
    let want = (3 * 9 + mm * 9 + mm * 9 + f * 9) as f64;
    assert!(Vec::<f64>::try_from(&ch[idx])
        .unwrap()
        .iter()
        .all(|x| *x == want));
    let idx = groups.iter().position(|g| g.slot == "fuser.f").unwrap();
    let want = ((c + w["lidar.c"]) * 9 + 2) as f64;
    assert!(Vec::<f64>::try_from(&ch[idx])
        .unwrap()
        .iter()
        .all(|x| *x == want));
    // Signed vs absolute aggregation.
    let neg: Scores = ones.iter().map(|(k, v)| (k.clone(), -v)).collect();
    let s = channel_scores(&groups, &neg, ChannelAggregation::Sum).unwrap();
    let a = channel_scores(&groups, &neg, ChannelAggregation::SumAbs).unwrap();
    assert!(s[0].lt(0.0).all().int64_value(&[]) == 1 && a[0].gt(0.0).all().int64_value(&[]) == 1);
}

#[test]
fn selection_is_global_with_minimum_widths() {
    init();
    let m = ToyConvFusion::new(&BTreeMap::new(), 1).unwrap();
    let groups = m.channel_groups();
    // Slot scores: camera.c channels are all worthless, others graded.
    let mut ch = Vec::new();
    for g in &groups {
        let base = if g.slot == "camera.c" { 0.0 } else { 10.0 };
        ch.push(Tensor::arange(g.size, (Kind::Double, tch::Device::Cpu)) + base);
    }
    let cfg = StructuredConfig {
        aggregation: ChannelAggregation::Sum,
        min_channels: 2,
        min_fraction: 0.25,
    };
    let total: i64 = groups.iter().map(|g| g.size).sum();
    let sel = select_channels(&groups, &ch, 0.5, &cfg).unwrap();
    assert_eq!(sel.channels_before, total);
    assert_eq!(
        sel.channels_after,
        total - (0.5 * total as f64).round() as i64
    );
    // The worthless slot is cut down to its minimum, keeping its best channels.
    assert_eq!(sel.widths["camera.c"], min_width(8, &cfg));
    assert_eq!(sel.kept["camera.c"], vec![6, 7]);
    for g in &groups {
        assert!(sel.widths[&g.slot] >= min_width(g.size, &cfg));
    }
}

#[test]
fn shrunk_model_equals_dense_model_without_the_channels() {
    init();
    let mut m = ToyConvFusion::new(&BTreeMap::new(), 21).unwrap();
    let data = ToyConvFusion::new(&BTreeMap::new(), 21).unwrap();
    // Give BN statistics non-trivial values.
    tch::no_grad(|| {
        for _ in 0..3 {
            let _ = m.forward_t(&data.random_batch(4, 9), ModalityMask::FUSION, true);
        }
    });
    let dense_gflops = m.gflops();
    let mut cfg = PruneConfig {
        method: Method::Altermoma,
        sparsity: 0.5,
        granularity: Granularity::Channel,
        ..Default::default()
    };
    cfg.altermoma.reactivation.steps = 3;
    let out = prune(&mut m, &mut data.batches(2, 3), &cfg).unwrap();
    let sel = out.selection.unwrap();
    let shrunk = out.shrunk.unwrap();
    assert_eq!(
        sel.channels_after,
        sel.channels_before - (0.5 * sel.channels_before as f64).round() as i64
    );

    // Through a checkpoint into a model built with the new widths (no mask needed).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    let mut ck = Checkpoint::new();
    ck.tensors = shrunk
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    ck.save(&path).unwrap();
    let mut small = ToyConvFusion::new(&sel.widths, 0).unwrap();
    Checkpoint::load(&path)
        .unwrap()
        .load_into_var_store(&mut small.vs, &[])
        .unwrap();
    assert!(
        small.gflops() < 0.6 * dense_gflops,
        "{} vs {}",
        small.gflops(),
        dense_gflops
    );

    zero_removed_consumers(&m, &sel.kept);
    let b = data.random_batch(3, 77);
    for mask in [
        ModalityMask::FUSION,
        ModalityMask::CAMERA_ONLY,
        ModalityMask::LIDAR_ONLY,
    ] {
        for train in [false, true] {
            let (yd, ys) = tch::no_grad(|| {
                (
                    m.forward_t(&b, mask, train),
                    small.forward_t(&b, mask, train),
                )
            });
            let err = (&yd - &ys).abs().max().double_value(&[]);
            assert!(err < 1e-5, "{mask:?} train={train}: max difference {err}");
        }
    }

    // The report counts the physically removed weights.
    let params = m.prunable_params(PrunableScope::Weights);
    let widths_before = toy_conv_default_widths();
    let rep = PruneReport::from_structured(
        Method::Altermoma,
        0.5,
        &params,
        m.var_store(),
        &shrunk,
        ChannelStats {
            channels_before: sel.channels_before,
            channels_after: sel.channels_after,
            widths_before,
            widths_after: sel.widths.clone(),
        },
        dense_gflops,
        small.gflops(),
        out.scoring_seconds,
        out.details,
    );
    let small_params: i64 = small
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert_eq!(rep.params_remaining, small_params);
    assert!(rep.sparsity > 0.3 && rep.sparsity < 0.9);
    rep.write(dir.path()).unwrap();
    assert!(image::open(dir.path().join("sparsity.png")).is_ok());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("camera.c") && md.contains("| lidar |"), "{md}");
}

#[test]
fn bad_slots_are_clear_errors() {
    init();
    let m = ToyConvFusion::new(&BTreeMap::new(), 1).unwrap();
    let mut groups = m.channel_groups();
    groups[0].members[0].offset = 5;
    let vars = named_vars(m.var_store());
    let sel = select_channels(
        &m.channel_groups(),
        &channel_scores(&m.channel_groups(), &vars, ChannelAggregation::Sum).unwrap(),
        0.5,
        &StructuredConfig::default(),
    )
    .unwrap();
    let e = shrink(&vars, &groups, &sel).unwrap_err().to_string();
    assert!(e.contains("camera.c") && e.contains("offset 5"), "{e}");
    assert!(ToyConvFusion::new(&[("camera.q".to_string(), 3)].into_iter().collect(), 0).is_err());
}
