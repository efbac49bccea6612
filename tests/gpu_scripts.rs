//! The GPU check scripts (`tests/gpu/`): they run only on a lent GPU machine, so here they are
//! checked for what can go wrong before that: valid bash, and every file of the repository that
//! `checks.sh` names is one `bundle.sh` packs and that exists.

mod common;

#[test]
fn gpu_scripts_parse_and_name_files_that_exist() {
    let dir = common::root().join("tests/gpu");
    for script in ["bundle.sh", "checks.sh"] {
        let st = std::process::Command::new("bash").arg("-n").arg(dir.join(script)).status().unwrap();
        assert!(st.success(), "{script} is not valid bash");
    }
    let checks = std::fs::read_to_string(dir.join("checks.sh")).unwrap();
    let bundle = std::fs::read_to_string(dir.join("bundle.sh")).unwrap();
    // checks.sh reads these from the bundle ($B); bundle.sh copies config/ whole and netns.sh
    for f in ["config/bevfusion_node.param.yaml", "config/model/small.yaml", "config/fastdds_large_images.xml"] {
        assert!(common::root().join(f).is_file(), "{f} is missing");
    }
    assert!(checks.contains("$B/config/bevfusion_node.param.yaml") && checks.contains("$B/config/model/small.yaml"));
    assert!(bundle.contains(r#"cp -r "$root/config/." "$stage/config/""#), "bundle.sh no longer copies config/");
    assert!(checks.contains(r#"N="$B/tests/netns.sh""#) && bundle.contains(r#""$root/tests/netns.sh""#));
    // the fixtures checks.sh runs are the ones bundle.sh makes
    for ck in ["tiny_dense.safetensors", "tiny_structured30.safetensors"] {
        assert!(bundle.contains(ck), "bundle.sh does not make {ck}");
        assert!(checks.contains(ck.trim_end_matches(".safetensors")), "checks.sh does not use {ck}");
    }
    // every ROS 2 command of checks.sh goes through the namespace wrapper
    for line in checks.lines().filter(|l| l.contains("bench node") || l.contains("bin/bevfusion_node")) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let step = checks.lines().take_while(|l| *l != line).filter(|l| l.starts_with("step ")).last().unwrap_or("");
        assert!(line.contains("\"$N\"") || step.contains("\"$N\""), "not inside tests/netns.sh: {line}");
    }
}
