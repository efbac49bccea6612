//! The launch files and the colcon package point at things that exist: the package name,
//! the `bevfusion_node` executable, the parameter file (which must also load and validate),
//! and topic names the node really has. `ros2 launch` is not installable here, so the XML is
//! parsed with roxmltree and the Python file is executed against stub `launch` packages
//! (tests/python/launch_py_describe.py). No ROS participant is started.
#![cfg(feature = "ros")]

mod common;

use altermoma::ros::params::load_params;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE_DIR: &str = "launch/colcon/altermoma_bevfusion";

/// The colcon package's name and what its CMakeLists installs into share/: (share-relative
/// path, repository path).
fn package() -> (String, Vec<(String, PathBuf)>) {
    let root = common::root();
    let xml = std::fs::read_to_string(root.join(PACKAGE_DIR).join("package.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let name = doc.descendants().find(|n| n.has_tag_name("name")).unwrap().text().unwrap().trim().to_string();
    let cmake = std::fs::read_to_string(root.join(PACKAGE_DIR).join("CMakeLists.txt")).unwrap();
    assert!(cmake.contains("project(altermoma_bevfusion"), "CMake project = package name");
    assert!(cmake.contains("--bin bevfusion_node") && cmake.contains("DESTINATION lib/${PROJECT_NAME}"));
    let mut share = Vec::new();
    for (file, dest) in [
        ("config/bevfusion_node.param.yaml", "share/${PROJECT_NAME}/config"),
        ("config/fastdds_large_images.xml", "share/${PROJECT_NAME}/config"),
        ("launch/bevfusion.launch.xml", "share/${PROJECT_NAME}/launch"),
        ("launch/bevfusion.launch.py", "share/${PROJECT_NAME}/launch"),
    ] {
        assert!(cmake.contains(&format!("${{ALTERMOMA_ROOT}}/{file}")), "CMakeLists installs {file}");
        assert!(cmake.contains(dest), "CMakeLists installs into {dest}");
        share.push((file.to_string(), root.join(file)));
    }
    (name, share)
}

/// Map `<share of pkg>/rel` to the repository file the package installs there.
fn share_file(pkg: &str, rel: &str) -> Option<PathBuf> {
    let (name, share) = package();
    if pkg != name {
        return None;
    }
    share.into_iter().find(|(r, _)| r == rel).map(|(_, p)| p)
}

fn check_node(pkg: &str, exec: &str, param_file: &Path, remaps: &[(String, String)], overrides: &[(String, String)]) {
    let (name, _) = package();
    assert_eq!(pkg, name, "launch package = the colcon package");
    assert_eq!(exec, "bevfusion_node");
    let cargo = std::fs::read_to_string(common::root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("[[bin]]\nname = \"bevfusion_node\""), "Cargo.toml builds the executable");
    assert!(Path::new(env!("CARGO_BIN_EXE_bevfusion_node")).exists());
    assert!(param_file.exists(), "{}", param_file.display());
    let params = load_params(&[param_file.to_path_buf()], overrides, "bevfusion_node", "/")
        .unwrap_or_else(|e| panic!("the launched parameter file must validate: {e}"));
    let known = altermoma::ros::node::node_topics(6);
    assert!(remaps.iter().any(|(f, _)| f == "~/input/pointcloud"));
    for (from, to) in remaps {
        assert!(known.contains(from), "remap of `{from}`, which the node does not have");
        assert!(to.starts_with('/'), "remap target `{to}`");
    }
    for i in 0..params.camera_names.len() {
        assert!(remaps.iter().any(|(f, _)| *f == format!("~/input/image_{i}")), "camera {i} image remapped");
        assert!(remaps.iter().any(|(f, _)| *f == format!("~/input/camera_info_{i}")), "camera {i} info remapped");
    }
}

/// Resolve `$(var x)` and `$(find-pkg-share p)` in an XML attribute.
fn resolve_xml(s: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        out += &rest[..i];
        let end = rest[i..].find(')').expect("closing )") + i;
        let inner = &rest[i + 2..end];
        let (kind, arg) = inner.split_once(' ').expect("$(kind arg)");
        out += &match kind {
            "var" => resolve_xml(args.get(arg).unwrap_or_else(|| panic!("$(var {arg}) is not declared")), args),
            "find-pkg-share" => format!("<share:{arg}>"),
            other => panic!("unexpected substitution $({other} ...)"),
        };
        rest = &rest[end + 1..];
    }
    out + rest
}

fn share_path(resolved: &str) -> PathBuf {
    let s = resolved.strip_prefix("<share:").expect("a package-share path");
    let (pkg, rel) = s.split_once(">/").unwrap();
    share_file(pkg, rel).unwrap_or_else(|| panic!("{pkg} does not install {rel}"))
}

#[test]
fn xml_launch_file_starts_the_node_with_existing_files() {
    let text = std::fs::read_to_string(common::root().join("launch/bevfusion.launch.xml")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "launch");
    let args: BTreeMap<String, String> = root
        .children()
        .filter(|n| n.has_tag_name("arg"))
        .map(|n| (n.attribute("name").unwrap().to_string(), n.attribute("default").unwrap_or("").to_string()))
        .collect();
    let nodes: Vec<_> = root.children().filter(|n| n.has_tag_name("node")).collect();
    assert_eq!(nodes.len(), 1);
    let node = nodes[0];
    let mut param_file = None;
    let mut overrides = Vec::new();
    for p in node.children().filter(|n| n.has_tag_name("param")) {
        if let Some(from) = p.attribute("from") {
            param_file = Some(share_path(&resolve_xml(from, &args)));
        } else {
            let v = resolve_xml(p.attribute("value").unwrap(), &args);
            let v = if v.starts_with("<share:") { "model.safetensors".to_string() } else { v };
            overrides.push((p.attribute("name").unwrap().to_string(), v));
        }
    }
    let remaps: Vec<(String, String)> = node
        .children()
        .filter(|n| n.has_tag_name("remap"))
        .map(|n| (n.attribute("from").unwrap().to_string(), resolve_xml(n.attribute("to").unwrap(), &args)))
        .collect();
    assert_eq!(resolve_xml(node.attribute("name").unwrap(), &args), "bevfusion_node");
    check_node(
        node.attribute("pkg").unwrap(),
        node.attribute("exec").unwrap(),
        &param_file.expect("<param from=...>"),
        &remaps,
        &overrides,
    );
}

fn resolve_py(v: &Value, args: &serde_json::Map<String, Value>) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let a = o["args"].as_array().unwrap();
            match o["subst"].as_str().unwrap() {
                "LaunchConfiguration" => {
                    let name = a[0].as_str().unwrap();
                    resolve_py(args.get(name).unwrap_or_else(|| panic!("LaunchConfiguration({name}) undeclared")), args)
                }
                "FindPackageShare" => format!("<share:{}>", a[0].as_str().unwrap()),
                "PathJoinSubstitution" => {
                    a[0].as_array().unwrap().iter().map(|p| resolve_py(p, args)).collect::<Vec<_>>().join("/")
                }
                other => panic!("unexpected substitution {other}"),
            }
        }
        other => panic!("unexpected value {other}"),
    }
}

