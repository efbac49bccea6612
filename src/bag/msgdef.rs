//! Message definitions stored with each schema (MCAP `ros2msg` schemas, the sqlite3
//! `message_definitions` table): the type's `.msg` text followed by every nested type's,
//! each introduced by a line of 80 `=` and `MSG: pkg/Type`, as rosbag2 writes them.
//!
//! Texts come from the installed interface files (`<prefix>/share/<pkg>/msg/<Type>.msg` for
//! each prefix of `AMENT_PREFIX_PATH`), with the RIHS01 type hash from the `.json` beside
//! them; our own `altermoma_msgs` are embedded as a fallback, and any other type the codec
//! knows is described from its field list.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

const SEPARATOR: &str = "================================================================================";

/// Our message package, embedded so bags carry full definitions without an installation.
const EMBEDDED: &[(&str, &str)] = &[
    ("altermoma_msgs/msg/BevSegmentation", include_str!("../../msg/msg/BevSegmentation.msg")),
    ("altermoma_msgs/msg/Detection3D", include_str!("../../msg/msg/Detection3D.msg")),
    ("altermoma_msgs/msg/Detection3DArray", include_str!("../../msg/msg/Detection3DArray.msg")),
    ("altermoma_msgs/msg/FrameGroundTruth", include_str!("../../msg/msg/FrameGroundTruth.msg")),
    ("altermoma_msgs/msg/ProcessingTime", include_str!("../../msg/msg/ProcessingTime.msg")),
    ("altermoma_msgs/msg/RigCalibration", include_str!("../../msg/msg/RigCalibration.msg")),
];

const PRIMITIVES: &[&str] = &[
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
    "uint64", "string", "wstring",
];

/// The definition of one type as stored in a bag.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// Concatenated `ros2msg` text.
    pub text: String,
    /// `RIHS01_<sha256>` when the installation provides it, else empty.
    pub type_hash: String,
}

fn split(type_name: &str) -> Option<(&str, &str)> {
    let mut it = type_name.split('/');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(p), Some("msg"), Some(t), None) => Some((p, t)),
        (Some(p), Some(t), None, None) => Some((p, t)),
        _ => None,
    }
}

fn prefixes() -> Vec<PathBuf> {
    std::env::var("AMENT_PREFIX_PATH")
        .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default()
}

fn installed_file(type_name: &str, ext: &str) -> Option<PathBuf> {
    let (pkg, ty) = split(type_name)?;
    prefixes()
        .into_iter()
        .map(|p| p.join("share").join(pkg).join("msg").join(format!("{ty}.{ext}")))
        .find(|p| p.is_file())
}

/// The `.msg` text of one type (without its dependencies).
fn own_text(type_name: &str) -> Option<String> {
    if let Some(p) = installed_file(type_name, "msg") {
        if let Ok(t) = std::fs::read_to_string(p) {
            return Some(t);
        }
    }
    if let Some((_, t)) = EMBEDDED.iter().find(|(n, _)| *n == type_name) {
        return Some(t.to_string());
    }
    generated_text(type_name)
}

#[cfg(feature = "ros")]
fn generated_text(type_name: &str) -> Option<String> {
    let fields = super::messages::known_fields(type_name)?;
    Some(fields.iter().map(|(name, ty)| format!("{ty} {name}\n")).collect())
}

#[cfg(not(feature = "ros"))]
fn generated_text(_type_name: &str) -> Option<String> {
    None
}

