//! The resumable cell store of a study: every unit of work (a pre-training run, one method x
//! sparsity x seed, a structured row) is a *cell* whose result is written atomically as
//! `cells/<key>.json` when it finishes. Re-running the study skips every finished cell whose
//! fingerprint (a hash of the settings that produced it) still matches; a cell whose
//! settings changed is computed again.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// FNV-1a 64-bit hash of a value's JSON form (stable across runs and Rust versions).
pub fn fingerprint<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).expect("serialisable settings");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    key: String,
    fingerprint: String,
    seconds: f64,
    result: T,
}

/// Directory of finished cells.
#[derive(Clone, Debug)]
pub struct CellStore {
    dir: PathBuf,
}

/// Whether [`CellStore::run`] computed the cell or found it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellStatus {
    Computed,
    Skipped,
}

impl CellStore {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
        }
    }

    /// File of a cell (`/` in keys become subdirectories).
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The finished result of `key`, if present with the same fingerprint.
    pub fn get<T: DeserializeOwned>(&self, key: &str, fp: &str) -> Result<Option<T>> {
        let p = self.path(key);
        if !p.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading cell {}", p.display()))?;
        let stored: Stored<T> = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "cell {} is unreadable ({e}); computing it again",
                    p.display()
                );
                return Ok(None);
            }
        };
        if stored.fingerprint != fp {
            tracing::info!(
                "cell {key}: settings changed since it was computed; computing it again"
            );
            return Ok(None);
        }
        Ok(Some(stored.result))
    }

    /// Wall time (seconds) recorded when the finished cell `key` was computed.
    pub fn seconds(&self, key: &str) -> Option<f64> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("seconds")?.as_f64()
    }

    /// Write a finished cell atomically.
    pub fn put<T: Serialize>(&self, key: &str, fp: &str, seconds: f64, result: &T) -> Result<()> {
        let stored = Stored {
            key: key.to_string(),
            fingerprint: fp.to_string(),
            seconds,
            result,
        };
        crate::io::write_json(self.path(key), &stored)
    }

    /// Return the finished result of `key`, or compute it with `f` and store it.
    pub fn run<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        fp: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<(T, CellStatus)> {
        if let Some(r) = self.get(key, fp)? {
            tracing::info!("cell {key}: finished earlier, skipped");
            return Ok((r, CellStatus::Skipped));
        }
        tracing::info!("cell {key}: running");
        let t0 = Instant::now();
        let r = f().with_context(|| format!("experiment cell `{key}`"))?;
        self.put(key, fp, t0.elapsed().as_secs_f64(), &r)?;
        Ok((r, CellStatus::Computed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_skipped_when_finished_and_recomputed_when_settings_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = CellStore::new(dir.path());
        let fp = fingerprint(&("snip", 0.8));
        let mut calls = 0;
        let (v, s) = store
            .run("seed0/snip_0.80", &fp, || {
                calls += 1;
                Ok(41)
            })
            .unwrap();
        assert_eq!((v, s), (41, CellStatus::Computed));
        let (v, s) = store
            .run("seed0/snip_0.80", &fp, || {
                calls += 1;
                Ok(0)
            })
            .unwrap();
        assert_eq!((v, s), (41, CellStatus::Skipped));
        assert!(store.seconds("seed0/snip_0.80").is_some_and(|t| t >= 0.0));
        assert_eq!(store.seconds("seed0/none"), None);
        let fp2 = fingerprint(&("snip", 0.85));
        assert_ne!(fp, fp2);
        let (v, _) = store
            .run("seed0/snip_0.80", &fp2, || {
                calls += 1;
                Ok(7)
            })
            .unwrap();
        assert_eq!((v, calls), (7, 2));
        // A failing cell leaves nothing behind.
        assert!(store
            .run::<i32>("seed0/bad", &fp, || anyhow::bail!("boom"))
            .is_err());
        assert!(!store.path("seed0/bad").exists());
        // A corrupt cell is recomputed.
        std::fs::write(store.path("seed0/snip_0.80"), b"{").unwrap();
        let (v, s) = store.run("seed0/snip_0.80", &fp2, || Ok(9)).unwrap();
        assert_eq!((v, s), (9, CellStatus::Computed));
    }
}
