//! The binaries as a user meets them: `--help` works, and a malformed YAML config stops the
//! program with a non-zero exit code and a message naming the file, the line and the field.
//! None of these start a ROS 2 participant (`--help` and `--check-params` exit before rcl).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Writes `original` with `from` replaced by `to`; returns the path and the 1-based line of `to`.
fn corrupt(dir: &Path, name: &str, original: &str, from: &str, to: &str) -> (PathBuf, usize) {
    assert!(
        original.contains(from),
        "{from:?} not in the shipped file any more"
    );
    let bad = original.replacen(from, to, 1);
    let line = bad
        .lines()
        .position(|l| l.contains(to.lines().next().unwrap()))
        .unwrap()
        + 1;
    let path = dir.join(name);
    std::fs::write(&path, bad).unwrap();
    (path, line)
}

#[test]
fn altermoma_help_lists_the_subcommands() {
    let o = run(env!("CARGO_BIN_EXE_altermoma"), &["--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for sub in [
        "gen-data", "train", "prune", "finetune", "eval", "gen-bag", "replay", "demo", "bench",
    ] {
        assert!(
            t.contains(sub),
            "`altermoma --help` does not list `{sub}`:\n{t}"
        );
    }
}

#[test]
fn bevfusion_node_help_names_its_topics() {
    let o = run(env!("CARGO_BIN_EXE_bevfusion_node"), &["--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("~/input/pointcloud") && t.contains("~/output/objects"),
        "{t}"
    );
}

#[test]
fn malformed_model_config_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(repo("config/model/tiny.yaml")).unwrap();
    let (bad, line) = corrupt(
        dir.path(),
        "broken_model.yaml",
        &tiny,
        "    channels: 16\n    downsample: 1",
        "    channels: lots\n    downsample: 1",
    );
    let o = run(
        env!("CARGO_BIN_EXE_altermoma"),
        &[
            "bench",
            "model",
            "--configs",
            bad.to_str().unwrap(),
            "--runs",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "a broken config was accepted:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    // compiler style: FILE:LINE:COLUMN
    assert!(
        t.contains(&format!("broken_model.yaml:{line}:")),
        "file and line {line} not named:\n{t}"
    );
    assert!(t.contains("channels"), "field not named:\n{t}");
}

#[test]
fn malformed_node_parameters_name_file_line_and_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(repo("config/bevfusion_node.param.yaml")).unwrap();
    let (bad, line) = corrupt(
        dir.path(),
        "broken.param.yaml",
        &shipped,
        "fp16: false",
        "fp16: maybe",
    );
    let o = run(
        env!("CARGO_BIN_EXE_bevfusion_node"),
        &["--check-params", "--params-file", bad.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(
        !o.status.success(),
        "a broken parameter file was accepted:\n{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.contains("broken.param.yaml"), "file not named:\n{t}");
    assert!(
        t.contains(&format!("{line}")),
        "line {line} not named:\n{t}"
    );
    assert!(t.contains("fp16"), "parameter not named:\n{t}");
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(repo("config/model/tiny.yaml")).unwrap();
    // an unclosed flow sequence: a syntax error, not a type error
    let (bad, _) = corrupt(
        dir.path(),
        "unclosed.yaml",
        &tiny,
        "voxel: {size: [0.5, 0.5, 8.0]",
        "voxel: {size: [0.5, 0.5, 8.0",
    );
    let o = run(
        env!("CARGO_BIN_EXE_altermoma"),
        &[
            "bench",
            "model",
            "--configs",
            bad.to_str().unwrap(),
            "--runs",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    let at = t
        .find("unclosed.yaml:")
        .unwrap_or_else(|| panic!("file not named:\n{t}"));
    let after = &t[at + "unclosed.yaml:".len()..];
    assert!(
        after.starts_with(|c: char| c.is_ascii_digit()),
        "no line after the file name:\n{t}"
    );
}
