//! The training loader: batches of [`Frame`]s from any [`Dataset`], shuffled
//! deterministically by (seed, epoch), read by background worker threads into bounded
//! queues so the next batches are ready while the model trains on the current one.
//!
//! Worker `w` reads batches `w, w + W, w + 2W, ...` of the epoch's order into its own
//! bounded channel; the iterator takes batches round-robin, so batches arrive in exactly
//! the epoch order whatever the threads' timing. At most `prefetch` batches per worker
//! wait in memory. Dropping the iterator stops the workers.

use crate::data::dataset::Dataset;
use crate::data::frame::Frame;
use crate::data::tokens::Hasher128;
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Loader settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle every epoch (deterministically from `seed` and the epoch number).
    pub shuffle: bool,
    pub seed: u64,
    /// Drop the last, incomplete batch.
    pub drop_last: bool,
    /// Background reader threads (0: read in the caller's thread).
    pub workers: usize,
    /// Batches each worker may hold ready.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 2,
            shuffle: true,
            seed: 0,
            drop_last: false,
            workers: 2,
            prefetch: 2,
        }
    }
}

/// Batches over a shared dataset.
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    cfg: LoaderConfig,
}

impl Loader {
    pub fn new(dataset: Arc<dyn Dataset>, cfg: LoaderConfig) -> Result<Self> {
        if cfg.batch_size == 0 {
            anyhow::bail!("loader batch_size must be at least 1");
        }
        Ok(Loader { dataset, cfg })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Frame indices of an epoch, in reading order.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        epoch_order(self.dataset.len(), &self.cfg, epoch)
    }

    /// Index batches of an epoch.
    pub fn batch_indices(&self, epoch: u64) -> Vec<Vec<usize>> {
        batches(&self.order(epoch), &self.cfg)
    }

    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dataset.len();
        let b = self.cfg.batch_size;
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Iterate over the batches of `epoch`.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let plan = Arc::new(self.batch_indices(epoch));
        let n = plan.len();
        let stop = Arc::new(AtomicBool::new(false));
        if self.cfg.workers == 0 {
            return EpochIter {
                plan,
                next: 0,
                n,
                receivers: Vec::new(),
                handles: Vec::new(),
                stop,
                dataset: Some(self.dataset.clone()),
            };
        }
        let workers = self.cfg.workers.min(n.max(1));
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<Vec<Frame>>>(self.cfg.prefetch.max(1));
            let ds = self.dataset.clone();
            let plan = plan.clone();
            let stop = stop.clone();
            let h = std::thread::Builder::new()
                .name(format!("loader-{w}"))
                .spawn(move || {
                    let mut b = w;
                    while b < plan.len() && !stop.load(Ordering::Relaxed) {
                        let batch: Result<Vec<Frame>> =
                            plan[b].iter().map(|&i| ds.get(i)).collect();
                        if tx.send(batch).is_err() {
                            break;
                        }
                        b += workers;
                    }
                })
                .expect("spawning a loader thread");
            receivers.push(rx);
            handles.push(h);
        }
        EpochIter {
            plan,
            next: 0,
            n,
            receivers,
            handles,
            stop,
            dataset: None,
        }
    }
}

/// Frame order of an epoch.
pub fn epoch_order(len: usize, cfg: &LoaderConfig, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if cfg.shuffle {
        let (s, _) = Hasher128::new()
            .str("loader")
            .u64(cfg.seed)
            .u64(epoch)
            .finish();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(s));
    }
    order
}

fn batches(order: &[usize], cfg: &LoaderConfig) -> Vec<Vec<usize>> {
    order
        .chunks(cfg.batch_size)
        .filter(|c| !cfg.drop_last || c.len() == cfg.batch_size)
        .map(|c| c.to_vec())
        .collect()
}

/// The batches of one epoch, in order.
pub struct EpochIter {
    plan: Arc<Vec<Vec<usize>>>,
    next: usize,
    n: usize,
    receivers: Vec<Receiver<Result<Vec<Frame>>>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Set when reading in the caller's thread.
    dataset: Option<Arc<dyn Dataset>>,
}

impl EpochIter {
    /// Number of batches in the epoch.
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

impl Iterator for EpochIter {
    type Item = Result<Vec<Frame>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.n {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if let Some(ds) = &self.dataset {
            return Some(self.plan[b].iter().map(|&i| ds.get(i)).collect());
        }
        let w = b % self.receivers.len();
        match self.receivers[w].recv() {
            Ok(batch) => Some(batch),
            Err(_) => Some(Err(anyhow::anyhow!(
                "loader worker {w} stopped before batch {b}"
            ))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n - self.next;
        (left, Some(left))
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock workers waiting on full queues, then wait for them.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Run `f` on every batch of an epoch of a borrowed dataset, with the same order and
/// prefetching as [`Loader::epoch`] (scoped threads, no `Arc` needed).
pub fn for_each_batch(
    dataset: &dyn Dataset,
    cfg: &LoaderConfig,
    epoch: u64,
    mut f: impl FnMut(Result<Vec<Frame>>) -> Result<()>,
) -> Result<()> {
    let plan = batches(&epoch_order(dataset.len(), cfg, epoch), cfg);
    if cfg.workers == 0 || plan.is_empty() {
        for idx in &plan {
            f(idx.iter().map(|&i| dataset.get(i)).collect())?;
        }
        return Ok(());
    }
    let workers = cfg.workers.min(plan.len());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut receivers = Vec::new();
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<Vec<Frame>>>(cfg.prefetch.max(1));
            let plan = &plan;
            let stop = &stop;
            s.spawn(move || {
                let mut b = w;
                while b < plan.len() && !stop.load(Ordering::Relaxed) {
                    let batch: Result<Vec<Frame>> =
                        plan[b].iter().map(|&i| dataset.get(i)).collect();
                    if tx.send(batch).is_err() {
                        break;
                    }
                    b += workers;
                }
            });
            receivers.push(rx);
        }
        let mut result = Ok(());
        for b in 0..plan.len() {
            let batch = receivers[b % workers]
                .recv()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("loader worker stopped")));
            if let Err(e) = f(batch) {
                result = Err(e);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(receivers);
        result
    })
}
