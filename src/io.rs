//! Atomic file output: checkpoints, results, reports and bags are written to a temporary file
//! in the destination directory and renamed into place, so a crash or Ctrl-C never leaves a
//! half-written file under the final name.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically (temporary file + fsync + rename).
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| f.write_all(bytes).map_err(Into::into))
}

/// Create `path` atomically from whatever `fill` writes into the temporary file.
pub fn atomic_write_with<F>(path: impl AsRef<Path>, fill: F) -> Result<()>
where
    F: FnOnce(&mut std::fs::File) -> Result<()>,
{
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    fill(tmp.as_file_mut()).with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Serialise `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    atomic_write(path, &bytes)
}

/// Create a path atomically by having `write_to` write a file at a temporary path (for
/// libraries that insist on a path, such as image encoders or SQLite).
pub fn atomic_write_via_path<F>(path: impl AsRef<Path>, write_to: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ))
        .suffix(&format!(".tmp{ext}"))
        .tempfile_in(dir)?
        .into_temp_path();
    write_to(&tmp).with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("a.json");
        write_json(&p, &vec![1, 2, 3]).unwrap();
        atomic_write(&p, b"[4]").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[4]");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_fill_leaves_old_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        atomic_write(&p, b"old").unwrap();
        let r = atomic_write_with(&p, |f| {
            f.write_all(b"partial")?;
            anyhow::bail!("disk on fire")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn via_path_keeps_extension_for_encoders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img.png");
        atomic_write_via_path(&p, |tmp| {
            assert!(tmp.to_string_lossy().ends_with(".png"));
            image::RgbImage::new(2, 2).save(tmp)?;
            Ok(())
        })
        .unwrap();
        assert!(image::open(&p).is_ok());
    }
}