#[test]
fn python_launch_file_starts_the_node_with_existing_files() {
    let python = std::env::var("ALTERMOMA_TOOLS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(common::root().join("tests/python/launch_py_describe.py"))
        .arg(common::root().join("launch/bevfusion.launch.py"))
        .output()
        .expect("running python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let args = v["arguments"].as_object().unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let n = &nodes[0];
    let params = n["parameters"].as_array().unwrap();
    let param_file = share_path(&resolve_py(&params[0], args));
    let overrides: Vec<(String, String)> = params[1]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = resolve_py(v, args);
            (k.clone(), if v.starts_with("<share:") { "model.safetensors".to_string() } else { v })
        })
        .collect();
    let remaps: Vec<(String, String)> = n["remappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), resolve_py(&r[1], args)))
        .collect();
    assert_eq!(resolve_py(&n["name"], args), "bevfusion_node");
    check_node(n["package"].as_str().unwrap(), n["executable"].as_str().unwrap(), &param_file, &remaps, &overrides);
}

#[test]
fn node_binary_help_and_parameter_errors_need_no_ros() {
    let exe = env!("CARGO_BIN_EXE_bevfusion_node");
    let out = Command::new(exe).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for t in ["~/input/pointcloud", "~/output/objects", "/diagnostics", "--ros-args"] {
        assert!(help.contains(t), "--help mentions {t}");
    }
    // a broken parameter file is refused before anything starts, naming file, line and field
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("config/bevfusion_node.param.yaml")).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, text.replace("max_camera_lidar_delay: 0.12", "max_camera_lidar_delay: -1.0")).unwrap();
    let line = text.lines().position(|l| l.contains("max_camera_lidar_delay: 0.12")).unwrap() + 1;
    for args in [vec!["--check-params", "--params-file"], vec!["--check-params", "--ros-args", "--params-file"]] {
        let out = Command::new(exe).args(&args).arg(&bad).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:{line}", bad.display())) && err.contains("max_camera_lidar_delay"), "{err}");
    }
    // -p overrides are validated too; a good file passes
    let good = common::root().join("config/bevfusion_node.param.yaml");
    let out = Command::new(exe)
        .args(["--check-params", "--ros-args", "--params-file"])
        .arg(&good)
        .args(["-p", "device:=tpu"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-p device:=tpu"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(exe).args(["--check-params", "--params-file"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
