//! Resumable steps: the demo is a chain of steps, each writing its outputs into its own
//! folder `<out>/<step>/`. A step is finished when its done-stamp `<out>/.done/<step>.json`
//! exists and carries the step's fingerprint: a hash of the step's settings chained with the
//! fingerprint of the step before it, so that a changed setting reruns that step and every
//! step after it, and nothing else.
//!
//! Crash safety (Ctrl-C, kill, power loss at any instant): a step works in a staging folder
//! `<out>/.partial/<step>-<fingerprint>/`; only when it has returned successfully is the
//! staging folder renamed to `<out>/<step>/` and then the stamp written atomically
//! (`crate::io`). The stamp of a step about to be recomputed is removed first. So a step
//! folder without a valid stamp is never trusted, and an interrupted step leaves only its
//! staging folder. A re-run with the same settings hands that staging folder back to the
//! step (`StepDir::resumed`), so a long step can continue from its own atomic checkpoints
//! (the trainer's resumable state); staging folders of other settings are deleted.

use crate::experiment::cells::fingerprint;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a step found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    /// Computed by this run.
    Computed,
    /// Computed by this run, continuing an interrupted earlier run of the same settings.
    Resumed,
    /// Finished by an earlier run with the same settings: reused.
    Reused,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Computed => "computed",
            StepStatus::Resumed => "resumed",
            StepStatus::Reused => "reused",
        }
    }
}

/// One step of this run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub fingerprint: String,
    pub status: StepStatus,
    /// Wall time of the run that computed it (this run, or the earlier one when reused).
    pub seconds: f64,
}

/// The done-stamp of a finished step.
#[derive(Serialize, Deserialize)]
struct Stamp<T> {
    step: String,
    fingerprint: String,
    seconds: f64,
    result: T,
}

/// Where a running step writes.
#[derive(Clone, Debug)]
pub struct StepDir {
    /// The staging folder (renamed to the step's folder when the step succeeds).
    pub path: PathBuf,
    /// The folder holds what an interrupted run with the same settings left.
    pub resumed: bool,
}

/// The chain of steps of one run.
pub struct Steps {
    out: PathBuf,
    chain: String,
    total: usize,
    /// Steps of this run, in order.
    pub records: Vec<StepRecord>,
    /// Print one line per step (start, end, reuse).
    pub verbose: bool,
}

impl Steps {
    /// Steps writing under `out`; `total` is the number of steps (for `[k/n]`), `seed` starts
    /// the fingerprint chain (e.g. the fingerprint of the whole config's version).
    pub fn new(out: impl Into<PathBuf>, total: usize, seed: &str) -> Result<Self> {
        let out = out.into();
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        Ok(Self {
            out,
            chain: fingerprint(&seed),
            total,
            records: Vec::new(),
            verbose: true,
        })
    }

    /// The output folder of a (finished) step.
    pub fn dir(&self, step: &str) -> PathBuf {
        self.out.join(step)
    }

    /// The output folder of the whole run.
    pub fn out(&self) -> &Path {
        &self.out
    }

    fn stamp_path(&self, step: &str) -> PathBuf {
        self.out.join(".done").join(format!("{step}.json"))
    }

    fn staging_root(&self) -> PathBuf {
        self.out.join(".partial")
    }

    fn read_stamp<T: DeserializeOwned>(&self, step: &str) -> Option<Stamp<T>> {
        let p = self.stamp_path(step);
        let text = std::fs::read_to_string(&p).ok()?;
        match serde_json::from_str(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(
                    "{}: unreadable stamp ({e}); the step runs again",
                    p.display()
                );
                None
            }
        }
    }

    /// Run step `name` with `settings` (anything serialisable that determines its outputs),
    /// or reuse its result when an earlier run finished it with the same fingerprint.
    pub fn run<T: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        settings: &impl Serialize,
        f: impl FnOnce(&StepDir) -> Result<T>,
    ) -> Result<T> {
        anyhow::ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "step name `{name}`: letters, digits, `-` and `_` only"
        );
        let fp = fingerprint(&(&self.chain, name, settings));
        self.chain = fp.clone();
        let k = self.records.len() + 1;
        let dir = self.dir(name);
        if let Some(stamp) = self.read_stamp::<T>(name) {
            if stamp.fingerprint == fp && dir.is_dir() {
                if self.verbose {
                    eprintln!(
                        "[{k}/{}] {name}: finished earlier ({:.1} s), reused",
                        self.total, stamp.seconds
                    );
                }
                self.records.push(StepRecord {
                    name: name.into(),
                    fingerprint: fp,
                    status: StepStatus::Reused,
                    seconds: stamp.seconds,
                });
                return Ok(stamp.result);
            }
        }
        // Not finished with these settings: forget the old stamp before touching anything.
        let stamp = self.stamp_path(name);
        if stamp.exists() {
            std::fs::remove_file(&stamp)
                .with_context(|| format!("removing the stale stamp {}", stamp.display()))?;
        }
        let staging_root = self.staging_root();
        std::fs::create_dir_all(&staging_root)
            .with_context(|| format!("creating {}", staging_root.display()))?;
        let staging = staging_root.join(format!("{name}-{fp}"));
        // Staging folders of this step with other settings are stale.
        let prefix = format!("{name}-");
        for e in std::fs::read_dir(&staging_root)?.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let other = n.strip_prefix(&prefix).is_some_and(|rest| {
                rest.len() == 16 && rest.chars().all(|c| c.is_ascii_hexdigit())
            });
            if other && e.path() != staging {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let resumed = staging.is_dir();
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating {}", staging.display()))?;
        if self.verbose {
            eprintln!(
                "[{k}/{}] {name}{}",
                self.total,
                if resumed {
                    " (continuing an interrupted run)"
                } else {
                    ""
                }
            );
        }
        let t0 = Instant::now();
        let result = f(&StepDir {
            path: staging.clone(),
            resumed,
        })
        .with_context(|| format!("demo step `{name}`"))?;
        let seconds = t0.elapsed().as_secs_f64();
        // Publish: the folder first, then the stamp.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the old {}", dir.display()))?;
        }
        std::fs::rename(&staging, &dir)
            .with_context(|| format!("moving {} to {}", staging.display(), dir.display()))?;
        crate::io::write_json(
            &stamp,
            &Stamp {
                step: name.into(),
                fingerprint: fp.clone(),
                seconds,
                result: &result,
            },
        )?;
        if self.verbose {
            eprintln!("[{k}/{}] {name}: done in {seconds:.1} s", self.total);
        }
        self.records.push(StepRecord {
            name: name.into(),
            fingerprint: fp,
            status: if resumed {
                StepStatus::Resumed
            } else {
                StepStatus::Computed
            },
            seconds,
        });
        Ok(result)
    }
}
