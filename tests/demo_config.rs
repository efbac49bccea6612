//! The demo's YAML: the embedded default parses, the shipped configs load, and a bad value
//! is reported with its file, field and line.

use altermoma::demo::config::{DemoConfig, TINY_YAML};
use altermoma::pruning::Method;
use std::path::Path;

#[test]
fn embedded_default_and_shipped_configs_load() {
    let c = DemoConfig::tiny();
    assert_eq!(c.model, "tiny");
    assert_eq!(c.prune.sparsity, 0.8);
    assert_ne!(c.prune.baseline, Method::Altermoma);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        DemoConfig::load(&root.join("config/demo/tiny.yaml")).unwrap(),
        c
    );
    let micro = DemoConfig::load(&root.join("config/demo/micro.yaml")).unwrap();
    assert_eq!(micro.name, "micro");
}

#[test]
fn errors_name_the_file_field_and_line() {
    let bad = TINY_YAML.replace("sparsity: 0.8", "sparsity: 1.5");
    let e = DemoConfig::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("prune.sparsity") && e.contains("x.yaml"), "{e}");
    let line = bad
        .lines()
        .position(|l| l.contains("sparsity: 1.5"))
        .unwrap()
        + 1;
    assert!(e.contains(&line.to_string()), "{e}");
    let bad = TINY_YAML.replace("baseline: snip", "baseline: altermoma");
    let e = DemoConfig::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("prune.baseline"), "{e}");
    let bad = TINY_YAML.replace("storage: mcap-zstd", "storage: tape");
    let e = DemoConfig::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bag.storage") && e.contains("tape"), "{e}");
    let bad = TINY_YAML.replace("seed: 9001", "seed: 1");
    let e = DemoConfig::parse(&bad, Path::new("x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("data.test.seed"), "{e}");
}
