//! Model configs: the shipped ones load and build; errors name the file, line and field;
//! checkpoints refuse a model of another shape with a clear error.

mod model_support;

use altermoma::model::load::LoadedModel;
use altermoma::model::{Group, ModelConfig};
use std::collections::BTreeMap;
use tch::Device;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn shipped_configs_load_and_plan() {
    for name in ["tiny", "small", "base"] {
        let cfg = ModelConfig::load(model_support::config_path(name)).unwrap();
        assert_eq!(cfg.name, name);
        let slots = cfg.width_slots();
        assert!(slots.len() > 10, "{name}: {slots:?}");
        // slot names carry their group
        assert!(slots.keys().any(|k| Group::of_param(k) == Group::Camera));
        assert!(slots.keys().any(|k| Group::of_param(k) == Group::Lidar));
        assert!(slots.keys().any(|k| k.starts_with("fuser.")));
    }
}

#[test]
fn errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(model_support::config_path("tiny")).unwrap();

    // a type error
    let bad = tiny.replace(
        "    channels: 16\n    downsample: 1",
        "    channels: lots\n    downsample: 1",
    );
    assert_ne!(bad, tiny);
    let p = write(dir.path(), "bad_type.yaml", &bad);
    let e = ModelConfig::load(&p).unwrap_err();
    let line = bad
        .lines()
        .position(|l| l.contains("channels: lots"))
        .unwrap()
        + 1;
    let msg = e.to_string();
    assert!(
        msg.contains("bad_type.yaml") && msg.contains("camera.vtransform.channels"),
        "{msg}"
    );
    assert_eq!(e.line(), Some(line), "{msg}");

    // a semantic error
    let bad = tiny.replace(
        "voxel: {size: [0.5, 0.5, 8.0]",
        "voxel: {size: [0.7, 0.7, 8.0]",
    );
    assert_ne!(bad, tiny);
    let p = write(dir.path(), "bad_voxel.yaml", &bad);
    let e = ModelConfig::load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("lidar.voxel.size") && msg.contains("bev.resolution"),
        "{msg}"
    );
    assert_eq!(
        e.line(),
        Some(bad.lines().position(|l| l.contains("voxel:")).unwrap() + 1)
    );

    // an unknown field and an unknown part type
    let bad = tiny.replace("  stem_kernel: 3", "  stem_kernel: 3\n    colour: red");
    assert_ne!(bad, tiny);
    let e = ModelConfig::load(write(dir.path(), "unknown.yaml", &bad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("colour"), "{e}");
    let bad = tiny.replace("type: resnet", "type: swin");
    let e = ModelConfig::load(write(dir.path(), "swin.yaml", &bad))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("camera.backbone.type") && e.contains("swin"),
        "{e}"
    );

    // a width override naming no slot
    let bad = format!("{tiny}widths:\n  camera.backbone.layer9: 4\n");
    let p = write(dir.path(), "widths.yaml", &bad);
    let e = ModelConfig::load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("widths.camera.backbone.layer9") && msg.contains("no width slot"),
        "{msg}"
    );
    assert_eq!(e.line(), Some(bad.lines().count()));
    // a valid one loads and shrinks the model
    let good = format!("{tiny}widths:\n  fuser.conv: 8\n");
    let cfg = ModelConfig::load(write(dir.path(), "ok.yaml", &good)).unwrap();
    assert_eq!(cfg.width_slots()["fuser.conv"], 8);
}

#[test]
fn checkpoint_into_a_wrong_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = model_support::tiny();
    tch::manual_seed(0);
    let m = LoadedModel::new(&cfg, Device::Cpu).unwrap();
    let p = dir.path().join("m.safetensors");
    m.save(&p, &BTreeMap::new()).unwrap();
    // round trip with the embedded config is exact
    let back = LoadedModel::from_checkpoint(&p, Device::Cpu).unwrap();
    assert_eq!(back.cfg, cfg);
    assert_eq!(back.metadata["kind"], "dense");
    for (k, v) in m.vs.variables() {
        assert!(v.equal(&back.vs.variables()[&k]), "{k}");
    }
    // another width
    let mut other = cfg.clone();
    other.fuser.channels = 24;
    let e = format!(
        "{:#}",
        LoadedModel::from_checkpoint_with_config(&p, &other, Device::Cpu).unwrap_err()
    );
    assert!(
        e.contains("m.safetensors") && e.contains("fuser.conv.") && e.contains("shape"),
        "{e}"
    );
    // another structure (no segmentation head): extra tensors are named
    let mut nohead = cfg.clone();
    nohead.heads.seg = None;
    let e = format!(
        "{:#}",
        LoadedModel::from_checkpoint_with_config(&p, &nohead, Device::Cpu).unwrap_err()
    );
    assert!(e.contains("heads.seg"), "{e}");
    // partial loading (fusion from single-modal checkpoints) checks shapes too
    let e = altermoma::model::load::load_groups(
        &LoadedModel::new(&other, Device::Cpu).unwrap().vs,
        &p,
        &[Group::Fusion],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("decoder.backbone.blocks.0.0.conv.weight") && e.contains("another model config"),
        "{e}"
    );
    let n = altermoma::model::load::load_groups(
        &LoadedModel::new(&other, Device::Cpu).unwrap().vs,
        &p,
        &[Group::Camera],
    )
    .unwrap();
    assert!(n > 10);
    // garbage metadata
    let mut ck = altermoma::checkpoint::Checkpoint::load(&p).unwrap();
    ck.metadata
        .insert("model_config".into(), "{\"name\": 3}".into());
    ck.save(&p).unwrap();
    let e = format!(
        "{:#}",
        LoadedModel::from_checkpoint(&p, Device::Cpu).unwrap_err()
    );
    assert!(e.contains("model_config") && e.contains("name"), "{e}");
}
