//! YAML configuration loading whose errors name the file, the line and the field.
//!
//! Every YAML file the product reads (model configs, node parameters, experiment and pruning
//! configs) goes through [`load_yaml`]. Parse and type errors come from serde_yaml with their
//! location and from `serde_path_to_error` with the field path (`model.lss.depth_bins`).
//! Semantic checks (ranges, consistency) implement [`Validate`]; their errors name the field
//! too, and [`load_yaml`] looks up the line where that field is written.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration error: what is wrong, in which file, at which line and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: field `{field}`: {message}", path.display(), fmt_line(*line, *column))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        field: String,
        message: String,
    },
}

fn fmt_line(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl ConfigError {
    /// The dotted path of the offending field (`.` for the document root).
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Io { .. } => None,
        }
    }
    /// The 1-based line of the error, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            ConfigError::Io { .. } => None,
        }
    }
}

/// A semantic check failure of one field, raised by [`Validate::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `voxel.size`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Semantic validation after parsing. The default accepts everything.
pub trait Validate {
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }
}

/// Helper for validators: `ensure(cond, "field", "message")`.
pub fn ensure(cond: bool, field: &str, message: impl Into<String>) -> Result<(), FieldError> {
    if cond {
        Ok(())
    } else {
        Err(FieldError::new(field, message))
    }
}

/// Read, parse and validate a YAML file.
pub fn load_yaml<T: DeserializeOwned + Validate>(path: impl AsRef<Path>) -> Result<T, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml(&text, path)
}

/// Parse and validate YAML text; `origin` names the file in errors.
pub fn parse_yaml<T: DeserializeOwned + Validate>(
    text: &str,
    origin: &Path,
) -> Result<T, ConfigError> {
    let value: T = parse_yaml_unvalidated(text, origin)?;
    value.validate().map_err(|e| ConfigError::Invalid {
        path: origin.to_path_buf(),
        line: locate_field(text, &e.field),
        column: None,
        field: e.field,
        message: e.message,
    })?;
    Ok(value)
}

/// Parse YAML text into `T` without running [`Validate`].
pub fn parse_yaml_unvalidated<T: DeserializeOwned>(
    text: &str,
    origin: &Path,
) -> Result<T, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = match inner.location() {
            Some(loc) => (Some(loc.line()), Some(loc.column())),
            None => (locate_field(text, &field), None),
        };
        ConfigError::Invalid {
            path: origin.to_path_buf(),
            line,
            column,
            field,
            message: strip_location(&inner.to_string()),
        }
    })
}

/// serde_yaml appends " at line L column C"; the error already carries the location.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Best-effort 1-based line of a dotted field path in block-style YAML: each segment is
/// looked up as a `key:` more indented than its parent, after the parent's line.
/// Sequence indices (`cameras[2]`) are not resolved; the line of the sequence key is given.
pub fn locate_field(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    let mut found = None;
    for raw_seg in field.split('.').filter(|s| !s.is_empty()) {
        let seg = raw_seg.split('[').next().unwrap_or(raw_seg);
        if seg.is_empty() {
            continue;
        }
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            let indent = (line.len() - trimmed.len()) as isize;
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if i > start && found.is_some() && indent <= parent_indent {
                break; // left the parent's block
            }
            let key = trimmed.trim_start_matches("- ");
            if indent > parent_indent
                && (key.starts_with(&format!("{seg}:")) || key.starts_with(&format!("\"{seg}\":")))
            {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                parent_indent = indent;
            }
            None => return found,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Voxel {
        size: [f32; 3],
        max_points: usize,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        name: String,
        voxel: Voxel,
    }

    impl Validate for Cfg {
        fn validate(&self) -> Result<(), FieldError> {
            ensure(
                self.voxel.max_points > 0,
                "voxel.max_points",
                "must be at least 1",
            )
        }
    }

    fn parse(text: &str) -> Result<Cfg, ConfigError> {
        parse_yaml(text, Path::new("cfg.yaml"))
    }

    #[test]
    fn good_config_parses() {
        let c = parse("name: a\nvoxel:\n  size: [0.1, 0.1, 0.2]\n  max_points: 10\n").unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(c.voxel.max_points, 10);
        assert_eq!(c.voxel.size, [0.1, 0.1, 0.2]);
    }

    #[test]
    fn type_error_names_file_line_and_field() {
        let err =
            parse("name: a\nvoxel:\n  size: [0.1, 0.1, 0.2]\n  max_points: lots\n").unwrap_err();
        assert_eq!(err.field(), Some("voxel.max_points"));
        assert_eq!(err.line(), Some(4));
        let msg = err.to_string();
        assert!(msg.starts_with("cfg.yaml:4:"), "{msg}");
        assert!(msg.contains("voxel.max_points"), "{msg}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err =
            parse("name: a\nvoxel:\n  size: [0.1, 0.1, 0.2]\n  max_points: 3\n  colour: red\n")
                .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        assert_eq!(err.line(), Some(5));
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse("name: a\nvoxel:\n  size: [0.1, 0.1, 0.2]\n").unwrap_err();
        assert!(err.to_string().contains("max_points"), "{err}");
        assert_eq!(err.field(), Some("voxel"));
    }

    #[test]
    fn syntax_error_has_line() {
        let err = parse("name: a\nvoxel: [\n  size: 1\n").unwrap_err();
        assert!(err.line().is_some(), "{err}");
    }

    #[test]
    fn validation_error_locates_line() {
        let err = parse("name: a\nvoxel:\n  size: [0.1, 0.1, 0.2]\n  max_points: 0\n").unwrap_err();
        assert_eq!(err.field(), Some("voxel.max_points"));
        assert_eq!(err.line(), Some(4));
        assert!(err.to_string().contains("must be at least 1"));
    }

    #[test]
    fn locate_nested_field_skips_same_named_keys_elsewhere() {
        let text = "a:\n  size: 1\nb:\n  size: 2\n";
        assert_eq!(locate_field(text, "b.size"), Some(4));
        assert_eq!(locate_field(text, "a.size"), Some(2));
    }
}