/// Nested types named by the fields of a `.msg` text, as `pkg/msg/Type`.
pub fn nested_types(package: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some(ty) = line.split_whitespace().next() else { continue };
        // Constants (`uint8 X = 1`) are primitives; strip array and bound suffixes.
        let base = ty.split('[').next().unwrap_or(ty);
        let base = base.split("<=").next().unwrap_or(base);
        if PRIMITIVES.contains(&base) {
            continue;
        }
        let full = match base.split('/').collect::<Vec<_>>().as_slice() {
            [t] if *t == "Header" => "std_msgs/msg/Header".to_string(),
            [t] => format!("{package}/msg/{t}"),
            [p, t] => format!("{p}/msg/{t}"),
            [p, "msg", t] => format!("{p}/msg/{t}"),
            _ => continue,
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// The RIHS01 hash of an installed type, or empty.
pub fn type_hash(type_name: &str) -> String {
    let Some(p) = installed_file(type_name, "json") else { return String::new() };
    let Ok(text) = std::fs::read_to_string(p) else { return String::new() };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return String::new() };
    v.get("type_hashes")
        .and_then(|h| h.as_array())
        .and_then(|a| a.iter().find(|e| e.get("type_name").and_then(|n| n.as_str()) == Some(type_name)))
        .and_then(|e| e.get("hash_string"))
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string()
}

/// The full definition of `type_name` (`pkg/msg/Type`), or None when neither an installed
/// file, an embedded file nor the codec describes it or one of its nested types.
pub fn definition(type_name: &str) -> Option<Definition> {
    static CACHE: Mutex<Option<HashMap<String, Option<Definition>>>> = Mutex::new(None);
    if let Ok(mut g) = CACHE.lock() {
        if let Some(d) = g.get_or_insert_with(HashMap::new).get(type_name) {
            return d.clone();
        }
    }
    let d = build(type_name);
    if let Ok(mut g) = CACHE.lock() {
        g.get_or_insert_with(HashMap::new).insert(type_name.to_string(), d.clone());
    }
    d
}

fn build(type_name: &str) -> Option<Definition> {
    let (pkg, _) = split(type_name)?;
    let root = own_text(type_name)?;
    // Depth-first over nested types, each once.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut stack: Vec<(String, String)> =
        nested_types(pkg, &root).into_iter().rev().map(|t| (t, String::new())).collect();
    while let Some((t, _)) = stack.pop() {
        if order.iter().any(|(n, _)| *n == t) || t == type_name {
            continue;
        }
        let text = own_text(&t)?;
        let (p, _) = split(&t)?;
        for n in nested_types(p, &text).into_iter().rev() {
            stack.push((n, String::new()));
        }
        order.push((t, text));
    }
    let mut text = root.trim_end().to_string();
    for (name, body) in &order {
        let short = name.replacen("/msg/", "/", 1);
        text.push('\n');
        text.push_str(SEPARATOR);
        text.push_str(&format!("\nMSG: {short}\n"));
        text.push_str(body.trim_end());
    }
    text.push('\n');
    Some(Definition { type_name: type_name.to_string(), text, type_hash: type_hash(type_name) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_are_found_in_msg_text() {
        let text = "# c\nstd_msgs/Header header\nuint8 X = 1\nPointField[] fields\nfloat64[9] k\nstring<=5 s\nbuiltin_interfaces/msg/Time t # x\n";
        assert_eq!(
            nested_types("sensor_msgs", text),
            vec!["std_msgs/msg/Header", "sensor_msgs/msg/PointField", "builtin_interfaces/msg/Time"]
        );
    }

    #[test]
    fn our_types_have_full_definitions() {
        let d = definition("altermoma_msgs/msg/FrameGroundTruth").unwrap();
        assert!(d.text.starts_with("# Ground truth of one frame"), "{}", &d.text[..80]);
        for dep in [
            "MSG: std_msgs/Header",
            "MSG: builtin_interfaces/Time",
            "MSG: geometry_msgs/Pose",
            "MSG: geometry_msgs/Point",
            "MSG: geometry_msgs/Quaternion",
            "MSG: altermoma_msgs/Detection3D",
            "MSG: geometry_msgs/Vector3",
            "MSG: altermoma_msgs/BevSegmentation",
        ] {
            assert_eq!(d.text.matches(dep).count(), 1, "{dep} in\n{}", d.text);
        }
        assert!(d.text.contains(SEPARATOR));
    }

    #[test]
    fn standard_types_resolve() {
        let d = definition("sensor_msgs/msg/PointCloud2").unwrap();
        assert!(d.text.contains("MSG: sensor_msgs/PointField"));
        assert!(d.text.contains("uint8[] data"));
        assert!(definition("no_such_pkg/msg/Nothing").is_none());
    }
}
